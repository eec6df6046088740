"""`village simulate` end to end: back-fill over MQTT, registry round trip, a killed process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from ground.local import MosquittoServer
from tests.simulators.observer import Observer, statuses
from village.cli import app

SMALL = ["--townships", "1", "--villages", "2", "--meters", "6", "--probes", "1",
         "--cameras", "2", "--barns", "1", "--speakers", "2", "--no-progress"]


def backfill(monkeypatch: pytest.MonkeyPatch, url: str, prefix: str) -> tuple[list[bytes], str]:
    monkeypatch.setenv("VILLAGE_MQTT_URL", url)
    monkeypatch.setenv("VILLAGE_TOPIC_PREFIX", prefix)
    with Observer(url, f"{prefix}/+/telemetry", f"{prefix}/+/gateway/telemetry",
                  f"{prefix}/+/event") as obs:
        result = CliRunner().invoke(app, ["simulate", *SMALL, "--multiplex", "--seed", "3",
                                          "--backfill", "0.5",
                                          "--backfill-end", "2026-11-22T00:00:00+0800"])
        assert result.exit_code == 0, result.output
        line = next(x for x in result.output.splitlines() if x.startswith("back-fill"))
        sent = int(line.split(": ")[1].split(" messages")[0])
        seen = obs.wait_for(lambda m: len(m) >= sent)
        assert len(seen) == sent
    return sorted(p for _, p in seen), line


def test_a_backfill_delivers_every_message_and_is_identical_for_the_same_seed(
    mosquitto: MosquittoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, line = backfill(monkeypatch, mosquitto.url, "bf1")
    again, _ = backfill(monkeypatch, mosquitto.url, "bf2")
    assert first == again and len(first) > 10
    assert "acknowledged" in line
    sent, acked = line.split(": ")[1].split(" messages, ")
    assert acked.startswith(f"{sent} acknowledged")


def test_register_then_simulate_from_the_registry(
    mosquitto: MosquittoServer, database_url: str, topic_prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VILLAGE_MQTT_URL", mosquitto.url)
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    monkeypatch.setenv("VILLAGE_TOPIC_PREFIX", topic_prefix)
    csv_path = tmp_path / "county.csv"
    result = CliRunner().invoke(app, ["simulate", *SMALL, "--register", "--csv", str(csv_path)])
    assert result.exit_code == 0, result.output
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM devices").fetchone()
    assert row == (12,) and len(csv_path.read_text().splitlines()) == 13
    with Observer(mosquitto.url, f"{topic_prefix}/+/status") as obs:
        result = CliRunner().invoke(app, ["simulate", "--from-registry", "--duration", "1",
                                          "--no-progress"])
        assert result.exit_code == 0, result.output
        final = statuses(obs.wait_for(lambda m: list(statuses(m).values()).count(b"offline") == 12))
    assert len(final) == 12


def test_a_bad_scenario_stops_the_command_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("faults:\n  - fault: leak\n    when: 2h\n")
    monkeypatch.setenv("VILLAGE_MQTT_URL", "mqtt://127.0.0.1:1")
    result = CliRunner().invoke(app, ["simulate", *SMALL, "--scenario", str(scenario),
                                      "--duration", "1"])
    assert result.exit_code == 2
    assert "faults[0].when: Extra inputs are not permitted" in result.output


def test_a_killed_simulator_leaves_its_devices_offline(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGE_")}
    env |= {"VILLAGE_MQTT_URL": mosquitto.url, "VILLAGE_TOPIC_PREFIX": topic_prefix}
    with Observer(mosquitto.url, f"{topic_prefix}/+/status") as obs:
        process = subprocess.Popen([sys.executable, "-m", "village.cli", "simulate", *SMALL,
                                    "--duration", "600"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            obs.wait_for(lambda m: Counter(statuses(m).values())[b"online"] == 12, 30)
        finally:
            process.kill()
            process.wait(10)
        final = statuses(obs.wait_for(
            lambda m: Counter(statuses(m).values())[b"offline"] == 12, 30))
    assert set(final.values()) == {b"offline"}
