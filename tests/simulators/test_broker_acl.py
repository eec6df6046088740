"""Simulated devices log in with registry-issued secrets to a broker with the project's ACL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from simulators.fleet import SimulatedFleet
from simulators.population import PopulationSpec, generate_population
from simulators.store import read_secrets
from tests.simulators.observer import Observer
from village.cli import app

SPEC = PopulationSpec(townships=1, villages=2, meters=4, probes=1, cameras=2, barns=1,
                      speakers=1, gateways=True)
ARGS = ["--townships", "1", "--villages", "2", "--meters", "4", "--probes", "1", "--cameras", "2",
        "--barns", "1", "--speakers", "1", "--multiplex", "--seed", "4"]


def test_devices_log_in_with_their_secrets_and_publish_within_the_acl(
    database_url: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = MosquittoServer(data_dir=tmp_path / "broker")
    conf, secrets = tmp_path / "conf", tmp_path / "secrets.csv"
    server.password_file, server.acl_file = conf / "passwd", conf / "acl"
    for name, value in (("VILLAGE_DATABASE_URL", database_url), ("VILLAGE_MQTT_URL", server.url),
                        ("VILLAGE_TOPIC_PREFIX", topic_prefix)):
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", *ARGS, "--register", "--secrets", str(secrets)])
    assert result.exit_code == 0, result.output
    assert secrets.stat().st_mode & 0o777 == 0o600
    result = runner.invoke(app, ["broker-config", "--out", str(conf)])
    assert result.exit_code == 0, result.output
    server.start()
    try:
        devices = generate_population(SPEC, seed=4)
        connected = [d.device_id for d in devices if d.gateway_id is None]
        ingest_url = next(line.partition("=")[2] for line in
                          (conf / "ingest.env").read_text().splitlines()
                          if line.startswith("VILLAGE_MQTT_URL="))
        endpoint = parse_mqtt_url(server.url)
        with pytest.raises(TimeoutError):  # no secret, no login
            SimulatedFleet(endpoint, topic_prefix, devices[:1]).start(timeout_s=2)
        with Observer(ingest_url, f"{topic_prefix}/+/status", f"{topic_prefix}/+/telemetry",
                      f"{topic_prefix}/+/gateway/telemetry") as obs:
            with SimulatedFleet(endpoint, topic_prefix, devices, seed=4,
                                passwords=read_secrets(secrets), stagger=False,
                                intervals_s={"camera": 0.3, "speaker": 0.3, "gateway": 0.3}):
                seen = obs.wait_for(lambda m: {t.split("/")[1] for t, _ in m
                                               if "telemetry" in t} == set(connected))
                assert Counter(p for t, p in seen if t.endswith("/status"))[b"online"] == len(
                    connected)
            obs.wait_for(lambda m: Counter(p for t, p in m if t.endswith("/status"))[b"offline"]
                         >= len(connected))
    finally:
        server.kill()
