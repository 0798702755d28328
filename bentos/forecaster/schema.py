"""Request and response models of the forecast API, as the gateway's `/forecast` contract fixes them."""

from typing import Literal

from pydantic import BaseModel, Field

DEFAULT_QUANTILE_LEVELS = [0.1, 0.5, 0.9]


class SeriesIn(BaseModel):
    """One metric series to forecast. Null, NaN and infinite values count as missing."""

    values: list[float | None]
    timestamps: list[float] | None = Field(default=None, description="unix seconds of each value")
    step_seconds: float | None = Field(default=None, description="sampling step; the median spacing if unset")
    horizon: int = Field(description="number of future steps to forecast")
    quantile_levels: list[float] = Field(default_factory=lambda: list(DEFAULT_QUANTILE_LEVELS))


class ForecastOut(BaseModel):
    """Quantile forecast of one series, with the model that made it and how the input was cleaned."""

    quantile_levels: list[float]
    quantiles: dict[str, list[float]] = Field(description='level as a string ("0.1") to one value per step')
    mean: list[float]
    timestamps: list[float] | None = Field(default=None, description="unix seconds of each forecast step")
    step_seconds: float | None = None
    model: str
    model_version: str
    backend: Literal["chronos", "statistical", "seasonal_naive"]
    imputed_points: int
    imputation: str
    context_length: int


def level_key(level: float) -> str:
    """Format a quantile level as a key of `ForecastOut.quantiles` ("0.1", "0.5", "0.95")."""
    return str(float(level))
