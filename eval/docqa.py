"""Runbook QA suite: the corpus question set against the real RunbookQA service over HTTP.

The service (`bentos.docqa.service:RunbookQA`) is served with `bentoml serve` through `opsseer.bento.served`,
indexing the corpus runbooks (OPSSEER_RUNBOOK_DIR). Each question is sent alone, so its latency is one
request's round trip measured by the client, including HTTP and any batching wait. One warm-up question goes
first and is not counted.
"""

import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx

from eval import metrics, plots
from eval.report import SuiteResult, table
from eval.suites import EvalContext, require_service

logger = logging.getLogger(__name__)

TITLE = "Runbook QA: corpus questions over the corpus runbooks"
SERVICE = "bentos.docqa.service:RunbookQA"
QUESTIONS = "docqa/questions.jsonl"
RUNBOOKS = "runbooks"
# --quick indexes one collection only (118 small files), so the service starts in seconds; the questions are
# then those whose gold source lies in it. Fewer distractors make this an easier test than the full run.
QUICK_RUNBOOKS = "runbooks/prometheus-operator-runbooks"
# The ranking depth requested, so MRR counts ranks up to 10 (the service allows up to 20 by default).
TOP_K = 10
# Embedding the whole corpus of runbooks (or loading Whisper) on a busy 2-core machine took minutes.
STARTUP_TIMEOUT_SECONDS = 900
REQUEST_TIMEOUT_SECONDS = 120


def ask(client: httpx.Client, question: str) -> tuple[dict[str, Any], float]:
    """Ask one question and return the answer with the request's seconds."""
    started = time.perf_counter()
    response = client.post("/answer", json={"questions": [{"question": question, "top_k": TOP_K, "source_hint": None}]})
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"runbook QA returned HTTP {response.status_code} for {question!r}: {response.text[:300]}")
    return response.json()[0], elapsed


def evaluate(item: dict[str, Any], answer: dict[str, Any], seconds: float, corpus_root: Path, runbook_dir: Path) -> dict[str, Any]:
    """Score one returned answer against the question's gold source file and gold answer text."""
    gold_source = str((corpus_root / item["source"]).resolve().relative_to(runbook_dir))
    ranked = [answer["source"]] + [hit["source"] for hit in answer.get("hits", [])]
    rank = metrics.first_relevant_rank(ranked, gold_source)
    return {
        "question": item["question"],
        "gold_answer": item["answer"],
        "gold_source": gold_source,
        "answer": answer["answer"],
        "source": answer["source"],
        "heading": answer.get("heading"),
        "kind": answer.get("kind"),
        "score": answer.get("score"),
        "rank": rank,
        "source_at_1": metrics.hit_at(rank, 1),
        "source_at_3": metrics.hit_at(rank, 3),
        "answer_hit": metrics.answer_hit(item["answer"], answer["answer"]),
        "answer_in_passages": any(metrics.answer_hit(item["answer"], hit.get("text", "")) for hit in answer.get("hits", [])),
        "seconds": seconds,
        "model": answer.get("model"),
    }


