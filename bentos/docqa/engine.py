"""Runbook question answering without BentoML: load the model, build the index, answer batches of questions."""

import logging
import time

from bentos.docqa.answer import AnswerPicker
from bentos.docqa.retrieval import Embedder, RunbookIndex
from bentos.docqa.schemas import Answer, Question
from bentos.docqa.settings import DocQASettings

logger = logging.getLogger(__name__)


class RunbookAnswerer:
    """The embedding model, the index of one runbook directory and the answer picker."""

    def __init__(self, settings: DocQASettings, *, embedder: Embedder | None = None):
        self.settings = settings
        self.embedder = embedder or Embedder(settings.embedding_model, device=settings.docqa_device)
        self.index = RunbookIndex.from_directory(settings.runbook_dir.resolve(), self.embedder, settings)
        self.picker = AnswerPicker(self.embedder, min_score=settings.docqa_min_answer_score)

    @property
    def model(self) -> str:
        return self.embedder.label

    def answer(self, questions: list[Question]) -> list[Answer]:
        """Answer questions in order; the question embeddings are computed in one call."""
        if not questions:
            return []
        started = time.perf_counter()
        embeddings = self.embedder.encode([question.question for question in questions])
        hits = [
            self.index.search(question.question, embedding, top_k=question.top_k, source_hint=question.source_hint)
            for question, embedding in zip(questions, embeddings)
        ]
        answers = self.picker.pick_many([question.question for question in questions], embeddings, hits)
        logger.info("answered %d questions in %.3f s", len(questions), time.perf_counter() - started)
        return answers
