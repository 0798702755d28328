"""Benchmark runbook question answering: index build time, answer quality on the corpus, served latency and throughput.

In this process: loads the embedding model, then builds the index of the project's runbooks and of the corpus
runbooks and times each build, and answers the corpus question set (source@1, source@3). Then serves
`bentos.docqa.service:RunbookQA` over the project's runbooks with `bentoml serve` on a free loopback port and
measures single-question latency (one request at a time) and throughput with concurrent clients, while a
sampler records the peak resident memory of the served process tree. Writes bench/results/docqa.md and .json.

Usage: python bench/docqa.py [--corpus-dir DIR] [--requests N] [--clients 1,4,16] [--seconds S]
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.progress import Progress

from bentos.docqa.engine import RunbookAnswerer
from bentos.docqa.retrieval import Embedder
from bentos.docqa.schemas import Question
from bentos.docqa.settings import DEFAULT_RUNBOOK_DIR, DocQASettings, default_embedding_model
from opsseer.bento import served

RESULTS_DIR = Path(__file__).resolve().parent / "results"
console = Console()

QUESTIONS = [
    "How do I mitigate ToyprodLatencySLOBreach?",
    "How do I mitigate ToyprodErrorBudgetBurn?",
    "How do I triage ToyprodLatencySLOBreach?",
    "How do I check whether a fault is injected into toyprod?",
    "How do I silence ToyprodErrorBudgetBurn during a planned chaos exercise?",
    "When should I escalate a latency breach?",
    "What burn rate triggers the page for the error budget?",
    "How do I confirm that toyprod's latency recovered?",
    "How do I restart toyprod under compose?",
    "Which query shows the p95 latency of /orders?",
    "What does the latency SLO require?",
    "Why did the alert resolve although nothing was fixed?",
]


def percentile(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


class MemorySampler(threading.Thread):
    """Record the peak summed RSS of this process's child process tree (the served service), every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_bytes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._stop_event.wait(0.2):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    continue
            self.peak_bytes = max(self.peak_bytes, total)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def build_indexes(corpus_dir: Path | None) -> dict:
    started = time.perf_counter()
    embedder = Embedder(default_embedding_model())
    results: dict = {"model": embedder.label, "device": embedder.device, "model_load_seconds": time.perf_counter() - started}

    targets = [("project", DEFAULT_RUNBOOK_DIR)]
    if corpus_dir:
        targets.append(("corpus", corpus_dir / "runbooks"))
    answerers = {}
    for name, root in targets:
        console.print(f"building the {name} index from {root}")
        started = time.perf_counter()
        answerer = RunbookAnswerer(DocQASettings(runbook_dir=root), embedder=embedder)
        results[f"{name}_index"] = {
            "files": len(list(root.rglob("*.md"))),
            "chunks": len(answerer.index.chunks),
            "seconds": time.perf_counter() - started,
        }
        answerers[name] = answerer

    if corpus_dir:
        lines = (corpus_dir / "docqa" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        started = time.perf_counter()
        answers = answerers["corpus"].answer([Question(question=row["question"]) for row in rows])
        seconds = time.perf_counter() - started
        expected = [row["source"].removeprefix("runbooks/") for row in rows]
        results["corpus_questions"] = {
            "questions": len(rows),
            "seconds": seconds,
            "source_at_1": sum(answer.source == source for answer, source in zip(answers, expected)) / len(rows),
            "source_at_3": sum(source in [hit.source for hit in answer.hits] for answer, source in zip(answers, expected)) / len(rows),
            "answer_contains_reference": sum(row["answer"].lower() in answer.answer.lower() for row, answer in zip(rows, answers)) / len(rows),
        }
    return results


def ask(client: httpx.Client, url: str, questions: list[str]) -> float:
    started = time.perf_counter()
    response = client.post(f"{url}/answer", json={"questions": [{"question": question} for question in questions]})
    response.raise_for_status()
    assert len(response.json()) == len(questions)
    return time.perf_counter() - started


def single_latency(url: str, requests: int) -> dict:
    """Time one-question requests sent one at a time; the first pass over QUESTIONS fills the span cache."""
    latencies = []
    with httpx.Client(timeout=60) as client, Progress(console=console, transient=True) as progress:
        task = progress.add_task("single questions", total=requests)
        for index in range(requests):
            latencies.append(ask(client, url, [QUESTIONS[index % len(QUESTIONS)]]))
            progress.advance(task)
    cold, warm = latencies[: len(QUESTIONS)], latencies[len(QUESTIONS) :] or latencies
    return {
        "requests": requests,
        "cold_p50_ms": percentile(cold, 0.5) * 1000,
        "p50_ms": percentile(warm, 0.5) * 1000,
        "p95_ms": percentile(warm, 0.95) * 1000,
        "mean_ms": statistics.fmean(warm) * 1000,
    }


def throughput(url: str, clients: int, seconds: float) -> dict:
    """Send one-question requests back to back from each client for `seconds`; BentoML merges them into batches."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=60) as client:
            index = offset
            while time.perf_counter() < deadline:
                try:
                    latency = ask(client, url, [QUESTIONS[index % len(QUESTIONS)]])
                except httpx.HTTPError:
                    with lock:
                        errors += 1
                    continue
                with lock:
                    latencies.append(latency)
                index += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client_loop, range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "seconds": elapsed,
        "questions": len(latencies),
        "questions_per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000 if latencies else None,
        "p95_ms": percentile(latencies, 0.95) * 1000 if latencies else None,
        "errors": errors,
    }


def write_report(results: dict) -> None:
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "docqa.json").write_text(json.dumps(results, indent=2) + "\n")
    index_rows = [
        f"| {name} | {results[key]['files']} | {results[key]['chunks']} | {results[key]['seconds']:.1f} |"
        for name, key in (("project (alerting/runbooks)", "project_index"), ("corpus (corpus/runbooks)", "corpus_index"))
        if key in results
    ]
    single = results["single"]
    lines = [
        "# Runbook question-answering benchmark",
        "",
        f"Run {results['started']} on {results['machine']} with `python bench/docqa.py`. Model "
        f"{results['model']} on {results['device']}. The numbers come from one run on a machine shared with other "
        f"work (load average {results['load_average_1m_at_start']:.1f} over 1 minute at the start, "
        f"{results['load_average_5m_at_end']:.1f} over 5 minutes at the end), so compare rows of the same run.",
        "",
        "## Index build",
        "",
        f"Loading the embedding model took {results['model_load_seconds']:.1f} s. Building an index chunks every "
        "Markdown file, fits BM25 and embeds every chunk once.",
        "",
        "| runbooks | files | chunks | seconds |",
        "|---|---:|---:|---:|",
        *index_rows,
        "",
    ]
    if "corpus_questions" in results:
        quality = results["corpus_questions"]
        lines += [
            "## Answers on the corpus question set",
            "",
            f"{quality['questions']} questions from corpus/docqa/questions.jsonl against the whole corpus index, "
            f"answered as one batch in {quality['seconds']:.1f} s. source@k: the expected file is among the "
            "first k hits. The last column counts answers whose text contains the reference answer.",
            "",
            "| source@1 | source@3 | answer contains reference |",
            "|---:|---:|---:|",
            f"| {quality['source_at_1']:.2f} | {quality['source_at_3']:.2f} | {quality['answer_contains_reference']:.2f} |",
            "",
        ]
    lines += [
        "## Served latency and throughput",
        "",
        "`bentoml serve bentos.docqa.service:RunbookQA` over the project's runbooks, called over loopback HTTP "
        f"with one question per request. The service process tree peaked at {results['peak_rss_mib']:.0f} MiB "
        "resident memory (psutil, sampled every 0.2 s).",
        "",
        f"Single questions, one request at a time: {single['requests']} requests cycling over {len(QUESTIONS)} "
        f"questions. The first pass embeds each question's candidate spans (p50 {single['cold_p50_ms']:.0f} ms); "
        "later passes find them in the span cache.",
        "",
        "| p50 (ms) | p95 (ms) | mean (ms) |",
        "|---:|---:|---:|",
        f"| {single['p50_ms']:.1f} | {single['p95_ms']:.1f} | {single['mean_ms']:.1f} |",
        "",
        "Concurrent clients, each sending requests back to back:",
        "",
        "| clients | seconds | questions | questions/s | p50 (ms) | p95 (ms) | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {row['clients']} | {row['seconds']:.1f} | {row['questions']} | {row['questions_per_second']:.1f} | "
            f"{row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['errors']} |"
            for row in results["throughput"]
        ),
        "",
    ]
    (RESULTS_DIR / "docqa.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", type=Path, default=os.environ.get("OPSSEER_CORPUS_DIR") or None,
                        help="evaluation corpus with runbooks/ and docqa/questions.jsonl (default: OPSSEER_CORPUS_DIR)")
    parser.add_argument("--requests", type=int, default=60, help="single-question requests, sent one at a time")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run, in seconds")
    args = parser.parse_args()

    results = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1m_at_start": os.getloadavg()[0],
    }
    results |= build_indexes(args.corpus_dir)

    sampler = MemorySampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as log_dir:
        console.print("starting bentoml serve bentos.docqa.service:RunbookQA")
        with served("bentos.docqa.service:RunbookQA", Path(log_dir), env={"OPSSEER_RUNBOOK_DIR": str(DEFAULT_RUNBOOK_DIR)}) as url:
            results["single"] = single_latency(url, args.requests)
            results["throughput"] = []
            for clients in (int(value) for value in args.clients.split(",")):
                console.print(f"throughput with {clients} clients for {args.seconds:.0f} s")
                results["throughput"].append(throughput(url, clients, args.seconds))
    sampler.stop()
    results["peak_rss_mib"] = sampler.peak_bytes / 2**20
    results["load_average_5m_at_end"] = os.getloadavg()[1]

    write_report(results)
    console.print(f"wrote {RESULTS_DIR / 'docqa.md'}")
    console.print_json(json.dumps({key: value for key, value in results.items() if key != "throughput"}))


if __name__ == "__main__":
    main()
