"""The suite registry and the context every suite runs with.

A suite is a module with TITLE, `run(context) -> SuiteResult` and `render(result: dict) -> str` (its Markdown
section, built from the JSON result alone so the report can be rebuilt without re-running).
"""

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from rich.console import Console
from rich.progress import track

from eval.corpus import Corpus
from eval.errors import SuiteUnavailable

T = TypeVar("T")

# Report order; modules are imported on use, so `opsseer eval correlation` never imports torch.
SUITES = {
    "forecast": "eval.forecast",
    "docqa": "eval.docqa",
    "asr": "eval.asr",
    "correlation": "eval.correlation",
    "pipeline": "eval.pipeline",
}


def require_service(service: str, what: str) -> None:
    """Import the module of a service ("module:Class"), or raise SuiteUnavailable naming it and the import error."""
    try:
        importlib.import_module(service.partition(":")[0])
    except ImportError as exc:
        raise SuiteUnavailable(f"the {what} service {service} is not importable: {exc}") from None


def suite_module(name: str) -> ModuleType:
    return importlib.import_module(SUITES[name])


@dataclass
class EvalContext:
    """Options of one `opsseer eval` run. `limit` caps the items of each suite; `quick` shrinks its work."""

    corpus_root: Path | None
    out_dir: Path
    work_dir: Path
    limit: int | None = None
    quick: bool = False
    show_progress: bool = True
    console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))

    def corpus(self) -> Corpus:
        return Corpus(self.corpus_root)

    @property
    def plots_dir(self) -> Path:
        path = self.out_dir / "plots"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def limited(self, items: list[T]) -> list[T]:
        return items[: self.limit] if self.limit else items

    def progress(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Iterate with a progress bar on stderr (hidden with --no-progress)."""
        return iter(
            track(items, description=description, total=total, console=self.console, disable=not self.show_progress)
        )

    def options(self, **extra) -> dict:
        return {"limit": self.limit, "quick": self.quick, **extra}
