"""Correlation suite: the contract model on known cases, the replay against the real trigger, and the CLI."""

import json
from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import text

from eval import correlation, correlation_contract
from eval.correlation_cases import alert, body, generated_cases, resolved
from eval.suites import EvalContext
from opsseer.cli import cli

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _expect(*bodies: bytes) -> correlation_contract.Expectation:
    return correlation_contract.expect([(item, NOW) for item in bodies])


def test_contract_resolve_before_fire():
    expectation = _expect(body(resolved()), body(alert()))

    incident = expectation.incidents[("fingerprint", "fp-api-latency")]
    assert incident.opened_by_resolved is True
    assert incident.status == "resolved"
    assert len(incident.episodes) == 1
    assert incident.episodes[0].firing_seen is False
    assert expectation.enrichment_pipelines == 0
    assert expectation.resolution_pipelines == 1


def test_contract_refire_and_duplicates():
    from datetime import timedelta

    later = timedelta(minutes=30)
    expectation = _expect(body(alert()), body(alert()), body(resolved()), body(alert(starts=later)), body(alert(starts=later)))

    incident = expectation.incidents[("fingerprint", "fp-api-latency")]
    assert [episode.is_open for episode in incident.episodes] == [False, True]
    assert incident.status == "firing"
    assert expectation.enrichment_pipelines == 2


def test_contract_rejects_invalid_bodies():
    expectation = _expect(b"{not json", b"[]", json.dumps({"version": "4"}).encode(), body(alert()))

    assert expectation.accepted == [False, False, False, True]


def test_contract_label_identity_ignores_order():
    expectation = _expect(
        body(alert(fingerprint=None, labels={"a": "1", "b": "2"})), body(alert(fingerprint=None, labels={"b": "2", "a": "1"}))
    )

    assert list(expectation.incidents) == [("labels", (("a", "1"), ("b", "2")))]


def test_suite_matches_contract_on_every_case(stack, tmp_path, corpus_dir):
    context = EvalContext(corpus_root=corpus_dir, out_dir=tmp_path, work_dir=tmp_path, show_progress=False)

    result = correlation.run(context, database_url=stack.database_url)

    cases = result.details["cases"]
    assert len(cases) >= len(generated_cases()) + 30
    assert [case["case"] for case in cases if case["mismatches"]] == []
    assert result.summary["mismatches"] == 0
    assert result.summary["incidents_expected"] == result.summary["incidents_produced"]
    assert result.summary["incidents_produced"] > 250
    assert "None: every case matches the contract." in correlation.render(result.to_dict())


def test_suite_reports_a_corrupted_store(stack):
    replayer = correlation.Replayer(stack.database_url)
    try:
        replayer.reset()
        bodies = [body(alert()), body(resolved())]
        posted = replayer.replay(bodies)
        with replayer.database.session() as session:
            session.execute(text("UPDATE episodes SET status = 'firing', ended_at = NULL"))
            session.execute(text("UPDATE incidents SET status = 'firing'"))
        produced, deliveries = replayer.produced()
        expected = correlation_contract.expect([(item, at) for item, (_, at) in zip(bodies, posted, strict=True)])
        mismatches = correlation.compare(expected, produced, deliveries, [status for status, _ in posted], replayer.enqueued)
    finally:
        replayer.close()

    assert "fingerprint 'fp-api-latency': expected status resolved, store has firing" in mismatches
    assert "fingerprint 'fp-api-latency' episode 1: expected resolved, store has firing" in mismatches


def test_cli_writes_json_and_report(tmp_path, corpus_dir):
    out = tmp_path / "results"

    outcome = CliRunner().invoke(
        cli, ["eval", "correlation", "--corpus", str(corpus_dir), "--out", str(out), "--limit", "2", "--no-progress"]
    )

    assert outcome.exit_code == 0, outcome.output
    document = json.loads((out / "correlation.json").read_text())
    assert document["summary"]["cases"] == 4
    assert document["summary"]["mismatches"] == 0
    assert document["environment"]["cores"] >= 1
    assert "torch" in document["environment"]["packages"]
    report = (out / "report.md").read_text()
    assert "## Correlation" in report
    assert "| cases | matching |" in report


def test_cli_names_missing_corpus(tmp_path, monkeypatch):
    monkeypatch.delenv("OPSSEER_CORPUS_DIR", raising=False)

    outcome = CliRunner().invoke(cli, ["eval", "correlation", "--out", str(tmp_path)])

    assert outcome.exit_code != 0
    assert "set OPSSEER_CORPUS_DIR or pass --corpus DIR" in outcome.output
