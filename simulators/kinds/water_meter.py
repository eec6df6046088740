"""A household water meter: daily use pattern, cumulative register, battery, and its faults."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime, timedelta

from devices.models import CommandBase, SetValveCommand
from simulators.clock import LOCAL_TZ
from simulators.faults import Faults
from simulators.sensor import CommandHandler, EventSpec, Sample

KIND = "water_meter"

# Share of a day's use in each local hour: quiet nights, a morning and an evening peak.
_WEEKDAY = (0.2, 0.1, 0.1, 0.1, 0.2, 1.0, 5.0, 9.0, 7.0, 4.0, 3.0, 5.0,
            6.0, 4.0, 2.5, 2.5, 3.0, 5.0, 8.0, 9.0, 7.0, 4.0, 1.5, 0.6)
# Weekends: people sleep in, the morning peak moves later and spreads out.
_WEEKEND = (0.3, 0.2, 0.1, 0.1, 0.1, 0.3, 1.5, 4.0, 7.0, 8.0, 6.0, 6.0,
            6.0, 4.0, 3.0, 3.0, 3.5, 5.0, 7.5, 8.5, 7.0, 4.5, 2.0, 0.8)
_SHARE = {False: [w / sum(_WEEKDAY) for w in _WEEKDAY],
          True: [w / sum(_WEEKEND) for w in _WEEKEND]}
_DRAW_M3 = 0.01  # water is drawn in bursts of about ten litres (a flush, a bucket)
LEAK_FLAGGED_AFTER_H = 1.0  # the meter raises `leak` once flow has not stopped this long
FLAT_BATTERY_V = 2.9


class WaterMeterPhysics:
    """One household's meter."""

    kind = KIND

    def __init__(self, rng: random.Random, start: datetime) -> None:
        self._rng = rng
        self.total_m3 = round(rng.uniform(20, 2500), 3)
        self.daily_m3 = rng.uniform(0.12, 0.45)  # a rural household, m³ per day
        self.leak_m3h = rng.uniform(0.004, 0.02)
        self.valve_open = True
        self.valve_stuck = False  # a seized valve: set_valve is rejected with the reason
        self._installed = start - timedelta(days=rng.uniform(0, 6 * 365))
        self._rssi = rng.uniform(-110, -75)
        self._raised: set[tuple[str, datetime]] = set()
        self.commands: Mapping[str, CommandHandler] = {"set_valve": self._set_valve}

    def _set_valve(self, command: CommandBase, now: datetime) -> str | None:
        assert isinstance(command, SetValveCommand)
        if self.valve_stuck:
            return "valve seized: it did not move"
        self.valve_open = command.open
        return None

    def _once(self, faults: Faults, name: str, slot: datetime) -> bool:
        """True the first time a fault window is seen (flags are raised once per window)."""
        window = faults.active(name, slot)
        if window is None or (name, window.start) in self._raised:
            return False
        self._raised.add((name, window.start))
        return True

    def sample(self, slot: datetime, interval_h: float, faults: Faults) -> Sample:
        """Advance the register by one interval of use and report it."""
        local = slot.astimezone(LOCAL_TZ)
        share = _SHARE[local.weekday() >= 5][local.hour]
        expected = self.daily_m3 * share * interval_h  # m³ expected in this slot
        chance = min(0.95, expected / _DRAW_M3)
        use = expected / chance * self._rng.uniform(0.5, 1.5) if self._rng.random() < chance else 0.0
        events: list[EventSpec] = []
        if faults.active("leak", slot):
            use += self.leak_m3h * interval_h
            hours = faults.hours_into("leak", slot) or 0.0
            if hours >= LEAK_FLAGGED_AFTER_H and self._once(faults, "leak", slot):
                events.append(EventSpec("leak", "major", {"flow_m3h": round(self.leak_m3h, 4)}))
        if faults.active("burst", slot):
            use += 2.0 * interval_h
            if self._once(faults, "burst", slot):
                events.append(EventSpec("burst", "critical", {"flow_m3h": 2.0}))
        if not self.valve_open:
            use = 0.0
        flow = use / interval_h
        if faults.active("reverse_flow", slot):
            flow = -0.05  # water pushed back: the register holds, the flow reads negative
            use = 0.0
            if self._once(faults, "reverse_flow", slot):
                events.append(EventSpec("reverse_flow", "major"))
        if self._once(faults, "meter_swap", slot):
            self.total_m3 = round(self._rng.uniform(0, 0.5), 3)  # a new meter's register
        self.total_m3 += use
        battery = self._battery(slot)
        if faults.active("flat_battery", slot):
            battery = FLAT_BATTERY_V + self._rng.uniform(-0.03, 0.03)
            if self._once(faults, "flat_battery", slot):
                events.append(EventSpec("low_battery", "minor", {"battery_v": round(battery, 2)}))
        season = math.cos(2 * math.pi * (local.timetuple().tm_yday - 200) / 365)
        return Sample({
            "total_m3": round(self.total_m3, 4),
            "flow_m3h": round(flow, 4),
            "valve_open": self.valve_open,
            "battery_v": round(battery, 3),
            "rssi_dbm": round(self._rssi + self._rng.gauss(0, 2)),
            "temperature_c": round(12 + 6 * season + self._rng.gauss(0, 0.3), 1),
        }, events)

    def _battery(self, slot: datetime) -> float:
        years = (slot - self._installed).total_seconds() / (365 * 86400)
        return 3.66 - 0.04 * years + self._rng.gauss(0, 0.004)
