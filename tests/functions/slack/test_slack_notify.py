"""Slack notification tasks run by Celery in-process against the loopback fake Slack and a real PostgreSQL."""

import html
import threading
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from sqlalchemy import select

from functions.models import Episode, SlackMessage, TimelineEntry
from functions.tasks import slack as slack_tasks
from functions.tasks import summary
from functions.timeline import add_attachment, add_entry
from tests.functions.helpers import T0, Trigger, alert, payload, resolved
from tests.functions.slack.fake_slack import Failure

ANSWER = {
    "answer": "Roll back the last deploy with `kubectl rollout undo deploy/toyprod`.",
    "kind": "command",
    "source": "toyprod-latency.md",
    "heading": "Mitigation",
    "line_start": 12,
    "line_end": 14,
    "score": 0.83,
    "model": "sentence-transformers/all-MiniLM-L6-v2@test",
    "hits": [],
    "question": "How do I fix ToyprodLatencySLOBreach?",
}


@pytest.fixture
def trigger(settings, database) -> Trigger:
    return Trigger(settings, database)


def attempt(task, *args, task_id: str = "slack-attempt", retries: int = 0):
    """Run one attempt of a task in-process, as the worker would; return its result or the Retry it raised."""
    task.push_request(id=task_id, retries=retries, is_eager=True, called_directly=False, args=list(args), kwargs={})
    try:
        return task.run(*args)
    except Retry as retry:
        return retry
    finally:
        task.pop_request()


def _open_episode(trigger: Trigger, **alert_kwargs) -> int:
    return trigger.send(payload(alert(**alert_kwargs)))["opened_episodes"][0]


def _add_enrichment(database, episode_id: int) -> int:
    with database.session() as session:
        episode = session.get(Episode, episode_id)
        attachment_id = add_attachment(
            session, incident_id=episode.incident_id, episode_id=episode_id, key=f"episode:{episode_id}:snapshot",
            content_type="image/png", data=b"\x89PNG fake",
        )
        entries = {
            "snapshot": ("Snapshot of p95 latency", {"query": "histogram_quantile(0.95, x)", "threshold": 0.25, "attachment_id": attachment_id}, None),
            "forecast": (
                "Forecast",
                {"breach": {"threshold": 0.25, "direction": "above", "time_to_p50_seconds": 240, "time_to_p90_seconds": 120, "probability": 0.8}},
                "amazon/chronos-bolt-small@abc",
            ),
            "proactive_warning": ("Forecast: p90 crosses 0.25 s in 2m", {"threshold": 0.25}, None),
            "runbook": ("Runbook answer", ANSWER, ANSWER["model"]),
        }
        for kind, (title, entry_payload, model) in entries.items():
            add_entry(
                session, incident_id=episode.incident_id, episode_id=episode_id, key=f"episode:{episode_id}:{kind}",
                kind=kind, title=title, payload=entry_payload, model=model,
            )
    return attachment_id


def _entry(database, episode_id: int, kind: str) -> TimelineEntry:
    with database.session() as session:
        return session.scalar(select(TimelineEntry).where(TimelineEntry.episode_id == episode_id, TimelineEntry.kind == kind))


def _mrkdwn_texts(message: dict) -> list[str]:
    texts = [message["text"]]
    for block in message["blocks"]:
        if block["type"] == "section":
            texts += [block["text"]["text"]] if "text" in block else []
            texts += [item["text"] for item in block.get("fields", [])]
        if block["type"] == "context":
            texts += [item["text"] for item in block["elements"]]
    return texts


def test_root_message_not_configured(settings, trigger, database):
    episode_id = _open_episode(trigger)

    slack_tasks.post_slack_root.apply(args=[episode_id])

    entry = _entry(database, episode_id, "slack")
    assert entry.status == "not_configured"
    assert "OPSSEER_SLACK_BOT_TOKEN" in entry.title


