"""Capture a metric snapshot around an alert: a Prometheus range query rendered to a PNG chart."""

import ast
import io
import logging
import operator
import re
import textwrap
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
_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)")


def alert_expression(generator_url: str) -> str | None:
    """Return the PromQL expression Prometheus put in the alert's generatorURL (the g0.expr parameter)."""
    expressions = parse_qs(urlsplit(generator_url).query).get("g0.expr")
    return expressions[0] if expressions else None


_SET_OPERATOR = re.compile(r"(and|or|unless)\b")
_CLOSING = {"{": "}", "[": "]"}


def _scan(expression: str):
    """Yield (index, depth, token) for the parts of a PromQL expression that matter for splitting.

    Tokens are "(", ")", a set operator (and, or, unless) or a comparison operator. Text inside quotes,
    label matchers `{...}` and range selectors `[...]` is skipped, so `=~` and `!=` in matchers never count.
    """
    depth, index = 0, 0
    while index < len(expression):
        char = expression[index]
        if char in "\"'`":
            index += 1
            while index < len(expression) and expression[index] != char:
                index += 2 if expression[index] == "\\" else 1
        elif char in _CLOSING:
            index = expression.find(_CLOSING[char], index)
            if index < 0:
                return
        elif char == "(":
            depth += 1
            yield index, depth, "("
        elif char == ")":
            yield index, depth, ")"
            depth -= 1
        elif (index == 0 or not (expression[index - 1].isalnum() or expression[index - 1] in "_:")) and (
            match := _SET_OPERATOR.match(expression, index)
        ):
            yield index, depth, match.group(1)
            index = match.end() - 1
        elif (match := _COMPARISON.match(expression, index)) and expression[index - 1 : index] not in ("=", "!", "<", ">"):
            yield index, depth, match.group(0)
            index = match.end() - 1
        index += 1


def _arithmetic(text: str) -> float | None:
    """Evaluate a constant arithmetic expression such as `(14.4 * 0.001)`; None for anything else."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None
    operators = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

    def evaluate(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -evaluate(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in operators:
            return operators[type(node.op)](evaluate(node.left), evaluate(node.right))
        raise ValueError(f"not a constant: {ast.dump(node)}")

    try:
        return evaluate(tree.body)
    except (ValueError, ZeroDivisionError):
        return None


def split_threshold(expression: str) -> tuple[str, float | None]:
    """Split an alert expression into the metric to chart and its threshold.

    `metric > 0.25` gives the metric and 0.25. In a combination such as `(a > (14.4 * 0.001) and b > ...) or
    (...)`, the outermost first comparison is used: `a` and 0.0144. An expression without a comparison is
    returned whole, and a threshold that is not constant arithmetic is None.
    """
    tokens = list(_scan(expression))
    comparisons = [token for token in tokens if _COMPARISON.fullmatch(token[2])]
    if not comparisons:
        return expression.strip(), None
    position, depth, symbol = min(comparisons, key=lambda token: (token[1], token[0]))

    start = 0
    for index, token_depth, token in tokens:
        if index >= position:
            break
        if token == "(" and token_depth == depth:
            start = index + 1
        elif token in ("and", "or", "unless") and token_depth == depth:
            start = index + len(token)
    end = len(expression)
    for index, token_depth, token in tokens:
        if index <= position:
            continue
        if (token == ")" and token_depth == depth) or (token in ("and", "or", "unless") and token_depth == depth):
            end = index
            break

    metric = expression[start:position].strip()
    threshold_text = expression[position + len(symbol) : end]
    return metric or expression.strip(), _arithmetic(threshold_text.replace("bool", "", 1))


def comparison_direction(expression: str) -> str:
    """Return "below" when the alert fires for values under its threshold (`<`, `<=`), otherwise "above"."""
    tokens = [token for token in _scan(expression) if _COMPARISON.fullmatch(token[2])]
    if not tokens:
        return "above"
    _, _, symbol = min(tokens, key=lambda token: (token[1], token[0]))
    return "below" if symbol in ("<", "<=") else "above"


def render_chart(series: list[Series], *, title: str, threshold: float | None, started_at: datetime, ended_at: datetime | None) -> bytes:
    figure, axes = plt.subplots(figsize=(8, 3.2), dpi=100)
    try:
        for item in series[:MAX_SERIES]:
            times = [datetime.fromtimestamp(timestamp, UTC) for timestamp in item.timestamps]
            label = ", ".join(f"{key}={value}" for key, value in sorted(item.labels.items()) if key != "__name__")
            axes.plot(times, item.values, linewidth=1.4, label=label[:60] or "value")
        if threshold is not None:
            axes.axhline(threshold, color="#c0392b", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        axes.axvline(started_at, color="#e67e22", linewidth=1, label="alert started")
        if ended_at is not None:
            axes.axvspan(started_at, ended_at, color="#e67e22", alpha=0.12, label="episode")
        axes.set_title(textwrap.shorten(title, width=100, placeholder=" ..."), fontsize=9)
        locator = mdates.AutoDateLocator(tz=UTC)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
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
        "alert_expression": expression,
        "query": query,
        "threshold": threshold,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "step_seconds": step_seconds,
        "series_count": len(series),
    }
    if not any(value == value for item in series for value in item.values):
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
