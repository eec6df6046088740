"""The access daemon: applies queued registry changes to the broker's dynamic security
plugin within seconds, and reconciles the two after a broker restart or a missed change.

One MQTT session as `svc-access` on the plugin's control topic, one database connection
that LISTENs for the registry's notifications. A pass takes the queue in batches (one
control message carries many commands), and a row is deleted only once the broker has
answered for it: a broker that is away keeps the queue, and the daemon carries on when it
comes back. Reconciling (at start, on every reconnect, and every `reconcile_interval_s`)
asks the plugin for its device logins and drops those the registry no longer grants.
A login the plugin lacks cannot be restored over the control API, which takes plain
secrets only; `village broker-config --dynsec` writes it into the plugin's file from the
registry's hashes before the broker starts, and the daemon reports how many are missing.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
import psycopg

from devices import access_queue
from devices.access_settings import AccessSettings
from devices.dynsec import (
    ALREADY_EXISTS,
    CONTROL_TOPIC,
    NOT_FOUND,
    RESPONSE_TOPIC,
    Change,
    Grant,
    Pacing,
    Revoke,
    Role,
    device_usernames,
    grant_commands,
    list_clients_command,
    revoke_commands,
    role_commands,
    stale_logins,
)
from ground.mqtt import ClientOptions, build_client, connect_async
from ground.settings import MqttEndpoint


class ControlError(Exception):
    """The broker did not answer a control message in time (or is not connected)."""


@dataclass
class ControlChannel:
    """An MQTT session on the plugin's control topic: send commands, wait for the answers."""

    endpoint: MqttEndpoint
    client_id: str
    reply_timeout_s: float
    connected: threading.Event = field(default_factory=threading.Event)
    reconnected: threading.Event = field(default_factory=threading.Event)
    # Answers as they come; None when the session drops, so a waiting `send` fails at once.
    _replies: queue.Queue[list[dict[str, Any]] | None] = field(default_factory=queue.Queue)
    _tags: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._options = ClientOptions(client_id=self.client_id, persistent_session=False)
        self._client = build_client(self.endpoint, self._options)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Start connecting (and reconnecting) in the background."""
        connect_async(self._client, self.endpoint, self._options)
        self._client.loop_start()

    def stop(self) -> None:
        """Close the session."""
        self._client.disconnect()
        self._client.loop_stop()

    def send(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send commands in one control message; return the broker's answer to each, in order."""
        if not self.connected.is_set():
            raise ControlError("not connected to the broker")
        while not self._replies.empty():  # late answers to a message given up on
            self._replies.get_nowait()
        tag = f"village-{next(self._tags)}"
        tagged = [{**command, "correlationData": f"{tag}:{n}"}
                  for n, command in enumerate(commands)]
        self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        deadline = time.monotonic() + self.reply_timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                responses = self._replies.get(timeout=left)
            except queue.Empty:
                break
            if responses is None:
                raise ControlError("the broker closed the session")
            if responses and str(responses[0].get("correlationData", "")).startswith(tag + ":"):
                return responses
        raise ControlError(f"no answer from the broker within {self.reply_timeout_s} s")

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)
        self.connected.set()
        self.reconnected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        self.connected.clear()
        self._replies.put(None)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(responses, list):
            self._replies.put([r if isinstance(r, dict) else {} for r in responses])


@dataclass
class SyncStats:
    """What the daemon has done, for the live figures and the tests."""

    applied: int = 0
    failed: int = 0
    stale_dropped: int = 0
    missing: int = 0  # granted by the registry, absent at the broker, no secret queued
    reconciled_at: float | None = None
    last_error: str | None = None


def _error(response: dict[str, Any]) -> str | None:
    error = response.get("error")
    return str(error) if error else None


