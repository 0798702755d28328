"""Runbook QA suite on one runbook collection, against the served RunbookQA service."""

from eval import docqa
from eval.suites import EvalContext


def test_suite_scores_served_answers(corpus_dir, tmp_path):
    context = EvalContext(corpus_root=corpus_dir, out_dir=tmp_path, work_dir=tmp_path, limit=4, quick=True,
                          show_progress=False)

    result = docqa.run(context)

    summary = result.summary
    assert summary["questions"] == 4
    for key in ("source_at_1", "source_at_3", "mrr", "answer_hit"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["source_at_1"] <= summary["source_at_3"]
    assert summary["latency_p50_seconds"] <= summary["latency_p95_seconds"]
    for outcome in result.details["questions"]:
        assert outcome["gold_source"].endswith(".md")
        assert not outcome["gold_source"].startswith("runbooks/")
        assert outcome["model"]
        assert outcome["source_at_1"] == (outcome["rank"] == 1)
    assert result.models["runbook_qa"]
    assert "### Misses" in docqa.render(result.to_dict())
