"""The devices service: what a principal may see and change, whichever door asks."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from devices import service
from devices.registry import DeviceDenied, DeviceNotFound
from ground.principal import Place, Principal, Role

EAST = Principal("op-east", Role.OPERATOR, Place("东乡", "东村"))
ADMIN = Principal("cli:test", Role.ADMIN)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for device_id, township, village in (("wm-e1", "东乡", "东村"), ("wm-e2", "东乡", "东村"),
                                             ("wm-w1", "西乡", "西村")):
            service.register(conn, ADMIN, {"device_id": device_id, "kind": "water_meter",
                                           "township": township, "village": village}, "test")
        yield conn


def test_records_and_counts_stay_within_the_principals_scope(conn: psycopg.Connection) -> None:
    assert [r.row.device_id for r in service.records(conn, EAST, {})] == ["wm-e1", "wm-e2"]
    assert service.count(conn, EAST, {}) == 2 and service.count(conn, ADMIN, {}) == 3
    # Asking for another place than one's own finds nothing, rather than the other place.
    assert list(service.records(conn, EAST, {"township": "西乡"})) == []
    assert service.count(conn, EAST, {"village": "西村"}) == 0
    assert service.count(conn, ADMIN, {"village": "西村"}) == 1


def test_changes_outside_the_scope_are_denied_and_unknown_devices_not_found(
        conn: psycopg.Connection) -> None:
    with pytest.raises(DeviceDenied, match="西乡/西村"):
        service.retire(conn, EAST, "wm-w1")
    with pytest.raises(DeviceDenied):
        service.register(conn, EAST, {"device_id": "wm-w2", "kind": "water_meter",
                                      "township": "西乡", "village": "西村"}, "test")
    with pytest.raises(DeviceNotFound):
        service.rotate_secret(conn, EAST, "wm-none")
    with pytest.raises(DeviceNotFound):  # another place's device is not shown
        service.record(conn, EAST, "wm-w1")
    assert service.retire(conn, EAST, "wm-e1") == Place("东乡", "东村")
    assert service.record(conn, ADMIN, "wm-e1").lifecycle == "retired"
