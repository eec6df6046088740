"""Observations of each condition type from a device's samples (pure, table-dispatched).

Each observer judges only samples newer than `after` (what the state already judged), but
may look back into older samples for windows: late data is judged at its own time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from statistics import median

from alerting.model import Observation, Sample
from alerting.rules import (
    Baseline,
    Consumption,
    HouseholdLeak,
    Limits,
    NightFlow,
    Outage,
    Rate,
    Rule,
    Stuck,
    Thi,
    Threshold,
)

Series = dict[str, Sequence[Sample]]
THI_PAIRING = timedelta(minutes=15)  # temperature and humidity further apart are not paired


def thi(temperature_c: float, humidity_pct: float) -> float:
    """The temperature-humidity index (domain.md): above 72 mild, 79 moderate, 89 severe."""
    t = 1.8 * temperature_c + 32
    return t - (0.55 - 0.0055 * humidity_pct) * (1.8 * temperature_c - 26)


def _new(samples: Sequence[Sample], after: datetime | None) -> Sequence[Sample]:
    if after is None:
        return samples
    return samples[bisect_right([s.ts for s in samples], after):]


def _judge(limits: Limits, ts: datetime, value: float) -> Observation:
    return Observation(ts, value, limits.breach(value), limits.clear(value), limits.threshold)


def _index_at(times: list[datetime], ts: datetime) -> int:
    """The index of the last sample at or before ts (-1 if none)."""
    return bisect_right(times, ts) - 1


class Register:
    """A cumulative register: use between two instants, a step back counting as no use."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.times = [s.ts for s in samples]
        self.prefix = [0.0]
        for before, after in zip(samples, samples[1:], strict=False):
            self.prefix.append(self.prefix[-1] + max(0.0, after.value - before.value))

    def use(self, start: datetime, end: datetime) -> float:
        """Use from the register's reading at `start` to its reading at `end`."""
        i0, i1 = _index_at(self.times, start), _index_at(self.times, end)
        return self.prefix[max(i1, 0)] - self.prefix[max(i0, 0)]

    def covers(self, since: datetime) -> bool:
        """Whether a reading exists at or before `since`."""
        return bool(self.times) and self.times[0] <= since


def observe_threshold(rule: Rule, series: Series, after: datetime | None) -> list[Observation]:
    """A metric against its levels, sample by sample."""
    cond: Threshold = rule.condition
    return [_judge(cond, s.ts, s.value) for s in _new(series.get(rule.metric or "", ()), after)]


def observe_rate(rule: Rule, series: Series, after: datetime | None) -> list[Observation]:
    """Change per hour over the window ending at each new sample (half a window at least)."""
    cond: Rate = rule.condition
    samples = series.get(rule.metric or "", ())
    times = [s.ts for s in samples]
    window = timedelta(seconds=cond.window_s)
    out = []
    for sample in _new(samples, after):
        first = samples[bisect_right(times, sample.ts - window - timedelta(microseconds=1))]
        span = (sample.ts - first.ts).total_seconds()
        if span >= cond.window_s / 2:
            out.append(_judge(cond, sample.ts, (sample.value - first.value) * 3600 / span))
    return out


def observe_consumption(rule: Rule, series: Series, after: datetime | None) -> list[Observation]:
    """Use from the register over the window ending at each new reading."""
    cond: Consumption = rule.condition
    samples = series.get(cond.metric, ())
    register = Register(samples)
    window = timedelta(seconds=cond.window_s)
    return [_judge(cond, s.ts, register.use(s.ts - window, s.ts)) for s in _new(samples, after)]


def observe_thi(rule: Rule, series: Series, after: datetime | None) -> list[Observation]:
    """The barn THI wherever a temperature and a humidity within 15 minutes pair up."""
    cond: Thi = rule.condition
    temps, hums = series.get("temperature_c", ()), series.get("humidity_pct", ())
    t_times, h_times = [s.ts for s in temps], [s.ts for s in hums]
    instants = sorted({s.ts for s in _new(temps, after)} | {s.ts for s in _new(hums, after)})
    out = []
    for ts in instants:
        ti, hi = _index_at(t_times, ts), _index_at(h_times, ts)
        if ti < 0 or hi < 0 or ts - t_times[ti] > THI_PAIRING or ts - h_times[hi] > THI_PAIRING:
            continue
        out.append(_judge(cond, ts, round(thi(temps[ti].value, hums[hi].value), 2)))
    return out


BASELINE = "@baseline"  # series key suffix under which the adapter puts a metric's baseline


def observe_baseline(rule: Rule, series: Series, after: datetime | None) -> list[Observation]:
    """Each new sample against its baseline raised by `rise_pct`; it clears at four fifths
    of the rise."""
    cond: Baseline = rule.condition
    metric = rule.metric or ""
    base = series.get(metric + BASELINE, ())
    if not base:
        return []  # too little history yet
    level = base[-1].value * (1 + cond.rise_pct / 100)
    back = base[-1].value * (1 + cond.rise_pct * 0.8 / 100)
    return [Observation(s.ts, s.value, s.value > level, s.value <= back, round(level, 4))
            for s in _new(series.get(metric, ()), after)]


