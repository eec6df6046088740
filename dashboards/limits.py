"""The figures dashboards draw and test against (from the county's domain reference).

Defaults, not law: every one is a named constant so a county can change it in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    """An acceptable range; None means no limit on that side."""

    low: float | None = None
    high: float | None = None

    def outside(self, value: float) -> bool:
        """Whether a value breaks the band."""
        return (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        )


# GB 5749-2022 drinking water. Chlorine: at least 0.05 mg/L at the tap, at most 2 mg/L
# leaving the plant (the stricter 0.3 lower limit applies only at the plant outlet).
PH_LOW, PH_HIGH = 6.5, 8.5
TURBIDITY_MAX_NTU = 1.0
CHLORINE_MIN_MG_L, CHLORINE_MAX_MG_L = 0.05, 2.0
DISSOLVED_OXYGEN_WARN_MG_L = 5.0
DRINKING_WATER: dict[str, Band] = {
    "ph": Band(PH_LOW, PH_HIGH),
    "turbidity_ntu": Band(None, TURBIDITY_MAX_NTU),
    "chlorine_mg_l": Band(CHLORINE_MIN_MG_L, CHLORINE_MAX_MG_L),
    "dissolved_oxygen_mg_l": Band(DISSOLVED_OXYGEN_WARN_MG_L, None),
}
TURBIDITY_CRITICAL_NTU = 3.0
PH_MAJOR = Band(6.0, 9.0)
DISSOLVED_OXYGEN_DANGER_MG_L = 3.0

# NY/T 388 barn gases, mg/m³, per species; devices report ppm (converted at 25 °C).
GAS_LIMITS_MG_M3: dict[str, dict[str, float]] = {
    "nh3_ppm": {"poultry_chicks": 10, "poultry": 15, "pigs": 25, "cattle": 20},
    "h2s_ppm": {"poultry_chicks": 2, "poultry": 10, "pigs": 10, "cattle": 8},
    "co2_ppm": {"poultry_chicks": 1500, "poultry": 1500, "pigs": 1500, "cattle": 1500},
}
# An untagged barn is held to the strictest limits until someone sets `tags.species`.
DEFAULT_SPECIES = "poultry_chicks"
MOLAR_MASS_G_MOL = {"nh3_ppm": 17.031, "h2s_ppm": 34.08, "co2_ppm": 44.01}
MOLAR_VOLUME_L = 24.45  # one mole of gas at 25 °C and 1 atm


def ppm_to_mg_m3(metric: str, ppm: float) -> float:
    """A gas concentration in ppm as mg/m³ at 25 °C."""
    return ppm * MOLAR_MASS_G_MOL[metric] / MOLAR_VOLUME_L


# Temperature-humidity index bands for cattle heat stress.
THI_MILD, THI_MODERATE, THI_SEVERE = 72.0, 79.0, 89.0


def thi(temperature_c: float, humidity_pct: float) -> float:
    """THI = (1.8·T + 32) − (0.55 − 0.0055·RH)·(1.8·T − 26)."""
    return (1.8 * temperature_c + 32) - (0.55 - 0.0055 * humidity_pct) * (
        1.8 * temperature_c - 26
    )


BODY_TEMP_WATCH_C = 39.5
BODY_TEMP_VET_C = 40.0

# Water meters: an hour whose register moved less than this counts as a zero hour (a
# typical household register resolves one litre).
ZERO_HOUR_M3 = 0.001
LEAK_WINDOW_HOURS = 24
# A leak verdict needs most of the window covered by hourly data.
LEAK_MIN_HOURS = 20
NIGHT_HOURS = (2, 3)  # 02:00 to 04:00 county time
BATTERY_LOW_V = 3.3
BATTERY_CRITICAL_V = 3.1
COUNTY_TIMEZONE = "Asia/Shanghai"
