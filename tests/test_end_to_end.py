"""The whole chain on real components: a latency fault in toyprod ends as a resolved incident in PostgreSQL."""

from rich.console import Console
from sqlalchemy import select

from functions.models import Episode, Incident, TimelineEntry
from opsseer.demo import ALERT_NAME, Timeouts, run_demo


def test_latency_fault_becomes_resolved_incident(stack, worker, prometheus, alertmanager, database):
    incident_id = run_demo(stack, Console(quiet=True), Timeouts())

    with database.session() as session:
        incident = session.get(Incident, incident_id)
        episodes = session.scalars(select(Episode).where(Episode.incident_id == incident_id)).all()
        entries = session.scalars(
            select(TimelineEntry).where(TimelineEntry.incident_id == incident_id).order_by(TimelineEntry.id)
        ).all()
    assert incident.alertname == ALERT_NAME
    assert incident.status == "resolved"
    assert incident.labels["service"] == "toyprod"
    assert incident.annotations["runbook_url"].startswith("https://")
    assert len(episodes) == 1
    assert episodes[0].firing_seen is True
    assert 10 < episodes[0].duration_seconds < 300
    statuses = {entry.kind: entry.status for entry in entries}
    assert statuses["snapshot"] == "ok"
    assert statuses["summary"] == "ok"
    assert statuses["resolution"] == "ok"
    assert statuses["forecast"] == "ok"
    assert statuses["runbook"] == "ok"
    by_kind = {entry.kind: entry for entry in entries}
    assert len(by_kind["forecast"].payload["forecast"]["quantiles"]["0.5"]) == by_kind["forecast"].payload["horizon"]
    assert by_kind["forecast"].model
    # The alert's runbook_url names the runbook file, and the answer cites it.
    assert by_kind["runbook"].payload["source"] == "ToyprodLatencySLOBreach.md"
    assert by_kind["runbook"].payload["heading"] == "ToyprodLatencySLOBreach > Mitigation"
    assert [entry.kind for entry in entries][0] == "alert"
