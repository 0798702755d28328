"""Fault settings for toyprod: extra latency (fixed and sinusoidal) and injected 5xx errors."""

import math
import random

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

# Upper bounds keep a typo (seconds typed as milliseconds) from parking every request for hours.
MAX_LATENCY_MS = 60_000.0
MAX_SINE_PERIOD_S = 86_400.0
DEFAULT_SINE_PERIOD_S = 60.0


def _check_latency_ms(name: str, value: float) -> float:
    if value < 0 or value > MAX_LATENCY_MS:
        raise ValueError(
            f"{name} must be between 0 and {MAX_LATENCY_MS:g} ms, got {value:g}; pass 0 to add no latency"
        )
    return value


def _check_sine_period_s(value: float) -> float:
    if value <= 0 or value > MAX_SINE_PERIOD_S:
        raise ValueError(
            f"sine_period_s must be greater than 0 and at most {MAX_SINE_PERIOD_S:g} s, got {value:g}; "
            f"the default is {DEFAULT_SINE_PERIOD_S:g}"
        )
    return value


def _check_error_rate(value: float) -> float:
    if value < 0 or value > 1:
        raise ValueError(
            f"error_rate must be a fraction between 0 and 1, got {value:g}; pass 0.05 for 5% of requests"
        )
    return value


class Chaos(BaseModel):
    """Faults that toyprod injects into its business endpoints (`/orders`).

    The extra delay at `t` seconds after the faults were set is
    `latency_ms + sine_amplitude_ms * (1 - cos(2π t / sine_period_s)) / 2`, so the sinusoidal part starts at 0,
    peaks at `sine_amplitude_ms` after half a period, and returns to 0 after a full period.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    latency_ms: float = 0.0
    sine_amplitude_ms: float = 0.0
    sine_period_s: float = DEFAULT_SINE_PERIOD_S
    error_rate: float = 0.0

    @field_validator("latency_ms", "sine_amplitude_ms")
    @classmethod
    def _validate_latency(cls, value: float, info: ValidationInfo) -> float:
        return _check_latency_ms(info.field_name, value)

    @field_validator("sine_period_s")
    @classmethod
    def _validate_period(cls, value: float) -> float:
        return _check_sine_period_s(value)

    @field_validator("error_rate")
    @classmethod
    def _validate_error_rate(cls, value: float) -> float:
        return _check_error_rate(value)

    def delay_s(self, elapsed_s: float) -> float:
        """Return the extra delay in seconds for a request `elapsed_s` seconds after these faults were set."""
        phase = 2 * math.pi * elapsed_s / self.sine_period_s
        sine_ms = self.sine_amplitude_ms * (1 - math.cos(phase)) / 2
        return (self.latency_ms + sine_ms) / 1000

    def should_fail(self, rng: random.Random | None = None) -> bool:
        """Draw whether one request fails, with probability `error_rate`."""
        if self.error_rate <= 0:
            return False
        draw = (rng or random).random()
        return draw < self.error_rate


class ChaosUpdate(BaseModel):
    """A partial change to the faults: fields left out keep their current value."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    latency_ms: float | None = None
    sine_amplitude_ms: float | None = None
    sine_period_s: float | None = None
    error_rate: float | None = None

    @field_validator("latency_ms", "sine_amplitude_ms")
    @classmethod
    def _validate_latency(cls, value: float | None, info: ValidationInfo) -> float | None:
        return None if value is None else _check_latency_ms(info.field_name, value)

    @field_validator("sine_period_s")
    @classmethod
    def _validate_period(cls, value: float | None) -> float | None:
        return None if value is None else _check_sine_period_s(value)

    @field_validator("error_rate")
    @classmethod
    def _validate_error_rate(cls, value: float | None) -> float | None:
        return None if value is None else _check_error_rate(value)

    def apply_to(self, current: Chaos) -> Chaos:
        """Return `current` with the fields set in this update replaced."""
        changes = self.model_dump(exclude_none=True)
        return current.model_copy(update=changes)
