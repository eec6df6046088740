"""The ground `village up` stands on: its components and stack, and the local servers it
starts (Mosquitto or amqtt, PostgreSQL under the data directory) and migrates."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import psycopg
from rich.console import Console

from ground.local import (
    AmqttServer,
    MosquittoServer,
    PostgresCluster,
    amqtt_installed,
    mosquitto_binary,
    postgres_can_reach,
    stand_in_for,
)
from ground.mqtt import check_reachable
from ground.settings import parse_mqtt_url
from village.commands.broker import DYNSEC_FILE, write_broker_config
from village.schema import migrate_as_configured
from village.settings import Settings

log = logging.getLogger("village.up")

DATABASE_NAME = "village"


class UpError(Exception):
    """Something `village up` needs is missing; the message says what to install or set."""


@dataclass
class Component:
    """A long-running part of the local stack."""

    name: str
    where: str
    start: Callable[[], None]
    stop: Callable[[], None]


@dataclass
class Stack:
    """What `village up` started, and the settings that point at it."""

    settings: Settings
    data_dir: Path
    console: Console
    running: list[Component] = field(default_factory=list)
    figures: Callable[[], str] = lambda: ""
    service_urls: dict[str, str] = field(default_factory=dict)  # each service's own login

    def for_service(self, service: str) -> Settings:
        """The settings a service runs with: its own broker login where the broker has them."""
        url = self.service_urls.get(service)
        return self.settings if url is None else self.settings.model_copy(
            update={"mqtt_url": url})

    def add(self, component: Component) -> None:
        """Start a component and remember it for the stop."""
        component.start()
        self.running.append(component)
        log.info("started %-11s %s", component.name, component.where)

    def stop(self) -> None:
        """Stop everything, newest first."""
        while self.running:
            component = self.running.pop()
            try:
                component.stop()
                log.info("stopped %s", component.name)
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                log.error("could not stop %s: %s", component.name, exc)


class LocalBroker(StrEnum):
    """Which broker `village up` starts when VILLAGE_MQTT_URL is not set."""

    AUTO = "auto"
    MOSQUITTO = "mosquitto"
    AMQTT = "amqtt"


def choose_broker(wanted: LocalBroker, mosquitto: str | None, amqtt: bool) -> LocalBroker:
    """Which local broker to start: Mosquitto where there is one, else embedded amqtt."""
    if wanted is LocalBroker.AUTO:
        if mosquitto is None and not amqtt:
            raise UpError("no MQTT broker: install Mosquitto 2 (Debian: mosquitto) or the "
                          "embedded one (pip install 'smart-village-telemetry[embedded]'), "
                          "or set VILLAGE_MQTT_URL")
        return LocalBroker.MOSQUITTO if mosquitto else LocalBroker.AMQTT
    if wanted is LocalBroker.MOSQUITTO and mosquitto is None:
        raise UpError("no mosquitto binary on PATH: install Mosquitto 2 (Debian: mosquitto)")
    if wanted is LocalBroker.AMQTT and not amqtt:
        raise UpError("amqtt is not installed: pip install 'smart-village-telemetry[embedded]'")
    return wanted


def start_broker(stack: Stack, wanted: LocalBroker) -> None:
    if "mqtt_url" in stack.settings.model_fields_set:
        check_reachable(stack.settings.mqtt)
        log.info("broker      %r (VILLAGE_MQTT_URL)", stack.settings.mqtt)
        return
    broker: MosquittoServer | AmqttServer
    if choose_broker(wanted, mosquitto_binary(), amqtt_installed()) is LocalBroker.MOSQUITTO:
        broker = MosquittoServer(data_dir=(stack.data_dir / "mosquitto").resolve())
        _broker_logins(stack, broker)
        where = (f"{broker.url} (Mosquitto, data in {broker.data_dir}; logins from the "
                 "registry, kept live by its dynamic security plugin)")
    else:
        broker = AmqttServer(data_dir=(stack.data_dir / "amqtt").resolve())
        where = (f"{broker.url} (embedded amqtt, MQTT 3.1.1: for trying things only; it "
                 "does not queue messages for an absent subscriber)")

    def start() -> None:
        broker.start()

    stack.add(Component("broker", where, start, broker.stop))
    stack.settings = stack.settings.model_copy(update={"mqtt_url": broker.url})


def _broker_logins(stack: Stack, broker: MosquittoServer) -> None:
    """Authentication on: the plugin's file and the ACL written from the registry, each
    service logging in as itself (its env file)."""
    conf = broker.data_dir / "logins"
    broker.acl_file, broker.dynsec_file = conf / "acl", conf / DYNSEC_FILE
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        write_broker_config(conn, conf, stack.settings.topic_prefix, parse_mqtt_url(broker.url),
                            rotate_services=False, dynsec=True)
    for env in conf.glob("*.env"):
        stack.service_urls[env.stem] = env.read_text().rsplit("VILLAGE_MQTT_URL=", 1)[1].strip()


def start_database(stack: Stack) -> None:
    if "database_url" in stack.settings.model_fields_set:
        log.info("database    %s (VILLAGE_DATABASE_URL)", stack.settings.database_address)
        return
    cluster = PostgresCluster(data_dir=_cluster_dir(stack))
    try:
        cluster.init()
    except FileNotFoundError as exc:
        raise UpError(f"{exc}: install PostgreSQL 15+ (Debian: postgresql; or pip install "
                      "'smart-village-telemetry[embedded]'), or set VILLAGE_DATABASE_URL") from None
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise UpError(f"initdb failed in {cluster.data_dir}: {said[-1] if said else exc}") from None
    cluster.stop()  # a cluster left running by a crashed run would refuse to start again

    def start() -> None:
        cluster.start()

    stack.add(Component("postgresql", f"{cluster.admin_url} (data in {cluster.data_dir})",
                        start, cluster.stop))
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    url = cluster.admin_url.rsplit("/", 1)[0] + "/" + DATABASE_NAME
    stack.settings = stack.settings.model_copy(update={"database_url": url})


def _cluster_dir(stack: Stack) -> Path:
    """`DATA_DIR/pg`, or, where the `postgres` user cannot enter it (we run as root from a
    root-only home directory), a folder of its own under /var/tmp, the same on every run."""
    wanted = (stack.data_dir / "pg").resolve()
    if postgres_can_reach(wanted):
        return wanted
    fallback = stand_in_for(wanted, "pg")
    log.info("the postgres user cannot enter %s: the cluster lives in %s", wanted, fallback)
    return fallback


def migrate_schema(stack: Stack) -> None:
    settings = stack.settings
    report = migrate_as_configured(settings.database_url, settings.storage, settings.retention)
    done = ", ".join(report.applied) or "already current"
    log.info("schema      version %d, %s storage (%s)", report.current_version, report.storage,
             done)
