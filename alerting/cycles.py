"""The alerting passes as functions of a connection and a fixed `now`: the scheduler and
the ingest listener call them, and so do tests, directly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import psycopg

from alerting import reads, store, valve_action
from alerting.dispatch import Send, Target, plan
from alerting.evaluate import STREAM_TYPES, Outcome, RuleBook, evaluate_events, evaluate_stream
from alerting.message import render
from alerting.model import Sample, Subject, fingerprint
from alerting.nightflow import evaluate_areas
from alerting.notifiers.base import Message, Notifier, send_with_retry
from alerting.routing import Routing
from alerting.signals import BASELINE, UNCHANGED
from ingest.maintenance import MAINTENANCE_APPLICATION

if TYPE_CHECKING:  # numpy is for the alerting process only, not every CLI command
    from alerting.tick import TickColumns

# Rows read per streaming pass at most, the rest next pass: memory stays bounded while
# working through a morning's day uploads.
BATCH_ROWS = 50_000
HORIZON_MAX_LAG = timedelta(seconds=60)
# The service's sessions: they store no readings nor events, so the horizon passes over them.
ALERTING_APPLICATION = "village-alerting"


@dataclass
class Cache:
    """What the passes remember between them: the registry and presence as columns, the
    rows already read, and the newest sample judged per rule and device. Losing it costs
    reads, never an alert."""

    columns: TickColumns | None = None  # kept up to date by alerting.tick
    columns_read: float = float("-inf")  # monotonic time they were last brought up to date
    cursors: dict[str, reads.Cursor] = field(default_factory=dict)  # per source, read up to
    judged: dict[str, datetime] = field(default_factory=dict)
    # Held while the columns are brought up to date: the events' and the readings' passes
    # run on threads of their own, and a refresh leaves no columns until it is done.
    refreshing: threading.Lock = field(default_factory=threading.Lock, compare=False,
                                       repr=False)

    def registry(self, conn: psycopg.Connection, refresh_s: float,
                 unknown: bool = False) -> Mapping[str, Subject]:
        """The registry (a device's subject made when asked for), brought up to date when
        stale or when a device was not in it."""
        from alerting.tick import refresh  # start-up cost: numpy, not for every CLI command

        with self.refreshing:
            age = time.monotonic() - self.columns_read
            # an unknown device refreshes at once, but at most once a second (a retired
            # device's readings must not read the registry on every pass)
            if self.columns is None or age > refresh_s or (unknown and age > 1.0):
                refresh(conn, self)
            assert self.columns is not None
            return self.columns.fleet.subjects

    def forget_reads(self, source: str) -> None:
        """Forget what was read of `source`: its next pass reads it again."""
        self.cursors.pop(source, None)
        if source == "readings":
            self.judged = {}


@dataclass(frozen=True)
class Engine:
    """What the cycles need besides a connection, fixed at start: rules, routing, channels,
    links, timings; and the cache the passes keep (the one part that changes)."""

    book: RuleBook
    routing: Routing
    notifiers: Mapping[str, Notifier]
    link: Callable[[int, str, datetime], str | None]
    language: str = "zh"
    overlap: timedelta = timedelta(seconds=2)
    retry_attempts: int = 3
    retry_backoff_s: float = 0.5
    registry_refresh_s: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    cache: Cache = field(default_factory=Cache, compare=False)

    def registry(self, conn: psycopg.Connection, unknown: bool = False) -> Mapping[str, Subject]:
        """The registry as the cache holds it, reloaded when stale or missing a device."""
        return self.cache.registry(conn, self.registry_refresh_s, unknown)


def _horizon(conn: psycopg.Connection) -> datetime:
    """Rows stored before this are committed (or never will be): the oldest open writer.

    A transaction counts if it has written, or is young enough that it may be about to;
    an old read-only one (a long dashboard query) does not, nor do the sessions that store
    no readings or events: ingest's maintenance (its rollup refresh, seconds long after a
    burst, held every alert back that long) and alerting's own (the readings' pass would
    hold the events' back). However old the oldest writer, the horizon lags `now` by
    HORIZON_MAX_LAG at most, so reading never stalls behind it.
    """
    row = conn.execute(
        "SELECT greatest(least(now(), min(xact_start)), now() - %s) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND xact_start IS NOT NULL AND application_name <> ALL(%s)"
        " AND (backend_xid IS NOT NULL OR xact_start > now() - interval '5 seconds')",
        (HORIZON_MAX_LAG, [MAINTENANCE_APPLICATION, ALERTING_APPLICATION]),
    ).fetchone()
    assert row is not None
    horizon: datetime = row[0]
    return horizon


class Judged(NamedTuple):
    """What a pass did: the rows it read, and the alerts it opened or closed (when there
    are none, there is nothing new to send)."""

    rows: int
    alerts: int


def evaluate_cycle(conn: psycopg.Connection, engine: Engine) -> int:
    """Judge the events, then the readings, stored since the watermarks; returns the
    readings read."""
    judge_events(conn, engine)
    return judge_readings(conn, engine).rows


def judge_events(conn: psycopg.Connection, engine: Engine) -> Judged:
    """Judge the events stored since the events' watermark.

    A pass of its own (the service runs it on a thread of its own): a camera's tampering
    is judged and sent while the readings' pass works through a morning of day uploads."""
    with _forgetting_on_failure(engine, "events"), conn.transaction():
        horizon = _horizon(conn)
        events, events_to = reads.new_events(conn, _cursor(conn, engine, "events"), horizon,
                                             BATCH_ROWS)
        known = _subjects(conn, engine, events)
        keys = [fingerprint(rule.name, subject) for device_id in events
                if (subject := known.get(device_id)) is not None
                for rule in engine.book.for_subject(subject, ("event",))]
        outcome = evaluate_events(engine.book, known, events, store.load_states(conn, keys))
        alerts = store.apply_outcome(conn, outcome, engine.book.by_name, engine.language)
        store.set_watermark(conn, "events", events_to.received_at)
    engine.cache.cursors["events"] = events_to  # once the pass is stored
    return Judged(sum(len(e) for e in events.values()), len(alerts))


