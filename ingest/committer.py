"""The committer: a child process of the ingest worker that plans, writes and commits batches.

The worker's process keeps the MQTT client and the hand-off, and sends each batch's raw
messages here; this process parses and plans them against the registry (one thread) while
a writer thread commits the previous batch, then reports the commit back so the worker
acknowledges that batch. Decoding and writing thus run under their own interpreter lock,
beside the MQTT client's. While the database is unavailable a batch is retried with
backoff and nothing is reported, so nothing is acknowledged. Told to stop, it flushes what
it holds for at most `STOP_FLUSH_S` and exits; what it could not commit is simply never
reported (the broker redelivers it). If the worker's process goes away it exits at once.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from typing import TypeVar

import psycopg

from devices.rejection import Reason
from ground.runtime import collect_garbage_in_larger_steps
from ingest.admit import RegisteredDevice
from ingest.handoff import Message
from ingest.isolate import DeadLetterRefused, Isolation, is_data_error
from ingest.plan import BatchPlan, Parsed, Policy, parse, plan_batch, referenced_devices
from ingest.writer import Writer, WriteResult

T = TypeVar("T")

# How long a stopping committer keeps trying to commit what it holds before it gives up
# (without reporting it: the broker redelivers it to the next session).
STOP_FLUSH_S = 10.0
MAX_BACKOFF_S = 5.0


@dataclass(frozen=True)
class Job:
    """What the committer needs to run (sent to the child process when it starts)."""

    database_url: str
    prefix: str
    policy: Policy
    registry_refresh_s: float


@dataclass(frozen=True, slots=True)
class Committed:
    """One committed batch, as reported back to the worker's process."""

    batch: int
    messages: int
    readings: int
    duplicates: int
    events: int
    dead_letters: int
    internal_errors: int
    isolated: int  # messages the database refused, found by splitting the batch
    seconds: float  # from the batch reaching the writer to its commit (retries included)
    refusals: dict[str, int] = field(default_factory=dict)  # dead letters by reason


# Reports from the committer, each a tuple led by one of these:
COMMITTED = "committed"  # (COMMITTED, Committed)
DATABASE = "database"  # (DATABASE, ok, error text): the database came back, or refused
LOG = "log"  # (LOG, line)
FAILED = "failed"  # (FAILED, text): a bug; the committer stops


# A batch on its way to the committer: its number, then its messages' topics, payloads,
# receipt times (epoch seconds) and flags (QoS | retain << 2), column by column, which
# pickles about ten times faster than the messages themselves, in the receiving process.
Wire = tuple[int, list[str], list[bytes], list[float], bytes]


def to_wire(number: int, messages: list[Message]) -> Wire:
    """A batch as sent to the committer."""
    return (number, [m.topic for m in messages], [m.payload for m in messages],
            [m.received_at.timestamp() for m in messages],
            bytes(m.qos | m.retain << 2 for m in messages))


def from_wire(wire: Wire) -> tuple[int, list[Message]]:
    """A batch as the committer plans it (packet ids are the worker's business, not its)."""
    number, topics, payloads, received, flags = wire
    at = datetime.fromtimestamp
    return number, [Message(topic, payload, 0, flag & 3, bool(flag & 4), at(when, UTC))
                    for topic, payload, when, flag in zip(topics, payloads, received, flags,
                                                          strict=True)]


class DatabaseUnavailable(Exception):
    """The database could not take a batch right now."""


@dataclass
class _Planned:
    """A planned batch on its way from the planner to the writer."""

    batch: int
    messages: list[Message]
    plan: BatchPlan
    # Set once the database refused the batch for its data: written in parts from then on.
    isolation: Isolation | None = None


def serve(conn: Connection) -> None:
    """The child process's work: take its job, then commit the batches that arrive on `conn`
    until told to stop."""
    # Ctrl-C reaches the whole process group: only the worker decides when this one stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    collect_garbage_in_larger_steps()
    job = conn.recv()
    assert isinstance(job, Job)
    Committer(conn, job).run()


