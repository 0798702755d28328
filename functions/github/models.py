"""Store rows that make GitHub writes idempotent: one issue row per episode, one comment row per timeline entry.

A row is committed in state "pending" before the API call that creates the issue or comment. If that call
times out after GitHub stored the object, the retry finds the pending row and searches GitHub for the
hidden marker before it creates anything.
"""

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from functions.models import Base

PENDING = "pending"
OPEN = "open"
CLOSED = "closed"


class GitHubIssue(Base):
    """The GitHub issue of one episode. Under the reopen policy several episodes share one issue number."""

    __tablename__ = "github_issues"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'open', 'closed')", name="github_issues_state"),
        Index("github_issues_incident_id_idx", "incident_id", "episode_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id", ondelete="CASCADE"), unique=True)
    repository: Mapped[str] = mapped_column(Text)
    # This episode's hidden marker: the first line of the issue body it created, or of the comment that
    # reopened an earlier episode's issue.
    marker: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    number: Mapped[int | None] = mapped_column(Integer)
    html_url: Mapped[str | None] = mapped_column(Text)
    # created, adopted (found by its marker after a lost response), reopened or new_after_missing.
    action: Mapped[str | None] = mapped_column(String(32))
    # API calls started for this row; above zero while pending means an earlier call may have succeeded.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None]
    # The newest timeline entry the issue body or reopen comment showed; later entries become comments.
    last_entry_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    closed_at: Mapped[datetime | None]


class GitHubComment(Base):
    """A timeline entry posted as a comment on its episode's issue."""

    __tablename__ = "github_comments"
    __table_args__ = (CheckConstraint("state IN ('pending', 'posted')", name="github_comments_state"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("timeline_entries.id", ondelete="CASCADE"), unique=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("github_issues.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    comment_id: Mapped[int | None] = mapped_column(BigInteger)
    html_url: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
