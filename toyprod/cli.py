"""Commands `opsseer toyprod`, `opsseer load` and `opsseer chaos`."""

import logging

import click
import httpx
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from toyprod.app import create_app
from toyprod.chaos import DEFAULT_SINE_PERIOD_S, Chaos
from toyprod.load import DEFAULT_TIMEOUT_S, LoadResult, run_load

logger = logging.getLogger(__name__)

DEFAULT_TOYPROD_URL = "http://127.0.0.1:18081"
CHAOS_REQUEST_TIMEOUT_S = 5.0


def _format_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _error_message(detail: dict) -> str:
    """Format one pydantic error entry as `field: message`, without pydantic's "Value error, " prefix."""
    message = detail["msg"].removeprefix("Value error, ")
    return f"{detail['loc'][-1]}: {message}"


def _validation_messages(error: ValidationError) -> str:
    return "; ".join(_error_message(detail) for detail in error.errors())


@click.command("toyprod")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=18081, show_default=True, type=click.IntRange(1, 65535), help="TCP port to bind.")
@click.option("--latency-ms", default=0.0, show_default=True, envvar="TOYPROD_LATENCY_MS",
              help="Initial fixed extra latency on /orders, in milliseconds.")
@click.option("--sine-amplitude-ms", default=0.0, show_default=True, envvar="TOYPROD_SINE_AMPLITUDE_MS",
              help="Initial peak of the sinusoidal extra latency on /orders, in milliseconds.")
@click.option("--sine-period-s", default=DEFAULT_SINE_PERIOD_S, show_default=True, envvar="TOYPROD_SINE_PERIOD_S",
              help="Period of the sinusoidal latency, in seconds.")
@click.option("--error-rate", default=0.0, show_default=True, envvar="TOYPROD_ERROR_RATE",
              help="Initial fraction (0..1) of /orders requests that fail with an injected HTTP 500.")
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
def toyprod_command(
    host: str,
    port: int,
    latency_ms: float,
    sine_amplitude_ms: float,
    sine_period_s: float,
    error_rate: float,
    access_log: bool,
) -> None:
    """Run toyprod, the demo orders service, with optional initial faults."""
    try:
        chaos = Chaos(
            latency_ms=latency_ms,
            sine_amplitude_ms=sine_amplitude_ms,
            sine_period_s=sine_period_s,
            error_rate=error_rate,
        )
    except ValidationError as exc:
        raise click.UsageError(f"invalid initial chaos settings: {_validation_messages(exc)}") from exc

    logger.info("starting toyprod on %s:%d with chaos %s", host, port, chaos.model_dump())
    uvicorn.run(create_app(chaos), host=host, port=port, access_log=access_log, log_config=None)


@click.command("load")
@click.option("--url", default=f"{DEFAULT_TOYPROD_URL}/orders", show_default=True, help="URL to send GET requests to.")
@click.option("--rate", default=20.0, show_default=True, help="Requests per second (at most 1000).")
@click.option("--duration", default=60.0, show_default=True, help="Length of the run, in seconds (at most 3600).")
@click.option("--concurrency", default=16, show_default=True, help="Maximum requests in flight.")
@click.option("--timeout", "timeout_s", default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Per-request timeout, in seconds.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def load_command(url: str, rate: float, duration: float, concurrency: int, timeout_s: float, progress: bool) -> None:
    """Send GET requests at a fixed rate for a bounded time and print a latency summary."""
    try:
        result = run_load(url, rate, duration, concurrency, progress=progress, timeout_s=timeout_s)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    Console().print(_load_summary_table(url, result))


def _load_summary_table(url: str, result: LoadResult) -> Table:
    table = Table(title=f"load summary: {url}", show_header=False)
    table.add_column("measure")
    table.add_column("value", justify="right")

    achieved = result.sent / result.elapsed_s if result.elapsed_s > 0 else 0.0
    table.add_row("planned", str(result.planned))
    table.add_row("sent", str(result.sent))
    table.add_row("skipped (concurrency limit)", str(result.skipped))
    table.add_row("achieved rate", f"{achieved:.1f}/s")
    for code, count in sorted(result.status_counts.items()):
        table.add_row(f"status {code}", str(count))
    for name, count in sorted(result.errors.items()):
        table.add_row(f"transport error {name}", str(count))
    table.add_row("latency p50", _format_ms(result.p50_s))
    table.add_row("latency p95", _format_ms(result.p95_s))
    table.add_row("latency p99", _format_ms(result.p99_s))
    return table


@click.command("chaos")
@click.option("--url", default=DEFAULT_TOYPROD_URL, show_default=True, help="Base URL of a running toyprod.")
@click.option("--latency-ms", type=float, help="Fixed extra latency on /orders, in milliseconds.")
@click.option("--sine-amplitude-ms", type=float, help="Peak of the sinusoidal extra latency, in milliseconds.")
@click.option("--sine-period-s", type=float, help="Period of the sinusoidal latency, in seconds.")
@click.option("--error-rate", type=float, help="Fraction (0..1) of /orders requests that fail with an injected HTTP 500.")
@click.option("--clear", is_flag=True, help="Remove every fault.")
def chaos_command(
    url: str,
    latency_ms: float | None,
    sine_amplitude_ms: float | None,
    sine_period_s: float | None,
    error_rate: float | None,
    clear: bool,
) -> None:
    """Show or change the faults of a running toyprod. Without options, show the current faults."""
    changes = {
        "latency_ms": latency_ms,
        "sine_amplitude_ms": sine_amplitude_ms,
        "sine_period_s": sine_period_s,
        "error_rate": error_rate,
    }
    changes = {name: value for name, value in changes.items() if value is not None}
    if clear and changes:
        raise click.UsageError("--clear removes every fault and cannot be combined with other chaos options")

    chaos_url = f"{url.rstrip('/')}/chaos"
    try:
        with httpx.Client(timeout=CHAOS_REQUEST_TIMEOUT_S) as client:
            if clear:
                response = client.delete(chaos_url)
            elif changes:
                response = client.put(chaos_url, json=changes)
            else:
                response = client.get(chaos_url)
    except httpx.TransportError as exc:
        raise click.ClickException(
            f"toyprod is not reachable at {chaos_url} ({type(exc).__name__}: {exc}); "
            "start it with `opsseer toyprod` or pass --url"
        ) from exc

    if response.status_code == 422:
        details = "; ".join(_error_message(detail) for detail in response.json().get("detail", []))
        raise click.ClickException(f"toyprod rejected the chaos settings: {details}")
    if response.is_error:
        raise click.ClickException(f"{response.request.method} {chaos_url} failed with HTTP {response.status_code}")

    table = Table(title=f"chaos at {url}", show_header=False)
    for name, value in response.json().items():
        table.add_row(name, f"{value:g}")
    Console().print(table)
