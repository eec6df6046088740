"""The SQL side of alerting: registry, new rows since a watermark, states, alerts and the
notification log. An adapter: no decisions here, only reads and writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from alerting.dispatch import OpenAlert
from alerting.evaluate import Outcome
from alerting.model import AlertState, AlertView, Sample, Subject, Transition
from alerting.mute import Silence
from alerting.rules import Rule

DeviceSeries = dict[str, dict[str, Sequence[Sample]]]


def load_subjects(conn: psycopg.Connection) -> dict[str, Subject]:
    """Every active device of the registry, with its place and tags."""
    # Most devices have no tags: leaving their '{}' undecoded saves most of the read.
    rows = conn.execute(
        "SELECT device_id, kind, township, village, grid, site, gateway_id,"
        " CASE WHEN tags <> '{}' THEN tags END FROM devices WHERE lifecycle = 'active'"
    ).fetchall()
    return {
        r[0]: Subject(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or (r[0] if r[1] == "gateway" else None),
                      tuple(sorted((str(k), str(v)) for k, v in r[7].items())) if r[7] else ())
        for r in rows
    }


def stale_after(conn: psycopg.Connection) -> dict[str, float]:
    """Each kind's silence limit in seconds."""
    return {k: float(s) for k, s in conn.execute("SELECT kind, stale_after_s FROM device_kinds")}


def watermark(conn: psycopg.Connection, source: str) -> datetime:
    """How far `source` has been read (by received_at)."""
    row = conn.execute("SELECT position FROM alerting_watermarks WHERE source = %s",
                       (source,)).fetchone()
    if row is None:
        raise LookupError(f"no alerting watermark {source!r}: is the schema migrated?")
    position: datetime = row[0]
    return position


def set_watermark(conn: psycopg.Connection, source: str, position: datetime) -> None:
    """Move the watermark of `source` (never backwards)."""
    conn.execute(
        "INSERT INTO alerting_watermarks VALUES (%s, %s) ON CONFLICT (source) DO UPDATE"
        " SET position = greatest(alerting_watermarks.position, excluded.position)",
        (source, position),
    )


def start_watermarks(conn: psycopg.Connection, lookback: timedelta) -> None:
    """On a first start, begin a little before now rather than at the dawn of the data."""
    conn.execute(
        "UPDATE alerting_watermarks SET position = now() - %s WHERE position = 'epoch'",
        (lookback,),
    )


def with_history(
    conn: psycopg.Connection, fresh: DeviceSeries, needs: Mapping[tuple[str, str], timedelta]
) -> DeviceSeries:
    """The fresh samples, plus older ones where a rule on that device and metric looks back."""
    wanted = []
    for device_id, metrics in fresh.items():
        for metric, samples in metrics.items():
            back = needs.get((device_id, metric))
            if back:
                wanted.append((device_id, metric, min(s.ts for s in samples) - back))
    merged: DeviceSeries = {d: {m: _in_time_order(s) for m, s in ms.items()}
                            for d, ms in fresh.items()}
    if not wanted:
        return merged
    rows = conn.execute(
        "SELECT r.device_id, r.metric, r.ts, r.value FROM readings r"
        " JOIN unnest(%s::text[], %s::text[], %s::timestamptz[]) AS w(device_id, metric, since)"
        " ON r.device_id = w.device_id AND r.metric = w.metric AND r.ts >= w.since",
        ([w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted]),
        binary=True,
    ).fetchall()
    extra: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for device_id, metric, ts, value in rows:
        extra[device_id][metric].append(Sample(ts, value))
    for device_id, by_metric in extra.items():
        for metric, samples in by_metric.items():
            both = {s.ts: s for s in samples} | {s.ts: s for s in merged[device_id].get(metric, [])}
            merged[device_id][metric] = [both[ts] for ts in sorted(both)]
    return merged


def _in_time_order(samples: Sequence[Sample]) -> Sequence[Sample]:
    """A series' fresh samples by time: read in stored order, so usually already sorted
    (a series holds one sample per time, the readings' key)."""
    if all(a.ts < b.ts for a, b in zip(samples, samples[1:], strict=False)):
        return samples
    return sorted(samples, key=lambda sample: sample.ts)


_SELECT_STATES = ("SELECT fingerprint, rule, device_id, state, active_since, last_ts, value,"
                  " alert_id FROM alert_states")


def load_states(
    conn: psycopg.Connection, fingerprints: Iterable[str] | None = None
) -> dict[str, AlertState]:
    """States by fingerprint: these ones, or every state that is not inactive."""
    if fingerprints is None:
        rows = conn.execute(_SELECT_STATES + " WHERE state <> 'inactive'").fetchall()
    else:
        rows = conn.execute(_SELECT_STATES + " WHERE fingerprint = ANY(%s)",
                            (list(fingerprints),)).fetchall()
    return {r[0]: AlertState(*r) for r in rows}


