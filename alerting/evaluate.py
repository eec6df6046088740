"""Rule evaluation: rules, samples or presence, previous states and `now` in; new states
and transitions out. Pure: no clock, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerting.lifecycle import step
from alerting.model import AlertState, Observation, Subject, Transition, fingerprint
from alerting.rules import Rule
from alerting.signals import (
    STREAM_OBSERVERS,
    Series,
    for_seconds,
    lookback,
    needed_metrics,
    observe_event_expiry,
    observe_night_flow,
    observe_outage,
    observe_stopped,
)


@dataclass
class Outcome:
    """What an evaluation pass changed."""

    states: dict[str, AlertState] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        """Fold another pass's changes into this one, in order."""
        self.states.update(other.states)
        self.transitions.extend(other.transitions)


@dataclass(frozen=True)
class Presence:
    """When a device was last heard, and when it said it went offline (if it did)."""

    last_seen: datetime | None
    offline_at: datetime | None = None


def applies(rule: Rule, subject: Subject) -> bool:
    """Whether the rule's selector picks this device."""
    sel = rule.select
    for wanted, have in ((sel.kind, subject.kind), (sel.township, subject.township),
                         (sel.village, subject.village), (sel.grid, subject.grid),
                         (sel.site, subject.site)):
        if wanted is not None and wanted != have:
            return False
    if sel.devices and subject.device_id not in sel.devices:
        return False
    tags = dict(subject.tags)
    return all(tags.get(key) == value for key, value in sel.tags.items())


