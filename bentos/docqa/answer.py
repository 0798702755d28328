"""Pick the answer span from retrieved chunks.

Candidates are the spans of the retrieved chunks: each sentence of a paragraph, block quote or HTML block,
each list item (nested items included), each fenced or indented code block (kind "command"), and each
body row of a table (kind "sentence"). A span's score is

    cosine(question, span in context) + command bonus + rank prior

- "span in context" is the heading path, then, for a code block, the block before it in the same chunk
  (the sentence that says what the command does), then the span text. Runbook commands rarely say in
  words what they do, so without their introduction they embed poorly.
- The command bonus (COMMAND_BONUS) applies to a code block when the question asks how to do something
  or for a command, query or way to check (HOW_TO).
- The rank prior (RANK_PRIOR / retrieval rank of the chunk) prefers spans of the best chunk on near ties.

When the best span is a sentence that ends with ":" on the line before a code block (after one blank line),
the code block is the answer, with the sentence's score: such a sentence introduces the command.

The best span's score is the answer's score. Below `min_answer_score` (0.35 by default, setting
OPSSEER_DOCQA_MIN_ANSWER_SCORE) the answer is "No answer found ...", with empty source and heading and
lines 0, and the hits are still returned. On this project's and the corpus's runbooks, on-topic questions
scored about 0.5 to 0.9 and off-topic questions (such as "What is the capital of France?") below 0.3.
"""

import re
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from bentos.docqa.chunking import Block, Chunk
from bentos.docqa.retrieval import Embedder, ScoredChunk
from bentos.docqa.schemas import Answer, AnswerKind, Hit

NO_ANSWER = "No answer found in the runbooks for this question."
COMMAND_BONUS = 0.1
RANK_PRIOR = 0.05
HOW_TO = re.compile(
    r"\b(how (do|can|should|to|would)|command|commands|query|queries|promql|curl|kubectl|run|check|list|"
    r"show|restart|find|see|get|mitigate|fix|clear|remove|silence|confirm|scale|resize|edit|delete|inspect)\b",
    re.IGNORECASE,
)
# A sentence ends at ., ! or ? followed by white space and an upper-case letter, a digit or a quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[*])")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}")
_SPAN_CACHE_SIZE = 50_000


@dataclass(frozen=True)
class Span:
    kind: AnswerKind
    text: str
    line_start: int
    line_end: int
    context: str
    chunk_rank: int
    chunk: Chunk
    # For a sentence that ends with ":" right before a code block, the index of that block's span.
    introduces: int | None = None


def _sentences(block: Block) -> list[tuple[str, int, int]]:
    """Split a block into sentences with the 1-based lines each one covers."""
    result = []
    start = 0
    text = block.text
    boundaries = [match.start() for match in _SENTENCE_END.finditer(text)] + [len(text)]
    for end in boundaries:
        piece = text[start:end].strip()
        if piece:
            offset = start + (len(text[start:end]) - len(text[start:end].lstrip()))
            first = block.line_start + text.count("\n", 0, offset)
            last = block.line_start + text.count("\n", 0, offset + len(piece))
            result.append((" ".join(piece.split()), first, last))
        start = end
    return result


def _code_body(block: Block) -> tuple[str, int, int] | None:
    """Return a code block's text without its fence lines, and its lines."""
    lines = block.text.split("\n")
    first, last = block.line_start, block.line_end
    if lines and lines[0].lstrip().startswith(("```", "~~~")):
        lines, first = lines[1:], first + 1
        if lines and lines[-1].strip().startswith(("```", "~~~")):
            lines, last = lines[:-1], last - 1
    body = "\n".join(lines).strip("\n")
    return (body, first, last) if body.strip() else None


