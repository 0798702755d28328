"""Correlation suite: replay webhook streams through the real trigger and PostgreSQL, compare with the contract.

Each case starts from an empty store. Its bodies are posted in order to the app that `opsseer api` serves
(`opsseer.server.create_app`, called in-process through httpx's ASGI transport), with the pipeline enqueue
recorded instead of sent to Celery. The expected incidents come from `eval.correlation_contract`.
"""

import asyncio
import logging
import secrets
import shutil
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterator

import httpx
from pydantic import SecretStr
from sqlalchemy import select, text

from eval import correlation_contract as contract
from eval.correlation_cases import Case, corpus_cases, generated_cases
from eval.report import SuiteResult, table
from eval.suites import EvalContext
from functions.db import Database
from functions.models import Episode, Incident, WebhookDelivery
from functions.settings import Settings
from functions.triggers import WEBHOOK_PATH
from opsseer.postgres import remove_cluster
from opsseer.server import create_app
from opsseer.stack import Ports, Stack

logger = logging.getLogger(__name__)

TITLE = "Correlation: webhook streams against the correlation contract"
TABLES = "incidents, episodes, alerts, timeline_entries, attachments, webhook_deliveries, function_runs"


@contextmanager
def throwaway_postgres(work_dir: Path) -> Iterator[str]:
    """Start a private PostgreSQL through the stack code on a free port and yield its URL; delete it afterwards."""
    state_dir = work_dir / "correlation-stack"
    stack = Stack(state_dir, profile="demo", ports=Ports.free(), echo=False, fast_unsafe_postgres=True)
    try:
        stack.start_postgres()
        yield stack.database_url
    finally:
        stack.stop()
        if stack.cluster is not None:
            remove_cluster(stack.cluster)
        shutil.rmtree(state_dir, ignore_errors=True)


class Replayer:
    """The real trigger app on one database, posting bodies and recording what it enqueued."""

    def __init__(self, database_url: str) -> None:
        self.token = secrets.token_urlsafe(16)
        settings = Settings(
            database_url=database_url,
            # The enqueue below is recorded, so no broker is contacted.
            broker_url="redis://127.0.0.1:1/0",
            webhook_token=SecretStr(self.token),
        )
        self.database = Database(database_url, pool_size=2)
        self.enqueued: list[tuple[list[int], list[int]]] = []
        self.app = create_app(settings, enqueue=lambda opened, resolved: self.enqueued.append((opened, resolved)),
                              database=self.database)

    def reset(self) -> None:
        with self.database.session() as session:
            session.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        self.enqueued.clear()

    async def _post_all(self, bodies: list[bytes]) -> list[tuple[int, datetime]]:
        transport = httpx.ASGITransport(app=self.app)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        results = []
        async with httpx.AsyncClient(transport=transport, base_url="http://trigger.invalid") as client:
            for body in bodies:
                posted_at = datetime.now(UTC)
                response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
                results.append((response.status_code, posted_at))
        return results

    def replay(self, bodies: list[bytes]) -> list[tuple[int, datetime]]:
        return asyncio.run(self._post_all(bodies))

    def produced(self) -> tuple[dict[tuple, dict[str, Any]], int]:
        """Read every incident with its episodes, keyed like the contract's identities, and count the deliveries."""
        with self.database.session() as session:
            incidents = session.scalars(select(Incident).order_by(Incident.id)).all()
            state = {}
            for incident in incidents:
                if incident.fingerprint_source == "labels":
                    key = ("labels", tuple(sorted((name, str(value)) for name, value in incident.labels.items())))
                else:
                    key = ("fingerprint", incident.fingerprint)
                episodes = session.scalars(
                    select(Episode).where(Episode.incident_id == incident.id).order_by(Episode.sequence)
                ).all()
                state[key] = {
                    "status": incident.status,
                    "opened_by_resolved": incident.opened_by_resolved,
                    "first_started_at": incident.first_started_at,
                    "episode_count": incident.episode_count,
                    "episodes": [
                        {"status": e.status, "started_at": e.started_at, "ended_at": e.ended_at, "firing_seen": e.firing_seen}
                        for e in episodes
                    ],
                }
            deliveries = len(session.scalars(select(WebhookDelivery.id)).all())
        return state, deliveries

    def close(self) -> None:
        self.database.dispose()


