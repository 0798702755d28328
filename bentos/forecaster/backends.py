"""Forecast backends: Chronos (Chronos-Bolt or Chronos-T5), statistical (statsforecast AutoETS) and seasonal naive.

Every backend has the same in-process API, which the service and the evaluation harness both call:

    backend.predict(prepared: Sequence[PreparedSeries]) -> list[ForecastOut]

`prepared` comes from `hygiene.prepare_series` or `hygiene.prepare_batch`; each item carries its own horizon and
quantile levels, and the result list has the same length and order. `backend.forecast(series)` does both steps.
The quantiles of each result increase with the level at every step.

`load_backend(settings)` picks the backend that OPSSEER_FORECAST_BACKEND names; with `auto` it falls back from
Chronos to the statistical backend when the Chronos weights cannot be loaded, logs that once, and every result's
`model` field names the fallback.
"""

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from bentos.forecaster.errors import BackendUnavailableError
from bentos.forecaster.hygiene import MAX_HORIZON, PreparedSeries, prepare_batch
from bentos.forecaster.schema import ForecastOut, SeriesIn, level_key
from bentos.forecaster.settings import ForecasterSettings

logger = logging.getLogger(__name__)

# AutoETS needs enough points for a stable fit; below this the statistical backend uses seasonal naive.
# A forecast band wider than this many times the largest absolute value of the context counts as diverged.
MAX_BAND_SCALE = 100.0
MIN_ETS_POINTS = 24
# statsforecast's ETS fits seasonal models only up to this season length (longer seasons fit as non-seasonal).
MAX_ETS_SEASON = 24
# Candidate seasons, longest first: a daily cycle, then an hourly one.
SEASON_PERIODS_SECONDS = (86400.0, 3600.0)
# The interval statsforecast is asked for; other levels follow from its normal approximation.
INTERVAL_LEVEL = 80
LOAD_ERRORS = (OSError, ValueError)


def build_output(
    item: PreparedSeries, quantiles: np.ndarray, mean: np.ndarray, *, model: str, model_version: str, backend: str
) -> ForecastOut:
    """Assemble a ForecastOut from quantiles shaped (levels, horizon), sorted across levels at every step."""
    quantiles = np.sort(np.asarray(quantiles, dtype=np.float64)[:, : item.horizon], axis=0)
    return ForecastOut(
        quantile_levels=list(item.quantile_levels),
        quantiles={level_key(level): quantiles[row].tolist() for row, level in enumerate(item.quantile_levels)},
        mean=np.asarray(mean, dtype=np.float64)[: item.horizon].tolist(),
        timestamps=item.forecast_timestamps(),
        step_seconds=item.step_seconds,
        model=model,
        model_version=model_version,
        backend=backend,
        imputed_points=item.imputed_points,
        imputation=item.imputation,
        context_length=item.context_length,
    )


class ForecastBackend:
    """Base class: `predict` maps prepared series to forecasts; `name` is the ForecastOut.backend value."""

    name: str = ""
    model: str = ""
    model_version: str = ""
    max_horizon: int = MAX_HORIZON

    def predict(self, prepared: Sequence[PreparedSeries]) -> list[ForecastOut]:
        raise NotImplementedError

    def forecast(self, series: Sequence[SeriesIn | Mapping[str, Any]]) -> list[ForecastOut]:
        """Validate and clean `series` (raising ForecastInputError), then predict."""
        return self.predict(prepare_batch(series, max_horizon=self.max_horizon))


def _model_revision(model_id: str, config: Any) -> str:
    """Name the weights: the Hub commit when the model came from the Hub, else a hash of the local config."""
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return f"revision {commit[:12]}"
    config_file = Path(model_id) / "config.json"
    if config_file.is_file():
        return f"config sha256:{hashlib.sha256(config_file.read_bytes()).hexdigest()[:12]}"
    return "revision unknown"


