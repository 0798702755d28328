"""Forecast suite: rolling-origin evaluation of every forecaster backend on NAB series.

Series: NAB realKnownCause and realAWSCloudwatch (corpus timeseries/nab/data/). Each series is placed on a
regular grid at its median timestamp spacing (missing steps become gaps, which the forecaster's hygiene
imputes in the context and the metrics skip in the targets). Origins are the last ORIGINS non-overlapping
windows of the longest horizon. Each origin is forecast once at the longest horizon through the backend's
in-process `predict`, and the shorter horizons score the first 12 and 24 steps of that forecast. For these
backends that equals a direct forecast, because Chronos-Bolt emits all 64 steps in one pass and ETS and
seasonal naive are deterministic.

Scores: MASE (scaled by the in-sample seasonal naive error of the whole history before the origin) and WQL
over the quantile levels 0.1 to 0.9. Per series, a backend's score is divided by the score of the eval's own
seasonal naive forecast, which repeats the last season and sets every quantile to it. The ratios are then
aggregated over series by the geometric mean, as Ansari et al. do in "Chronos: Learning the Language of Time
Series" (2024).
"""

import csv
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from eval import metrics, plots
from eval.corpus import Corpus
from eval.errors import SuiteUnavailable
from eval.report import SuiteResult, table
from eval.suites import EvalContext

logger = logging.getLogger(__name__)

TITLE = "Forecast: NAB series, rolling origins, relative to seasonal naive"
NAB_DIR = "timeseries/nab/data"
CATEGORIES = ("realKnownCause", "realAWSCloudwatch")
HORIZONS = (12, 24, 48)
QUICK_HORIZONS = (12, 24)
QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ORIGINS = 5
QUICK_ORIGINS = 1
# Chronos-Bolt's context length; it also covers two days of 5-minute data, so every backend can see a daily cycle.
CONTEXT_POINTS = 2048
DAY_SECONDS = 86400.0
HOUR_SECONDS = 3600.0
BASELINE = "seasonal naive (eval reference)"
BAND = (0.1, 0.9)
PLOT_SERIES = ("nyc_taxi", "ec2_cpu_utilization_5f5533", "machine_temperature_system_failure")


@dataclass
class Series:
    """One NAB series on a regular grid; NaN marks a step without an observation."""

    name: str
    category: str
    start: float
    step_seconds: float
    values: np.ndarray
    gaps: int
    season_length: int = 1
    season_name: str = "none"


@dataclass
class BackendRun:
    name: str
    available: bool
    reason: str = ""
    model: str = ""
    model_version: str = ""
    seconds: float = 0.0
    forecasts: int = 0
    failures: list[str] = field(default_factory=list)


def load_series(path, category: str) -> Series:
    """Read a NAB CSV (timestamp,value) and place it on a grid of its median spacing."""
    times, values = [], []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            moment = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            times.append(moment.timestamp())
            values.append(float(row["value"]))
    stamps = np.asarray(times)
    order = np.argsort(stamps, kind="stable")
    stamps, observed = stamps[order], np.asarray(values)[order]
    step = float(np.median(np.diff(stamps)))
    positions = np.rint((stamps - stamps[0]) / step).astype(int)
    grid = np.full(positions[-1] + 1, math.nan)
    grid[positions] = observed  # a later duplicate of a step wins
    series = Series(path.stem, category, float(stamps[0]), step, grid, gaps=int(np.isnan(grid).sum()))
    series.season_length, series.season_name = choose_season(step, len(grid))
    return series


def choose_season(step_seconds: float, length: int) -> tuple[int, str]:
    """Pick a daily season when the step divides a day and the series spans 4 days, else hourly, else none."""
    for period, name in ((DAY_SECONDS, "daily"), (HOUR_SECONDS, "hourly")):
        season = period / step_seconds
        if season >= 2 and abs(season - round(season)) < 1e-6 and length >= 4 * round(season):
            return round(season), name
    return 1, "none (last value)"


def list_series(corpus: Corpus) -> list[Series]:
    root = corpus.path(NAB_DIR)
    found = []
    for category in CATEGORIES:
        for path in sorted((root / category).glob("*.csv")):
            found.append(load_series(path, category))
    return found