def test_root_message_blocks_and_escaping(slack_settings, fake_slack, trigger, database):
    annotations = {"summary": "p95 latency <!channel> & <script>alert(1)</script>", "description": "Check <@U123> now"}
    episode_id = _open_episode(trigger, annotations=annotations)
    attachment_id = _add_enrichment(database, episode_id)

    slack_tasks.post_slack_root.apply(args=[episode_id])

    assert _entry(database, episode_id, "slack").status == "ok"
    [root] = fake_slack.roots()
    texts = _mrkdwn_texts(root)
    joined = "\n".join(texts)
    for text in texts:
        assert "<!channel>" not in text
        assert "<script>" not in text
        assert "<@U123>" not in text
    assert "&lt;!channel&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in joined
    assert root["text"].startswith("[FIRING] critical: p95 latency &lt;!channel&gt;")
    header = root["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert "*Severity*\ncritical" in joined
    assert "*Status*\nFiring" in joined
    assert "`service=toyprod`" in joined
    assert f"<{slack_settings.portal_url}/api/v1/attachments/{attachment_id}|chart (PNG)>" in joined
    assert "<http://127.0.0.1:9090/graph?g0.expr=up+%3D%3D+0&amp;g0.tab=1|Prometheus graph>" in joined
    graph_link = joined.split("<http://127.0.0.1:9090/")[1].split("|")[0]
    assert html.unescape(graph_link) == "graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    assert "p50 crosses 0.25 in 4m, p90 in 2m, breach probability 80%" in joined
    assert "amazon/chronos-bolt-small@abc" in joined
    assert ":warning: Forecast: p90 crosses 0.25 s in 2m" in joined
    assert "> Roll back the last deploy with `kubectl rollout undo deploy/toyprod`." in joined
    assert "toyprod-latency.md § Mitigation, lines 12–14" in joined
    actions = next(block for block in root["blocks"] if block["type"] == "actions")
    assert [element["text"]["text"] for element in actions["elements"]] == ["Acknowledge", "Resolve", "Ask runbook", "Open in portal"]
    assert actions["elements"][-1]["url"] == f"{slack_settings.portal_url}/incidents/1"
    assert root["metadata"] == {"event_type": "opsseer_incident", "event_payload": {"key": f"episode:{episode_id}"}}


def test_root_message_limits_with_overflow_link(slack_settings, fake_slack, trigger, database):
    annotations = {f"note_{index:02d}": f"value {index} " + "x" * 400 for index in range(70)}
    annotations["description"] = "<&>" * 4000
    episode_id = _open_episode(trigger, annotations=annotations)

    slack_tasks.post_slack_root.apply(args=[episode_id])

    [root] = fake_slack.roots()
    blocks = root["blocks"]
    sections = [block["text"]["text"] for block in blocks if block["type"] == "section" and "text" in block]
    assert len(blocks) <= 50
    assert all(len(text) <= 3000 for text in sections)
    assert sum(len(text) for text in _mrkdwn_texts(root)) <= 12000
    description = next(text for text in sections if text.startswith("*description*"))
    assert description.endswith(f"… <{slack_settings.portal_url}/incidents/1|full text in the portal>")
    assert "&lt;&amp;&gt;" in description
    assert sections[-1].endswith(f"<{slack_settings.portal_url}/incidents/1|Full text in the portal>")
    assert "more sections are not shown" in sections[-1]
    assert blocks[-2]["type"] == "actions"


def test_root_message_posted_once_when_run_twice(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)

    slack_tasks.post_slack_root.apply(args=[episode_id])
    slack_tasks.post_slack_root.apply(args=[episode_id])

    assert len(fake_slack.roots()) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


def test_root_message_concurrent_runs_post_once(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)
    results = []

    def run() -> None:
        results.append(slack_tasks.post_slack_root.apply(args=[episode_id]))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake_slack.roots()) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    assert {result.state for result in results} <= {"SUCCESS", "RETRY"}


def test_root_message_timeout_after_post_not_reposted(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)
    # Slack stores the message but answers after the client's 1 s timeout.
    fake_slack.fail("chat.postMessage", Failure(200, delay=1.5, apply=True))

    first = attempt(slack_tasks.post_slack_root, episode_id)
    second = attempt(slack_tasks.post_slack_root, episode_id, retries=1)

    assert isinstance(first, Retry)
    assert second == {"step": "slack", "status": "ok"}
    assert len(fake_slack.roots()) == 1
    assert len(fake_slack.calls_of("chat.postMessage")) == 1
    assert len(fake_slack.calls_of("conversations.history")) == 1
    with database.session() as session:
        row = session.scalar(select(SlackMessage).where(SlackMessage.episode_id == episode_id))
    assert row.ts == fake_slack.roots()[0]["ts"]
    assert row.attempts == 2
    assert _entry(database, episode_id, "slack").status == "ok"


