"""Metric definitions shared by the suites: pure functions on numbers and strings, with no I/O.

Forecast metrics follow the definitions the Chronos papers use (Ansari et al., "Chronos: Learning the Language
of Time Series", 2024): MASE scaled by the in-sample seasonal naive error, WQL averaged over quantile levels,
and per-series ratios to the seasonal naive baseline aggregated by the geometric mean.
"""

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import jiwer
import numpy as np

# Text normalisation

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_WORD_SEPARATORS = re.compile(r"[-\u2010-\u2015/]")
_NOT_WORD = re.compile(r"[^\w\s']")
_EDGE_APOSTROPHES = re.compile(r"(?<!\w)'|'(?!\w)")
_SPACES = re.compile(r"\s+")

WER_NORMALISATION = (
    "Unicode NFKC, case folded, curly apostrophes made straight, hyphens, dashes and slashes turned into "
    "spaces, every other character that is not a letter, digit, apostrophe inside a word or space removed, "
    "whitespace collapsed. Numbers are not spelled out, so '1961' and 'nineteen sixty-one' differ."
)


def normalise_transcript(text: str) -> str:
    """Normalise a transcript for WER as WER_NORMALISATION states."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    text = _WORD_SEPARATORS.sub(" ", text)
    text = _NOT_WORD.sub("", text.replace("_", " "))
    text = _EDGE_APOSTROPHES.sub("", text)
    return _SPACES.sub(" ", text).strip()


ANSWER_NORMALISATION = (
    "Unicode NFKC, case folded, the Markdown marks ` and * removed, a list or quote marker (-, +, >, 1.) "
    "at the start of a line removed, whitespace collapsed. The gold answer must then be a substring of the "
    "returned answer span."
)
_MARKDOWN_MARKS = re.compile(r"[`*]")
_LINE_MARKERS = re.compile(r"^\s*(?:[-+>]|\d+\.)\s+", re.MULTILINE)


def normalise_answer(text: str) -> str:
    """Normalise an answer span or a gold answer as ANSWER_NORMALISATION states."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _LINE_MARKERS.sub("", text)
    text = _MARKDOWN_MARKS.sub("", text)
    return _SPACES.sub(" ", text).strip()


def answer_hit(gold: str, answer: str) -> bool:
    """Return True when the normalised gold answer appears in the normalised answer span."""
    expected = normalise_answer(gold)
    return bool(expected) and expected in normalise_answer(answer)


# Word error rate


@dataclass(frozen=True)
class WordErrors:
    """Word-level alignment counts; `wer` is (substitutions + deletions + insertions) / reference words."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int

    @property
    def reference_words(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def wer(self) -> float:
        if self.reference_words == 0:
            raise ValueError("WER is undefined for an empty reference; drop the clip or fix its transcript")
        return (self.substitutions + self.deletions + self.insertions) / self.reference_words


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> WordErrors:
    """Count word errors over all pairs together after normalisation, so the WER is corpus-level.

    An empty normalised hypothesis counts every reference word as deleted.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references but {len(hypotheses)} hypotheses; pass one of each per clip")
    totals = [0, 0, 0, 0]
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref, hyp = normalise_transcript(reference), normalise_transcript(hypothesis)
        if not ref:
            raise ValueError(f"reference {reference!r} is empty after normalisation; WER is undefined for it")
        if not hyp:
            totals[1] += len(ref.split())
            continue
        output = jiwer.process_words(ref, hyp)
        totals[0] += output.substitutions
        totals[1] += output.deletions
        totals[2] += output.insertions
        totals[3] += output.hits
    return WordErrors(*totals)


# Forecast metrics


def seasonal_naive_forecast(history: np.ndarray, horizon: int, season_length: int) -> np.ndarray:
    """Repeat the last full season of history over the horizon (the last value when season_length is 1)."""
    if len(history) < season_length:
        raise ValueError(f"history of {len(history)} points is shorter than the season length {season_length}")
    last_season = history[-season_length:]
    repeats = math.ceil(horizon / season_length)
    return np.tile(last_season, repeats)[:horizon]


def seasonal_scale(history: np.ndarray, season_length: int) -> float:
    """Return the mean absolute seasonal difference of the history, ignoring NaN (MASE's denominator)."""
    if len(history) <= season_length:
        return math.nan
    differences = np.abs(history[season_length:] - history[:-season_length])
    differences = differences[~np.isnan(differences)]
    return float(differences.mean()) if differences.size else math.nan


def mase(actual: np.ndarray, point: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error of a point forecast; NaN actuals are skipped, NaN when undefined."""
    mask = ~np.isnan(actual)
    if not mask.any() or not math.isfinite(scale) or scale <= 0:
        return math.nan
    return float(np.abs(actual[mask] - point[mask]).mean() / scale)


def quantile_loss_sum(actual: np.ndarray, forecast: np.ndarray, level: float) -> float:
    """Return the summed pinball loss of one quantile forecast, skipping NaN actuals."""
    mask = ~np.isnan(actual)
    error = actual[mask] - forecast[mask]
    return float(np.sum(np.maximum(level * error, (level - 1) * error)))


def wql_parts(actual: np.ndarray, quantiles: Mapping[float, np.ndarray]) -> tuple[float, float]:
    """Return WQL's numerator (mean over levels of twice the summed pinball loss) and denominator (sum |y|).

    Numerators and denominators add up over windows and series, which is how a dataset-level WQL is formed.
    """
    if not quantiles:
        raise ValueError("no quantile forecasts given; pass at least one level")
    losses = [2.0 * quantile_loss_sum(actual, np.asarray(values, dtype=float), level) for level, values in quantiles.items()]
    return float(np.mean(losses)), float(np.nansum(np.abs(actual)))


def wql(actual: np.ndarray, quantiles: Mapping[float, np.ndarray]) -> float:
    """Weighted quantile loss: mean over levels of 2 * sum pinball loss / sum |actual|; NaN when sum |actual| is 0."""
    numerator, denominator = wql_parts(actual, quantiles)
    return numerator / denominator if denominator > 0 else math.nan


def geometric_mean(values: Iterable[float]) -> float:
    """Geometric mean of positive numbers; 0 when any value is 0, NaN for no values.

    Raises ValueError on a negative or non-finite value, because a ratio of errors can be neither.
    """
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return math.nan
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"geometric mean needs finite values >= 0, got {array.tolist()}")
    if np.any(array == 0):
        return 0.0
    return float(np.exp(np.mean(np.log(array))))


# Retrieval metrics


def first_relevant_rank(ranked: Sequence[str], relevant: str) -> int | None:
    """Return the 1-based rank of `relevant` among the distinct items of `ranked`, or None when absent.

    Repeats of an item already ranked do not take a rank, so three passages from one file count as one source.
    """
    seen: list[str] = []
    for item in ranked:
        if item in seen:
            continue
        seen.append(item)
        if item == relevant:
            return len(seen)
    return None


def mean_reciprocal_rank(ranks: Iterable[int | None]) -> float:
    """Mean of 1/rank, counting a missing item (None) as 0; NaN for no queries."""
    values = [0.0 if rank is None else 1.0 / rank for rank in ranks]
    return float(np.mean(values)) if values else math.nan


def hit_at(rank: int | None, k: int) -> bool:
    return rank is not None and rank <= k


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method); NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else math.nan