class RuleBook:
    """The active rules, indexed by kind and condition type for fast matching."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self.by_name = {rule.name: rule for rule in self.rules}
        self._by_kind: dict[str | None, list[Rule]] = {}
        for rule in self.rules:
            self._by_kind.setdefault(rule.select.kind, []).append(rule)
        # Devices alike in kind, place and tags get the same rules: remember the answer.
        self._by_device = any(rule.select.devices for rule in self.rules)
        self._picked: dict[tuple[object, ...], list[Rule]] = {}
        # What each streaming rule reads and how far back, worked out once.
        self.reads: dict[str, tuple[tuple[str, ...], timedelta]] = {
            rule.name: (needed_metrics(rule), lookback(rule)) for rule in self.rules}

    def for_subject(self, subject: Subject, types: Iterable[str]) -> list[Rule]:
        """The rules of these condition types that pick this device."""
        wanted = tuple(types)
        key = (subject.kind, subject.township, subject.village, subject.grid, subject.site,
               subject.tags, subject.device_id if self._by_device else None, wanted)
        picked = self._picked.get(key)
        if picked is None:
            candidates = self._by_kind.get(subject.kind, []) + self._by_kind.get(None, [])
            picked = [r for r in candidates if r.condition_type in wanted and applies(r, subject)]
            self._picked[key] = picked
        return picked

    def of_type(self, condition_type: str) -> list[Rule]:
        """Every rule with this condition type."""
        return [rule for rule in self.rules if rule.condition_type == condition_type]


def _state(states: Mapping[str, AlertState], rule: Rule, subject: Subject) -> AlertState:
    key = fingerprint(rule.name, subject)
    return states.get(key) or AlertState(key, rule.name, subject.device_id)


def run(
    rule: Rule, subject: Subject, state: AlertState, observations: Iterable[Observation],
    outcome: Outcome, keep_time: bool = False,
) -> AlertState:
    """Step one state through observations, recording transitions into `outcome`.

    The state is recorded only when its lifecycle moved (state, start, alert): the machine
    is deterministic, so judging the same samples again from the recorded state gives the
    same answers, and a quiet pass over many devices writes nothing. With `keep_time` the
    newest judged time is recorded too (events: it is when the last one came).
    """
    hold = for_seconds(rule)
    first = state
    judged = state.last_ts
    for obs in observations:
        if judged is not None and obs.ts <= judged:
            continue  # judged already
        judged = obs.ts
        if state.state == "inactive" and not obs.breach:
            continue  # the common quiet sample: nothing moves but the time judged
        before = state
        state, moved = step(state._replace(last_ts=judged), obs, hold)
        if moved is not None:
            started = state.active_since if moved == "firing" else before.active_since
            outcome.transitions.append(Transition(
                state.fingerprint, rule.name, subject, moved, obs.ts, started or obs.ts,  # type: ignore[arg-type]
                obs.value, obs.threshold, before.alert_id, rule.metric,
            ))
            if moved == "resolved":
                state = state._replace(alert_id=None)
    if judged != state.last_ts:
        state = state._replace(last_ts=judged)
    if (state.state, state.active_since, state.alert_id) != (
            first.state, first.active_since, first.alert_id) or (keep_time and state != first):
        outcome.states[state.fingerprint] = state
    return state


STREAM_TYPES = tuple(STREAM_OBSERVERS)


def evaluate_stream(
    book: RuleBook,
    subjects: Mapping[str, Subject],
    series: Mapping[str, Series],
    states: Mapping[str, AlertState],
) -> Outcome:
    """Judge new samples (each device's series, with lookback) against streaming rules."""
    outcome = Outcome()
    for device_id, device_series in series.items():
        subject = subjects.get(device_id)
        if subject is None:
            continue  # not in the registry: ingest keeps such rows out
        for rule in book.for_subject(subject, STREAM_TYPES):
            if not any(device_series.get(m) for m in book.reads[rule.name][0]):
                continue
            state = _state(states, rule, subject)
            observations = STREAM_OBSERVERS[rule.condition_type](rule, device_series, state.last_ts)
            run(rule, subject, state, observations, outcome)
    return outcome


def evaluate_events(
    book: RuleBook,
    subjects: Mapping[str, Subject],
    events: Mapping[str, Sequence[tuple[datetime, str]]],
    states: Mapping[str, AlertState],
) -> Outcome:
    """Turn device events of the rules' types into alerts at the events' own time."""
    outcome = Outcome()
    for device_id, device_events in events.items():
        subject = subjects.get(device_id)
        if subject is None:
            continue
        for rule in book.for_subject(subject, ("event",)):
            state = _state(states, rule, subject)
            observations = [Observation(ts, 1.0, True, False, None)
                            for ts, kind in sorted(device_events) if kind in rule.condition.types]
            run(rule, subject, state, observations, outcome, keep_time=True)
    return outcome


def evaluate_tick(
    book: RuleBook,
    subjects: Mapping[str, Subject],
    presence: Mapping[str, Presence],
    stale_after_s: Mapping[str, float],
    states: Mapping[str, AlertState],
    now: datetime,
) -> Outcome:
    """Conditions of time at `now`: stopped reporting, area outages, events gone quiet.

    One object per device: the plain statement of the time pass, which the service runs
    over columns (`alerting.columnar`); the tests require both to decide alike.
    """
    outcome = Outcome()
    outages = book.of_type("outage")
    areas: dict[tuple[str, Subject], list[int]] = {}  # (rule, area) -> [silent, total]
    for device_id, subject in subjects.items():
        seen = presence.get(device_id, Presence(None))
        for rule in book.for_subject(subject, ("stopped",)):
            silence = rule.condition.for_s or stale_after_s.get(subject.kind or "", 600.0)
            obs = observe_stopped(seen.last_seen, seen.offline_at, silence, now)
            run(rule, subject, _state(states, rule, subject), [obs], outcome)
        for rule in outages:
            if not applies(rule, subject):
                continue
            limit = stale_after_s.get(subject.kind or "", 600.0)
            counts = areas.setdefault((rule.name, _area(subject, rule.condition.area)), [0, 0])
            counts[0] += observe_stopped(seen.last_seen, seen.offline_at, limit, now).breach
            counts[1] += 1
    end_gone_states(book, subjects.__contains__, states, now, outcome)
    by_name = {rule.name: rule for rule in outages}
    for (name, area), (silent, total) in areas.items():
        rule = by_name[name]
        obs = observe_outage(rule.condition, silent, total, now)
        run(rule, area, _state(states, rule, area), [obs], outcome)
    expire_events(book, subjects.get, states, now, outcome)
    return outcome


def end_gone_states(book: RuleBook, known: Callable[[str], bool],
                    states: Mapping[str, AlertState], now: datetime, outcome: Outcome) -> None:
    """End the open alerts of devices no longer in the registry."""
    for state in states.values():
        gone = state.device_id is not None and not known(state.device_id)
        if gone and state.state != "inactive" and state.rule in book.by_name:
            # retired (or deleted): nothing will ever clear it, so it ends here
            run(book.by_name[state.rule], Subject(state.device_id, None, None, None), state,
                [Observation(now, 0.0, False, True, None)], outcome)


def expire_events(book: RuleBook, subject_of: Callable[[str], Subject | None],
                  states: Mapping[str, AlertState], now: datetime, outcome: Outcome) -> None:
    """Resolve event alerts whose events stopped coming for the rule's `resolve_after`."""
    rules = {rule.name: rule for rule in book.of_type("event")}
    for state in states.values():
        rule = rules.get(state.rule)
        if rule is None or state.state != "firing":
            continue
        device = subject_of(state.device_id or "")
        expiry = observe_event_expiry(state.last_ts, rule.condition.resolve_after_s, now)
        if device is not None and expiry is not None:
            run(rule, device, state, [expiry], outcome)


def _area(subject: Subject, level: str) -> Subject:
    """The township (or village) a device is in, as an alert subject."""
    village = subject.village if level == "village" else None
    return Subject(None, None, subject.township, village)


def evaluate_night_flow(
    book: RuleBook,
    areas: Mapping[str, Mapping[Subject, Sequence[tuple[datetime, float]]]],
    states: Mapping[str, AlertState],
) -> Outcome:
    """Each area's new nights against its baseline (areas keyed by the rule's area level)."""
    outcome = Outcome()
    for rule in book.of_type("night_flow"):
        for subject, nights in areas.get(rule.condition.area, {}).items():
            state = _state(states, rule, subject)
            run(rule, subject, state, observe_night_flow(rule.condition, nights, state.last_ts),
                outcome)
    return outcome