def test_rate_limit_retries_after_retry_after(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)
    fake_slack.fail("chat.postMessage", Failure(429, retry_after=7))

    first = attempt(slack_tasks.post_slack_root, episode_id)

    assert isinstance(first, Retry)
    assert first.when == 7
    assert fake_slack.roots() == []
    assert _entry(database, episode_id, "slack") is None

    second = attempt(slack_tasks.post_slack_root, episode_id, retries=1)

    assert second == {"step": "slack", "status": "ok"}
    assert len(fake_slack.roots()) == 1
    # A 429 means nothing was posted, so the retry posts without a history lookup.
    assert fake_slack.calls_of("conversations.history") == []


def test_server_errors_back_off_then_record_failure(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)
    fake_slack.fail("chat.postMessage", Failure(503), times=3)

    countdowns = []
    for retries in range(2):
        result = attempt(slack_tasks.post_slack_root, episode_id, retries=retries)
        assert isinstance(result, Retry)
        countdowns.append(result.when)
    last = attempt(slack_tasks.post_slack_root, episode_id, retries=2)

    assert countdowns == [pytest.approx(0.2), pytest.approx(0.4)]
    assert last == {"step": "slack", "status": "failed"}
    entry = _entry(database, episode_id, "slack")
    assert entry.status == "failed"
    assert entry.title.startswith("Slack failed after 3 attempts: SlackUnavailable: Slack chat.postMessage failed with HTTP 503")
    assert fake_slack.roots() == []
    # Each 503 may have posted, so each retry first looks for the earlier post in the channel history.
    assert len(fake_slack.calls_of("conversations.history")) == 2


def test_rejected_channel_records_failure_with_fix(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)
    fake_slack.fail("chat.postMessage", Failure(200, error="not_in_channel"))

    slack_tasks.post_slack_root.apply(args=[episode_id])

    entry = _entry(database, episode_id, "slack")
    assert entry.status == "failed"
    assert "not_in_channel" in entry.title
    assert "/invite @OpsSeer" in entry.title


def test_resolve_updates_root_in_place(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)
    slack_tasks.post_slack_root.apply(args=[episode_id])
    trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=5, seconds=3))))

    summary.record_resolution.apply(args=[episode_id])
    slack_tasks.update_slack_root.apply(args=[episode_id])

    [root] = fake_slack.roots()
    assert root.get("edited") is True
    assert len(fake_slack.calls_of("chat.update")) == 1
    assert root["text"].startswith("[RESOLVED] critical: HighLatency is firing (resolved after 5m 3s)")
    assert root["blocks"][0]["text"]["text"].startswith(":white_check_mark: RESOLVED:")
    assert "*Status*\nResolved after 5m 3s" in "\n".join(_mrkdwn_texts(root))
    actions = next(block for block in root["blocks"] if block["type"] == "actions")
    assert [element["text"]["text"] for element in actions["elements"]] == ["Ask runbook", "Open in portal"]
    assert _entry(database, episode_id, "slack_resolved").title == "Updated the Slack message to resolved after 5m 3s"
    assert len(fake_slack.calls_of("chat.postMessage")) == 1


def test_thread_replies_once_per_entry(slack_settings, fake_slack, trigger, database):
    episode_id = _open_episode(trigger)
    slack_tasks.post_slack_root.apply(args=[episode_id])
    trigger.send(payload(resolved(ends_at=T0 + timedelta(minutes=2))))
    summary.record_resolution.apply(args=[episode_id])
    with database.session() as session:
        add_entry(
            session, incident_id=1, episode_id=episode_id, key="test:summary", kind="summary", title="Enrichment finished",
        )

    slack_tasks.post_slack_thread_entries.apply(args=[episode_id])
    slack_tasks.post_slack_thread_entries.apply(args=[episode_id])

    [root] = fake_slack.roots()
    replies = fake_slack.replies(root["ts"])
    assert [reply["text"] for reply in replies] == ["*resolution* Resolved after 2m"]
    assert replies[0]["metadata"]["event_type"] == "opsseer_timeline_entry"
    assert all(reply["thread_ts"] == root["ts"] for reply in replies)
