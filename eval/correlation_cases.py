"""Delivery sequences for the correlation suite: the corpus's webhook fixtures and generated streams.

Generated streams cover what Alertmanager does in production: repeat notifications, HA-pair copies,
out-of-order and stale deliveries, resolve before fire, re-fires, truncated and partly resolved groups.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eval.corpus import Corpus

WEBHOOK_DIR = "alertmanager-webhooks"
# The fixtures captured from one Alertmanager run form one stream, in file-name order.
CAPTURED_STREAM_DIR = "alertmanager-webhooks/generated-alertmanager-0.25"
ZERO_TIME = "0001-01-01T00:00:00Z"
T0 = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


@dataclass
class Case:
    """A named sequence of request bodies posted in order to an empty store."""

    name: str
    source: str  # "corpus" or "generated"
    description: str
    bodies: list[bytes]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert(
    status: str = "firing",
    *,
    fingerprint: str | None = "fp-api-latency",
    name: str = "APILatencyHigh",
    starts: timedelta = timedelta(0),
    ends: timedelta | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build one alert as Alertmanager 0.25 writes it; times are offsets from T0."""
    item: dict[str, Any] = {
        "status": status,
        "labels": labels if labels is not None else {"alertname": name, "service": "checkout", "severity": "critical"},
        "annotations": {"summary": f"{name} on checkout"},
        "startsAt": _iso(T0 + starts),
        "endsAt": _iso(T0 + ends) if ends is not None else ZERO_TIME,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up&g0.tab=1",
    }
    if fingerprint is not None:
        item["fingerprint"] = fingerprint
    return item


def resolved(starts: timedelta = timedelta(0), ends: timedelta = timedelta(minutes=5), **kwargs: Any) -> dict[str, Any]:
    return alert("resolved", starts=starts, ends=ends, **kwargs)


