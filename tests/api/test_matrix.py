"""Every role by every scope by every action: allowed exactly when the role suffices and the
scope covers the target (a village cadre acknowledges only in their village, a township
operator broadcasts only in their township)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import NOW, TokenMaker, device_id, insert_alert

METER = device_id("water_meter", "east-1")
TARGET = ("east", "east-1")  # every action below touches something in this village
SCOPES: dict[str, tuple[str | None, str | None]] = {
    "county": (None, None),
    "township east": ("east", None),
    "village east-1": ("east", "east-1"),
    "village east-2": ("east", "east-2"),
    "township west": ("west", None),
}
COVERS_TARGET = {"county", "township east", "village east-1"}


@dataclass(frozen=True)
class Action:
    """One request and the least role it needs over the target village."""

    name: str
    needs: Role
    send: Callable[[TestClient, dict[str, str], dict[str, Any]], Any]


def _window() -> dict[str, str]:
    return {"from": (NOW - timedelta(hours=6)).isoformat(), "to": NOW.isoformat()}


ACTIONS = (
    Action("show device", Role.VIEWER,
           lambda c, h, ctx: c.get(f"/devices/{METER}", headers=h)),
    Action("latest values", Role.VIEWER,
           lambda c, h, ctx: c.get(f"/devices/{METER}/latest", headers=h)),
    Action("series", Role.VIEWER, lambda c, h, ctx: c.get(
        f"/devices/{METER}/series", headers=h, params={"metric": "total_m3"} | _window())),
    Action("show alert", Role.VIEWER,
           lambda c, h, ctx: c.get(f"/alerts/{ctx['alert']}", headers=h)),
    Action("acknowledge alert", Role.CADRE, lambda c, h, ctx: c.post(
        f"/alerts/{ctx['alert']}/ack", headers=h, json={"comment": "ok"})),
    Action("change device", Role.OPERATOR, lambda c, h, ctx: c.patch(
        f"/devices/{METER}", headers=h, json={"name": f"by {ctx['who']}"})),
    Action("register device", Role.OPERATOR, lambda c, h, ctx: c.post(
        "/devices", headers=h, json={"device_id": f"m-{ctx['n']}", "kind": "water_meter",
                                     "township": "east", "village": "east-1"})),
    Action("broadcast to the village", Role.OPERATOR, lambda c, h, ctx: c.post(
        "/broadcasts", headers=h, json={"scope": {"kind": "village", "township": "east",
                                                  "village": "east-1"},
                                        "text": "通知", "expires_in_s": 60})),
)


def test_role_by_scope_by_action(client: TestClient, auth: TokenMaker, seeded: str) -> None:
    wrong = []
    cases = itertools.product(Role, SCOPES.items(), ACTIONS)
    for n, (role, (scope_name, (township, village)), action) in enumerate(cases):
        headers = auth(role, township, village)
        context = {"alert": insert_alert(seeded), "who": f"{role.name}-{scope_name}", "n": n}
        response = action.send(client, headers, context)
        allowed = role >= action.needs and scope_name in COVERS_TARGET
        ok = 200 <= response.status_code < 300
        if ok != allowed or (not allowed and response.status_code != 403):
            wrong.append(f"{role.name.lower()} @ {scope_name} / {action.name}: "
                         f"{response.status_code} (expected {'2xx' if allowed else 403})")
    assert wrong == [], "\n".join(wrong)
    assert n + 1 == len(Role) * len(SCOPES) * len(ACTIONS)
