"""The time pass over columns: stopped reporting and area outages for fleets of a million.

The same judgement as `evaluate_tick`, over numpy arrays instead of a Python object per
device: a fleet is a table of categorical codes (kind, place, tags), presence is two
arrays of microseconds, and each rule's selector becomes a boolean mask. Only the devices
whose alert state moves become Python objects (their state, their transition). Pure: no
clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np
import numpy.typing as npt

from alerting.evaluate import Outcome, RuleBook, end_gone_states, expire_events, run
from alerting.model import AlertState, Subject, Transition, fingerprint
from alerting.rules import Rule
from alerting.signals import for_seconds, observe_outage

NEVER = np.iinfo(np.int64).min  # "no time" in a microsecond column
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
Codes = npt.NDArray[np.int32]
Micros = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

PLACES = ("kind", "township", "village", "grid", "site", "gateway")
_INACTIVE, _PENDING, _FIRING = 0, 1, 2
_CODES = {"inactive": _INACTIVE, "pending": _PENDING, "firing": _FIRING}


def micros(ts: datetime | None) -> int:
    """A time as microseconds since the epoch (NEVER for None), exactly."""
    if ts is None:
        return int(NEVER)
    return (ts - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware (UTC) time of a microsecond count."""
    return EPOCH + timedelta(microseconds=int(value))


@dataclass(frozen=True)
class Column:
    """A categorical column: each row's code into `values` (None is a value like any other)."""

    codes: Codes
    values: tuple[str | None, ...]

    @classmethod
    def of(cls, items: Sequence[str | None]) -> Column:
        """Factorise a sequence of labels."""
        index: dict[str | None, int] = {}
        codes = np.fromiter((index.setdefault(item, len(index)) for item in items),
                            dtype=np.int32, count=len(items))
        return cls(codes, tuple(index))

    def equals(self, wanted: str) -> Mask:
        """Rows whose label is `wanted`."""
        if wanted not in self.values:
            return np.zeros(len(self.codes), dtype=bool)
        return self.codes == self.values.index(wanted)


@dataclass(frozen=True)
class Fleet:
    """The registry as columns: device ids, kind and place codes, tag sets."""

    device_ids: Sequence[str]
    columns: Mapping[str, Column]  # kind, township, village, grid, site, gateway
    tag_codes: Codes  # each row's index into `tag_sets`
    tag_sets: tuple[tuple[tuple[str, str], ...], ...]

    @classmethod
    def of(cls, subjects: Iterable[Subject]) -> Fleet:
        """A fleet from subjects (tests and small registries)."""
        rows = list(subjects)
        return cls.of_columns([s.device_id or "" for s in rows],
                              {name: [getattr(s, name) for s in rows] for name in PLACES},
                              [s.tags for s in rows])

    @classmethod
    def of_columns(cls, device_ids: Sequence[str], places: Mapping[str, Sequence[str | None]],
                   tags: Sequence[tuple[tuple[str, str], ...]]) -> Fleet:
        """A fleet from its columns as lists: no object per device."""
        tag_index: dict[tuple[tuple[str, str], ...], int] = {}
        codes = np.fromiter((tag_index.setdefault(t, len(tag_index)) for t in tags),
                            dtype=np.int32, count=len(tags))
        return cls(device_ids, {name: Column.of(places[name]) for name in PLACES}, codes,
                   tuple(tag_index))

    def __len__(self) -> int:
        return len(self.device_ids)

    @cached_property
    def rows(self) -> dict[str, int]:
        """Each device id's row."""
        return {device_id: row for row, device_id in enumerate(self.device_ids)}

    def subject(self, row: int) -> Subject:
        """Row `row` as the subject an alert is about."""
        kind, township, village, grid, site, gateway = (
            self.columns[name].values[self.columns[name].codes[row]] for name in PLACES)
        return Subject(self.device_ids[row], kind, township, village, grid, site, gateway,
                       self.tag_sets[self.tag_codes[row]])

    @cached_property
    def subjects(self) -> Subjects:
        """The rows as subjects by device id, each made when asked for."""
        return Subjects(self)

    def picks(self, rule: Rule) -> Mask:
        """The rows the rule's selector picks (as `applies` decides for one subject)."""
        sel = rule.select
        mask = np.ones(len(self), dtype=bool)
        for name in ("kind", "township", "village", "grid", "site"):
            wanted = getattr(sel, name)
            if wanted is not None:
                mask &= self.columns[name].equals(wanted)
        if sel.devices:
            wanted_ids = set(sel.devices)
            mask &= np.fromiter((d in wanted_ids for d in self.device_ids), dtype=bool,
                                count=len(self))
        if sel.tags:
            fits = np.array([all(dict(tags).get(k) == v for k, v in sel.tags.items())
                             for tags in self.tag_sets], dtype=bool)
            mask &= fits[self.tag_codes]
        return mask


