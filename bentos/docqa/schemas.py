"""Request and response models of runbook question answering (the /ask contract)."""

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from bentos.docqa.errors import InvalidQuestion
from bentos.docqa.settings import get_docqa_settings

AnswerKind = Literal["sentence", "list_item", "command"]


class Question(BaseModel):
    """One question. Validation raises InvalidQuestion (HTTP 422) instead of a pydantic error (HTTP 400)."""

    question: str
    top_k: int = Field(default_factory=lambda: get_docqa_settings().docqa_top_k)
    source_hint: str | None = None

    # NOTE: pydantic passes exceptions other than ValueError and AssertionError through unchanged, so
    # InvalidQuestion reaches BentoML, which answers 422 to this caller before the request joins a batch.
    @field_validator("question")
    @classmethod
    def _check_question(cls, value: str) -> str:
        limit = get_docqa_settings().docqa_max_question_chars
        stripped = value.strip()
        if not stripped:
            raise InvalidQuestion("question is empty: send a question in words, for example 'How do I mitigate X?'")
        if len(stripped) > limit:
            raise InvalidQuestion(
                f"question has {len(stripped)} characters, more than the limit of {limit}: shorten it "
                "or raise OPSSEER_DOCQA_MAX_QUESTION_CHARS"
            )
        return stripped

    @field_validator("top_k")
    @classmethod
    def _check_top_k(cls, value: int) -> int:
        limit = get_docqa_settings().docqa_max_top_k
        if not 1 <= value <= limit:
            raise InvalidQuestion(f"top_k is {value}: use a value from 1 to {limit}")
        return value


class Hit(BaseModel):
    """A retrieved chunk of a runbook."""

    source: str
    heading: str
    line_start: int
    line_end: int
    score: float
    text: str


class Answer(BaseModel):
    """The span that answers a question, where it is, and the chunks it was picked from.

    line_start and line_end are 1-based and inclusive, in the file `source` (relative to the runbook
    directory). When nothing relevant was found, `answer` starts with "No answer found", `source` and
    `heading` are empty and both line numbers are 0.
    """

    answer: str
    kind: AnswerKind
    source: str
    heading: str
    line_start: int
    line_end: int
    score: float
    model: str
    hits: list[Hit]
