"""The ingest worker: the MQTT subscriber in this process, the committer in a child process.

The network thread hands messages off; the caller's thread takes them in batches and sends
each batch's raw messages to the committer process (ingest/committer.py), which parses,
plans, writes and commits it and reports back; a reporting thread here then acknowledges
that batch's messages and counts it. Two processes because one interpreter lock cannot
carry the MQTT client's parsing and acknowledging and the decoding and writing at once.
When the database is unavailable the committer retries with backoff and reports nothing,
so nothing is acknowledged: the broker stops sending (receive maximum) and keeps the rest
queued; it resumes by itself. If the committer process dies, the worker stops and `run`
raises (`village ingest` exits non-zero for its supervisor to restart it): nothing it had
not reported was acknowledged, so the broker redelivers it to the next session.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection

from devices.decode import Limits
from ground.settings import MqttEndpoint
from ingest.committer import (
    COMMITTED,
    DATABASE,
    FAILED,
    LOG,
    STOP_FLUSH_S,
    Committed,
    Job,
    to_wire,
)
from ingest.handoff import HandOff, Message
from ingest.maintenance import Maintenance
from ingest.metrics import IngestMetrics
from ingest.mqtt import Subscriber
from ingest.plan import Policy
from ingest.settings import IngestSettings, RetentionSettings

# Batches sent to the committer and not yet reported: one being written, one being planned
# and one waiting keep both of its stages busy.
BATCHES_IN_FLIGHT = 3
# The committer flushes for at most STOP_FLUSH_S once told to stop, plus the attempt under way.
COMMITTER_EXIT_S = STOP_FLUSH_S + 20


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


class Worker:
    """One ingest worker process's machinery: subscriber, hand-off and committer process.

    At most `BATCHES_IN_FLIGHT` batches are with the committer at once, so memory stays
    bounded by the receive maximum (over MQTT 3.1.1, by the hold plus those batches).
    """

    def __init__(self, ingest: IngestSettings, retention: RetentionSettings, *,
                 broker: MqttEndpoint, database_url: str, prefix: str, client_id: str,
                 log: Callable[[str], None] = lambda line: None,
                 metrics: IngestMetrics | None = None) -> None:
        self.client_id = client_id
        self.options = ingest
        self._job = Job(database_url, prefix, policy_from(ingest), ingest.registry_refresh_s)
        # QoS 0 messages are not bounded by the receive maximum; this caps them.
        self.handoff = HandOff(cap=2 * ingest.max_in_flight)
        self.subscriber = Subscriber(broker, prefix, ingest.share_group,
                                     client_id, ingest.max_in_flight, self.handoff, log)
        self.stats = Stats()
        self.metrics = metrics or IngestMetrics()
        self.metrics.watch(lambda: self.subscriber.received, lambda: self.stats.messages)
        self.stop = threading.Event()
        self.maintenance = Maintenance(database_url, retention, self.stop, log)
        self._log = log
        self._sent: dict[int, list[Message]] = {}  # batches with the committer, by number
        self._sent_changed = threading.Condition()
        self._batches = 0
        self._failure: str | None = None

    def run(self) -> None:
        """Receive, store and acknowledge until `stop` is set, then flush and disconnect."""
        ingest = self.options
        conn, committer = self._start_committer()
        reports = threading.Thread(target=self._read_reports, args=(conn, committer),
                                   name="ingest-reports", daemon=True)
        reports.start()
        self.maintenance.start()
        self.subscriber.start()
        try:
            while not self.stop.is_set():
                batch = self.handoff.take(ingest.batch_max_messages,
                                          ingest.batch_max_wait_ms / 1000, idle_wait_s=0.2,
                                          max_bytes=ingest.batch_max_bytes)
                if batch:
                    self._send(conn, batch)
            self.subscriber.pause()
            while len(self.handoff) and self._failure is None:
                self._send(conn, self.handoff.take(ingest.batch_max_messages, 0, idle_wait_s=0,
                                                   max_bytes=ingest.batch_max_bytes))
        finally:
            self.stop.set()
            self._stop_committer(conn, committer)
            reports.join()
            conn.close()
            if self._sent:
                held = sum(len(messages) for messages in self._sent.values())
                self._log(f"stopped with {held} messages not stored; the broker will "
                          "redeliver them")
            self.subscriber.stop()
            self.maintenance.join()
        if self._failure is not None:
            raise RuntimeError(self._failure)

    def _start_committer(self) -> tuple[Connection, subprocess.Popen[bytes]]:
        ours, theirs = socket.socketpair()
        committer = subprocess.Popen(
            [sys.executable, "-m", "ingest.committer", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),))
        theirs.close()
        conn = Connection(ours.detach())
        conn.send(self._job)
        return conn, committer

    def _stop_committer(self, conn: Connection, committer: subprocess.Popen[bytes]) -> None:
        try:
            conn.send(None)  # flush and exit
        except OSError:
            pass  # already gone
        try:
            code = committer.wait(COMMITTER_EXIT_S)
        except subprocess.TimeoutExpired:
            committer.kill()
            code = committer.wait()
        if code != 0 and self._failure is None:
            self._failure = f"the committer process exited with code {code}"

    def _send(self, conn: Connection, batch: list[Message]) -> None:
        """Hand a batch to the committer once it has room (at once when stopping)."""
        with self._sent_changed:
            while len(self._sent) >= BATCHES_IN_FLIGHT and not self.stop.is_set():
                self._sent_changed.wait(0.2)
            if self._failure is not None:
                return
            self._batches += 1
            number = self._batches
            self._sent[number] = batch
        try:
            conn.send(to_wire(number, batch))
        except OSError:
            self.stop.set()  # the committer is gone: the reports thread says why

    def _read_reports(self, conn: Connection, committer: subprocess.Popen[bytes]) -> None:
        while True:
            try:
                report = conn.recv()
            except (EOFError, OSError):
                break
            kind = report[0]
            if kind == COMMITTED:
                self._committed(report[1])
            elif kind == DATABASE:
                self._database(ok=report[1], error=report[2])
            elif kind == LOG:
                self._log(report[1])
            elif kind == FAILED:
                self._fail(f"the ingest committer failed: {report[1]}")
        if not self.stop.is_set():
            try:
                code: int | None = committer.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            self._fail(f"the committer process died (exit code {code}); stopping without "
                       "acknowledging what it held")

    def _fail(self, why: str) -> None:
        self._log(why)
        with self._sent_changed:
            if self._failure is None:
                self._failure = why
            self._sent_changed.notify_all()
        self.stop.set()

    def _committed(self, done: Committed) -> None:
        with self._sent_changed:
            messages = self._sent.pop(done.batch)
            self._sent_changed.notify_all()
        stats = self.stats
        stats.acked += self.subscriber.ack(messages)
        stats.database_ok = True
        stats.internal_errors += done.internal_errors
        stats.isolated += done.isolated
        stats.messages += done.messages
        stats.batches += 1
        stats.readings += done.readings
        stats.duplicates += done.duplicates
        stats.events += done.events
        stats.dead_letters += done.dead_letters
        self.metrics.batch_committed(done)

    def _database(self, ok: bool, error: str) -> None:
        self.stats.database_ok = ok
        if not ok:
            self.stats.db_errors += 1
            self.stats.last_error = error
            self.metrics.database_retries.inc()
