"""SQLAlchemy models of the incident store.

An incident is one alert identity (its Alertmanager fingerprint) over its whole life. Each firing period is an
episode: a re-fire after a resolve opens a new episode of the same incident. Every alert received is kept as an
`Alert` row that records what it changed, and every delivery keeps its raw body in `WebhookDelivery`.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

FIRING = "firing"
RESOLVED = "resolved"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB}


def _id_column() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(always=False), primary_key=True)


def _created_at_column() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


class WebhookDelivery(Base):
    """One HTTP delivery from Alertmanager, with its body byte for byte."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = _id_column()
    received_at: Mapped[datetime] = _created_at_column()
    body: Mapped[bytes] = mapped_column(LargeBinary)
    receiver: Mapped[str] = mapped_column(Text, default="")
    group_key: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(Text, default="")
    alert_count: Mapped[int] = mapped_column(Integer)
    # Alertmanager drops alerts over max_alerts and counts them here. The dropped alerts are unknown, so they
    # never change incident state.
    truncated_alerts: Mapped[int] = mapped_column(Integer, default=0)
    external_url: Mapped[str] = mapped_column(Text, default="")


class Incident(Base):
    """One alert identity; its status is the status of its latest episode."""

    __tablename__ = "incidents"
    __table_args__ = (CheckConstraint("status IN ('firing', 'resolved')", name="incidents_status"),)

    id: Mapped[int] = _id_column()
    # Kept verbatim as Alertmanager sent it; a hash of the sorted labels when the payload had none.
    fingerprint: Mapped[str] = mapped_column(Text, unique=True)
    fingerprint_source: Mapped[str] = mapped_column(String(16))
    alertname: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16), default="unknown")
    title: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # JSON, not JSONB: PostgreSQL's json type keeps any string, including \u0000, exactly as sent.
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    generator_url: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    # True when the first thing OpsSeer saw of this alert was a resolved notification.
    opened_by_resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    first_started_at: Mapped[datetime]
    last_started_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    last_notified_at: Mapped[datetime]
    stale_since: Mapped[datetime | None]
    episode_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created_at_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    episodes: Mapped[list["Episode"]] = relationship(back_populates="incident", order_by="Episode.sequence")

    @property
    def is_open(self) -> bool:
        return self.status == FIRING


class Episode(Base):
    """One firing period of an incident, from Alertmanager's startsAt to the resolve."""

    __tablename__ = "episodes"
    __table_args__ = (
        UniqueConstraint("incident_id", "sequence"),
        UniqueConstraint("incident_id", "started_at"),
        CheckConstraint("status IN ('firing', 'resolved')", name="episodes_status"),
    )

    id: Mapped[int] = _id_column()
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    firing_seen: Mapped[bool] = mapped_column(Boolean, default=True)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set by the task that launches the enrichment and resolution pipelines, so a sweep can find
    # episodes whose pipeline was never enqueued (a broker outage after the trigger committed).
    pipeline_started_at: Mapped[datetime | None]
    resolution_started_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at_column()
    # Set when a person acknowledges or resolves the episode from Slack; "who" is the Slack user's name and id.
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(Text)

    incident: Mapped[Incident] = relationship(back_populates="episodes")

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class Alert(Base):
    """One alert as received in one delivery, and what it changed."""

    __tablename__ = "alerts"
    __table_args__ = (Index("alerts_incident_id_idx", "incident_id"),)

    id: Mapped[int] = _id_column()
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    # None when Alertmanager sent the zero time (year 1), which means the alert is ongoing.
    ends_at: Mapped[datetime | None]
    labels: Mapped[dict[str, Any]] = mapped_column(JSONB)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON)
    generator_url: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = _created_at_column()


class TimelineEntry(Base):
    """A typed timeline entry; the idempotency key makes a second run of the same step a no-op."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("timeline_entries_incident_id_idx", "incident_id", "id"),)

    id: Mapped[int] = _id_column()
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    # ok, not_configured, skipped or failed.
    status: Mapped[str] = mapped_column(String(16), default="ok")
    title: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The model and version that produced an AI result, such as "amazon/chronos-bolt-small@<revision>".
    model: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime] = _created_at_column()


class Attachment(Base):
    """A binary artefact of an incident, such as a metric snapshot chart."""

    __tablename__ = "attachments"

    id: Mapped[int] = _id_column()
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    content_type: Mapped[str] = mapped_column(Text)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at_column()


class FunctionRun(Base):
    """One attempt of one task function, for auditing retries and failures."""

    __tablename__ = "function_runs"
    __table_args__ = (Index("function_runs_episode_id_idx", "episode_id"),)

    id: Mapped[int] = _id_column()
    task_id: Mapped[str] = mapped_column(Text)
    task_name: Mapped[str] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # started, succeeded, retrying or failed.
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = _created_at_column()
    finished_at: Mapped[datetime | None]


# Slack integration


class SlackMessage(Base):
    """The Slack root message of one episode; the row is claimed before posting, so an episode gets one message.

    state: "pending" (no post in flight), "claimed" (a post was sent or is being sent, its outcome unknown),
    "posted" (channel and ts are known).
    """

    __tablename__ = "slack_messages"

    id: Mapped[int] = _id_column()
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"), unique=True)
    channel: Mapped[str] = mapped_column(Text)
    ts: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    posted_at: Mapped[datetime | None]
    # The newest timeline entry the root message shows; later entries go to the thread.
    last_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at_column()


class SlackThreadPost(Base):
    """One timeline entry posted as a reply in its episode's thread, claimed before posting like SlackMessage."""

    __tablename__ = "slack_thread_posts"

    id: Mapped[int] = _id_column()
    entry_id: Mapped[int] = mapped_column(ForeignKey("timeline_entries.id", ondelete="CASCADE"), unique=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("slack_messages.id", ondelete="CASCADE"), index=True)
    ts: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at_column()


class SlackDelivery(Base):
    """One request from Slack (an event_id or an interaction), stored so that a retried delivery runs once."""

    # TODO: prune rows older than Slack's retry window (about an hour); nothing deletes them yet.

    __tablename__ = "slack_deliveries"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    retry_num: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = _created_at_column()
