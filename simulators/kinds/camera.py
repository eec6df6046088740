"""A camera watched for health and events: motion and people by time of day; full disks, tamper."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from simulators.clock import local_hour
from simulators.faults import Faults
from simulators.sensor import CommandHandler, EventSpec, Sample

KIND = "camera"


def motion_per_hour(hour: float) -> float:
    """How often a village camera sees motion: busy by day, quiet at night."""
    if 7 <= hour < 20:
        return 4.0
    if 5 <= hour < 7 or 20 <= hour < 23:
        return 1.5
    return 0.3


class CameraPhysics:
    """One camera at a crossroads or a household gate."""

    kind = KIND
    commands: Mapping[str, CommandHandler] = {}

    def __init__(self, device_id: str, rng: random.Random) -> None:
        self._device_id = device_id
        self._rng = rng
        self._storage = rng.uniform(40, 85)  # recording loops overwrite the oldest footage
        self._bitrate = rng.choice((1024, 2048, 4096))
        self._rssi = rng.uniform(-80, -50)
        self._tampered: set[datetime] = set()

    def sample(self, slot: datetime, interval_h: float, faults: Faults) -> Sample:
        """Health at `slot`, and the events seen during the interval before it."""
        rng = self._rng
        hour = local_hour(slot)
        night = not 6 <= hour < 19
        bitrate = self._bitrate * (0.6 if night else 1.0) * rng.uniform(0.9, 1.1)
        storage = min(self._storage + rng.uniform(-0.5, 0.5), 95.0)
        events: list[EventSpec] = []
        tamper = faults.active("tamper", slot)
        if tamper is not None:
            bitrate = rng.uniform(30, 90)  # a covered lens compresses to almost nothing
            if tamper.start not in self._tampered:
                self._tampered.add(tamper.start)
                events.append(EventSpec("tamper", "major", {"cause": "lens covered"},
                                        self._snapshot(slot)))
        else:
            events.extend(self._activity(slot, hour, interval_h, night))
        if faults.active("storage_full", slot):
            storage = rng.uniform(99.0, 100.0)
        return Sample({
            "storage_used_pct": round(storage, 1),
            "bitrate_kbps": round(bitrate),
            "fps": 25 if tamper is None else rng.choice((25, 24)),
            "temperature_c": round(25 + (0 if night else 8) + rng.gauss(0, 1), 1),
            "rssi_dbm": round(self._rssi + rng.gauss(0, 2)),
        }, events)

    def _activity(self, slot: datetime, hour: float, interval_h: float,
                  night: bool) -> list[EventSpec]:
        rng = self._rng
        events: list[EventSpec] = []
        expected = motion_per_hour(hour) * interval_h
        # Poisson arrivals by inversion: cheap and exact enough for small rates.
        threshold, product, count = math.exp(-expected), rng.random(), 0
        while product > threshold:
            count += 1
            product *= rng.random()
        for _ in range(count):
            # Events happen during the interval; distinct times keep them distinct rows.
            at = slot - timedelta(milliseconds=rng.randrange(1, int(interval_h * 3_600_000)))
            if rng.random() < 0.3:
                intrusion = night and rng.random() < 0.2
                events.append(EventSpec("intrusion" if intrusion else "person",
                                        "warning" if intrusion else "info",
                                        {"zone": "gate"}, self._snapshot(at), at))
            else:
                events.append(EventSpec("motion", "info", None, self._snapshot(at), at))
        return events

    def _snapshot(self, slot: datetime) -> str:
        # `.invalid` says it plainly: there is no picture behind a simulated event.
        return f"https://snapshots.invalid/{self._device_id}/{slot:%Y%m%dT%H%M%S%f}.jpg"
