"""A bounded, open-loop HTTP load generator for toyprod."""

import asyncio
import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

logger = logging.getLogger(__name__)

MAX_RATE_PER_S = 1000.0
MAX_DURATION_S = 3600.0
MAX_CONCURRENCY = 1000
DEFAULT_TIMEOUT_S = 10.0
# The scheduler sleeps in steps of at most this long, so a stop request takes effect promptly even at low rates.
STOP_CHECK_INTERVAL_S = 0.1


@dataclass
class LoadResult:
    """Outcome of one load run. Latencies are in seconds and cover every request that got a response."""

    planned: int
    sent: int = 0
    status_counts: Counter[int] = field(default_factory=Counter)
    # Transport failures (connection refused, timeouts) by exception class name.
    errors: Counter[str] = field(default_factory=Counter)
    # Requests not sent because `concurrency` requests were already in flight at their scheduled time.
    skipped: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list, repr=False)

    @property
    def completed(self) -> int:
        return sum(self.status_counts.values())

    @property
    def server_errors(self) -> int:
        return sum(count for code, count in self.status_counts.items() if code >= 500)

    def percentile_s(self, quantile: float) -> float | None:
        """Return the latency at `quantile` (0..1) by the nearest-rank method, or None without responses."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        rank = max(1, math.ceil(quantile * len(ordered)))
        return ordered[rank - 1]

    @property
    def p50_s(self) -> float | None:
        return self.percentile_s(0.50)

    @property
    def p95_s(self) -> float | None:
        return self.percentile_s(0.95)

    @property
    def p99_s(self) -> float | None:
        return self.percentile_s(0.99)


def validate_load_parameters(rate_per_s: float, duration_s: float, concurrency: int) -> None:
    """Raise ValueError when a load parameter is outside the bounds this generator accepts."""
    if not (0 < rate_per_s <= MAX_RATE_PER_S):
        raise ValueError(
            f"rate must be greater than 0 and at most {MAX_RATE_PER_S:g} requests/s, got {rate_per_s:g}"
        )
    if not (0 < duration_s <= MAX_DURATION_S):
        raise ValueError(f"duration must be greater than 0 and at most {MAX_DURATION_S:g} s, got {duration_s:g}")
    if not (1 <= concurrency <= MAX_CONCURRENCY):
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")


def _is_set(event: threading.Event | None) -> bool:
    return event is not None and event.is_set()


async def generate_load(
    url: str,
    rate_per_s: float,
    duration_s: float,
    concurrency: int,
    *,
    progress: Progress | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stop_event: threading.Event | None = None,
) -> LoadResult:
    """Send GET requests to `url` at a fixed rate for `duration_s` seconds and collect the results.

    Open loop: request `i` is scheduled at `start + i / rate_per_s` whatever the server's speed, so a slow
    server does not slow the arrival rate down. When `concurrency` requests are in flight at a scheduled
    time, that request is counted as skipped instead of queued. The run ends once the schedule is done and
    in-flight requests have finished, which takes at most `duration_s + timeout_s`. Setting `stop_event`
    (from any thread) ends the schedule early; requests already in flight still finish.
    """
    validate_load_parameters(rate_per_s, duration_s, concurrency)
    # Requests scheduled strictly before duration_s; rounding keeps 0.1 * 30 from becoming 3.0000000000000004.
    planned = math.ceil(round(rate_per_s * duration_s, 9))
    result = LoadResult(planned=planned)
    task_id = progress.add_task("load", total=planned) if progress else None

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    in_flight: set[asyncio.Task[None]] = set()

    async def send_one(client: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        try:
            response = await client.get(url)
        except httpx.TransportError as exc:
            result.errors[type(exc).__name__] += 1
        else:
            result.latencies_s.append(time.perf_counter() - started)
            result.status_counts[response.status_code] += 1
        finally:
            if progress is not None and task_id is not None:
                progress.advance(task_id)

    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
        start = time.perf_counter()
        for index in range(planned):
            scheduled_at = start + index / rate_per_s
            while (delay := scheduled_at - time.perf_counter()) > 0 and not _is_set(stop_event):
                await asyncio.sleep(min(delay, STOP_CHECK_INTERVAL_S))
            if _is_set(stop_event):
                logger.info("load run stopped early after %d of %d scheduled requests", index, planned)
                break

            if len(in_flight) >= concurrency:
                result.skipped += 1
                if progress is not None and task_id is not None:
                    progress.advance(task_id)
                continue

            task = asyncio.create_task(send_one(client))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            result.sent += 1

        if in_flight:
            await asyncio.gather(*in_flight)
        result.elapsed_s = time.perf_counter() - start

    logger.info(
        "load run finished: url=%s sent=%d skipped=%d transport_errors=%d elapsed=%.1fs",
        url, result.sent, result.skipped, sum(result.errors.values()), result.elapsed_s,
    )
    return result


def run_load(
    url: str,
    rate_per_s: float,
    duration_s: float,
    concurrency: int,
    progress: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    stop_event: threading.Event | None = None,
) -> LoadResult:
    """Run `generate_load` to completion in a new event loop, with a rich progress bar unless `progress` is false.

    Blocks the calling thread. To run in the background, call it in a thread and set `stop_event` to end it early.
    """
    validate_load_parameters(rate_per_s, duration_s, concurrency)
    options = {"timeout_s": timeout_s, "stop_event": stop_event}
    if not progress:
        return asyncio.run(generate_load(url, rate_per_s, duration_s, concurrency, **options))

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as bar:
        return asyncio.run(generate_load(url, rate_per_s, duration_s, concurrency, progress=bar, **options))
