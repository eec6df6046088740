"""Simulated speakers over a real private Mosquitto: commands, acks, offline and back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from devices.models import PlayCommand
from devices.topics import Channel, topic
from ground.local import MosquittoServer
from ground.settings import parse_mqtt_url
from simulators.commands import NEVER_ACK, OFFLINE, late_ack
from simulators.device import numbered
from simulators.fleet import SimulatedFleet
from simulators.speaker import PlayTiming
from tests.simulators.observer import Observer, statuses

FAST = PlayTiming(base_s=0.2, seconds_per_char=0.0)


def acks_by_device(messages: list[tuple[str, bytes]]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for name, payload in messages:
        if name.endswith("/cmd/ack"):
            body = orjson.loads(payload)
            out.setdefault(name.split("/")[1], []).append((body["id"], body["result"]))
    return out


def test_speakers_obey_priority_expiry_and_duplicates_over_mqtt(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    devices = numbered("speaker", 3, "spk")
    behaviours = {"spk-0002": NEVER_ACK, "spk-0003": late_ack(0.5)}
    with Observer(mosquitto.url, f"{topic_prefix}/+/cmd/ack", f"{topic_prefix}/+/event") as obs, \
            SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, devices,
                           behaviours=behaviours, timing=PlayTiming(base_s=3)) as fleet:
        cmd = topic(topic_prefix, "spk-0001", Channel.COMMAND)
        expired = datetime.now(UTC) - timedelta(seconds=1)
        obs.publish(cmd, PlayCommand(id="n1", text="通知").to_payload())
        obs.publish(cmd, PlayCommand(id="e1", priority="emergency", text="洪水").to_payload())
        obs.publish(cmd, PlayCommand(id="n2", text="通知").to_payload())
        obs.publish(cmd, PlayCommand(id="e1", priority="emergency", text="洪水").to_payload())
        obs.publish(cmd, PlayCommand(id="x1", expires_at=expired, text="过期").to_payload())
        for other in ("spk-0002", "spk-0003"):
            obs.publish(topic(topic_prefix, other, Channel.COMMAND),
                        PlayCommand(id="o1", text="通知").to_payload())
        seen = obs.wait_for(lambda m: len(acks_by_device(m).get("spk-0001", [])) >= 5
                            and len(acks_by_device(m).get("spk-0003", [])) >= 1)
        assert acks_by_device(seen)["spk-0001"] == [
            ("n1", "accepted"), ("n1", "failed"), ("e1", "accepted"), ("n2", "rejected"),
            ("x1", "rejected")]
        assert acks_by_device(seen)["spk-0003"] == [("o1", "accepted")]
        log = fleet.speaker_log("spk-0001")
        assert log.started == ["n1", "e1"] and log.preempted == ["n1"]
        assert log.duplicates == ["e1"]
        assert log.rejected == {"n2": "busy with higher priority emergency (e1)", "x1": "expired"}
        time.sleep(0.3)
        assert "spk-0002" not in acks_by_device(obs.received())
        assert fleet.speaker_log("spk-0002").started == ["o1"]


def test_an_offline_speaker_gets_its_queued_command_when_it_comes_back(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    devices = numbered("speaker", 2, "spk")
    status_filter = f"{topic_prefix}/+/status"
    with SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, devices,
                        behaviours={"spk-0002": OFFLINE}, timing=FAST) as fleet:
        assert fleet.online() == ["spk-0001"]
        with Observer(mosquitto.url, status_filter, f"{topic_prefix}/+/cmd/ack") as obs:
            retained = obs.wait_for(lambda m: len([1 for t, _ in m if t.endswith("/status")]) >= 2)
            assert statuses(retained) == {"spk-0001": b"online", "spk-0002": b"offline"}
            obs.publish(topic(topic_prefix, "spk-0002", Channel.COMMAND),
                        PlayCommand(id="q1", text="排队").to_payload())
            time.sleep(0.2)
            assert fleet.speaker_log("spk-0002").started == []
            fleet.bring_online(["spk-0002"])
            seen = obs.wait_for(lambda m: ("q1", "done") in acks_by_device(m).get("spk-0002", []))
            assert acks_by_device(seen)["spk-0002"] == [("q1", "accepted"), ("q1", "done")]
            fleet.take_offline(["spk-0001"])
            obs.wait_for(lambda m: (status_filter.replace("+", "spk-0001"), b"offline") in m)


def test_four_hundred_speakers_twenty_offline_ten_silent_in_one_process(
    mosquitto: MosquittoServer, topic_prefix: str
) -> None:
    devices = numbered("speaker", 400, "spk")
    ids = [d.device_id for d in devices]
    behaviours = {d: OFFLINE for d in ids[:20]} | {d: NEVER_ACK for d in ids[20:30]}
    started = time.monotonic()
    with SimulatedFleet(parse_mqtt_url(mosquitto.url), topic_prefix, devices,
                        behaviours=behaviours, timing=FAST) as fleet, \
            Observer(mosquitto.url, f"{topic_prefix}/+/cmd/ack") as obs:
        ready_s = time.monotonic() - started
        payload = PlayCommand(id="all-1", priority="emergency", text="紧急通知").to_payload()
        sent = time.monotonic()
        for device_id in ids:
            obs.publish(topic(topic_prefix, device_id, Channel.COMMAND), payload)
        seen = obs.wait_for(lambda m: sum(1 for acks in acks_by_device(m).values()
                                          if ("all-1", "done") in acks) >= 370, 60)
        answered = acks_by_device(seen)
        assert sorted(answered) == ids[30:]
        assert all(acks == [("all-1", "accepted"), ("all-1", "done")]
                   for acks in answered.values())
        fleet.flush()
    print(f"400 speakers ready in {ready_s:.1f} s; all acked {time.monotonic() - sent:.1f} s"
          " after the first command")
