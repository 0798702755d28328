"""Open, close and comment on an episode's GitHub issue, exactly once each.

Every write follows the same protocol. A transaction-level advisory lock per incident serialises the
workers that handle one incident, so a second worker waits for the first instead of creating a second
issue. Before each API call the row's attempt counter is committed; when it shows an earlier attempt, the
call's result may exist on GitHub without a stored response, so GitHub is searched for the hidden marker
before anything is created. A worker that dies mid-call releases the lock with its connection.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from psycopg.errors import LockNotAvailable
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from functions.github import body
from functions.github.client import GitHubClient, IssueRef
from functions.github.errors import GitHubError, NotFound
from functions.github.models import CLOSED, OPEN, PENDING, GitHubComment, GitHubIssue
from functions.models import Episode, TimelineEntry
from functions.settings import Settings
from functions.tasks.base import StepResult, TransientError, database
from functions.timeline import get_entry, step_key

logger = logging.getLogger(__name__)

# The first key of pg_advisory_xact_lock(int, int); the second is the incident id.
LOCK_NAMESPACE = 0x4748  # "GH"
# A marker lookup reads items updated since the row's first attempt minus this margin, for clock skew.
LOOKUP_MARGIN = timedelta(minutes=10)

# Entries posted as comments when they reach the timeline after the issue was written: the proactive
# warning, the runbook answer, a recording's transcription, and acknowledgements, resolves and runbook
# answers from Slack. Entries with status "failed" are posted too, except the GitHub steps' own entries
# and the summary, which repeats them.
COMMENT_KINDS = frozenset(
    {"proactive_warning", "runbook", "transcription", "acknowledged", "resolved_by_person", "runbook_answer"}
)
NO_FAILURE_COMMENT_KINDS = frozenset({"github", "summary"})


class IssueBusy(GitHubError, TransientError):
    """Another worker held the incident's GitHub lock for longer than the lock timeout."""


class IssuePending(GitHubError, TransientError):
    """The episode's issue is not created yet, so it cannot be closed yet."""


def lock_timeout_seconds(settings: Settings) -> int:
    """Upper bound of one holder's work: a search, a listing and two writes, each with the request timeout."""
    return 4 * settings.github_timeout_seconds + 5


@contextmanager
def incident_lock(incident_id: int, settings: Settings) -> Iterator[None]:
    """Hold the incident's GitHub lock for the duration of the block, or raise IssueBusy."""
    timeout = lock_timeout_seconds(settings)
    with database().session() as session:
        session.execute(text(f"SET LOCAL lock_timeout = '{timeout}s'"))
        try:
            session.execute(select(func.pg_advisory_xact_lock(LOCK_NAMESPACE, incident_id)))
        except OperationalError as exc:
            if isinstance(exc.orig, LockNotAvailable):
                raise IssueBusy(f"incident {incident_id}: another worker held the GitHub lock for over {timeout} s") from None
            raise
        yield


def _record_attempt(model: type, row_id: int) -> int:
    """Count an API attempt for a row and return the number of attempts before this one."""
    with database().session() as session:
        return session.execute(
            update(model)
            .where(model.id == row_id)
            .values(attempts=model.attempts + 1, last_attempt_at=func.now())
            .returning(model.attempts - 1)
        ).scalar_one()


def _done(row: GitHubIssue, *, already: bool = False) -> StepResult:
    verb = {"created": "opened", "adopted": "opened", "reopened": "reopened", "new_after_missing": "opened"}.get(row.action or "", "opened")
    return StepResult(
        title=f"GitHub issue #{row.number} {verb}: {row.html_url}",
        payload={
            "url": row.html_url,
            "number": row.number,
            "repository": row.repository,
            "action": row.action,
            "already_recorded": already,
        },
    )


def _claim_issue_row(settings: Settings, episode_id: int) -> tuple[GitHubIssue, GitHubIssue | None]:
    """Return this episode's issue row, inserting it as pending, and the issue a re-fire would reopen."""
    with database().session() as session:
        episode = session.get(Episode, episode_id)
        previous = None
        if settings.github_refire == "reopen":
            previous = session.scalar(
                select(GitHubIssue)
                .join(Episode, Episode.id == GitHubIssue.episode_id)
                .where(
                    GitHubIssue.incident_id == episode.incident_id,
                    GitHubIssue.episode_id != episode_id,
                    GitHubIssue.number.is_not(None),
                    GitHubIssue.repository == settings.github_repository,
                    Episode.sequence < episode.sequence,
                )
                .order_by(Episode.sequence.desc())
                .limit(1)
            )
        session.execute(
            pg_insert(GitHubIssue)
            .values(
                incident_id=episode.incident_id,
                episode_id=episode_id,
                repository=settings.github_repository,
                marker=body.issue_marker(episode.incident_id, episode_id),
                state=PENDING,
                attempts=0,
                last_entry_id=0,
            )
            .on_conflict_do_nothing(index_elements=["episode_id"])
        )
        row = session.scalar(select(GitHubIssue).where(GitHubIssue.episode_id == episode_id))
        return row, previous


