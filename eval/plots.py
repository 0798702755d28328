"""PNG plots of the report, drawn with matplotlib's Agg backend (no display needed).

Each function writes one file and returns its path relative to the results folder, as the report links it.
"""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 110


def _save(figure, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return f"{path.parent.name}/{path.name}"


def stage_latencies(stages: list[dict[str, Any]], path: Path, *, runs: int) -> str:
    """Draw one bar per stage, from the fault to the stage's median time (resolve phase in orange).

    A stage without a measured time (not configured, failed, missing) gets a text label instead of a bar.
    """
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(stages) + 1.5))
    names = [row["stage"] for row in stages]
    positions = np.arange(len(stages))[::-1]
    longest = max([row["median_seconds"] or 0 for row in stages] + [1])
    for position, row in zip(positions, stages, strict=True):
        median = row["median_seconds"]
        if median is None:
            axes.text(0.5, position, f"not measured: {row['status'].replace('_', ' ')}", va="center", fontsize=8, color="dimgray")
            continue
        color = "tab:orange" if row.get("phase") == "resolve" else "tab:blue"
        axes.barh(position, median, color=color)
        if row["min_seconds"] is not None and row["max_seconds"] is not None and runs > 1:
            axes.plot([row["min_seconds"], row["max_seconds"]], [position, position], color="black", linewidth=1)
        axes.text(median + longest * 0.01, position, f"{median:.1f} s", va="center", fontsize=8)
    axes.set_yticks(positions, names)
    axes.set_xlabel(f"seconds since the fault was injected (median of {runs} run{'s' if runs != 1 else ''}; line: min-max)")
    axes.set_title("Fault-to-stage latency on the local stack")
    axes.set_xlim(0, longest * 1.15)
    return _save(figure, path)


def forecast_example(
    *,
    title: str,
    context_times: np.ndarray,
    context_values: np.ndarray,
    future_times: np.ndarray,
    actual: np.ndarray,
    median: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    band_label: str,
    path: Path,
) -> str:
    """Draw the tail of the context, the actuals, the median forecast and its quantile band."""
    figure, axes = plt.subplots(figsize=(9, 3.2))
    axes.plot(context_times, context_values, color="gray", linewidth=1, label="context")
    axes.plot(future_times, actual, color="black", linewidth=1.2, label="actual")
    axes.plot(future_times, median, color="tab:blue", linewidth=1.2, label="forecast median")
    axes.fill_between(future_times, low, high, color="tab:blue", alpha=0.25, label=band_label)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("steps relative to the forecast origin")
    axes.legend(fontsize=8, loc="upper left")
    return _save(figure, path)


def bar_chart(labels: list[str], values: list[float], *, title: str, xlabel: str, path: Path, reference: float | None = None) -> str:
    """Draw labelled horizontal bars, with an optional dashed reference line (such as 1.0 for a ratio)."""
    figure, axes = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.5))
    positions = np.arange(len(labels))[::-1]
    axes.barh(positions, values, color="tab:blue")
    if reference is not None:
        axes.axvline(reference, color="black", linestyle="--", linewidth=1)
    axes.set_yticks(positions, labels, fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_title(title, fontsize=10)
    return _save(figure, path)


def histogram(values: list[float], *, title: str, xlabel: str, path: Path) -> str:
    figure, axes = plt.subplots(figsize=(7, 3))
    axes.hist(values, bins=min(20, max(5, len(values))), color="tab:blue")
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    return _save(figure, path)
