"""Socket Mode: receive Slack's events, button presses and slash commands over a WebSocket.

For deployments without public ingress. `opsseer slack-socket` opens the connection with the app-level token
(OPSSEER_SLACK_APP_TOKEN) and hands every request to the same SlackBot handlers the HTTP endpoints use.
Socket Mode requests need no signature check, because only Slack can send on a connection that the app
token opened.
"""

import logging
import threading
from typing import Any

import click
from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from functions.db import Database
from functions.settings import Settings, SettingsError, get_settings
from functions.slack.bot import Dispatch, InvalidRequest, SlackBot, celery_dispatch

logger = logging.getLogger(__name__)


def handle_request(bot: SlackBot, request: SocketModeRequest) -> dict[str, Any] | None:
    """Run the bot handler for one Socket Mode request and return the payload of its acknowledgement."""
    if request.type == "events_api":
        return bot.handle_event(request.payload, retry_num=request.retry_attempt or 0)
    if request.type == "interactive":
        return bot.handle_interaction(request.payload)
    if request.type == "slash_commands":
        return bot.handle_command({key: str(value) for key, value in request.payload.items()})
    logger.info("ignoring Socket Mode request %s of type %r", request.envelope_id, request.type)
    return None


def create_client(settings: Settings, database: Database, dispatch: Dispatch = celery_dispatch) -> SocketModeClient:
    """Build a Socket Mode client whose requests go to SlackBot; call connect() on it to start."""
    if settings.slack_app_token is None or not settings.slack_app_token.get_secret_value():
        raise SettingsError("OPSSEER_SLACK_APP_TOKEN is required for Socket Mode: set it to the app-level token (xapp-...)")
    bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    web_client = WebClient(token=bot_token, base_url=settings.slack_api_url, timeout=settings.slack_timeout_seconds, retry_handlers=[])  # type: ignore[arg-type]
    client = SocketModeClient(app_token=settings.slack_app_token.get_secret_value(), web_client=web_client)
    bot = SlackBot(database, dispatch)

    def listener(client: SocketModeClient, request: SocketModeRequest) -> None:
        try:
            reply = handle_request(bot, request)
        except InvalidRequest as exc:
            logger.warning("Socket Mode request %s rejected: %s", request.envelope_id, exc)
            reply = None
        except (OperationalError, InterfaceError, OSError) as exc:
            # Not acknowledged, so Slack delivers the request again.
            logger.error("Socket Mode request %s not processed, the store or the broker is unavailable: %s", request.envelope_id, exc)
            return
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id, payload=reply))

    client.socket_mode_request_listeners.append(listener)
    return client


@click.command("slack-socket")
def slack_socket_command() -> None:
    """Receive Slack requests over Socket Mode instead of the public /slack endpoints."""
    try:
        settings = get_settings()
        database = Database(settings.database_url)
        client = create_client(settings, database)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    client.connect()
    logger.info("connected to Slack over Socket Mode; press Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        database.dispose()
