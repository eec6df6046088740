"""One question: is this alert muted now? Silences, maintenance windows, inhibition (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from alerting.routing import InhibitRule, matches


@dataclass(frozen=True)
class Silence:
    """Mutes alerts whose labels carry every matcher, between two instants."""

    id: int
    matchers: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    kind: str = "silence"

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        """Whether this silence is in force and matches the labels."""
        return self.starts_at <= now < self.ends_at and matches(self.matchers, labels)


def inhibited(
    labels: Mapping[str, str], firing: Iterable[Mapping[str, str]], rules: Iterable[InhibitRule]
) -> bool:
    """Whether a firing source alert mutes this one (same `equal` labels, not itself)."""
    for rule in rules:
        if not matches(rule.target, labels):
            continue
        for source in firing:
            if source is labels or not matches(rule.source, source):
                continue
            if all(labels.get(name) is not None and labels.get(name) == source.get(name)
                   for name in rule.equal):
                return True
    return False


def muted(
    labels: Mapping[str, str], now: datetime, silences: Iterable[Silence],
    firing: Iterable[Mapping[str, str]], inhibit: Iterable[InhibitRule],
) -> str | None:
    """Why the alert is muted ('silence', 'maintenance', 'inhibited'), or None."""
    for silence in silences:
        if silence.mutes(labels, now):
            return silence.kind
    return "inhibited" if inhibited(labels, firing, inhibit) else None
