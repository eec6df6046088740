"""Rules as data: strict YAML models, every error naming the rule and the field (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from devices.catalogue import KIND_BY_NAME
from ground.validation import field_path, first_error

Severity = Literal["info", "minor", "major", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "minor", "major", "critical")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


# What a rule does to the valve of the meter it alerts on: nothing, close it at once, or
# ask the on-duty person to confirm from the notification's link.
CloseValve = Literal["off", "now", "confirm"]


class RuleError(ValueError):
    """A rule file that cannot be used; the message names the rule and the field."""


def parse_duration(value: object) -> float:
    """Seconds from `90`, `"30s"`, `"10m"`, `"2h"` or `"1d"`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use 30s, 10m, 2h, 1d)")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written as 90, 30s, 10m, 2h or 1d."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """Levels a value is judged against, with hysteresis: it clears at its own level."""

    above: float | None = None
    below: float | None = None
    outside: tuple[float, float] | None = None
    clear_below: float | None = None
    clear_above: float | None = None
    clear_inside: tuple[float, float] | None = None
    for_s: Duration = Field(0, alias="for")

    @model_validator(mode="after")
    def _one_level(self) -> Limits:
        given = [n for n in ("above", "below", "outside") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of above, below, outside")
        if self.outside is not None and self.outside[0] >= self.outside[1]:
            raise ValueError("outside: the low bound must be below the high bound")
        if self.above is not None and self.clear_below is not None and self.clear_below > self.above:
            raise ValueError("clear_below must not be above `above`")
        if self.below is not None and self.clear_above is not None and self.clear_above < self.below:
            raise ValueError("clear_above must not be below `below`")
        return self

    def breach(self, value: float) -> bool:
        """Whether the value crosses the alerting level."""
        if self.above is not None:
            return value > self.above
        if self.below is not None:
            return value < self.below
        low, high = self.outside  # type: ignore[misc]
        return value < low or value > high

    def clear(self, value: float) -> bool:
        """Whether the value is back at the clearing level (the level itself by default)."""
        if self.above is not None:
            return value <= (self.clear_below if self.clear_below is not None else self.above)
        if self.below is not None:
            return value >= (self.clear_above if self.clear_above is not None else self.below)
        low, high = self.clear_inside or self.outside  # type: ignore[misc]
        return low <= value <= high

    @property
    def threshold(self) -> float:
        """The level shown in messages (the nearer bound for `outside`)."""
        if self.outside is not None:
            return self.outside[0]
        return self.above if self.above is not None else self.below  # type: ignore[return-value]


class Threshold(Limits):
    """A metric's value above, below or outside a range."""

    metric: str | None = None


class Rate(Limits):
    """A metric's change per hour over a window."""

    metric: str | None = None
    window_s: Duration = Field(3600, alias="window")


class Consumption(Limits):
    """Use from a cumulative register over a window (a register going back is no use)."""

    metric: str = "total_m3"
    window_s: Duration = Field(3600, alias="window")


class Baseline(_Strict):
    """A metric above its own recent level: the median of its daily means over `days`."""

    metric: str | None = None
    rise_pct: float = Field(30, gt=0)
    days: int = Field(7, ge=2, le=60)
    min_days: int = Field(3, ge=1, description="fewer days of history: not judged")
    for_s: Duration = Field(0, alias="for")


class Thi(Limits):
    """The barn temperature-humidity index from temperature_c and humidity_pct."""


class HouseholdLeak(_Strict):
    """No hour without use in the last `hours` hours (a running toilet, a dripping tap)."""

    hours: int = Field(24, ge=2, le=24 * 7)
    min_use_m3: float = Field(0.0, ge=0, description="an hour at or below this counts as zero")
    metric: str = "total_m3"


class Stuck(_Strict):
    """A value that has not changed for a duration: a frozen probe."""

    metric: str | None = None
    for_s: Duration = Field(alias="for")
    tolerance: float = Field(0.0, ge=0)


class Stopped(_Strict):
    """No message for a duration; by default the kind's stale_after_s."""

    for_s: Duration | None = Field(None, alias="for")


class EventCondition(_Strict):
    """Device events of these types, open until `resolve_after` passes without another."""

    types: tuple[str, ...] = Field(min_length=1)
    resolve_after_s: Duration = Field(3600, alias="resolve_after")


class NightFlow(_Strict):
    """An area's minimum night flow (02:00-04:00 Asia/Shanghai) against its own baseline."""

    area: Literal["village", "grid", "township"] = "village"
    rise_pct: float = Field(30, gt=0)
    baseline_nights: int = Field(7, ge=2, le=60)
    min_flow_m3h: float = Field(0.05, ge=0, description="nights below this never alert")


class Outage(_Strict):
    """Many of an area's devices silent at once (power or network): one alert for the area."""

    area: Literal["township", "village"] = "township"
    min_share: float = Field(0.5, gt=0, le=1, description="the silent share that is an outage")
    min_devices: int = Field(10, ge=1, description="fewer silent devices are never an outage")


CONDITION_TYPES: dict[str, type[_Strict]] = {
    "threshold": Threshold,
    "rate": Rate,
    "consumption": Consumption,
    "thi": Thi,
    "baseline": Baseline,
    "household_leak": HouseholdLeak,
    "stuck": Stuck,
    "stopped": Stopped,
    "event": EventCondition,
    "night_flow": NightFlow,
    "outage": Outage,
}


class Selector(_Strict):
    """Which devices a rule watches; every given field must match."""

    kind: str | None = None
    metric: str | None = None
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    site: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    devices: tuple[str, ...] = ()

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str | None) -> str | None:
        if value is not None and value not in KIND_BY_NAME:
            raise ValueError(f"unknown kind {value!r}; known: {', '.join(KIND_BY_NAME)}")
        return value


