"""End to end: simulated devices -> real Mosquitto -> ingest worker -> PostgreSQL ->
the alerting service -> real local HTTP and SMTP receivers."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from pydantic import SecretStr
from rich.console import Console

from alerting.cycles import ALERTING_APPLICATION
from alerting.runner import AlertingHandle
from alerting.settings import AlertingSettings
from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from simulators.device import numbered
from simulators.fleet import SimulatedFleet
from tests.ingest.conftest import ingest_settings, running_worker, wait_until
from village.processes import start_alerting
from village.settings import Settings
from village.up import alerting_component
from village.up_stack import Stack

from .fixtures import add_devices, add_readings, two_level_routing
from .receivers import http_receiver, smtp_receiver

CONTAMINATION_RULES = {"rules": [{
    "name": "wq-turbidity-critical", "severity": "critical",
    "summary_zh": "浊度超过 3 NTU", "summary_en": "Turbidity above 3 NTU",
    "select": {"kind": "water_quality", "metric": "turbidity_ntu"},
    "condition": {"threshold": {"above": 3.0, "clear_below": 2.7, "for": "2s"}},
}]}


def alerting_settings(base: Settings, tmp_path: Path, routing: dict[str, Any],
                      rules: dict[str, Any]) -> Settings:
    """The test's settings with short intervals and its own rules and routing files."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(routing, allow_unicode=True))
    options = AlertingSettings(
        presets=False, rules_files=[str(tmp_path / "rules.yaml")],
        routing_file=str(tmp_path / "routing.yaml"), evaluate_interval_s=0.5,
        schedule_interval_s=1, dispatch_interval_s=0.5, retry_backoff_s=0.1,
    )
    return base.model_copy(update={"alerting": options, "development": True})


@contextmanager
def running_alerting(settings: Settings) -> Iterator[AlertingHandle]:
    handle = start_alerting(settings)
    try:
        yield handle
    finally:
        handle.stop()


