"""The served RunbookQA: batched answers return to the right caller in order; bad questions get 422."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bentos.docqa.settings import DEFAULT_RUNBOOK_DIR
from opsseer.bento import served

LATENCY = "ToyprodLatencySLOBreach.md"
ERRORS = "ToyprodErrorBudgetBurn.md"

# question, source and heading the answer must cite
QUESTIONS = [
    ("How do I mitigate ToyprodLatencySLOBreach?", LATENCY, "ToyprodLatencySLOBreach > Mitigation"),
    ("How do I mitigate ToyprodErrorBudgetBurn?", ERRORS, "ToyprodErrorBudgetBurn > Mitigation"),
    ("How do I silence ToyprodErrorBudgetBurn during a planned chaos exercise?", ERRORS, "ToyprodErrorBudgetBurn > Mitigation"),
    ("How do I triage ToyprodLatencySLOBreach?", LATENCY, "ToyprodLatencySLOBreach > Triage"),
    ("How do I triage ToyprodErrorBudgetBurn?", ERRORS, "ToyprodErrorBudgetBurn > Triage"),
]


@pytest.fixture(scope="module")
def runbook_qa_url(tmp_path_factory: pytest.TempPathFactory):
    log_dir: Path = tmp_path_factory.mktemp("runbook_qa")
    env = {"OPSSEER_RUNBOOK_DIR": str(DEFAULT_RUNBOOK_DIR)}
    with served("bentos.docqa.service:RunbookQA", log_dir, env=env) as url:
        yield url


def _ask(url: str, questions: list[dict]) -> httpx.Response:
    return httpx.post(f"{url}/answer", json={"questions": questions}, timeout=60)


def test_concurrent_callers_get_their_answers(runbook_qa_url: str):
    # Requests of 1, 2 and 5 questions, each list in a different order, sent at once so they share batches.
    requests = [QUESTIONS[4:5], QUESTIONS[1:3][::-1], QUESTIONS[::-1]] * 2

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        responses = list(pool.map(lambda cases: _ask(runbook_qa_url, [{"question": case[0]} for case in cases]), requests))

    for cases, response in zip(requests, responses):
        assert response.status_code == 200, response.text
        answers = response.json()
        assert [(answer["source"], answer["heading"]) for answer in answers] == [(case[1], case[2]) for case in cases]
        for answer in answers:
            assert len(answer["hits"]) == 3
            assert answer["model"].startswith("sentence-transformers/all-MiniLM-L6-v2")


def test_answer_contract_fields(runbook_qa_url: str):
    response = _ask(runbook_qa_url, [{"question": QUESTIONS[0][0], "top_k": 2, "source_hint": LATENCY}])

    assert response.status_code == 200, response.text
    answer = response.json()[0]
    assert set(answer) == {"answer", "kind", "source", "heading", "line_start", "line_end", "score", "model", "hits"}
    assert answer["kind"] == "command"
    assert answer["answer"] == "opsseer chaos --url http://127.0.0.1:18081 --clear"
    lines = (DEFAULT_RUNBOOK_DIR / LATENCY).read_text(encoding="utf-8").split("\n")
    assert lines[answer["line_start"] - 1] == answer["answer"]
    assert len(answer["hits"]) == 2
    assert set(answer["hits"][0]) == {"source", "heading", "line_start", "line_end", "score", "text"}


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ({"question": "   "}, "question is empty"),
        ({"question": "why " * 300}, "more than the limit of 1000"),
        ({"question": "How do I mitigate it?", "top_k": 0}, "top_k is 0"),
    ],
)
def test_bad_question_gets_422_for_its_caller_only(runbook_qa_url: str, question: dict, message: str):
    good = [{"question": QUESTIONS[0][0]}]

    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(_ask, runbook_qa_url, good)
        bad = pool.submit(_ask, runbook_qa_url, [good[0], question])
        second = pool.submit(_ask, runbook_qa_url, good)

    assert bad.result().status_code == 422
    assert message in bad.result().text
    for response in (first.result(), second.result()):
        assert response.status_code == 200, response.text
        assert response.json()[0]["source"] == LATENCY
