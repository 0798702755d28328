"""Socket Mode against a fake Slack WebSocket server on loopback, with the real slack-sdk Socket Mode client."""

import contextlib
import json
import queue
import threading

from pydantic import SecretStr
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from functions.models import SlackDelivery
from functions.slack.socket_mode import create_client

ENVELOPE = {
    "envelope_id": "env-1",
    "type": "events_api",
    "accepts_response_payload": False,
    "retry_attempt": 0,
    "retry_reason": "",
    "payload": {
        "type": "event_callback",
        "event_id": "Ev0SOCKET",
        "event": {"type": "app_mention", "user": "U9", "text": "<@UBOT> how do I roll back?", "channel": "C0INCIDENTS", "ts": "5.000001"},
    },
}
COMMAND = {
    "envelope_id": "env-2",
    "type": "slash_commands",
    "accepts_response_payload": True,
    "payload": {"command": "/opsseer", "text": "bogus", "response_url": "http://127.0.0.1:9/unused", "trigger_id": "t-sock"},
}


def test_socket_mode_dispatches_and_acknowledges(slack_settings, fake_slack, database):
    acks: queue.Queue = queue.Queue()

    def session(websocket) -> None:
        websocket.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}}))
        for envelope in (ENVELOPE, ENVELOPE, COMMAND):
            websocket.send(json.dumps(envelope))
            acks.put(json.loads(websocket.recv(timeout=10)))
        # The session ends when the client closes the connection or after 10 s of silence.
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            websocket.recv(timeout=10)

    server = serve(session, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake_slack.socket_url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/link"
    settings = slack_settings.model_copy(update={"slack_app_token": SecretStr("xapp-test-token")})
    dispatched = []
    client = create_client(settings, database, dispatch=lambda name, kwargs: dispatched.append((name, kwargs)))
    try:
        client.connect()
        received = [acks.get(timeout=15) for _ in range(3)]
    finally:
        client.close()
        server.shutdown()

    assert [ack["envelope_id"] for ack in received] == ["env-1", "env-1", "env-2"]
    assert received[2]["payload"]["text"].startswith("Unknown subcommand `bogus`.")
    # The redelivered envelope is acknowledged but runs once.
    assert [name for name, _ in dispatched] == ["opsseer.answer_slack_question"]
    assert dispatched[0][1]["question"] == "how do I roll back?"
    assert dispatched[0][1]["thread_ts"] == "5.000001"
    with database.session() as session:
        assert session.scalar(select(SlackDelivery.kind).where(SlackDelivery.key == "event:Ev0SOCKET")) == "app_mention"
    assert [call["token"] for call in fake_slack.calls_of("apps.connections.open")] == ["xapp-test-token"]
