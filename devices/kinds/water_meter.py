"""Smart water meter: a cumulative register, flow, battery and radio."""

from devices.kind import DeviceKind, compose
from devices.metrics import BATTERY, RADIO, MetricSpec, boolean_metric, temperature

KIND = DeviceKind(
    name="water_meter",
    label_zh="智能水表",
    label_en="Water meter",
    metrics=compose(
        (
            MetricSpec(
                "total_m3", "m³", "cumulative register; decreases only on a meter swap", 0, 1e8
            ),
            # Negative flow is reverse flow, which meters report as such.
            MetricSpec("flow_m3h", "m³/h", "instantaneous flow", -100, 100),
            boolean_metric("valve_open", "1 open, 0 closed"),
        ),
        BATTERY,
        RADIO,
        temperature("water temperature", -10, 70),
    ),
    event_types=("leak", "burst", "reverse_flow", "tamper", "low_battery"),
    command_ops=("set_valve",),
    # NB-IoT meters wake once a day: silent for a day and a bit is normal.
    stale_after_s=26 * 3600,
)