def _labels(rule: Rule, subject: Subject) -> dict[str, str]:
    return {**dict(rule.labels), **subject.labels(), "rule": rule.name,
            "severity": rule.severity, "condition": rule.condition_type}


_OPEN_ALERT = (
    "INSERT INTO alerts (fingerprint, rule, condition, severity, state, device_id, kind,"
    " township, village, grid, site, metric, labels, summary, value, threshold, last_value,"
    " started_at, fired_at) VALUES (%s, %s, %s, %s, 'firing', %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (fingerprint) WHERE state = 'firing'"
    " DO UPDATE SET last_value = excluded.last_value RETURNING id"
)
_CLOSE_ALERT = (
    "UPDATE alerts SET state = 'resolved', resolved_at = %s, last_value = %s"
    " WHERE fingerprint = %s AND state = 'firing' RETURNING id"
)


def _open_params(t: Transition, rule: Rule, language: str) -> tuple[object, ...]:
    s = t.subject
    return (t.fingerprint, rule.name, rule.condition_type, rule.severity, s.device_id, s.kind,
            s.township, s.village, s.grid, s.site, t.metric, Jsonb(_labels(rule, s)),
            rule.summary(language), t.value, t.threshold, t.value, t.started_at, t.at)


def _runs(transitions: list[Transition]) -> list[list[Transition]]:
    """Consecutive transitions of one kind, each fingerprint once: one batch each, in order."""
    runs: list[list[Transition]] = []
    seen: set[str] = set()
    for t in transitions:
        if not runs or runs[-1][0].to_state != t.to_state or t.fingerprint in seen:
            runs.append([])
            seen = set()
        runs[-1].append(t)
        seen.add(t.fingerprint)
    return runs


def _batch_returning(conn: psycopg.Connection, query: str,
                     params: list[tuple[object, ...]]) -> list[int | None]:
    """executemany with RETURNING id: one id (or None) per parameter set, in one pipeline."""
    ids: list[int | None] = []
    with conn.cursor() as cur:
        cur.executemany(query, params, returning=True)
        while True:
            row = cur.fetchone()
            ids.append(int(row[0]) if row else None)
            if not cur.nextset():
                break
    return ids


def apply_outcome(
    conn: psycopg.Connection, outcome: Outcome, rules: Mapping[str, Rule], language: str
) -> list[int]:
    """Persist states, open and close alerts, record transitions; returns the alert ids.

    Alerts are written in batches (an outage opens hundreds at once), in the order the
    transitions happened.
    """
    states = dict(outcome.states)
    known = [t for t in outcome.transitions if t.rule in rules]
    recorded: list[tuple[int, Transition]] = []
    for run in _runs(known):
        if run[0].to_state == "firing":
            ids = _batch_returning(conn, _OPEN_ALERT,
                                   [_open_params(t, rules[t.rule], language) for t in run])
        else:
            ids = _batch_returning(conn, _CLOSE_ALERT, [(t.at, t.value, t.fingerprint) for t in run])
        for t, alert_id in zip(run, ids, strict=True):
            if alert_id is None:
                continue
            recorded.append((alert_id, t))
            if t.to_state == "firing" and states.get(t.fingerprint, None) is not None \
                    and states[t.fingerprint].state == "firing":
                states[t.fingerprint] = states[t.fingerprint]._replace(alert_id=alert_id)
    if recorded:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, value, detail)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [(alert_id, t.at, "pending" if t.to_state == "firing" else "firing", t.to_state,
                  t.value, "" if t.threshold is None else f"threshold {t.threshold:g}")
                 for alert_id, t in recorded],
            )
    if states:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alert_states (fingerprint, rule, device_id, state, active_since,"
                " last_ts, value, alert_id, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now()) ON CONFLICT (fingerprint) DO UPDATE"
                " SET state = excluded.state, active_since = excluded.active_since,"
                " last_ts = excluded.last_ts, value = excluded.value,"
                " alert_id = excluded.alert_id, updated_at = now()",
                [(s.fingerprint, s.rule, s.device_id, s.state, s.active_since, s.last_ts,
                  s.value, s.alert_id) for s in states.values()],
            )
    return [alert_id for alert_id, _ in recorded]


