"""`village up`: the embedded default, composed in one place.

With no configuration it starts a private Mosquitto (embedded amqtt where there is none) and
PostgreSQL under a data directory, migrates, registers a handful of simulated devices of
every kind, and runs every service. `VILLAGE_DATABASE_URL` / `VILLAGE_MQTT_URL`, when set,
are used instead of the private servers. Long-running parts are `Component`s with start
and stop, listed in `SERVICES`: the access daemon, ingest, alerting, broadcast, the API and
the simulators. Its Mosquitto runs with authentication on: every service and every
simulated device logs in as itself. The stack and the local servers are in `village/up_stack.py`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psycopg
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live

from devices.access_sync import AccessDaemon
from ground.principal import Place, Principal, Role
from ground.settings import parse_mqtt_url
from ingest.service import default_client_id
from simulators import demo
from simulators.build import DEFAULT_INTERVALS_S
from simulators.fleet import SimulatedFleet
from simulators.population import generate_population
from simulators.store import append_secrets, read_secrets, register
from village.console.accounts import AccountError, create_user, enable_user, reset_password
from village.local_stack import LocalStack, announce
from village.processes import broadcast_daemon, ingest_worker, start_alerting, stop_on_signals
from village.settings import Settings
from village.up_stack import (
    Component,
    LocalBroker,
    Stack,
    UpError,
    migrate_schema,
    start_broker,
    start_database,
)

log = logging.getLogger("village.up")
STATUS_EVERY_S = 1.0


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
    devices = generate_population(demo.POPULATION, seed=demo.SEED)
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
        # A contamination, a burst, a tamper and an outage in the first minutes: the console
        # has alerts and a device status history to show.
        fleet.add_faults(demo.demo_faults(devices, fleet.clock.now()))

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
    # Our handlers stay in place until everything has stopped: a second Ctrl-C (people press
    # it twice) must not cut the stopping short and leave the database and broker running.
    with stop_on_signals(stop):
        try:
            start_database(stack)
            migrate_schema(stack)
            start_broker(stack, broker)  # after the schema: its logins come from the registry
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
