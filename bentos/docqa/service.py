"""BentoML service `RunbookQA`: answer questions from the Markdown runbooks in OPSSEER_RUNBOOK_DIR.

Serve alone with `bentoml serve bentos.docqa.service:RunbookQA`; the gateway composes it. The model is loaded
and the whole index is embedded once per process, in __init__. BentoML merges concurrent requests into one
batch of at most OPSSEER_DOCQA_MAX_BATCH_SIZE questions, so the questions and answer spans of a batch are
embedded in one model call. Each question is validated while its request body is parsed, so an empty or too
long question gets 422 for its own caller and never joins, or fails, a merged batch.

The service declares no GPU resource, because BentoML refuses to start a service that requests more GPUs
than the machine has. The model runs on CUDA whenever torch sees a GPU (OPSSEER_DOCQA_DEVICE overrides).
"""

import logging

import bentoml

from bentos.docqa.engine import RunbookAnswerer
from bentos.docqa.schemas import Answer, Question
from bentos.docqa.settings import get_docqa_settings

logger = logging.getLogger(__name__)

# BentoML takes batching and timeout values at class definition, so the settings are read when this module
# is imported, which `bentoml serve` does once per process.
SETTINGS = get_docqa_settings()


@bentoml.service(
    name="runbook_qa",
    resources={"cpu": "2", "memory": "2Gi"},
    traffic={"timeout": SETTINGS.docqa_timeout_seconds},
)
class RunbookQA:
    """Hybrid BM25 and MiniLM retrieval over runbooks, answering with a cited sentence, list item or command."""

    def __init__(self) -> None:
        self.answerer = RunbookAnswerer(SETTINGS)
        logger.info(
            "runbook QA ready: runbook_dir=%s chunks=%d model=%s device=%s max_batch_size=%d max_latency_ms=%d",
            SETTINGS.runbook_dir, len(self.answerer.index.chunks), self.answerer.model,
            self.answerer.embedder.device, SETTINGS.docqa_max_batch_size, SETTINGS.docqa_max_latency_ms,
        )

    # BentoML rejects a request with 503 when its expected wait plus run time exceeds max_latency_ms. A cold
    # batch of 12 questions took about 2 s on 2 busy CPU cores (answer spans are embedded at query time), so
    # the default of 10 s leaves room for load without rejecting callers, and stays inside the timeout.
    @bentoml.api(
        batchable=True,
        batch_dim=0,
        max_batch_size=SETTINGS.docqa_max_batch_size,
        max_latency_ms=SETTINGS.docqa_max_latency_ms,
    )
    def answer(self, questions: list[Question]) -> list[Answer]:
        """Answer each question; the result has the same length and order as `questions`."""
        return self.answerer.answer(questions)
