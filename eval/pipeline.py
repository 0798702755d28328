"""Pipeline suite: time from an injected fault to each stage of an incident, on the real local stack.

It runs what `opsseer demo` runs: the demo profile, 25 requests/s at toyprod and 400 ms of extra latency. It
reads when each stage happened from three places. Prometheus' ALERTS series gives the alert's pending and
firing samples, the stored alert rows give the webhooks' arrival, and each step's run record or timeline
entry gives its time.
Steps whose service is not configured are reported as such, never as a latency of zero.
"""

import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from eval import plots
from eval.report import SuiteResult, table
from eval.suites import EvalContext
from functions.db import Database
from functions.models import (
    Alert,
    FunctionRun,
    TimelineEntry,
)
from functions.prometheus import PrometheusClient
from opsseer.demo import (
    ALERT_NAME,
    FAULT_LATENCY_MS,
    LOAD_RATE_PER_S,
    entry_exists,
    episode_resolved,
    latest_episode_id,
    new_episode,
)
from opsseer.stack import Ports, Stack
from toyprod.load import run_load

logger = logging.getLogger(__name__)

TITLE = "Pipeline: fault-to-stage latency on the local stack"
BASELINE_SECONDS = 20
QUICK_BASELINE_SECONDS = 5
DEFAULT_RUNS = 3
POLL_SECONDS = 0.5

# The task that writes each step's entry. Its run record's finished_at is taken after the step committed,
# whereas the entry's occurred_at is PostgreSQL's now(), the start of the step's transaction.
STEP_TASKS = {
    "snapshot": "opsseer.capture_snapshot",
    "forecast": "opsseer.forecast_breach",
    "runbook": "opsseer.answer_runbook",
    "slack": "opsseer.post_slack_root",
    "github": "opsseer.sync_github_issue",
    "summary": "opsseer.summarize_episode",
    "resolution": "opsseer.record_resolution",
    "slack_resolved": "opsseer.update_slack_root",
    "github_resolved": "opsseer.close_github_issue",
}
# Report order of the stages; entries of other kinds (integrations added later) follow in time order.
STAGE_ORDER = [
    "alert pending in Prometheus",
    "alert firing in Prometheus",
    "webhook received",
    "snapshot",
    "forecast",
    "proactive_warning",
    "runbook",
    "slack",
    "github",
    "summary",
    "fault cleared",
    "alert resolved in Prometheus",
    "resolved webhook received",
    "resolution",
    "slack_resolved",
    "github_resolved",
]
RESOLVE_STAGES = {
    "fault cleared", "alert resolved in Prometheus", "resolved webhook received", "resolution", "slack_resolved",
    "github_resolved",
}
# The resolution canvas ends with these notification steps, which run after the resolution entry.
RESOLVED_NOTIFICATIONS = ("slack_resolved", "github_resolved")


@dataclass
class Timeouts:
    alert_firing: float = 90.0
    webhook: float = 120.0
    enrichment: float = 120.0
    resolve: float = 150.0


class StageTimeout(RuntimeError):
    pass


def _wait(stage: str, timeout: float, probe):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StageTimeout(f"{stage} did not happen within {timeout:g} s")
        time.sleep(POLL_SECONDS)


def _new_episode_id(database: Database, after_id: int) -> int | None:
    episode = new_episode(database, after_id)
    return episode.id if episode else None


def _alert_transitions(prometheus: PrometheusClient, start: datetime, end: datetime) -> dict[str, float | None]:
    """Return when ALERTS first showed the demo alert pending and firing, and its last firing sample."""
    series = prometheus.query_range(
        f'ALERTS{{alertname="{ALERT_NAME}"}}', start=start, end=end, step_seconds=1
    )
    times: dict[str, list[float]] = {"pending": [], "firing": []}
    for item in series:
        state = item.labels.get("alertstate")
        if state in times:
            times[state] += [stamp for stamp, value in zip(item.timestamps, item.values) if value == 1]
    return {
        "pending": min(times["pending"], default=None),
        "firing": min(times["firing"], default=None),
        "last_firing": max(times["firing"], default=None),
    }


def _stage_times(database: Database, episode_id: int) -> tuple[dict[str, datetime], list[dict[str, Any]]]:
    """Return the webhook arrival times and every timeline entry of the episode with its completion time."""
    with database.session() as session:
        alerts = session.execute(
            select(Alert.outcome, Alert.received_at).where(Alert.episode_id == episode_id).order_by(Alert.id)
        ).all()
        entries = session.scalars(
            select(TimelineEntry).where(TimelineEntry.episode_id == episode_id).order_by(TimelineEntry.id)
        ).all()
        runs = session.execute(
            select(FunctionRun.task_name, FunctionRun.finished_at)
            .where(FunctionRun.episode_id == episode_id, FunctionRun.finished_at.is_not(None))
            .order_by(FunctionRun.id)
        ).all()
        finished = {name: at for name, at in runs}
        webhooks = {}
        for outcome, received_at in alerts:
            if outcome in ("opened", "reopened"):
                webhooks.setdefault("webhook received", received_at)
            elif outcome == "resolved":
                webhooks.setdefault("resolved webhook received", received_at)
        prefix = f"episode:{episode_id}:"
        recorded = [
            {
                # The step name from the entry's key: a step may write an entry of another kind (the GitHub
                # close step writes kind "github" under the key of step "github_resolved").
                "stage": entry.idempotency_key.removeprefix(prefix) if entry.idempotency_key.startswith(prefix) else entry.kind,
                "status": entry.status,
                "title": entry.title,
                "model": entry.model,
                "at": entry.occurred_at,
            }
            for entry in entries
            if entry.kind != "alert"
        ]
        # NOTE: a step without a run record (proactive_warning, or a task missing from STEP_TASKS) is timed by
        # its entry's occurred_at, the start of its transaction, so it can read earlier than the step finished.
        for item in recorded:
            task = STEP_TASKS.get(item["stage"])
            item["time_source"] = "run finished" if task in finished else "entry occurred_at"
            item["at"] = finished.get(task, item["at"])
    return webhooks, recorded


