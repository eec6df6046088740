"""Who may do what on the broker: Mosquitto `passwd` and `acl` file texts (pure).

Devices share a handful of constant `pattern` lines keyed by `%u` (the username, which is
the device id), so the ACL file stays small for 150,000 devices; the passwd file is the
part that grows. Service accounts (`svc-*`) get the topics their job needs and no more.
Mosquitto 2.0.11 grants every SUBSCRIBE and applies the read rules to each message it
would deliver (shared `$share/...` subscriptions included), so a filter a client may not
read simply never delivers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from devices.contract import TOPIC_PREFIX_PATTERN, is_valid_device_id
from devices.credentials import check_hash_format, generate_secret, hash_secret, verify_secret
from devices.topics import Channel

SERVICE_PREFIX = "svc-"


class Access(StrEnum):
    """A Mosquitto ACL access keyword."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Grant:
    """One right on one channel of the contract's topics."""

    access: Access
    channel: Channel


@dataclass(frozen=True)
class ServiceAccount:
    """A broker login for one of the platform's services, with its rights."""

    service: str
    purpose: str
    grants: tuple[Grant, ...]

    @property
    def username(self) -> str:
        """The broker username, e.g. `svc-ingest`."""
        return SERVICE_PREFIX + self.service


READ, WRITE = Access.READ, Access.WRITE

SERVICE_ACCOUNTS: tuple[ServiceAccount, ...] = (
    ServiceAccount("ingest", "stores what devices report", (
        Grant(READ, Channel.TELEMETRY), Grant(READ, Channel.EVENT),
        Grant(READ, Channel.STATUS), Grant(READ, Channel.GATEWAY_TELEMETRY))),
    ServiceAccount("broadcast", "sends commands to speakers and meters, follows their acks", (
        Grant(WRITE, Channel.COMMAND), Grant(READ, Channel.COMMAND_ACK),
        Grant(READ, Channel.STATUS))),
    ServiceAccount("alerting", "runs the broadcast actions of alert rules", (
        Grant(WRITE, Channel.COMMAND), Grant(READ, Channel.COMMAND_ACK))),
    ServiceAccount("api", "sends operators' broadcasts and commands", (
        Grant(WRITE, Channel.COMMAND), Grant(READ, Channel.COMMAND_ACK))),
    # Its right is the dynamic security plugin's control topic, granted by the plugin.
    ServiceAccount("access", "keeps the broker's logins in line with the registry", ()),
)

# Every device: publish its own reports, read its own commands.
DEVICE_GRANTS: tuple[Grant, ...] = (
    Grant(WRITE, Channel.TELEMETRY), Grant(WRITE, Channel.EVENT), Grant(WRITE, Channel.STATUS),
    Grant(WRITE, Channel.COMMAND_ACK), Grant(READ, Channel.COMMAND),
)
# Gateways also publish their children's readings; named one by one, as they are few.
GATEWAY_GRANTS: tuple[Grant, ...] = (Grant(WRITE, Channel.GATEWAY_TELEMETRY),)


class BrokerAccessError(ValueError):
    """A name or hash that must not reach a broker file."""


def is_reserved_name(name: str) -> bool:
    """Whether a name belongs to the service accounts, so no device may take it."""
    return name.startswith(SERVICE_PREFIX)


def _checked_prefix(prefix: str) -> str:
    if TOPIC_PREFIX_PATTERN.fullmatch(prefix) is None:
        raise BrokerAccessError(f"topic prefix {prefix!r} is not 1 to 32 of [A-Za-z0-9_-]")
    return prefix


def checked_name(name: str) -> str:
    """The name, if it may be a broker username; BrokerAccessError if not."""
    # The contract's id pattern has no whitespace, '#', '+', '%' or '/', so a name cannot
    # add a line, widen a topic or smuggle a pattern into either file.
    if not is_valid_device_id(name):
        raise BrokerAccessError(f"{name!r} is not a valid broker username")
    return name


def _rule(keyword: str, grant: Grant, prefix: str, who: str) -> str:
    return f"{keyword} {grant.access.value} {prefix}/{who}/{grant.channel.value}"


def acl_text(prefix: str, gateway_ids: Iterable[str]) -> str:
    """The Mosquitto ACL file: device patterns, service accounts, then each gateway."""
    prefix = _checked_prefix(prefix)
    lines = ["# Written by `village broker-config`; edits are overwritten.",
             "# Devices (username = device id): only their own topics."]
    lines += [_rule("pattern", grant, prefix, "%u") for grant in DEVICE_GRANTS]
    for account in SERVICE_ACCOUNTS:
        lines += ["", f"# {account.purpose}", f"user {account.username}"]
        lines += [_rule("topic", grant, prefix, "+") for grant in account.grants]
    for gateway_id in gateway_ids:
        lines += ["", f"user {checked_name(gateway_id)}"]
        lines += [_rule("topic", grant, prefix, gateway_id) for grant in GATEWAY_GRANTS]
    return "\n".join(lines) + "\n"


def passwd_lines(accounts: Iterable[tuple[str, str]]) -> Iterator[str]:
    """Mosquitto password file lines `name:$7$...` from (username, stored hash) pairs."""
    for name, hashed in accounts:
        name = checked_name(name)
        try:
            check_hash_format(hashed)
        except ValueError as exc:
            raise BrokerAccessError(f"{name}: {exc}") from None
        yield f"{name}:{hashed}\n"


@dataclass(frozen=True)
class ServiceSecret:
    """What broker-config does with one service account's secret."""

    secret: str
    new_hash: str | None  # to store, when the secret is new


def service_secret(stored_hash: str | None, known_secret: str | None, rotate: bool,
                   ) -> ServiceSecret:
    """Keep the secret the service already holds if it matches the stored hash, else issue one."""
    if (not rotate and stored_hash is not None and known_secret is not None
            and verify_secret(known_secret, stored_hash)):
        return ServiceSecret(known_secret, None)
    fresh = generate_secret()
    return ServiceSecret(fresh, hash_secret(fresh))
