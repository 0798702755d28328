"""The Slack bot's HTTP endpoints on the real API app, with the queued work run as Celery tasks in-process."""

import hashlib
import hmac
import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from functions.celery_app import app as celery_app
from functions.models import Episode, Incident, TimelineEntry
from functions.tasks import slack as slack_tasks
from functions.tasks import slack_bot as slack_bot_tasks
from functions.tasks.slack_bot import NOT_CONFIGURED_ANSWER
from tests.functions.helpers import T0, Trigger, alert, payload
from tests.functions.slack.conftest import SIGNING_SECRET


class SlackApp:
    """The API app with Slack configured; dispatched tasks are recorded and run on demand."""

    def __init__(self, settings, database) -> None:
        self.trigger = Trigger(settings, database)
        self.client = self.trigger.client
        self.dispatched: list[tuple[str, dict]] = []
        self.trigger.app.state.slack_dispatch = lambda name, kwargs: self.dispatched.append((name, kwargs))

    def post(self, path: str, body: bytes, *, content_type: str, timestamp: int | None = None, headers: dict | None = None):
        timestamp = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
        all_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": f"v0={digest}",
            **(headers or {}),
        }
        return self.client.post(path, content=body, headers=all_headers)

    def event(self, envelope: dict, **kwargs):
        return self.post("/slack/events", json.dumps(envelope).encode(), content_type="application/json", **kwargs)

    def interaction(self, interaction: dict):
        body = urlencode({"payload": json.dumps(interaction)}).encode()
        return self.post("/slack/interactions", body, content_type="application/x-www-form-urlencoded")

    def command(self, text: str, response_url: str, trigger_id: str = "trigger-1"):
        form = {"command": "/opsseer", "text": text, "response_url": response_url, "user_id": "U1", "trigger_id": trigger_id}
        return self.post("/slack/commands", urlencode(form).encode(), content_type="application/x-www-form-urlencoded")

    def run_dispatched(self) -> list:
        results = [celery_app.tasks[name].apply(kwargs=kwargs) for name, kwargs in self.dispatched]
        self.dispatched.clear()
        return results

    def rejected(self, reason: str) -> float:
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(f'opsseer_slack_rejected_requests_total{{reason="{reason}"}}'):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no opsseer_slack_rejected_requests_total sample for reason {reason}")


@pytest.fixture
def slack_app(slack_settings, database) -> SlackApp:
    return SlackApp(slack_settings, database)


def _posted_episode(slack_app: SlackApp, fake_slack) -> tuple[int, dict]:
    episode_id = slack_app.trigger.send(payload(alert()))["opened_episodes"][0]
    slack_tasks.post_slack_root.apply(args=[episode_id])
    [root] = fake_slack.roots()
    return episode_id, root


def _mention(event_id: str, text: str, thread_ts: str) -> dict:
    return {
        "type": "event_callback",
        "event_id": event_id,
        "event": {"type": "app_mention", "user": "U42", "text": text, "channel": "C0INCIDENTS", "ts": "1.000001", "thread_ts": thread_ts},
    }


def _button(action_id: str, episode_id: int, trigger_id: str, response_url: str) -> dict:
    return {
        "type": "block_actions",
        "trigger_id": trigger_id,
        "user": {"id": "U7", "username": "alice", "name": "alice"},
        "response_url": response_url,
        "actions": [{"action_id": action_id, "value": str(episode_id), "action_ts": "1.2"}],
    }


SIGNATURE_CASES = [
    ("missing_header", {"X-Slack-Signature": ""}, None, b'{"type": "url_verification", "challenge": "c"}'),
    ("invalid_timestamp", {"X-Slack-Request-Timestamp": "12e3"}, None, b'{"type": "url_verification", "challenge": "c"}'),
    ("stale_timestamp", {}, int(time.time()) - 301, b'{"type": "url_verification", "challenge": "c"}'),
    ("bad_signature", {"X-Slack-Signature": "v0=" + "0" * 64}, None, b'{"type": "url_verification", "challenge": "c"}'),
    ("undecodable_body", {}, None, b"\xff\xfe not utf-8"),
    ("undecodable_body", {}, None, b"{not json"),
]


