"""Drinking-water-quality probe (GB 5749 parameters and their online proxies)."""

from devices.kind import DeviceKind, compose
from devices.metrics import BATTERY, MetricSpec, temperature

KIND = DeviceKind(
    name="water_quality",
    label_zh="水质监测",
    label_en="Water quality probe",
    metrics=compose(
        (
            MetricSpec("ph", "pH", "pH", 0, 14),
            MetricSpec("turbidity_ntu", "NTU", "turbidity", 0, 4000),
            MetricSpec("chlorine_mg_l", "mg/L", "free chlorine residual", 0, 20),
            MetricSpec("conductivity_us_cm", "µS/cm", "electrical conductivity", 0, 200_000),
            MetricSpec("dissolved_oxygen_mg_l", "mg/L", "dissolved oxygen", 0, 50),
            MetricSpec("orp_mv", "mV", "oxidation-reduction potential", -2000, 2000),
        ),
        temperature("water temperature", -10, 70),
        BATTERY,
    ),
    stale_after_s=15 * 60,
)