def candidate_spans(hits: list[ScoredChunk]) -> list[Span]:
    """List the answer candidates of the retrieved chunks, in chunk and line order."""
    spans: list[Span] = []
    for rank, hit in enumerate(hits, start=1):
        previous = ""
        for block in hit.chunk.blocks:
            context = hit.chunk.heading
            if block.kind == "code":
                body = _code_body(block)
                if not body:
                    continue
                last = spans[-1] if spans else None
                if last and last.chunk is hit.chunk and last.line_end == block.line_start - 2 and last.text.endswith(":"):
                    spans[-1] = replace(last, introduces=len(spans))
                spans.append(Span("command", body[0], body[1], body[2], f"{context}\n{previous}", rank, hit.chunk))
            elif block.kind == "list_item":
                text = _LIST_MARKER.sub("", block.text, count=1)
                spans.append(Span("list_item", text, block.line_start, block.line_end, context, rank, hit.chunk))
            elif block.kind == "table":
                for offset, row in enumerate(block.text.split("\n")):
                    if offset == 0 or _TABLE_SEPARATOR.match(row) or not row.strip():
                        continue
                    line = block.line_start + offset
                    spans.append(Span("sentence", row.strip(), line, line, context, rank, hit.chunk))
            else:
                for sentence, first, last in _sentences(block):
                    spans.append(Span("sentence", sentence, first, last, context, rank, hit.chunk))
            previous = block.text
    return spans


class AnswerPicker:
    """Score candidate spans against questions, caching span embeddings between calls."""

    def __init__(self, embedder: Embedder, *, min_score: float):
        self.embedder = embedder
        self.min_score = min_score
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def _embed_spans(self, spans: list[Span]) -> np.ndarray:
        keys = [(span.chunk.source, span.line_start, span.line_end, span.kind) for span in spans]
        missing = list(dict.fromkeys(key for key in keys if key not in self._cache))
        if missing:
            by_key = {key: span for key, span in zip(keys, spans)}
            vectors = self.embedder.encode([f"{by_key[key].context}\n{by_key[key].text}" for key in missing])
            for key, vector in zip(missing, vectors):
                self._cache[key] = vector
            while len(self._cache) > _SPAN_CACHE_SIZE:
                self._cache.popitem(last=False)
        return np.stack([self._cache[key] for key in keys]) if keys else np.zeros((0, 0), dtype=np.float32)

    def pick_many(self, questions: list[str], embeddings: np.ndarray, hits: list[list[ScoredChunk]]) -> list[Answer]:
        """Answer each question from its hits; all span embeddings of the batch are computed in one call."""
        spans_per_question = [candidate_spans(question_hits) for question_hits in hits]
        all_vectors = self._embed_spans([span for spans in spans_per_question for span in spans])

        answers = []
        offset = 0
        for question, embedding, question_hits, spans in zip(questions, embeddings, hits, spans_per_question):
            vectors = all_vectors[offset : offset + len(spans)]
            offset += len(spans)
            answers.append(self._pick(question, embedding, question_hits, spans, vectors))
        return answers

    def _pick(self, question: str, embedding: np.ndarray, hits: list[ScoredChunk], spans: list[Span], vectors: np.ndarray) -> Answer:
        hit_models = [
            Hit(
                source=hit.chunk.source,
                heading=hit.chunk.heading,
                line_start=hit.chunk.line_start,
                line_end=hit.chunk.line_end,
                score=round(hit.score, 6),
                text=hit.chunk.text,
            )
            for hit in hits
        ]
        if not spans:
            return self._no_answer(0.0, hit_models)

        how_to = bool(HOW_TO.search(question))
        scores = vectors @ embedding
        for index, span in enumerate(spans):
            if how_to and span.kind == "command":
                scores[index] += COMMAND_BONUS
            scores[index] += RANK_PRIOR / span.chunk_rank
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < self.min_score:
            return self._no_answer(score, hit_models)

        span = spans[best]
        if span.introduces is not None:
            span = spans[span.introduces]
        return Answer(
            answer=span.text,
            kind=span.kind,
            source=span.chunk.source,
            heading=span.chunk.heading,
            line_start=span.line_start,
            line_end=span.line_end,
            score=round(score, 4),
            model=self.embedder.label,
            hits=hit_models,
        )

    def _no_answer(self, score: float, hits: list[Hit]) -> Answer:
        return Answer(
            answer=NO_ANSWER,
            kind="sentence",
            source="",
            heading="",
            line_start=0,
            line_end=0,
            score=round(score, 4),
            model=self.embedder.label,
            hits=hits,
        )
