"""`village up`: the embedded default, composed in one place.

With no configuration it starts a private Mosquitto (embedded amqtt where there is none) and
PostgreSQL under a data directory, migrates, registers a handful of simulated devices of
every kind, and runs every service. `VILLAGE_DATABASE_URL` / `VILLAGE_MQTT_URL`, when set,
are used instead of the private servers. Long-running parts are `Component`s with start
and stop, listed in `SERVICES`: the access daemon, ingest, alerting, broadcast, the API and
the simulators. Its Mosquitto runs with authentication on: every service and every
simulated device logs in as itself.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import psycopg
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live

from devices.access_sync import AccessDaemon
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
from ground.principal import Place, Principal, Role
from ground.settings import parse_mqtt_url
from ingest.service import default_client_id
from simulators.build import DEFAULT_INTERVALS_S
from simulators.fleet import SimulatedFleet
from simulators.population import PopulationSpec, generate_population
from simulators.store import append_secrets, read_secrets, register
from village.commands.broker import DYNSEC_FILE, write_broker_config
from village.console.accounts import AccountError, create_user, enable_user, reset_password
from village.local_stack import LocalStack, announce
from village.processes import broadcast_daemon, ingest_worker, start_alerting, stop_on_signals
from village.schema import migrate_as_configured
from village.settings import Settings

log = logging.getLogger("village.up")
DATABASE_NAME = "village"
STATUS_EVERY_S = 1.0


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


def _start_broker(stack: Stack, wanted: LocalBroker) -> None:
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


def _start_database(stack: Stack) -> None:
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


def _migrate(stack: Stack) -> None:
    settings = stack.settings
    report = migrate_as_configured(settings.database_url, settings.storage, settings.retention)
    done = ", ".join(report.applied) or "already current"
    log.info("schema      version %d, %s storage (%s)", report.current_version, report.storage,
             done)


def ingest_component(stack: Stack) -> Component:
    settings = stack.for_service("ingest")
    worker = ingest_worker(settings, settings.ingest.client_id or default_client_id(1),
                           log=logging.getLogger("village.ingest").info)
    thread = threading.Thread(target=worker.run, name="ingest", daemon=True)

    def stop() -> None:
        worker.stop.set()
        thread.join(30)

    last: list[float] = [0, time.monotonic()]

    def figures() -> str:
        now, messages = time.monotonic(), worker.stats.messages
        rate = (messages - last[0]) / max(now - last[1], 1e-9)
        last[:] = [messages, now]
        return (f"{rate:7.1f} msg/s  {messages} messages  {worker.stats.readings} readings  "
                f"held {len(worker.handoff)}")

    stack.figures = figures
    return Component("ingest", f"worker {worker.client_id}, prefix {settings.topic_prefix!r}",
                     thread.start, stop)


def simulators_component(stack: Stack) -> Component:
    spec = PopulationSpec(townships=1, villages=2, meters=8, probes=2, cameras=3, barns=2,
                          speakers=3, gateways=True)
    devices = generate_population(spec, seed=1)
    secrets_file = stack.data_dir / "simulated-device-secrets.csv"
    with psycopg.connect(stack.settings.database_url) as conn:
        # Each simulated device logs in with its own secret, kept here across runs.
        append_secrets(secrets_file, register(conn, devices, issue_secrets=True).secrets)
    passwords = read_secrets(secrets_file)
    # Short intervals so the live figures move; the real ones are minutes to a day. No
    # NB-IoT meters: they upload once a day and would look silent on the live screen.
    fleet = SimulatedFleet(parse_mqtt_url(stack.settings.mqtt_url), stack.settings.topic_prefix,
                           devices, seed=1, nb_iot_share=0, passwords=passwords,
                           intervals_s=dict.fromkeys(DEFAULT_INTERVALS_S, 5.0))
    kinds = sorted({device.kind for device in devices})

    def start() -> None:
        fleet.start()

    return Component("simulators", f"{len(devices)} devices ({', '.join(kinds)})", start,
                     fleet.stop)


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def _started_on_demand(name: str, where: str, begin: Callable[[], _Stoppable]) -> Component:
    """A component whose handle exists only once started (its start does the building)."""
    handles: list[_Stoppable] = []

    def stop() -> None:
        while handles:
            handles.pop().stop()

    return Component(name, where, lambda: handles.append(begin()), stop)


def access_component(stack: Stack) -> Component | None:
    """The access daemon, where `village up` runs Mosquitto with the dynamic security plugin."""
    if "access" not in stack.service_urls:
        return None  # an outside broker, or amqtt: no plugin to drive
    settings = stack.for_service("access")
    daemon = AccessDaemon.build(settings.database_url, settings.mqtt, settings.topic_prefix,
                                settings.access,
                                log=lambda line: stack.console.print(f"[yellow]access: {line}"))
    return Component("access", f"broker logins kept live, client {settings.access.client_id}",
                     daemon.start, daemon.stop)


def alerting_component(stack: Stack) -> Component | None:
    """Alerting, printing what it would send unless a routing file is set."""
    if not stack.settings.alerting.enabled:
        return None
    settings = stack.for_service("alerting")
    where = settings.alerting.routing_file or "notifications printed on the console"
    return _started_on_demand("alerting", where, lambda: start_alerting(settings))


def broadcast_component(stack: Stack) -> Component:
    handle = broadcast_daemon(stack.for_service("broadcast"))

    def start() -> None:
        handle.start()

    return Component("broadcast", f"delivery daemon, client {handle.client_id}", start,
                     handle.stop)


def api_component(stack: Stack) -> Component:
    settings = stack.for_service("api")

    def start() -> _Stoppable:
        from village.api.serve import start as start_api  # start-up cost: FastAPI, uvicorn

        return start_api(settings)

    return _started_on_demand("api", f"http://{settings.api.host}:{settings.api.port}/docs",
                              start)


DEVELOPMENT_ADMIN = "admin"


def console_login(stack: Stack) -> None:
    """Give the local console an admin with a fresh password for this run, and say where."""
    password = secrets.token_urlsafe(12)
    actor = Principal("village-up", Role.ADMIN)
    with psycopg.connect(stack.settings.database_url) as conn:
        try:
            create_user(conn, actor, DEVELOPMENT_ADMIN, password, Role.ADMIN, Place(),
                        "development admin")
        except AccountError:  # made by an earlier run: a new password for this one
            reset_password(conn, actor, DEVELOPMENT_ADMIN, password)
            enable_user(conn, actor, DEVELOPMENT_ADMIN)
    api = stack.settings.api
    stack.console.print(f"console     http://{api.host}:{api.port}/console/  "
                        f"(user {DEVELOPMENT_ADMIN}, password {password})")


def _share_link_secret(stack: Stack) -> None:
    """One link key for the run, shared by alerting (signs) and the API (verifies).

    With none configured a random one is made: links work until the stack stops, and
    there is still no fixed working default.
    """
    if stack.settings.alerting.link_secret is not None:
        return
    alerting = stack.settings.alerting.model_copy(
        update={"link_secret": SecretStr(secrets.token_urlsafe(32))})
    stack.settings = stack.settings.model_copy(update={"alerting": alerting})


# The long-running services, started in this order after the broker, database and schema.
# A factory returns None for a part switched off by its settings.
SERVICES: list[Callable[[Stack], Component | None]] = [
    access_component, ingest_component, alerting_component, broadcast_component, api_component,
    simulators_component,
]


def _status_line(stack: Stack) -> str:
    with psycopg.connect(stack.settings.database_url, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM device_status WHERE online),"
            " (SELECT count(*) FROM devices WHERE lifecycle = 'active'),"
            " (SELECT count(*) FROM dead_letters)").fetchone()
    online, total, dead = row if row else (0, 0, 0)
    return f"{stack.figures()}  devices online {online}/{total}  dead letters {dead}"


def run_up(settings: Settings, data_dir: Path, console: Console,
           broker: LocalBroker = LocalBroker.AUTO) -> None:
    """Start the local stack, show live figures until Ctrl-C, then stop it all."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    stack = Stack(settings, data_dir, console)
    stop = threading.Event()
    stack_file: Path | None = None
    try:
        with stop_on_signals(stop):
            _start_database(stack)
            _migrate(stack)
            _start_broker(stack, broker)  # after the schema: its logins come from the registry
            _share_link_secret(stack)
            for factory in SERVICES:
                if stop.is_set():
                    break
                component = factory(stack)
                if component is not None:
                    stack.add(component)
            console_login(stack)
            log.info("running; database %s, broker %s. Ctrl-C stops everything.",
                     stack.settings.database_url, stack.settings.mqtt_url)
            stack_file = announce(stack.console, stack.data_dir, LocalStack(
                stack.settings.database_url, stack.settings.mqtt_url,
                f"http://{stack.settings.api.host}:{stack.settings.api.port}", os.getpid()))
            _show_figures(stack, stop)
    except UpError as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(1) from None
    finally:
        if stack_file is not None:
            stack_file.unlink(missing_ok=True)
        stack.stop()


def _show_figures(stack: Stack, stop: threading.Event) -> None:
    if not stack.console.is_terminal:
        while not stop.wait(10 * STATUS_EVERY_S):
            log.info("%s", _safe_status(stack))
        return
    with Live(_safe_status(stack), console=stack.console, auto_refresh=False) as live:
        while not stop.wait(STATUS_EVERY_S):
            live.update(_safe_status(stack), refresh=True)


def _safe_status(stack: Stack) -> str:
    try:
        return _status_line(stack)
    except psycopg.Error as exc:
        return f"{stack.figures()}  database unavailable ({type(exc).__name__})"