def observe_household_leak(
    rule: Rule, series: Series, after: datetime | None
) -> list[Observation]:
    """The smallest use in a clock hour over the last `hours`; above zero: no quiet hour."""
    cond: HouseholdLeak = rule.condition
    samples = series.get(cond.metric, ())
    register = Register(samples)
    hour = timedelta(hours=1)
    out = []
    judged_end, least = None, 0.0
    for s in _new(samples, after):
        end = s.ts.replace(minute=0, second=0, microsecond=0)  # whole clock hours
        if not register.covers(end - cond.hours * hour):
            continue  # the day is not covered yet: an NB-IoT batch may still be coming
        if end != judged_end:  # samples of one clock hour share its answer
            least = min(register.use(end - (i + 1) * hour, end - i * hour)
                        for i in range(cond.hours))
            judged_end = end
        leaking = least > cond.min_use_m3
        out.append(Observation(s.ts, round(least, 6), leaking, not leaking, cond.min_use_m3))
    return out


def observe_stuck(rule: Rule, series: Series, after: datetime | None) -> list[Observation]:
    """How long the value has stayed the same, at each new sample."""
    cond: Stuck = rule.condition
    samples = series.get(rule.metric or "", ())
    times = [s.ts for s in samples]
    out = []
    for s in _new(samples, after):
        i = _index_at(times, s.ts)
        while i > 0 and abs(samples[i - 1].value - s.value) <= cond.tolerance:
            i -= 1
        unchanged = (s.ts - samples[i].ts).total_seconds()
        frozen = unchanged >= cond.for_s
        out.append(Observation(s.ts, s.value, frozen, not frozen, None))
    return out


STREAM_OBSERVERS: dict[str, Callable[[Rule, Series, datetime | None], list[Observation]]] = {
    "threshold": observe_threshold,
    "rate": observe_rate,
    "consumption": observe_consumption,
    "thi": observe_thi,
    "baseline": observe_baseline,
    "household_leak": observe_household_leak,
    "stuck": observe_stuck,
}


def _same_clock_hour(judged: datetime, first: datetime, last: datetime) -> bool:
    def hour(ts: datetime) -> datetime:
        return ts.replace(minute=0, second=0, microsecond=0)
    return first > judged and hour(last) == hour(judged)


# Conditions whose answer cannot change for new samples like these, given the newest sample
# already judged: their history need not be read. A household's leak is judged on whole
# clock hours, so more readings within the hour last judged change nothing.
UNCHANGED: dict[str, Callable[[datetime, datetime, datetime], bool]] = {
    "household_leak": _same_clock_hour,
}


def needed_metrics(rule: Rule) -> tuple[str, ...]:
    """The metrics a streaming rule reads."""
    if rule.condition_type == "thi":
        return ("temperature_c", "humidity_pct")
    metric = rule.metric
    return (metric,) if metric else ()


def lookback(rule: Rule) -> timedelta:
    """How far before the first new sample a streaming rule must see."""
    cond = rule.condition
    seconds = {
        "rate": lambda: cond.window_s,
        "consumption": lambda: cond.window_s,
        "thi": lambda: THI_PAIRING.total_seconds(),
        "household_leak": lambda: (cond.hours + 1) * 3600,
        "stuck": lambda: cond.for_s + 3600,
    }.get(rule.condition_type, lambda: 0.0)()
    return timedelta(seconds=seconds)


def for_seconds(rule: Rule) -> float:
    """The `for` duration of the rule (zero for conditions that carry their own)."""
    return rule.condition.for_s if isinstance(rule.condition, Limits | Baseline) else 0.0


def observe_stopped(
    last_seen: datetime | None, reported_offline_at: datetime | None, silence_s: float,
    now: datetime,
) -> Observation:
    """Silence so far against the limit; a Last Will `offline` counts from when it came."""
    heard = last_seen
    if reported_offline_at is not None:
        heard = reported_offline_at if heard is None else min(heard, reported_offline_at)
    silent = (now - heard).total_seconds() if heard is not None else float("inf")
    over = silent >= silence_s
    shown = silent if heard is not None else -1.0
    return Observation(now, shown, over, not over, silence_s)


def observe_outage(cond: Outage, silent: int, total: int, now: datetime) -> Observation:
    """The silent share of an area; it clears below four fifths of the outage share."""
    share = silent / total if total else 0.0
    out = silent >= cond.min_devices and share >= cond.min_share
    back = share < cond.min_share * 0.8 or silent < cond.min_devices
    return Observation(now, round(share * 100, 1), out, back, cond.min_share * 100)


def observe_event_expiry(
    last_event: datetime | None, resolve_after_s: float, now: datetime
) -> Observation | None:
    """A clearing observation once no event came for `resolve_after`."""
    if last_event is None or (now - last_event).total_seconds() < resolve_after_s:
        return None
    return Observation(now, 0.0, False, True, None)


def observe_night_flow(
    cond: NightFlow, nights: Sequence[tuple[datetime, float]], after: datetime | None
) -> list[Observation]:
    """Each new night's minimum flow against the median of the nights before it."""
    out = []
    for i, (ts, flow) in enumerate(nights):
        if (after is not None and ts <= after) or i < cond.baseline_nights:
            continue
        baseline = median(value for _, value in nights[i - cond.baseline_nights:i])
        level = baseline * (1 + cond.rise_pct / 100)
        rising = flow > level and flow >= cond.min_flow_m3h
        out.append(Observation(ts, flow, rising, not rising, round(level, 4)))
    return out