class RuleModel(_Strict):
    """One rule as written in YAML."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")
    enabled: bool = True
    severity: Severity
    summary_zh: str = Field(min_length=1)
    summary_en: str = Field(min_length=1)
    select: Selector = Field(default_factory=Selector)
    condition: dict[str, Any]
    labels: dict[str, str] = Field(default_factory=dict)
    close_valve: CloseValve = "off"


@dataclass(frozen=True)
class Rule:
    """A validated rule: its selector and one typed condition."""

    name: str
    severity: str
    summary_zh: str
    summary_en: str
    select: Selector
    condition_type: str
    condition: Any
    labels: tuple[tuple[str, str], ...] = ()
    enabled: bool = True
    close_valve: CloseValve = "off"

    @property
    def metric(self) -> str | None:
        """The metric the condition reads (its own, else the selector's)."""
        return getattr(self.condition, "metric", None) or self.select.metric

    def summary(self, language: str) -> str:
        """The rule's words in a language (zh or en)."""
        return self.summary_zh if language == "zh" else self.summary_en


def build_rule(raw: object, position: int) -> Rule:
    """Validate one YAML rule; RuleError names the rule and the field."""
    name = raw.get("name", f"#{position + 1}") if isinstance(raw, dict) else f"#{position + 1}"
    try:
        model = RuleModel.model_validate(raw)
    except ValidationError as exc:
        raise RuleError(f"rule {name}: {first_error(exc, 'rule')}") from None
    if len(model.condition) != 1:
        raise RuleError(
            f"rule {name}: condition: give exactly one of {', '.join(CONDITION_TYPES)}"
        )
    (condition_type, body), = model.condition.items()
    model_type = CONDITION_TYPES.get(condition_type)
    if model_type is None:
        raise RuleError(
            f"rule {name}: condition.{condition_type}: unknown condition;"
            f" known: {', '.join(CONDITION_TYPES)}"
        )
    try:
        condition = model_type.model_validate(body or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = field_path(["condition." + condition_type, *error["loc"]], "rule")
        raise RuleError(f"rule {name}: {where}: {error['msg']}") from None
    rule = Rule(
        name=model.name, severity=model.severity, summary_zh=model.summary_zh,
        summary_en=model.summary_en, select=model.select, condition_type=condition_type,
        condition=condition, labels=tuple(sorted(model.labels.items())), enabled=model.enabled,
        close_valve=model.close_valve,
    )
    _check_metric(rule)
    _check_close_valve(rule)
    return rule


# Alerts whose device may have its valve closed by the rule: leaks and bursts of a meter.
VALVE_CONDITIONS = ("household_leak", "consumption", "event")
VALVE_EVENTS = frozenset({"leak", "burst"})


def leak_or_burst(rule: Rule) -> bool:
    """Whether the rule's alerts are a meter's leak or burst (whose valve one may close)."""
    leak_events = rule.condition_type != "event" or set(rule.condition.types) <= VALVE_EVENTS
    return (rule.select.kind == "water_meter" and rule.condition_type in VALVE_CONDITIONS
            and leak_events)


def _check_close_valve(rule: Rule) -> None:
    if rule.close_valve != "off" and not leak_or_burst(rule):
        raise RuleError(f"rule {rule.name}: close_valve: only for water_meter leak and burst"
                        " rules (household_leak, consumption, or events leak/burst)")


def _check_metric(rule: Rule) -> None:
    kind = KIND_BY_NAME.get(rule.select.kind or "")
    metric = rule.metric
    if kind is None or metric is None:
        if rule.condition_type in ("threshold", "rate", "stuck", "baseline") and metric is None:
            raise RuleError(f"rule {rule.name}: select.metric: this condition needs a metric")
        return
    if kind.metric(metric) is None:
        raise RuleError(
            f"rule {rule.name}: select.metric: kind {kind.name} has no metric {metric!r}"
        )


def parse_rules(text: str, source: str) -> list[Rule]:
    """Every rule of one YAML document (`rules: [...]`), enabled or not."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or set(document) != {"rules"}:
        raise RuleError(f"{source}: the file must hold one key, `rules`, with a list")
    raw_rules = document["rules"] or []
    if not isinstance(raw_rules, list):
        raise RuleError(f"{source}: rules: must be a list")
    rules = []
    for position, raw in enumerate(raw_rules):
        try:
            rules.append(build_rule(raw, position))
        except RuleError as exc:
            raise RuleError(f"{source}: {exc}") from None
    names = [rule.name for rule in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuleError(f"{source}: rule {duplicates[0]}: name: defined twice")
    return rules


