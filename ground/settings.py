"""The settings machinery every process shares: the broker endpoint parsed from its URL, and
loading a settings root from the environment with one-line errors.

Each domain package declares its own section; the entry points compose the root
(`village.settings`) and build it in `main()`, never at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import BaseModel, ValidationError

from ground.validation import field_path

ENV_PREFIX = "VILLAGE_"
Root = TypeVar("Root", bound=BaseModel)


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


@dataclass(frozen=True)
class MqttEndpoint:
    """Where the broker is and how to log in, parsed from `VILLAGE_MQTT_URL`."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    # MQTT v5 unless the URL says `?protocol=3.1.1` (a broker without v5, such as amqtt:
    # no shared subscriptions and no receive maximum, see docs/ingest.md).
    mqtt_v5: bool = True

    def __repr__(self) -> str:  # never show the password
        user = f"{self.username}@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        protocol = "" if self.mqtt_v5 else "?protocol=3.1.1"
        return f"MqttEndpoint({scheme}://{user}{self.host}:{self.port}{protocol})"


MQTT_PROTOCOLS = {"5": True, "3.1.1": False}


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse `mqtt://user:pass@host:port[?protocol=5|3.1.1]` or `mqtts://...` into an endpoint."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError("scheme must be mqtt:// or mqtts://")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"protocol"})
    if unknown:
        raise ValueError(f"unknown URL parameter {unknown[0]!r} (only protocol=5 or 3.1.1)")
    protocol = query.get("protocol", ["5"])
    if len(protocol) != 1 or protocol[0] not in MQTT_PROTOCOLS:
        raise ValueError("protocol must be 5 or 3.1.1")
    if not parts.hostname:
        raise ValueError("a host is required")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("port must be a number from 1 to 65535") from exc
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        mqtt_v5=MQTT_PROTOCOLS[protocol[0]],
    )


def format_mqtt_url(endpoint: MqttEndpoint, username: str, password: str) -> str:
    """The `VILLAGE_MQTT_URL` that logs in to `endpoint` as `username` (parse_mqtt_url's
    inverse, protocol included)."""
    scheme = "mqtts" if endpoint.tls else "mqtt"
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    protocol = "" if endpoint.mqtt_v5 else "?protocol=3.1.1"
    return (f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{host}:"
            f"{endpoint.port}{protocol}")


def known_variables(model: type[BaseModel], prefix: str = ENV_PREFIX) -> set[str]:
    """Every environment variable name the settings read (sections and their fields)."""
    names = set()
    for name, field_info in model.model_fields.items():
        variable = prefix + name.upper()
        names.add(variable)
        annotation = field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= known_variables(annotation, variable + "__")
    return names


def load(root: type[Root], **overrides: object) -> Root:
    """Build a settings root, turning a validation error into one line naming the setting."""
    known = known_variables(root)
    unknown = sorted(name for name in os.environ if name.startswith(ENV_PREFIX) and name not in known)
    if unknown:
        raise SettingsError(f"{unknown[0]}: not a setting (a typo?)")
    try:
        return root(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ENV_PREFIX + field_path(error["loc"], "settings", separator="__").upper()
        raise SettingsError(f"{name}: {error['msg']}") from None
