"""The alerting service's run loop: builds the engine from its settings and collaborators,
listens for ingest commits and runs the scheduled passes (adapter)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TextIO

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from alerting import store
from alerting.cycles import (
    ALERTING_APPLICATION,
    BATCH_ROWS,
    Engine,
    dispatch_cycle,
    judge_events,
    judge_readings,
    night_flow_cycle,
)
from alerting.evaluate import RuleBook
from alerting.files import load_routing, load_rules
from alerting.metrics import AlertingMetrics
from alerting.notifiers.base import Notifier
from alerting.notifiers.broadcast import BroadcastStarter, ServiceStarter
from alerting.notifiers.channels import build_notifiers
from alerting.scheduler import start_jobs
from alerting.settings import AlertingSettings
from ground.links import LinkGrant, alert_link

log = logging.getLogger("village.alerting")

NOTIFY_CHANNEL = "village_ingest"
# An arbitrary constant: one alerting process per database evaluates and sends at a time.
ALERTING_LOCK = 0x414C_5254  # "ALRT"


class AlertingUnavailable(Exception):
    """Alerting cannot start: its database cannot be reached."""


@dataclass(frozen=True)
class Collaborators:
    """What alerting is given rather than builds: the link key and where to send."""

    link_secret: bytes
    registry_refresh_s: float
    broadcast: BroadcastStarter | None = None
    console: TextIO | None = None
    extra_notifiers: dict[str, Notifier] | None = None


def build_engine(options: AlertingSettings, database_url: str, given: Collaborators) -> Engine:
    """Rules, routing and channels from the settings (files read once, at start)."""
    routing = load_routing(options.routing_file)
    secret = given.link_secret
    ttl = timedelta(hours=options.link_ttl_h)

    def link(alert_id: int, person_id: str, now: datetime) -> str:
        return alert_link(options.public_base_url, secret, LinkGrant(alert_id, person_id, now + ttl))

    starter = given.broadcast or ServiceStarter(database_url)
    notifiers = build_notifiers(routing, options.notify_timeout_s, starter, given.console)
    notifiers.update(given.extra_notifiers or {})
    return Engine(
        book=RuleBook(load_rules(options.rules_files, options.presets)),
        routing=routing, notifiers=notifiers, link=link, language=options.language,
        overlap=timedelta(seconds=options.stream_overlap_s),
        retry_attempts=options.retry_attempts, retry_backoff_s=options.retry_backoff_s,
        registry_refresh_s=given.registry_refresh_s,
    )


@dataclass
class AlertingHandle:
    """A running alerting service; `stop()` ends its threads and closes its connections."""

    stop_event: threading.Event
    threads: tuple[threading.Thread, ...]
    pool: ConnectionPool
    scheduler: object
    engine: Engine
    metrics: AlertingMetrics

    def alive(self) -> bool:
        """Whether its passes still run (a thread that died would leave alerts unjudged)."""
        return all(thread.is_alive() for thread in self.threads)

    def stop(self) -> None:
        """Stop listening and scheduling, and wait for the passes in progress."""
        self.stop_event.set()
        self.scheduler.shutdown(wait=True)  # type: ignore[attr-defined]
        for thread in self.threads:
            thread.join(timeout=30)
        self.pool.close()


def _guarded(name: str, work: Callable[[], object]) -> Callable[[], None]:
    """A job that logs its failure and keeps the service running."""
    def job() -> None:
        try:
            work()
        except Exception:  # one bad pass must not stop alerting
            log.exception("alerting %s pass failed", name)
    return job


def start(
    options: AlertingSettings, database_url: str, given: Collaborators,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    metrics: AlertingMetrics | None = None,
) -> AlertingHandle:
    """Start alerting: streaming on ingest commits, scheduled passes, dispatch."""
    # The CLI imports this module for every command; only the running service needs numpy.
    from alerting.tick import tick_cycle  # start-up cost: numpy

    metrics = metrics or AlertingMetrics()
    built = build_engine(options, database_url, given)
    engine = replace(built, notifiers=metrics.instrument(built.notifiers))
    pool = ConnectionPool(database_url, min_size=1, max_size=6, open=True,
                          kwargs={"autocommit": True, "application_name": ALERTING_APPLICATION})
    try:
        pool.wait(timeout=15.0)
    except PoolTimeout:
        pool.close()
        raise AlertingUnavailable("the database cannot be reached") from None
    with pool.connection() as conn:
        store.start_watermarks(conn, timedelta(seconds=options.first_lookback_s))
    # The events' and the readings' passes judge different rules and run side by side: a
    # camera's tampering is not held behind a morning of day uploads. The time passes touch
    # both kinds of alert (an event alert expires; a device gone ends every state) and
    # wait for both, the readings' lock first: holding the events' lock while waiting for
    # a readings' pass (up to 30 s under a burst) held every event back as long.
    events_lock, readings_lock, dispatch_lock = threading.Lock(), threading.Lock(), threading.Lock()
    stop_event, active, readings_due = threading.Event(), threading.Event(), threading.Event()

    def dispatch() -> None:
        if not active.is_set():
            return  # a standby: another process holds the alerting lock
        with dispatch_lock, pool.connection() as conn:
            dispatch_cycle(conn, engine, clock())

    # A pass sends what it opened or closed at once; repeats, escalations and group waits
    # are the dispatch job's (every dispatch_interval_s). Dispatching after every pass
    # read every open alert many times a second: most of alerting's time in the
    # ten-county soak, with a few hundred open.
    def events() -> None:
        readings_due.set()  # an ingest commit: readings too, on their own thread
        with events_lock, pool.connection() as conn:
            judged = judge_events(conn, engine)
        if judged.alerts:
            dispatch()

    def readings() -> None:
        with readings_lock, pool.connection() as conn:
            judged = judge_readings(conn, engine)
        if judged.rows >= BATCH_ROWS:
            readings_due.set()  # a backlog: on with the next batch at once
        read = engine.cache.cursors.get("readings")
        if read is not None:
            metrics.stream_behind.set(max(0.0, (clock() - read.received_at).total_seconds()))
        if judged.alerts:
            dispatch()

    def tick() -> None:
        if not active.is_set():
            return  # a standby: another process holds the alerting lock
        with readings_lock, events_lock, pool.connection() as conn:
            tick_cycle(conn, engine, clock())
        dispatch()

    def nights() -> None:
        if not active.is_set():
            return
        with readings_lock, events_lock, pool.connection() as conn:
            night_flow_cycle(conn, engine, clock())

    threads = (
        threading.Thread(target=_listen, name="alerting-listen",
                         args=(database_url, stop_event, active,
                               _guarded("events", metrics.timed("events", events)),
                               options.evaluate_interval_s), daemon=True),
        threading.Thread(target=_when_due, name="alerting-readings",
                         args=(stop_event, active, readings_due,
                               _guarded("streaming", metrics.timed("streaming", readings)),
                               options.evaluate_interval_s), daemon=True),
    )
    for thread in threads:
        thread.start()
    scheduler = start_jobs([
        ("alerting-tick", _guarded("tick", metrics.timed("tick", tick)),
         options.schedule_interval_s),
        ("alerting-dispatch", _guarded("dispatch", metrics.timed("dispatch", dispatch)),
         options.dispatch_interval_s),
        ("alerting-night-flow", _guarded("night flow", metrics.timed("night_flow", nights)),
         3600.0),
    ])
    return AlertingHandle(stop_event, threads, pool, scheduler, engine, metrics)


def _when_due(stop: threading.Event, active: threading.Event, due: threading.Event,
              work: Callable[[], None], interval_s: float) -> None:
    """Run `work` whenever `due` is set, and every `interval_s` regardless, while active."""
    while not stop.is_set():
        due.wait(interval_s)
        due.clear()
        if active.is_set() and not stop.is_set():
            work()


def _listen(database_url: str, stop: threading.Event, active: threading.Event,
            on_wake: Callable[[], None], interval_s: float) -> None:
    """Run an events pass on every ingest commit, and every `interval_s` regardless.

    Holds the alerting lock on its own connection: a second alerting process on the same
    database waits as a standby instead of judging and sending twice.
    """
    while not stop.is_set():
        try:
            with psycopg.connect(database_url, autocommit=True,
                                 application_name=ALERTING_APPLICATION) as conn:
                while not stop.is_set():
                    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ALERTING_LOCK,)).fetchone()
                    if row and row[0]:
                        active.set()
                        break
                    stop.wait(interval_s)
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not stop.is_set():
                    on_wake()
                    # wake on the first notice, then take the ones already queued: one pass
                    # reads everything committed so far
                    for _ in conn.notifies(timeout=interval_s, stop_after=1):
                        pass
                    for _ in conn.notifies(timeout=0.001):
                        pass
        except psycopg.OperationalError:
            log.warning("alerting lost its database connection; retrying")
            stop.wait(min(interval_s * 5, 5.0))
        finally:
            active.clear()
