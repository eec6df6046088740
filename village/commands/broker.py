"""`village broker-config`: the broker's logins (passwd file, or the dynamic security plugin's
file), its ACL file, and the services' env files; `village broker-access`: the access daemon."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from devices.access_queue import set_live_access
from devices.access_sync import AccessDaemon
from devices.broker_access import SERVICE_ACCOUNTS, acl_text, passwd_lines, service_secret
from devices.broker_logins import broker_accounts, service_hashes, store_service_hash
from devices.dynsec import plugin_config
from devices.store import gateway_ids
from ground.health import signal_readiness
from ground.mqtt import check_reachable
from ground.settings import MqttEndpoint, format_mqtt_url, parse_mqtt_url
from village.commands.devices import registry_connection
from village.commands.output import err, fail, settings_or_exit
from village.processes import stop_on_signals

log = logging.getLogger("village.access")

DYNSEC_FILE = "dynamic-security.json"


def _write_atomically(path: Path, chunks: Iterable[str], mode: int,
                      group: int | None = None) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    if group is not None:
        os.fchown(fd, -1, group)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(chunks)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _env_password(path: Path, username: str) -> str | None:
    """The password a service's env file already holds for `username`, if any."""

    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "VILLAGE_MQTT_URL":
            with contextlib.suppress(ValueError):
                endpoint = parse_mqtt_url(value.strip())
                if endpoint.username == username:
                    return endpoint.password
    return None


def write_broker_config(conn: psycopg.Connection, directory: Path, prefix: str,
                        endpoint: MqttEndpoint, rotate_services: bool, dynsec: bool = False,
                        env_dir: Path | None = None,
                        broker_group: int | None = None) -> tuple[int, int]:
    """Write passwd (or the plugin's file), acl and one env file per service
    (`directory/<service>.env`, or `env_dir/<service>/mqtt.env`); switch live access on or
    off to match; return (devices, gateways) written."""

    directory.mkdir(parents=True, exist_ok=True)
    with conn.transaction():
        stored = service_hashes(conn)
        logins: list[tuple[str, str]] = []
        env_files: dict[Path, str] = {}
        for account in SERVICE_ACCOUNTS:
            env_path = (env_dir / account.service / "mqtt.env" if env_dir is not None
                        else directory / f"{account.service}.env")
            env_path.parent.mkdir(parents=True, exist_ok=True)
            decision = service_secret(stored.get(account.username),
                                      _env_password(env_path, account.username), rotate_services)
            if decision.new_hash is not None:
                store_service_hash(conn, account.username, decision.new_hash)
            logins.append((account.username, decision.new_hash or stored[account.username]))
            url = format_mqtt_url(endpoint, account.username, decision.secret)
            env_files[env_path] = (f"# village {account.service}: {account.purpose}\n"
                                   f"VILLAGE_MQTT_URL={url}\n")
        logins.extend(broker_accounts(conn))
        gateways = sorted(gateway_ids(conn, active_only=True))
        # The broker must read these, and nobody else: its group, or only our user.
        mode = 0o640 if broker_group is not None else 0o600
        if dynsec:
            _write_dynsec(directory / DYNSEC_FILE, prefix, logins, set(gateways),
                          len(SERVICE_ACCOUNTS), mode, broker_group)
            # The plugin gives each gateway its topic: the ACL file does not change with them.
            _write_atomically(directory / "acl", [acl_text(prefix, [])], mode, broker_group)
        else:
            _write_atomically(directory / "passwd", passwd_lines(logins), mode, broker_group)
            _write_atomically(directory / "acl", [acl_text(prefix, gateways)], mode,
                              broker_group)
        for env_path, text in env_files.items():
            _write_atomically(env_path, [text], 0o600)
        set_live_access(conn, dynsec)
    return len(logins) - len(SERVICE_ACCOUNTS), len(gateways)


def _write_dynsec(path: Path, prefix: str, logins: list[tuple[str, str]], gateways: set[str],
                  services: int, mode: int, group: int | None) -> None:
    config = plugin_config(prefix, logins[:services],
                           ((name, hashed, name in gateways) for name, hashed in logins[services:]))
    _write_atomically(path, [json.dumps(config, indent=1)], mode, group)


def broker_config(
    directory: Annotated[Path, typer.Option("--out", help="where passwd, acl and *.env go")],
    env_out: Annotated[Path | None, typer.Option(
        help="write each service's env file to ENV_OUT/<service>/mqtt.env instead")] = None,
    broker_group: Annotated[int | None, typer.Option(
        help="group id the broker reads passwd and acl as (mode 0640; default 0600)")] = None,
    reload: Annotated[bool, typer.Option(help="signal Mosquitto to re-read the files")] = False,
    pid_file: Annotated[Path | None, typer.Option(help="Mosquitto's pid_file, for --reload")] = None,
    rotate_services: Annotated[bool, typer.Option(help="issue new service secrets")] = False,
    broker_url: Annotated[str | None, typer.Option(
        help="the broker services connect to (default VILLAGE_MQTT_URL's host and port)")] = None,
    dynsec: Annotated[bool, typer.Option(
        help=f"write {DYNSEC_FILE} (the dynamic security plugin's file) instead of passwd,"
             " and switch live access on (run before the broker starts)")] = False,
) -> None:
    """Write the broker's logins and ACL file from the registry, and the services' env files."""

    if reload and pid_file is None:
        raise fail("--reload needs --pid-file (Mosquitto's pid_file)", 2)
    settings = settings_or_exit()
    try:
        endpoint = parse_mqtt_url(broker_url) if broker_url else settings.mqtt
    except ValueError as exc:
        raise fail(f"--broker-url: {exc}", 2) from None
    with registry_connection() as conn:
        devices, gateways = write_broker_config(conn, directory, settings.topic_prefix, endpoint,
                                                rotate_services, dynsec, env_out, broker_group)
    logins = DYNSEC_FILE if dynsec else "passwd"
    err.print(f"{directory}: {logins} ({devices} devices), acl ({gateways} gateways),"
              " one env file per service", highlight=False)
    if reload and pid_file is not None:
        _signal_broker(pid_file)


def _signal_broker(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot signal the broker from {pid_file}: {exc}") from None
    err.print(f"broker (pid {pid}) signalled to reload", highlight=False)


def broker_access() -> None:
    """Keep the dynamic security plugin's logins in line with the registry, within seconds."""
    settings = settings_or_exit()
    check_reachable(settings.mqtt)  # fail now, not in the control channel's thread
    daemon = AccessDaemon.build(settings.database_url, settings.mqtt, settings.topic_prefix,
                                settings.access, log=log.info)
    with stop_on_signals(daemon.sync.stop):
        daemon.start()
        signal_readiness(settings.ready_file, settings.database_url,
                         [daemon.sync.channel.connected.is_set], daemon.sync.stop)
        log.info("ready: keeping the logins of %r in line with the registry in %s",
                 settings.mqtt, settings.database_address)
        daemon.sync.stop.wait()
    daemon.stop()


def register(app: typer.Typer) -> None:
    """Add `village broker-config` and `village broker-access` to the `village` program."""
    app.command("broker-config")(broker_config)
    app.command("broker-access")(broker_access)