class Subjects(Mapping[str, Subject]):
    """A fleet's devices as the subjects alerts are about: the streaming pass asks for the
    few that reported, so a million need not be a million objects."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def __getitem__(self, device_id: str) -> Subject:
        return self._fleet.subject(self._fleet.rows[device_id])

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._fleet.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._fleet.device_ids)

    def __len__(self) -> int:
        return len(self._fleet)


@dataclass(frozen=True)
class PresenceColumns:
    """Per fleet row, when it was last heard and when it said it went offline (NEVER: not)."""

    last_seen: Micros
    offline_at: Micros


def silence_s(presence: PresenceColumns, now_us: int) -> npt.NDArray[np.float64]:
    """Seconds of silence at `now` per row (inf if never heard), as `observe_stopped` counts."""
    last, off = presence.last_seen, presence.offline_at
    heard = np.where(off == NEVER, last, np.where(last == NEVER, off, np.minimum(last, off)))
    silent = (now_us - heard) / 1_000_000
    return np.where(heard == NEVER, np.inf, silent)


@dataclass
class _RuleStates:
    """One rule's states over the fleet as columns, from the persisted states."""

    code: npt.NDArray[np.int8]
    since: Micros
    last_ts: Micros
    held: dict[int, AlertState]  # row -> the persisted state


def _rule_states(rows: Mapping[str, int], states: Iterable[AlertState], size: int) -> _RuleStates:
    """The states (of one rule) as columns over the fleet's rows."""
    held = {row: state for state in states
            if (row := rows.get(state.device_id or "")) is not None}
    found = _RuleStates(np.zeros(size, dtype=np.int8), np.full(size, NEVER, dtype=np.int64),
                        np.full(size, NEVER, dtype=np.int64), held)
    if held:
        at = np.fromiter(held, dtype=np.int64, count=len(held))
        found.code[at] = [_CODES[state.state] for state in held.values()]
        found.since[at] = [micros(state.active_since) for state in held.values()]
        found.last_ts[at] = [micros(state.last_ts) for state in held.values()]
    return found


def _stopped(rule: Rule, fleet: Fleet, picked: Mask, silent: npt.NDArray[np.float64],
             stale: npt.NDArray[np.float64], held: _RuleStates, now: datetime, now_us: int,
             outcome: Outcome) -> None:
    """Step every picked row's state through one stopped-reporting observation at `now`."""
    limit = np.full(len(fleet), float(rule.condition.for_s)) if rule.condition.for_s else stale
    breach = silent >= limit
    judged = picked & ((held.last_ts == NEVER) | (now_us > held.last_ts))
    code = held.code
    # The condition latches (lifecycle.step): once on, it stays on until it clears; here
    # clearing is exactly not breaching, so `on` is the breach either way. Silence carries
    # its own duration (for_seconds is 0): a breach fires at once, from pending too.
    assert for_seconds(rule) == 0
    turned_off = judged & ~breach & (code != _INACTIVE)
    fires = judged & breach & (code != _FIRING)
    since = np.where(code == _PENDING, held.since, now_us)
    shown = np.where(np.isinf(silent), -1.0, silent)
    rows = np.flatnonzero(turned_off | fires)
    name, metric = rule.name, rule.metric  # once: a rule's metric is a property lookup
    for row, fire, start, value, threshold in zip(
            rows.tolist(), fires[rows].tolist(), since[rows].tolist(), shown[rows].tolist(),
            limit[rows].tolist(), strict=True):
        _record(name, metric, fleet, row, held, fire, start, value, threshold, now, outcome)


