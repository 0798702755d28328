"""Typed settings of the evaluation harness, read from OPSSEER_* variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"


class EvalSettings(BaseSettings):
    """Locations of the public corpus the harness reads and of the results it writes."""

    model_config = SettingsConfigDict(env_prefix="OPSSEER_", extra="ignore")

    corpus_dir: Path | None = Field(None, description="The public evaluation corpus, read in place (OPSSEER_CORPUS_DIR).")
    eval_results_dir: Path = Field(DEFAULT_RESULTS_DIR, description="Where `opsseer eval` writes JSON, Markdown and plots.")
