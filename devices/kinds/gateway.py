"""Gateway: a LoRa or wM-Bus receiver or barn controller carrying non-MQTT devices."""

from devices.kind import DeviceKind, compose
from devices.metrics import BATTERY, RADIO, MetricSpec, temperature

KIND = DeviceKind(
    name="gateway",
    label_zh="网关",
    label_en="Gateway",
    metrics=compose(
        (MetricSpec("children_online", "devices", "child devices heard recently", 0, 100_000),),
        temperature("enclosure temperature", -50, 110),
        BATTERY,
        RADIO,
    ),
    stale_after_s=10 * 60,
)
