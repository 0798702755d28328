"""Results of a suite run, the machine they ran on, and the Markdown report built from the JSON files.

Each suite writes `<out>/<suite>.json`. `report.md` is rebuilt from every suite JSON file in the results
directory after each run, so running one suite refreshes its section and keeps the others.
"""

import json
import logging
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPORT_NAME = "report.md"
PACKAGES = (
    "opsseer",
    "torch",
    "chronos-forecasting",
    "statsforecast",
    "bentoml",
    "sentence-transformers",
    "rank-bm25",
    "faster-whisper",
    "ctranslate2",
    "jiwer",
    "numpy",
)


@dataclass
class SuiteResult:
    """What one suite measured. `summary` holds the headline numbers, `details` everything the tables show."""

    suite: str
    title: str
    status: str = "ok"  # ok, or unavailable when the suite could not run here (reason in `notes`)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    elapsed_seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))} ({platform.system()} {platform.release()})"
    except OSError:
        pass
    return platform.platform()


def _git_commit() -> str | None:
    try:
        output = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return output.stdout.strip() or None


def environment() -> dict[str, Any]:
    """Describe the machine and the package versions a run used."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": _os_name(),
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "packages": versions,
    }


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (datetime, Path)):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to the results JSON")


def _finite(value: Any) -> Any:
    """Replace NaN and infinities by None, because JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def write_result(result: SuiteResult, out_dir: Path) -> Path:
    """Write `<out>/<suite>.json` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.suite}.json"
    path.write_text(json.dumps(_finite(result.to_dict()), indent=2, default=_json_default, allow_nan=False) + "\n")
    logger.info("suite %s: wrote %s", result.suite, path)
    return path


# Markdown helpers


def cell(value: Any, digits: int = 3) -> str:
    """Format a table cell: numbers rounded, None as an em dash, pipes and newlines escaped."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text


def table(headers: list[str], rows: list[list[Any]], digits: int = 3) -> str:
    """Render a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value, digits) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def environment_lines(env: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{name} {version}" for name, version in env.get("packages", {}).items())
    return [
        f"- machine: {env.get('cpu')}, {env.get('cores')} cores, {env.get('memory_gib')} GiB RAM, {env.get('os')}",
        f"- Python {env.get('python')}, commit {env.get('git_commit') or 'unknown'}",
        f"- packages: {packages}",
    ]


def suite_header(result: dict[str, Any]) -> list[str]:
    """Return the lines every suite section starts with: when, how long, on what, with which models."""
    lines = [
        f"## {result['title']}",
        "",
        f"Ran {result['started_at']} for {result['elapsed_seconds']:.1f} s with options "
        f"`{json.dumps(result['options'], sort_keys=True)}`.",
        "",
    ]
    if result.get("models"):
        lines += ["Models: " + "; ".join(f"{name}: `{model}`" for name, model in result["models"].items()), ""]
    lines += environment_lines(result.get("environment", {})) + [""]
    if result["status"] != "ok":
        lines += [f"**Not run: {result['status']}.**", ""]
    lines += [f"- NOTE: {note}" for note in result.get("notes", [])]
    if result.get("notes"):
        lines.append("")
    return lines


def build_report(out_dir: Path, renderers: dict[str, Any]) -> Path:
    """Rebuild `<out>/report.md` from every `<suite>.json` present, in the order of `renderers`."""
    sections = []
    index = []
    for suite, render in renderers.items():
        path = out_dir / f"{suite}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        body = "\n".join(suite_header(result))
        if result["status"] == "ok":
            body += "\n" + render(result)
        sections.append(body.rstrip() + "\n")
        index.append(f"- [{result['title']}](#{_anchor(result['title'])}): {_headline(result)}")

    text = [
        "# OpsSeer evaluation report",
        "",
        "Written by `opsseer eval`; each section says when and on which machine it ran. The raw numbers are in the",
        "JSON file of each suite beside this report, and the plots are in `plots/`.",
        "",
        *index,
        "",
        *sections,
    ]
    report = out_dir / REPORT_NAME
    report.write_text("\n".join(text))
    return report


def _anchor(title: str) -> str:
    kept = "".join(char for char in title.lower() if char.isalnum() or char in " -")
    return kept.replace(" ", "-")


def _headline(result: dict[str, Any]) -> str:
    if result["status"] != "ok":
        return f"not run ({result['status']})"
    headline = result.get("summary", {}).get("headline")
    return headline or "see section"
