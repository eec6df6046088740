"""An ingest worker's Prometheus metrics: what it receives, holds, commits and refuses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.committer import Committed

_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 4000, 8000, 16000, 65535)
_COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    """The counters and histograms of one worker, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        on = self.registry
        self.committed = Counter("village_ingest_messages_committed",
                                 "messages stored (or dead-lettered) and acknowledged", registry=on)
        self.readings = Counter("village_ingest_readings_written", "new readings committed",
                                registry=on)
        self.duplicates = Counter("village_ingest_duplicate_readings",
                                  "readings already stored (redeliveries, resends)", registry=on)
        self.events = Counter("village_ingest_events_written", "device events committed",
                              registry=on)
        self.dead_letters = Counter("village_ingest_dead_letters",
                                    "messages or parts refused, by reason", ["reason"], registry=on)
        self.batch_messages = Histogram("village_ingest_batch_messages", "messages per batch",
                                        buckets=_BATCH_BUCKETS, registry=on)
        self.commit_seconds = Histogram(
            "village_ingest_commit_seconds",
            "from handing a batch to the writer to its commit (retries included)",
            buckets=_COMMIT_BUCKETS, registry=on)
        self.database_retries = Counter("village_ingest_database_retries",
                                        "attempts that found the database unavailable", registry=on)

    def watch(self, received: Callable[[], int], committed: Callable[[], int]) -> None:
        """Export, at each scrape, messages received and held (received, not yet committed)."""
        self.registry.register(_Held(received, committed))

    def batch_committed(self, done: Committed) -> None:
        """Count one committed batch."""
        self.committed.inc(done.messages)
        self.readings.inc(done.readings)
        self.duplicates.inc(done.duplicates)
        self.events.inc(done.events)
        self.batch_messages.observe(done.messages)
        self.commit_seconds.observe(done.seconds)
        for reason, count in done.refusals.items():
            self.dead_letters.labels(reason).inc(count)


class _Held(Collector):
    """Gauges read from the worker at scrape time, so the message loop pays nothing."""

    def __init__(self, received: Callable[[], int], committed: Callable[[], int]) -> None:
        self._received = received
        self._committed = committed

    def collect(self) -> Iterator[Metric]:
        """The received counter and the held gauge, as they stand now."""
        received = self._received()
        yield CounterMetricFamily("village_ingest_messages_received",
                                  "messages handed on by the MQTT client", value=received)
        yield GaugeMetricFamily("village_ingest_held_messages",
                                "messages received and not yet committed",
                                value=max(0, received - self._committed()))
