"""The incident store: JSON hygiene, migrations and the `opsseer db` commands."""

import math
import subprocess
import sys

from sqlalchemy import create_engine, inspect, select, text

from functions.db import dumps_json
from functions.migrations import downgrade, upgrade
from functions.settings import Settings
from functions.models import TimelineEntry
from functions.tasks import snapshot
from functions.timeline import add_entry
from tests.functions.helpers import Trigger, alert, payload


def test_nan_and_inf_stored_as_null(settings, database):
    Trigger(settings, database).send(payload(alert()))
    values = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "nested": [1.5, math.nan, {"x": math.inf}]}

    with database.session() as session:
        add_entry(session, incident_id=1, episode_id=1, key="test:nan", kind="forecast", title="t", payload=values)

    with database.session() as session:
        stored = session.scalar(select(TimelineEntry.payload).where(TimelineEntry.idempotency_key == "test:nan"))
        raw = session.scalar(text("SELECT payload::text FROM timeline_entries WHERE idempotency_key = 'test:nan'"))
    assert stored == {"nan": None, "inf": None, "ninf": None, "nested": [1.5, None, {"x": None}]}
    assert "NaN" not in raw
    assert "Infinity" not in raw


def test_dumps_json_keeps_finite_values():
    assert dumps_json({"a": 1.25, "b": "ü"}) == '{"a": 1.25, "b": "ü"}'


def test_timeline_key_makes_second_write_noop(settings, database):
    Trigger(settings, database).send(payload(alert()))

    with database.session() as session:
        first = add_entry(session, incident_id=1, episode_id=1, key="k", kind="summary", title="one")
        second = add_entry(session, incident_id=1, episode_id=1, key="k", kind="summary", title="two")

    assert (first, second) == (True, False)
    with database.session() as session:
        assert session.scalars(select(TimelineEntry.title).where(TimelineEntry.idempotency_key == "k")).all() == ["one"]


def test_migrations_downgrade_and_upgrade(stack):
    url = stack.cluster.url_for("migration_check")
    with stack.cluster_admin() as connection:
        connection.execute("DROP DATABASE IF EXISTS migration_check")
        connection.execute("CREATE DATABASE migration_check")

    upgrade(url)
    engine = create_engine(url)
    assert {"incidents", "episodes", "alerts", "timeline_entries", "attachments", "webhook_deliveries", "function_runs"} <= set(
        inspect(engine).get_table_names()
    )

    downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_db_upgrade_command(stack):
    with stack.cluster_admin() as connection:
        connection.execute("DROP DATABASE IF EXISTS cli_check")
        connection.execute("CREATE DATABASE cli_check")
    env = {"OPSSEER_DATABASE_URL": stack.cluster.url_for("cli_check"), "OPSSEER_BROKER_URL": stack.broker_url, "PATH": "/usr/bin:/bin"}

    result = subprocess.run([sys.executable, "-m", "opsseer", "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "upgraded to head" in result.stdout


def test_db_upgrade_without_url_names_variable():
    result = subprocess.run(
        [sys.executable, "-m", "opsseer", "db", "upgrade"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60
    )

    assert result.returncode == 1
    assert "OPSSEER_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_tasks_acknowledge_late_and_reject_on_worker_loss():
    task = snapshot.capture_snapshot

    assert task.acks_late is True
    assert task.reject_on_worker_lost is True


def test_settings_repr_hides_secrets():
    settings = Settings(database_url="postgresql+psycopg://u:db-secret@h/db", broker_url="redis://:redis-secret@h/0", webhook_token="token-secret")

    text_form = repr(settings)
    assert "db-secret" not in text_form
    assert "redis-secret" not in text_form
    assert "token-secret" not in text_form
