"""The forecast and runbook steps against the real model gateway, and their behaviour without it."""

import time
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import quote_plus

import pytest

from functions import model_services
from functions.models import Incident
from functions.settings import get_settings
from functions.tasks import enrichment, pipelines
from opsseer.server import celery_enqueue
from tests.functions.helpers import (
    Trigger,
    alert,
    entries_by_kind,
    payload,
    wait_for_entry,
)

RUNBOOK_URL = "https://github.com/opsseer/opsseer/blob/main/alerting/runbooks/ToyprodLatencySLOBreach.md"


_entries = entries_by_kind
_wait_for = partial(wait_for_entry, timeout=90.0)


def _up_alert(prometheus_url: str, threshold: float, **kwargs):
    item = alert(starts_at=datetime.now(UTC) - timedelta(seconds=10), **kwargs)
    expression = quote_plus(f'up{{job="toyprod"}} > {threshold}')
    item["generatorURL"] = f"{prometheus_url}/graph?g0.expr={expression}&g0.tab=1"
    return item


@pytest.fixture
def live_trigger(settings, database) -> Trigger:
    trigger = Trigger(settings, database)
    trigger.app.state.enqueue = celery_enqueue
    return trigger


@pytest.fixture
def models_env(monkeypatch):
    """Point this process's settings at a given gateway URL (or none) for in-process step runs."""

    def point(url: str | None, **extra: str) -> None:
        if url is None:
            monkeypatch.delenv("OPSSEER_MODELS_URL", raising=False)
        else:
            monkeypatch.setenv("OPSSEER_MODELS_URL", url)
        for name, value in extra.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        model_services.get_model_services.cache_clear()

    yield point
    monkeypatch.undo()
    get_settings.cache_clear()
    model_services.get_model_services.cache_clear()


def _rising_alert(prometheus_url: str, seconds_to_threshold: float, **kwargs):
    """An alert on a series that grows by 1 per second and reaches its threshold in seconds_to_threshold."""
    origin = int(time.time())
    item = alert(starts_at=datetime.now(UTC) - timedelta(seconds=10), **kwargs)
    expression = quote_plus(f"vector(time() - {origin}) > {seconds_to_threshold:g}")
    item["generatorURL"] = f"{prometheus_url}/graph?g0.expr={expression}&g0.tab=1"
    return item


def test_forecast_warns_of_breach_ahead(worker, prometheus_history, live_trigger, database):
    live_trigger.send(payload(_rising_alert(prometheus_history.urls["prometheus"], 40)))

    entries = _wait_for(database, "summary")

    forecast = entries["forecast"]
    assert forecast.status == "ok", forecast.title
    assert forecast.model.startswith(forecast.payload["forecast"]["model"].partition(" (")[0])
    quantiles = forecast.payload["forecast"]["quantiles"]
    horizon = get_settings().forecast_horizon_steps
    assert [len(quantiles[level]) for level in ("0.1", "0.5", "0.9")] == [horizon] * 3
    breach = forecast.payload["breach"]
    assert breach["already_breaching"] is False
    assert breach["threshold"] == 40
    # The series rises by 1 per second and stood at most a few seconds past 0 when the step read it.
    assert 20 <= breach["time_to_p50_seconds"] <= 45
    assert breach["time_to_p90_seconds"] <= breach["time_to_p50_seconds"]
    assert breach["probability"] > 0.9
    warning = entries["proactive_warning"]
    assert warning.model == forecast.model
    assert warning.payload["time_to_p50_seconds"] == breach["time_to_p50_seconds"]
    assert warning.title.startswith("Forecast: p90 crosses 40 in ")


def test_forecast_of_ongoing_breach_gives_no_warning(worker, prometheus_history, live_trigger, database):
    live_trigger.send(payload(_up_alert(prometheus_history.urls["prometheus"], 0.5)))

    entries = _wait_for(database, "summary")

    forecast = entries["forecast"]
    # `up` is 1 throughout, above the 0.5 threshold already, and the forecast stays near 1.
    assert all(0.9 <= value <= 1.1 for value in forecast.payload["forecast"]["quantiles"]["0.5"])
    assert forecast.payload["breach"]["already_breaching"] is True
    assert forecast.title.startswith("Forecast: already above 0.5; p50 stays above it through the")
    assert "proactive_warning" not in entries