class Committer:
    """Plans in the calling thread, commits in a writer thread, reports each commit."""

    def __init__(self, conn: Connection, job: Job) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()
        self.job = job
        self.policy = job.policy
        self.writer = Writer(job.database_url)
        self._lookups = Writer(job.database_url)  # the planner's own connection
        self._inbox: queue.Queue[tuple[int, list[Message]] | None] = queue.Queue()
        self._planned: queue.Queue[_Planned | None] = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self._give_up_at: float | None = None  # set when told to stop
        self._abandoned = threading.Event()
        self._database_ok = False
        self._registry: dict[str, RegisteredDevice] = {}
        self._registry_at = float("-inf")

    def run(self) -> None:
        """Serve until told to stop, then flush and return."""
        threading.Thread(target=self._receive, name="committer-inbox", daemon=True).start()
        try:
            self._refresh_registry([])
            self._set_database(True, "")
        except psycopg.Error as exc:
            self._log(f"database unavailable at start ({type(exc).__name__}); will retry")
        writer = threading.Thread(target=self._write_loop, name="committer-writer", daemon=True)
        writer.start()
        try:
            while (batch := self._inbox.get()) is not None and not self._abandoned.is_set():
                self._planned.put(self._plan(*batch))
        except DatabaseUnavailable:
            self._abandoned.set()
        finally:
            self._planned.put(None)
            writer.join()
            self.writer.close()
            self._lookups.close()

    def _receive(self) -> None:
        while True:
            try:
                item = self._conn.recv()
            except (EOFError, OSError):
                # The worker's process is gone: nothing committed now could be acknowledged.
                os._exit(1)
            if item is None:
                self._give_up_at = time.monotonic() + STOP_FLUSH_S
                self.stop.set()
                self._inbox.put(None)
                return
            self._inbox.put(from_wire(item))

    def _report(self, report: tuple[object, ...]) -> None:
        with self._send_lock:
            self._conn.send(report)

    def _log(self, line: str) -> None:
        self._report((LOG, line))

    def _set_database(self, ok: bool, error: str) -> None:
        if ok and self._database_ok:
            return
        self._database_ok = ok
        self._report((DATABASE, ok, error))

    def _plan(self, batch: int, messages: list[Message]) -> _Planned:
        parsed = [parse(message, self.job.prefix, self.policy.limits) for message in messages]
        try:
            self._retry(lambda: self._refresh_registry(parsed), len(messages))
        except psycopg.Error as exc:
            # Ids are checked before the lookup, so this should not happen; if it does, the
            # batch is planned against the snapshot rather than stop the worker.
            self._log(f"registry lookup refused ({type(exc).__name__}); using the snapshot")
        # The parsed documents are dropped here: they are the bulk of a batch's memory, and
        # only the rare isolation of a refused batch needs them again (it parses anew).
        return _Planned(batch, messages, plan_batch(parsed, self._registry, self.policy))

    def _write_loop(self) -> None:
        while (planned := self._planned.get()) is not None:
            if self._abandoned.is_set():
                continue  # not stored, not reported: the broker redelivers them
            started = time.perf_counter()
            try:
                result = self._retry(partial(self._write, planned), len(planned.messages))
            except DatabaseUnavailable:
                self._abandoned.set()
                self._log("stopping with messages not stored; the broker will redeliver them")
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must stop the worker, not hang it
                self._report((FAILED, repr(exc)))
                os._exit(1)
            self._report((COMMITTED, committed(planned, result, time.perf_counter() - started)))

    def _retry(self, attempt: Callable[[], T], held: int) -> T:
        """Run `attempt` until the database takes it, backing off while it is unavailable."""
        delay = 0.1
        while True:
            try:
                result = attempt()
                self._set_database(True, "")
                return result
            except (psycopg.Error, DeadLetterRefused) as exc:
                # A data error is the caller's to handle; anything else from the database
                # (down, or broken: a missing table, a refused dead letter) is waited out,
                # holding the messages unacknowledged, rather than stopping the worker.
                if is_data_error(exc):
                    raise
                self._set_database(False, str(exc).strip().splitlines()[0] if str(exc) else "")
                self._log(f"database unavailable ({type(exc).__name__}); holding {held} "
                          f"messages, retrying in {delay:.1f} s")
            give_up_at = self._give_up_at
            if give_up_at is not None and time.monotonic() + delay > give_up_at:
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
            parsed = [parse(message, self.job.prefix, self.policy.limits)
                      for message in planned.messages]
            planned.isolation = Isolation(parsed, self.policy)
        return planned.isolation.run(
            lambda part: plan_batch(part, self._registry, self.policy), self.writer.write)

    def _refresh_registry(self, parsed: list[Parsed]) -> None:
        now = time.monotonic()
        if now - self._registry_at >= self.job.registry_refresh_s:
            # A new dict, swapped in whole: the writer thread may be reading the old one.
            self._registry = self._lookups.registry()
            self._registry_at = now
            return
        # A device registered a second ago must not be refused: ask about every miss.
        misses = referenced_devices(parsed) - self._registry.keys()
        if misses:
            self._registry = {**self._registry, **self._lookups.lookup(misses)}


def committed(planned: _Planned, result: WriteResult, seconds: float) -> Committed:
    """The report of a committed batch."""
    refusals = Tally(letter.reason for letter in planned.plan.dead_letters)
    # Letters beyond the plan's are messages the database itself refused.
    refused = result.dead_letters - len(planned.plan.dead_letters)
    if refused > 0:
        refusals[Reason.STORAGE_REFUSED.value] += refused
    isolation = planned.isolation
    return Committed(
        batch=planned.batch, messages=len(planned.messages), readings=result.readings,
        duplicates=result.duplicates, events=result.events, dead_letters=result.dead_letters,
        internal_errors=(planned.plan.internal_errors if isolation is None
                         else isolation.internal_errors),
        isolated=0 if isolation is None else isolation.refused,
        seconds=seconds, refusals={str(reason): count for reason, count in refusals.items()})


if __name__ == "__main__":
    # Started by the worker (ingest/service.py) with its end of a socket pair as argument.
    # Run as `__main__`, this module's classes would not be the ones the worker pickles.
    from ingest import committer

    committer.serve(Connection(int(sys.argv[1])))
