"""The device registry's records, filters and refusals, as both doors see them (pure).

The SQL that reads and writes them is `devices.store`; what people may do with them is
`devices.service`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from devices.registry_csv import DeviceRow, RowProblem
from ground.errors import Conflict, Denied, Invalid, NotFound, Refused
from ground.principal import Place

FILTER_COLUMNS = ("kind", "township", "village", "grid", "site", "lifecycle", "gateway_id")


class RegistryError(Refused):
    """A registry request that cannot be done as asked (the message says why)."""


class DeviceNotFound(RegistryError, NotFound):
    """No such device (or pending device)."""


class DeviceDenied(RegistryError, Denied):
    """The principal may not change devices there."""


class DeviceConflict(RegistryError, Conflict):
    """Already registered, already retired, or a gateway still carrying devices."""


class DeviceInvalid(RegistryError, Invalid):
    """A device's fields, a registry file or a filter that the registry's rules refuse."""


class ImportRefused(DeviceInvalid):
    """A registry file with bad rows, none of them imported; `problems` lists every one."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        super().__init__(f"{len(problems)} bad rows; nothing imported")
        self.problems = list(problems)


@dataclass(frozen=True)
class DeviceRecord:
    """A device as the registry holds it."""

    row: DeviceRow
    firmware: str | None
    lifecycle: str
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None
    has_secret: bool

    def as_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (dates as ISO text); never the secret's hash."""
        fields = {**asdict(self.row), **{k: v for k, v in asdict(self).items() if k != "row"}}
        fields["tags"] = dict(self.row.tags)
        return {k: v.isoformat() if isinstance(v, date | datetime) else v
                for k, v in fields.items()}


@dataclass(frozen=True)
class DeviceView:
    """A registered device with its presence, as a list or a page shows it."""

    device_id: str
    kind: str
    name: str | None
    township: str | None
    village: str
    grid: str | None
    site: str | None
    latitude: float | None
    longitude: float | None
    installed_on: date | None
    firmware: str | None
    gateway_id: str | None
    tags: dict[str, Any]
    lifecycle: str
    online: bool
    last_seen: datetime | None
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None

    @property
    def place(self) -> Place:
        """Where the device is, for authorization."""
        return Place(self.township, self.village)


@dataclass(frozen=True)
class DeviceFilter:
    """What a device list asks for (every field optional)."""

    kind: str | None = None
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    site: str | None = None
    lifecycle: str | None = None
    online: bool | None = None
    search: str | None = None  # the start of an id or any part of a name
    firmware: str | None = None


@dataclass(frozen=True)
class ImportResult:
    """What an upsert did."""

    created: int
    updated: int
    unchanged: int
    secrets: list[tuple[str, str]]  # (device_id, secret) issued now: shown once, then gone
    without_secret: list[str]  # devices of this upsert that still have no secret


@dataclass(frozen=True)
class PendingDevice:
    """An unknown device heard in discovery mode, waiting for an operator."""

    device_id: str
    first_seen: datetime | None
    last_seen: datetime | None
    last_topic: str | None
    messages: int | None
