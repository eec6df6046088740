"""Alert pages over HTTP: the three lists and their filters, silencing until a time typed in
the county's clock, and the refusals of a role or scope that may not act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from fastapi.testclient import TestClient

from ground.principal import Role
from tests.api.conftest import insert_alert
from tests.console.conftest import UserMaker, form_token, sign_in


def test_the_lists_filter_by_state_severity_and_place(console: TestClient, make_user: UserMaker,
                                                      seeded: str) -> None:
    critical = insert_alert(seeded, severity="critical")
    minor = insert_alert(seeded, village="east-2", severity="minor")
    resolved = insert_alert(seeded, state="resolved")
    make_user("viewer", Role.VIEWER, "east")
    sign_in(console, "viewer")
    firing = console.get("/console/alerts").text
    assert f'id="alert-{critical}"' in firing and f'id="alert-{minor}"' in firing
    assert f'id="alert-{resolved}"' not in firing
    only_critical = console.get("/console/alerts/rows", params={"severity": "critical"}).text
    assert f'id="alert-{critical}"' in only_critical and f'id="alert-{minor}"' not in only_critical
    in_east_2 = console.get("/console/alerts/rows", params={"village": "east-2"}).text
    assert f'id="alert-{minor}"' in in_east_2 and f'id="alert-{critical}"' not in in_east_2
    of_kind = console.get("/console/alerts/rows", params={"kind": "camera"}).text
    assert 'id="alert-' not in of_kind
    assert f'id="alert-{resolved}"' in console.get("/console/alerts/rows",
                                                     params={"state": "resolved"}).text


def test_an_operator_silences_until_a_time_in_the_countys_clock(console: TestClient,
                                                                make_user: UserMaker,
                                                                seeded: str) -> None:
    alert_id = insert_alert(seeded)
    make_user("op", Role.OPERATOR, "east")
    sign_in(console, "op")
    page = console.get(f"/console/alerts/{alert_id}").text
    assert 'id="silence-form"' in page
    until = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    typed = until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")
    done = console.post(f"/console/alerts/{alert_id}/silence", data={
        "csrf_token": form_token(page), "ends_at": typed, "comment": "换表"})
    assert done.status_code == 303
    with psycopg.connect(seeded) as conn:
        row = conn.execute("SELECT matchers, ends_at, created_by FROM silences").fetchone()
    assert row is not None
    assert row[0] == {"township": "east", "village": "east-1", "rule": "night_flow",
                      "device_id": "watermeter-east-1-01"}
    assert row[1] == until and row[2] == "user:op"


def test_a_viewer_may_not_acknowledge_nor_see_another_township(console: TestClient,
                                                                 make_user: UserMaker,
                                                                 seeded: str) -> None:
    alert_id = insert_alert(seeded)
    elsewhere = insert_alert(seeded, village="west-1", township="west")
    make_user("viewer", Role.VIEWER, "east")
    sign_in(console, "viewer")
    page = console.get(f"/console/alerts/{alert_id}").text
    assert 'id="ack-form"' not in page
    refused = console.post(f"/console/alerts/{alert_id}/ack",
                           data={"csrf_token": form_token(page), "comment": "x"})
    assert refused.status_code == 403
    assert console.get(f"/console/alerts/{elsewhere}").status_code == 403
    with psycopg.connect(seeded) as conn:
        assert conn.execute("SELECT count(*) FROM alert_acks").fetchone() == (0,)
