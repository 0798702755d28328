"""Prometheus metrics for toyprod, kept on one private registry per app."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from toyprod.chaos import Chaos

# The latency SLO threshold (0.25 s) is a bucket boundary, so `histogram_quantile` and the
# `le="0.25"` bucket compare against it exactly instead of interpolating across it.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0)

# Route label for requests that matched no route, so that scanners probing random paths cannot
# create one series per path.
UNMATCHED_ROUTE = "unmatched"

# Methods outside this set are recorded as "OTHER" to keep the method label bounded.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Routes whose error series exist from start-up, so an error ratio reads 0 instead of
# "no data" before the first failure.
BUSINESS_ROUTES = (("/orders", "GET"), ("/orders", "POST"))


def normalize_method(method: str) -> str:
    """Return the HTTP method as recorded in the `method` label."""
    upper = method.upper()
    return upper if upper in KNOWN_METHODS else "OTHER"


class ToyprodMetrics:
    """Request and chaos metrics registered on a registry owned by one toyprod app.

    Each app gets its own `CollectorRegistry` so that several apps can live in one process (tests do this)
    without "Duplicated timeseries" errors from the global default registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()

        self.request_duration = Histogram(
            "toyprod_http_request_duration_seconds",
            "Time from receiving an HTTP request to sending its last response byte, in seconds.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.requests = Counter(
            "toyprod_http_requests_total",
            "HTTP requests completed, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_errors = Counter(
            "toyprod_http_request_errors_total",
            "HTTP requests that completed with a 5xx status, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )

        self.chaos_latency = Gauge(
            "toyprod_chaos_latency_seconds",
            "Fixed extra latency injected into business endpoints, in seconds.",
            registry=self.registry,
        )
        self.chaos_sine_amplitude = Gauge(
            "toyprod_chaos_sine_amplitude_seconds",
            "Peak of the sinusoidal extra latency injected into business endpoints, in seconds.",
            registry=self.registry,
        )
        self.chaos_sine_period = Gauge(
            "toyprod_chaos_sine_period_seconds",
            "Period of the sinusoidal extra latency, in seconds.",
            registry=self.registry,
        )
        self.chaos_error_ratio = Gauge(
            "toyprod_chaos_error_ratio",
            "Fraction of business requests answered with an injected 500 error.",
            registry=self.registry,
        )

        for route, method in BUSINESS_ROUTES:
            self.request_errors.labels(route=route, method=method)

    def observe_request(self, *, route: str, method: str, status: int, duration_s: float) -> None:
        """Record one completed request."""
        method_label = normalize_method(method)
        status_label = str(status)

        self.request_duration.labels(route=route, method=method_label, status=status_label).observe(duration_s)
        self.requests.labels(route=route, method=method_label, status=status_label).inc()
        if status >= 500:
            self.request_errors.labels(route=route, method=method_label).inc()

    def set_chaos(self, chaos: Chaos) -> None:
        """Publish the current fault settings as gauges."""
        self.chaos_latency.set(chaos.latency_ms / 1000)
        self.chaos_sine_amplitude.set(chaos.sine_amplitude_ms / 1000)
        self.chaos_sine_period.set(chaos.sine_period_s)
        self.chaos_error_ratio.set(chaos.error_rate)