class ChronosBackend(ForecastBackend):
    """Chronos-Bolt or Chronos-T5 through `BaseChronosPipeline`, on CUDA in bfloat16 when a GPU is visible."""

    name = "chronos"

    def __init__(
        self, model_id: str, *, device: str = "auto", num_samples: int = 20, torch_threads: int | None = None
    ) -> None:
        import chronos
        import torch
        from chronos import BaseChronosPipeline

        if torch_threads is not None:
            # On CPUs shared with other processes, fewer threads than cores avoid oversubscription stalls.
            torch.set_num_threads(torch_threads)

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        self.pipeline = BaseChronosPipeline.from_pretrained(model_id, device_map=device, torch_dtype=dtype)
        self.device = device
        self.is_bolt = type(self.pipeline).__name__ == "ChronosBoltPipeline"
        self.num_samples = num_samples
        self.model = model_id
        config = self.pipeline.inner_model.config
        self.model_version = f"{_model_revision(model_id, config)}; chronos-forecasting {chronos.__version__}"
        logger.info(
            "chronos model %s loaded: pipeline=%s device=%s dtype=%s version=%s",
            model_id, type(self.pipeline).__name__, device, dtype, self.model_version,
        )

    def predict(self, prepared: Sequence[PreparedSeries]) -> list[ForecastOut]:
        """Forecast each series; series sharing quantile levels go to Chronos as one batch.

        A batch is predicted to its longest horizon and each result truncated to its own. Chronos left-pads
        shorter contexts with NaN and masks the padding. A Chronos-Bolt forecast therefore does not depend on
        the other series in its batch, up to float rounding, and the tests check this.
        """
        import torch

        results: list[ForecastOut | None] = [None] * len(prepared)
        groups: dict[tuple[float, ...], list[int]] = {}
        for index, item in enumerate(prepared):
            groups.setdefault(item.quantile_levels, []).append(index)

        for levels, indices in groups.items():
            horizon = max(prepared[index].horizon for index in indices)
            contexts = [torch.tensor(prepared[index].values, dtype=torch.float32) for index in indices]
            extra = {} if self.is_bolt else {"num_samples": self.num_samples}
            with torch.inference_mode():
                quantiles, mean = self.pipeline.predict_quantiles(
                    contexts, prediction_length=horizon, quantile_levels=list(levels), **extra
                )
            # (batch, horizon, levels) -> (batch, levels, horizon)
            quantiles = quantiles.float().cpu().numpy().transpose(0, 2, 1)
            # NOTE: Chronos-Bolt returns its 0.5 quantile as the mean, taken before the sort across levels, so it
            # can differ from quantiles["0.5"] where an untrained or poorly fitted model's quantiles cross.
            mean = mean.float().cpu().numpy()
            for row, index in enumerate(indices):
                results[index] = build_output(
                    prepared[index], quantiles[row], mean[row], model=self.model,
                    model_version=self.model_version, backend=self.name,
                )
        return [result for result in results if result is not None]


def infer_season_length(length: int, step_seconds: float | None, *, max_season: int | None = None) -> int:
    """Return the longest daily or hourly season that the step divides and the series covers twice, else 1."""
    if step_seconds is None:
        return 1
    for period in SEASON_PERIODS_SECONDS:
        season = period / step_seconds
        rounded = round(season)
        if rounded < 2 or abs(season - rounded) > 1e-6 or 2 * rounded > length:
            continue
        if max_season is not None and rounded > max_season:
            continue
        return rounded
    return 1


