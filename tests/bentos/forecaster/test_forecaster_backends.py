import csv
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from bentos.forecaster.backends import (
    MIN_ETS_POINTS,
    ChronosBackend,
    SeasonalNaiveBackend,
    StatisticalBackend,
    load_backend,
)
from bentos.forecaster.errors import BackendUnavailableError, HorizonError
from bentos.forecaster.hygiene import prepare_batch
from bentos.forecaster.settings import ForecasterSettings

NAB_SERIES = [
    "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    "realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
    "realKnownCause/nyc_taxi.csv",
]
HORIZON = 48


def read_nab(corpus_dir: Path, name: str) -> tuple[list[float], list[float]]:
    with (corpus_dir / "timeseries/nab/data" / name).open() as handle:
        rows = list(csv.DictReader(handle))
    timestamps = [datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC).timestamp() for row in rows]
    return timestamps, [float(row["value"]) for row in rows]


def assert_monotone(result) -> None:
    rows = np.array([result.quantiles[str(level)] for level in result.quantile_levels])
    assert np.all(np.diff(rows, axis=0) >= 0), f"quantiles cross: {rows}"


@pytest.mark.parametrize("name", NAB_SERIES)
def test_statistical_on_nab_series(corpus_dir, name):
    timestamps, values = read_nab(corpus_dir, name)
    context, actual = slice(-1000 - HORIZON, -HORIZON), np.array(values[-HORIZON:])
    [result] = StatisticalBackend().forecast(
        [{"values": values[context], "timestamps": timestamps[context], "horizon": HORIZON}]
    )

    assert result.backend == "statistical"
    assert result.model.startswith("statsforecast/AutoETS")
    # Some NAB files skip a 5-minute step; hygiene puts it back as an imputed point.
    assert result.context_length == 1000 + result.imputed_points
    assert len(result.mean) == HORIZON
    assert len(result.timestamps) == HORIZON
    assert result.timestamps[0] == timestamps[-HORIZON - 1] + result.step_seconds
    assert_monotone(result)

    # MASE against the in-sample one-step naive error; a sane forecaster stays within a few units.
    history = np.array(values[context])
    scale = np.mean(np.abs(np.diff(history)))
    mase = np.mean(np.abs(np.array(result.quantiles["0.5"]) - actual)) / scale
    assert mase < 10, f"MASE {mase:.2f} on {name}"
    lower, upper = np.array(result.quantiles["0.1"]), np.array(result.quantiles["0.9"])
    assert np.all(upper > lower), "an 80% interval of a noisy series must have width"


def test_statistical_diverged_band_uses_seasonal_naive(corpus_dir):
    # On this series AutoETS fits a model whose 80% band reaches about 1e99 around values below 1e7.
    _, values = read_nab(corpus_dir, "realAWSCloudwatch/ec2_network_in_5abac7.csv")
    context = values[2442:4490]

    [result] = StatisticalBackend().forecast([{"values": context, "step_seconds": 300, "horizon": HORIZON}])

    assert result.model.startswith("statsforecast/SeasonalNaive")
    assert max(abs(value) for level in ("0.1", "0.9") for value in result.quantiles[level]) <= max(context)
    assert_monotone(result)


def test_statistical_short_series_uses_seasonal_naive():
    values = [1.0, 2.0, 3.0, 4.0] * 4
    [result] = StatisticalBackend().forecast([{"values": values, "horizon": 4}])
    assert len(values) < MIN_ETS_POINTS
    assert result.model == "statsforecast/SeasonalNaive(season_length=1)"
    assert result.quantiles["0.5"] == [4.0] * 4
    assert_monotone(result)


def test_statistical_constant_and_zero_series():
    results = StatisticalBackend().forecast(
        [{"values": [0.0] * 40, "horizon": 5}, {"values": [7.0] * 40, "horizon": 5}]
    )
    assert results[0].quantiles == {"0.1": [0.0] * 5, "0.5": [0.0] * 5, "0.9": [0.0] * 5}
    assert results[1].mean == pytest.approx([7.0] * 5)