# The columns of AlertView, in its order, from `alerts a` and the device and metric joined.
VIEW_COLUMNS = (
    "a.id AS alert_id, a.rule, a.condition, a.severity, a.state, a.summary, a.device_id,"
    " d.name AS device_name, a.kind,"
    " a.township, a.village, a.grid, a.metric, m.unit, a.value, a.threshold, a.last_value,"
    " a.started_at, a.resolved_at, a.acknowledged_at, a.acknowledged_by, a.ack_comment"
)
VIEW_FROM = (
    " FROM alerts a LEFT JOIN devices d ON d.device_id = a.device_id"
    " LEFT JOIN metrics m ON m.kind = a.kind AND m.metric = a.metric"
)
_VIEW_WIDTH = len(fields(AlertView))


def alerts_to_dispatch(conn: psycopg.Connection) -> list[OpenAlert]:
    """Firing alerts, and resolved ones whose resolution has not been told."""
    rows = conn.execute(
        "SELECT " + VIEW_COLUMNS + ", a.labels, a.created_at, a.notified_level,"
        " a.last_notified_at, a.escalated_at, a.resolved_notified" + VIEW_FROM
        + " WHERE a.state = 'firing' OR NOT a.resolved_notified ORDER BY a.id"
    ).fetchall()
    return [OpenAlert(AlertView(*r[:_VIEW_WIDTH]), *r[_VIEW_WIDTH:]) for r in rows]


def active_silences(conn: psycopg.Connection, now: datetime) -> list[Silence]:
    """Silences and maintenance windows in force at `now`."""
    rows = conn.execute(
        "SELECT id, matchers, starts_at, ends_at, kind FROM silences"
        " WHERE starts_at <= %s AND ends_at > %s", (now, now),
    ).fetchall()
    return [Silence(r[0], dict(r[1]), r[2], r[3], r[4]) for r in rows]


def record_notification(
    conn: psycopg.Connection, alert_ids: list[int], group_key: str, action: str, level: int,
    receiver: str, channel: str, person_id: str | None, ok: bool, attempts: int,
    error: str | None, now: datetime,
) -> None:
    """One row of the notification log."""
    conn.execute(
        "INSERT INTO notifications (alert_ids, group_key, action, level, receiver, channel,"
        " person_id, status, attempts, error, sent_at, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (alert_ids, group_key, action, level, receiver, channel, person_id,
         "sent" if ok else "failed", attempts, error, now if ok else None, now),
    )


def mark_told(conn: psycopg.Connection, alert_ids: list[int], action: str, level: int,
              now: datetime) -> None:
    """Remember what the alerts were told, which gives the repeat and escalation clocks."""
    if action == "resolved":
        conn.execute("UPDATE alerts SET resolved_notified = true WHERE id = ANY(%s)", (alert_ids,))
        return
    moved = action in ("firing", "escalation")
    conn.execute(
        "UPDATE alerts SET notified_level = greatest(notified_level, %s),"
        " last_notified_at = %s, escalated_at = CASE WHEN %s THEN %s ELSE escalated_at END"
        " WHERE id = ANY(%s)",
        (level, now, moved, now, alert_ids),
    )
    if action == "escalation":
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, detail)"
                " VALUES (%s, %s, 'firing', 'escalated', %s)",
                [(i, now, f"level {level}") for i in alert_ids],
            )


def close_quietly(conn: psycopg.Connection, alert_ids: list[int]) -> None:
    """Resolved alerts nobody heard fire: nothing to say, mark them done."""
    conn.execute("UPDATE alerts SET resolved_notified = true WHERE id = ANY(%s)", (alert_ids,))


def baselines(
    conn: psycopg.Connection, wanted: Iterable[tuple[str, str, int, int]]
) -> dict[tuple[str, str], float]:
    """For (device, metric, days, min_days): the median of the daily means of the `days`
    days (Asia/Shanghai) before today, where at least `min_days` of them have data."""
    wanted = list(wanted)
    if not wanted:
        return {}
    rows = conn.execute(
        "WITH today AS (SELECT date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai')"
        " AT TIME ZONE 'Asia/Shanghai' AS start)"
        " SELECT r.device_id, r.metric, percentile_cont(0.5) WITHIN GROUP (ORDER BY r.avg),"
        " count(*), min(w.min_days)"
        " FROM readings_daily r"
        " JOIN unnest(%s::text[], %s::text[], %s::int[], %s::int[])"
        "   AS w(device_id, metric, days, min_days)"
        "   ON r.device_id = w.device_id AND r.metric = w.metric, today"
        " WHERE r.bucket >= today.start - make_interval(days => w.days) AND r.bucket < today.start"
        " GROUP BY r.device_id, r.metric",
        ([w[0] for w in wanted], [w[1] for w in wanted], [w[2] for w in wanted],
         [w[3] for w in wanted]),
    ).fetchall()
    return {(r[0], r[1]): float(r[2]) for r in rows if r[3] >= r[4]}
