"""Presence: last_seen from any message, online/offline from the retained status and Last Will."""

from __future__ import annotations

import uuid

import pytest

from devices.topics import Channel, topic
from ground.local import MosquittoServer
from tests.ingest.conftest import (
    Publisher,
    camera_comes_online,
    ingest_settings,
    register,
    rows,
    running_worker,
    scalar,
    vanish,
    wait_until,
)


def status(database_url: str, device_id: str) -> tuple[object, ...] | None:
    found = rows(database_url, "SELECT online, reported_state, firmware, last_seen IS NOT NULL"
                 " FROM device_status WHERE device_id = %s", device_id)
    return found[0] if found else None


def test_retained_status_before_the_worker_and_last_will_after(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    register(database_url, [("cam-1", "camera"), ("spk-1", "speaker")])
    # A device that connected before any worker existed: its retained status is replayed.
    early = Publisher(mosquitto.url)
    early.publish(topic(topic_prefix, "spk-1", Channel.STATUS),
                  {"state": "online", "fw": "2.1.0", "ip": "10.0.0.7"}, retain=True)
    early.close()
    with running_worker(ingest_settings(database_url, mosquitto.url, topic_prefix)):
        wait_until(lambda: status(database_url, "spk-1") is not None
                   and status(database_url, "spk-1")[1] == "online",  # type: ignore[index]
                   what="the retained status")
        # A retained replay says the device was online, not that we heard it just now.
        assert status(database_url, "spk-1") == (False, "online", "2.1.0", False)
        device = camera_comes_online(mosquitto.url, topic_prefix, "cam-1")
        wait_until(lambda: status(database_url, "cam-1") == (True, "online", None, True),
                   what="the camera online")
        vanish(device)
        wait_until(lambda: status(database_url, "cam-1") == (False, "offline", None, True),
                   timeout_s=30, what="the Last Will to mark it offline")


@pytest.mark.parametrize("discovery", [False, True])
def test_unknown_devices_are_dead_lettered_and_recorded_in_discovery_mode(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str, discovery: bool
) -> None:
    newcomer = "wm-" + uuid.uuid4().hex[:6]
    settings = ingest_settings(database_url, mosquitto.url, topic_prefix, discovery=discovery,
                               registry_refresh_s=3600)
    with running_worker(settings):
        pub = Publisher(mosquitto.url)
        for value in (1, 2, 3):
            pub.publish(topic(topic_prefix, newcomer, Channel.TELEMETRY), {"total_m3": value})
        pub.flush()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM dead_letters") == 3,
                   what="three dead letters")
        # Registered a moment ago, long before the next registry refresh: admitted at once.
        register(database_url, [(newcomer, "water_meter")])
        pub.publish(topic(topic_prefix, newcomer, Channel.TELEMETRY), {"total_m3": 4})
        pub.close()
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 1,
                   what="the newly registered device's reading")
    details = {row[0] for row in rows(database_url, "SELECT detail FROM dead_letters")}
    assert {row[0] for row in rows(database_url, "SELECT reason FROM dead_letters")} \
        == {"unknown_device"}
    pending = rows(database_url, "SELECT device_id, messages, last_topic FROM pending_devices")
    if discovery:
        assert details == {f"device {newcomer} is not registered; recorded as pending"}
        assert pending == [(newcomer, 3, topic(topic_prefix, newcomer, Channel.TELEMETRY))]
    else:
        assert details == {f"device {newcomer} is not registered"}
        assert pending == []