@dataclass
class AccessSync:
    """Applies the queue to the broker and reconciles; `run` until `stop` is set."""

    database_url: str
    channel: ControlChannel
    prefix: str
    settings: AccessSettings
    log: Callable[[str], None] = lambda line: None
    stats: SyncStats = field(default_factory=SyncStats)
    stop: threading.Event = field(default_factory=threading.Event)
    pacing: Pacing = field(init=False)

    def __post_init__(self) -> None:
        self.pacing = Pacing(self.settings.batch, self.settings.message_target_s)

    def run(self) -> None:
        """Serve until stopped: wake on each notification, retry while the broker is away."""
        with psycopg.connect(self.database_url, autocommit=True) as listener, \
                psycopg.connect(self.database_url, autocommit=True) as conn:
            listener.execute(f"LISTEN {access_queue.CHANNEL}")
            while not self.stop.is_set():
                try:
                    self.cycle(conn)
                except (ControlError, psycopg.OperationalError) as exc:
                    self.stats.last_error = str(exc)
                    self.log(f"waiting for the broker: {exc}")
                    self.stop.wait(1.0)
                for _ in listener.notifies(timeout=1.0, stop_after=1):
                    pass

    def cycle(self, conn: psycopg.Connection) -> None:
        """One pass: reconcile if due, then apply everything queued."""
        due = (self.stats.reconciled_at is None or self.channel.reconnected.is_set()
               or time.monotonic() - self.stats.reconciled_at > self.settings.reconcile_interval_s)
        if due:
            self.channel.reconnected.clear()
            self.reconcile(conn)
        while self.apply_batch(conn):
            pass

    def apply_batch(self, conn: psycopg.Connection) -> int:
        """Apply the next message's worth of queued changes; return how many (0: none)."""
        taken = access_queue.take(conn, self.pacing.size())
        if not taken:
            return 0
        commands: list[dict[str, Any]] = []
        owners: list[int] = []  # the index in `taken` each command came from
        for index, item in enumerate(taken):
            built = self._commands(item.change)
            commands += built
            owners += [index] * len(built)
        responses = self._paced_send(commands)
        retry: list[dict[str, Any]] = []
        for owner, command, response in zip(owners, commands, responses, strict=False):
            error = _error(response)
            change = taken[owner].change
            if error == ALREADY_EXISTS and isinstance(change, Grant):
                retry += grant_commands(self.prefix, change, exists=True)[-1:]
            elif error and error not in NOT_FOUND and not error.startswith("Role already"):
                self.stats.failed += 1
                self.log(f"{command['command']} {change.device_id}: {error}")
        if retry:
            for command, response in zip(retry, self._paced_send(retry), strict=False):
                if (error := _error(response)) is not None:
                    self.stats.failed += 1
                    self.log(f"{command['command']} {command['username']}: {error}")
        access_queue.done(conn, [row_id for item in taken for row_id in item.ids])
        self.stats.applied += len(taken)
        return len(taken)

    def _paced_send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        started = time.monotonic()
        responses = self.channel.send(commands)
        self.pacing.observe(len(commands), time.monotonic() - started)
        return responses

    def _commands(self, change: Change) -> list[dict[str, Any]]:
        if isinstance(change, Grant):
            return grant_commands(self.prefix, change, exists=False)
        if isinstance(change, Role):
            return role_commands(self.prefix, change)
        return revoke_commands(change)

    def reconcile(self, conn: psycopg.Connection) -> None:
        """Drop the broker's device logins the registry does not grant; count the missing."""
        (answer,) = self.channel.send([list_clients_command()])
        if (error := _error(answer)) is not None:
            raise ControlError(f"listClients: {error}")
        broker = device_usernames(answer)
        granted = access_queue.granted_device_ids(conn)
        stale = stale_logins(broker, granted)
        start = 0
        while start < len(stale):
            chunk = stale[start:start + self.pacing.size()]
            self._paced_send([command for device_id in chunk
                              for command in revoke_commands(Revoke(device_id))])
            start += len(chunk)
        self.stats.stale_dropped += len(stale)
        missing = granted - broker - access_queue.queued_device_ids(conn)
        self.stats.missing = len(missing)
        if stale or missing:
            self.log(f"reconciled: {len(stale)} stale logins dropped; {len(missing)} devices"
                     " have no login at the broker (restore: `village broker-config --dynsec`"
                     " before the broker starts)")
        self.stats.reconciled_at = time.monotonic()



@dataclass
class AccessDaemon:
    """The daemon as a start/stop component: its session and its loop in a thread."""

    sync: AccessSync
    _thread: threading.Thread | None = None

    @classmethod
    def build(cls, database_url: str, endpoint: MqttEndpoint, prefix: str,
              settings: AccessSettings, log: Callable[[str], None] = lambda line: None,
              ) -> AccessDaemon:
        """Wire a daemon for this database and broker."""
        channel = ControlChannel(endpoint, settings.client_id, settings.reply_timeout_s)
        return cls(AccessSync(database_url, channel, prefix, settings, log))

    def start(self) -> None:
        """Connect and serve in the background."""
        self.sync.channel.start()
        self._thread = threading.Thread(target=self.sync.run, name="access", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the session."""
        self.sync.stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.sync.channel.stop()
