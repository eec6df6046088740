"""The pieces of the soak benchmark (bench/soak.py): counties, load generators, probes.

Counties are generated populations renamed per county (ids `cNN-...`, townships `NN县...`).
The simulators and the NB-IoT burst run in child processes of their own, so the measuring
process stays light; they report what they published through shared counters.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import orjson
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from devices.topics import Channel, topic
from ground.mqtt import ClientOptions, build_client, connect_async
from ground.settings import parse_mqtt_url
from simulators.device import SimDevice
from simulators.fleet import SimulatedFleet
from simulators.population import GATEWAY_CARRIES, PopulationSpec, generate_population

DAY_READINGS = 96  # an NB-IoT meter's day: a register reading every 15 minutes


@dataclass(frozen=True)
class County:
    """One county's devices: those simulated in real time and the NB-IoT burst meters."""

    index: int
    realtime: list[SimDevice]
    burst: list[SimDevice]

    @property
    def speakers(self) -> list[str]:
        """The county's loudspeakers (an emergency's scope)."""
        return [d.device_id for d in self.realtime if d.kind == "speaker"]

    @property
    def townships(self) -> list[str]:
        """The county's townships."""
        return sorted({d.township or "" for d in self.realtime + self.burst})


def county(index: int, burst_share: float, cameras_on_gateways: bool = False) -> County:
    """A county of the planning mix (15,000 meters, 3,000 cameras, 400 speakers, ...):
    `burst_share` of its meters are NB-IoT (direct, one upload a day), the rest ride one
    gateway per village and report every 15 minutes; cameras connect themselves unless
    `cameras_on_gateways` (the village's uplink carries them: one broker connection per
    village instead of 75)."""
    prefix = f"c{index:02d}-"
    carried = GATEWAY_CARRIES | ({"camera"} if cameras_on_gateways else set())
    spec = PopulationSpec(gateways=True, gateway_kinds=frozenset(carried))
    devices = [replace(d, device_id=prefix + d.device_id,
                       gateway_id=prefix + d.gateway_id if d.gateway_id else None,
                       township=f"{index:02d}县{d.township}", village=f"{index:02d}县{d.village}")
               for d in generate_population(spec, seed=index)]
    meters = [d for d in devices if d.kind == "water_meter"]
    burst = {d.device_id for d in meters[:round(len(meters) * burst_share)]}
    return County(index,
                  [d for d in devices if d.device_id not in burst],
                  [replace(d, gateway_id=None) for d in devices if d.device_id in burst])


def run_fleet(mqtt_url: str, prefix: str, devices: list[SimDevice], seed: int,
              published: Synchronized, ready: Event, stop: Event, tamper_every_s: float) -> None:
    """Child process: simulate the devices in real time until `stop`, a camera tampered
    with every `tamper_every_s` (for a minute): live alerts, beside those of the burst."""
    fleet = SimulatedFleet(parse_mqtt_url(mqtt_url), prefix, devices, seed=seed, nb_iot_share=0.0)
    fleet.start(timeout_s=900)
    ready.set()
    cameras = [d.device_id for d in devices if d.kind == "camera"]
    tampered = 0
    next_tamper = time.monotonic() + tamper_every_s if tamper_every_s > 0 and cameras \
        else float("inf")
    while not stop.wait(0.5):
        published.value = fleet.counters.published
        if time.monotonic() >= next_tamper:
            fleet.start_fault([cameras[tampered % len(cameras)]], "tamper", duration_s=60)
            tampered += 1
            next_tamper += tamper_every_s
    fleet.stop()
    published.value = fleet.counters.published


def day_payload(end: datetime, start_m3: float) -> bytes:
    """A meter's store-and-forward day: 96 register readings up to `end`."""
    return orjson.dumps([
        {"ts": (end - timedelta(minutes=15 * (DAY_READINGS - 1 - i))).isoformat(),
         "total_m3": round(start_m3 + i * 0.004, 3)} for i in range(DAY_READINGS)])


