"""Helpers of the registry tests: run the `village` program in-process against a test database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from devices.access_settings import AccessSettings
from devices.access_sync import AccessDaemon
from devices.registry_csv import DeviceRow
from devices.store import add_device
from devices.topics import Channel, topic
from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from tests.registry.mqtt_session import Session
from village.cli import app

Village = Callable[..., Result]


@pytest.fixture
def village(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Village:
    """Run `village ARGS...` on this test's database; returns the click Result."""
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return run


def registry_csv(count: int, gateways: int = 0, village: str = "东村") -> str:
    """A registry file of `gateways` gateways and `count` water meters spread over them."""
    lines = ["device_id,kind,village,name,township,grid,latitude,longitude,installed_on,"
             "gateway_id,tags"]
    lines += [f"gw-{g:04d},gateway,{village},网关{g},城关镇,,,,,," for g in range(gateways)]
    for n in range(count):
        gateway = f"gw-{n % gateways:04d}" if gateways else ""
        lines.append(f"wm-{n:06d},water_meter,{village},用户{n}的水表,城关镇,{n % 12}组,"
                     f"34.{n:06d},113.{n:06d},2026-01-05,{gateway},户号={n}")
    return "\n".join(lines) + "\n"


NOT_AUTHORIZED = "Not authorized"
# MQTT v5 PUBACK reasons of an accepted publish (0x10 when nobody subscribes to it).
ACCEPTED = ("Success", "No matching subscribers")
DEVICES = (DeviceRow("gw-b1", "gateway", "东村"), DeviceRow("wm-b1", "water_meter", "东村"),
           DeviceRow("wm-b2", "water_meter", "东村"),
           DeviceRow("wm-b3", "water_meter", "东村", gateway_id="gw-b1"))


@dataclass
class Deployment:
    """The broker, its config directory, the devices' secrets and the sessions opened."""

    server: MosquittoServer
    conf: Path
    prefix: str
    secrets: dict[str, str]
    village: Village
    sessions: list[Session] = field(default_factory=list)
    daemon: AccessDaemon | None = None  # with the dynamic security plugin

    @property
    def pid_file(self) -> Path:
        """Where the broker writes its pid."""
        return self.server.data_dir / "mosquitto.pid"

    def device(self, device_id: str, secret: str | None = None,
               client_id: str | None = None) -> Session:
        """A session logged in as a device (its own secret unless another is given)."""
        session = Session(parse_mqtt_url(self.server.url), client_id or device_id, device_id,
                          secret if secret is not None else self.secrets[device_id])
        self.sessions.append(session)
        return session.connect()

    def service_url(self, name: str) -> str:
        """The broker URL broker-config wrote to `<name>.env`."""
        text = (self.conf / f"{name}.env").read_text()
        return next(line.partition("=")[2] for line in text.splitlines()
                    if line.startswith("VILLAGE_MQTT_URL="))

    def service(self, name: str) -> Session:
        """A session logged in with the URL broker-config wrote to `<name>.env`."""
        session = Session(parse_mqtt_url(self.service_url(name)), f"svc-{name}-test")
        self.sessions.append(session)
        return session.connect()

    def topic(self, device_id: str, channel: Channel) -> str:
        """The contract topic of a device."""
        return topic(self.prefix, device_id, channel)

    def reconfigure(self) -> None:
        """broker-config --reload, then give the broker a moment to re-read its files."""
        result = self.village("broker-config", "--out", str(self.conf), "--reload",
                              "--pid-file", str(self.pid_file))
        assert result.exit_code == 0, result.output
        time.sleep(0.5)


def _deployed(village: Village, database_url: str, prefix: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch, dynsec: bool) -> Iterator[Deployment]:
    server = MosquittoServer(data_dir=tmp_path / "broker")
    conf = tmp_path / "conf"
    server.acl_file = conf / "acl"
    if dynsec:
        server.dynsec_file = conf / "dynamic-security.json"
    else:
        server.password_file = conf / "passwd"
    server.extra_conf = f"pid_file {server.data_dir / 'mosquitto.pid'}\n"
    monkeypatch.setenv("VILLAGE_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("VILLAGE_MQTT_URL", server.url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        secrets = {row.device_id: add_device(conn, row, "test") for row in DEVICES}
    result = village("broker-config", "--out", str(conf), *(["--dynsec"] if dynsec else []))
    assert result.exit_code == 0, result.output
    server.start()
    deployed = Deployment(server, conf, prefix, secrets, village)
    if dynsec:
        deployed.daemon = AccessDaemon.build(
            database_url, parse_mqtt_url(deployed.service_url("access")), prefix,
            AccessSettings(client_id=f"access-{prefix}"))
        deployed.daemon.start()
    yield deployed
    for session in deployed.sessions:
        session.close()
    if deployed.daemon is not None:
        deployed.daemon.stop()
    deployed.server.kill()


@pytest.fixture
def deployment(village: Village, database_url: str, topic_prefix: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """Devices registered, broker files generated, a broker started with them."""
    yield from _deployed(village, database_url, topic_prefix, tmp_path, monkeypatch, False)


@pytest.fixture
def live(village: Village, database_url: str, topic_prefix: str, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    """Devices registered, a broker running the dynamic security plugin, the access daemon."""
    yield from _deployed(village, database_url, topic_prefix, tmp_path, monkeypatch, True)


@pytest.fixture(params=["files", "dynsec"])
def any_deployment(request: pytest.FixtureRequest, village: Village, database_url: str,
                   topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   ) -> Iterator[Deployment]:
    """A deployment of each kind: passwd and ACL files, then the dynamic security plugin."""
    yield from _deployed(village, database_url, topic_prefix, tmp_path, monkeypatch,
                         request.param == "dynsec")
