"""The compose broker's shipped files, run for real: deploy/mosquitto/start-broker.sh starts
the local Mosquitto 2.0.11 with deploy/mosquitto/mosquitto.conf (the image's paths swapped
for a private directory and free ports), the dynamic security plugin seeded by `village
broker-config --dynsec`, and the access daemon keeping it live."""

from __future__ import annotations

import getpass
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from devices.access_settings import AccessSettings
from devices.access_sync import AccessDaemon
from devices.registry_csv import DeviceRow
from devices.store import add_device
from devices.topics import Channel, topic
from ground.local import DYNSEC_PLUGIN, free_port, mosquitto_binary, wait_for_port
from ground.settings import parse_mqtt_url
from tests.registry.mqtt_session import Session
from village.cli import app

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy/mosquitto/mosquitto.conf"
SCRIPT = ROOT / "deploy/mosquitto/start-broker.sh"
NOT_AUTHORIZED = "Not authorized"

pytestmark = pytest.mark.skipif(mosquitto_binary() is None or not DYNSEC_PLUGIN.exists(),
                                reason="needs mosquitto and its dynamic security plugin")


@dataclass
class ComposeBroker:
    """The compose broker's volumes as directories, and its process when running."""

    root: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def seeds(self) -> Path:
        """The `broker` volume (broker-config writes, Mosquitto reads)."""
        return self.root / "broker"

    @property
    def data(self) -> Path:
        """The `mosquitto` volume (persistence and the plugin's live file)."""
        return self.root / "data"

    def conf(self) -> Path:
        """The shipped config with the image's paths and ports swapped for ours."""
        text = CONF.read_text()
        swaps = {"listener 1883\n": f"listener {self.port} 127.0.0.1\n",
                 "listener 8883\n": f"listener {self.tls_port} 127.0.0.1\n",
                 "/usr/lib/mosquitto_dynamic_security.so": str(DYNSEC_PLUGIN),
                 "/broker/": f"{self.seeds}/", "/mosquitto/data/": f"{self.data}/",
                 "/mosquitto/certs/": f"{self.root}/certs/"}
        for old, new in swaps.items():
            assert old in text, f"the shipped config no longer has {old!r}"
            text = text.replace(old, new)
        # Started as root, Mosquitto would switch to its own user, which cannot enter ours.
        path = self.root / "mosquitto.conf"
        path.write_text(f"user {getpass.getuser()}\n{text}")
        return path

    def env(self) -> dict[str, str]:
        """The script's settings: our paths instead of the image's."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "DYNSEC_SEED": str(self.seeds / "dynamic-security.json"),
                "DYNSEC_FILE": str(self.data / "dynamic-security.json"),
                "MOSQUITTO_CONFIG": str(self.conf()), "MOSQUITTO_USER": getpass.getuser(),
                "MOSQUITTO_BIN": str(mosquitto_binary())}

    def start(self) -> str:
        """Run the start script; return what it said once the broker listens."""
        log = self.root / "broker.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(["sh", str(SCRIPT)], env=self.env(), stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port)
        wait_for_port(self.tls_port)
        return log.read_text()

    def stop(self) -> None:
        """Stop the broker (gracefully, as `docker compose stop` does)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ComposeBroker]:
    made = ComposeBroker(tmp_path)
    for directory in (made.seeds, made.data, tmp_path / "certs"):
        directory.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(tmp_path / "certs/server.key"),
                    "-out", str(tmp_path / "certs/server.crt")], check=True, capture_output=True)
    yield made
    made.stop()


def _broker_config(database_url: str, broker: ComposeBroker, prefix: str) -> None:
    env = {"VILLAGE_DATABASE_URL": database_url, "VILLAGE_TOPIC_PREFIX": prefix}
    result = CliRunner().invoke(app, [
        "broker-config", "--dynsec", "--out", str(broker.seeds), "--env-out",
        str(broker.root / "credentials"), "--broker-url", f"mqtt://127.0.0.1:{broker.port}"],
        env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _logs_in(broker: ComposeBroker, device_id: str, secret: str | None,
             client_id: str | None = None) -> bool:
    session = Session(parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}"), client_id or device_id,
                      device_id, secret).connect()
    session.close()
    return session.connack == "Success"


def _within(check: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)


def test_the_shipped_broker_runs_the_plugin_and_keeps_what_it_saved_across_restarts(
        broker: ComposeBroker, database_url: str, topic_prefix: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        secrets = {row.device_id: add_device(conn, row, "test") for row in (
            DeviceRow("wm-c1", "water_meter", "东村"), DeviceRow("wm-c2", "water_meter", "东村"))}
    refused = subprocess.run(["sh", str(SCRIPT)], env=broker.env(), capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode == 1 and "broker-config" in refused.stderr
    _broker_config(database_url, broker, topic_prefix)
    assert "logins taken from" in broker.start()

    assert not _logs_in(broker, "anonymous", None)
    assert _logs_in(broker, "wm-c1", secrets["wm-c1"])
    assert not _logs_in(broker, "wm-c2", secrets["wm-c2"], client_id="wm-c1")  # no takeover
    meter = Session(parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}"), "wm-c1", "wm-c1",
                    secrets["wm-c1"]).connect()
    # The ACL file still rules what a device may do.
    assert meter.publish(topic(topic_prefix, "wm-c2", Channel.TELEMETRY)) == NOT_AUTHORIZED
    meter.close()

    access_env = (broker.root / "credentials/access/mqtt.env").read_text()
    access_url = access_env.rsplit("VILLAGE_MQTT_URL=", 1)[1].strip()
    daemon = AccessDaemon.build(database_url, parse_mqtt_url(access_url), topic_prefix,
                                AccessSettings(client_id="access-compose"))
    daemon.start()
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            late = add_device(conn, DeviceRow("wm-late", "water_meter", "东村"), "test")
        _within(lambda: _logs_in(broker, "wm-late", late), "a device added live logs in")
        live = broker.data / "dynamic-security.json"
        assert "wm-late" in live.read_text()  # the plugin saved it where its volume is writable
        assert "wm-late" not in (broker.seeds / "dynamic-security.json").read_text()

        broker.stop()  # a restart keeps what the plugin saved since the seed
        assert "keeping the logins the plugin saved" in broker.start()
        assert _logs_in(broker, "wm-late", late)

        broker.stop()  # broker-config again (a restore): its newer seed replaces the file
        live.write_text("{}")  # (as if lost or damaged)
        os.utime(live, (time.time() - 60, time.time() - 60))
        _broker_config(database_url, broker, topic_prefix)
        assert "logins taken from" in broker.start()
        for device_id, secret in {**secrets, "wm-late": late}.items():
            _within(partial(_logs_in, broker, device_id, secret), device_id)
    finally:
        daemon.stop()
