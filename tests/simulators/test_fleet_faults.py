"""Faults driven from a test over a real broker: a contamination, cameras going dark in bulk."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson

from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from simulators.device import numbered
from simulators.faults import FaultWindow
from simulators.fleet import SimulatedFleet
from simulators.hostile import HostileGenerator
from tests.simulators.observer import Observer, statuses


def readings(messages: list[tuple[str, bytes]]) -> list[dict[str, float]]:
    return [orjson.loads(p) for t, p in messages if t.endswith("/telemetry")]


def contaminated(reading: dict[str, float]) -> bool:
    return reading["turbidity_ntu"] > 3 and reading["chlorine_mg_l"] < 0.05


def test_a_probe_contamination_starts_and_ends_on_demand(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    probes = numbered("water_quality", 1, "wq")
    with Observer(mosquitto.url, f"{topic_prefix}/+/telemetry") as obs, \
            SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, probes,
                           intervals_s={"water_quality": 0.1}, stagger=False) as fleet:
        obs.wait_for(lambda m: len(readings(m)) >= 3)
        assert not any(contaminated(r) for r in readings(obs.received()))
        fleet.start_fault(["wq-0001"], "contamination", ramp_s=0)
        seen = obs.wait_for(lambda m: any(contaminated(r) for r in readings(m)))
        fleet.clear_fault(["wq-0001"], "contamination")
        count = len(readings(seen))
        later = obs.wait_for(lambda m: len(readings(m)) >= count + 5)
        assert not contaminated(readings(later)[-1])


def test_three_hundred_cameras_in_one_township_go_offline_at_once(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    east = numbered("camera", 300, "cam-e", village="东村", township="东乡")
    west = numbered("camera", 10, "cam-w", village="西村", township="西乡")
    status = f"{topic_prefix}/+/status"
    with SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, east + west) as fleet, \
            Observer(mosquitto.url, status) as obs:
        obs.wait_for(lambda m: len(statuses(m)) == 310)
        fleet.start_fault([d.device_id for d in east], "offline")
        seen = obs.wait_for(lambda m: list(statuses(m).values()).count(b"offline") == 300)
        final = statuses(seen)
        assert {d for d, s in final.items() if s == b"offline"} == {d.device_id for d in east}
        assert sorted(fleet.online()) == sorted(d.device_id for d in west)


def test_scenario_offline_windows_are_acted_out_on_time(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    cameras = numbered("camera", 4, "cam")
    status = f"{topic_prefix}/+/status"
    with SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, cameras) as fleet, \
            Observer(mosquitto.url, status) as obs:
        now = fleet.clock.now()
        fleet.add_faults([(c.device_id, FaultWindow("offline", now + timedelta(seconds=0.3),
                                                     now + timedelta(seconds=1.0)))
                          for c in cameras[:2]])
        obs.wait_for(lambda m: sum(1 for t, p in m if p == b"offline") == 2)
        assert sorted(fleet.online()) == ["cam-0003", "cam-0004"]
        seen = obs.wait_for(lambda m: sum(1 for t, p in m if p == b"online") == 6)
        order = [(t.split("/")[1], p) for t, p in seen if t.split("/")[1] in ("cam-0001",)]
        assert order == [("cam-0001", b"online"), ("cam-0001", b"offline"),
                         ("cam-0001", b"online")]


def test_hostile_messages_go_out_at_the_asked_rate(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    meters = numbered("water_meter", 3, "wm")
    generator = HostileGenerator(topic_prefix, [(m.device_id, m.kind) for m in meters], seed=1)
    with Observer(mosquitto.url, f"{topic_prefix}/#") as obs, \
            SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, meters,
                           hostile=generator, hostile_rate=40) as fleet:
        time.sleep(0.5)
        first, started = sum(fleet.hostile_sent.values()), time.monotonic()
        time.sleep(1.5)
        sent = sum(fleet.hostile_sent.values())
        rate = (sent - first) / (time.monotonic() - started)
        fleet.flush()
    assert 10 <= rate <= 60, rate  # 40 asked; a loaded machine may lag, never burst
    hostile = obs.received(lambda t, p: not t.endswith("/status"))
    assert len(hostile) >= sent - 5  # a few may still be in flight to the observer
