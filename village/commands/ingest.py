"""The `village ingest` command."""

from __future__ import annotations

import logging
import threading
import time

import typer

from ground.health import signal_readiness
from ground.mqtt import check_reachable
from ingest.service import Stats, Worker, default_client_id
from village.commands.output import metrics_served, settings_or_exit
from village.processes import ingest_worker, stop_on_signals
from village.settings import Settings

log = logging.getLogger("village.ingest")


def ingest(
    worker: int = typer.Option(1, min=1, help="worker slot on this host (part of the client id)"),
    status_every: float = typer.Option(5.0, min=0.1, help="seconds between status lines"),
) -> None:
    """Run an ingest worker: MQTT telemetry, events and status into the database."""
    settings = settings_or_exit()
    check_reachable(settings.mqtt)  # fail now, not in the subscriber thread
    client_id = settings.ingest.client_id or default_client_id(worker)
    running = ingest_worker(settings, client_id, log=log.info)
    sharing = (f"share group {settings.ingest.share_group!r}, receive maximum "
               f"{settings.ingest.max_in_flight}" if settings.mqtt.mqtt_v5 else
               f"MQTT 3.1.1: no shared subscription, holding at {settings.ingest.max_in_flight}")
    log.info("worker %s: %r, prefix %r, %s", client_id, settings.mqtt, settings.topic_prefix,
             sharing)
    port = settings.ingest.metrics_port
    metrics = metrics_served(running.metrics.registry, port + worker - 1 if port else 0,
                             "VILLAGE_INGEST__METRICS_PORT")
    reporter = threading.Thread(target=_report, args=(running, settings, status_every),
                                daemon=True)
    signal_readiness(settings.ready_file, settings.database_url,
                     [running.subscriber.connected.is_set, lambda: running.stats.database_ok],
                     running.stop)
    try:
        with stop_on_signals(running.stop):
            reporter.start()
            running.run()
    finally:
        if metrics is not None:
            metrics.close()
    stats = running.stats
    log.info("stopped: %d messages, %d readings stored, %d dead letters%s", stats.messages,
             stats.readings, stats.dead_letters, _poison(stats, ", "))


def _poison(stats: Stats, separator: str) -> str:
    """The messages that raised or that the database refused, when there were any."""
    return "".join(f"{separator}{count} {what}" for count, what in (
        (stats.internal_errors, "internal errors"), (stats.isolated, "refused by the database"))
        if count)


def _report(worker: Worker, settings: Settings, every_s: float) -> None:
    while not worker.subscriber.connected.wait(0.2):
        if worker.stop.is_set():
            return
    log.info("ready: subscribed to %r under %r, storing into %s", settings.mqtt,
             settings.topic_prefix, settings.database_address)
    last_messages, last_at = 0, time.monotonic()
    while not worker.stop.wait(every_s):
        stats, now = worker.stats, time.monotonic()
        rate = (stats.messages - last_messages) / (now - last_at)
        last_messages, last_at = stats.messages, now
        broker = "connected" if worker.subscriber.connected.is_set() else "offline"
        database = "ok" if stats.database_ok else "unavailable"
        log.info(
            f"{rate:.0f} msg/s  {stats.messages} messages  {stats.readings} readings  "
            f"{stats.duplicates} duplicates  {stats.dead_letters} dead letters  "
            f"held {len(worker.handoff)}  broker {broker}  database {database}"
            + (f"  QoS 0 refused {worker.handoff.dropped_qos0}" if worker.handoff.dropped_qos0
               else "")
            + _poison(stats, "  ")
            + (f"  last error: {stats.last_error}" if not stats.database_ok and stats.last_error
               else "")
        )


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
    app.command()(ingest)