def test_forecast_below_threshold_predicts_no_breach(worker, prometheus_history, live_trigger, database):
    live_trigger.send(payload(_up_alert(prometheus_history.urls["prometheus"], 5)))

    entries = _wait_for(database, "summary")

    breach = entries["forecast"].payload["breach"]
    assert breach["time_to_p50_seconds"] is None
    assert breach["time_to_p90_seconds"] is None
    assert breach["probability"] < 0.1
    assert "proactive_warning" not in entries


def test_runbook_step_stores_answer_with_citation(worker, live_trigger, database):
    live_trigger.send(
        payload(
            alert(
                name="ToyprodLatencySLOBreach",
                annotations={"summary": "toyprod p95 latency is above 250 ms", "runbook_url": RUNBOOK_URL},
            )
        )
    )

    entry = _wait_for(database, "summary")["runbook"]

    assert entry.status == "ok", entry.title
    assert entry.payload["source"] == "ToyprodLatencySLOBreach.md"
    assert entry.payload["source_hint"] == "ToyprodLatencySLOBreach.md"
    assert entry.payload["question"] == "How do I mitigate ToyprodLatencySLOBreach?"
    # The shipped runbook's Mitigation section opens with the command that removes an injected fault.
    assert entry.payload["heading"] == "ToyprodLatencySLOBreach > Mitigation"
    assert entry.payload["kind"] == "command"
    assert "opsseer chaos" in entry.payload["answer"]
    assert 1 <= entry.payload["line_start"] <= entry.payload["line_end"]
    assert entry.payload["heading"]
    assert entry.payload["answer"].strip()
    assert entry.model == entry.payload["model"]
    assert "ToyprodLatencySLOBreach.md" in entry.title


def test_steps_without_gateway_record_not_configured(settings, database, models_env):
    models_env(None)
    episode_id = Trigger(settings, database).send(payload(alert()))["opened_episodes"][0]

    assert enrichment.forecast_breach.apply(args=[episode_id]).get()["status"] == "not_configured"
    assert enrichment.answer_runbook.apply(args=[episode_id]).get()["status"] == "not_configured"

    entries = _entries(database)
    assert "OPSSEER_MODELS_URL" in entries["forecast"].title
    assert entries["runbook"].status == "not_configured"


def test_unreachable_gateway_fails_step_not_pipeline(settings, database, models_env, prometheus_history):
    models_env("http://127.0.0.1:1")
    item = _up_alert(prometheus_history.urls["prometheus"], 0.5)
    episode_id = Trigger(settings, database).send(payload(item))["opened_episodes"][0]

    pipelines.enrichment_canvas(episode_id).apply().get()

    entries = _entries(database)
    for kind in ("forecast", "runbook"):
        assert entries[kind].status == "failed"
        assert "after 3 attempts" in entries[kind].title
        assert "ModelServiceUnavailable" in entries[kind].payload["error"]
        assert "127.0.0.1:1" in entries[kind].payload["error"]
    assert entries["snapshot"].status == "ok"
    assert entries["summary"].payload["steps"]["forecast"] == "failed"


def test_too_short_history_is_skipped_with_the_reason(settings, database, models_env, gateway, prometheus_history):
    # Four seconds at a 2 s step is two points: the forecaster refuses it with 422.
    models_env(gateway, OPSSEER_FORECAST_LOOKBACK_SECONDS="4")
    episode_id = Trigger(settings, database).send(payload(_up_alert(prometheus_history.urls["prometheus"], 0.5)))["opened_episodes"][0]

    assert enrichment.forecast_breach.apply(args=[episode_id]).get()["status"] == "skipped"

    entry = _entries(database)["forecast"]
    assert "insufficient data" in entry.title


def test_runbook_question_adds_summary_only_without_runbook_url():
    with_url = Incident(alertname="DiskFull", annotations={"summary": "disk / is 95% full", "runbook_url": RUNBOOK_URL})
    without_url = Incident(alertname="DiskFull", annotations={"summary": "disk / is 95% full"})

    assert enrichment.runbook_question(with_url) == ("How do I mitigate DiskFull?", "ToyprodLatencySLOBreach.md")
    assert enrichment.runbook_question(without_url) == ("How do I mitigate DiskFull? The alert says: disk / is 95% full", None)
