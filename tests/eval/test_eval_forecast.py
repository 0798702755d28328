"""Forecast suite on two NAB series with every backend, Chronos being a tiny random model built here."""

import math

import numpy as np
import pytest

from eval import forecast
from eval.suites import EvalContext


@pytest.fixture(scope="module")
def random_bolt(tmp_path_factory):
    from bentos.forecaster.random_models import save_random_bolt

    return save_random_bolt(tmp_path_factory.mktemp("bolt"))


def test_season_follows_timestamp_spacing():
    assert forecast.choose_season(300, 4000) == (288, "daily")
    assert forecast.choose_season(1800, 10000) == (48, "daily")
    assert forecast.choose_season(3600, 7000) == (24, "daily")
    assert forecast.choose_season(300, 600) == (12, "hourly")
    assert forecast.choose_season(7 * 60, 5000) == (1, "none (last value)")


def test_nab_series_placed_on_grid(corpus_dir):
    series = forecast.load_series(
        corpus_dir / "timeseries/nab/data/realKnownCause/nyc_taxi.csv", "realKnownCause"
    )

    assert series.step_seconds == 1800
    assert series.season_length == 48
    assert len(series.values) == 10320
    assert series.values[0] == 10844
    assert series.gaps == 0


def test_origins_are_non_overlapping_windows():
    series = forecast.Series("s", "c", 0.0, 300.0, np.zeros(1000), gaps=0, season_length=12)

    assert forecast.origins_of(series, 3, 48) == [856, 904, 952]


def test_suite_scores_every_backend(corpus_dir, tmp_path, random_bolt):
    context = EvalContext(corpus_root=corpus_dir, out_dir=tmp_path, work_dir=tmp_path, limit=2, quick=True,
                          show_progress=False)

    result = forecast.run(context, chronos_model=str(random_bolt))

    backends = {run["name"]: run for run in result.details["backends"]}
    assert all(run["available"] for run in backends.values()), backends
    assert all(run["failures"] == [] for run in backends.values())
    assert backends["chronos"]["forecasts"] == 2
    assert "chronos" in result.models
    aggregate = {(row["backend"], row["horizon"]): row for row in result.summary["aggregate"]}
    assert aggregate[(forecast.BASELINE, "all")]["relative_mase"] == pytest.approx(1.0)
    for name in ("seasonal_naive", "statistical", "chronos"):
        row = aggregate[(name, "all")]
        assert row["series_scored"] == 2
        assert math.isfinite(row["relative_wql"])
        assert row["relative_wql"] > 0
    # On the series without gaps, the backend's seasonal naive median equals the eval's baseline forecast.
    clean = [row for row in result.details["scores"]
             if row["series"] == "cpu_utilization_asg_misconfiguration" and row["backend"] == "seasonal_naive"]
    assert [row["relative_mase"] for row in clean] == pytest.approx([1.0, 1.0])
    assert len(result.plots) >= 1
    assert (tmp_path / result.plots[0]).stat().st_size > 5000
    assert "### Per series" in forecast.render(result.to_dict())


def test_missing_chronos_weights_reported(corpus_dir, tmp_path):
    context = EvalContext(corpus_root=corpus_dir, out_dir=tmp_path, work_dir=tmp_path, limit=1, quick=True,
                          show_progress=False)

    result = forecast.run(context, chronos_model=str(tmp_path / "no-such-model"))

    chronos = next(run for run in result.details["backends"] if run["name"].startswith("chronos"))
    assert chronos["available"] is False
    assert chronos["reason"].startswith(("OSError", "ValueError"))
    assert any(note.startswith("chronos") and "not available" in note for note in result.notes)
