"""Surveillance camera, watched for health and events (never video)."""

from devices.kind import DeviceKind, compose
from devices.metrics import RADIO, MetricSpec, temperature

KIND = DeviceKind(
    name="camera",
    label_zh="摄像头",
    label_en="Camera",
    metrics=compose(
        (
            MetricSpec("storage_used_pct", "%", "local storage used", 0, 100),
            MetricSpec("bitrate_kbps", "kbit/s", "video bitrate", 0, 200_000),
            MetricSpec("fps", "frames/s", "frame rate", 0, 240),
        ),
        temperature("housing temperature", -50, 110),
        RADIO,
    ),
    event_types=("motion", "person", "intrusion", "tamper"),
    stale_after_s=5 * 60,
)
