"""Benchmark the Alertmanager trigger: webhook-to-2xx latency at light load and sustained ingest rate.

Starts a private PostgreSQL (default durability settings), Redis and the real `opsseer api` server on free
loopback ports, sends the load from this process with httpx, checks in the database that no alert was lost,
and writes bench/results/ingest.md and ingest.json.

Usage: python bench/ingest.py [--light-requests N] [--burst-alerts N] [--alerts-per-request N] [--clients N]
"""

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from functions.db import Database
from functions.models import Alert, Incident
from functions.triggers import WEBHOOK_PATH
from opsseer.postgres import remove_cluster
from opsseer.stack import Ports, Stack

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def webhook_body(prefix: str, start: int, count: int) -> bytes:
    alerts = [
        {
            "status": "firing",
            "fingerprint": f"{prefix}-{index:08d}",
            "labels": {"alertname": "BenchAlert", "instance": f"host-{index}", "severity": "warning"},
            "annotations": {"summary": f"bench alert {index}", "description": "synthetic load"},
            "startsAt": "2026-12-04T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:19090/graph?g0.expr=up",
        }
        for index in range(start, start + count)
    ]
    return json.dumps({"version": "4", "status": "firing", "receiver": "bench", "groupKey": prefix, "alerts": alerts}).encode()


def percentile(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def light_load(url: str, headers: dict, requests: int) -> dict:
    """Send single-alert webhooks one at a time and time each until its 2xx."""
    latencies = []
    with httpx.Client(headers=headers, timeout=10) as client:
        for index in range(requests):
            body = webhook_body("light", index, 1)
            started = time.perf_counter()
            response = client.post(url, content=body)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
    return {
        "requests": requests,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def burst(url: str, headers: dict, prefix: str, total_alerts: int, per_request: int, clients: int) -> dict:
    """Send total_alerts as fast as `clients` concurrent connections allow; return the sustained rate."""
    batches = [(start, min(per_request, total_alerts - start)) for start in range(0, total_alerts, per_request)]
    bodies = [webhook_body(prefix, start, count) for start, count in batches]
    cursor = iter(range(len(bodies)))
    lock = threading.Lock()
    failures = []

    def send() -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                response = client.post(url, content=bodies[index])
                if response.status_code != 200:
                    failures.append(response.status_code)

    threads = [threading.Thread(target=send) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "alerts": total_alerts,
        "alerts_per_request": per_request,
        "requests": len(bodies),
        "clients": clients,
        "seconds": elapsed,
        "alerts_per_second": total_alerts / elapsed,
        "failed_requests": len(failures),
    }


def stored(database: Database, prefix: str) -> tuple[int, int]:
    with database.session() as session:
        alerts = session.scalar(select(func.count()).select_from(Alert).where(Alert.fingerprint.like(f"{prefix}-%")))
        incidents = session.scalar(
            select(func.count()).select_from(Incident).where(Incident.fingerprint.like(f"{prefix}-%"))
        )
    return alerts, incidents


def write_report(results: dict) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "ingest.json").write_text(json.dumps(results, indent=2) + "\n")
    light = results["light_load"]
    lines = [
        "# Trigger ingest benchmark",
        "",
        f"Run {results['date']} on {results['machine']} with `python bench/ingest.py`.",
        f"PostgreSQL 15 with its default durability settings (fsync on), `opsseer api --workers {results['api_workers']}`,",
        "Redis as the broker, and the load sent from the same machine. The numbers come from one run. The machine is",
        "shared, so compare rows of the same run.",
        "",
        "## Webhook to 2xx at light load",
        "",
        "One alert per request, one request at a time, over a keep-alive connection.",
        "",
        "| requests | p50 (ms) | p99 (ms) | mean (ms) | target p99 |",
        "|---:|---:|---:|---:|---:|",
        f"| {light['requests']} | {light['p50_ms']:.2f} | {light['p99_ms']:.2f} | {light['mean_ms']:.2f} | ≤ 20 ms |",
        "",
        "## Sustained ingest of a burst",
        "",
        "Every alert has a new fingerprint, so each opens an incident and an episode and enqueues its pipeline.",
        "Loss is checked afterwards in the database: stored alert rows and incidents against alerts sent.",
        "The target of 2,000 alerts/s is for grouped deliveries, which is how Alertmanager sends a burst: all",
        "alerts of a group in one request. One alert per request is shown for comparison; it is bound by the",
        "fixed cost of each request (HTTP, one transaction, one enqueue).",
        "",
        "| alerts | alerts/request | clients | seconds | alerts/s | failed requests | stored alerts | stored incidents |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["bursts"]:
        lines.append(
            f"| {row['alerts']} | {row['alerts_per_request']} | {row['clients']} | {row['seconds']:.2f} | "
            f"{row['alerts_per_second']:.0f} | {row['failed_requests']} | {row['stored_alerts']} | "
            f"{row['stored_incidents']} |"
        )
    path = RESULTS_DIR / "ingest.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--light-requests", type=int, default=1000)
    parser.add_argument("--burst-alerts", type=int, default=20000)
    parser.add_argument("--alerts-per-request", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--api-workers", type=int, default=2, help="opsseer api server processes.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="opsseer-bench-") as state_dir:
        stack = Stack(Path(state_dir), ports=Ports.free(), echo=False)
        try:
            stack.start_postgres()
            stack.start_redis()
            stack.start_api(workers=args.api_workers)
            url = f"http://127.0.0.1:{stack.ports.api}{WEBHOOK_PATH}"
            headers = {"Authorization": f"Bearer {stack.webhook_token}", "Content-Type": "application/json"}
            database = Database(stack.database_url)

            light_load(url, headers, 100)  # warm-up: fill the connection pools before measuring
            light = light_load(url, headers, args.light_requests)
            bursts = []
            for per_request, clients in ((args.alerts_per_request, args.clients), (1, args.clients)):
                total = args.burst_alerts if per_request > 1 else min(args.burst_alerts, 5000)
                prefix = f"burst{per_request}"
                row = burst(url, headers, prefix, total, per_request, clients)
                row["stored_alerts"], row["stored_incidents"] = stored(database, prefix)
                bursts.append(row)
            database.dispose()
        finally:
            stack.stop()
            if stack.cluster is not None:
                remove_cluster(stack.cluster)

    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "api_workers": args.api_workers,
        "light_load": light,
        "bursts": bursts,
    }
    path = write_report(results)
    print(path.read_text())


if __name__ == "__main__":
    main()