def test_seasonal_naive_repeats_daily_season():
    step = 3600.0
    values = [float(hour % 24) for hour in range(72)]
    timestamps = [step * index for index in range(72)]
    [result] = SeasonalNaiveBackend().forecast([{"values": values, "timestamps": timestamps, "horizon": 24}])
    assert result.backend == "seasonal_naive"
    assert result.model == "statsforecast/SeasonalNaive(season_length=24)"
    assert result.mean == pytest.approx([float(hour) for hour in range(24)])


@pytest.mark.parametrize("kind", ["bolt", "t5"])
def test_chronos_loads_local_model(chronos_models, kind):
    backend = ChronosBackend(str(chronos_models[kind]))
    series = [
        {"values": list(np.linspace(1, 2, 40)), "horizon": 3, "quantile_levels": [0.5, 0.1, 0.9]},
        {"values": list(np.linspace(100, 200, 130)), "horizon": 12},
        {"values": list(np.linspace(0, 1, 20)), "horizon": 5, "quantile_levels": [0.25, 0.75]},
    ]
    results = backend.forecast(series)

    assert [len(result.mean) for result in results] == [3, 12, 5]
    assert results[2].quantile_levels == [0.25, 0.75]
    assert results[0].backend == "chronos"
    assert results[0].model == str(chronos_models[kind])
    assert results[0].model_version.startswith("config sha256:")
    assert "chronos-forecasting" in results[0].model_version
    for result in results:
        assert_monotone(result)
        assert np.all(np.isfinite(result.mean))


def test_bolt_forecast_same_alone_or_in_batch(chronos_models):
    backend = ChronosBackend(str(chronos_models["bolt"]))
    rng = np.random.default_rng(1)
    target = {"values": list(5 + rng.normal(size=37)), "horizon": 7}
    others = [
        {"values": list(1000 + 50 * rng.normal(size=500)), "horizon": 64},
        {"values": list(rng.normal(size=16)), "horizon": 1},
    ]
    [alone] = backend.forecast([target])
    batch = backend.forecast([others[0], target, others[1]])
    for level in ("0.1", "0.5", "0.9"):
        np.testing.assert_allclose(batch[1].quantiles[level], alone.quantiles[level], rtol=1e-4, atol=1e-4)
    assert len(batch[1].mean) == 7


def test_auto_falls_back_to_statistical(tmp_path, caplog):
    missing = tmp_path / "no-such-model"
    with caplog.at_level(logging.WARNING, logger="bentos.forecaster.backends"):
        backend = load_backend(ForecasterSettings(backend="auto", model=str(missing)))
    assert isinstance(backend, StatisticalBackend)
    warnings = [record for record in caplog.records if "failed to load" in record.getMessage()]
    assert len(warnings) == 1
    assert str(missing) in warnings[0].getMessage()

    [result] = backend.forecast([{"values": [float(index % 5) for index in range(40)], "horizon": 3}])
    assert result.backend == "statistical"
    assert f"auto fallback: chronos model {missing} unavailable" in result.model


def test_auto_prefers_chronos(chronos_models):
    backend = load_backend(ForecasterSettings(backend="auto", model=str(chronos_models["bolt"])))
    assert isinstance(backend, ChronosBackend)


def test_explicit_chronos_without_weights_fails(tmp_path):
    with pytest.raises(BackendUnavailableError, match="OPSSEER_FORECAST_BACKEND=chronos"):
        load_backend(ForecasterSettings(backend="chronos", model=str(tmp_path / "absent")))


def test_explicit_backends_selected():
    assert isinstance(load_backend(ForecasterSettings(backend="statistical")), StatisticalBackend)
    assert isinstance(load_backend(ForecasterSettings(backend="seasonal_naive")), SeasonalNaiveBackend)


def test_horizon_above_limit_rejected_by_backend():
    with pytest.raises(HorizonError, match="maximum of 64"):
        prepare_batch([{"values": [1.0] * 10, "horizon": 65}])
