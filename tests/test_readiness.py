"""The readiness file of the long-running services means "connected and working": fresh
while the service's checks pass, gone when one fails; the container healthcheck reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ground.health import all_pass, is_fresh, keep_ready_file, main
from ground.local import MosquittoServer
from village.cli import app


def _wait_for(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_freshness_is_judged_against_the_age_asked(tmp_path: Path) -> None:
    path = tmp_path / "ready"
    assert not is_fresh(path, 30)
    path.touch()
    os.utime(path, (1000.0, 1000.0))
    assert is_fresh(path, 30, now=1029.0)
    assert not is_fresh(path, 30, now=1031.0)
    assert main([str(path), "30"]) == 1  # touched long ago
    path.touch()
    assert main([str(path), "30"]) == 0
    assert main([str(path)]) == 2


def test_a_failing_or_broken_check_means_not_ready() -> None:
    def broken() -> bool:
        raise RuntimeError("no")

    assert all_pass([lambda: True, lambda: True])
    assert not all_pass([lambda: True, lambda: False])
    assert not all_pass([broken])


def test_the_file_follows_the_checks(tmp_path: Path) -> None:
    path, healthy, stop = tmp_path / "run" / "ready", threading.Event(), threading.Event()
    healthy.set()
    thread = keep_ready_file(path, [healthy.is_set], stop, interval_s=0.05)
    assert _wait_for(path.exists, 5)
    healthy.clear()
    assert _wait_for(lambda: not path.exists(), 5)
    healthy.set()
    assert _wait_for(path.exists, 5)
    stop.set()
    thread.join(5)
    assert not path.exists()


def test_an_ingest_worker_is_ready_only_while_its_broker_is_there(
    database_url: str, mosquitto: MosquittoServer, tmp_path: Path, topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As deployed: the worker logs in to the database as its own role.
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    roles = CliRunner().invoke(app, ["db", "roles", "--out", str(tmp_path / "credentials")])
    assert roles.exit_code == 0, roles.output
    db_env = (tmp_path / "credentials" / "ingest" / "db.env").read_text()
    ingest_url = next(line.partition("=")[2] for line in db_env.splitlines()
                      if line.startswith("VILLAGE_DATABASE_URL="))
    assert "village_ingest_login" in ingest_url
    ready = tmp_path / "ready"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VILLAGE_")},
           "VILLAGE_DATABASE_URL": ingest_url, "VILLAGE_MQTT_URL": mosquitto.url,
           "VILLAGE_TOPIC_PREFIX": topic_prefix, "VILLAGE_READY_FILE": str(ready),
           "VILLAGE_INGEST__CLIENT_ID": f"ingest-{topic_prefix}"}
    worker = subprocess.Popen([sys.executable, "-m", "village.cli", "ingest"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: is_fresh(ready, 10), 30), "ready once connected"
        mosquitto.kill()
        assert _wait_for(lambda: not ready.exists(), 30), "not ready without its broker"
    finally:
        worker.terminate()
        worker.wait(30)
