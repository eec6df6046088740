"""Helpers for ingest tests: a worker in a thread, a device publisher, the registry."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import paho.mqtt.client as paho
import psycopg

from devices.topics import Channel, topic
from ground.mqtt import ClientOptions, Will, build_client, connect_async
from ground.settings import parse_mqtt_url
from ingest.service import Worker
from ingest.settings import IngestSettings
from village.processes import ingest_worker
from village.settings import Settings

T = TypeVar("T")


def ingest_settings(database_url: str, mqtt_url: str, prefix: str, **ingest: Any) -> Settings:
    """Settings for a test worker (nothing read from the environment matters here)."""
    ingest.setdefault("client_id", "ingest-" + uuid.uuid4().hex[:8])
    ingest.setdefault("share_group", "g" + uuid.uuid4().hex[:8])
    ingest.setdefault("batch_max_wait_ms", 20)
    return Settings(database_url=database_url, mqtt_url=mqtt_url, topic_prefix=prefix,
                    ingest=IngestSettings(**ingest))


@contextmanager
def running_worker(settings: Settings) -> Iterator[Worker]:
    """A worker running in a thread, subscribed, stopped and flushed at the end."""
    worker = ingest_worker(settings, settings.ingest.client_id or "ingest-test")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.subscriber.subscribed.wait(15), "the worker never subscribed"
        yield worker
    finally:
        worker.stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"


def start_ingest_process(database_url: str, mqtt_url: str, prefix: str, client_id: str,
                         log: Path) -> subprocess.Popen[bytes]:
    """`village ingest` as its own process, configured by the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGE_")}
    env.update(VILLAGE_DATABASE_URL=database_url, VILLAGE_MQTT_URL=mqtt_url,
               VILLAGE_TOPIC_PREFIX=prefix, VILLAGE_INGEST__CLIENT_ID=client_id,
               VILLAGE_INGEST__SHARE_GROUP="kill9")
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "village.cli", "ingest",
                                 "--status-every", "1"], env=env, cwd=log.parent,
                                stdout=out, stderr=subprocess.STDOUT)


def register(database_url: str, devices: Sequence[tuple[str, ...]]) -> None:
    """Register devices as (device_id, kind[, gateway_id]); gateways must come first."""
    with psycopg.connect(database_url) as conn:
        for device in devices:
            device_id, kind = device[0], device[1]
            gateway = device[2] if len(device) > 2 else None
            conn.execute(
                "INSERT INTO devices (device_id, kind, village, gateway_id) VALUES (%s, %s, %s, %s)",
                (device_id, kind, "test village", gateway),
            )


class Publisher:
    """A device-side MQTT client that publishes QoS 1 and waits for the broker's ack."""

    def __init__(self, mqtt_url: str, client_id: str | None = None) -> None:
        endpoint = parse_mqtt_url(mqtt_url)
        options = ClientOptions(client_id=client_id or "pub-" + uuid.uuid4().hex[:8],
                                persistent_session=False)
        self.client = build_client(endpoint, options)
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        connect_async(self.client, endpoint, options)
        self.client.loop_start()
        assert connected.wait(10), "publisher could not connect"
        self._pending: list[paho.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: object, retain: bool = False, qos: int = 1) -> None:
        """Publish JSON (or raw bytes as given)."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        self._pending.append(self.client.publish(topic, body, qos=qos, retain=retain))
        if len(self._pending) >= 500:
            self.flush()

    def flush(self, timeout_s: float = 30) -> None:
        """Wait until the broker has acknowledged everything published."""
        for info in self._pending:
            info.wait_for_publish(timeout_s)
        self._pending.clear()

    def close(self) -> None:
        """Flush and disconnect."""
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


def camera_comes_online(mqtt_url: str, prefix: str, device_id: str) -> paho.Client:
    """A camera that connects with a Last Will (`offline`), says it is online and reports."""
    endpoint = parse_mqtt_url(mqtt_url)
    status_topic = topic(prefix, device_id, Channel.STATUS)
    options = ClientOptions(client_id=device_id, persistent_session=False, keepalive_s=5,
                            will=Will(status_topic, b"offline"))
    device = build_client(endpoint, options)
    connected = threading.Event()
    device.on_connect = lambda *args: connected.set()
    connect_async(device, endpoint, options)
    device.loop_start()
    assert connected.wait(10)
    device.publish(status_topic, b"online", qos=1, retain=True).wait_for_publish(10)
    device.publish(topic(prefix, device_id, Channel.TELEMETRY), b'{"fps": 25}',
                   qos=1).wait_for_publish(10)
    return device


def vanish(device: paho.Client) -> None:
    """Drop off the network without a DISCONNECT: the broker publishes the Last Will."""
    device.loop_stop()
    device.socket().close()  # type: ignore[union-attr]


def wait_until(check: Callable[[], T], timeout_s: float = 20, what: str = "condition") -> T:
    """Poll until `check()` is true and return what it gave, or fail naming what was awaited."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def scalar(database_url: str, query: str, *params: object) -> Any:
    """The first column of the first row of a query."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def rows(database_url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    """Every row of a query."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()
