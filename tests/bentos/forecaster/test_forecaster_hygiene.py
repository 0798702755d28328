import math

import numpy as np
import pytest

from bentos.forecaster.errors import (
    ForecastInputError,
    HorizonError,
    InsufficientDataError,
    QuantileLevelError,
    TimestampError,
)
from bentos.forecaster.hygiene import MAX_CONTEXT_POINTS, MIN_OBSERVED_POINTS, prepare_batch, prepare_series


def series(values, **fields):
    return {"values": values, "horizon": fields.pop("horizon", 4), **fields}


def test_nan_inf_null_are_interpolated():
    values = [1.0, None, 3.0, math.nan, 5.0, math.inf, 7.0, -math.inf, 9.0, 10.0, 11.0, 12.0]
    prepared = prepare_series(series(values))
    assert prepared.values.tolist() == [float(value) for value in range(1, 13)]
    assert prepared.imputed_points == 4
    assert prepared.imputation == "linear"


def test_edges_are_carried():
    prepared = prepare_series(series([None, None, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, None]))
    assert prepared.values[:3].tolist() == [2.0, 2.0, 2.0]
    assert prepared.values[-1] == 9.0
    assert prepared.imputed_points == 3
    assert prepared.imputation == "edge_carry"


def test_timestamp_gaps_are_regridded():
    # Prometheus leaves out steps without samples: 180 s and 240 s are missing here.
    timestamps = [0, 60, 120, 300, 360, 420, 480, 540, 600]
    values = [0.0, 1.0, 2.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    prepared = prepare_series(series(values, timestamps=timestamps))
    assert prepared.step_seconds == 60.0
    assert prepared.values.tolist() == [float(value) for value in range(11)]
    assert prepared.imputed_points == 2
    assert prepared.imputation == "linear"
    assert prepared.context_length == 11
    assert prepared.forecast_timestamps() == [660.0, 720.0, 780.0, 840.0]


def test_explicit_step_regrids():
    timestamps = [0, 30, 60, 90, 120, 150, 180, 240]
    prepared = prepare_series(series([1.0] * 8, timestamps=timestamps, step_seconds=30))
    assert prepared.context_length == 9
    assert prepared.imputed_points == 1


def test_all_missing_rejected():
    with pytest.raises(InsufficientDataError, match="insufficient data: 0 observed"):
        prepare_series(series([None, math.nan, math.inf] * 10))


def test_too_short_rejected():
    with pytest.raises(InsufficientDataError, match=f"insufficient data.*at least {MIN_OBSERVED_POINTS}"):
        prepare_series(series([1.0] * (MIN_OBSERVED_POINTS - 1)))


def test_minimum_length_accepted():
    assert prepare_series(series([1.0] * MIN_OBSERVED_POINTS)).context_length == MIN_OBSERVED_POINTS


def test_constant_and_zero_series_accepted():
    assert prepare_series(series([0.0] * 20)).values.tolist() == [0.0] * 20
    assert prepare_series(series([3.5] * 20)).imputation == "none"


@pytest.mark.parametrize("horizon", [0, -1, 65])
def test_horizon_outside_limits_rejected(horizon):
    with pytest.raises(HorizonError, match="64") as caught:
        prepare_series(series([1.0] * 10, horizon=horizon))
    assert str(horizon) in str(caught.value)


def test_horizon_limit_accepted():
    assert prepare_series(series([1.0] * 10, horizon=64)).horizon == 64


@pytest.mark.parametrize("levels", [[0.0, 0.5], [0.5, 1.0], [1.5], [], [0.5, 0.5], [-0.1]])
def test_quantile_levels_outside_unit_interval_rejected(levels):
    with pytest.raises(QuantileLevelError):
        prepare_series(series([1.0] * 10, quantile_levels=levels))


def test_quantile_levels_sorted():
    assert prepare_series(series([1.0] * 10, quantile_levels=[0.9, 0.1, 0.5])).quantile_levels == (0.1, 0.5, 0.9)


@pytest.mark.parametrize(
    ("timestamps", "message"),
    [([0, 60, 60, 120, 180, 240, 300, 360], "increase"), ([0, 60], "one timestamp per value")],
)
def test_bad_timestamps_rejected(timestamps, message):
    with pytest.raises(TimestampError, match=message):
        prepare_series(series([1.0] * 8, timestamps=timestamps))


def test_long_context_keeps_latest_points():
    values = list(range(MAX_CONTEXT_POINTS + 500))
    prepared = prepare_series(series([float(value) for value in values]))
    assert prepared.context_length == MAX_CONTEXT_POINTS
    assert prepared.values[-1] == values[-1]


def test_batch_error_names_series_index():
    with pytest.raises(InsufficientDataError, match=r"^series\[1\]: insufficient data"):
        prepare_batch([series([1.0] * 10), series([1.0, 2.0])])


def test_errors_are_value_errors():
    assert issubclass(ForecastInputError, ValueError)
    assert np.isfinite(prepare_series(series([1e300] * 10)).values).all()
