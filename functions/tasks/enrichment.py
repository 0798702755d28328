"""AI enrichment steps: the breach forecast and the runbook answer.

Both call the model gateway (see functions.model_services). Without a gateway they record "not configured".
A transient gateway failure (refused connection, timeout, HTTP 5xx) is retried with backoff; after the last
attempt the step records what was unavailable and why, and the pipeline goes on.
"""

import logging
import math
import posixpath
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from bentos.forecaster.breach import analyze_breach, breach_predicted, breach_title
from functions.celery_app import app
from functions.model_services import ModelServiceRejected, get_model_services
from functions.models import Episode, Incident
from functions.prometheus import PrometheusClient, PrometheusUnavailable, Series
from functions.settings import get_settings
from functions.tasks.base import OpsSeerTask, StepResult, TransientError, run_step
from functions.tasks.snapshot import alert_expression, comparison_direction, split_threshold
from functions.timeline import add_entry, format_duration, step_key

logger = logging.getLogger(__name__)

MAX_TITLE = 300


def _not_configured(capability: str, what: str) -> StepResult:
    return StepResult(
        title=f"{what} not available: no model gateway is configured (set OPSSEER_MODELS_URL)",
        status="not_configured",
        payload={"capability": capability},
    )


def _model_name(result: dict[str, Any]) -> str:
    """Return "model@version", keeping a trailing note such as "(auto fallback: ...)" after the version."""
    version = result.get("model_version")
    if not version:
        return result["model"]
    name, separator, note = result["model"].partition(" (")
    return f"{name}@{version}{separator}{note}"


def _worst_series(series: list[Series], direction: str) -> Series:
    """Pick the series closest to breaching: the highest last value for "above", the lowest for "below"."""

    def last(item: Series) -> float:
        observed = [value for value in item.values if not math.isnan(value)]
        if not observed:
            return -math.inf
        return observed[-1] if direction == "above" else -observed[-1]

    return max(series, key=last)


def _forecast(session: Session, incident: Incident, episode: Episode) -> StepResult:
    models = get_model_services()
    if models is None:
        return _not_configured("forecaster", "Forecast")
    expression = alert_expression(incident.generator_url)
    if not expression:
        return StepResult(
            title="No forecast: the alert's generatorURL carries no PromQL expression",
            status="skipped",
            payload={"generator_url": incident.generator_url},
        )

    settings = get_settings()
    query, threshold = split_threshold(expression)
    direction = comparison_direction(expression)
    end = datetime.now(UTC)
    start = end - timedelta(seconds=settings.forecast_lookback_seconds)
    with PrometheusClient(settings.prometheus_url, timeout=settings.prometheus_timeout_seconds) as client:
        try:
            history = client.query_range(query, start=start, end=end, step_seconds=settings.forecast_step_seconds)
        except PrometheusUnavailable as exc:
            raise TransientError(str(exc)) from exc
    payload: dict[str, Any] = {"query": query, "threshold": threshold, "direction": direction}
    if not history:
        return StepResult(title=f"No forecast: {query} returned no data", status="skipped", payload=payload)

    chosen = _worst_series(history, direction)
    request = {
        "values": [None if math.isnan(value) else value for value in chosen.values],
        "timestamps": chosen.timestamps,
        "step_seconds": settings.forecast_step_seconds,
        "horizon": settings.forecast_horizon_steps,
    }
    try:
        (forecast,) = models.forecast([request])
    except ModelServiceRejected as exc:
        # The forecaster rejected this history (too short, all missing), so a retry cannot help.
        logger.warning("forecast for incident %s episode %s skipped: %s", incident.id, episode.id, exc)
        return StepResult(title=f"No forecast: the forecaster rejected the history of {query}: {exc}", status="skipped", payload=payload)

    model = _model_name(forecast)
    payload.update(
        labels=chosen.labels,
        horizon=settings.forecast_horizon_steps,
        step_seconds=settings.forecast_step_seconds,
        history={"timestamps": chosen.timestamps, "values": request["values"]},
        forecast=forecast,
    )
    if threshold is None:
        return StepResult(title=f"Forecast of {query} by {forecast['model']} (no constant threshold to compare)", payload=payload, model=model)

    breach = analyze_breach(forecast, threshold, direction=direction, step_seconds=settings.forecast_step_seconds)
    observed = [value for value in chosen.values if not math.isnan(value)]
    breach["already_breaching"] = _beyond(observed[-1], threshold, direction)
    payload["breach"] = breach
    if breach["already_breaching"]:
        # The SLI is past the threshold now, so there is nothing to warn of ahead of time. The entry states how
        # long the median forecast stays past it instead.
        title = _ongoing_title(forecast, breach, settings.forecast_step_seconds)
        return StepResult(title=f"{title}; forecast of {query} by {forecast['model']}", payload=payload, model=model)

    title = breach_title(breach)
    if breach_predicted(breach):
        add_entry(
            session,
            incident_id=incident.id,
            episode_id=episode.id,
            key=step_key(episode.id, "proactive_warning"),
            kind="proactive_warning",
            title=title,
            payload={**breach, "query": query},
            model=model,
        )
    return StepResult(title=f"{title}; forecast of {query} by {forecast['model']}", payload=payload, model=model)