def test_a_contamination_is_told_once_escalates_and_resolves_once(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    probes = numbered("water_quality", 1, "wq", village="V1", township="T1")
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_devices(conn, [("wq-0001", "water_quality", "T1", "V1")])
    with http_receiver() as (url, village_hook), smtp_receiver() as (port, township_mail):
        routing = two_level_routing(
            [{"name": "village-hook", "type": "webhook", "options": {"url": url + "/v1"}},
             {"name": "township-mail", "type": "email",
              "options": {"host": "127.0.0.1", "port": port, "sender": "alerts@county.example"}}],
            ["village-hook"], ["township-mail"],
            escalate_after={"critical": "3s"})
        base = ingest_settings(database_url, mosquitto.url, topic_prefix)
        settings = alerting_settings(base, tmp_path, routing, CONTAMINATION_RULES)
        with running_worker(base), running_alerting(settings), SimulatedFleet(
                parse_mqtt_url(mosquitto.url), topic_prefix, probes,
                intervals_s={"water_quality": 0.5}, stagger=False) as fleet:
            wait_until(lambda: _count(database_url, "SELECT count(*) FROM readings") > 0,
                       what="normal readings")
            fleet.start_fault(["wq-0001"], "contamination", ramp_s=0)
            assert village_hook.wait_for(1, 20), "the village was never told"
            first = village_hook.json(0)
            assert first["action"] == "firing" and first["recipient"]["person_id"] == "cadre-v1"
            (alert,) = first["alerts"]
            assert alert["device_id"] == "wq-0001" and alert["value"] > 3 and alert["threshold"] == 3
            assert alert["village"] == "V1" and "/a/" in alert["link"]

            assert township_mail.wait_for(1, 20), "nobody escalated to the township"
            escalation = township_mail.mails[0]
            assert escalation["To"] == "duty@t1.example"
            assert "无人确认" in escalation["Subject"] and "wq-0001" in escalation.get_content()

            fleet.clear_fault(["wq-0001"], "contamination")
            assert village_hook.wait_for(2, 30), "the resolution never came"
            assert township_mail.wait_for(2, 20)
        resolved = village_hook.json(1)
        assert resolved["action"] == "resolved" and "已恢复" in resolved["title"]
        assert "持续" in resolved["text"]
        assert len(village_hook.requests) == 2 and len(township_mail.mails) == 2
        assert "已恢复" in township_mail.mails[1]["Subject"]
    alerts = _rows(database_url, "SELECT rule, state, device_id, value, fired_at FROM alerts")
    assert [a[:3] for a in alerts] == [("wq-turbidity-critical", "resolved", "wq-0001")]
    # the value told is the reading that fired it, as stored
    (stored,) = _rows(database_url, "SELECT value FROM readings WHERE device_id = 'wq-0001'"
                      " AND metric = 'turbidity_ntu' AND ts = %s", alerts[0][4])
    assert alert["value"] == alerts[0][3] == stored[0]
    log = _rows(database_url, "SELECT action, receiver, status FROM notifications ORDER BY id")
    assert log == [("firing", "village-hook", "sent"), ("escalation", "township-mail", "sent"),
                   ("resolved", "village-hook", "sent"), ("resolved", "township-mail", "sent")]


def _count(database_url: str, query: str) -> int:
    return int(_rows(database_url, query)[0][0])


def _rows(database_url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params or None).fetchall()


OUTAGE_RULES = {"rules": [{
    "name": "cam-stopped", "severity": "major", "summary_zh": "摄像头离线",
    "summary_en": "Camera offline", "select": {"kind": "camera"},
    "condition": {"stopped": {"for": "1s"}},
}]}


def test_three_hundred_cameras_offline_in_one_township_are_one_notification(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    cameras = [d for v in ("V1", "V2", "V3")
               for d in numbered("camera", 100, f"cam-{v.lower()}", village=v, township="T1")]
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_devices(conn, [(c.device_id, "camera", "T1", c.village) for c in cameras])
    with http_receiver() as (url, township_hook):
        routing = two_level_routing(
            [{"name": "hook", "type": "webhook", "options": {"url": url}}], ["hook"], ["hook"],
            group_wait="3s")
        base = ingest_settings(database_url, mosquitto.url, topic_prefix)
        settings = alerting_settings(base, tmp_path, routing, OUTAGE_RULES)
        with running_worker(base), SimulatedFleet(
                parse_mqtt_url(mosquitto.url), topic_prefix, cameras,
                intervals_s={"camera": 0.5}, stagger=False) as fleet:
            wait_until(lambda: _count(database_url, "SELECT count(*) FROM device_presence"
                                      " WHERE reported_state = 'online'") == 300,
                       what="every camera online")
            with running_alerting(settings):
                fleet.start_fault([c.device_id for c in cameras], "offline")
                assert township_hook.wait_for(1, 30), "the outage was never told"
                wait_until(lambda: _count(database_url, "SELECT count(*) FROM alerts") == 300,
                           what="300 alerts")
                time.sleep(2)  # a while longer: nothing else may come
    (notice,) = [township_hook.json(i) for i in range(len(township_hook.requests))]
    assert notice["recipient"]["person_id"] == "office-t1"
    assert len(notice["alerts"]) == 300 and "300" in notice["title"]
    assert sorted(a["device_id"] for a in notice["alerts"]) == sorted(c.device_id for c in cameras)


def test_restarting_the_service_mid_window_neither_loses_nor_duplicates(
    database_url: str, tmp_path: Path
) -> None:
    rules = {"rules": [{**CONTAMINATION_RULES["rules"][0],
                        "condition": {"threshold": {"above": 3.0, "for": "6s"}}}]}
    with psycopg.connect(database_url, autocommit=True) as conn, http_receiver() as (url, hook):
        add_devices(conn, [("wq-0001", "water_quality", "T1", "V1")])
        routing = two_level_routing([{"name": "hook", "type": "webhook", "options": {"url": url}}],
                                    ["hook"], ["hook"])
        base = Settings(database_url=database_url)
        settings = alerting_settings(base, tmp_path, routing, rules)
        t0 = datetime.now(UTC)
        pending = "SELECT count(*) FROM alert_states WHERE state = 'pending'"
        with running_alerting(settings):
            add_readings(conn, "wq-0001", "turbidity_ntu", [(t0, 5.0)])
            wait_until(lambda: _count(database_url, pending) == 1, what="a pending window")
        add_readings(conn, "wq-0001", "turbidity_ntu", [(t0 + timedelta(seconds=3), 5.0)])
        with running_alerting(settings):
            add_readings(conn, "wq-0001", "turbidity_ntu", [(t0 + timedelta(seconds=6), 5.5)])
            assert hook.wait_for(1, 15), "the alert never fired after the restart"
            time.sleep(1.5)
        assert len(hook.requests) == 1
        rows = _rows(database_url, "SELECT started_at, fired_at, value FROM alerts")
        assert rows == [(t0, t0 + timedelta(seconds=6), 5.5)]


def test_village_up_component_prints_what_would_be_sent(
    database_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=database_url,
                        alerting=AlertingSettings(link_secret=SecretStr("k" * 32)))
    stack = Stack(settings=settings, data_dir=tmp_path, console=Console(file=io.StringIO()))
    component = alerting_component(stack)
    assert component is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_devices(conn, [("wq-0001", "water_quality", "T1", "V1")])
        component.start()
        try:
            add_readings(conn, "wq-0001", "ph", [(datetime.now(UTC), 13.9)])  # an impossible pH
            wait_until(lambda: _count(database_url, "SELECT count(*) FROM alerts"
                                      " WHERE rule = 'wq-ph-sensor-fault'") == 1, what="the alert")
            wait_until(lambda: "wq-0001" in capfd.readouterr().out, what="the console notice",
                       timeout_s=15)
        finally:
            component.stop()


def test_the_streaming_pass_says_how_far_behind_it_is(
    database_url: str, mosquitto: MosquittoServer, topic_prefix: str, tmp_path: Path
) -> None:
    # The service's clock an hour ahead of the database's: what it has judged was stored an
    # hour "ago", which the gauge must say (a real backlog reads the same way).
    with psycopg.connect(database_url, autocommit=True) as conn:
        add_devices(conn, [("wq-0001", "water_quality", "T1", "V1")])
        add_readings(conn, "wq-0001", "ph", [(datetime.now(UTC), 7.0)])
    base = ingest_settings(database_url, mosquitto.url, topic_prefix)
    hook = [{"name": "hook", "type": "webhook", "options": {"url": "http://127.0.0.1:9/"}}]
    routing = two_level_routing(hook, ["hook"], ["hook"])
    settings = alerting_settings(base, tmp_path, routing, {"rules": []})
    handle = start_alerting(settings, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    try:
        def behind() -> float:
            return handle.metrics.registry.get_sample_value(
                "village_alerting_stream_behind_seconds") or 0.0
        wait_until(lambda: behind() > 3500, what="the stream's lag reported")
        assert behind() < 3660
    finally:
        handle.stop()


def test_a_cameras_tampering_is_sent_while_the_readings_pass_is_held(
    database_url: str, tmp_path: Path
) -> None:
    # The readings' pass held at its last step (its watermark's row locked, as a long pass
    # over a morning's day uploads would hold it): the events' pass goes on without it, and
    # a time pass waiting for the readings' pass must not hold the events' back meanwhile.
    rules = {"rules": [{"name": "cam-tamper", "severity": "major", "summary_zh": "遮挡",
                        "summary_en": "tampering", "select": {"kind": "camera"},
                        "condition": {"event": {"types": ["tamper"]}}}]}
    with psycopg.connect(database_url, autocommit=True) as conn, http_receiver() as (url, hook):
        add_devices(conn, [("cam-0001", "camera", "T1", "V1")])
        routing = two_level_routing([{"name": "hook", "type": "webhook", "options": {"url": url}}],
                                    ["hook"], ["hook"])
        settings = alerting_settings(Settings(database_url=database_url), tmp_path, routing, rules)
        with running_alerting(settings), psycopg.connect(
                database_url, application_name=ALERTING_APPLICATION) as held:
            held.execute("SELECT 1 FROM alerting_watermarks WHERE source = 'readings' FOR UPDATE")
            wait_until(lambda: _count(database_url, "SELECT count(*) FROM pg_stat_activity"
                                      " WHERE wait_event_type = 'Lock'") == 1,
                       what="the readings' pass waiting")
            time.sleep(2.5)  # time passes (every second) due meanwhile wait for it too
            conn.execute("INSERT INTO events (device_id, ts, type, severity, body)"
                         " VALUES ('cam-0001', now(), 'tamper', 'major', '{}')")
            assert hook.wait_for(1, 15), "the tampering waited for the readings' pass"
            assert hook.json(0)["alerts"][0]["device_id"] == "cam-0001"
            held.rollback()
