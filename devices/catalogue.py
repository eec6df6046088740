"""The kinds, listed explicitly in one place; a broken kind fails here, at import of the catalogue."""

from __future__ import annotations

from devices.kind import DeviceKind
from devices.kinds import barn, camera, gateway, speaker, water_meter, water_quality

KINDS: tuple[DeviceKind, ...] = (
    water_meter.KIND,
    water_quality.KIND,
    camera.KIND,
    barn.KIND,
    speaker.KIND,
    gateway.KIND,
)

KIND_BY_NAME: dict[str, DeviceKind] = {kind.name: kind for kind in KINDS}
if len(KIND_BY_NAME) != len(KINDS):
    raise RuntimeError("two device kinds share a name")

KIND_NAMES: tuple[str, ...] = tuple(KIND_BY_NAME)


def kind_named(name: str) -> DeviceKind:
    """The kind with this name; KeyError names the known kinds."""
    try:
        return KIND_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown device kind {name!r}; known: {', '.join(KIND_NAMES)}") from None