def run_once(stack: Stack, timeouts: Timeouts, baseline_seconds: float) -> dict[str, Any]:
    """Inject one fault, follow the incident to its resolve, and return each stage's seconds since the fault."""
    toyprod = httpx.Client(base_url=stack.urls["toyprod"], timeout=5)
    prometheus = PrometheusClient(stack.urls["prometheus"])
    database = Database(stack.database_url, pool_size=2)
    stop_load = threading.Event()
    load = threading.Thread(
        target=run_load,
        kwargs={"url": f"{stack.urls['toyprod']}/orders", "rate_per_s": LOAD_RATE_PER_S, "duration_s": 900,
                "concurrency": 32, "progress": False, "stop_event": stop_load},
        name="eval-pipeline-load",
        daemon=True,
    )
    outcome: dict[str, Any] = {"error": None}
    cleared_at = None
    try:
        load.start()
        time.sleep(baseline_seconds)
        baseline = latest_episode_id(database)
        fault_at = datetime.now(UTC)
        toyprod.put("/chaos", json={"latency_ms": FAULT_LATENCY_MS}).raise_for_status()
        outcome["fault_at"] = fault_at.isoformat()
        try:
            episode_id = _wait("the webhook opening a new episode", timeouts.webhook, lambda: _new_episode_id(database, baseline))
            outcome["episode_id"] = episode_id
            _wait("the summary entry", timeouts.enrichment, lambda: entry_exists(database, episode_id, "summary"))
        finally:
            toyprod.delete("/chaos").raise_for_status()
            cleared_at = datetime.now(UTC)
        _wait("the resolved notification", timeouts.resolve, lambda: episode_resolved(database, episode_id))
        _wait("the resolution entry", timeouts.enrichment, lambda: entry_exists(database, episode_id, "resolution"))
        # The resolved notification steps run after the resolution entry; give them a few seconds.
        try:
            _wait("the resolved notification entries", 15,
                  lambda: all(entry_exists(database, episode_id, step) for step in RESOLVED_NOTIFICATIONS))
        except StageTimeout:
            logger.info("episode %s: resolved notification entries not all written within 15 s", episode_id)
    except StageTimeout as exc:
        outcome["error"] = str(exc)
        logger.warning("pipeline run stopped: %s", exc)
    finally:
        stop_load.set()
        load.join(timeout=15)
        toyprod.close()

    try:
        stages = []
        fault_at = datetime.fromisoformat(outcome["fault_at"])
        transitions = _alert_transitions(prometheus, fault_at - timedelta(seconds=5), datetime.now(UTC))
        for name, key in (("alert pending in Prometheus", "pending"), ("alert firing in Prometheus", "firing")):
            stages.append(_stage(name, "ok" if transitions[key] else "missing", transitions[key], fault_at))
        if cleared_at is not None:
            stages.append(_stage("fault cleared", "ok", cleared_at.timestamp(), fault_at))
            # ALERTS has a sample per evaluation while firing, so the alert ended one evaluation after its last one.
            last = transitions["last_firing"]
            ended = last + 1 if last is not None and last > cleared_at.timestamp() else None
            stages.append(_stage("alert resolved in Prometheus", "ok" if ended else "missing", ended, fault_at))
        if outcome.get("episode_id"):
            webhooks, entries = _stage_times(database, outcome["episode_id"])
            for name, at in webhooks.items():
                stages.append(_stage(name, "ok", at.timestamp(), fault_at))
            for entry in entries:
                stages.append(_stage(entry["stage"], entry["status"], entry["at"].timestamp(), fault_at,
                                     model=entry["model"], title=entry["title"], time_source=entry["time_source"]))
        outcome["stages"] = sorted(stages, key=_stage_rank)
    finally:
        prometheus.close()
        database.dispose()
    return outcome


def _stage(name: str, status: str, at: float | None, fault_at: datetime, **extra: Any) -> dict[str, Any]:
    seconds = None if at is None else round(at - fault_at.timestamp(), 2)
    return {"stage": name, "status": status, "seconds_since_fault": seconds, **extra}


