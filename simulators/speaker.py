"""A village loudspeaker, pure: it obeys commands as the contract says and reports its health.

Rules (docs/simulators.md): priority emergency > alert > normal; a higher priority
interrupts a lower one at once (the interrupted one is acked `failed`); a lower priority
is `rejected` while a higher one plays; an equal priority queues behind the current one;
a command past `expires_at` is `rejected`; an `id` seen twice is acted on once (the second
copy is ignored, not acked again).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from devices.contract import priority_rank
from devices.models import PlayCommand, SetVolumeCommand, StopCommand
from simulators import payloads
from simulators.commands import NORMAL, Acker, Behaviour, screen
from simulators.faults import Faults
from simulators.model import earliest
from simulators.payloads import Outgoing
from simulators.sensor import CommandHandler, Sample, SensorDevice

KIND = "speaker"


@dataclass(frozen=True, slots=True)
class PlayTiming:
    """How long a play takes: grows with the text's length and the repeat count."""

    base_s: float = 1.0
    seconds_per_char: float = 0.2  # on-device TTS speaks about five Chinese characters a second
    audio_url_s: float = 30.0
    scale: float = 1.0  # tests shrink time with this

    def duration(self, command: PlayCommand) -> timedelta:
        """How long `command` plays, all repeats included."""
        if command.text:
            once = self.base_s + self.seconds_per_char * len(command.text)
        else:
            once = self.audio_url_s
        return timedelta(seconds=once * command.repeat * self.scale)


@dataclass
class SpeakerLog:
    """What a speaker did, for tests to inspect."""

    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    unreadable: int = 0
    volume_pct: int = 60
    playing: str | None = None

    def copy(self) -> SpeakerLog:
        """A snapshot that later activity does not change."""
        return replace(self, started=list(self.started), finished=list(self.finished),
                       preempted=list(self.preempted), stopped=list(self.stopped),
                       rejected=dict(self.rejected), duplicates=list(self.duplicates))


@dataclass
class _Playing:
    command: PlayCommand
    ends_at: datetime
    volume_pct: int


