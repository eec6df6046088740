"""The ingest worker: where the subscriber, the planner and the writer meet.

The caller's thread takes batches from the hand-off and plans them against the registry;
a writer thread commits each planned batch, then acknowledges its messages. When the
database is unavailable the writer keeps the batch and retries with backoff, acknowledging
nothing, so the broker stops sending (receive maximum) and keeps the rest queued; it
resumes by itself.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TypeVar

import psycopg

from devices.decode import Limits
from ground.settings import MqttEndpoint
from ingest.admit import RegisteredDevice
from ingest.handoff import HandOff, Message
from ingest.isolate import DeadLetterRefused, Isolation, is_data_error
from ingest.maintenance import Maintenance
from ingest.metrics import IngestMetrics
from ingest.mqtt import Subscriber
from ingest.plan import (
    BatchPlan,
    Parsed,
    Policy,
    parse,
    plan_batch,
    referenced_devices,
)
from ingest.settings import IngestSettings, RetentionSettings
from ingest.writer import Writer, WriteResult

T = TypeVar("T")

# How long a stopping worker keeps trying to commit what it holds before it gives up
# (without acknowledging: the broker redelivers to the next session).
STOP_FLUSH_S = 10.0
MAX_BACKOFF_S = 5.0


class DatabaseUnavailable(Exception):
    """The database could not take a batch right now."""


@dataclass
class Stats:
    """Running figures of one worker (read by the status line and by tests)."""

    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    events: int = 0
    dead_letters: int = 0
    internal_errors: int = 0  # messages whose handling raised (dead-lettered internal_error)
    isolated: int = 0  # messages the database refused, found by splitting their batch
    batches: int = 0
    acked: int = 0
    db_errors: int = 0
    database_ok: bool = False
    last_error: str = ""


def default_client_id(worker: int) -> str:
    """A stable client id per worker slot, so a restarted worker resumes its session."""
    return f"ingest-{socket.gethostname()}-{worker}"


def policy_from(ingest: IngestSettings) -> Policy:
    """The planning policy from the ingest settings."""
    return Policy(
        limits=Limits(
            max_payload_bytes=ingest.max_payload_bytes,
            future_tolerance=timedelta(seconds=ingest.future_tolerance_s),
            accepted_lateness=timedelta(days=ingest.accepted_lateness_days),
        ),
        discovery=ingest.discovery,
        dead_letter_payload_bytes=ingest.dead_letter_payload_bytes,
    )


@dataclass
class _Planned:
    """A planned batch on its way from the planner to the writer."""

    messages: list[Message]
    plan: BatchPlan
    give_up_at: float | None
    # Set once the database refused the batch for its data: written in parts from then on.
    isolation: Isolation | None = None


class Worker:
    """One ingest worker process's machinery.

    Two stages overlap: the caller's thread takes batches and plans them (parse, registry,
    decode) while a writer thread commits the previous batch and acknowledges it. At most
    one planned batch waits between them, so memory stays bounded by the receive maximum.
    """

    def __init__(self, ingest: IngestSettings, retention: RetentionSettings, *,
                 broker: MqttEndpoint, database_url: str, prefix: str, client_id: str,
                 log: Callable[[str], None] = lambda line: None,
                 metrics: IngestMetrics | None = None) -> None:
        self.client_id = client_id
        self.options = ingest
        self.policy = policy_from(ingest)
        self.prefix = prefix
        # QoS 0 messages are not bounded by the receive maximum; this caps them.
        self.handoff = HandOff(cap=2 * ingest.max_in_flight)
        self.subscriber = Subscriber(broker, prefix, ingest.share_group,
                                     client_id, ingest.max_in_flight, self.handoff, log)
        self.writer = Writer(database_url)
        self._lookups = Writer(database_url)  # the planner's own connection
        self.stats = Stats()
        self.metrics = metrics or IngestMetrics()
        self.metrics.watch(lambda: self.subscriber.received, lambda: self.stats.messages)
        self.stop = threading.Event()
        self.maintenance = Maintenance(database_url, retention, self.stop, log)
        self._log = log
        self._registry: dict[str, RegisteredDevice] = {}
        self._registry_at = float("-inf")
        self._planned: queue.Queue[_Planned | None] = queue.Queue(maxsize=1)
        self._abandoned = threading.Event()
        self._failure: Exception | None = None

    def run(self) -> None:
        """Receive, store and acknowledge until `stop` is set, then flush and disconnect."""
        ingest = self.options
        self.maintenance.start()
        try:
            self._refresh_registry([])
            self.stats.database_ok = True
        except psycopg.Error as exc:
            self._log(f"database unavailable at start ({type(exc).__name__}); will retry")
        writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        writer.start()
        self.subscriber.start()
        try:
            while not self.stop.is_set():
                batch = self.handoff.take(ingest.batch_max_messages,
                                          ingest.batch_max_wait_ms / 1000, idle_wait_s=0.2,
                                          max_bytes=ingest.batch_max_bytes)
                if batch:
                    self._planned.put(self._plan(batch, give_up_at=None))
            self.subscriber.pause()
            give_up_at = time.monotonic() + STOP_FLUSH_S
            while len(self.handoff) and not self._abandoned.is_set() \
                    and time.monotonic() < give_up_at:
                batch = self.handoff.take(ingest.batch_max_messages, 0, idle_wait_s=0,
                                          max_bytes=ingest.batch_max_bytes)
                self._planned.put(self._plan(batch, give_up_at))
        except DatabaseUnavailable:
            self._abandoned.set()
        finally:
            self.stop.set()
            self._planned.put(None)
            writer.join()
            if self._abandoned.is_set():
                self._log("stopped with messages not stored; the broker will redeliver them")
            self.subscriber.stop()
            self.writer.close()
            self._lookups.close()
            self.maintenance.join()
        if self._failure is not None:
            raise RuntimeError("the ingest writer failed") from self._failure

    def _plan(self, batch: list[Message], give_up_at: float | None) -> _Planned:
        parsed = [parse(message, self.prefix, self.policy.limits) for message in batch]
        try:
            self._retry(lambda: self._refresh_registry(parsed), len(batch), give_up_at)
        except psycopg.Error as exc:
            # Ids are checked before the lookup, so this should not happen; if it does, the
            # batch is planned against the snapshot rather than stop the worker.
            self._log(f"registry lookup refused ({type(exc).__name__}); using the snapshot")
        # The parsed documents are dropped here: they are the bulk of a batch's memory, and
        # only the rare isolation of a refused batch needs them again (it parses anew).
        return _Planned(batch, plan_batch(parsed, self._registry, self.policy), give_up_at)

    def _write_loop(self) -> None:
        while (planned := self._planned.get()) is not None:
            if self._abandoned.is_set():
                continue  # not stored, not acknowledged: the broker redelivers them
            give_up_at = planned.give_up_at
            if give_up_at is None and self.stop.is_set():
                give_up_at = time.monotonic() + STOP_FLUSH_S
            started = time.perf_counter()
            try:
                result = self._retry(partial(self._write, planned), len(planned.messages),
                                     give_up_at)
            except DatabaseUnavailable:
                self._abandoned.set()
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must stop the worker, not hang it
                self._failure = exc
                self._log(f"writer failed: {exc!r}; stopping")
                self._abandoned.set()
                self.stop.set()
                continue
            stats = self.stats
            stats.acked += self.subscriber.ack(planned.messages)
            if planned.isolation is None:
                stats.internal_errors += planned.plan.internal_errors
            else:
                stats.internal_errors += planned.isolation.internal_errors
                stats.isolated += planned.isolation.refused
            stats.messages += len(planned.messages)
            stats.batches += 1
            stats.readings += result.readings
            stats.duplicates += result.duplicates
            stats.events += result.events
            stats.dead_letters += result.dead_letters
            self.metrics.batch_committed(len(planned.messages), planned.plan, result,
                                         time.perf_counter() - started)

    def _retry(self, attempt: Callable[[], T], held: int, give_up_at: float | None) -> T:
        """Run `attempt` until the database takes it, backing off while it is unavailable."""
        delay = 0.1
        while True:
            try:
                result = attempt()
                self.stats.database_ok = True
                return result
            except (psycopg.Error, DeadLetterRefused) as exc:
                # A data error is the caller's to handle; anything else from the database
                # (down, or broken: a missing table, a refused dead letter) is waited out,
                # holding the messages unacknowledged, rather than stopping the worker.
                if is_data_error(exc):
                    raise
                self.stats.database_ok = False
                self.stats.db_errors += 1
                self.metrics.database_retries.inc()
                self.stats.last_error = str(exc).strip().splitlines()[0] if str(exc) else ""
                self._log(f"database unavailable ({type(exc).__name__}); holding {held} "
                          f"messages, retrying in {delay:.1f} s")
            now = time.monotonic()
            if give_up_at is None and self.stop.is_set():
                give_up_at = now + STOP_FLUSH_S
            if give_up_at is not None and now + delay > give_up_at:
                raise DatabaseUnavailable()
            if give_up_at is None:
                self.stop.wait(delay)
            else:
                time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _write(self, planned: _Planned) -> WriteResult:
        if planned.isolation is None:
            try:
                return self.writer.write(planned.plan)
            except Exception as exc:  # noqa: BLE001 - only data errors are handled here
                if not is_data_error(exc):
                    raise
                self._log(f"the database refused a batch of {len(planned.messages)} messages "
                          f"({type(exc).__name__}); writing it in parts to find the message")
            # The parsed documents were dropped after planning: parse this rare batch anew.
            parsed = [parse(message, self.prefix, self.policy.limits)
                      for message in planned.messages]
            planned.isolation = Isolation(parsed, self.policy)
        return planned.isolation.run(
            lambda part: plan_batch(part, self._registry, self.policy), self.writer.write)

    def _refresh_registry(self, parsed: list[Parsed]) -> None:
        now = time.monotonic()
        if now - self._registry_at >= self.options.registry_refresh_s:
            # A new dict, swapped in whole: the writer thread may be reading the old one.
            self._registry = self._lookups.registry()
            self._registry_at = now
            return
        # A device registered a second ago must not be refused: ask about every miss.
        misses = referenced_devices(parsed) - self._registry.keys()
        if misses:
            self._registry = {**self._registry, **self._lookups.lookup(misses)}
