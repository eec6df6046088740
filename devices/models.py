"""Typed payloads of the contract: telemetry per kind, events, status, commands, acks.

Telemetry models are generated from each kind's metric table, so the range checks that
ingest applies and the models simulators build payloads with cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from devices.catalogue import KINDS
from devices.contract import Priority
from devices.kind import DeviceKind


class TelemetryBase(BaseModel):
    """One reading set; every field but `ts` and `seq` is a metric."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ts: AwareDatetime | None = None
    seq: int | None = Field(None, ge=0)

    def to_payload(self) -> dict[str, Any]:
        """The JSON object a device publishes for this reading set."""
        body: dict[str, Any] = self.model_dump(exclude_none=True)
        if self.ts is not None:
            body["ts"] = self.ts.isoformat()
        return body


def _telemetry_model(kind: DeviceKind) -> type[TelemetryBase]:
    fields: dict[str, Any] = {
        # Excluded from every dump, so it is never taken for a metric or sent in a payload.
        "kind": (Literal[kind.name], Field(default=kind.name, exclude=True))
    }
    for spec in kind.metrics:
        annotation: Any = bool | None if spec.boolean else float | None
        minimum, maximum = (None, None) if spec.boolean else (spec.minimum, spec.maximum)
        fields[spec.name] = (
            annotation,
            Field(default=None, description=f"{spec.description} ({spec.unit})",
                  ge=minimum, le=maximum),
        )
    model_name = "".join(part.title() for part in kind.name.split("_")) + "Telemetry"
    return create_model(model_name, __base__=TelemetryBase, **fields)


TELEMETRY_MODELS: dict[str, type[TelemetryBase]] = {
    kind.name: _telemetry_model(kind) for kind in KINDS
}


def telemetry_model(kind_name: str) -> type[TelemetryBase]:
    """The generated telemetry model of a kind."""
    return TELEMETRY_MODELS[kind_name]


class Event(BaseModel):
    """A discrete event from a device; unknown types are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ts: AwareDatetime | None = None
    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    severity: Literal["info", "warning", "minor", "major", "critical"] = "info"
    snapshot_url: str | None = Field(None, max_length=2048)
    detail: dict[str, Any] | None = None


class Status(BaseModel):
    """The retained status object a device publishes (or `online`/`offline` alone)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    state: Literal["online", "offline"]
    fw: str | None = Field(None, max_length=64)
    ip: str | None = Field(None, max_length=64)


class CommandBase(BaseModel):
    """Fields every platform-to-device command carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    expires_at: AwareDatetime | None = None

    def to_payload(self) -> bytes:
        """The JSON bytes published on the device's cmd topic."""
        return orjson.dumps(self.model_dump(mode="json"))


class PlayCommand(CommandBase):
    """Play text (spoken by the speaker's TTS) or an audio URL."""

    op: Literal["play"] = "play"
    priority: Priority = "normal"
    text: str | None = Field(None, max_length=4000)
    audio_url: str | None = Field(None, max_length=2048)
    volume_pct: int | None = Field(None, ge=0, le=100)
    repeat: int = Field(1, ge=1, le=100)


class StopCommand(CommandBase):
    """Stop what is playing (the broadcast's id in `target_id`, or anything if absent)."""

    op: Literal["stop"] = "stop"
    target_id: str | None = Field(None, max_length=64)


class SetVolumeCommand(CommandBase):
    """Set the speaker's output volume."""

    op: Literal["set_volume"] = "set_volume"
    volume_pct: int = Field(ge=0, le=100)


class SetValveCommand(CommandBase):
    """Open or close a water meter's valve."""

    op: Literal["set_valve"] = "set_valve"
    open: bool


Command = Annotated[
    PlayCommand | StopCommand | SetVolumeCommand | SetValveCommand, Field(discriminator="op")
]


class CommandAck(BaseModel):
    """A device's answer to a command."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(min_length=1, max_length=64)
    result: Literal["accepted", "done", "rejected", "failed"]
    ts: datetime | None = None
    reason: str | None = Field(None, max_length=500)
