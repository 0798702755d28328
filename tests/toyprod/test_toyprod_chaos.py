import random

import pytest
from pydantic import ValidationError

from toyprod.chaos import Chaos, ChaosUpdate


def test_delay_is_zero_without_faults():
    assert Chaos().delay_s(12.3) == 0.0


def test_fixed_latency_is_constant():
    chaos = Chaos(latency_ms=150)

    assert chaos.delay_s(0) == pytest.approx(0.150)
    assert chaos.delay_s(37.5) == pytest.approx(0.150)


def test_sine_delay_peaks_at_half_period():
    chaos = Chaos(latency_ms=100, sine_amplitude_ms=400, sine_period_s=20)

    assert chaos.delay_s(0) == pytest.approx(0.100)
    assert chaos.delay_s(5) == pytest.approx(0.300)
    assert chaos.delay_s(10) == pytest.approx(0.500)
    assert chaos.delay_s(20) == pytest.approx(0.100)


def test_error_rate_bounds_always_and_never():
    rng = random.Random(7)

    assert not any(Chaos(error_rate=0).should_fail(rng) for _ in range(1000))
    assert all(Chaos(error_rate=1).should_fail(rng) for _ in range(1000))


def test_error_rate_fraction_fails_about_that_share():
    rng = random.Random(7)
    failures = sum(Chaos(error_rate=0.2).should_fail(rng) for _ in range(10_000))

    assert 1800 < failures < 2200


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("latency_ms", -1, "latency_ms must be between 0 and 60000 ms, got -1"),
        ("latency_ms", 60_001, "latency_ms must be between 0 and 60000 ms, got 60001"),
        ("sine_amplitude_ms", -5, "sine_amplitude_ms must be between 0 and 60000 ms, got -5"),
        ("sine_period_s", 0, "sine_period_s must be greater than 0"),
        ("error_rate", 1.5, "error_rate must be a fraction between 0 and 1, got 1.5"),
        ("error_rate", -0.1, "error_rate must be a fraction between 0 and 1, got -0.1"),
    ],
)
def test_invalid_value_names_field_and_value(field, value, expected):
    with pytest.raises(ValidationError) as info:
        Chaos(**{field: value})

    errors = info.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"] == (field,)
    assert expected in errors[0]["msg"]


def test_non_finite_latency_is_rejected():
    with pytest.raises(ValidationError) as info:
        Chaos(latency_ms=float("inf"))

    assert info.value.errors()[0]["loc"] == ("latency_ms",)


def test_update_changes_only_given_fields():
    current = Chaos(latency_ms=100, sine_amplitude_ms=50, sine_period_s=30, error_rate=0.1)

    updated = ChaosUpdate(error_rate=0.5).apply_to(current)

    assert updated == Chaos(latency_ms=100, sine_amplitude_ms=50, sine_period_s=30, error_rate=0.5)


def test_update_validates_each_given_field():
    with pytest.raises(ValidationError) as info:
        ChaosUpdate(sine_period_s=-2)

    assert info.value.errors()[0]["loc"] == ("sine_period_s",)
