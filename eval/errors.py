"""Errors of the evaluation harness.

EvalError
 ├── CorpusError: the corpus directory or one of its files is missing or malformed
 └── SuiteUnavailable: a suite cannot run here (a missing service or component); the message names what is missing
"""


class EvalError(RuntimeError):
    """Base class of the harness's errors; the message names the value and the fix."""


class CorpusError(EvalError):
    """The evaluation corpus or one of its files is missing or malformed."""


class SuiteUnavailable(EvalError):
    """A suite cannot run on this checkout or machine; the message says what is missing."""