class SpeakerModel:
    """One simulated loudspeaker."""

    kind = KIND

    def __init__(self, device_id: str, rng: random.Random, start: datetime,
                 behaviour: Behaviour = NORMAL, timing: PlayTiming | None = None,
                 interval_s: float = 60.0, stagger: bool = True) -> None:
        self.device_id = device_id
        self.behaviour = behaviour
        self.timing = timing or PlayTiming()
        self.log = SpeakerLog()
        self._health = SensorDevice(device_id, _Health(self, rng), rng, start, interval_s,
                                    stagger=stagger)
        self.faults = self._health.faults
        self._acker = Acker(device_id, behaviour)
        self._seen: set[str] = set()
        self._current: _Playing | None = None
        self._queue: deque[PlayCommand] = deque()
        self._handlers: dict[str, Callable[[object, datetime, list[Outgoing]], None]] = {
            "play": self._play, "stop": self._stop, "set_volume": self._set_volume,
        }

    def next_due(self) -> datetime:
        """When this speaker next has something to do on its own."""
        ends_at = self._current.ends_at if self._current is not None else None
        return earliest(self._health.next_due(), ends_at, self._acker.next_due())

    def poll(self, now: datetime) -> list[Outgoing]:
        """Finish plays whose time is up, send late acks and the heartbeat when due."""
        out: list[Outgoing] = []
        while self._current is not None and self._current.ends_at <= now:
            self._finish(self._current.ends_at, out)
        out.extend(self._health.poll(now))
        out.extend(self._acker.release(now))
        return out

    def resume(self, now: datetime) -> None:
        """Back on the network: nothing was measured while it was off."""
        self._health.resume(now)

    def handle_command(self, raw: bytes, now: datetime) -> list[Outgoing]:
        """React to a payload received on the cmd topic."""
        out = self.poll(now)
        screened = screen(raw, self._seen, now)
        if screened.command_id is None:
            self.log.unreadable += 1
        elif screened.duplicate:
            self.log.duplicates.append(screened.command_id)
        elif screened.command is None:
            self._reject(screened.command_id, screened.reason or "invalid", now, out)
        else:
            handler = self._handlers.get(screened.command.op)
            if handler is None:
                self._reject(screened.command_id,
                             f"unknown op {screened.command.op!r} for a speaker", now, out)
            else:
                handler(screened.command, now, out)
        out.extend(self._acker.release(now))
        return out

    def _reject(self, command_id: str, reason: str, now: datetime, out: list[Outgoing]) -> None:
        self.log.rejected[command_id] = reason
        self._acker.ack(out, command_id, "rejected", now, reason)

    def _play(self, command: object, now: datetime, out: list[Outgoing]) -> None:
        assert isinstance(command, PlayCommand)
        current = self._current
        if current is None:
            self._acker.ack(out, command.id, "accepted", now)
            self._start(command, now, out)
            return
        rank, playing_rank = priority_rank(command.priority), priority_rank(current.command.priority)
        if rank < playing_rank:
            self._reject(command.id, f"busy with higher priority {current.command.priority}"
                         f" ({current.command.id})", now, out)
        elif rank == playing_rank:
            self._acker.ack(out, command.id, "accepted", now, "queued")
            self._queue.append(command)
        else:
            self._interrupt(f"preempted by {command.priority} {command.id}", now, out,
                            self.log.preempted)
            self._acker.ack(out, command.id, "accepted", now)
            self._start(command, now, out)

    def _stop(self, command: object, now: datetime, out: list[Outgoing]) -> None:
        assert isinstance(command, StopCommand)
        target = command.target_id
        if target is None or (self._current is not None and self._current.command.id == target):
            stopped_any = self._current is not None or bool(self._queue)
            self._interrupt(f"stopped by {command.id}", now, out, self.log.stopped)
        else:
            kept = deque(queued for queued in self._queue if queued.id != target)
            stopped_any = len(kept) != len(self._queue)
            if stopped_any:
                self._queue = kept
                self.log.stopped.append(target)
                self._acker.ack(out, target, "failed", now, f"stopped by {command.id}")
        self._acker.ack(out, command.id, "done", now, None if stopped_any else "nothing to stop")

    def _set_volume(self, command: object, now: datetime, out: list[Outgoing]) -> None:
        assert isinstance(command, SetVolumeCommand)
        self.log.volume_pct = command.volume_pct
        self._acker.ack(out, command.id, "done", now)

    def _start(self, command: PlayCommand, now: datetime, out: list[Outgoing]) -> None:
        # An emergency forces its volume (the loudest unless it names one).
        if command.priority == "emergency":
            volume = command.volume_pct if command.volume_pct is not None else 100
        else:
            volume = command.volume_pct if command.volume_pct is not None else self.log.volume_pct
        self._current = _Playing(command, now + self.timing.duration(command), volume)
        self.log.started.append(command.id)
        self.log.playing = command.id
        out.append(payloads.event(self.device_id, now, "play_started",
                                  detail={"id": command.id, "priority": command.priority}))

    def _finish(self, at: datetime, out: list[Outgoing]) -> None:
        assert self._current is not None
        command = self._current.command
        self.log.finished.append(command.id)
        self._acker.ack(out, command.id, "done", at)
        out.append(payloads.event(self.device_id, at, "play_finished", detail={"id": command.id}))
        self._current = None
        self.log.playing = None
        while self._queue and self._current is None:
            following = self._queue.popleft()
            if following.expires_at is not None and following.expires_at <= at:
                self._reject(following.id, "expired", at, out)
            else:
                self._start(following, at, out)

    def _interrupt(self, reason: str, now: datetime, out: list[Outgoing],
                   record: list[str]) -> None:
        """End what plays and what waits, acking each `failed` with the reason."""
        victims = ([self._current.command] if self._current else []) + list(self._queue)
        for victim in victims:
            record.append(victim.id)
            self._acker.ack(out, victim.id, "failed", now, reason)
        self._current = None
        self.log.playing = None
        self._queue.clear()

    def volume_now(self) -> tuple[int, bool]:
        """The output volume (an emergency forces its own) and whether it is playing."""
        playing = self._current
        return (playing.volume_pct if playing else self.log.volume_pct), playing is not None


class _Health:
    """The speaker's heartbeat readings, as the reporting machinery samples them."""

    kind = KIND
    commands: Mapping[str, CommandHandler] = {}

    def __init__(self, speaker: SpeakerModel, rng: random.Random) -> None:
        self._speaker = speaker
        self._rng = rng

    def sample(self, slot: datetime, interval_h: float, faults: Faults) -> Sample:
        """Volume, amplifier temperature and signal at `slot`."""
        rng = self._rng
        volume, playing = self._speaker.volume_now()
        # The amplifier warms while it plays.
        temperature = 18 + (12 if playing else 0) + rng.gauss(0, 0.5)
        return Sample({"volume_pct": volume, "temperature_c": round(temperature, 1),
                       "rssi_dbm": round(-72 + rng.gauss(0, 3))})