def _episode_content(settings: Settings, episode_id: int, *, reopened: bool) -> tuple[str, str, int]:
    """Build (title, body, newest entry id) from the episode's timeline as it is now."""
    with database().session() as session:
        episode = session.get(Episode, episode_id)
        incident = episode.incident
        entries = session.scalars(
            select(TimelineEntry).where(TimelineEntry.episode_id == episode_id).order_by(TimelineEntry.id)
        ).all()
        text_body = body.issue_body(incident, episode, entries, portal_url=settings.portal_url)
        if reopened:
            text_body = body.fit_body(
                text_body.replace(body.issue_marker(incident.id, episode.id), f"{body.issue_marker(incident.id, episode.id)}\n\n**Fired again.**", 1),
                body.incident_url(settings.portal_url, incident.id),
            )
        return body.issue_title(incident), text_body, max((entry.id for entry in entries), default=0)


def open_issue(client: GitHubClient, settings: Settings, *, episode_id: int) -> StepResult:
    """Create the episode's issue, or reopen the incident's last issue under the reopen policy."""
    with database().session() as session:
        incident_id = session.get(Episode, episode_id).incident_id

    with incident_lock(incident_id, settings):
        row, previous = _claim_issue_row(settings, episode_id)
        if row.state != PENDING:
            logger.info("incident %s episode %s: GitHub issue #%s already recorded", incident_id, episode_id, row.number)
            return _done(row, already=True)
        title, text_body, last_entry_id = _episode_content(settings, episode_id, reopened=previous is not None)
        earlier_attempts = _record_attempt(GitHubIssue, row.id)
        since = row.created_at - LOOKUP_MARGIN

        issue: IssueRef | None = None
        action = "created"
        if previous is not None:
            try:
                issue = _reopen(client, previous.number, row.marker, text_body, since=since, search=earlier_attempts > 0)
                action = "reopened"
            except NotFound:
                logger.warning("incident %s: issue #%s to reopen is gone, opening a new one", incident_id, previous.number)
                action = "new_after_missing"
        if issue is None:
            if earlier_attempts > 0:
                issue = client.find_issue(row.marker, since=since)
                if issue is not None:
                    action = "adopted"
                    logger.info("incident %s episode %s: found issue #%s from an earlier attempt", incident_id, episode_id, issue.number)
            if issue is None:
                issue = client.create_issue(
                    title=title, body=text_body, labels=settings.github_labels, assignees=settings.github_assignees
                )

        with database().session() as session:
            session.execute(
                update(GitHubIssue)
                .where(GitHubIssue.id == row.id)
                .values(state=OPEN, number=issue.number, html_url=issue.html_url, action=action, last_entry_id=last_entry_id)
            )
            row = session.get(GitHubIssue, row.id)
    logger.info("incident %s episode %s: GitHub issue #%s %s", incident_id, episode_id, issue.number, action)
    return _done(row)


def _reopen(client: GitHubClient, number: int, marker: str, text_body: str, *, since: datetime, search: bool) -> IssueRef:
    issue = client.set_state(number, state="open", state_reason="reopened")
    if not search or client.find_comment(number, marker, since=since) is None:
        client.comment(number, text_body)
    return issue


