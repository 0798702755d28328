"""The bot's request handling, shared by the HTTP endpoints and Socket Mode.

Each handler validates what Slack sent, stores a delivery key so that a retried delivery runs once, enqueues
the work as a Celery task and returns the immediate reply. The key and the enqueue share one transaction: if
the broker is down the key is rolled back, so Slack's retry of the same event can still run.
"""

import logging
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert

from functions.db import Database
from functions.models import SlackDelivery
from functions.slack.blocks import (
    ACK_ACTION,
    ASK_ACTION,
    PORTAL_ACTION,
    RESOLVE_ACTION,
    escape,
)

logger = logging.getLogger(__name__)

# Sends a task by name with keyword arguments; the default sends it to Celery.
Dispatch = Callable[[str, dict[str, Any]], None]

MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
USAGE = (
    "Usage: `/opsseer status` lists firing incidents, `/opsseer incident <id>` shows one incident, "
    "`/opsseer ask <question>` answers from the runbooks."
)
MAX_QUESTION_CHARS = 2000
EPISODE_ACTIONS = {ACK_ACTION: "acknowledge", RESOLVE_ACTION: "resolve", ASK_ACTION: "ask"}


class InvalidRequest(Exception):
    """A verified request whose content OpsSeer cannot use; the message names the field."""


def celery_dispatch(task_name: str, kwargs: dict[str, Any]) -> None:
    from functions.celery_app import app

    app.send_task(task_name, kwargs=kwargs, retry=False)


class SlackBot:
    def __init__(self, database: Database, dispatch: Dispatch) -> None:
        self.database = database
        self.dispatch = dispatch

    def _once(self, key: str, kind: str, retry_num: int, task_name: str, kwargs: dict[str, Any]) -> bool:
        """Store the delivery key and enqueue the task in one transaction; return False for a repeated delivery."""
        with self.database.session() as session:
            inserted = session.execute(
                pg_insert(SlackDelivery)
                .values(key=key, kind=kind, retry_num=retry_num)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(SlackDelivery.key)
            ).first()
            if inserted is None:
                logger.info("Slack delivery %s (retry %d) was already processed; ignoring it", key, retry_num)
                return False
            self.dispatch(task_name, kwargs)
        return True

    def handle_event(self, envelope: dict[str, Any], *, retry_num: int = 0) -> dict[str, Any] | None:
        """Handle an Events API envelope; return the reply body, or None for an empty 200."""
        kind = envelope.get("type")
        if kind == "url_verification":
            challenge = envelope.get("challenge")
            if not isinstance(challenge, str):
                raise InvalidRequest("url_verification without a string 'challenge'")
            return {"challenge": challenge}
        if kind != "event_callback":
            logger.info("ignoring a Slack envelope of type %r", kind)
            return None
        event_id, event = envelope.get("event_id"), envelope.get("event")
        if not isinstance(event_id, str) or not isinstance(event, dict):
            raise InvalidRequest("event_callback without 'event_id' or 'event'")
        if event.get("type") != "app_mention" or event.get("bot_id"):
            logger.info("event %s: ignoring a %r event", event_id, event.get("type"))
            return None
        question = MENTION.sub("", str(event.get("text", ""))).strip()[:MAX_QUESTION_CHARS]
        kwargs = {
            "question": question,
            "channel": str(event.get("channel", "")),
            "thread_ts": str(event.get("thread_ts") or event.get("ts", "")),
            "user_id": str(event.get("user", "")),
            "delivery_key": f"event:{event_id}",
        }
        self._once(f"event:{event_id}", "app_mention", retry_num, "opsseer.answer_slack_question", kwargs)
        return None

    def handle_interaction(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Handle a block_actions payload from the root message's buttons."""
        if payload.get("type") != "block_actions":
            logger.info("ignoring a Slack interaction of type %r", payload.get("type"))
            return None
        user = payload.get("user") or {}
        actions = payload.get("actions")
        if not isinstance(actions, list) or not isinstance(user, dict):
            raise InvalidRequest("block_actions without 'actions' or 'user'")
        for action in actions:
            action_id = action.get("action_id")
            if action_id == PORTAL_ACTION:
                continue
            if action_id not in EPISODE_ACTIONS:
                logger.info("ignoring unknown Slack action %r", action_id)
                continue
            value = str(action.get("value", ""))
            if not value.isdigit():
                raise InvalidRequest(f"action {action_id} has value {value[:40]!r}, not an episode id")
            kwargs = {
                "action": EPISODE_ACTIONS[action_id],
                "episode_id": int(value),
                "user_id": str(user.get("id", "")),
                "user_name": str(user.get("name") or user.get("username") or user.get("id", "unknown")),
                "response_url": payload.get("response_url"),
            }
            key = f"action:{payload.get('trigger_id') or action.get('action_ts')}:{action_id}"
            self._once(key, "block_actions", 0, "opsseer.handle_slack_action", kwargs)
        return None

    def handle_command(self, form: dict[str, str]) -> dict[str, Any]:
        """Handle `/opsseer ...`; return the immediate ephemeral reply."""
        text = form.get("text", "").strip()
        subcommand, _, argument = text.partition(" ")
        argument = argument.strip()
        subcommand = subcommand.lower()
        if subcommand in ("", "help"):
            return {"response_type": "ephemeral", "text": USAGE}
        if subcommand == "incident" and not argument.isdigit():
            return {"response_type": "ephemeral", "text": f"`{escape(argument[:40]) or '(empty)'}` is not an incident id. {USAGE}"}
        if subcommand == "ask" and not argument:
            return {"response_type": "ephemeral", "text": f"`/opsseer ask` needs a question. {USAGE}"}
        if subcommand not in ("status", "incident", "ask"):
            return {"response_type": "ephemeral", "text": f"Unknown subcommand `{escape(subcommand[:40])}`. {USAGE}"}
        response_url = form.get("response_url")
        if not response_url:
            raise InvalidRequest("slash command without 'response_url'")
        kwargs = {
            "subcommand": subcommand,
            "argument": argument[:MAX_QUESTION_CHARS],
            "response_url": response_url,
            "user_id": form.get("user_id", ""),
        }
        key = f"command:{form.get('trigger_id') or response_url}"
        self._once(key, "slash_command", 0, "opsseer.answer_slack_command", kwargs)
        return {"response_type": "ephemeral", "text": f"Working on `/opsseer {subcommand}`…"}
