"""What the soak (bench/soak.py) prints every interval, read from the processes' metrics
endpoints, the database and /proc."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from common import load
from soak_load import Operators
from soak_parts import (
    BrokerStore,
    histogram_p99,
    percentiles,
    postgres_cpu_s,
    proc_stats,
    scrape,
    total,
)

# Publish-to-commit is read off the devices that publish a reading as they take it over
# their own connection (its `ts` is the publish time): loudspeakers, and cameras when they
# connect directly. Meters send theirs later (through a gateway, or in a day's upload).
# Read through the primary key (device, metric, ts), not by scanning every reading of the
# interval (a burst is millions). `received_at` is the storing transaction's start: this
# slightly understates commit time.
LAG_METRICS = ("fps", "temperature_c")
_COMMIT_LAG = """
SELECT percentile_cont(ARRAY[0.5, 0.99])
       WITHIN GROUP (ORDER BY extract(epoch FROM received_at - ts)::float8)
FROM readings
WHERE device_id = ANY(%(direct)s) AND metric = ANY(%(metrics)s)
  AND ts >= %(since)s::timestamptz - INTERVAL '10 minutes'
  AND received_at >= %(since)s AND received_at < %(until)s
"""
# From the storing of what fired an alert (the event or reading's `received_at`) to its
# notification sent; alerts of silence come from the time pass (every 30 s by design) and
# are left out. Add publish-to-commit for the whole way from the device. Of the events'
# notifications, the part until the alert was opened (its pass's start) is told apart:
# the rest is dispatch.
_NOTIFY_LAG = """
SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM n.sent_at - t.stored)),
       count(*),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM n.sent_at - t.stored))
           FILTER (WHERE a.condition = 'event'),
       count(*) FILTER (WHERE a.condition = 'event'),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.created_at - t.stored))
           FILTER (WHERE a.condition = 'event')
FROM notifications n JOIN alerts a ON a.id = n.alert_ids[1]
CROSS JOIN LATERAL (
    SELECT received_at FROM events e WHERE a.condition = 'event' AND e.device_id = a.device_id
        AND e.ts = a.fired_at
    UNION ALL
    SELECT received_at FROM readings r WHERE a.condition <> 'event'
        AND r.device_id = a.device_id AND r.metric = a.metric AND r.ts = a.fired_at
    LIMIT 1) AS t(stored)
WHERE n.created_at >= %s AND n.created_at < %s AND n.sent_at IS NOT NULL
  AND a.condition <> 'stopped' AND n.action = 'firing'
"""
_ACCEPTED = """
SELECT count(d.accepted_at), count(*),
       extract(epoch FROM max(d.accepted_at) - b.created_at)::float8
