import pytest

from bentos.forecaster.breach import analyze_breach, breach_predicted, breach_title, format_duration
from bentos.forecaster.errors import BreachInputError
from bentos.forecaster.schema import ForecastOut


def forecast(quantiles: dict[str, list[float]], step_seconds: float | None = 60.0) -> dict:
    return {"quantile_levels": [float(key) for key in quantiles], "quantiles": quantiles, "step_seconds": step_seconds}


RISING = forecast({"0.1": [0.0, 0.0, 0.0, 0.0], "0.5": [1.0, 2.0, 3.0, 4.0], "0.9": [2.0, 3.0, 4.0, 5.0]})


def test_rising_forecast_crossing_times():
    breach = analyze_breach(RISING, 3.0)
    assert breach["time_to_p90_seconds"] == 120.0
    assert breach["time_to_p50_seconds"] == 180.0
    assert breach["horizon_seconds"] == 240.0
    assert breach["direction"] == "above"
    assert breach["threshold"] == 3.0


def test_probability_is_max_step_exceedance():
    # Step 4: F(3) = 0.1 + (0.5 - 0.1) * 3 / 4 = 0.4, so P = 0.6; earlier steps give 0.1 and 0.5.
    assert analyze_breach(RISING, 3.0)["probability"] == pytest.approx(0.6)


def test_threshold_never_reached():
    breach = analyze_breach(RISING, 100.0)
    assert breach["time_to_p50_seconds"] is None
    assert breach["time_to_p90_seconds"] is None
    assert breach["probability"] == 0.0
    assert not breach_predicted(breach)


def test_below_direction_uses_low_quantile():
    breach = analyze_breach(RISING, 0.5, direction="below")
    assert breach["time_to_p90_seconds"] == 60.0
    assert breach["time_to_p50_seconds"] is None
    # Step 1: F(0.5) = 0.1 + 0.4 * 0.5 = 0.3.
    assert breach["probability"] == pytest.approx(0.3)


def test_missing_level_interpolated():
    quantiles = {"0.1": [0.0, 0.0], "0.5": [1.0, 1.0], "0.8": [2.0, 2.0], "0.95": [5.0, 8.0]}
    # 0.9 lies two thirds of the way from 0.8 to 0.95: 2 + (5 - 2) * 2/3 = 4 at step 1, 6 at step 2.
    breach = analyze_breach(forecast(quantiles, 30.0), 5.0)
    assert breach["time_to_p90_seconds"] == 60.0
    assert breach["time_to_p50_seconds"] is None


def test_point_mass_forecast():
    breach = analyze_breach(forecast({"0.1": [5.0] * 3, "0.5": [5.0] * 3, "0.9": [5.0] * 3}), 4.0)
    assert breach["time_to_p50_seconds"] == 60.0
    assert breach["probability"] == 1.0


def test_accepts_forecast_model_and_step_override():
    model = ForecastOut(
        quantile_levels=[0.1, 0.5, 0.9],
        quantiles=RISING["quantiles"],
        mean=[1.0, 2.0, 3.0, 4.0],
        step_seconds=None,
        model="test",
        model_version="1",
        backend="statistical",
        imputed_points=0,
        imputation="none",
        context_length=10,
    )
    assert analyze_breach(model, 3.0, step_seconds=15.0)["time_to_p90_seconds"] == 30.0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"threshold": 1.0, "direction": "sideways"}, "direction"),
        ({"threshold": float("nan")}, "threshold"),
    ],
)
def test_invalid_arguments_rejected(arguments, message):
    with pytest.raises(BreachInputError, match=message):
        analyze_breach(RISING, **arguments)


def test_missing_step_rejected():
    with pytest.raises(BreachInputError, match="step_seconds"):
        analyze_breach(forecast(RISING["quantiles"], None), 3.0)


def test_title_of_predicted_breach():
    title = breach_title(analyze_breach(RISING, 3.0), unit="s")
    assert title == "Forecast: p90 crosses 3 s in 2m (p50 in 3m, probability 60%)"


def test_title_without_breach():
    title = breach_title(analyze_breach(RISING, 100.0))
    assert title == "Forecast: p90 stays on the safe side of 100 within 4m (probability 0%)"


@pytest.mark.parametrize(("seconds", "text"), [(45, "45s"), (240, "4m"), (270, "4m 30s"), (7500, "2h 5m"), (0, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_breach_and_hygiene_import_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, bentos.forecaster.breach, bentos.forecaster.hygiene; "
        "assert not {'torch', 'bentoml', 'chronos'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
