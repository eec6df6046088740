"""A livestock barn: air following the day and the weather, gases following ventilation."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import datetime

from simulators.clock import LOCAL_TZ, local_hour
from simulators.faults import Faults
from simulators.sensor import CommandHandler, Sample

KIND = "barn"

HEAT_WAVE_MEAN_C = 34.0  # a heat wave's daily mean outside, whatever the season


def outside_temperature(slot: datetime, heat_wave: bool) -> float:
    """A North China day: seasonal mean, warmest at 15:00, coldest before dawn."""
    day = slot.astimezone(LOCAL_TZ).timetuple().tm_yday
    seasonal = 12 - 15 * math.cos(2 * math.pi * (day - 15) / 365)
    daily = 6 * math.cos(2 * math.pi * (local_hour(slot) - 15) / 24)
    return (max(seasonal, HEAT_WAVE_MEAN_C) if heat_wave else seasonal) + daily


VENTILATION_RAMP_H = 1.0  # gases near their plateau about three hours after fans stop


def _climb(progress: float | None, height: float, time_constants: float) -> float:
    """How far a quantity has climbed, `progress` ramp times into a fault (0 when none)."""
    return 0.0 if progress is None else height * (1 - math.exp(-progress / time_constants))


class BarnPhysics:
    """One barn of dairy cattle, its ventilation normally working."""

    kind = KIND
    commands: Mapping[str, CommandHandler] = {}

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._herd_heat_c = rng.uniform(3, 6)
        # Normal air, under the NY/T 388 limits (NH3 20 mg/m³ ≈ 28 ppm for cattle,
        # H2S 8 mg/m³ ≈ 5.7 ppm, CO2 1,500 mg/m³ ≈ 830 ppm).
        self._nh3 = rng.uniform(4, 8)
        self._co2 = rng.uniform(520, 650)
        self._h2s = rng.uniform(0.2, 0.6)

    def sample(self, slot: datetime, interval_h: float, faults: Faults) -> Sample:
        """The barn's air at `slot`."""
        rng = self._rng
        heat_wave = faults.active("heat_wave", slot) is not None
        outside = outside_temperature(slot, heat_wave)
        # The barn buffers the weather and the herd warms it.
        inside = 10 + 0.7 * (outside - 10) + self._herd_heat_c
        failed = faults.progress("ventilation_failure", slot, VENTILATION_RAMP_H)
        inside += _climb(failed, 10, 1.5)
        humidity = 70 - 0.6 * (outside - 12) + _climb(failed, 18, 1.0)
        body = 38.7 + rng.gauss(0, 0.15) + (0.6 if heat_wave else 0.0)
        if faults.active("fever", slot):
            body = 40.6 + rng.gauss(0, 0.15)
        return Sample({
            "temperature_c": round(inside + rng.gauss(0, 0.2), 2),
            "humidity_pct": round(min(max(humidity + rng.gauss(0, 1.0), 5.0), 100.0), 1),
            "nh3_ppm": round(max(self._nh3 + rng.gauss(0, 0.5) + _climb(failed, 55, 1.5), 0), 2),
            "co2_ppm": round(max(self._co2 + rng.gauss(0, 20) + _climb(failed, 3500, 1.0), 400)),
            "h2s_ppm": round(max(self._h2s + rng.gauss(0, 0.05) + _climb(failed, 12, 2.0), 0), 3),
            "body_temp_c": round(body, 2),
        })
