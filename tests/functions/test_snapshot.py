"""Choosing what the snapshot charts from an alert's expression, and rendering the chart."""

from datetime import UTC, datetime, timedelta

import pytest

from functions.prometheus import Series
from functions.tasks.snapshot import alert_expression, render_chart, split_threshold

BURN_RATE = """(
  sli:errors:ratio_rate1h{service="toyprod"} > (14.4 * 0.001)
  and
  sli:errors:ratio_rate5m{service="toyprod"} > (14.4 * 0.001)
)
or
(sli:errors:ratio_rate6h > (6 * 0.001) and sli:errors:ratio_rate30m > (6 * 0.001))"""


@pytest.mark.parametrize(
    ("expression", "metric", "threshold"),
    [
        ('sli:latency:p95{service="toyprod"} > 0.25', 'sli:latency:p95{service="toyprod"}', 0.25),
        (BURN_RATE, 'sli:errors:ratio_rate1h{service="toyprod"}', 0.0144),
        ("a > (1 * 0.001)\nand\nb > (1 * 0.001)", "a", 0.001),
        ('rate(x{a!="b",c=~"d>e"}[5m]) >= bool 3', 'rate(x{a!="b",c=~"d>e"}[5m])', 3.0),
        ('foo{a="("} > 1', 'foo{a="("}', 1.0),
        ("sum by (job) (rate(x[5m])) > 10 * 2", "sum by (job) (rate(x[5m]))", 20.0),
        ("orders_total > 5", "orders_total", 5.0),
        ("a <= -1.5", "a", -1.5),
        ("x > y", "x", None),
        ('absent(up{job="x"})', 'absent(up{job="x"})', None),
    ],
)
def test_split_threshold(expression, metric, threshold):
    found_metric, found_threshold = split_threshold(expression)

    assert found_metric == metric
    assert found_threshold == pytest.approx(threshold) if threshold is not None else found_threshold is None


def test_alert_expression_from_generator_url():
    url = "http://127.0.0.1:19090/graph?g0.expr=sli%3Ax+%3E+0.25&g0.tab=1"

    assert alert_expression(url) == "sli:x > 0.25"
    assert alert_expression("my.prometheusserver.url") is None


def test_render_chart_is_png():
    start = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    series = [Series(labels={"service": "toyprod"}, timestamps=[start.timestamp() + 15 * i for i in range(40)], values=[0.1 + i / 100 for i in range(40)])]

    png = render_chart(series, title="sli:latency", threshold=0.25, started_at=start + timedelta(minutes=5), ended_at=start + timedelta(minutes=8))

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5000