def run_burst(mqtt_url: str, prefix: str, meter_ids: list[str], end: datetime, over_s: float,
              published: Synchronized, acknowledged: Synchronized, done: Event) -> None:
    """Child process: every meter uploads its day up to `end` (QoS 1), evenly over `over_s`
    seconds, as NB-IoT meters do in the morning; returns when the broker has acknowledged
    every message."""
    endpoint = parse_mqtt_url(mqtt_url)
    options = ClientOptions(client_id=f"soak-burst-{os.getpid()}", persistent_session=False)
    client = build_client(endpoint, options)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    acked = [0]
    client.on_publish = lambda *args: acked.__setitem__(0, acked[0] + 1)
    connected = []
    client.on_connect = lambda *args: connected.append(True)
    connect_async(client, endpoint, options)
    client.loop_start()
    deadline = time.monotonic() + 30
    while not connected and time.monotonic() < deadline:
        time.sleep(0.05)
    infos = []
    begin = time.monotonic()
    for number, meter in enumerate(meter_ids):
        time.sleep(max(0.0, begin + over_s * number / len(meter_ids) - time.monotonic()))
        infos.append(client.publish(topic(prefix, meter, Channel.TELEMETRY),
                                    day_payload(end, 100 + number % 500), qos=1))
        published.value = number + 1
        acknowledged.value = acked[0]
    for info in infos:
        info.wait_for_publish(600)
    acknowledged.value = acked[0]
    client.disconnect()
    client.loop_stop()
    done.set()


# A day's upload is committed once its meter's latest register carries the day's last slot.
_DAYS_STORED = """
SELECT count(*) FROM latest_values
WHERE device_id = ANY(%s) AND metric = 'total_m3' AND ts >= %s
"""


def days_stored(url: str, meter_ids: list[str], end: datetime) -> int:
    """How many of these meters' day uploads (up to `end`) are committed."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(_DAYS_STORED, (meter_ids, end)).fetchone()[0]  # type: ignore[index]


class BrokerStore:
    """Mosquitto's own count of the messages it holds (retained ones and the queues of
    sessions not keeping up), read from `$SYS` as the broker publishes it."""

    TOPIC = "$SYS/broker/store/messages/count"

    def __init__(self, mqtt_url: str) -> None:
        endpoint = parse_mqtt_url(mqtt_url)
        options = ClientOptions(client_id=f"soak-sys-{os.getpid()}", persistent_session=False)
        self.count: int | None = None
        self._client = build_client(endpoint, options)
        self._client.on_connect = lambda client, *args: client.subscribe(self.TOPIC)
        self._client.on_message = lambda client, userdata, message: setattr(
            self, "count", int(message.payload))
        connect_async(self._client, endpoint, options)
        self._client.loop_start()

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A metrics endpoint's samples by (name, labels); empty if it does not answer."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    """The sum of a metric's samples whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= set(found))


def histogram_p99(before: dict, after: dict, name: str, **labels: str) -> float | None:
    """The upper bound of the bucket holding the 99th percentile of what was observed
    between two scrapes (None if nothing was)."""
    def buckets(samples: dict) -> dict[float, float]:
        found: dict[float, float] = {}
        for (n, pairs), value in samples.items():
            named = dict(pairs)
            if n == f"{name}_bucket" and all(named.get(k) == v for k, v in labels.items()):
                le = float(named["le"])
                found[le] = found.get(le, 0.0) + value
        return found
    start, end = buckets(before), buckets(after)
    counts = sorted((le, end[le] - start.get(le, 0.0)) for le in end)
    if not counts or counts[-1][1] <= 0:
        return None
    for le, count in counts:
        if count >= 0.99 * counts[-1][1]:
            return le
    return None


def proc_stats(pid: int) -> tuple[float, float]:
    """A process's resident memory (MB) and CPU seconds so far (0, 0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    rows = [r for r in status.splitlines() if r.startswith("VmRSS:")]
    if not rows:
        return 0.0, 0.0  # a zombie: exited, not yet reaped
    rss = int(rows[0].split()[1]) / 1024
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """A process's living children (an ingest worker's committer)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in children.read_text().split()]
        except OSError:
            continue
    return found


def postgres_cpu_s() -> float:
    """CPU seconds so far of every PostgreSQL process on the machine (the server works for
    every service: its share belongs beside theirs)."""
    spent = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if name == "postgres":
            ticks = fields.split()
            spent += (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")
    return spent


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 of a list (NaN for an empty one)."""
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

