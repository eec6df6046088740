"""The status history's decisions, directly: what a stored batch and a silence make of a
device's recorded state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devices.status_history import (
    FIRST_HEARD,
    HEARD_AGAIN,
    REPORTED_OFFLINE,
    REPORTED_ONLINE,
    SILENT,
    Heard,
    StatusChange,
    after_heard,
    after_silence,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def heard(last_seen: datetime | None = T0, state: str | None = None,
          reported_state: str | None = None) -> Heard:
    return Heard("wm-1", last_seen, state, T0 if state else None, reported_state or state)


def test_a_message_makes_a_device_online_once() -> None:
    assert after_heard(heard(), None) == StatusChange("wm-1", T0, True, FIRST_HEARD)
    assert after_heard(heard(), False) == StatusChange("wm-1", T0, True, HEARD_AGAIN)
    assert after_heard(heard(), True) is None


def test_a_status_or_last_will_says_which_state_and_when() -> None:
    later = heard(T0 + timedelta(seconds=5), "offline")  # a reading, then the Last Will
    assert after_heard(later, True) == StatusChange("wm-1", T0, False, REPORTED_OFFLINE)
    assert after_heard(later, False) is None
    assert after_heard(heard(state="online"), False) == StatusChange("wm-1", T0, True,
                                                                     REPORTED_ONLINE)


def test_readings_do_not_bring_back_a_device_that_said_it_was_offline() -> None:
    assert after_heard(heard(reported_state="offline"), False) is None


def test_a_retained_status_replay_is_not_hearing_the_device() -> None:
    assert after_heard(heard(last_seen=None, state="online"), False) is None


def test_silence_past_the_kinds_limit_goes_offline_when_the_limit_passed() -> None:
    seen = {"wm-1": T0, "cam-1": T0, "wm-never": None}
    limits = {"wm-1": 600.0, "cam-1": 120.0, "wm-never": 600.0}
    now = T0 + timedelta(minutes=5)
    assert after_silence(["wm-1", "cam-1", "wm-never", "retired"], seen, limits, now) == [
        StatusChange("cam-1", T0 + timedelta(minutes=2), False, SILENT)]
    assert [c.device_id for c in after_silence(["wm-1"], seen, limits,
                                               T0 + timedelta(minutes=10))] == ["wm-1"]
