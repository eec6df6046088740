"""What a broadcast is: the request an operator or a rule makes, its scope, its states (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NewType, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from devices.models import Priority
from ground import errors
from ground.errors import Denied, Invalid

BroadcastId = NewType("BroadcastId", str)

DEFAULT_EXPIRES_IN_S = 3600
STOP_SUFFIX = "-stop"  # a stop command's id is its broadcast's id plus this


class BroadcastError(Invalid, ValueError):
    """A broadcast request that cannot be carried out (unknown speakers, empty scope...)."""


class BroadcastDenied(Denied, PermissionError):
    """The principal may not broadcast (or cancel) where the request asks."""


class NotFound(errors.NotFound, LookupError):
    """No such broadcast or schedule (or none the principal may see)."""


class ScopeKind(StrEnum):
    """Which speakers a broadcast reaches."""

    SPEAKERS = "speakers"
    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY = "county"
    GROUP = "group"


class Scope(BaseModel):
    """A broadcast's target: listed speakers, a village, a township, the county or a group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ScopeKind
    speakers: tuple[str, ...] = ()
    township: str | None = None
    village: str | None = None
    group: str | None = None

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Self:
        wanted = _SCOPE_FIELDS[self.kind]
        given = {name for name in ("speakers", "township", "village", "group")
                 if getattr(self, name)}
        if given != wanted:
            needed = ", ".join(sorted(wanted)) or "nothing else"
            raise ValueError(f"a {self.kind.value} scope takes {needed}")
        return self

    @classmethod
    def county(cls) -> Scope:
        """Every speaker of the county."""
        return cls(kind=ScopeKind.COUNTY)

    @classmethod
    def of_township(cls, township: str) -> Scope:
        """Every speaker of a township."""
        return cls(kind=ScopeKind.TOWNSHIP, township=township)

    @classmethod
    def of_village(cls, township: str, village: str) -> Scope:
        """Every speaker of a village."""
        return cls(kind=ScopeKind.VILLAGE, township=township, village=village)

    @classmethod
    def of_speakers(cls, *device_ids: str) -> Scope:
        """The listed speakers."""
        return cls(kind=ScopeKind.SPEAKERS, speakers=tuple(device_ids))

    @classmethod
    def of_group(cls, name: str) -> Scope:
        """The speakers of a named group."""
        return cls(kind=ScopeKind.GROUP, group=name)

    def label(self) -> str:
        """A short human description, e.g. `township Dongguan` or `3 speakers`."""
        labels = {
            ScopeKind.COUNTY: lambda: "county",
            ScopeKind.TOWNSHIP: lambda: f"township {self.township}",
            ScopeKind.VILLAGE: lambda: f"village {self.township}/{self.village}",
            ScopeKind.SPEAKERS: lambda: f"{len(self.speakers)} speaker(s)",
            ScopeKind.GROUP: lambda: f"group {self.group}",
        }
        return labels[self.kind]()


_SCOPE_FIELDS: dict[ScopeKind, set[str]] = {
    ScopeKind.SPEAKERS: {"speakers"},
    ScopeKind.VILLAGE: {"township", "village"},
    ScopeKind.TOWNSHIP: {"township"},
    ScopeKind.COUNTY: set(),
    ScopeKind.GROUP: {"group"},
}


class BroadcastRequest(BaseModel):
    """What to play, how urgently, for how long, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Scope
    text: str | None = Field(None, min_length=1, max_length=4000)
    audio_url: str | None = Field(None, min_length=1, max_length=2048,
                                  pattern=r"^(https?|rtsp)://")
    priority: Priority = "normal"
    volume_pct: int | None = Field(None, ge=0, le=100)
    repeat: int = Field(1, ge=1, le=100)
    expires_at: AwareDatetime | None = None
    expires_in_s: int | None = Field(None, ge=1, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _one_content_one_expiry(self) -> Self:
        if (self.text is None) == (self.audio_url is None):
            raise ValueError("give either text or audio_url")
        if self.expires_at is not None and self.expires_in_s is not None:
            raise ValueError("give expires_at or expires_in_s, not both")
        return self

    def expiry(self, now: datetime) -> datetime:
        """When this broadcast stops being worth playing, if sent at `now`."""
        if self.expires_at is not None:
            return self.expires_at
        return now + timedelta(seconds=self.expires_in_s or DEFAULT_EXPIRES_IN_S)


class DeliveryState(StrEnum):
    """Where one speaker's copy of a broadcast is."""

    QUEUED = "queued"  # recorded, not yet handled by the delivery daemon
    HELD = "held"  # not sent: the speaker is busy with a higher priority
    OFFLINE = "offline"  # published into the broker's queue; resent when it comes back
    SENT = "sent"  # published to an online speaker, no answer yet (retried)
    ACCEPTED = "accepted"
    DONE = "done"
    REJECTED = "rejected"
    FAILED = "failed"
    NO_ANSWER = "no_answer"  # sent to an online speaker, never answered before expiry
    EXPIRED = "expired"  # not confirmed; offline or held when it expired
    CANCELLED = "cancelled"


CONFIRMED = frozenset({DeliveryState.ACCEPTED, DeliveryState.DONE})
FINAL = frozenset({DeliveryState.DONE, DeliveryState.REJECTED, DeliveryState.FAILED,
                   DeliveryState.NO_ANSWER, DeliveryState.EXPIRED, DeliveryState.CANCELLED})


@dataclass(frozen=True, slots=True)
class Speaker:
    """A speaker as the registry knows it."""

    device_id: str
    township: str | None
    village: str
    active: bool = True


def stop_command_id(broadcast_id: str) -> str:
    """The id of the stop command that cancels a broadcast."""
    return broadcast_id + STOP_SUFFIX