def _stage_rank(stage: dict[str, Any]) -> tuple[int, float]:
    rank = STAGE_ORDER.index(stage["stage"]) if stage["stage"] in STAGE_ORDER else len(STAGE_ORDER)
    return rank, stage["seconds_since_fault"] if stage["seconds_since_fault"] is not None else 0.0


def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Combine runs per stage: the median seconds over runs where the stage ran, and each status seen."""
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for stage in run.get("stages", []):
            by_stage.setdefault(stage["stage"], []).append(stage)
    rows = []
    for name, items in by_stage.items():
        statuses = sorted({item["status"] for item in items})
        # A step that is not configured or failed has a time of writing, but no latency worth reporting.
        timed = [item["seconds_since_fault"] for item in items if item["status"] == "ok" and item["seconds_since_fault"] is not None]
        rows.append({
            "stage": name,
            "phase": "resolve" if name in RESOLVE_STAGES else "fire",
            "status": "/".join(statuses),
            "runs": len(items),
            "median_seconds": statistics.median(timed) if timed else None,
            "min_seconds": min(timed) if timed else None,
            "max_seconds": max(timed) if timed else None,
            "models": sorted({item["model"] for item in items if item.get("model")}),
        })
    return sorted(rows, key=lambda row: _stage_rank({"stage": row["stage"], "seconds_since_fault": row["median_seconds"]}))


def run(context: EvalContext, *, stack: Stack | None = None, timeouts: Timeouts | None = None) -> SuiteResult:
    """Run the fault injections on `stack`, or on a full stack started for the run in the work directory."""
    run_count = 1 if context.quick else min(context.limit or DEFAULT_RUNS, DEFAULT_RUNS)
    baseline = QUICK_BASELINE_SECONDS if context.quick else BASELINE_SECONDS
    own_stack = stack is None
    if own_stack:
        stack = Stack(context.work_dir / "pipeline-stack", profile="demo", ports=Ports.free(), echo=False,
                      fast_unsafe_postgres=True)
        stack.start()
    models_url = stack.settings_env().get("OPSSEER_MODELS_URL")
    try:
        runs = [run_once(stack, timeouts or Timeouts(), baseline)
                for _ in context.progress(range(run_count), "fault injections", total=run_count)]
    finally:
        if own_stack:
            stack.stop()

    stages = aggregate(runs)
    plot = plots.stage_latencies(stages, context.plots_dir / "pipeline-latency.png", runs=len(runs))
    not_configured = [row["stage"] for row in stages if "not_configured" in row["status"]]
    firing = next((row for row in stages if row["stage"] == "alert firing in Prometheus"), None)
    summary_stage = next((row for row in stages if row["stage"] == "summary"), None)
    errors = [run["error"] for run in runs if run.get("error")]
    headline = (
        f"firing after {_seconds(firing)}, summary after {_seconds(summary_stage)} "
        f"(median of {len(runs)} runs); not configured: {', '.join(not_configured) or 'none'}"
    )
    notes = [f"run stopped: {error}" for error in errors]
    if not models_url:
        notes.append("no model gateway configured (OPSSEER_MODELS_URL unset), so forecast and runbook steps record not_configured")
    # The notification stages are timed against whatever API the settings name, which may be a local fake.
    for service, variable in (("Slack", "OPSSEER_SLACK_API_URL"), ("GitHub", "OPSSEER_GITHUB_API_URL")):
        if os.environ.get(variable):
            notes.append(f"{service} steps called the API at {os.environ[variable]} ({variable})")
    return SuiteResult(
        suite="pipeline",
        title=TITLE,
        options=context.options(runs=run_count, baseline_seconds=baseline, fault_latency_ms=FAULT_LATENCY_MS,
                                load_rate_per_s=LOAD_RATE_PER_S),
        summary={"runs": len(runs), "failed_runs": len(errors), "not_configured": not_configured, "headline": headline},
        details={"stages": stages, "runs": runs},
        plots=[plot],
        notes=notes,
    )


def _seconds(row: dict[str, Any] | None) -> str:
    if row is None or row["median_seconds"] is None:
        return "— (did not happen)"
    return f"{row['median_seconds']:.1f} s"


def render(result: dict[str, Any]) -> str:
    stages = result["details"]["stages"]
    lines = [
        f"Fault: {result['options']['fault_latency_ms']} ms of extra latency in toyprod under "
        f"{result['options']['load_rate_per_s']} requests/s, after {result['options']['baseline_seconds']} s of healthy "
        "traffic, demo profile (1 s scrapes, alert `for: 10s`). Times are seconds since the fault was injected;",
        "the fault is cleared once the summary entry exists. Prometheus stages come from the ALERTS series (1 s",
        "resolution), webhooks from the stored alert rows, steps from their task's finish time.",
        "",
        table(
            ["stage", "status", "runs", "median s", "min s", "max s", "model"],
            [[row["stage"], row["status"], row["runs"],
              row["median_seconds"] if row["median_seconds"] is not None else "not measured",
              row["min_seconds"], row["max_seconds"], ", ".join(row["models"]) or "—"] for row in stages],
            digits=1,
        ),
        "",
        f"![stage latencies]({result['plots'][0]})" if result["plots"] else "",
    ]
    return "\n".join(lines) + "\n"
