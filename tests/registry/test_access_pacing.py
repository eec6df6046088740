"""The access daemon's pacing and order: control messages sized to the broker's speed, and
the devices changed last applied first (one device is not stuck behind a bulk import)."""

from __future__ import annotations

import psycopg

from devices import access_queue
from devices.dynsec import Grant, Pacing


def test_a_message_carries_what_the_broker_applies_in_about_the_target_time() -> None:
    pacing = Pacing(most=200, target_s=1.0)
    assert pacing.size() == 10  # nothing measured yet: a small first message
    pacing.observe(10, 0.02)  # 2 ms a command: a small plugin file
    assert pacing.size() == 200  # the most allowed
    for _ in range(8):
        pacing.observe(5, 1.0)  # 200 ms a command: 15,000 logins held
    assert 4 <= pacing.size() <= 6
    pacing.observe(1, 30.0)  # far slower still: never below one
    assert pacing.size() == 1
    pacing.observe(0, 5.0)  # nothing sent: nothing learnt
    assert pacing.size() == 1


def _queue(conn: psycopg.Connection, rows: list[tuple[str, str, str | None, bool]]) -> None:
    conn.execute("INSERT INTO broker_live_access DEFAULT VALUES ON CONFLICT DO NOTHING")
    with conn.cursor() as cursor:
        cursor.executemany("INSERT INTO broker_access_queue (device_id, action, secret, gateway)"
                           " VALUES (%s, %s, %s, %s)", rows)


def test_the_devices_changed_last_go_first_each_with_all_its_rows(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        _queue(conn, [("wm-a", "grant", "secret-a", False)])
        _queue(conn, [(f"wm-bulk{n:03d}", "grant", f"s{n}", False) for n in range(100)])
        _queue(conn, [("wm-one", "grant", "secret-one", False), ("wm-a", "role", None, True)])
        first = access_queue.take(conn, 2)
        assert {item.change.device_id: item.change for item in first} == {
            "wm-a": Grant("wm-a", "secret-a", True),  # its grant counts: the role only adds
            "wm-one": Grant("wm-one", "secret-one", False)}
        assert sorted(len(item.ids) for item in first) == [1, 2]
        access_queue.done(conn, [row_id for item in first for row_id in item.ids])
        rest = access_queue.take(conn, 1000)
        assert len(rest) == 100
        assert {item.change.device_id for item in rest} == {f"wm-bulk{n:03d}" for n in range(100)}
        late = access_queue.take(conn, 1)
        assert late[0].change == Grant("wm-bulk099", "s99", False)
        _queue(conn, [("wm-bulk099", "role", None, True)])
        (both,) = access_queue.take(conn, 1)
        assert both.change == Grant("wm-bulk099", "s99", True) and len(both.ids) == 2
