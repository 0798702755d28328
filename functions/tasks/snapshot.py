"""Capture a metric snapshot around an alert: a Prometheus range query rendered to a PNG chart."""

import io
import logging
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from functions.celery_app import app  # noqa: E402
from functions.models import Episode, Incident  # noqa: E402
from functions.prometheus import PrometheusClient, PrometheusUnavailable, Series  # noqa: E402
from functions.settings import get_settings  # noqa: E402
from functions.tasks.base import OpsSeerTask, StepResult, TransientError, run_step  # noqa: E402

logger = logging.getLogger(__name__)

MAX_POINTS = 300
MAX_SERIES = 8
AFTER_END = timedelta(minutes=5)
_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)(\s*bool)?")


def alert_expression(generator_url: str) -> str | None:
    """Return the PromQL expression Prometheus put in the alert's generatorURL (the g0.expr parameter)."""
    expressions = parse_qs(urlsplit(generator_url).query).get("g0.expr")
    return expressions[0] if expressions else None


def split_threshold(expression: str) -> tuple[str, float | None]:
    """Split `metric > 0.25` into the metric expression and its numeric threshold.

    Only a comparison at the top level (outside brackets and quotes) with a number on its right counts;
    any other expression is returned whole, with no threshold.
    """
    depth, quote, position = 0, None, None
    for index, char in enumerate(expression):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and _COMPARISON.match(expression, index) and (index == 0 or expression[index - 1] not in "=!<>"):
            position = index
            break
    if position is None:
        return expression, None

    match = _COMPARISON.match(expression, position)
    right = expression[match.end():].strip()
    try:
        return expression[:position].strip(), float(right)
    except ValueError:
        return expression, None


def render_chart(series: list[Series], *, title: str, threshold: float | None, started_at: datetime, ended_at: datetime | None) -> bytes:
    figure, axes = plt.subplots(figsize=(8, 3.2), dpi=100)
    try:
        for item in series[:MAX_SERIES]:
            times = [datetime.fromtimestamp(timestamp, UTC) for timestamp in item.timestamps]
            label = ", ".join(f"{key}={value}" for key, value in sorted(item.labels.items()) if key != "__name__")
            axes.plot(times, item.values, linewidth=1.4, label=label[:60] or "value")
        if threshold is not None:
            axes.axhline(threshold, color="#c0392b", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        axes.axvline(started_at, color="#e67e22", linewidth=1)
        if ended_at is not None:
            axes.axvspan(started_at, ended_at, color="#e67e22", alpha=0.12)
        axes.set_title(title[:90], fontsize=9)
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
        axes.set_xlabel("time (UTC)", fontsize=8)
        axes.tick_params(labelsize=8)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7, loc="upper left")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _capture(session: Session, incident: Incident, episode: Episode) -> StepResult:
    settings = get_settings()
    expression = alert_expression(incident.generator_url)
    if not expression:
        return StepResult(
            title="No metric snapshot: the alert's generatorURL carries no PromQL expression",
            status="skipped",
            payload={"generator_url": incident.generator_url},
        )

    query, threshold = split_threshold(expression)
    now = datetime.now(UTC)
    start = episode.started_at - timedelta(seconds=settings.snapshot_lookback_seconds)
    end = min(now, (episode.ended_at or now) + AFTER_END)
    step_seconds = max(1.0, round((end - start).total_seconds() / MAX_POINTS))
    with PrometheusClient(settings.prometheus_url, timeout=settings.prometheus_timeout_seconds) as client:
        try:
            series = client.query_range(query, start=start, end=end, step_seconds=step_seconds)
        except PrometheusUnavailable as exc:
            raise TransientError(str(exc)) from exc

    payload = {
        "query": query,
        "threshold": threshold,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "step_seconds": step_seconds,
        "series_count": len(series),
    }
    if not series:
        return StepResult(title=f"No metric snapshot: {query} returned no data", status="skipped", payload=payload)
    chart = render_chart(series, title=query, threshold=threshold, started_at=episode.started_at, ended_at=episode.ended_at)
    latest = [value for value in series[0].values if value == value]
    if latest:
        payload["last_value"] = latest[-1]
    return StepResult(
        title=f"Metric snapshot of {query} ({len(series)} series)",
        payload=payload,
        attachment=("image/png", chart),
    )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.capture_snapshot")
def capture_snapshot(self: OpsSeerTask, episode_id: int) -> dict:
    """Query the alert's metric around the episode and store the chart with the incident."""
    return run_step(self, episode_id=episode_id, step="snapshot", body=_capture)
