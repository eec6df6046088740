"""One composition root per long-running process: each service built from the root settings.

The domain packages take their own settings section and explicit collaborators; this is the
one place that reads the root `Settings` to give them those. The CLI commands and
`village up` start the services through these functions and nothing else.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from alerting.notifiers.base import Notifier
from alerting.notifiers.broadcast import BroadcastStarter
from alerting.runner import AlertingHandle, Collaborators
from alerting.runner import start as start_alerting_service
from broadcast.daemon import DaemonHandle
from ground.runtime import collect_garbage_in_larger_steps
from ingest.service import Worker
from village.settings import Settings, link_secret


def ingest_worker(settings: Settings, client_id: str,
                  log: Callable[[str], None] = lambda line: None) -> Worker:
    """An ingest worker (not yet running: call `run()` in the thread that should own it)."""
    return Worker(settings.ingest, settings.retention, broker=settings.mqtt,
                  database_url=settings.database_url, prefix=settings.topic_prefix,
                  client_id=client_id, log=log)


def start_alerting(
    settings: Settings, broadcast: BroadcastStarter | None = None,
    console: TextIO | None = None, extra_notifiers: dict[str, Notifier] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AlertingHandle:
    """Start the alerting service; raises SettingsError for a missing link key."""
    collect_garbage_in_larger_steps()  # a streaming pass builds a sample per reading
    given = Collaborators(link_secret(settings), settings.ingest.registry_refresh_s,
                          broadcast, console, extra_notifiers)
    return start_alerting_service(settings.alerting, settings.database_url, given, clock)


def broadcast_daemon(settings: Settings) -> DaemonHandle:
    """A broadcast delivery daemon (call `start()`; `stop()` ends it)."""
    return DaemonHandle(settings.broadcast, broker=settings.mqtt,
                        database_url=settings.database_url, prefix=settings.topic_prefix)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on SIGINT or SIGTERM instead of dying mid-batch."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
