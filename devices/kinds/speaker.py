"""Networked digital loudspeaker: health metrics, and it plays what it is told."""

from devices.kind import DeviceKind, compose
from devices.metrics import RADIO, MetricSpec, temperature

KIND = DeviceKind(
    name="speaker",
    label_zh="智能广播",
    label_en="Loudspeaker",
    metrics=compose(
        (MetricSpec("volume_pct", "%", "output volume", 0, 100),),
        temperature("amplifier temperature", -50, 110),
        RADIO,
    ),
    event_types=("play_started", "play_finished"),
    command_ops=("play", "stop", "set_volume"),
    stale_after_s=5 * 60,
)