def _quantiles_from_interval(result: Mapping[str, np.ndarray], levels: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Turn statsforecast's mean and 80 % interval into quantiles, with the normal law its intervals assume."""
    mean = np.asarray(result["mean"], dtype=np.float64)
    upper = np.asarray(result[f"hi-{INTERVAL_LEVEL}"], dtype=np.float64)
    sigma = np.maximum(upper - mean, 0.0) / NormalDist().inv_cdf(0.5 + INTERVAL_LEVEL / 200)
    rows = [mean + NormalDist().inv_cdf(level) * sigma for level in levels]
    return np.vstack(rows), mean


def _seasonal_naive(item: PreparedSeries) -> tuple[np.ndarray, np.ndarray, str]:
    from statsforecast.models import SeasonalNaive

    season = infer_season_length(item.context_length, item.step_seconds)
    result = SeasonalNaive(season_length=season).forecast(y=item.values, h=item.horizon, level=[INTERVAL_LEVEL])
    quantiles, mean = _quantiles_from_interval(result, item.quantile_levels)
    if not (np.all(np.isfinite(quantiles)) and np.all(np.isfinite(mean))):
        # A zero-variance residual can give NaN intervals; the point forecast is then the whole forecast.
        mean = np.nan_to_num(mean, nan=float(item.values[-1]))
        quantiles = np.vstack([mean] * len(item.quantile_levels))
    return quantiles, mean, f"statsforecast/SeasonalNaive(season_length={season})"


class SeasonalNaiveBackend(ForecastBackend):
    """Repeat the last season (daily or hourly when the step allows, else the last value); the evaluation baseline."""

    name = "seasonal_naive"
    model = "statsforecast/SeasonalNaive"

    def __init__(self) -> None:
        import statsforecast

        self.model_version = f"statsforecast {statsforecast.__version__}"

    def predict(self, prepared: Sequence[PreparedSeries]) -> list[ForecastOut]:
        outputs = []
        for item in prepared:
            quantiles, mean, model = _seasonal_naive(item)
            outputs.append(
                build_output(item, quantiles, mean, model=model, model_version=self.model_version, backend=self.name)
            )
        return outputs


class StatisticalBackend(ForecastBackend):
    """statsforecast AutoETS per series, with seasonal naive for series shorter than MIN_ETS_POINTS or when ETS fails.

    `fallback_reason` is set when `auto` chose this backend because Chronos could not load; it is appended to
    every result's model field.
    """

    name = "statistical"
    model = "statsforecast/AutoETS"

    def __init__(self, *, fallback_reason: str | None = None) -> None:
        import statsforecast

        self.model_version = f"statsforecast {statsforecast.__version__}"
        self.suffix = f" (auto fallback: {fallback_reason})" if fallback_reason else ""

    def _ets(self, item: PreparedSeries) -> tuple[np.ndarray, np.ndarray, str] | None:
        from statsforecast.models import AutoETS

        season = infer_season_length(item.context_length, item.step_seconds, max_season=MAX_ETS_SEASON)
        try:
            result = AutoETS(season_length=season).forecast(y=item.values, h=item.horizon, level=[INTERVAL_LEVEL])
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            logger.info("AutoETS failed on a series of %d points (%s); using seasonal naive", item.context_length, exc)
            return None
        quantiles, mean = _quantiles_from_interval(result, item.quantile_levels)
        if not (np.all(np.isfinite(quantiles)) and np.all(np.isfinite(mean))):
            logger.info("AutoETS gave non-finite values on a series of %d points; using seasonal naive", item.context_length)
            return None
        # A multiplicative ETS model can fit with an exploding variance: on one NAB series its 80% band
        # reached 1e129 around values below 1e7. Such a band carries no information, so seasonal naive replaces it.
        scale = float(np.max(np.abs(item.values))) or 1.0
        if float(np.max(np.abs(quantiles))) > MAX_BAND_SCALE * scale:
            logger.info(
                "AutoETS band reached %.3g on a series whose values stay within %.3g; using seasonal naive",
                float(np.max(np.abs(quantiles))), scale,
            )
            return None
        return quantiles, mean, f"statsforecast/AutoETS(season_length={season})"

    def predict(self, prepared: Sequence[PreparedSeries]) -> list[ForecastOut]:
        outputs = []
        for item in prepared:
            fitted = self._ets(item) if item.context_length >= MIN_ETS_POINTS else None
            quantiles, mean, model = fitted or _seasonal_naive(item)
            outputs.append(
                build_output(
                    item, quantiles, mean, model=model + self.suffix, model_version=self.model_version, backend=self.name
                )
            )
        return outputs


def load_backend(settings: ForecasterSettings) -> ForecastBackend:
    """Load the backend the settings name; `auto` falls back to statistical, `chronos` raises BackendUnavailableError."""
    if settings.backend == "statistical":
        return StatisticalBackend()
    if settings.backend == "seasonal_naive":
        return SeasonalNaiveBackend()

    try:
        return ChronosBackend(
            settings.model,
            device=settings.device,
            num_samples=settings.chronos_num_samples,
            torch_threads=settings.torch_threads,
        )
    except LOAD_ERRORS as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no message'}"
        if settings.backend == "chronos":
            raise BackendUnavailableError(
                f"OPSSEER_FORECAST_BACKEND=chronos but Chronos model {settings.model!r} failed to load ({reason}); "
                "put the weights in the Hugging Face cache, point OPSSEER_FORECAST_MODEL at a local model directory, "
                "or set OPSSEER_FORECAST_BACKEND=statistical"
            ) from exc
        logger.warning(
            "forecast backend auto: Chronos model %r failed to load (%s); using the statistical backend", settings.model, reason
        )
        return StatisticalBackend(fallback_reason=f"chronos model {settings.model} unavailable")
