"""Clean and validate input series before any backend receives them.

Rules, applied in this order:
- null, NaN and +-Inf values are missing;
- with timestamps, values are placed on a regular grid of `step_seconds` (the median spacing when unset),
  so the steps Prometheus leaves out of a range query become missing points;
- only the last MAX_CONTEXT_POINTS grid points are kept;
- fewer than MIN_OBSERVED_POINTS observed points raise InsufficientDataError;
- missing points between observed ones are filled by linear interpolation, missing points before the first
  or after the last observed one take that value (edge carry); PreparedSeries records both.

This module imports numpy only, so workers and the gateway can validate without loading a model.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bentos.forecaster.errors import (
    ForecastInputError,
    HorizonError,
    InsufficientDataError,
    QuantileLevelError,
    TimestampError,
)
from bentos.forecaster.schema import SeriesIn

# Fewer points give no usable scale or trend estimate to Chronos or ETS.
MIN_OBSERVED_POINTS = 8
# Chronos-Bolt's context length: Chronos drops older points anyway, and ETS gains nothing from them.
MAX_CONTEXT_POINTS = 2048
# Bound on the values sent and on the grid that timestamps span, so one request cannot exhaust memory.
MAX_INPUT_POINTS = 100_000
# Chronos predicts 64 steps in one pass; every backend shares the limit so that a fallback accepts
# the same requests.
MAX_HORIZON = 64
MAX_QUANTILE_LEVELS = 99


@dataclass(frozen=True)
class PreparedSeries:
    """A clean series ready for a backend: no missing values, a valid horizon and sorted quantile levels."""

    values: np.ndarray
    horizon: int
    quantile_levels: tuple[float, ...]
    step_seconds: float | None = None
    last_timestamp: float | None = None
    imputed_points: int = 0
    imputation: str = "none"

    @property
    def context_length(self) -> int:
        return int(self.values.shape[0])

    def forecast_timestamps(self) -> list[float] | None:
        """Return the unix time of each forecast step, or None without timestamps in the request."""
        if self.last_timestamp is None or self.step_seconds is None:
            return None
        return [self.last_timestamp + self.step_seconds * step for step in range(1, self.horizon + 1)]


def check_horizon(horizon: int, max_horizon: int = MAX_HORIZON) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int):
        raise HorizonError(f"horizon {horizon!r} is not an integer; send a whole number of steps from 1 to {max_horizon}")
    if horizon < 1:
        raise HorizonError(f"horizon {horizon} is invalid; request at least 1 step (maximum {max_horizon})")
    if horizon > max_horizon:
        raise HorizonError(f"horizon {horizon} is above the maximum of {max_horizon} steps; request at most {max_horizon}")
    return horizon


def check_quantile_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """Return the levels sorted, raising QuantileLevelError for an empty list, a repeat or a level outside (0, 1)."""
    if len(levels) == 0:
        raise QuantileLevelError("quantile_levels is empty; send at least one level in (0, 1), e.g. [0.1, 0.5, 0.9]")
    if len(levels) > MAX_QUANTILE_LEVELS:
        raise QuantileLevelError(f"quantile_levels has {len(levels)} levels; send at most {MAX_QUANTILE_LEVELS}")
    for level in levels:
        if not (isinstance(level, (int, float)) and math.isfinite(level) and 0.0 < level < 1.0):
            raise QuantileLevelError(f"quantile level {level!r} is outside (0, 1); use levels such as 0.1, 0.5, 0.9")
    ordered = tuple(sorted(float(level) for level in levels))
    if len(set(ordered)) != len(ordered):
        raise QuantileLevelError(f"quantile_levels {list(levels)} contains a repeated level; send each level once")
    return ordered


def _as_float_array(values: Sequence[float | None]) -> np.ndarray:
    array = np.array([math.nan if value is None else value for value in values], dtype=np.float64)
    array[~np.isfinite(array)] = math.nan
    return array


def _regrid(values: np.ndarray, timestamps: Sequence[float], step_seconds: float | None) -> tuple[np.ndarray, float, float]:
    """Place values on a regular grid; return the grid, the step and the last timestamp."""
    times = np.asarray(timestamps, dtype=np.float64)
    if times.shape[0] != values.shape[0]:
        raise TimestampError(
            f"{times.shape[0]} timestamps for {values.shape[0]} values; send one timestamp per value or none"
        )
    if not np.all(np.isfinite(times)):
        raise TimestampError("timestamps contain a non-finite value; send unix seconds for every value")
    if times.shape[0] > 1 and not np.all(np.diff(times) > 0):
        raise TimestampError("timestamps do not increase strictly; sort them and drop duplicate timestamps")

    if step_seconds is None:
        if times.shape[0] < 2:
            raise InsufficientDataError(
                f"insufficient data: {times.shape[0]} timestamp cannot give a step; send at least {MIN_OBSERVED_POINTS} points"
            )
        step_seconds = float(np.median(np.diff(times)))
    if not (math.isfinite(step_seconds) and step_seconds > 0):
        raise TimestampError(f"step_seconds {step_seconds!r} is invalid; send a positive number of seconds")

    positions = np.rint((times - times[0]) / step_seconds).astype(np.int64)
    if np.any(np.diff(positions) == 0):
        raise TimestampError(
            f"two timestamps fall into the same step of {step_seconds:g} s; send a smaller step_seconds or one value per step"
        )
    grid_length = int(positions[-1]) + 1
    if grid_length > MAX_INPUT_POINTS:
        raise TimestampError(
            f"timestamps span {grid_length} steps of {step_seconds:g} s, above the maximum of {MAX_INPUT_POINTS}; "
            "send a shorter window or a larger step_seconds"
        )
    grid = np.full(grid_length, math.nan)
    grid[positions] = values
    return grid, step_seconds, float(times[-1])


def _impute(values: np.ndarray) -> tuple[np.ndarray, int, str]:
    """Fill missing points: linear interpolation between observed points, edge carry outside them."""
    missing = np.isnan(values)
    if not missing.any():
        return values, 0, "none"

    observed = np.flatnonzero(~missing)
    first, last = int(observed[0]), int(observed[-1])
    filled = values.copy()
    filled[missing] = np.interp(np.flatnonzero(missing), observed, values[observed])

    edge = first + (values.shape[0] - 1 - last)
    inside = int(missing.sum()) - edge
    methods = [name for name, count in (("linear", inside), ("edge_carry", edge)) if count]
    return filled, int(missing.sum()), "+".join(methods)


def prepare_series(series: SeriesIn | Mapping[str, Any], *, max_horizon: int = MAX_HORIZON) -> PreparedSeries:
    """Validate one series and return it cleaned, or raise a ForecastInputError naming the value and the fix."""
    if not isinstance(series, SeriesIn):
        series = SeriesIn.model_validate(series)
    horizon = check_horizon(series.horizon, max_horizon)
    levels = check_quantile_levels(series.quantile_levels)
    if len(series.values) > MAX_INPUT_POINTS:
        raise ForecastInputError(
            f"{len(series.values)} values are above the maximum of {MAX_INPUT_POINTS}; send a shorter window"
        )

    values = _as_float_array(series.values)
    step_seconds, last_timestamp = series.step_seconds, None
    if series.timestamps is not None:
        values, step_seconds, last_timestamp = _regrid(values, series.timestamps, series.step_seconds)
    elif step_seconds is not None and not (math.isfinite(step_seconds) and step_seconds > 0):
        raise TimestampError(f"step_seconds {step_seconds!r} is invalid; send a positive number of seconds")
    values = values[-MAX_CONTEXT_POINTS:]

    observed = int(np.isfinite(values).sum())
    if observed < MIN_OBSERVED_POINTS:
        raise InsufficientDataError(
            f"insufficient data: {observed} observed points in the context, a forecast needs at least "
            f"{MIN_OBSERVED_POINTS}; send a longer window or fewer missing values"
        )
    filled, imputed, method = _impute(values)
    return PreparedSeries(
        values=filled,
        horizon=horizon,
        quantile_levels=levels,
        step_seconds=step_seconds,
        last_timestamp=last_timestamp,
        imputed_points=imputed,
        imputation=method,
    )


def prepare_batch(series: Sequence[SeriesIn | Mapping[str, Any]], *, max_horizon: int = MAX_HORIZON) -> list[PreparedSeries]:
    """Prepare every series, raising the first error with the series index ("series[2]: ...") in front."""
    prepared = []
    for index, item in enumerate(series):
        try:
            prepared.append(prepare_series(item, max_horizon=max_horizon))
        except ForecastInputError as exc:
            raise type(exc)(f"series[{index}]: {exc}") from exc
    return prepared
