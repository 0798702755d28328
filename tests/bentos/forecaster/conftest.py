"""Fixtures of the forecaster tests: tiny random Chronos models saved as local model directories."""

from pathlib import Path

import pytest

from bentos.forecaster.random_models import save_random_bolt, save_random_t5


@pytest.fixture(scope="session")
def chronos_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Directories of a tiny Chronos-Bolt ("bolt") and a tiny Chronos-T5 ("t5") model with random weights."""
    root = tmp_path_factory.mktemp("chronos")
    return {"bolt": save_random_bolt(root / "bolt"), "t5": save_random_t5(root / "t5")}
