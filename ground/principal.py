"""Who is acting, with what role, over which part of the county (pure).

The API maps a token to a Principal; the service layer (broadcast, alert acknowledgement,
device changes) asks it whether an action on a place is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Roles in increasing power; each may do what the ones below it may."""

    VIEWER = 1  # sees
    CADRE = 2  # sees and acknowledges alerts
    OPERATOR = 3  # also sends broadcasts, silences alerts, edits devices
    ADMIN = 4  # also manages tokens, rules and the registry everywhere

    @property
    def label(self) -> str:
        """How the role is written in the database, the CLI and the API (`operator`)."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Role:
        """The role written `label`; KeyError if there is none."""
        return cls[label.upper()]


@dataclass(frozen=True)
class Place:
    """A place in the hierarchy: county (both None), a township, or a village in it."""

    township: str | None = None
    village: str | None = None

    def label(self) -> str:
        """`township/village`, `township`, or `county`."""
        return "/".join(part for part in (self.township, self.village) if part) or "county"


COUNTY = Place()


@dataclass(frozen=True)
class Principal:
    """An authenticated actor: a person, a token or a service."""

    name: str
    role: Role
    scope: Place = COUNTY

    def covers(self, place: Place) -> bool:
        """Whether `place` lies within this principal's scope."""
        if self.scope.township is not None and place.township != self.scope.township:
            return False
        return self.scope.village is None or place.village == self.scope.village

    def may(self, needed: Role, place: Place) -> bool:
        """Whether this principal has at least `needed` over `place`."""
        return self.role >= needed and self.covers(place)

    def overlaps(self, place: Place) -> bool:
        """Whether this principal's scope and `place` share any ground (for who sees what)."""
        return self.covers(place) or Principal("", self.role, place).covers(self.scope)


SYSTEM = Principal("system", Role.ADMIN)
