"""Live broker access: registry changes reach a Mosquitto running the dynamic security plugin
within 5 s through every door, and the access daemon restores it after a restart."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from fastapi.testclient import TestClient

from ground.local import free_port
from ground.principal import SYSTEM, Place, Role
from tests.registry.conftest import NOT_AUTHORIZED, Deployment, registry_csv
from village.api.app import create_app
from village.api.tokens import create_token
from village.settings import Settings

LIVE_WITHIN_S = 5.0


def _within(check: Callable[[], bool], what: str, timeout_s: float = LIVE_WITHIN_S) -> float:
    """Seconds until `check` holds; fails the test after `timeout_s`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _logs_in(live: Deployment, device_id: str, secret: str, client_id: str | None = None,
             ) -> bool:
    session = live.device(device_id, secret=secret, client_id=client_id)
    session.close()
    return session.connack == "Success"


def _api(live: Deployment, database_url: str) -> tuple[TestClient, dict[str, str]]:
    settings = Settings(database_url=database_url, development=True,
                        mqtt_url=f"mqtt://127.0.0.1:{free_port()}", topic_prefix=live.prefix)
    with psycopg.connect(database_url) as conn:
        _, token = create_token(conn, SYSTEM, "live-access", Role.ADMIN, Place(None, None))
    return TestClient(create_app(settings)), {"Authorization": f"Bearer {token}"}


def test_a_device_added_through_the_api_logs_in_and_a_retired_one_is_dropped_within_5_s(
        live: Deployment, database_url: str) -> None:
    client, headers = _api(live, database_url)
    with client:
        created = client.post("/devices", headers=headers, json={
            "device_id": "wm-api1", "kind": "water_meter", "village": "东村"})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        _within(lambda: _logs_in(live, "wm-api1", secret), "the new device logs in")

        session = live.device("wm-api1", secret=secret).client
        assert session is not None
        assert client.post("/devices/wm-api1/retire", headers=headers).status_code == 200
        _within(lambda: not session.is_connected(), "the retired device's session closes")
        assert not _logs_in(live, "wm-api1", secret)


def test_an_imported_device_logs_in_and_a_rotated_secret_replaces_the_old_at_once(
        live: Deployment) -> None:
    csv_path = live.conf / "new.csv"
    csv_path.write_text(registry_csv(3, village="西村").replace("wm-0", "wm-i0"))
    secrets_path = live.conf / "new-secrets.csv"
    result = live.village("devices", "import", str(csv_path), "--secrets-out", str(secrets_path))
    assert result.exit_code == 0, result.output
    imported = dict(line.split(",") for line in secrets_path.read_text().splitlines()[1:])
    assert sorted(imported) == ["wm-i000000", "wm-i000001", "wm-i000002"]
    _within(lambda: all(_logs_in(live, d, s) for d, s in imported.items()),
            "the imported devices log in")

    old = live.secrets["wm-b1"]
    rotated = live.village("devices", "rotate-secret", "wm-b1")
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    _within(lambda: _logs_in(live, "wm-b1", new), "the new secret works")
    assert not _logs_in(live, "wm-b1", old)


def test_a_device_cannot_take_over_anothers_client_id(live: Deployment) -> None:
    owner = live.device("wm-b1")
    assert owner.connack == "Success"
    thief = live.device("wm-b2", client_id="wm-b1")
    assert thief.connack == NOT_AUTHORIZED
    time.sleep(0.3)
    assert owner.client is not None and owner.client.is_connected()


def test_after_a_broker_restart_the_daemon_applies_what_it_missed(
        live: Deployment, database_url: str) -> None:
    live.server.stop()
    added = live.village("devices", "add", "wm-late", "--kind", "water_meter",
                         "--village", "东村")
    assert added.exit_code == 0, added.output
    late_secret = added.stdout.strip()
    assert live.village("devices", "retire", "wm-b2").exit_code == 0
    rotated = live.village("devices", "rotate-secret", "wm-b3")
    assert rotated.exit_code == 0
    new_b3 = rotated.stdout.strip()
    # A change that bypassed the queue altogether: only reconciling finds it.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE devices SET lifecycle = 'retired' WHERE device_id = 'gw-b1'")

    live.server.start()
    _within(lambda: _logs_in(live, "wm-late", late_secret), "the device added meanwhile logs in",
            timeout_s=15)
    _within(lambda: not _logs_in(live, "gw-b1", live.secrets["gw-b1"]),
            "the login the registry dropped behind the queue's back is gone")
    assert not _logs_in(live, "wm-b2", live.secrets["wm-b2"])
    _within(lambda: _logs_in(live, "wm-b3", new_b3), "the secret rotated meanwhile works")
    assert not _logs_in(live, "wm-b3", live.secrets["wm-b3"])
    assert _logs_in(live, "wm-b1", live.secrets["wm-b1"])


def test_a_broker_that_lost_its_file_gets_every_login_back_from_the_registry(
        live: Deployment) -> None:
    rotated = live.village("devices", "rotate-secret", "wm-b3")
    new_b3 = rotated.stdout.strip()
    _within(lambda: _logs_in(live, "wm-b3", new_b3), "the rotated secret works")
    live.server.stop()
    assert live.server.dynsec_file is not None
    live.server.dynsec_file.unlink()
    result = live.village("broker-config", "--out", str(live.conf), "--dynsec")
    assert result.exit_code == 0, result.output
    live.server.start()
    for device_id, secret in {**live.secrets, "wm-b3": new_b3}.items():
        assert _logs_in(live, device_id, secret), device_id
    _within(lambda: live.service("ingest").connack == "Success", "services log in again")