def origins_of(series: Series, count: int, longest: int) -> list[int]:
    """Return origin indices: the last `count` non-overlapping windows of `longest` steps, oldest first."""
    length = len(series.values)
    origins = [length - longest * (index + 1) for index in range(count)]
    minimum = 2 * series.season_length + 1
    return sorted(origin for origin in origins if origin >= minimum)


def load_backends(chronos_model: str) -> tuple[dict[str, Any], list[BackendRun]]:
    """Load every forecaster backend that can load here; a Chronos model that cannot is reported with the reason."""
    try:
        from bentos.forecaster import backends as forecaster_backends
    except ImportError as exc:
        raise SuiteUnavailable(f"the forecaster package bentos.forecaster is not importable: {exc}") from None

    loaded, runs = {}, []
    for name, build in (
        ("seasonal_naive", forecaster_backends.SeasonalNaiveBackend),
        ("statistical", forecaster_backends.StatisticalBackend),
        ("chronos", lambda: forecaster_backends.ChronosBackend(chronos_model)),
    ):
        try:
            backend = build()
        except (OSError, ValueError, ImportError, RuntimeError) as exc:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no message'}"
            if name == "chronos":
                reason += " (loaded offline, HF_HUB_OFFLINE=1: put the weights in the Hugging Face cache or set OPSSEER_FORECAST_MODEL to a model directory)"
            label = f"{name} ({chronos_model})" if name == "chronos" else name
            logger.warning("forecast backend %s not available: %s", label, reason)
            runs.append(BackendRun(label, available=False, reason=reason))
            continue
        loaded[name] = backend
        runs.append(BackendRun(name, available=True, model=backend.model, model_version=backend.model_version))
    return loaded, runs


def _series_in(series: Series, origin: int, horizon: int) -> dict[str, Any]:
    context = series.values[max(0, origin - CONTEXT_POINTS):origin]
    return {
        "values": [None if math.isnan(value) else float(value) for value in context],
        "timestamps": None,
        "step_seconds": series.step_seconds,
        "horizon": horizon,
        "quantile_levels": list(QUANTILE_LEVELS),
    }


def _quantile_matrix(output: Any) -> np.ndarray:
    """Return the forecast's quantiles as an array shaped (levels, horizon) in QUANTILE_LEVELS order."""
    from bentos.forecaster.schema import level_key

    return np.vstack([np.asarray(output.quantiles[level_key(level)], dtype=float) for level in QUANTILE_LEVELS])


def forecast_series(backend: Any, run: BackendRun, series: Series, origins: list[int], horizon: int) -> dict[int, np.ndarray]:
    """Forecast every origin of one series in one call; an origin that fails is recorded and left out."""
    from bentos.forecaster.errors import ForecastError
    from bentos.forecaster.hygiene import prepare_series

    prepared, prepared_origins = [], []
    for origin in origins:
        try:
            prepared.append(prepare_series(_series_in(series, origin, horizon)))
            prepared_origins.append(origin)
        except ForecastError as exc:
            run.failures.append(f"{series.name} origin {origin}: {exc}")
    if not prepared:
        return {}
    started = time.perf_counter()
    try:
        outputs = backend.predict(prepared)
    except (ValueError, RuntimeError, ArithmeticError) as exc:
        run.failures.append(f"{series.name}: {type(exc).__name__}: {exc}")
        return {}
    run.seconds += time.perf_counter() - started
    run.forecasts += len(outputs)
    if outputs and not run.model_version:
        run.model_version = outputs[0].model_version
    return {origin: _quantile_matrix(output) for origin, output in zip(prepared_origins, outputs, strict=True)}


def baseline_forecasts(series: Series, origins: list[int], horizon: int) -> dict[int, np.ndarray]:
    """Forecast by repeating the last season of the gap-filled history, with every quantile equal to it."""
    forecasts = {}
    for origin in origins:
        history = _filled(series.values[:origin])
        point = metrics.seasonal_naive_forecast(history, horizon, series.season_length)
        forecasts[origin] = np.vstack([point] * len(QUANTILE_LEVELS))
    return forecasts


