"""An issue follows its incident: closed on resolve, reopened or replaced on a re-fire, commented on later entries."""

from datetime import timedelta

from functions.github.body import comment_marker
from functions.tasks import github as github_tasks
from functions.tasks import pipelines
from functions.timeline import add_entry, step_key
from tests.functions.github.github_helpers import github_entries, issue_rows, open_episode
from tests.functions.helpers import T0, alert, payload, resolved


def _fire_and_resolve(trigger, starts_at, seconds: int) -> int:
    episode_id = trigger.send(payload(alert(starts_at=starts_at)))["opened_episodes"][0]
    github_tasks.sync_github_issue.apply(args=[episode_id]).get()
    trigger.send(payload(resolved(starts_at=starts_at, ends_at=starts_at + timedelta(seconds=seconds))))
    return episode_id


def test_resolve_closes_issue_with_duration(trigger, database, github):
    episode_id = _fire_and_resolve(trigger, T0, 754)

    pipelines.resolution_canvas(episode_id).apply().get()

    [issue] = github.real_issues()
    assert issue["state"] == "closed"
    assert issue["state_reason"] == "completed"
    [comment] = github.comments_of(issue["number"])
    assert "Resolved after 12m 34s" in comment["body"]
    closed = github_entries(database, episode_id)[-1]
    assert closed.status == "ok"
    assert closed.payload["step"] == "github_resolved"
    assert closed.payload["url"] == issue["html_url"]
    assert closed.payload["duration_seconds"] == 754
    assert issue_rows(database)[0].state == "closed"


def test_close_twice_posts_one_comment(trigger, database, github):
    episode_id = _fire_and_resolve(trigger, T0, 60)
    github_tasks.close_github_issue.apply(args=[episode_id]).get()

    again = github_tasks.close_github_issue.apply(args=[episode_id]).get()

    assert again["status"] == "ok"
    assert len(github.comments_of(1)) == 1
    assert github.count("PATCH", r"/repos/acme/incidents/issues/1") == 1


def test_close_without_issue_is_skipped(trigger, database, github, configure):
    configure(github, OPSSEER_GITHUB_REPOSITORY="acme/no-such-repo")
    episode_id = _fire_and_resolve(trigger, T0, 60)

    result = github_tasks.close_github_issue.apply(args=[episode_id]).get()

    assert result["status"] == "skipped"
    assert github_entries(database, episode_id)[-1].title == "GitHub issue not closed: the episode has no issue (opening it ended failed)"


def test_refire_reopens_previous_issue(trigger, database, github):
    first = _fire_and_resolve(trigger, T0, 60)
    github_tasks.close_github_issue.apply(args=[first]).get()

    second = open_episode(trigger, starts_at=T0 + timedelta(minutes=30))
    result = github_tasks.sync_github_issue.apply(args=[second]).get()

    [issue] = github.real_issues()
    assert issue["state"] == "open"
    assert issue["state_reason"] == "reopened"
    assert result["url"] == issue["html_url"]
    reopen_comment = github.comments_of(1)[-1]
    assert reopen_comment["body"].startswith(f"<!-- opsseer:incident=1 episode={second} -->")
    assert "Fired again" in reopen_comment["body"]
    entry = github_entries(database, second)[0]
    assert entry.payload["action"] == "reopened"
    assert entry.title == f"GitHub issue #1 reopened: {issue['html_url']}"

    trigger.send(payload(resolved(starts_at=T0 + timedelta(minutes=30), ends_at=T0 + timedelta(minutes=32))))
    github_tasks.close_github_issue.apply(args=[second]).get()
    assert github.issues[1]["state"] == "closed"
    assert "Resolved after 2m" in github.comments_of(1)[-1]["body"]


def test_refire_new_policy_opens_second_issue(trigger, database, github, configure):
    configure(github, OPSSEER_GITHUB_REFIRE="new")
    first = _fire_and_resolve(trigger, T0, 60)
    github_tasks.close_github_issue.apply(args=[first]).get()

    second = open_episode(trigger, starts_at=T0 + timedelta(minutes=30))
    github_tasks.sync_github_issue.apply(args=[second]).get()

    issues = github.real_issues()
    assert [issue["state"] for issue in issues] == ["closed", "open"]
    assert issues[1]["body"].startswith(f"<!-- opsseer:incident=1 episode={second} -->")
    assert github_entries(database, second)[0].payload["action"] == "created"


def test_reopen_of_deleted_issue_opens_new_one(trigger, database, github):
    first = _fire_and_resolve(trigger, T0, 60)
    del github.issues[1]

    second = open_episode(trigger, starts_at=T0 + timedelta(minutes=30))
    result = github_tasks.sync_github_issue.apply(args=[second]).get()

    assert result["status"] == "ok"
    assert [issue["number"] for issue in github.real_issues()] == [1]
    assert github_entries(database, second)[0].payload["action"] == "new_after_missing"
    assert first != second


def test_later_entries_become_comments_once(trigger, database, github):
    episode_id = open_episode(trigger)
    github_tasks.sync_github_issue.apply(args=[episode_id]).get()
    with database.session() as session:
        for kind, status, title in (
            ("proactive_warning", "ok", "Forecast: p90 crosses 0.25 s in 4m, ping @oncall"),
            ("transcript", "ok", "Transcript segment"),
            ("snapshot", "failed", "Snapshot failed after 3 attempts: Prometheus unreachable"),
            ("summary", "failed", "Enrichment finished for episode 1: snapshot failed"),
        ):
            add_entry(session, incident_id=1, episode_id=episode_id, key=step_key(episode_id, f"late-{kind}"),
                      kind=kind, status=status, title=title)

    queued = github_tasks.sync_github_comments.apply().get()
    for entry_id in queued:
        github_tasks.comment_github_issue.apply(args=[entry_id]).get()
    again = github_tasks.sync_github_comments.apply().get()

    assert len(queued) == 2
    assert again == []
    comments = github.comments_of(1)
    assert [comment["body"].splitlines()[0] for comment in comments] == [comment_marker(entry_id) for entry_id in queued]
    assert "ping @\u200boncall" in comments[0]["body"]
    assert "Prometheus unreachable" in comments[1]["body"]
    assert github.comments_of(1) == comments


def test_comment_after_timeout_is_not_repeated(trigger, database, github):
    episode_id = open_episode(trigger)
    github_tasks.sync_github_issue.apply(args=[episode_id]).get()
    with database.session() as session:
        add_entry(session, incident_id=1, episode_id=episode_id, key="late-runbook", kind="runbook", title="Runbook answer",
                  payload={"answer": "Roll back.", "source": "a.md", "heading": "h", "line_start": 1, "line_end": 2})
    [entry_id] = github_tasks.sync_github_comments.apply().get()
    github.fault("POST", r"/repos/acme/incidents/issues/1/comments", delay=2.5)

    result = github_tasks.comment_github_issue.apply(args=[entry_id]).get()

    assert result["status"] == "ok"
    assert len(github.comments_of(1)) == 1
    assert "> Roll back." in github.comments_of(1)[0]["body"]
