"""The pure speaker model obeys priority, expiry and duplicate rules, and acks as it should."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import orjson
import pytest

from devices.models import CommandAck, PlayCommand, SetVolumeCommand, StopCommand
from devices.topics import Channel
from simulators.commands import NEVER_ACK, late_ack
from simulators.payloads import Outgoing
from simulators.speaker import PlayTiming, SpeakerModel

T0 = datetime.fromisoformat("2026-11-22T08:00:00+08:00")


def speaker(**kwargs: object) -> SpeakerModel:
    return SpeakerModel("spk-0001", random.Random(1), T0, stagger=False, **kwargs)  # type: ignore[arg-type]


def play(command_id: str, priority: str = "normal", text: str = "通知", **extra: object) -> bytes:
    fields: dict[str, object] = {"id": command_id, "priority": priority, "text": text, **extra}
    return PlayCommand.model_validate(fields).to_payload()


def acks(messages: list[Outgoing]) -> list[tuple[str, str]]:
    parsed = [CommandAck.model_validate_json(m.payload) for m in messages
              if m.channel is Channel.COMMAND_ACK]
    return [(a.id, a.result) for a in parsed]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("first", "second", "first_acks", "second_acks"),
    [
        ("normal", "emergency", [("a", "accepted"), ("a", "failed")], [("b", "accepted")]),
        ("alert", "emergency", [("a", "accepted"), ("a", "failed")], [("b", "accepted")]),
        ("normal", "alert", [("a", "accepted"), ("a", "failed")], [("b", "accepted")]),
        ("emergency", "normal", [("a", "accepted")], [("b", "rejected")]),
        ("emergency", "alert", [("a", "accepted")], [("b", "rejected")]),
        ("alert", "normal", [("a", "accepted")], [("b", "rejected")]),
        ("normal", "normal", [("a", "accepted")], [("b", "accepted")]),
    ],
)
def test_a_higher_priority_interrupts_and_a_lower_one_is_rejected(
    first: str, second: str, first_acks: list[tuple[str, str]], second_acks: list[tuple[str, str]]
) -> None:
    model = speaker()
    out = model.handle_command(play("a", first), at(0))
    out += model.handle_command(play("b", second), at(1))
    results = acks(out)
    assert [r for r in results if r[0] == "a"] == first_acks
    assert [r for r in results if r[0] == "b"] == second_acks
    if second_acks == [("b", "rejected")]:
        assert model.log.rejected["b"].startswith(f"busy with higher priority {first}")


def test_equal_priority_queues_and_plays_after_the_current_one() -> None:
    model = speaker(timing=PlayTiming(base_s=1, seconds_per_char=0))
    model.handle_command(play("a"), at(0))
    model.handle_command(play("b"), at(0.5))
    out = model.poll(at(1.0))
    assert acks(out) == [("a", "done")]
    assert model.log.playing == "b"
    assert acks(model.poll(at(2.0))) == [("b", "done")]
    assert model.log.started == ["a", "b"] and model.log.finished == ["a", "b"]


def test_play_time_grows_with_text_length_and_repeat() -> None:
    timing = PlayTiming()
    short = PlayCommand(id="s", text="短")
    long = PlayCommand(id="l", text="长" * 50)
    repeated = PlayCommand(id="r", text="长" * 50, repeat=3)
    assert timing.duration(short) < timing.duration(long) < timing.duration(repeated)
    assert timing.duration(repeated) == 3 * timing.duration(long)


def test_accepted_then_done_after_the_play_time_with_events() -> None:
    model = speaker()
    command = PlayCommand(id="x", text="一二三四五", repeat=2)
    out = model.handle_command(command.to_payload(), at(0))
    assert acks(out) == [("x", "accepted")]
    assert [m.channel for m in out if m.channel is not Channel.TELEMETRY] == [
        Channel.COMMAND_ACK, Channel.EVENT]
    ends = at(0) + PlayTiming().duration(command)
    assert model.next_due() <= ends
    assert acks(model.poll(ends - timedelta(milliseconds=1))) == []
    finished = model.poll(ends)
    assert acks(finished) == [("x", "done")]
    done = orjson.loads(next(m.payload for m in finished if m.channel is Channel.COMMAND_ACK))
    assert datetime.fromisoformat(done["ts"]) == ends


@pytest.mark.parametrize(
    ("expires_in_s", "result"),
    [(-1, "rejected"), (0, "rejected"), (30, "accepted")],
)
def test_a_command_past_its_expiry_is_rejected(expires_in_s: float, result: str) -> None:
    model = speaker()
    out = model.handle_command(play("e", expires_at=at(expires_in_s)), at(0))
    assert acks(out) == [("e", result)]
    if result == "rejected":
        assert model.log.rejected == {"e": "expired"}
        assert model.log.started == []


def test_a_queued_command_that_expires_while_waiting_is_rejected() -> None:
    model = speaker(timing=PlayTiming(base_s=10, seconds_per_char=0))
    model.handle_command(play("a"), at(0))
    model.handle_command(play("b", expires_at=at(5)), at(1))
    assert acks(model.poll(at(10))) == [("a", "done"), ("b", "rejected")]
    assert model.log.rejected == {"b": "expired"}


def test_an_id_seen_twice_is_acted_on_once() -> None:
    model = speaker(timing=PlayTiming(base_s=1, seconds_per_char=0))
    first = model.handle_command(play("dup"), at(0))
    model.poll(at(5))
    again = model.handle_command(play("dup"), at(6))
    assert acks(first) == [("dup", "accepted")]
    assert acks(again) == []
    assert model.log.started == ["dup"] and model.log.duplicates == ["dup"]


@pytest.mark.parametrize(
    ("payload", "reason_start"),
    [
        (b'{"id": "u1", "op": "explode"}', "unknown op 'explode'"),
        (b'{"id": "u2", "op": "set_valve", "open": true}', "unknown op 'set_valve' for a speaker"),
        (b'{"id": "u3", "op": "play", "repeat": 0}', "invalid command: play.repeat"),
    ],
)
def test_commands_it_cannot_run_are_rejected_with_a_reason(payload: bytes, reason_start: str) -> None:
    model = speaker()
    out = model.handle_command(payload, at(0))
    assert acks(out)[0][1] == "rejected"
    assert next(iter(model.log.rejected.values())).startswith(reason_start)


@pytest.mark.parametrize("payload", [b"not json", b"[1,2]", b'{"op": "play"}'])
def test_a_command_without_a_readable_id_is_counted_not_acked(payload: bytes) -> None:
    model = speaker()
    assert acks(model.handle_command(payload, at(0))) == []
    assert model.log.unreadable == 1


def test_stop_ends_what_plays_and_set_volume_applies() -> None:
    model = speaker()
    model.handle_command(play("a"), at(0))
    out = model.handle_command(StopCommand(id="s").to_payload(), at(1))
    assert acks(out) == [("a", "failed"), ("s", "done")]
    assert model.log.stopped == ["a"] and model.log.playing is None
    out = model.handle_command(SetVolumeCommand(id="v", volume_pct=35).to_payload(), at(2))
    assert acks(out) == [("v", "done")] and model.log.volume_pct == 35


def test_an_emergency_forces_its_volume_in_the_heartbeat() -> None:
    model = speaker(interval_s=10)
    model.handle_command(play("e", "emergency", text="洪水" * 40), at(0))
    heartbeat = [m for m in model.poll(at(10)) if m.channel is Channel.TELEMETRY]
    assert orjson.loads(heartbeat[0].payload)["volume_pct"] == 100


def test_never_ack_plays_but_sends_no_ack() -> None:
    model = speaker(behaviour=NEVER_ACK)
    out = model.handle_command(play("n"), at(0))
    assert acks(out) == [] and model.log.started == ["n"]


def test_late_ack_holds_acks_for_the_delay() -> None:
    model = speaker(behaviour=late_ack(5))
    assert acks(model.handle_command(play("l"), at(0))) == []
    assert acks(model.poll(at(4.9))) == []
    assert acks(model.poll(at(5))) == [("l", "accepted")]
    assert acks(model.poll(at(7))) == [("l", "done")]
