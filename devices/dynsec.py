"""Broker logins kept live in Mosquitto's dynamic security plugin (pure).

The plugin holds who may log in: one client per device (password = the device's secret,
bound to its own client id, so no device can take over another's session) and one per
service. What each may do stays in the generated ACL file (`broker_access.acl_text`),
whose `%u` patterns cover every device at once; Mosquitto 2.0.11 consults that file
first and asks the plugin only when no line matches, where the plugin's defaults deny.
Gateways, being few, get a role each for their gateway topic, so a new gateway needs no
file change either.

The registry drives the running plugin through `$CONTROL/dynamic-security/v1` with the
commands built here. Its control API takes passwords in plain only, so a login is granted
when its secret is issued; the plugin's own file, which takes the registry's hashes as they
are (PBKDF2-SHA512, salt, iterations: the `$7$` format), is written from the registry for
a broker's first start or a restore (`plugin_config`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devices.broker_access import GATEWAY_GRANTS, SERVICE_PREFIX, Access, checked_name
from devices.credentials import HASH_PATTERN
from devices.topics import topic

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
ACCESS_ACCOUNT = SERVICE_PREFIX + "access"
ACCESS_ROLE = "village-access"
GATEWAY_ROLE_PREFIX = "gateway:"
# Rights come from the ACL file; the plugin answers only what that file does not match.
DEFAULT_ACCESS = {"publishClientSend": False, "publishClientReceive": False,
                  "subscribe": False, "unsubscribe": True}
ALREADY_EXISTS = "Client already exists"
NOT_FOUND = ("Client not found", "Role not found")


@dataclass(frozen=True)
class Grant:
    """A device may log in with this secret (a gateway also publishes its children's readings)."""

    device_id: str
    secret: str
    gateway: bool


@dataclass(frozen=True)
class Revoke:
    """A device may no longer log in; a session it holds is closed."""

    device_id: str
    gateway: bool = False


@dataclass(frozen=True)
class Role:
    """A device with a login became a gateway (or stopped being one): its rights change,
    its secret does not."""

    device_id: str
    gateway: bool


Change = Grant | Revoke | Role


def superseding(earlier: Change | None, later: Change) -> Change:
    """What one device's queued changes come to, applied in order: the later one, except
    that a role change keeps a secret not yet granted (and a login not yet revoked)."""
    if isinstance(later, Role) and isinstance(earlier, Grant):
        return Grant(earlier.device_id, earlier.secret, later.gateway)
    if isinstance(later, Role) and isinstance(earlier, Revoke):
        return Revoke(earlier.device_id, gateway=True)  # a role created meanwhile goes too
    return later


@dataclass
class Pacing:
    """How many changes go into one control message: as many as the broker applies in about
    `target_s`, at most `most`. Mosquitto 2.0.x's plugin rewrites its whole file after
    every command (not once per message), so a command costs time in proportion to the
    logins held, and the single-threaded broker serves nobody else meanwhile: a fixed batch
    that is quick at 1,000 logins would hold the broker for minutes at 150,000."""

    most: int
    target_s: float = 1.0
    first: int = 10  # before anything is measured
    per_command_s: float | None = None

    def size(self) -> int:
        """Changes for the next message."""
        if self.per_command_s is None:
            return min(self.most, self.first)
        return max(1, min(self.most, int(self.target_s / self.per_command_s)))

    def observe(self, commands: int, seconds: float) -> None:
        """The broker answered `commands` commands in `seconds` (smoothed over messages)."""
        if commands <= 0:
            return
        measured = seconds / commands
        known = self.per_command_s
        self.per_command_s = measured if known is None else (known + measured) / 2


def gateway_role(device_id: str) -> str:
    """The plugin role that lets one gateway publish on its gateway topic."""
    return GATEWAY_ROLE_PREFIX + device_id


def _gateway_acls(prefix: str, device_id: str) -> list[dict[str, Any]]:
    return [{"acltype": "publishClientSend" if grant.access is Access.WRITE
             else "publishClientReceive",
             "topic": topic(prefix, device_id, grant.channel), "allow": True}
            for grant in GATEWAY_GRANTS]


def _access_acls() -> list[dict[str, Any]]:
    control = CONTROL_TOPIC.rsplit("/", 1)[0] + "/#"
    return [{"acltype": kind, "topic": control, "allow": True}
            for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")]


def _client(username: str, roles: Sequence[str]) -> dict[str, Any]:
    # A device logs in with its id as client id; services run several sessions each.
    bound = {} if username.startswith(SERVICE_PREFIX) else {"clientid": username}
    return {"username": username, **bound, "roles": [{"rolename": r} for r in roles]}


def _roles(device_id: str, gateway: bool) -> list[str]:
    return [gateway_role(device_id)] if gateway else []


def grant_commands(prefix: str, grant: Grant, exists: bool) -> list[dict[str, Any]]:
    """Commands that let a device log in with its secret (create it, or change it if it exists)."""
    name = checked_name(grant.device_id)
    commands: list[dict[str, Any]] = []
    if grant.gateway:
        commands.append({"command": "createRole", "rolename": gateway_role(name),
                         "acls": _gateway_acls(prefix, name)})
    client = _client(name, _roles(name, grant.gateway))
    if exists:
        commands.append({"command": "modifyClient", **client, "password": grant.secret})
    else:
        commands.append({"command": "createClient", **client, "password": grant.secret})
    return commands


def revoke_commands(revoke: Revoke) -> list[dict[str, Any]]:
    """Commands that drop a device's login (the plugin closes its session)."""
    name = checked_name(revoke.device_id)
    commands: list[dict[str, Any]] = [{"command": "deleteClient", "username": name}]
    if revoke.gateway:
        commands.append({"command": "deleteRole", "rolename": gateway_role(name)})
    return commands


def role_commands(prefix: str, role: Role) -> list[dict[str, Any]]:
    """Commands that give a device's login its gateway role, or take it away (the plugin
    closes its session, and it logs in again with its rights)."""
    name = checked_name(role.device_id)
    modify = {"command": "modifyClient", "username": name,
              "roles": [{"rolename": r} for r in _roles(name, role.gateway)]}
    if role.gateway:
        return [{"command": "createRole", "rolename": gateway_role(name),
                 "acls": _gateway_acls(prefix, name)}, modify]
    return [modify, {"command": "deleteRole", "rolename": gateway_role(name)}]


def list_clients_command() -> dict[str, Any]:
    """Ask for every username the plugin holds."""
    return {"command": "listClients", "verbose": False, "count": -1}


def device_usernames(response: Mapping[str, Any]) -> set[str]:
    """The device logins in a `listClients` answer (service accounts left out)."""
    names = response.get("data", {}).get("clients", [])
    return {name for name in names if isinstance(name, str)
            and not name.startswith(SERVICE_PREFIX)}


def stale_logins(broker: Iterable[str], registry: Iterable[str]) -> list[str]:
    """Device logins the broker holds that the registry no longer grants, sorted."""
    return sorted(set(broker) - set(registry))


def _hashed(hashed: str) -> dict[str, Any]:
    match = HASH_PATTERN.fullmatch(hashed)
    if match is None:
        raise ValueError("not a Mosquitto $7$ (PBKDF2-SHA512) password hash")
    iterations, salt, digest = match.groups()
    return {"password": digest, "salt": salt, "iterations": int(iterations)}


def plugin_config(prefix: str, services: Iterable[tuple[str, str]],
                  devices: Iterable[tuple[str, str, bool]]) -> dict[str, Any]:
    """The plugin's whole config file: service logins (name, hash), device logins
    (device id, hash, is gateway), the access role and one role per gateway."""
    clients: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = [{"rolename": ACCESS_ROLE, "acls": _access_acls()}]
    for name, hashed in services:
        granted = [ACCESS_ROLE] if name == ACCESS_ACCOUNT else []
        clients.append({**_client(checked_name(name), granted), **_hashed(hashed)})
    for device_id, hashed, gateway in devices:
        name = checked_name(device_id)
        clients.append({**_client(name, _roles(name, gateway)), **_hashed(hashed)})
        if gateway:
            roles.append({"rolename": gateway_role(name), "acls": _gateway_acls(prefix, name)})
    return {"defaultACLAccess": DEFAULT_ACCESS, "clients": clients, "groups": [],
            "roles": roles}
