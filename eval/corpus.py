"""Access to the public evaluation corpus, read in place from OPSSEER_CORPUS_DIR or --corpus."""

import json
from pathlib import Path

from eval.errors import CorpusError


class Corpus:
    """The corpus root; every read checks that the file exists and names the path when it does not."""

    def __init__(self, root: Path | None) -> None:
        if root is None:
            raise CorpusError("no evaluation corpus given: set OPSSEER_CORPUS_DIR or pass --corpus DIR")
        root = Path(root).expanduser().resolve()
        if not root.is_dir():
            raise CorpusError(f"evaluation corpus {root} is not a directory: set OPSSEER_CORPUS_DIR or --corpus to it")
        self.root = root

    def path(self, relative: str) -> Path:
        """Return the path of a corpus file or folder, raising CorpusError when it is missing."""
        path = self.root / relative
        if not path.exists():
            raise CorpusError(f"{relative} not found in the evaluation corpus {self.root}; is --corpus the right folder?")
        return path

    def jsonl(self, relative: str) -> list[dict]:
        """Read a JSON Lines file, raising CorpusError that names the file and line of a bad record."""
        records = []
        path = self.path(relative)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{number} is not valid JSON: {exc}") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{path}:{number} must be a JSON object, got {type(record).__name__}")
            records.append(record)
        return records
