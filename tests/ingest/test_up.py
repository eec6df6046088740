"""`village up` with no configuration: private broker and database, every service, Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import httpx
import pytest

from ground.local import PostgresCluster, free_port, stop_stale_servers
from tests.ingest.conftest import scalar, wait_until
from village.up_stack import LocalBroker, UpError, choose_broker


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["auto", "amqtt"])
def test_village_up_runs_everything_locally_and_stops_cleanly_on_ctrl_c(broker: str) -> None:
    # A folder only its owner may enter, as a home directory is: run as root, `village up`
    # must put the cluster where the `postgres` user (which runs it) can reach it.
    base = Path(tempfile.mkdtemp(prefix="village-up-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGE_")}
    api_port = free_port()
    env["VILLAGE_API__PORT"] = str(api_port)
    process = subprocess.Popen(
        [sys.executable, "-m", "village.cli", "up", "--data-dir", str(base / "var"),
         "--broker", broker],
        cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(" running; " in line for line in lines), timeout_s=90,
                   what="village up to start")
        running = next(line for line in lines if " running; " in line)
        match = re.search(r"database (postgresql://\S+),", running)
        assert match, running
        database_url = match.group(1)
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM readings") > 0
                   and scalar(database_url, "SELECT count(*) FROM device_status WHERE online") > 0,
                   timeout_s=60, what="simulated readings and online devices")
        kinds = scalar(database_url, "SELECT array_agg(DISTINCT kind ORDER BY kind) FROM devices")
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/readyz", timeout=10) as reply:
            assert reply.status == 200
        dead_letters = scalar(database_url, "SELECT count(*) FROM dead_letters")
        login = re.search(r"console +(http://\S+/console/) +\(user (\w+), password (\S+)\)",
                          "".join(lines))
        assert login, "".join(lines)
        assert console_sign_in(login.group(1), login.group(2), login.group(3)) == 303
        # Ctrl-C twice, as people do: the second must not cut the stopping short and leave
        # the database and the broker running.
        process.send_signal(signal.SIGINT)
        wait_until(lambda: any("stopped " in line for line in lines), timeout_s=30,
                   what="village up to begin stopping")
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, "".join(lines)
    finally:
        cluster_dir = cluster_dir_in("".join(lines))
        if process.poll() is None:
            process.kill()
            # Killed, it could not stop its servers (they run in sessions of their own).
            for conf in ("mosquitto/mosquitto.conf", "amqtt/amqtt.yaml"):
                stop_stale_servers((base / "var" / conf).resolve())
            if cluster_dir:
                PostgresCluster(data_dir=cluster_dir).stop("immediate")
        reader.join(5)
        shutil.rmtree(base, ignore_errors=True)
        if cluster_dir:
            shutil.rmtree(cluster_dir, ignore_errors=True)
    output = "".join(lines)
    assert cluster_dir is not None, output
    assert cluster_dir.is_relative_to(base) == (os.geteuid() != 0), output
    for name in ("broker", "postgresql", "ingest", "alerting", "broadcast", "api", "simulators"):
        assert f"started {name}" in output and f"stopped {name}" in output, output
    assert kinds == ["barn", "camera", "gateway", "speaker", "water_meter", "water_quality"]
    assert dead_letters == 0  # the simulators and the ingest agree on the contract
    assert ("embedded amqtt, MQTT 3.1.1" in output) == (broker == "amqtt"), output


def console_sign_in(url: str, name: str, password: str) -> int:
    """Sign in to the console with the printed login; the answer's status (303: signed in)."""
    with httpx.Client(base_url=url) as client:
        page = client.get("sign-in")
        token = re.search(r'name="form_token" value="([^"]+)"', page.text)
        assert token, page.text
        # The cookie is Secure: browsers return it to 127.0.0.1 over http, httpx does not.
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        return client.post("sign-in", headers={"cookie": cookie}, data={
            "name": name, "password": password, "form_token": token.group(1)}).status_code


def cluster_dir_in(output: str) -> Path | None:
    """Where `village up` said its PostgreSQL cluster lives."""
    match = re.search(r"started postgresql .* \(data in (\S+)\)", output)
    return Path(match.group(1)) if match else None


def test_up_prefers_mosquitto_and_falls_back_to_the_embedded_broker() -> None:
    assert choose_broker(LocalBroker.AUTO, "/usr/sbin/mosquitto", True) is LocalBroker.MOSQUITTO
    assert choose_broker(LocalBroker.AUTO, None, True) is LocalBroker.AMQTT
    assert choose_broker(LocalBroker.AMQTT, "/usr/sbin/mosquitto", True) is LocalBroker.AMQTT
    with pytest.raises(UpError, match="no MQTT broker"):
        choose_broker(LocalBroker.AUTO, None, False)
    with pytest.raises(UpError, match="no mosquitto binary"):
        choose_broker(LocalBroker.MOSQUITTO, None, True)
    with pytest.raises(UpError, match="amqtt is not installed"):
        choose_broker(LocalBroker.AMQTT, "/usr/sbin/mosquitto", False)
