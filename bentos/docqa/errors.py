"""Errors of runbook question answering.

DocQAError
├── RunbookDirNotFound    the runbook directory does not exist (start-up)
├── EmptyIndex            the runbook directory has no indexable Markdown (start-up)
├── EmbeddingModelNotFound the embedding model cannot be loaded (start-up)
└── InvalidQuestion       a request the service cannot answer (empty or too long question, top_k out of range);
                          also a BentoML UnprocessableEntity, so the HTTP caller gets 422 with the message
"""

from bentoml.exceptions import UnprocessableEntity


class DocQAError(Exception):
    """Base of every runbook question-answering error."""


class RunbookDirNotFound(DocQAError):
    pass


class EmptyIndex(DocQAError):
    pass


class InvalidQuestion(DocQAError, UnprocessableEntity):
    pass


class EmbeddingModelNotFound(DocQAError):
    pass
