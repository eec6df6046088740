"""The registry as a real ingest worker sees it: gateways' children, retired and pending devices."""

from __future__ import annotations

import time

import orjson
import psycopg

from devices.topics import Channel, topic
from ground.local import MosquittoServer
from tests.ingest.conftest import (
    Publisher,
    ingest_settings,
    rows,
    running_worker,
    scalar,
    wait_until,
)
from tests.registry.conftest import ACCEPTED, Deployment, Village


def test_a_gateways_children_are_stored_and_a_foreign_device_refused(
        deployment: Deployment, database_url: str) -> None:
    settings = ingest_settings(database_url, deployment.service_url("ingest"), deployment.prefix)
    with running_worker(settings):
        gateway = deployment.device("gw-b1")
        payload = {"wm-b3": {"total_m3": 12.5}, "wm-b1": {"total_m3": 99.0}}
        assert gateway.publish(deployment.topic("gw-b1", Channel.GATEWAY_TELEMETRY),
                               orjson.dumps(payload)) in ACCEPTED
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM dead_letters") == 1,
                   what="the foreign reading's dead letter")
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 1,
                   what="the child's reading")
    assert rows(database_url, "SELECT device_id, metric, value FROM readings") == [
        ("wm-b3", "total_m3", 12.5)]
    reasons = scalar(database_url, "SELECT problems::text FROM dead_letters")
    assert "foreign_device" in reasons and "wm-b1" in reasons


def test_a_retired_devices_messages_are_dead_lettered_and_its_history_kept(
        deployment: Deployment, database_url: str) -> None:
    settings = ingest_settings(database_url, deployment.service_url("ingest"), deployment.prefix,
                               registry_refresh_s=0.2)
    with running_worker(settings):
        meter = deployment.device("wm-b2")
        meter.publish(deployment.topic("wm-b2", Channel.TELEMETRY), b'{"total_m3": 1.0}')
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 1,
                   what="the reading before retirement")
        assert deployment.village("devices", "retire", "wm-b2").exit_code == 0
        # Its login lasts until the next broker-config --reload; ingest refuses it as soon
        # as it has re-read the registry (every registry_refresh_s).
        time.sleep(0.5)
        meter.publish(deployment.topic("wm-b2", Channel.TELEMETRY), b'{"total_m3": 2.0}')
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM dead_letters") == 1,
                   what="the retired device's dead letter")
    assert scalar(database_url, "SELECT reason FROM dead_letters") == "retired_device"
    assert rows(database_url, "SELECT value FROM readings WHERE device_id = 'wm-b2'") == [(1.0,)]


def test_a_discovered_device_is_approved_and_then_stored(
        village: Village, database_url: str, mosquitto: MosquittoServer, topic_prefix: str,
) -> None:
    # Discovery needs a broker that lets an unregistered device in (see docs/registry.md).
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix, discovery=True,
                               registry_refresh_s=0.2)
    telemetry = topic(topic_prefix, "cam-field-1", Channel.TELEMETRY)
    with running_worker(settings):
        publisher = Publisher(mosquitto.url)
        publisher.publish(telemetry, {"fps": 25})
        publisher.flush()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM pending_devices") == 1,
                   what="the pending device")
        assert "cam-field-1" in village("devices", "pending").stdout
        approved = village("devices", "approve", "cam-field-1", "--kind", "camera",
                           "--village", "东村", "--site", "村口")
        assert approved.exit_code == 0, approved.output
        publisher.publish(telemetry, {"fps": 24})
        publisher.close()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 1,
                   what="the approved device's reading")
    assert scalar(database_url, "SELECT value FROM readings") == 24.0
    assert scalar(database_url, "SELECT reason FROM dead_letters") == "unknown_device"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pending_devices").fetchone() == (0,)
