"""Ingest records what a device says of its presence in the status history: a Last Will
makes it offline at once, its birth message brings it back. Real Mosquitto and PostgreSQL."""

from __future__ import annotations

import psycopg

from ground.local import MosquittoServer
from tests.ingest.conftest import (
    camera_comes_online,
    ingest_settings,
    register,
    rows,
    running_worker,
    vanish,
    wait_until,
)


def history(database_url: str) -> list[tuple[bool, str]]:
    return [(bool(r[0]), str(r[1])) for r in rows(
        database_url, "SELECT online, reason FROM device_status_changes WHERE device_id = 'cam-1'"
        " ORDER BY at, id")]


def test_a_last_will_then_a_birth_message(database_url: str, mosquitto: MosquittoServer,
                                          topic_prefix: str) -> None:
    register(database_url, [("cam-1", "camera")])
    with running_worker(ingest_settings(database_url, mosquitto.url, topic_prefix)):
        for _ in range(2):
            device = camera_comes_online(mosquitto.url, topic_prefix, "cam-1")
            wait_until(lambda: history(database_url)[-1:] == [(True, "reported_online")],
                       what="the camera online")
            vanish(device)
            wait_until(lambda: history(database_url)[-1:] == [(False, "reported_offline")],
                       timeout_s=30, what="the Last Will to make it offline")
    assert history(database_url) == [(True, "reported_online"), (False, "reported_offline")] * 2


def test_transitions_are_kept_as_long_as_the_alert_history(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO device_status_changes (device_id, at, online, reason) VALUES"
                     " ('cam-1', now() - interval '40 days', false, 'silent'),"
                     " ('cam-1', now() - interval '20 days', true, 'heard_again')")
        conn.execute("SELECT village_prune_records(interval '1 day', interval '30 days',"
                     " interval '1 day')")
    assert history(database_url) == [(True, "heard_again")]