def _name(identity: tuple) -> str:
    kind, value = identity
    if kind == "fingerprint":
        return f"fingerprint {value!r}"
    return "labels {" + ", ".join(f"{name}={label!r}" for name, label in value) + "}"


def compare(expected: contract.Expectation, produced: dict, deliveries: int, statuses: list[int], enqueued: list) -> list[str]:
    """List every difference between the contract's expectation and the store, one sentence each."""
    mismatches = []
    for index, (accepted, status) in enumerate(zip(expected.accepted, statuses, strict=True)):
        if status >= 500 or accepted != (200 <= status < 300):
            mismatches.append(f"delivery {index + 1}: expected {'2xx' if accepted else '4xx'}, got HTTP {status}")
    if deliveries != sum(expected.accepted):
        mismatches.append(f"expected {sum(expected.accepted)} stored deliveries, store has {deliveries}")

    for identity in expected.incidents.keys() - produced.keys():
        mismatches.append(f"missing incident for {_name(identity)}")
    for identity in produced.keys() - expected.incidents.keys():
        mismatches.append(f"unexpected incident for {_name(identity)}")
    for identity, want in expected.incidents.items():
        got = produced.get(identity)
        if got is None:
            continue
        mismatches += _compare_incident(_name(identity), want, got)

    opened = sum(len(item[0]) for item in enqueued)
    resolved = sum(len(item[1]) for item in enqueued)
    if opened != expected.enrichment_pipelines:
        mismatches.append(f"expected {expected.enrichment_pipelines} enrichment pipelines enqueued, got {opened}")
    if resolved != expected.resolution_pipelines:
        mismatches.append(f"expected {expected.resolution_pipelines} resolution pipelines enqueued, got {resolved}")
    return mismatches


def _compare_incident(name: str, want: contract.ExpectedIncident, got: dict) -> list[str]:
    problems = []
    if got["status"] != want.status:
        problems.append(f"{name}: expected status {want.status}, store has {got['status']}")
    if got["opened_by_resolved"] != want.opened_by_resolved:
        problems.append(f"{name}: expected opened_by_resolved={want.opened_by_resolved}, store has {got['opened_by_resolved']}")
    if len(got["episodes"]) != len(want.episodes) or got["episode_count"] != len(want.episodes):
        problems.append(
            f"{name}: expected {len(want.episodes)} episodes, store has {len(got['episodes'])} "
            f"(episode_count {got['episode_count']})"
        )
        return problems
    first = want.episodes[0]
    if not contract.close_enough(first.started_at, got["first_started_at"], first.start_known):
        problems.append(f"{name}: expected first start {first.started_at}, store has {got['first_started_at']}")
    for sequence, (episode, row) in enumerate(zip(want.episodes, got["episodes"], strict=True), start=1):
        status = "firing" if episode.is_open else "resolved"
        if row["status"] != status:
            problems.append(f"{name} episode {sequence}: expected {status}, store has {row['status']}")
        if not contract.close_enough(episode.started_at, row["started_at"], episode.start_known):
            problems.append(f"{name} episode {sequence}: expected start {episode.started_at}, store has {row['started_at']}")
        if episode.ended_at is not None and not contract.close_enough(episode.ended_at, row["ended_at"], episode.end_known):
            problems.append(f"{name} episode {sequence}: expected end {episode.ended_at}, store has {row['ended_at']}")
        if row["firing_seen"] != episode.firing_seen:
            problems.append(f"{name} episode {sequence}: expected firing_seen={episode.firing_seen}, store has {row['firing_seen']}")
    return problems