def _beyond(value: float, threshold: float, direction: str) -> bool:
    return value >= threshold if direction == "above" else value <= threshold


def _ongoing_title(forecast: dict[str, Any], breach: dict[str, Any], step_seconds: float) -> str:
    """Describe a breach in progress: how long the median forecast stays past the threshold."""
    threshold, direction = breach["threshold"], breach["direction"]
    median = forecast["quantiles"]["0.5"]
    steps = next((index for index, value in enumerate(median) if not _beyond(value, threshold, direction)), len(median))
    where = "above" if direction == "above" else "below"
    if steps == len(median):
        outlook = f"p50 stays {where} it through the {format_duration(len(median) * step_seconds)} horizon"
    else:
        outlook = f"p50 recovers in {format_duration((steps + 1) * step_seconds)}"
    return f"Forecast: already {where} {threshold:g}; {outlook} (breach probability {breach['probability'] * 100:.0f}%)"


def runbook_question(incident: Incident) -> tuple[str, str | None]:
    """Build the runbook question from the alert, and a source hint from its runbook_url.

    With a runbook_url the hint finds the runbook, and the question asks only for the mitigation: adding
    the summary then pulls the answer towards the runbook's own description of the alert instead of what
    to do. Without one, the summary is added so retrieval can find the right runbook by its meaning.
    """
    annotations = incident.annotations or {}
    question = f"How do I mitigate {incident.alertname or 'this alert'}?"
    runbook_url = str(annotations.get("runbook_url") or "").strip()
    hint = posixpath.basename(urlsplit(runbook_url).path) if runbook_url else ""
    summary = str(annotations.get("summary") or annotations.get("description") or "").strip()
    if not hint and summary:
        question += f" The alert says: {summary}"
    return question, hint or None


def _runbook(session: Session, incident: Incident, episode: Episode) -> StepResult:
    models = get_model_services()
    if models is None:
        return _not_configured("runbook_qa", "Runbook answer")
    question, hint = runbook_question(incident)
    try:
        answer = models.ask(question, top_k=3, source_hint=hint)
    except ModelServiceRejected as exc:
        logger.warning("runbook answer for incident %s episode %s skipped: %s", incident.id, episode.id, exc)
        return StepResult(title=f"No runbook answer: the service rejected the question: {exc}", status="skipped", payload={"question": question})

    citation = f"{answer['source']}, {answer['heading']}, lines {answer['line_start']}-{answer['line_end']}"
    return StepResult(
        title=textwrap.shorten(f"Runbook ({citation}): {answer['answer']}", width=MAX_TITLE, placeholder=" ..."),
        payload={**answer, "question": question, "source_hint": hint},
        model=answer["model"],
    )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.forecast_breach")
def forecast_breach(self: OpsSeerTask, episode_id: int) -> dict:
    """Forecast the alert's SLI and record whether and when it breaches."""
    return run_step(self, episode_id=episode_id, step="forecast", body=_forecast)


@app.task(bind=True, base=OpsSeerTask, name="opsseer.answer_runbook")
def answer_runbook(self: OpsSeerTask, episode_id: int) -> dict:
    """Look up what to do about the alert in the runbooks and record the result with its citation."""
    return run_step(self, episode_id=episode_id, step="runbook", body=_runbook)
