"""Faults driven from a test over a real broker: a contamination, cameras going dark in bulk."""

from __future__ import annotations

import orjson

from simulators.device import numbered
from simulators.fleet import SimulatedFleet
from tests.simulators.observer import Observer
from village.local import MosquittoServer
from village.settings import parse_mqtt_url


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

    def states(messages: list[tuple[str, bytes]]) -> dict[str, bytes]:
        return {t.split("/")[1]: p for t, p in messages if t.endswith("/status")}

    with SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, east + west) as fleet, \
            Observer(mosquitto.url, status) as obs:
        obs.wait_for(lambda m: len(states(m)) == 310)
        fleet.start_fault([d.device_id for d in east], "offline")
        seen = obs.wait_for(lambda m: list(states(m).values()).count(b"offline") == 300)
        final = states(seen)
        assert {d for d, s in final.items() if s == b"offline"} == {d.device_id for d in east}
        assert sorted(fleet.online()) == sorted(d.device_id for d in west)
