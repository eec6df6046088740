"""The broadcast tests' fixtures: four speakers in one village, a recording publisher and
an engine over them (one speaker offline)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from broadcast.engine import Engine
from tests.broadcast.registry import register_speakers

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SPEAKERS = ["spk-1", "spk-2", "spk-3", "spk-4"]


class RecordingPublisher:
    """Keeps what would have gone to each speaker's cmd topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def publish(self, device_id: str, payload: bytes) -> None:
        self.sent.append((device_id, orjson.loads(payload)))

    def take(self) -> list[tuple[str, str, str]]:
        """(speaker, op, id) of everything published since the last take."""
        taken = [(d, str(p["op"]), str(p["id"])) for d, p in self.sent]
        self.sent.clear()
        return taken


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    register_speakers(database_url, [(d, "East", "Apple") for d in SPEAKERS])
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def engine(publisher: RecordingPublisher) -> Engine:
    online = {"spk-1": True, "spk-2": True, "spk-3": True, "spk-4": False}
    return Engine(publisher, retry_interval=timedelta(seconds=10), presence=online)
