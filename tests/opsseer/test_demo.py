"""The demo's stage checks: a failed stage is named, and old incidents cannot satisfy a stage."""

from datetime import timedelta

import pytest
from rich.console import Console

from opsseer.demo import (
    ALERT_NAME,
    StageFailed,
    latest_episode_id,
    new_episode,
    wait_for,
)
from tests.functions.helpers import T0, Trigger, alert, payload, resolved


def test_stage_timeout_names_stage_and_wait():
    with pytest.raises(StageFailed) as failure:
        wait_for("the webhook from Alertmanager", 0.3, lambda: None, Console(quiet=True), interval=0.1)

    assert str(failure.value) == "stage failed: the webhook from Alertmanager did not happen within 0.3 s"
    assert failure.value.stage == "the webhook from Alertmanager"


def test_stage_returns_probe_value():
    values = iter([None, False, 42])

    assert wait_for("answer", 5, lambda: next(values), Console(quiet=True), interval=0.01) == 42


def test_earlier_demo_episode_does_not_count(settings, database):
    trigger = Trigger(settings, database)
    trigger.send(payload(alert(name=ALERT_NAME, fingerprint="demo")))
    trigger.send(payload(resolved(name=ALERT_NAME, fingerprint="demo")))
    baseline = latest_episode_id(database)

    assert baseline > 0
    assert new_episode(database, baseline) is None

    trigger.send(payload(alert(name=ALERT_NAME, fingerprint="demo", starts_at=T0 + timedelta(hours=1))))
    episode = new_episode(database, baseline)
    assert episode is not None
    assert episode.sequence == 2
