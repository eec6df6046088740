"""Scenario files: which faults start where and when (strict YAML, pure resolution).

    start: 2026-11-22T08:00:00+08:00    # optional: offsets count from here (default: the run's start)
    faults:
      - fault: leak
        kind: water_meter                # filters, all optional: kind, township, village, devices
        township: 赵丰镇
        count: 20                        # or share: 0.01; default every matching device
        at: 2h                           # offset (30s, 15m, 2h, 1d) or an RFC 3339 time
        duration: 6h                     # optional: open-ended without it
        ramp: 0s                         # optional: how fast a growing fault reaches full size
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated

import yaml
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from devices.catalogue import KIND_NAMES
from ground.validation import first_error
from simulators.device import SimDevice
from simulators.faults import FaultWindow, faults_of

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the field."""


def _duration(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    return value  # pydantic reports what is wrong with it


Duration = Annotated[timedelta, BeforeValidator(_duration), Field(ge=timedelta(0))]


_AT_SHAPE = "an offset (30s, 15m, 2h, 1d) or an RFC 3339 time with its UTC offset"


def _at(value: object) -> object:
    if isinstance(value, str) and _DURATION.match(value) or isinstance(value, int | float):
        return _duration(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be {_AT_SHAPE}") from None
    return _aware(value)


def _aware(value: object) -> object:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("a time needs its UTC offset, e.g. 2026-11-22T08:00:00+08:00")
    return value


class FaultEntry(BaseModel):
    """One line of a scenario: a fault, the devices it hits, when and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: str
    kind: str | None = None
    township: str | None = None
    village: str | None = None
    devices: list[str] | None = None
    count: int | None = Field(None, ge=1)
    share: float | None = Field(None, gt=0, le=1)
    at: Annotated[Duration | AwareDatetime, BeforeValidator(_at)] = timedelta(0)
    duration: Duration | None = None
    ramp: Duration | None = None


class Scenario(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Annotated[AwareDatetime | None, BeforeValidator(_aware)] = None
    faults: list[FaultEntry] = Field(default_factory=list)


def parse_scenario(text: str) -> Scenario:
    """Parse and validate a scenario; ScenarioError names the first bad field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not YAML: {exc}") from None
    try:
        scenario = Scenario.model_validate(document if document is not None else {})
    except ValidationError as exc:
        raise ScenarioError(first_error(exc, 'scenario', brackets=True)) from None
    for index, entry in enumerate(scenario.faults):
        if entry.kind is not None and entry.kind not in KIND_NAMES:
            raise ScenarioError(f"faults[{index}].kind: unknown kind {entry.kind!r}"
                                f" (known: {', '.join(KIND_NAMES)})")
        if entry.count is not None and entry.share is not None:
            raise ScenarioError(f"faults[{index}]: give count or share, not both")
    return scenario


def resolve(scenario: Scenario, devices: Sequence[SimDevice], start: datetime,
            seed: int = 0) -> list[tuple[str, FaultWindow]]:
    """The (device id, fault window) pairs a scenario means for a population (deterministic)."""
    origin = scenario.start or start
    by_id = {device.device_id: device for device in devices}
    pairs: list[tuple[str, FaultWindow]] = []
    for index, entry in enumerate(scenario.faults):
        where = f"faults[{index}]"
        if entry.devices is not None:
            missing = [d for d in entry.devices if d not in by_id]
            if missing:
                raise ScenarioError(f"{where}.devices: not in the population: {missing[0]}")
        matched = [d for d in devices
                   if (entry.devices is None or d.device_id in entry.devices)
                   and (entry.kind is None or d.kind == entry.kind)
                   and (entry.township is None or d.township == entry.township)
                   and (entry.village is None or d.village == entry.village)]
        if not matched:
            raise ScenarioError(f"{where}: no device matches its filters")
        for device in matched:
            if entry.fault not in faults_of(device.kind):
                raise ScenarioError(f"{where}.fault: a {device.kind} has no fault {entry.fault!r}"
                                    f" (known: {', '.join(faults_of(device.kind))})")
        wanted = (entry.count if entry.count is not None
                  else max(1, round(entry.share * len(matched))) if entry.share is not None
                  else len(matched))
        if wanted > len(matched):
            raise ScenarioError(f"{where}.count: {wanted} asked, {len(matched)} devices match")
        chosen = random.Random(f"scenario/{seed}/{index}").sample(matched, wanted)
        begin = entry.at if isinstance(entry.at, datetime) else origin + entry.at
        end = begin + entry.duration if entry.duration is not None else None
        ramp = entry.ramp.total_seconds() if entry.ramp is not None else None
        pairs.extend((device.device_id, FaultWindow(entry.fault, begin, end, ramp))
                     for device in sorted(chosen, key=lambda d: d.device_id))
    return pairs