def judge_readings(conn: psycopg.Connection, engine: Engine, limit: int = BATCH_ROWS) -> Judged:
    """Judge the readings stored since the readings' watermark, `limit` at most (the rest
    next pass)."""
    with _forgetting_on_failure(engine, "readings"), conn.transaction():
        horizon = _horizon(conn)
        fresh, readings_to = reads.new_readings(conn, _cursor(conn, engine, "readings"), horizon,
                                                limit)
        known = _subjects(conn, engine, fresh)
        needs: dict[tuple[str, str], timedelta] = {}
        keys = []
        for device_id, samples in fresh.items():
            subject = known.get(device_id)
            if subject is None:
                continue
            for rule in engine.book.for_subject(subject, STREAM_TYPES):
                key = fingerprint(rule.name, subject)
                keys.append(key)
                metrics, back = engine.book.reads[rule.name]
                if back and _unchanged(engine, rule.condition_type, key, samples, metrics):
                    continue
                for metric in metrics:
                    needs[(device_id, metric)] = max(back, needs.get((device_id, metric), back))
        series = store.with_history(conn, fresh, needs)
        _add_baselines(conn, engine.book, known, series)
        outcome = evaluate_stream(engine.book, known, series, store.load_states(conn, keys))
        alerts = store.apply_outcome(conn, outcome, engine.book.by_name, engine.language)
        store.set_watermark(conn, "readings", readings_to.received_at)
    engine.cache.cursors["readings"] = readings_to  # once the pass is stored
    return Judged(sum(len(s) for m in fresh.values() for s in m.values()), len(alerts))


@contextmanager
def _forgetting_on_failure(engine: Engine, source: str) -> Iterator[None]:
    """Nothing of a failed pass was stored: what memory says was read must be read again."""
    try:
        yield
    except BaseException:
        engine.cache.forget_reads(source)
        raise


def _cursor(conn: psycopg.Connection, engine: Engine, source: str) -> reads.Cursor:
    """Where `source` was read up to; on a start, a little before its watermark (late
    commits may have added rows there)."""
    cursors = engine.cache.cursors
    if source not in cursors:
        cursors[source] = reads.Cursor.at(store.watermark(conn, source) - engine.overlap)
    return cursors[source]


