"""AI enrichment steps: breach forecast and runbook answer.

The model services (a forecaster and runbook question answering served by BentoML) are not part of this
release, so both steps record that they are not configured, and the pipeline goes on without them.
"""

from sqlalchemy.orm import Session

from functions.celery_app import app
from functions.models import Episode, Incident
from functions.tasks.base import OpsSeerTask, StepResult, run_step


def _forecast(session: Session, incident: Incident, episode: Episode) -> StepResult:
    # TODO: call the forecaster model service once it exists and record its quantiles and breach analysis.
    return StepResult(
        title="Forecast not available: no forecaster model service is configured",
        status="not_configured",
        payload={"capability": "forecaster"},
    )


def _runbook(session: Session, incident: Incident, episode: Episode) -> StepResult:
    # TODO: ask the runbook question-answering service once it exists and record the answer with its citation.
    return StepResult(
        title="Runbook answer not available: no runbook question-answering service is configured",
        status="not_configured",
        payload={"capability": "runbook_qa", "runbook_url": incident.annotations.get("runbook_url")},
    )


@app.task(bind=True, base=OpsSeerTask, name="opsseer.forecast_breach")
def forecast_breach(self: OpsSeerTask, episode_id: int) -> dict:
    """Forecast the alert's SLI and record whether and when it breaches."""
    return run_step(self, episode_id=episode_id, step="forecast", body=_forecast)


@app.task(bind=True, base=OpsSeerTask, name="opsseer.answer_runbook")
def answer_runbook(self: OpsSeerTask, episode_id: int) -> dict:
    """Look up what to do about the alert in the runbooks and record the result with its citation."""
    return run_step(self, episode_id=episode_id, step="runbook", body=_runbook)
