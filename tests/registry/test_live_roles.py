"""A device whose kind becomes, or stops being, gateway gets its rights changed at a
Mosquitto running the dynamic security plugin within 5 s, its secret unchanged."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from devices import access_queue, service
from devices.dynsec import Grant, Revoke, Role, superseding
from devices.topics import Channel
from ground.principal import SYSTEM
from tests.registry.conftest import ACCEPTED, NOT_AUTHORIZED, Deployment

LIVE_WITHIN_S = 5.0


def _within(check: Callable[[], bool], what: str) -> None:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < LIVE_WITHIN_S, f"{what}: not within {LIVE_WITHIN_S} s"
        time.sleep(0.1)


def _publishes_as_gateway(live: Deployment, device_id: str) -> bool:
    session = live.device(device_id)
    assert session.connack == "Success", device_id  # its secret still works
    said = session.publish(live.topic(device_id, Channel.GATEWAY_TELEMETRY), b"{}")
    session.close()
    assert said in (*ACCEPTED, NOT_AUTHORIZED), said
    return said in ACCEPTED


def test_a_meter_made_a_gateway_may_publish_for_children_and_loses_it_when_made_a_meter_again(
        live: Deployment, database_url: str) -> None:
    assert not _publishes_as_gateway(live, "wm-b1")
    with psycopg.connect(database_url, autocommit=True) as conn:
        service.update(conn, SYSTEM, "wm-b1", {"kind": "gateway"})
    _within(lambda: _publishes_as_gateway(live, "wm-b1"), "the new gateway's right")

    with psycopg.connect(database_url, autocommit=True) as conn:
        service.update(conn, SYSTEM, "wm-b1", {"kind": "water_meter"})
    _within(lambda: not _publishes_as_gateway(live, "wm-b1"), "the former gateway's right gone")


def test_a_gateway_made_a_meter_through_an_import_loses_its_gateway_topic(
        live: Deployment) -> None:
    assert _publishes_as_gateway(live, "gw-b1")
    csv_path = live.conf / "kinds.csv"
    # Its child moves off it in the same file, as the registry requires.
    csv_path.write_text("device_id,kind,village,gateway_id\n"
                        "wm-b3,water_meter,东村,\ngw-b1,water_meter,东村,\n")
    result = live.village("devices", "import", str(csv_path))
    assert result.exit_code == 0, result.output
    _within(lambda: not _publishes_as_gateway(live, "gw-b1"), "the former gateway's right gone")
    assert live.device("wm-b3").connack == "Success"


def test_a_kind_change_queues_nothing_for_a_device_without_a_login(
        live: Deployment, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        service.update(conn, SYSTEM, "wm-b2", {"kind": "camera"})  # not a gateway either way
        assert access_queue.queued_device_ids(conn) == set()
        conn.execute("UPDATE devices SET secret_hash = NULL WHERE device_id = 'wm-b2'")
        service.update(conn, SYSTEM, "wm-b2", {"kind": "gateway"})
        assert access_queue.queued_device_ids(conn) == set()


def test_a_role_change_keeps_a_secret_not_yet_granted_and_a_revoke_still_wins() -> None:
    grant = Grant("wm-1", "s3cret", gateway=False)
    assert superseding(grant, Role("wm-1", True)) == Grant("wm-1", "s3cret", True)
    assert superseding(Revoke("wm-1"), Role("wm-1", False)) == Revoke("wm-1", gateway=True)
    assert superseding(Role("wm-1", True), Revoke("wm-1")) == Revoke("wm-1")
    assert superseding(None, Role("wm-1", True)) == Role("wm-1", True)
    assert superseding(Role("wm-1", True), grant) == grant
