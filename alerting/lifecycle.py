"""The state machine of one rule on one subject: inactive, pending, firing (pure)."""

from __future__ import annotations

from datetime import timedelta

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
    if not on:
        return (state._replace(state="inactive", active_since=None, value=None, last_ts=obs.ts),
                "resolved" if state.state == "firing" else None)
    if state.state == "firing":
        return state._replace(last_ts=obs.ts), None
    since = state.active_since if state.state == "pending" else obs.ts
    assert since is not None
    if obs.ts - since >= timedelta(seconds=for_s):
        return state._replace(state="firing", active_since=since, value=obs.value,
                              last_ts=obs.ts), "firing"
    return state._replace(state="pending", active_since=since, value=obs.value,
                          last_ts=obs.ts), None