FROM broadcast_deliveries d JOIN broadcasts b USING (broadcast_id)
WHERE b.broadcast_id = %s GROUP BY b.created_at
"""


@dataclass
class Probe:
    """What the last report saw, so each report covers its own interval."""

    at: float
    db_at: datetime
    samples: dict[str, dict]
    cpu: dict[str, float]
    requests: int = 0


def report(url: str, metrics: dict[str, int], published: int, probe: Probe,
           operators: Operators, emergencies: list[tuple[str, str]], pids: dict[str, int],
           broker_store: BrokerStore, direct: list[str]) -> tuple[Probe, dict]:
    """Print one interval's figures; return the new probe and the figures."""
    now = time.monotonic()
    samples = {name: scrape(port) for name, port in metrics.items()}
    ingest = [s for name, s in samples.items() if name.startswith("ingest")]
    committed = sum(total(s, "village_ingest_messages_committed_total") for s in ingest)
    held = sum(total(s, "village_ingest_held_messages") for s in ingest)
    with psycopg.connect(url, autocommit=True) as conn:
        db_now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        lag = conn.execute(_COMMIT_LAG, {"direct": direct, "metrics": list(LAG_METRICS),
                                         "since": probe.db_at, "until": db_now},
                           ).fetchone()[0] or [None, None]  # type: ignore[index]
        notify = conn.execute(_NOTIFY_LAG, (probe.db_at, db_now)).fetchone()
        accepted = [(to, conn.execute(_ACCEPTED, (b,)).fetchone()) for b, to in emergencies]
    alerting_before, alerting_after = probe.samples.get("alerting", {}), samples["alerting"]
    tick = histogram_p99(alerting_before, alerting_after, "village_alerting_pass_seconds",
                         **{"pass": "tick"})
    stream = histogram_p99(alerting_before, alerting_after, "village_alerting_pass_seconds",
                           **{"pass": "streaming"})
    events = histogram_p99(alerting_before, alerting_after, "village_alerting_pass_seconds",
                           **{"pass": "events"})
    behind = total(alerting_after, "village_alerting_stream_behind_seconds")
    api_p50, api_p99 = percentiles(operators.requests[probe.requests:])
    _, sweep_p99 = percentiles(operators.sweeps)
    alive = {name: pid for name, pid in pids.items() if proc_stats(pid)[0] > 0}
    cpu = {name: proc_stats(pid)[1] for name, pid in alive.items()}
    rss = {name: proc_stats(pid)[0] for name, pid in alive.items()}
    cpu["postgres"] = postgres_cpu_s()
    span = now - probe.at
    figures = {
        "published": published, "committed": committed, "held": held,
        "broker_store": broker_store.count,
        "commit_lag_p50_s": lag[0], "commit_lag_p99_s": lag[1],
        "tick_p99_s": tick, "streaming_p99_s": stream, "events_p99_s": events,
        "alerting_behind_s": behind,
        "notifications": notify[1] if notify else 0,
        "notify_p99_s": notify[0] if notify else None,
        "event_notifications": notify[3] if notify else 0,
        "event_notify_p99_s": notify[2] if notify else None,
        "event_judged_p99_s": notify[4] if notify else None,
        "api_p50_s": api_p50, "api_p99_s": api_p99, "county_sweep_p99_s": sweep_p99,
        "emergencies": [{"to": c, "accepted": a[0], "speakers": a[1], "all_accepted_s":
                         a[2] if a and a[0] == a[1] else None} for c, a in accepted if a],
        "rss_mb": rss,
        "cpu_pct": {n: 100 * (cpu[n] - probe.cpu.get(n, 0.0)) / span for n in cpu},
    }
    print(f"[{datetime.now(UTC):%H:%M:%S}] published {published:,}, ingest committed"
          f" {committed:,.0f}; backlog: broker store {broker_store.count}, held in workers"
          f" {held:,.0f};"
          f" publish-to-commit p50 {seconds(lag[0])} p99 {seconds(lag[1])};"
          f" alert pass p99 tick {seconds(tick)} streaming {seconds(stream)}"
          f" events {seconds(events)},"
          f" the stream {seconds(behind)} behind what was stored;"
          f" notifications {figures['notifications']}, from what fired them stored to sent"
          f" p99 {seconds(figures['notify_p99_s'])} (device events, such as the cameras'"
          f" tampering: {figures['event_notifications']}, p99"
          f" {seconds(figures['event_notify_p99_s'])}, of which until judged p99"
          f" {seconds(figures['event_judged_p99_s'])});"
          f" API request p50 {seconds(api_p50)} p99 {seconds(api_p99)},"
          f" county sweep p99 {seconds(sweep_p99)} ({operators.errors} errors); {load()}",
          flush=True)
    for e in figures["emergencies"]:
        print(f"    emergency to {e['to']}: {e['accepted']}/{e['speakers']} accepted,"
              f" all in {seconds(e['all_accepted_s'])}", flush=True)
    print("    " + ", ".join(f"{n} {rss[n]:.0f} MB {figures['cpu_pct'][n]:.0f}% CPU"
                              for n in alive)
          + f", PostgreSQL (all its processes) {figures['cpu_pct']['postgres']:.0f}% CPU",
          flush=True)
    return Probe(now, db_now, samples, cpu, len(operators.requests)), figures


def rss_growth(reports: list[dict], window_s: float, every_s: float) -> dict[str, float]:
    """Each process's RSS growth (fraction) from the report `window_s` before the last one
    to the last (the target: under 10% over the last 30 minutes); empty if the run was
    shorter than the window."""
    back = round(window_s / every_s)
    if back < 1 or len(reports) <= back:
        return {}
    first, last = reports[-1 - back]["rss_mb"], reports[-1]["rss_mb"]
    return {name: last[name] / first[name] - 1 for name in last if first.get(name)}


def seconds(value: float | None) -> str:
    """A duration for people: ms under a second."""
    if value is None:
        return "-"
    if value == float("inf"):
        return "over the largest bucket"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