def close_issue(client: GitHubClient, settings: Settings, *, episode_id: int) -> StepResult:
    """Close the episode's issue with a comment that gives the episode's duration."""
    with database().session() as session:
        episode = session.get(Episode, episode_id)
        incident_id = episode.incident_id
        opened = get_entry(session, key=step_key(episode_id, "github"))
    if opened is None:
        # NOTE: the close retries with the ordinary backoff, so an open step that waits out a long rate
        # limit can outlast it, and the close then records a failure while the issue stays open.
        raise IssuePending(f"incident {incident_id} episode {episode_id}: the GitHub issue is not opened yet")
    if opened.status != "ok":
        return StepResult(
            title=f"GitHub issue not closed: the episode has no issue (opening it ended {opened.status.replace('_', ' ')})",
            status="skipped",
            payload={"open_status": opened.status},
        )

    with incident_lock(incident_id, settings):
        with database().session() as session:
            row = session.scalar(select(GitHubIssue).where(GitHubIssue.episode_id == episode_id))
            episode = session.get(Episode, episode_id)
            later = session.scalar(
                select(GitHubIssue.episode_id)
                .where(
                    GitHubIssue.number == row.number,
                    GitHubIssue.repository == row.repository,
                    GitHubIssue.id > row.id,
                )
                .limit(1)
            )
        payload = {"url": row.html_url, "number": row.number, "repository": row.repository}
        if row.state == CLOSED:
            return StepResult(title=f"GitHub issue #{row.number} closed: {row.html_url}", payload={**payload, "already_recorded": True})
        if later is not None:
            # Under the reopen policy a later episode reuses the issue; its own resolve closes it.
            return StepResult(
                title=f"GitHub issue #{row.number} left open: it now tracks a later episode",
                status="skipped",
                payload={**payload, "later_episode_id": later},
            )

        earlier_attempts = _record_attempt(GitHubIssue, row.id)
        marker = f"<!-- opsseer:resolved episode={episode_id} -->"
        if earlier_attempts == 0 or client.find_comment(row.number, marker, since=row.created_at - LOOKUP_MARGIN) is None:
            client.comment(row.number, marker + "\n\n" + body.close_comment(episode, portal_url=settings.portal_url))
        client.set_state(row.number, state="closed", state_reason="completed")
        with database().session() as session:
            session.execute(update(GitHubIssue).where(GitHubIssue.id == row.id).values(state=CLOSED, closed_at=datetime.now(UTC)))
    duration = episode.duration_seconds
    logger.info("incident %s episode %s: GitHub issue #%s closed", incident_id, episode_id, row.number)
    return StepResult(
        title=f"GitHub issue #{row.number} closed: {row.html_url}",
        payload={**payload, "duration_seconds": duration},
    )


def wants_comment(entry: TimelineEntry) -> bool:
    if entry.kind in COMMENT_KINDS:
        return True
    return entry.status == "failed" and entry.kind not in NO_FAILURE_COMMENT_KINDS


def queue_comments(limit: int = 200) -> list[int]:
    """Insert pending comment rows for entries written after their episode's issue; return their entry ids.

    NOTE: an entry whose id was allocated before the issue's last_entry_id but committed after it is never
    posted, and a comment task lost after this insert leaves its row pending without a retry.
    """
    with database().session() as session:
        candidates = session.execute(
            select(TimelineEntry, GitHubIssue.id)
            .join(GitHubIssue, GitHubIssue.episode_id == TimelineEntry.episode_id)
            .outerjoin(GitHubComment, GitHubComment.entry_id == TimelineEntry.id)
            .where(
                GitHubIssue.state.in_((OPEN, CLOSED)),
                TimelineEntry.id > GitHubIssue.last_entry_id,
                GitHubComment.id.is_(None),
            )
            .order_by(TimelineEntry.id)
            .limit(limit)
        ).all()
        queued = []
        for entry, issue_id in candidates:
            if not wants_comment(entry):
                continue
            inserted = session.execute(
                pg_insert(GitHubComment)
                .values(entry_id=entry.id, issue_id=issue_id, state=PENDING, attempts=0)
                .on_conflict_do_nothing(index_elements=["entry_id"])
                .returning(GitHubComment.id)
            ).first()
            if inserted is not None:
                queued.append(entry.id)
    return queued


def post_comment(client: GitHubClient, settings: Settings, *, entry_id: int) -> GitHubComment | None:
    """Post a queued timeline entry as a comment on its issue; None when the entry or its row is gone."""
    with database().session() as session:
        comment = session.scalar(select(GitHubComment).where(GitHubComment.entry_id == entry_id))
        if comment is None:
            return None
        issue = session.get(GitHubIssue, comment.issue_id)
        entry = session.get(TimelineEntry, entry_id)

    with incident_lock(issue.incident_id, settings):
        with database().session() as session:
            comment = session.get(GitHubComment, comment.id)
        if comment.state != PENDING:
            return comment
        earlier_attempts = _record_attempt(GitHubComment, comment.id)
        marker = body.comment_marker(entry_id)
        found = None
        if earlier_attempts > 0:
            found = client.find_comment(issue.number, marker, since=comment.created_at - LOOKUP_MARGIN)
        posted = found or client.comment(issue.number, body.comment_body(entry, portal_url=settings.portal_url))
        with database().session() as session:
            session.execute(
                update(GitHubComment)
                .where(GitHubComment.id == comment.id)
                .values(state="posted", comment_id=posted.id, html_url=posted.html_url)
            )
            comment = session.get(GitHubComment, comment.id)
    logger.info("incident %s entry %s: posted as comment %s on issue #%s", issue.incident_id, entry_id, posted.id, issue.number)
    return comment
