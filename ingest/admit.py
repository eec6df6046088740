"""Admission: whether a message's device may send it, from a registry snapshot (pure).

The snapshot is a mapping of device id to what ingest needs to know about the device; the
service keeps it fresh (`Committer._refresh_registry` in `ingest.committer`). Nothing here
touches the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from devices.catalogue import KIND_BY_NAME
from devices.decode import Reason, Rejection
from devices.kind import DeviceKind

GATEWAY_KIND = "gateway"


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    """What admission needs to know about one registered device."""

    kind_name: str
    active: bool
    gateway_id: str | None

    @property
    def kind(self) -> DeviceKind | None:
        """The kind from the catalogue (None for a kind this code does not know yet)."""
        return KIND_BY_NAME.get(self.kind_name)


Registry = Mapping[str, RegisteredDevice]


class Admitted(NamedTuple):
    """A device that may send: its kind (None if the catalogue does not know the kind)."""

    device_id: str
    kind: DeviceKind | None


def admit(registry: Registry, device_id: str) -> Admitted | Rejection:
    """Admit a device publishing on its own topics."""
    device = registry.get(device_id)
    if device is None:
        return Rejection(Reason.UNKNOWN_DEVICE, f"device {device_id} is not registered")
    if not device.active:
        return Rejection(Reason.RETIRED_DEVICE, f"device {device_id} is retired")
    return Admitted(device_id, device.kind)


def admit_gateway(registry: Registry, gateway_id: str) -> Admitted | Rejection:
    """Admit a device publishing on a gateway topic: it must be an active gateway."""
    admitted = admit(registry, gateway_id)
    if isinstance(admitted, Rejection):
        return admitted
    kind_name = registry[gateway_id].kind_name
    if kind_name != GATEWAY_KIND:
        return Rejection(
            Reason.NOT_A_GATEWAY, f"device {gateway_id} is a {kind_name}, not a gateway"
        )
    return admitted


def admit_child(registry: Registry, gateway_id: str, child_id: str) -> Admitted | Rejection:
    """Admit a child device carried by a gateway: it must be assigned to that gateway."""
    admitted = admit(registry, child_id)
    if isinstance(admitted, Rejection):
        return admitted
    assigned = registry[child_id].gateway_id
    if assigned != gateway_id:
        where = f"gateway {assigned}" if assigned else "no gateway"
        return Rejection(
            Reason.FOREIGN_DEVICE,
            f"device {child_id} is assigned to {where}, not to {gateway_id}",
        )
    return admitted
