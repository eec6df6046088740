"""Why a device's message (or part of it) is refused: a reason code and a detail (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Why something was dead-lettered; stored as text in `dead_letters.reason`."""

    BAD_TOPIC = "bad_topic"
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    INVALID_JSON = "invalid_json"
    WRONG_SHAPE = "wrong_shape"
    TOO_MANY_ENTRIES = "too_many_entries"
    TOO_MANY_METRICS = "too_many_metrics"
    BAD_TIMESTAMP = "bad_timestamp"
    TS_IN_FUTURE = "ts_in_future"
    TS_TOO_OLD = "ts_too_old"
    BAD_METRIC_NAME = "bad_metric_name"
    BAD_VALUE_TYPE = "bad_value_type"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_EVENT = "bad_event"
    BAD_STATUS = "bad_status"
    UNKNOWN_DEVICE = "unknown_device"
    RETIRED_DEVICE = "retired_device"
    FOREIGN_DEVICE = "foreign_device"
    NOT_A_GATEWAY = "not_a_gateway"
    STORAGE_REFUSED = "storage_refused"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    """One thing refused, with a reason code and a human-readable detail."""

    reason: Reason
    detail: str
    entry: int | None = None
    metric: str | None = None

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form for `dead_letters.problems`."""
        return {"reason": self.reason.value, "detail": self.detail, "entry": self.entry,
                "metric": self.metric}


_MAX_SHOWN = 60


def shown(value: object) -> str:
    """A short, escaped rendering of hostile input for a detail message."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
