"""A worker's Prometheus metrics, scraped over HTTP from its own endpoint."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from devices.topics import Channel, topic
from ground.local import MosquittoServer, free_port
from ground.metrics import serve_metrics
from tests.ingest.conftest import Publisher, ingest_settings, register, running_worker, wait_until
from village.commands.output import metrics_served

# Ingest judges lateness by its own clock: a reading of a few minutes ago is always taken.
TS = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0).isoformat()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_worker_metrics_count_what_it_received_committed_and_refused(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    register(database_url, [("wm-1", "water_meter")])
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix)
    with running_worker(settings) as worker:
        server = serve_metrics(worker.metrics.registry, free_port(), "127.0.0.1")
        assert server is not None
        try:
            publisher = Publisher(mosquitto.url)
            telemetry = topic(topic_prefix, "wm-1", Channel.TELEMETRY)
            publisher.publish(telemetry, {"ts": TS, "total_m3": 1.5, "battery_v": 3.6})
            publisher.publish(telemetry, b"{not json")
            publisher.publish(topic(topic_prefix, "nobody-1", Channel.TELEMETRY),
                              {"ts": TS, "total_m3": 1.0})
            publisher.close()
            wait_until(lambda: worker.stats.messages == 3, what="three messages committed")
            found = scrape(server.port)
        finally:
            server.close()
    assert found[("village_ingest_messages_received_total", ())] == 3
    assert found[("village_ingest_messages_committed_total", ())] == 3
    assert found[("village_ingest_held_messages", ())] == 0
    assert found[("village_ingest_readings_written_total", ())] == 2
    assert found[("village_ingest_dead_letters_total", (("reason", "invalid_json"),))] == 1
    assert found[("village_ingest_dead_letters_total", (("reason", "unknown_device"),))] == 1
    assert found[("village_ingest_batch_messages_sum", ())] == 3
    assert found[("village_ingest_commit_seconds_count", ())] >= 1
    assert found[("village_ingest_database_retries_total", ())] == 0


def test_port_zero_serves_nothing() -> None:
    assert serve_metrics(CollectorRegistry(), 0) is None


def test_a_taken_metrics_port_is_a_warning_not_a_stop() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert metrics_served(CollectorRegistry(), port, "VILLAGE_INGEST__METRICS_PORT") is None
    served = metrics_served(CollectorRegistry(), port, "VILLAGE_INGEST__METRICS_PORT")
    assert served is not None and served.port == port
    served.close()