def body(*alerts: dict[str, Any], group_status: str | None = None, truncated: int = 0, receiver: str = "opsseer") -> bytes:
    document = {
        "version": "4",
        "groupKey": '{}:{alertname="APILatencyHigh"}',
        "truncatedAlerts": truncated,
        "status": group_status or ("firing" if any(a.get("status", "firing") == "firing" for a in alerts) else "resolved"),
        "receiver": receiver,
        "groupLabels": {"alertname": "APILatencyHigh"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": list(alerts),
    }
    return json.dumps(document).encode()


def _group(count: int, status: str = "firing", **kwargs: Any) -> list[dict[str, Any]]:
    return [
        alert(status, fingerprint=f"fp-disk-{index}", name="DiskFillingUp",
              labels={"alertname": "DiskFillingUp", "instance": f"10.0.0.{index}:9100"}, **kwargs)
        for index in range(count)
    ]


def generated_cases() -> list[Case]:
    minutes = lambda value: timedelta(minutes=value)  # noqa: E731
    group = _group(6)
    group_resolved = _group(6, "resolved", ends=minutes(20))
    return [
        Case("fire then resolve", "generated", "one firing period, resolved",
             [body(alert()), body(resolved())]),
        Case("repeat notifications", "generated", "the same firing body three times, the resolve twice",
             [body(alert())] * 3 + [body(resolved())] * 2),
        Case("HA pair copies", "generated", "two Alertmanagers of an HA pair deliver the same alerts",
             [body(alert(), receiver="am-a"), body(alert(), receiver="am-b"),
              body(resolved(), receiver="am-a"), body(resolved(), receiver="am-b")]),
        Case("resolve before fire", "generated",
             "the resolve arrives first, then the late firing copy of the same period",
             [body(resolved()), body(alert())]),
        Case("re-fire after resolve", "generated", "two firing periods, the second still firing",
             [body(alert()), body(resolved()), body(alert(starts=minutes(30)))]),
        Case("three periods with repeats", "generated", "three periods, each notified twice",
             [body(alert()), body(alert()), body(resolved()), body(resolved()),
              body(alert(starts=minutes(30))), body(alert(starts=minutes(30))),
              body(resolved(starts=minutes(30), ends=minutes(40))),
              body(alert(starts=minutes(60))), body(resolved(starts=minutes(60), ends=minutes(65)))]),
        Case("stale firing replay", "generated", "a firing copy of the first period after both periods resolved",
             [body(alert()), body(resolved()), body(alert(starts=minutes(30))),
              body(resolved(starts=minutes(30), ends=minutes(40))), body(alert())]),
        Case("stale resolve replay", "generated", "the first period's resolve replayed while the second is open",
             [body(alert()), body(resolved()), body(alert(starts=minutes(30))), body(resolved())]),
        Case("out-of-order periods", "generated",
             "the second period's firing arrives before the first period's resolve",
             [body(alert()), body(alert(starts=minutes(30))), body(resolved()),
              body(alert(starts=minutes(30))), body(resolved(starts=minutes(30), ends=minutes(35)))]),
        Case("endsAt alone", "generated", "a firing alert whose endsAt lies in the past stays firing",
             [body(alert(ends=minutes(4))), body(alert(ends=minutes(8)))]),
        Case("group status ignored", "generated",
             "a group marked resolved that still holds a firing alert, and the reverse",
             [body(alert(), alert(fingerprint="fp-b", name="ErrorsHigh"), group_status="firing"),
              body(resolved(), alert(fingerprint="fp-b", name="ErrorsHigh"), group_status="resolved"),
              body(resolved(fingerprint="fp-b", name="ErrorsHigh"), group_status="firing")]),
        Case("truncated group", "generated",
             "a 6-alert group sent as two truncated halves; the resolve carries only 3, the rest stay firing",
             [body(*group[:3], truncated=3), body(*group[3:], truncated=3), body(*group_resolved[:3], truncated=3)]),
        Case("partly resolved group", "generated", "a group in which one alert resolves and the others are left out",
             [body(*group), body(group_resolved[0])]),
        Case("missing status", "generated", "an alert without a status is firing and cannot resolve anything",
             [body({key: value for key, value in alert().items() if key != "status"}),
              body({key: value for key, value in resolved().items() if key != "status"})]),
        Case("label identity", "generated",
             "alerts without fingerprints: the same labels in another order are one incident, other labels another",
             [body(alert(fingerprint=None, labels={"alertname": "X", "pod": "a", "ns": "shop"})),
              body(alert(fingerprint=None, labels={"ns": "shop", "pod": "a", "alertname": "X"})),
              body(alert(fingerprint=None, labels={"alertname": "X", "pod": "b", "ns": "shop"})),
              body(resolved(fingerprint=None, labels={"pod": "a", "alertname": "X", "ns": "shop"}))]),
        Case("verbatim fingerprints", "generated", "fingerprints that differ only in case or padding stay distinct",
             [body(alert(fingerprint="ABC123"), alert(fingerprint="abc123"), alert(fingerprint=" abc123 "),
                   alert(fingerprint="f" * 200))]),
        Case("large group", "generated", "one delivery of 100 alerts, then all resolved",
             [body(*_group(100)), body(*_group(100, "resolved", ends=minutes(20)))]),
        Case("invalid bodies", "generated", "bodies the trigger must reject, then a valid one",
             [b"{not json", b"[]", json.dumps({"version": "4"}).encode(),
              body({**alert(), "status": "acknowledged"}), body(alert(fingerprint=None, labels={})),
              json.dumps({"version": "2", "alerts": [alert()]}).encode(), body(alert())]),
    ]


def corpus_cases(corpus: Corpus) -> list[Case]:
    """Each fixture file alone, the captured Alertmanager stream in order, and every fixture as one stream."""
    root = corpus.path(WEBHOOK_DIR)
    files = sorted(root.rglob("*.json"))
    cases = [
        Case(str(path.relative_to(root)), "corpus", "one corpus fixture delivered alone", [path.read_bytes()])
        for path in files
    ]
    captured = sorted(corpus.path(CAPTURED_STREAM_DIR).glob("*.json"))
    cases.append(Case("captured Alertmanager 0.25 stream", "corpus",
                      "the 9 deliveries captured from one Alertmanager run, in order",
                      [path.read_bytes() for path in captured]))
    cases.append(Case("all fixtures as one stream", "corpus", "every fixture file in path order into one store",
                      [path.read_bytes() for path in files]))
    return cases
