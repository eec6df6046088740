"""Small builders shared by the alerting tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alerting.model import AlertView, Sample, Subject
from alerting.rules import Rule, build_rule

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


def rule(condition: dict, kind: str = "water_quality", metric: str | None = None,
         name: str = "r", **select: object) -> Rule:
    """A rule from a condition mapping, as YAML would give it."""
    sel: dict[str, object] = {"kind": kind, **select}
    if metric:
        sel["metric"] = metric
    return build_rule({"name": name, "severity": "major", "summary_zh": "测试",
                       "summary_en": "test", "select": sel, "condition": condition}, 0)


def series(points: Sequence[tuple[float, float]]) -> list[Sample]:
    """Samples from (minutes after T0, value) pairs."""
    return [Sample(at(m), v) for m, v in points]


def device(device_id: str = "wq-1", kind: str = "water_quality", township: str = "T1",
           village: str = "V1", **more: object) -> Subject:
    """A registry subject."""
    return Subject(device_id, kind, township, village, **more)  # type: ignore[arg-type]


def alert_view(**fields: object) -> AlertView:
    """A firing threshold alert on a water-quality probe, with these fields changed."""
    values: dict[str, object] = {
        "alert_id": 1, "rule": "r", "condition": "threshold", "severity": "critical",
        "state": "firing", "summary": "s", "device_id": "d1", "device_name": None,
        "kind": "water_quality", "township": "T1", "village": "V1", "grid": None,
        "metric": "ph", "unit": None, "value": 9.5, "threshold": 8.5, "last_value": None,
        "started_at": T0, "resolved_at": None, "acknowledged_at": None,
        "acknowledged_by": None, "ack_comment": None,
    }
    return AlertView(**{**values, **fields})  # type: ignore[arg-type]