def _filled(values: np.ndarray) -> np.ndarray:
    """Carry the last observation forward over gaps (and the first one backward), for the baseline only."""
    filled = values.copy()
    observed = np.flatnonzero(~np.isnan(filled))
    if observed.size == 0:
        return filled
    index = np.maximum.accumulate(np.where(np.isnan(filled), 0, np.arange(filled.size)))
    filled = filled[index]
    filled[: observed[0]] = filled[observed[0]]
    return filled


def score(series: Series, forecasts: dict[int, np.ndarray], horizon: int) -> dict[str, float]:
    """MASE (mean over origins) and WQL (pooled over origins) of one series at one horizon."""
    mases, numerator, denominator = [], 0.0, 0.0
    median_row = QUANTILE_LEVELS.index(0.5)
    for origin, quantiles in forecasts.items():
        actual = series.values[origin:origin + horizon]
        scale = metrics.seasonal_scale(series.values[:origin], series.season_length)
        mases.append(metrics.mase(actual, quantiles[median_row, :horizon], scale))
        part_numerator, part_denominator = metrics.wql_parts(
            actual, {level: quantiles[row, :horizon] for row, level in enumerate(QUANTILE_LEVELS)}
        )
        numerator += part_numerator
        denominator += part_denominator
    finite = [value for value in mases if math.isfinite(value)]
    return {
        "mase": float(np.mean(finite)) if finite else math.nan,
        "wql": numerator / denominator if denominator > 0 else math.nan,
        "windows": len(forecasts),
    }


def _ratio(value: float, base: float) -> float:
    if not (math.isfinite(value) and math.isfinite(base)) or base <= 0:
        return math.nan
    return value / base


def _aggregate(rows: list[dict[str, Any]], key: str) -> tuple[float, int]:
    ratios = [row[key] for row in rows if row[key] is not None and math.isfinite(row[key])]
    return metrics.geometric_mean(ratios), len(ratios)


def run(context: EvalContext, *, chronos_model: str | None = None) -> SuiteResult:
    """Evaluate every loadable backend; `chronos_model` defaults to OPSSEER_FORECAST_MODEL or chronos-bolt-small."""
    # Loading must never reach a model hub: with the weights absent, from_pretrained fails fast offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chronos_model = chronos_model or os.environ.get("OPSSEER_FORECAST_MODEL") or "amazon/chronos-bolt-small"
    horizons = QUICK_HORIZONS if context.quick else HORIZONS
    origin_count = QUICK_ORIGINS if context.quick else ORIGINS
    longest = max(horizons)
    series_list = context.limited(list_series(context.corpus()))
    backends, backend_runs = load_backends(chronos_model)
    runs_by_name = {run.name: run for run in backend_runs}

    rows: list[dict[str, Any]] = []
    examples: dict[str, Any] = {}
    for series in context.progress(series_list, "forecast series", total=len(series_list)):
        origins = origins_of(series, origin_count, longest)
        all_forecasts = {BASELINE: baseline_forecasts(series, origins, longest)}
        for name, backend in backends.items():
            all_forecasts[name] = forecast_series(backend, runs_by_name[name], series, origins, longest)
        for horizon in horizons:
            base = score(series, all_forecasts[BASELINE], horizon)
            for name, forecasts in all_forecasts.items():
                result = score(series, forecasts, horizon) if forecasts else {"mase": math.nan, "wql": math.nan, "windows": 0}
                rows.append({
                    "series": series.name, "category": series.category, "backend": name, "horizon": horizon,
                    **result,
                    "relative_mase": _ratio(result["mase"], base["mase"]),
                    "relative_wql": _ratio(result["wql"], base["wql"]),
                })
        if series.name in PLOT_SERIES or len(examples) < 1:
            examples[series.name] = (series, origins, all_forecasts)

    summary_rows = summarise(rows, backend_runs, horizons)
    plot_paths = _plots(context, examples, longest, backends)
    series_info = [
        {"series": s.name, "category": s.category, "points": len(s.values), "step_seconds": s.step_seconds,
         "season_length": s.season_length, "season": s.season_name, "gaps": s.gaps,
         "origins": len(origins_of(s, origin_count, longest))}
        for s in series_list
    ]
    models = {run.name: f"{run.model} ({run.model_version})" for run in backend_runs if run.available}
    notes = [f"{run.name} not available: {run.reason}" for run in backend_runs if not run.available]
    overall = [row for row in summary_rows if row["horizon"] == "all" and row["backend"] != BASELINE]
    headline = "; ".join(
        f"{row['backend']} relative MASE {row['relative_mase']:.3f}, WQL {row['relative_wql']:.3g}" for row in overall
    ) + f" over {len(series_list)} series"
    unavailable = [run.name for run in backend_runs if not run.available]
    if unavailable:
        headline += f"; not available: {', '.join(unavailable)}"
    return SuiteResult(
        suite="forecast",
        title=TITLE,
        options=context.options(horizons=list(horizons), origins=origin_count, context_points=CONTEXT_POINTS,
                                quantile_levels=list(QUANTILE_LEVELS), chronos_model=chronos_model),
        summary={"headline": headline, "series": len(series_list), "aggregate": summary_rows},
        details={
            "backends": [run.__dict__ for run in backend_runs],
            "series": series_info,
            "scores": rows,
        },
        plots=plot_paths,
        notes=notes,
        models=models,
    )


