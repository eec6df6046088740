"""What the services print: one line when ready; log lines with time, level and service
(or JSON); result tables as wide as they need when piped."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devices.telemetry import Bucket, Limits, RangeError, check_range
from ground.local import MosquittoServer, free_port
from tests.broadcast.registry import register_speakers
from tests.ingest.conftest import wait_until
from village.cli import app
from village.logs import JsonFormatter, LogFormat, TextFormatter, configure_logging, service_of

VILLAGE = str(Path(sys.executable).parent / "village")
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _record(name: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_a_text_log_line_has_time_level_and_service() -> None:
    line = TextFormatter().format(_record("broadcast.daemon", "broker refused:\nbad login",
                                          logging.WARNING))
    assert re.fullmatch(TIME + r" WARNING broadcast  broker refused: bad login", line), line


def test_a_json_log_line_is_one_object() -> None:
    line = JsonFormatter().format(_record("village.api", "ready: http://x"))
    parsed = json.loads(line)
    assert parsed["level"] == "INFO" and parsed["service"] == "api"
    assert parsed["message"] == "ready: http://x" and re.fullmatch(TIME, parsed["time"])
    assert "\n" not in line


@pytest.mark.parametrize(("logger", "service"), [
    ("village.up", "up"), ("ingest.mqtt", "ingest"), ("uvicorn.error", "api"),
    ("apscheduler.scheduler", "alerting"), ("alerting.runner", "alerting")])
def test_each_logger_speaks_for_its_service(logger: str, service: str) -> None:
    assert service_of(logger) == service


def test_configuring_twice_keeps_one_handler() -> None:
    configure_logging(LogFormat.JSON)
    configure_logging(LogFormat.TEXT)
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, TextFormatter | JsonFormatter)]
    assert len(ours) == 1 and isinstance(ours[0].formatter, TextFormatter)


def test_a_range_limit_is_said_as_a_duration() -> None:
    limits = Limits(max_range=timedelta(days=7), max_raw_range=timedelta(hours=36),
                    max_points=10_000)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(RangeError) as caught:
        check_range(start, start + timedelta(days=8), Bucket.HOUR_1, limits)
    assert str(caught.value) == "the range may span at most 7 d for bucket 1h"
    with pytest.raises(RangeError) as caught:
        check_range(start, start + timedelta(days=2), Bucket.RAW, limits)
    assert str(caught.value) == "the range may span at most 1 d 12 h for bucket raw"


def test_a_piped_table_is_as_wide_as_its_rows(database_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    long_village = "长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长村"
    register_speakers(database_url, [("spk-with-a-rather-long-identifier-0001", "East",
                                      long_village)])
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(app, ["devices", "list"])
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if "spk-with" in line]
    assert "spk-with-a-rather-long-identifier-0001" in row and long_village in row


SERVICES = {
    "ingest": ["ingest"],
    "broadcast": ["broadcast", "daemon"],
    "alerting": ["alerts", "run"],
    "api": ["api", "serve"],
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_says_in_one_line_when_it_is_ready(
        service: str, database_url: str, mosquitto: MosquittoServer, topic_prefix: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGE_")} | {
        "VILLAGE_DATABASE_URL": database_url, "VILLAGE_MQTT_URL": mosquitto.url,
        "VILLAGE_TOPIC_PREFIX": topic_prefix, "VILLAGE_DEVELOPMENT": "true",
        "VILLAGE_API__PORT": str(free_port()), "VILLAGE_LOG_FORMAT": "json"}
    process = subprocess.Popen([VILLAGE, *SERVICES[service]], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: any('"ready: ' in line for line in lines) or process.poll() is not None,
                   timeout_s=60, what=f"{service} to say it is ready")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        reader.join(5)
    ready = [json.loads(line) for line in lines if '"ready: ' in line]
    assert len(ready) == 1, lines
    assert ready[0]["service"] == service and ready[0]["level"] == "INFO"
    assert database_url.rsplit("/", 1)[1] in ready[0]["message"]  # says what it reads
    if service != "alerting":
        assert str(mosquitto.port) in ready[0]["message"]  # and the broker it uses
    assert all(line.startswith("{") for line in lines if line.strip()), lines  # JSON, each


def test_the_api_says_when_its_port_is_taken(database_url: str, mosquitto: MosquittoServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for name, value in {"VILLAGE_DATABASE_URL": database_url, "VILLAGE_MQTT_URL": mosquitto.url,
                            "VILLAGE_DEVELOPMENT": "true", "VILLAGE_API__PORT": str(port)}.items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(app, ["api", "serve"])
    assert result.exit_code == 74
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot serve the API on 127.0.0.1:{port}: the address is in use "
                      "or not this machine's (set VILLAGE_API__HOST, VILLAGE_API__PORT)"]
