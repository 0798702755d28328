"""Pipeline suite on the real stack: every stage is timed in causal order, and unconfigured steps are marked."""

from pathlib import Path

from eval import pipeline
from eval.suites import EvalContext


def test_pipeline_stage_latencies(stack, worker, prometheus, alertmanager, database, tmp_path):
    context = EvalContext(corpus_root=None, out_dir=tmp_path, work_dir=tmp_path, quick=True, show_progress=False)

    result = pipeline.run(context, stack=stack)

    assert result.summary["failed_runs"] == 0, result.notes
    stages = {row["stage"]: row for row in result.details["stages"]}
    seconds = {name: row["median_seconds"] for name, row in stages.items()}
    for name in ("alert pending in Prometheus", "alert firing in Prometheus", "webhook received", "snapshot",
                 "summary", "fault cleared", "alert resolved in Prometheus", "resolved webhook received", "resolution"):
        assert seconds[name] is not None, f"stage {name} was not measured: {stages[name]}"
    assert 0 <= seconds["alert pending in Prometheus"] <= seconds["alert firing in Prometheus"]
    assert seconds["alert firing in Prometheus"] <= seconds["webhook received"] + 1
    assert seconds["webhook received"] < seconds["snapshot"] <= seconds["summary"]
    assert seconds["fault cleared"] < seconds["alert resolved in Prometheus"] <= seconds["resolved webhook received"] + 1
    assert seconds["resolved webhook received"] <= seconds["resolution"]
    # The alert rule's `for` is 10 s in the demo profile, so firing cannot come sooner.
    assert seconds["alert firing in Prometheus"] - seconds["alert pending in Prometheus"] >= 9
    # The test worker calls the gateway fixture, so both model steps run and record their model.
    for name in ("forecast", "runbook"):
        assert stages[name]["status"] == "ok", stages[name]
        assert seconds["webhook received"] < seconds[name] <= seconds["summary"]
        assert stages[name]["models"]
    # Slack and GitHub are not configured in the tests: reported as such, without a latency.
    for name in ("slack", "github"):
        assert stages[name]["status"] == "not_configured"
        assert stages[name]["median_seconds"] is None
    assert set(result.summary["not_configured"]) >= {"slack", "github"}
    assert (tmp_path / result.plots[0]).stat().st_size > 5000
    assert Path(result.plots[0]).name == "pipeline-latency.png"