def run(context: EvalContext) -> SuiteResult:
    require_service(SERVICE, "runbook QA")
    corpus = context.corpus()
    runbooks = QUICK_RUNBOOKS if context.quick else RUNBOOKS
    runbook_dir = corpus.path(runbooks).resolve()
    questions = [
        item for item in corpus.jsonl(QUESTIONS) if (corpus.root / item["source"]).resolve().is_relative_to(runbook_dir)
    ]
    questions = context.limited(questions)
    env = {"OPSSEER_RUNBOOK_DIR": str(runbook_dir), "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}

    from opsseer.bento import served

    log_dir = context.work_dir / "docqa-logs"
    started = time.perf_counter()
    with served(SERVICE, log_dir, env=env, ready_timeout=STARTUP_TIMEOUT_SECONDS) as url:
        startup_seconds = time.perf_counter() - started
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS) as client:
            ask(client, "How do I check the health of the cluster?")
            outcomes = []
            for item in context.progress(questions, "runbook questions", total=len(questions)):
                answer, seconds = ask(client, item["question"])
                outcomes.append(evaluate(item, answer, seconds, corpus.root, runbook_dir))

    count = len(outcomes)
    latencies = [outcome["seconds"] for outcome in outcomes]
    summary = {
        "questions": count,
        "source_at_1": sum(o["source_at_1"] for o in outcomes) / count,
        "source_at_3": sum(o["source_at_3"] for o in outcomes) / count,
        "mrr": metrics.mean_reciprocal_rank(o["rank"] for o in outcomes),
        "answer_hit": sum(o["answer_hit"] for o in outcomes) / count,
        "answer_in_passages": sum(o["answer_in_passages"] for o in outcomes) / count,
        "latency_p50_seconds": metrics.percentile(latencies, 50),
        "latency_p95_seconds": metrics.percentile(latencies, 95),
        "startup_seconds": startup_seconds,
    }
    summary["headline"] = (
        f"source@1 {summary['source_at_1']:.2f}, source@3 {summary['source_at_3']:.2f}, MRR {summary['mrr']:.2f}, "
        f"answer-hit {summary['answer_hit']:.2f} on {count} questions; p50 {summary['latency_p50_seconds'] * 1000:.0f} ms"
    )
    models = sorted({o["model"] for o in outcomes if o["model"]})
    plot = plots.histogram([value * 1000 for value in latencies], title="Runbook QA latency per question",
                           xlabel="milliseconds (client side, one question per request)",
                           path=context.plots_dir / "docqa-latency.png")
    return SuiteResult(
        suite="docqa", title=TITLE, options=context.options(top_k=TOP_K, runbook_dir=runbooks), summary=summary,
        details={"questions": outcomes, "runbook_files": sum(1 for _ in runbook_dir.rglob("*.md"))},
        plots=[plot], models={"runbook_qa": ", ".join(models)},
    )


def render(result: dict[str, Any]) -> str:
    summary = result["summary"]
    outcomes = result["details"]["questions"]
    misses = [o for o in outcomes if not (o["source_at_1"] and o["answer_hit"])]
    lines = [
        f"{summary['questions']} questions from the corpus (`{QUESTIONS}`) over {result['details']['runbook_files']} "
        f"Markdown runbooks (`{result['options']['runbook_dir']}/`), served by `{SERVICE}` and asked over HTTP with top_k "
        f"{result['options']['top_k']}.",
        "",
        "- **source@k**: the gold runbook file is among the first k distinct files (the cited answer's file first,",
        "  then the retrieved passages' files). **MRR**: mean of 1/rank of the gold file, 0 when it is not returned.",
        f"- **answer-hit**: the gold answer appears in the returned answer span after normalisation: "
        f"{metrics.ANSWER_NORMALISATION}",
        "- **answer in passages**: the same test against the text of any returned passage (retrieval ceiling).",
        "- **latency**: one question per request, measured by the client after one warm-up question.",
        "",
        table(["questions", "source@1", "source@3", "MRR", "answer-hit", "answer in passages", "p50 ms", "p95 ms",
               "start-up s"],
              [[summary["questions"], summary["source_at_1"], summary["source_at_3"], summary["mrr"],
                summary["answer_hit"], summary["answer_in_passages"], summary["latency_p50_seconds"] * 1000,
                summary["latency_p95_seconds"] * 1000, summary["startup_seconds"]]]),
        "",
        f"### Misses ({len(misses)}: wrong file at rank 1 or gold answer not in the span)",
        "",
        table(["question", "gold source", "rank", "returned source", "gold answer", "returned answer"],
              [[o["question"], o["gold_source"], o["rank"], o["source"], o["gold_answer"], o["answer"][:200]]
               for o in misses]) if misses else "None.",
        "",
        *[f"![latency]({path})" for path in result["plots"]],
    ]
    return "\n".join(lines) + "\n"
