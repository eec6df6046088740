"""`village broadcast ...` against a real database: send, report, cancel, groups, schedules."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from tests.broadcast.registry import register_speakers
from village.cli import app

Invoke = Callable[..., str]


@pytest.fixture
def run(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    register_speakers(database_url, [("spk-1", "East", "Apple"), ("spk-2", "West", "Cedar")])
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["broadcast", *args])
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_send_report_and_cancel_from_the_command_line(run: Invoke) -> None:
    broadcast_id = run("send", "--text", "明早停水", "--priority", "alert",
                       "--village", "East/Apple", "--expires-in", "600").strip()
    assert len(broadcast_id) == 32
    report = run("report", broadcast_id)
    assert "alert  village East/Apple  new  confirmed 0/1  (queued 1)" in report
    assert "spk-1" in report and "spk-2" not in report
    assert "明早停水" in run("show", broadcast_id)
    assert broadcast_id in run("list")
    assert "cancelled  confirmed 0/1  (cancelled 1)" in run("cancel", broadcast_id)


@pytest.mark.parametrize(("args", "message"), [
    (["send", "--text", "x"], "give exactly one of --county"),
    (["send", "--text", "x", "--county", "--group", "g"], "give exactly one of --county"),
    (["send", "--text", "x", "--speaker", "spk-9"], "not registered speakers: spk-9"),
    (["send", "--county"], "give either text or audio_url"),
    (["send", "--text", "x", "--county", "--priority", "urgent"], "priority"),
    (["send", "--text", "x", "--village", "Apple"], "--village takes TOWNSHIP/VILLAGE"),
    (["report", "0" * 32], "no broadcast"),
    (["schedule", "add", "--name", "n", "--cron", "7 * *", "--text", "x", "--county"],
     "not a crontab expression"),
])
def test_mistakes_are_one_clear_line(run: Invoke, args: list[str], message: str) -> None:
    output = run(*args, code=1)
    assert message in output


def test_groups_and_schedules_from_the_command_line(run: Invoke) -> None:
    assert "2 speaker(s)" in run("group", "all-of-us", "spk-1", "spk-2")
    assert "schedule 1" in run("schedule", "add", "--name", "morning", "--cron", "0 7 * * 1-5",
                               "--text", "早上好", "--group", "all-of-us")
    assert "schedule 2" in run("schedule", "add", "--name", "once", "--at", "2030-01-01 08:00",
                               "--text", "新年好", "--county")
    listing = run("schedule", "list")
    assert "morning" in listing and "0 7 * * 1-5" in listing
    assert "2030-01-01T08:00:00+08:00" in listing
    assert "removed" in run("schedule", "remove", "1")
    assert "morning" not in run("schedule", "list")
