"""Livestock barn: air climate, gases and the hottest animal a thermal sensor sees."""

from devices.kind import DeviceKind, compose
from devices.metrics import MetricSpec, temperature

KIND = DeviceKind(
    name="barn",
    label_zh="畜舍环境",
    label_en="Livestock barn",
    metrics=compose(
        temperature("air temperature", -50, 70),
        (
            MetricSpec("humidity_pct", "%RH", "relative humidity", 0, 100),
            MetricSpec("nh3_ppm", "ppm", "ammonia", 0, 1000),
            MetricSpec("co2_ppm", "ppm", "carbon dioxide", 0, 100_000),
            MetricSpec("h2s_ppm", "ppm", "hydrogen sulphide", 0, 1000),
            MetricSpec(
                "body_temp_c", "°C", "highest animal surface temperature seen", 0, 60
            ),
        ),
    ),
    stale_after_s=10 * 60,
)
