"""The log every `village` process writes on stderr: one line per event with its time (UTC),
level and service; or, with `--log-format json`, one JSON object per line for a collector.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO


class LogFormat(StrEnum):
    """How log lines look."""

    TEXT = "text"
    JSON = "json"


# Logger names of libraries, by the service they belong to in our log.
_LIBRARY_SERVICES = {"uvicorn": "api", "fastapi": "api", "paho": "mqtt", "apscheduler": "alerting",
                     "psycopg": "database"}


def service_of(logger_name: str) -> str:
    """The service a logger speaks for: `broadcast.daemon` -> broadcast, `village.up` -> up."""
    parts = logger_name.split(".")
    if parts[0] == "village" and len(parts) > 1:
        return parts[1]
    return _LIBRARY_SERVICES.get(parts[0], parts[0])


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info:
        # One line per event: the exception's last words, not its traceback.
        exc = record.exc_info[1]
        message += f" ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
    return " ".join(message.split("\n"))


class TextFormatter(logging.Formatter):
    """`2026-05-01T08:00:00.123Z INFO  broadcast  ready: ...`"""

    def format(self, record: logging.LogRecord) -> str:
        """One line."""
        return (f"{_timestamp(record)} {record.levelname:<7} {service_of(record.name):<10} "
                f"{_message(record)}")


class JsonFormatter(logging.Formatter):
    """`{"time": ..., "level": ..., "service": ..., "logger": ..., "message": ...}`"""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object."""
        return json.dumps({"time": _timestamp(record), "level": record.levelname,
                           "service": service_of(record.name), "logger": record.name,
                           "message": _message(record)}, ensure_ascii=False)


FORMATTERS: dict[LogFormat, type[logging.Formatter]] = {
    LogFormat.TEXT: TextFormatter, LogFormat.JSON: JsonFormatter}


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test may swap it)."""

    @property
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure_logging(log_format: LogFormat, level: int = logging.INFO) -> None:
    """Send every logger's records to stderr in the chosen format (replaces our earlier
    handler, leaves others, such as a test runner's, alone)."""
    handler = StderrHandler()
    handler.setFormatter(FORMATTERS[log_format]())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler says INFO for every job run (each second): only its warnings are events.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn installs its own handlers; ours format its lines like every other.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
