"""A device's online/offline history, end to end: ingest hears a meter, the alerting time
pass finds it silent past its kind's limit, ingest hears it again, and the device page shows
offline then online, each with its reason. Real PostgreSQL, Mosquitto and ingest worker."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from alerting.files import load_rules
from alerting.tick import tick_cycle
from devices.topics import Channel, topic
from ground.local import MosquittoServer
from ground.principal import Role
from tests.alerting.fixtures import recording_engine
from tests.api.conftest import device_id
from tests.console.conftest import UserMaker, sign_in
from tests.ingest.conftest import Publisher, ingest_settings, running_worker, scalar, wait_until

LIMIT_S = 2  # the meters' silence limit in this test, to keep it short


def changes(database_url: str, meter: str) -> list[tuple[bool, str]]:
    with psycopg.connect(database_url) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT online, reason FROM device_status_changes WHERE device_id = %s ORDER BY at",
            (meter,))]


def test_silent_past_its_limit_then_heard_again_shows_offline_then_online(
        console: TestClient, make_user: UserMaker, database_url: str,
        mosquitto: MosquittoServer, topic_prefix: str) -> None:
    meter = device_id("water_meter", "east-1")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE device_kinds SET stale_after_s = %s WHERE kind = 'water_meter'",
                     (LIMIT_S,))
    telemetry = topic(topic_prefix, meter, Channel.TELEMETRY)
    publisher = Publisher(mosquitto.url)
    with running_worker(ingest_settings(database_url, mosquitto.url, topic_prefix)):
        publisher.publish(telemetry, {"total_m3": 12.5})
        publisher.flush()
        wait_until(lambda: changes(database_url, meter) == [(True, "first_heard")],
                   what="the first message to make the meter online")
        last_seen: datetime = scalar(
            database_url, "SELECT last_seen FROM device_presence WHERE device_id = %s", meter)
        time.sleep(max(0.0, (last_seen + timedelta(seconds=LIMIT_S + 0.5)
                             - datetime.now(UTC)).total_seconds()))
        with psycopg.connect(database_url, autocommit=True) as conn:
            engine = recording_engine(load_rules([]))
            tick_cycle(conn, engine, datetime.now(UTC))
            tick_cycle(conn, engine, datetime.now(UTC))  # a second pass records nothing more
            offline_at = conn.execute(
                "SELECT at FROM device_status_changes WHERE device_id = %s AND NOT online",
                (meter,)).fetchone()
            online_now = conn.execute("SELECT online FROM device_status WHERE device_id = %s",
                                      (meter,)).fetchone()
        assert changes(database_url, meter) == [(True, "first_heard"), (False, "silent")]
        assert offline_at == (last_seen + timedelta(seconds=LIMIT_S),)
        assert online_now == (False,)  # the history agrees with the status view
        publisher.publish(telemetry, {"total_m3": 12.6})
        publisher.close()
        wait_until(lambda: len(changes(database_url, meter)) == 3,
                   what="hearing the meter again to make it online")
    assert changes(database_url, meter)[-1] == (True, "heard_again")
    make_user("viewer", Role.VIEWER, "east", "east-1")
    sign_in(console, "viewer")
    page = console.get(f"/console/devices/{meter}").text
    history = page.split('id="online-history"')[1].split("</table>")[0]
    # Newest first: back online (heard again), offline (silent), first heard.
    assert re.findall(r'class="badge (\w+)"', history) == ["online", "offline", "online"]
    assert history.index("恢复上报") < history.index("超过时限无数据") < history.index("首次上报")
