"""The Alertmanager webhook payload (version 4): parsing, validation and alert identity."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# Alertmanager writes Go's zero time.Time for "no end time", meaning the alert is ongoing.
ZERO_TIME_YEAR = 1

MAX_FINGERPRINT_LENGTH = 512

# Version 3 has the same alert fields as version 4, which added groupKey and truncatedAlerts.
SUPPORTED_VERSIONS = ("3", "4")

# Normalised severities; anything else is stored as "unknown" and the raw label stays in `labels`.
SEVERITY_BY_LABEL = {
    "critical": "critical",
    "page": "critical",
    "error": "critical",
    "high": "critical",
    "major": "critical",
    "warning": "warning",
    "warn": "warning",
    "ticket": "warning",
    "medium": "warning",
    "minor": "warning",
    "info": "info",
    "informational": "info",
    "low": "info",
    "none": "info",
}


class PayloadError(ValueError):
    """The body is not a valid webhook payload. `field` names the offending location, such as alerts[0].status."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _scalar_to_str(value: Any) -> Any:
    # Payloads written by hand or by other tools send numbers where Alertmanager sends strings
    # ("version": 4, a numeric label value). Their text form loses nothing, so accept it.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _reject_nul(value: str) -> str:
    # PostgreSQL text and jsonb cannot store U+0000. Annotations are kept in json columns, which can.
    if "\x00" in value:
        raise ValueError("contains the NUL character U+0000, which cannot be stored; remove it")
    return value


Text = Annotated[str, BeforeValidator(_scalar_to_str), AfterValidator(_reject_nul)]
Value = Annotated[str, BeforeValidator(_scalar_to_str)]


def _reject_nul_in_labels(labels: dict[str, str]) -> dict[str, str]:
    for name, value in labels.items():
        _reject_nul(name)
        _reject_nul(value)
    return labels


Labels = Annotated[dict[str, Value], AfterValidator(_reject_nul_in_labels)]
Annotations = dict[str, Value]


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # Alertmanager always sends it. Older senders and hand-written payloads may not, and a missing status
    # must never close an incident, so it defaults to firing.
    status: Literal["firing", "resolved"] = "firing"
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: Text = ""
    # The fingerprint is a unique index key, and PostgreSQL's B-tree entries are limited to about 2.7 kB.
    fingerprint: Annotated[Text, Field(max_length=MAX_FINGERPRINT_LENGTH)] | None = None


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Text = "4"
    receiver: Text = ""
    status: Text = ""
    groupKey: Text = ""
    truncatedAlerts: int = Field(0, ge=0, le=2**31 - 1)
    externalURL: Text = ""
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    alerts: list[AlertIn]


@dataclass(frozen=True, slots=True)
class ParsedAlert:
    """An alert with its identity resolved and its times in UTC."""

    fingerprint: str
    fingerprint_source: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return SEVERITY_BY_LABEL.get(self.labels.get("severity", "").strip().lower(), "unknown")

    @property
    def title(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("title") or self.alertname or self.fingerprint


@dataclass(frozen=True, slots=True)
class ParsedWebhook:
    receiver: str
    status: str
    group_key: str
    truncated_alerts: int
    external_url: str
    alerts: list[ParsedAlert]


def labels_fingerprint(labels: dict[str, str]) -> str:
    """Hash the sorted label set, for payloads that carry no fingerprint."""
    canonical = orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def to_utc(value: datetime | None) -> datetime | None:
    """Convert to UTC; a naive time is taken as UTC and the zero time means "not set"."""
    if value is None or value.year == ZERO_TIME_YEAR:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _location(loc: tuple[Any, ...]) -> str:
    """Format a pydantic error location such as ("alerts", 0, "status") as alerts[0].status."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


def parse_webhook(body: bytes, *, received_at: datetime) -> ParsedWebhook:
    """Parse and validate a webhook body, raising PayloadError that names the offending field."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}; send the Alertmanager webhook payload as JSON") from None
    if not isinstance(document, dict):
        raise PayloadError(f"body must be a JSON object, got {type(document).__name__}")

    try:
        webhook = WebhookIn.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = _location(error["loc"])
        raise PayloadError(f"invalid field {field}: {error['msg']}", field=field) from None
    if webhook.version not in SUPPORTED_VERSIONS:
        raise PayloadError(f"unsupported webhook version {webhook.version!r}; OpsSeer accepts versions 3 and 4", "version")

    alerts = [_resolve_alert(alert, index, received_at) for index, alert in enumerate(webhook.alerts)]
    return ParsedWebhook(
        receiver=webhook.receiver,
        status=webhook.status,
        group_key=webhook.groupKey,
        truncated_alerts=webhook.truncatedAlerts,
        external_url=webhook.externalURL,
        alerts=alerts,
    )


def _resolve_alert(alert: AlertIn, index: int, received_at: datetime) -> ParsedAlert:
    if alert.fingerprint:
        fingerprint, source = alert.fingerprint, "alertmanager"
    elif alert.labels:
        fingerprint, source = labels_fingerprint(alert.labels), "labels"
    else:
        raise PayloadError(
            f"alerts[{index}] has neither a fingerprint nor labels, so it cannot be identified; send at least one",
            field=f"alerts[{index}].labels",
        )

    # A missing startsAt falls back to the time of receipt, so the alert can still open an episode.
    starts_at = to_utc(alert.startsAt) or received_at
    return ParsedAlert(
        fingerprint=fingerprint,
        fingerprint_source=source,
        status=alert.status,
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=starts_at,
        ends_at=to_utc(alert.endsAt),
        generator_url=alert.generatorURL,
    )