def _record(name: str, metric: str | None, fleet: Fleet, row: int, held: _RuleStates,
            fires: bool, since_us: int, value: float, threshold: float, now: datetime,
            outcome: Outcome) -> None:
    subject = fleet.subject(row)
    before = held.held.get(row) or AlertState(fingerprint(name, subject), name,
                                              subject.device_id)
    # New tuples rather than _replace: a first pass may move tens of thousands of states.
    if fires:
        since = from_micros(since_us)
        state = AlertState(before.fingerprint, name, before.device_id, "firing", since,
                           now, value, before.alert_id)
        outcome.transitions.append(Transition(
            state.fingerprint, name, subject, "firing", now, since, value, threshold,
            before.alert_id, metric))
    else:
        state = AlertState(before.fingerprint, name, before.device_id, "inactive", None,
                           now, None, before.alert_id)
        if before.state == "firing":
            outcome.transitions.append(Transition(
                state.fingerprint, name, subject, "resolved", now,
                before.active_since or now, value, threshold, before.alert_id, metric))
            state = state._replace(alert_id=None)
    outcome.states[state.fingerprint] = state


def _outages(book: RuleBook, fleet: Fleet, silent: npt.NDArray[np.float64],
             stale: npt.NDArray[np.float64], states: Mapping[str, AlertState], now: datetime,
             outcome: Outcome) -> None:
    """Each outage rule's areas: silent and total devices counted per area code."""
    quiet = silent >= stale
    for rule in book.of_type("outage"):
        picked = fleet.picks(rule)
        township = fleet.columns["township"]
        if rule.condition.area == "village":
            village = fleet.columns["village"]
            area = township.codes.astype(np.int64) * len(village.values) + village.codes
        else:
            area = township.codes.astype(np.int64)
        totals = np.bincount(area[picked])
        silents = np.bincount(area[picked & quiet], minlength=len(totals))
        for code in np.flatnonzero(totals):
            if rule.condition.area == "village":
                t, v = divmod(int(code), len(village.values))
                subject = Subject(None, None, township.values[t], village.values[v])
            else:
                subject = Subject(None, None, township.values[int(code)], None)
            key = fingerprint(rule.name, subject)
            state = states.get(key) or AlertState(key, rule.name, None)
            obs = observe_outage(rule.condition, int(silents[code]), int(totals[code]), now)
            run(rule, subject, state, [obs], outcome)


def evaluate_tick_columns(
    book: RuleBook,
    fleet: Fleet,
    presence: PresenceColumns,
    stale_after_s: Mapping[str, float],
    states: Mapping[str, AlertState],
    now: datetime,
) -> Outcome:
    """What `evaluate_tick` decides at `now`, computed over columns."""
    outcome = Outcome()
    now_us = micros(now)
    silent = silence_s(presence, now_us)
    kinds = fleet.columns["kind"]
    stale = np.array([stale_after_s.get(k or "", 600.0) for k in kinds.values],
                     dtype=np.float64)[kinds.codes]
    rows = fleet.rows
    stopped = book.of_type("stopped")
    by_rule: dict[str, list[AlertState]] = {rule.name: [] for rule in stopped}
    for state in states.values():
        if state.rule in by_rule:
            by_rule[state.rule].append(state)
    for rule in stopped:
        held = _rule_states(rows, by_rule[rule.name], len(fleet))
        _stopped(rule, fleet, fleet.picks(rule), silent, stale, held, now, now_us, outcome)
    _outages(book, fleet, silent, stale, states, now, outcome)
    end_gone_states(book, rows.__contains__, states, now, outcome)
    expire_events(book, lambda device_id: fleet.subject(rows[device_id])
                  if device_id in rows else None, states, now, outcome)
    return outcome
