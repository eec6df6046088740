"""The state machine of one rule on one subject: inactive, pending, firing (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from alerting.model import AlertState, Observation


def step(
    state: AlertState, obs: Observation, for_s: float
) -> tuple[AlertState, str | None]:
    """Advance by one observation; returns the new state and 'firing'/'resolved' or None.

    The condition latches: it turns on when the value breaches and off only when the value
    is back at the clearing level, so a value hovering at the threshold does not flap.
    """
    latched = state.state != "inactive"
    on = (not obs.clear) if latched else obs.breach
    moved = replace(state, last_ts=obs.ts)
    if not on:
        return (replace(moved, state="inactive", active_since=None, value=None),
                "resolved" if state.state == "firing" else None)
    if state.state == "firing":
        return moved, None
    since = state.active_since if state.state == "pending" else obs.ts
    assert since is not None
    if obs.ts - since >= timedelta(seconds=for_s):
        return replace(moved, state="firing", active_since=since, value=obs.value), "firing"
    return replace(moved, state="pending", active_since=since, value=obs.value), None


def is_new(state: AlertState, ts: datetime) -> bool:
    """Whether a sample at `ts` has not been judged yet (so overlaps never judge twice)."""
    return state.last_ts is None or ts > state.last_ts
