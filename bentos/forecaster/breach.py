"""SLO breach analysis of a quantile forecast: when the forecast crosses a threshold, and how likely a breach is.

Pure numpy (no torch, no bentoml), so Celery workers import it without loading a model.

Method, for direction "above" (mirrored for "below"):
- time to p50 (p90): the first forecast step whose 0.5 (0.9) quantile is at or above the threshold, as
  `step * step_seconds` after the last observed point; None when no step within the horizon crosses. For
  "below" the pessimistic quantile is the 0.1 level, reported in the same `time_to_p90_seconds` field.
  A level missing from the forecast is interpolated linearly between the neighbouring levels at each step.
- probability: at each step the forecast's cumulative distribution F is interpolated linearly between the
  (value, level) points of its quantiles and extrapolated with the slope of the outermost segments, clipped to
  [0, 1]; the exceedance probability is 1 - F(threshold). The result is the maximum over steps. It is a lower
  bound of the probability of a breach at any step within the horizon, because that event contains each
  single-step event. Quantiles with fewer than two distinct values are treated as a point mass.
"""

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from bentos.forecaster.errors import BreachInputError

Direction = Literal["above", "below"]


def _as_dict(forecast: Any) -> Mapping[str, Any]:
    if hasattr(forecast, "model_dump"):
        return forecast.model_dump()
    if not isinstance(forecast, Mapping):
        raise BreachInputError(f"forecast of type {type(forecast).__name__} is not a ForecastOut or a dict")
    return forecast


def _quantile_table(forecast: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Return (levels, values shaped (levels, horizon)), sorted by level and across levels at each step."""
    quantiles = forecast.get("quantiles") or {}
    if not quantiles:
        raise BreachInputError("forecast has no quantiles; pass a ForecastOut from the forecaster")
    levels = np.array([float(key) for key in quantiles], dtype=np.float64)
    values = np.array([quantiles[key] for key in quantiles], dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise BreachInputError("forecast quantiles must hold one non-empty list of values per level, all of one length")
    order = np.argsort(levels)
    return levels[order], np.sort(values[order], axis=0)


def _quantile_at(levels: np.ndarray, values: np.ndarray, level: float) -> np.ndarray | None:
    """Return the `level` quantile at every step, interpolated between levels; None outside the forecast's levels."""
    if level < levels[0] or level > levels[-1]:
        return None
    if levels.shape[0] == 1:
        return values[0]
    return np.array([np.interp(level, levels, values[:, step]) for step in range(values.shape[1])])


def _cdf(levels: np.ndarray, column: np.ndarray, threshold: float) -> float:
    """Estimate F(threshold) from one step's quantiles (values `column` at `levels`)."""
    distinct_values, first = np.unique(column, return_index=True)
    if distinct_values.shape[0] < 2:
        return 1.0 if threshold >= column[0] else 0.0
    # For tied values keep the highest level, so F jumps to it at the tie.
    last = np.array([np.flatnonzero(column == value)[-1] for value in distinct_values])
    points_x = distinct_values
    points_y = levels[last]
    if threshold < points_x[0]:
        slope = (points_y[1] - levels[first[0]]) / (points_x[1] - points_x[0])
        estimate = levels[first[0]] - slope * (points_x[0] - threshold)
    elif threshold >= points_x[-1]:
        slope = (points_y[-1] - points_y[-2]) / (points_x[-1] - points_x[-2])
        estimate = points_y[-1] + slope * (threshold - points_x[-1])
    else:
        estimate = float(np.interp(threshold, points_x, points_y))
    return float(min(1.0, max(0.0, estimate)))


def _first_crossing(series: np.ndarray | None, threshold: float, direction: Direction, step_seconds: float) -> float | None:
    if series is None:
        return None
    crossed = series >= threshold if direction == "above" else series <= threshold
    hits = np.flatnonzero(crossed)
    return float((hits[0] + 1) * step_seconds) if hits.size else None


def analyze_breach(
    forecast: Any, threshold: float, *, direction: Direction = "above", step_seconds: float | None = None
) -> dict[str, Any]:
    """Return the breach dict: threshold, direction, time_to_p50_seconds, time_to_p90_seconds, probability, horizon_seconds.

    `forecast` is a ForecastOut or its dict; `step_seconds` defaults to the forecast's own. See the module
    docstring for the method.
    """
    forecast = _as_dict(forecast)
    if direction not in ("above", "below"):
        raise BreachInputError(f"direction {direction!r} is invalid; use 'above' or 'below'")
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise BreachInputError(f"threshold {threshold!r} is not a finite number; pass the SLO threshold")
    step_seconds = step_seconds if step_seconds is not None else forecast.get("step_seconds")
    if step_seconds is None or not math.isfinite(step_seconds) or step_seconds <= 0:
        raise BreachInputError(
            f"step_seconds {step_seconds!r} is missing or not positive; pass the series' sampling step in seconds"
        )

    levels, values = _quantile_table(forecast)
    pessimistic_level = 0.9 if direction == "above" else 0.1
    exceedance = []
    for step in range(values.shape[1]):
        below = _cdf(levels, values[:, step], threshold)
        exceedance.append(1.0 - below if direction == "above" else below)

    return {
        "threshold": float(threshold),
        "direction": direction,
        "time_to_p50_seconds": _first_crossing(_quantile_at(levels, values, 0.5), threshold, direction, step_seconds),
        "time_to_p90_seconds": _first_crossing(
            _quantile_at(levels, values, pessimistic_level), threshold, direction, step_seconds
        ),
        "probability": round(max(exceedance), 4),
        "horizon_seconds": float(values.shape[1] * step_seconds),
    }


def breach_predicted(breach: Mapping[str, Any]) -> bool:
    """Return True when the pessimistic quantile crosses the threshold within the horizon."""
    return breach.get("time_to_p90_seconds") is not None


def format_duration(seconds: float) -> str:
    """Format seconds compactly: 45s, 4m, 4m 30s, 2h 5m, 3d 1h."""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{amount}{unit}" for amount, unit in parts if amount]
    return " ".join(shown[:2]) or "0s"


def breach_title(breach: Mapping[str, Any], *, unit: str = "") -> str:
    """Return a one-line title for the proactive warning, e.g. "Forecast: p90 crosses 0.25 s in 4m (p50 in 9m, probability 63%)"."""
    above = breach.get("direction", "above") == "above"
    threshold = f"{breach['threshold']:g}{' ' + unit if unit else ''}"
    verb, level = ("crosses", "p90") if above else ("falls below", "p10")
    p90 = breach.get("time_to_p90_seconds")
    p50 = breach.get("time_to_p50_seconds")
    probability = f"probability {breach.get('probability', 0.0) * 100:.0f}%"
    horizon = breach.get("horizon_seconds")
    if p90 is None:
        within = f" within {format_duration(horizon)}" if horizon else ""
        return f"Forecast: {level} stays on the safe side of {threshold}{within} ({probability})"
    median = f"p50 in {format_duration(p50)}" if p50 is not None else "p50 does not cross"
    return f"Forecast: {level} {verb} {threshold} in {format_duration(p90)} ({median}, {probability})"