@pytest.mark.parametrize(("reason", "headers", "timestamp", "body"), SIGNATURE_CASES)
def test_signature_rejections_get_401(slack_app, reason, headers, timestamp, body):
    before = slack_app.rejected(reason)

    response = slack_app.post("/slack/events", body, content_type="application/json", timestamp=timestamp, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_slack_request"
    assert slack_app.rejected(reason) == before + 1
    assert slack_app.dispatched == []


def test_signature_of_interactions_and_commands_checked(slack_app):
    for path in ("/slack/interactions", "/slack/commands"):
        response = slack_app.client.post(path, content=b"payload=%7B%7D", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 401
        assert "X-Slack-Signature" in response.json()["error"]["message"]


def test_url_verification_returns_challenge(slack_app):
    response = slack_app.event({"type": "url_verification", "token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})

    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_event_retry_processed_once(slack_app, fake_slack):
    envelope = _mention("Ev0RETRY", "<@UBOT> how do I fix latency?", "1.000001")

    first = slack_app.event(envelope)
    retried = slack_app.event(envelope, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

    assert first.status_code == 200
    assert retried.status_code == 200
    assert len(slack_app.dispatched) == 1
    assert slack_app.dispatched[0][1]["question"] == "how do I fix latency?"


def test_mention_answered_in_thread(slack_app, fake_slack):
    _, root = _posted_episode(slack_app, fake_slack)
    started = time.monotonic()

    response = slack_app.event(_mention("Ev0MENTION", "<@UBOT> what should I check first?", root["ts"]))

    assert response.status_code == 200
    assert time.monotonic() - started < 3
    slack_app.run_dispatched()
    [reply] = fake_slack.replies(root["ts"])
    assert reply["text"] == NOT_CONFIGURED_ANSWER


def test_acknowledge_button_records_who_and_when(slack_app, fake_slack, database):
    episode_id, root = _posted_episode(slack_app, fake_slack)

    response = slack_app.interaction(_button("opsseer_acknowledge", episode_id, "trig-ack", fake_slack.response_url("ack")))
    slack_app.interaction(_button("opsseer_acknowledge", episode_id, "trig-ack", fake_slack.response_url("ack")))
    slack_app.run_dispatched()
    slack_tasks.post_slack_thread_entries.apply(args=[episode_id])
    slack_bot_tasks.refresh_slack_root.apply(args=[episode_id])

    assert response.status_code == 200
    with database.session() as session:
        episode = session.get(Episode, episode_id)
        entry = session.scalar(select(TimelineEntry).where(TimelineEntry.kind == "acknowledged"))
    assert episode.acknowledged_by == "alice (U7)"
    assert episode.acknowledged_at is not None
    assert entry.title == "Acknowledged by alice (U7) in Slack"
    assert entry.payload["user_id"] == "U7"
    assert entry.payload["at"] == episode.acknowledged_at.isoformat()
    assert [r["body"]["text"] for r in fake_slack.responses] == ["You acknowledged incident 1."]
    assert fake_slack.roots()[0]["edited"] is True
    fields = fake_slack.roots()[0]["blocks"][1]["fields"]
    assert "acknowledged by alice (U7)" in fields[1]["text"]
    assert [reply["text"] for reply in fake_slack.replies(root["ts"])] == ["*acknowledged* Acknowledged by alice (U7) in Slack"]
    [portal_episode] = slack_app.client.get("/api/v1/incidents/1").json()["episodes"]
    assert portal_episode["acknowledged_by"] == "alice (U7)"
    assert portal_episode["acknowledged_at"] is not None
    assert "acknowledged by alice (U7)" in slack_app.client.get("/incidents/1").text


def test_resolve_button_resolves_by_person(slack_app, fake_slack, database):
    episode_id, _ = _posted_episode(slack_app, fake_slack)

    slack_app.interaction(_button("opsseer_resolve", episode_id, "trig-resolve", fake_slack.response_url("resolve")))
    slack_app.run_dispatched()

    with database.session() as session:
        episode = session.get(Episode, episode_id)
        incident = session.get(Incident, episode.incident_id)
        entry = session.scalar(select(TimelineEntry).where(TimelineEntry.kind == "resolved_by_person"))
    assert episode.status == "resolved"
    assert episode.resolved_by == "alice (U7)"
    assert incident.status == "resolved"
    assert entry.title.startswith("Resolved by alice (U7) in Slack after")
    assert [r["body"]["text"] for r in fake_slack.responses] == ["You resolved incident 1."]

    # Alertmanager still sends the same firing alert: the person's resolve remains in effect.
    same = slack_app.trigger.send(payload(alert()))
    assert same["opened_episodes"] == []
    # A later firing (a new startsAt) is a new episode that pages again.
    later = slack_app.trigger.send(payload(alert(starts_at=T0 + timedelta(days=400))))
    assert len(later["opened_episodes"]) == 1


def test_slash_commands(slack_app, fake_slack):
    slack_app.trigger.send(payload(alert()))

    status = slack_app.command("status", fake_slack.response_url("status"), trigger_id="t-status")
    incident = slack_app.command("incident 1", fake_slack.response_url("incident"), trigger_id="t-incident")
    missing = slack_app.command("incident 99", fake_slack.response_url("missing"), trigger_id="t-missing")
    ask = slack_app.command("ask how do I roll back?", fake_slack.response_url("ask"), trigger_id="t-ask")
    invalid = slack_app.command("incident <!channel>", fake_slack.response_url("invalid"), trigger_id="t-invalid")
    unknown = slack_app.command("page everyone", fake_slack.response_url("unknown"), trigger_id="t-unknown")

    assert status.json() == {"response_type": "ephemeral", "text": "Working on `/opsseer status`…"}
    assert invalid.json()["text"].startswith("`&lt;!channel&gt;` is not an incident id.")
    assert unknown.json()["text"].startswith("Unknown subcommand `page`.")
    assert len(slack_app.dispatched) == 4
    slack_app.run_dispatched()
    replies = {r["name"]: r["body"]["text"] for r in fake_slack.responses}
    assert replies["status"].startswith("*1 firing incident(s)*")
    assert "HighLatency is firing" in replies["status"]
    assert replies["incident"].startswith("*Incident 1*: HighLatency is firing")
    assert "Status: firing, severity critical, 1 episode(s)" in replies["incident"]
    assert replies["missing"] == "Incident 99 not found. `/opsseer status` lists the firing incidents."
    assert replies["ask"] == NOT_CONFIGURED_ANSWER
    assert all(r["body"]["response_type"] == "ephemeral" for r in fake_slack.responses)
    assert incident.status_code == missing.status_code == ask.status_code == 200