def run_case(replayer: Replayer, case: Case) -> dict[str, Any]:
    replayer.reset()
    posted = replayer.replay(case.bodies)
    expected = contract.expect([(body, at) for body, (_, at) in zip(case.bodies, posted, strict=True)])
    produced, deliveries = replayer.produced()
    statuses = [status for status, _ in posted]
    mismatches = compare(expected, produced, deliveries, statuses, replayer.enqueued)
    return {
        "case": case.name,
        "source": case.source,
        "description": case.description,
        "deliveries": len(case.bodies),
        "rejected_expected": expected.accepted.count(False),
        "rejected_produced": sum(1 for status in statuses if not 200 <= status < 300),
        "incidents_expected": len(expected.incidents),
        "incidents_produced": len(produced),
        "episodes_expected": sum(len(incident.episodes) for incident in expected.incidents.values()),
        "episodes_produced": sum(len(incident["episodes"]) for incident in produced.values()),
        "firing_expected": sum(1 for incident in expected.incidents.values() if incident.status == "firing"),
        "firing_produced": sum(1 for incident in produced.values() if incident["status"] == "firing"),
        "http_statuses": statuses,
        "mismatches": mismatches,
    }


def run_cases(context: EvalContext, cases: list[Case], database_url: str) -> list[dict[str, Any]]:
    replayer = Replayer(database_url)
    try:
        return [run_case(replayer, case) for case in context.progress(cases, "correlation cases", total=len(cases))]
    finally:
        replayer.close()


def run(context: EvalContext, *, database_url: str | None = None) -> SuiteResult:
    """Replay every case; with no database_url, start a throwaway PostgreSQL for the run."""
    cases = context.limited(corpus_cases(context.corpus())) + context.limited(generated_cases())
    if database_url is not None:
        outcomes = run_cases(context, cases, database_url)
    else:
        with throwaway_postgres(context.work_dir) as url:
            outcomes = run_cases(context, cases, url)

    passed = sum(1 for outcome in outcomes if not outcome["mismatches"])
    mismatches = sum(len(outcome["mismatches"]) for outcome in outcomes)
    summary = {
        "cases": len(outcomes),
        "cases_matching": passed,
        "mismatches": mismatches,
        "deliveries": sum(outcome["deliveries"] for outcome in outcomes),
        "incidents_expected": sum(outcome["incidents_expected"] for outcome in outcomes),
        "incidents_produced": sum(outcome["incidents_produced"] for outcome in outcomes),
        "episodes_expected": sum(outcome["episodes_expected"] for outcome in outcomes),
        "episodes_produced": sum(outcome["episodes_produced"] for outcome in outcomes),
        "headline": f"{passed}/{len(outcomes)} cases match the contract, {mismatches} mismatches",
    }
    return SuiteResult(suite="correlation", title=TITLE, options=context.options(), summary=summary,
                       details={"cases": outcomes})


def render(result: dict[str, Any]) -> str:
    summary = result["summary"]
    cases = result["details"]["cases"]
    lines = [
        "Each case is posted to an empty store through the real trigger (`opsseer.server.create_app`) and PostgreSQL.",
        "The expected incidents and episodes come from a reference model of the correlation contract",
        "(`eval/correlation_contract.py`), which shares no code with `functions/`.",
        "",
        table(
            ["cases", "matching", "deliveries", "incidents expected", "incidents produced", "episodes expected",
             "episodes produced", "mismatches"],
            [[summary["cases"], summary["cases_matching"], summary["deliveries"], summary["incidents_expected"],
              summary["incidents_produced"], summary["episodes_expected"], summary["episodes_produced"],
              summary["mismatches"]]],
        ),
        "",
        "### Cases",
        "",
        table(
            ["case", "source", "deliveries", "rejected exp/got", "incidents exp/got", "episodes exp/got",
             "firing exp/got", "mismatches"],
            [
                [c["case"], c["source"], c["deliveries"], f"{c['rejected_expected']}/{c['rejected_produced']}",
                 f"{c['incidents_expected']}/{c['incidents_produced']}", f"{c['episodes_expected']}/{c['episodes_produced']}",
                 f"{c['firing_expected']}/{c['firing_produced']}", len(c["mismatches"])]
                for c in cases
            ],
        ),
        "",
        "### Mismatches",
        "",
    ]
    listed = [f"- {c['case']}: {problem}" for c in cases for problem in c["mismatches"]]
    lines += listed or ["None: every case matches the contract."]
    return "\n".join(lines) + "\n"
