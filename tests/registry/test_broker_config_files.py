"""`village broker-config` writes passwd and acl for the broker alone (owner, or the
broker's group), and with --env-out each service's login into a directory of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devices.broker_access import SERVICE_ACCOUNTS
from village.cli import app


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner on this test's database."""
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    return CliRunner()


def test_passwd_and_acl_are_not_world_readable(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["broker-config", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("passwd", "acl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name


def test_the_broker_group_may_read_and_each_service_has_its_own_directory(
    runner: CliRunner, tmp_path: Path,
) -> None:
    group = os.getgid()  # a group this process may give its files
    broker, services = tmp_path / "broker", tmp_path / "credentials"
    result = runner.invoke(app, ["broker-config", "--out", str(broker), "--env-out", str(services),
                                 "--broker-group", str(group)])
    assert result.exit_code == 0, result.output
    for name in ("passwd", "acl"):
        stat = (broker / name).stat()
        assert (stat.st_mode & 0o777, stat.st_gid) == (0o640, group), name
    assert sorted(p.name for p in broker.iterdir()) == ["acl", "passwd"]
    for account in SERVICE_ACCOUNTS:
        env = services / account.service / "mqtt.env"
        assert env.stat().st_mode & 0o777 == 0o600
        assert f"VILLAGE_MQTT_URL=mqtt://{account.username}:" in env.read_text()