def summarise(rows: list[dict[str, Any]], backend_runs: list[BackendRun], horizons: tuple[int, ...]) -> list[dict[str, Any]]:
    """Aggregate per backend and horizon: geometric means of the per-series ratios, mean absolute scores."""
    names = [BASELINE] + [run.name for run in backend_runs if run.available]
    runs = {run.name: run for run in backend_runs}
    summary = []
    for name in names:
        for horizon in [*horizons, "all"]:
            if horizon == "all":
                selected = _all_horizons(rows, name)
            else:
                selected = [row for row in rows if row["backend"] == name and row["horizon"] == horizon]
            relative_mase, mase_series = _aggregate(selected, "relative_mase")
            relative_wql, wql_series = _aggregate(selected, "relative_wql")
            finite_mase = [row["mase"] for row in selected if math.isfinite(row["mase"])]
            finite_wql = [row["wql"] for row in selected if math.isfinite(row["wql"])]
            finite_ratios = [row["relative_wql"] for row in selected
                             if row["relative_wql"] is not None and math.isfinite(row["relative_wql"])]
            run = runs.get(name)
            summary.append({
                "backend": name, "horizon": horizon,
                "relative_mase": relative_mase, "relative_wql": relative_wql,
                "series_scored": min(mase_series, wql_series),
                # Medians, because one series whose interval explodes would dominate a mean.
                "median_relative_wql": float(np.median(finite_ratios)) if finite_ratios else math.nan,
                "median_mase": float(np.median(finite_mase)) if finite_mase else math.nan,
                "median_wql": float(np.median(finite_wql)) if finite_wql else math.nan,
                "seconds_per_forecast": run.seconds / run.forecasts if run and run.forecasts else None,
                "failures": len(run.failures) if run else 0,
            })
    return summary


