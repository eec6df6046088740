"""The `village alerts` and `village rules` commands against a real database."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from alerting.cycles import evaluate_cycle
from village.cli import app

from .fixtures import add_devices, add_readings, recording_engine
from .helpers import rule


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in [n for n in os.environ if n.startswith("VILLAGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    return CliRunner()


def test_rules_check(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    severity: major\n    summary_zh: a\n    summary_en: b\n"
                   "    select: {kind: camera, metric: fps}\n    condition: {threshold: {belw: 3}}\n")
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert "rule x: condition.threshold.belw" in result.output
    good = runner.invoke(app, ["rules", "check", "alerting/presets/camera.yaml"])
    assert good.exit_code == 0 and "cam-stopped" in good.output


def test_list_ack_silence(runner: CliRunner, database_url: str) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_devices(conn, [("wq-1", "water_quality", "T1", "V1")])
        add_readings(conn, "wq-1", "ph", [(now - timedelta(minutes=1), 11.0)])
        engine = recording_engine([rule({"threshold": {"above": 9}}, metric="ph", name="ph-high")])
        evaluate_cycle(conn, engine)
        (alert_id,) = conn.execute("SELECT id FROM alerts").fetchone()  # type: ignore[misc]
    listed = runner.invoke(app, ["alerts", "list"])
    assert listed.exit_code == 0 and "ph-high" in listed.output and "wq-1" in listed.output
    acked = runner.invoke(app, ["alerts", "ack", str(alert_id), "--by", "王伟", "--comment", "已处理"])
    assert acked.exit_code == 0, acked.output
    assert runner.invoke(app, ["alerts", "ack", "999", "--by", "x"]).exit_code == 1
    silenced = runner.invoke(app, ["alerts", "silence", "--match", "township=T1", "--match",
                                   "kind=camera", "--for", "2h", "--by", "op"])
    assert silenced.exit_code == 0, silenced.output
    too_long = runner.invoke(app, ["alerts", "silence", "--match", "township=T1", "--for", "40d",
                                   "--by", "op"])
    assert too_long.exit_code == 2 and "30 days" in too_long.output
    assert "kind=camera" in runner.invoke(app, ["alerts", "silences"]).output
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT acknowledged_by, ack_comment FROM alerts").fetchone() == ("王伟", "已处理")


@pytest.mark.parametrize(("args", "line"), [
    (["--match", "bogus"], "error: --match takes label=value (e.g. township=东关镇), not 'bogus'"),
    (["--match", "township="], "error: --match takes label=value (e.g. township=东关镇), not 'township='"),
    (["--match", "township=T1", "--for", "soon"], "error: --for: "),
])
def test_a_bad_silence_is_one_line_naming_the_option(runner: CliRunner, args: list[str],
                                                     line: str) -> None:
    result = runner.invoke(app, ["alerts", "silence", *args, "--by", "op"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(line), result.stderr
