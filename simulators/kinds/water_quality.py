"""A drinking-water-quality probe: GB 5749 parameters with noise, slow drift and faults."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime

from simulators.clock import local_hour
from simulators.faults import Faults
from simulators.sensor import CommandHandler, Sample

KIND = "water_quality"

CONTAMINATION_RAMP_H = 0.1  # a contamination reaches its full size in six minutes
CALIBRATION_DRIFT_PH_PER_H = 0.15


class WaterQualityPhysics:
    """One probe at a water works, a reservoir or a village tap."""

    kind = KIND
    commands: Mapping[str, CommandHandler] = {}

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        # Normal water, well inside GB 5749: pH 6.5 to 8.5, turbidity under 1 NTU,
        # free chlorine 0.3 to 2 mg/L leaving the plant (at least 0.05 at the tap).
        self._base = {
            "ph": rng.uniform(7.0, 7.7),
            "turbidity_ntu": rng.uniform(0.15, 0.4),
            "chlorine_mg_l": rng.uniform(0.4, 0.8),
            "conductivity_us_cm": rng.uniform(300, 700),
            "dissolved_oxygen_mg_l": rng.uniform(7.5, 9.5),
            "orp_mv": rng.uniform(600, 720),
        }
        self._drift = dict.fromkeys(self._base, 0.0)
        self._frozen: dict[str, float | bool] | None = None
        self._contamination = (rng.uniform(8, 25), rng.uniform(0.005, 0.03))

    def sample(self, slot: datetime, interval_h: float, faults: Faults) -> Sample:
        """Noise around a slowly drifting baseline, bent by any active fault."""
        if faults.active("fouling", slot):
            # A fouled sensor repeats the value it had when it fouled, exactly.
            if self._frozen is None:
                self._frozen = self._measure(slot, interval_h, faults)
            return Sample(dict(self._frozen))
        self._frozen = None
        return Sample(self._measure(slot, interval_h, faults))

    def _measure(self, slot: datetime, interval_h: float, faults: Faults) -> dict[str, float | bool]:
        rng = self._rng
        step = math.sqrt(interval_h)
        for name, base in self._base.items():
            # A bounded random walk of about 1% an hour: slow drift, no runaway.
            self._drift[name] = 0.98 * self._drift[name] + rng.gauss(0, 0.01 * base * step)
        value = {name: base + self._drift[name] for name, base in self._base.items()}
        noise = {"ph": 0.02, "turbidity_ntu": 0.03, "chlorine_mg_l": 0.01,
                 "conductivity_us_cm": 3.0, "dissolved_oxygen_mg_l": 0.05, "orp_mv": 4.0}
        for name, sigma in noise.items():
            value[name] += rng.gauss(0, sigma)
        progress = faults.progress("contamination", slot, CONTAMINATION_RAMP_H)
        if progress is not None:
            ramp = min(1.0, progress)
            turbidity, chlorine = self._contamination
            value["turbidity_ntu"] += ramp * turbidity
            value["chlorine_mg_l"] = (1 - ramp) * value["chlorine_mg_l"] + ramp * chlorine
            value["orp_mv"] -= ramp * 300
            value["conductivity_us_cm"] *= 1 + 0.3 * ramp
        drifted = faults.hours_into("calibration_drift", slot)
        if drifted is not None:
            value["ph"] += CALIBRATION_DRIFT_PH_PER_H * drifted
        temperature = 14 + 2 * math.sin(2 * math.pi * (local_hour(slot) - 9) / 24)
        return {
            "ph": round(min(max(value["ph"], 0.0), 14.0), 2),
            "turbidity_ntu": round(max(value["turbidity_ntu"], 0.01), 3),
            "chlorine_mg_l": round(max(value["chlorine_mg_l"], 0.0), 3),
            "conductivity_us_cm": round(max(value["conductivity_us_cm"], 1.0), 1),
            "dissolved_oxygen_mg_l": round(max(value["dissolved_oxygen_mg_l"], 0.0), 2),
            "orp_mv": round(value["orp_mv"], 1),
            "temperature_c": round(temperature + rng.gauss(0, 0.1), 2),
            "battery_v": round(12.6 + rng.gauss(0, 0.03), 2),
        }