def _subjects(conn: psycopg.Connection, engine: Engine,
              devices: Mapping[str, object]) -> Mapping[str, Subject]:
    """The registry, reloaded first when one of these devices is not in it."""
    known = engine.registry(conn)
    if any(d not in known for d in devices):
        known = engine.registry(conn, unknown=True)
    return known


def _add_baselines(conn: psycopg.Connection, book: RuleBook, known: Mapping[str, Subject],
                   series: dict[str, dict[str, Sequence[Sample]]]) -> None:
    """Put each baseline rule's metric baseline beside the device's fresh samples."""
    wanted = {}
    for device_id, by_metric in series.items():
        subject = known.get(device_id)
        if subject is None:
            continue
        for rule in book.for_subject(subject, ("baseline",)):
            if rule.metric in by_metric:
                cond = rule.condition
                wanted[(device_id, rule.metric)] = (device_id, rule.metric, cond.days, cond.min_days)
    for (device_id, metric), value in store.baselines(conn, wanted.values()).items():
        newest = series[device_id][metric][-1].ts
        series[device_id][metric + BASELINE] = [Sample(newest, value)]


def _unchanged(engine: Engine, condition_type: str, key: str,
               fresh: Mapping[str, Sequence[Sample]], metrics: tuple[str, ...]) -> bool:
    """Whether new samples cannot change this rule's answer (so skip reading history);
    remembers the newest sample seen either way."""
    unchanged = UNCHANGED.get(condition_type)
    times = [s.ts for m in metrics for s in fresh.get(m, ())]
    if unchanged is None or not times:
        return False
    first, last = min(times), max(times)
    judged = engine.cache.judged.get(key)
    engine.cache.judged[key] = max(last, judged) if judged else last
    return judged is not None and unchanged(judged, first, last)


def night_flow_cycle(conn: psycopg.Connection, engine: Engine, now: datetime) -> Outcome:
    """Each area's nights complete by `now` against its baseline (hourly is plenty)."""
    with conn.transaction():
        outcome = evaluate_areas(conn, engine.book, now)
        store.apply_outcome(conn, outcome, engine.book.by_name, engine.language)
    return outcome


@dataclass
class DispatchReport:
    """What a dispatch pass did."""

    sent: int = 0
    failed: int = 0
    groups: list[Send] = field(default_factory=list)
    muted: dict[int, str] = field(default_factory=dict)


def _message(send: Send, target: Target, engine: Engine, now: datetime) -> Message:
    views = [a.view for a in send.alerts]
    title, text, alerts = render(views, send.action, target.language, engine.routing.zone,
                                 lambda alert_id: engine.link(alert_id, target.who, now))
    return Message(title, text, send.action, views[0].severity, target.language, tuple(alerts),
                   send.place)


def dispatch_cycle(conn: psycopg.Connection, engine: Engine, now: datetime) -> DispatchReport:
    """Run the rules' valve actions, plan (mute, deduplicate, group, resolve targets), then
    render, send with retry, and record every attempt."""
    with conn.transaction():
        valve_action.act(conn, engine.book.by_name, now)
        alerts = store.alerts_to_dispatch(conn)
        silences = store.active_silences(conn, now)
    decided = plan(alerts, engine.routing, silences, now, engine.language)
    report = DispatchReport(groups=decided.sends, muted=decided.muted)
    if decided.quiet:
        with conn.transaction():
            store.close_quietly(conn, decided.quiet)
    for send in decided.sends:
        records = []
        for target in send.targets:
            notifier = engine.notifiers[target.receiver]
            delivery = send_with_retry(notifier, _message(send, target, engine, now),
                                       target.recipient, engine.retry_attempts,
                                       engine.retry_backoff_s, engine.sleep)
            report.sent += delivery.ok
            report.failed += not delivery.ok
            person_id = target.recipient.person_id if target.recipient else None
            records.append((target.receiver, notifier.channel, person_id, delivery))
        ids = [a.view.alert_id for a in send.alerts]
        with conn.transaction():
            for receiver, channel, person_id, delivery in records:
                store.record_notification(conn, ids, send.group_key, send.action, send.level,
                                          receiver, channel, person_id, delivery.ok,
                                          delivery.attempts, delivery.error, now)
            store.mark_told(conn, ids, send.action, send.level, now)
    return report