def _all_horizons(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Per series, the geometric mean of its ratios over horizons, so each series counts once."""
    by_series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["backend"] == name:
            by_series.setdefault(row["series"], []).append(row)
    combined = []
    for series, items in by_series.items():
        entry = {"series": series}
        for key in ("relative_mase", "relative_wql", "mase", "wql"):
            values = [item[key] for item in items if item[key] is not None and math.isfinite(item[key])]
            entry[key] = metrics.geometric_mean(values) if len(values) == len(items) else math.nan
        combined.append(entry)
    return combined


def _plots(context: EvalContext, examples: dict[str, Any], longest: int, backends: dict[str, Any]) -> list[str]:
    # Plot the strongest backend that loaded.
    shown = BASELINE
    for name in ("chronos", "statistical"):
        if name in backends:
            shown = name
            break
    paths = []
    low_row, high_row, median_row = (QUANTILE_LEVELS.index(BAND[0]), QUANTILE_LEVELS.index(BAND[1]),
                                     QUANTILE_LEVELS.index(0.5))
    for name, (series, origins, forecasts) in list(examples.items())[:3]:
        if not origins or not forecasts.get(shown):
            continue
        origin = origins[-1]
        quantiles = forecasts[shown][origin]
        tail = min(origin, 4 * longest)
        paths.append(plots.forecast_example(
            title=f"{name}: {shown}, {longest} steps of {series.step_seconds / 60:g} min from the last origin",
            context_times=np.arange(-tail, 0),
            context_values=series.values[origin - tail:origin],
            future_times=np.arange(0, longest),
            actual=series.values[origin:origin + longest],
            median=quantiles[median_row],
            low=quantiles[low_row],
            high=quantiles[high_row],
            band_label=f"{BAND[0]:g}-{BAND[1]:g} quantile band",
            path=context.plots_dir / f"forecast-{name}.png",
        ))
    return paths


def render(result: dict[str, Any]) -> str:
    options = result["options"]
    details = result["details"]
    lines = [
        f"{result['summary']['series']} NAB series ({', '.join(CATEGORIES)}), {options['origins']} rolling origins per "
        f"series (the last non-overlapping windows of {max(options['horizons'])} steps), horizons "
        f"{', '.join(str(h) for h in options['horizons'])} steps, context up to {options['context_points']} points, "
        f"quantile levels {options['quantile_levels'][0]}-{options['quantile_levels'][-1]}.",
        "",
        "- **MASE**: mean absolute error of the median forecast divided by the mean absolute seasonal difference of",
        "  the history before the origin. **WQL**: mean over quantile levels of 2 × pinball loss / Σ|actual|, pooled",
        "  over origins. Both are per series; lower is better.",
        "- **relative**: per series, the backend's score divided by the score of the eval's seasonal naive forecast",
        "  (last season repeated, every quantile equal to it), then the geometric mean over series (Chronos papers'",
        "  aggregation). Below 1 beats seasonal naive. Series where a ratio is undefined (flat history) are left out.",
        "  The median ratio and the median absolute scores are shown too, because one series with an exploding",
        "  quantile band moves a geometric mean by orders of magnitude.",
        "- **season**: daily (one day of steps) when the timestamp spacing divides a day and the series spans 4 days,",
        "  else hourly, else the last value. Gaps (missing steps) are imputed by the forecaster's hygiene in the",
        "  context and skipped in the targets.",
        "",
        "### Backends",
        "",
        table(["backend", "loaded", "model", "forecasts", "seconds", "failures"],
              [[run["name"], run["available"], f"{run['model']} {run['model_version']}".strip() or run["reason"],
                run["forecasts"], run["seconds"], len(run["failures"])] for run in details["backends"]]),
        "",
        "### Aggregate",
        "",
        table(["backend", "horizon", "relative MASE", "relative WQL", "median ratio WQL", "series",
               "median MASE", "median WQL", "s / forecast", "failures"],
              [[row["backend"], row["horizon"], row["relative_mase"], row["relative_wql"], row.get("median_relative_wql"),
                row["series_scored"], row.get("median_mase"), row.get("median_wql"), row["seconds_per_forecast"],
                row["failures"]]
               for row in result["summary"]["aggregate"]]),
        "",
        "### Per series (longest horizon)",
        "",
    ]
    longest = max(options["horizons"])
    info = {item["series"]: item for item in details["series"]}
    rows = [row for row in details["scores"] if row["horizon"] == longest]
    lines.append(table(
        ["series", "step", "season", "gaps", "backend", "MASE", "WQL", "rel. MASE", "rel. WQL", "windows"],
        [[row["series"], f"{info[row['series']]['step_seconds'] / 60:g} min",
          f"{info[row['series']]['season_length']} ({info[row['series']]['season']})", info[row["series"]]["gaps"],
          row["backend"], row["mase"], row["wql"], row["relative_mase"], row["relative_wql"], row["windows"]]
         for row in rows],
    ))
    failures = [f"- {run['name']}: {failure}" for run in details["backends"] for failure in run["failures"][:20]]
    if failures:
        lines += ["", "### Failures", "", *failures]
    lines += ["", *[f"![forecast]({path})" for path in result["plots"]]]
    return "\n".join(lines) + "\n"
