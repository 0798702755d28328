"""One embedding model and one index per runbook directory for the whole session: building them takes seconds."""

from pathlib import Path

import pytest

from bentos.docqa.engine import RunbookAnswerer
from bentos.docqa.retrieval import Embedder
from bentos.docqa.settings import DEFAULT_RUNBOOK_DIR, DocQASettings, default_embedding_model

# The corpus test asks questions about the Kubernetes runbooks of prometheus-operator; indexing only that
# directory (48 of the corpus's 456 files) keeps the session fast. bench/docqa.py indexes the whole corpus.
CORPUS_SUBSET = "prometheus-operator-runbooks/content/runbooks/kubernetes"


@pytest.fixture(scope="session")
def docqa_embedder() -> Embedder:
    return Embedder(default_embedding_model(), device="cpu")


@pytest.fixture(scope="session")
def project_answerer(docqa_embedder: Embedder) -> RunbookAnswerer:
    return RunbookAnswerer(DocQASettings(runbook_dir=DEFAULT_RUNBOOK_DIR), embedder=docqa_embedder)


@pytest.fixture(scope="session")
def corpus_answerer(corpus_dir: Path, docqa_embedder: Embedder) -> RunbookAnswerer:
    return RunbookAnswerer(DocQASettings(runbook_dir=corpus_dir / "runbooks" / CORPUS_SUBSET), embedder=docqa_embedder)
