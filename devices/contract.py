"""Constants of the device contract (version 1; docs/contract.md says how it is honoured)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, get_args

CONTRACT_VERSION = 1
DEFAULT_TOPIC_PREFIX = "sv"
TOPIC_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,64}")
METRIC_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_ENTRIES_PER_MESSAGE = 1000
# Not in the contract's text, but a bound is needed: the largest kind has 8 metrics.
MAX_METRICS_PER_READING_SET = 128

FUTURE_TOLERANCE_S = 600
DEFAULT_ACCEPTED_LATENESS_DAYS = 30


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds the contract and the deployment put on payloads."""

    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_entries: int = MAX_ENTRIES_PER_MESSAGE
    max_metrics: int = MAX_METRICS_PER_READING_SET
    future_tolerance: timedelta = timedelta(seconds=FUTURE_TOLERANCE_S)
    accepted_lateness: timedelta = timedelta(days=DEFAULT_ACCEPTED_LATENESS_DAYS)


Priority = Literal["normal", "alert", "emergency"]  # lowest first
PRIORITIES: tuple[Priority, ...] = get_args(Priority)


def priority_rank(priority: str) -> int:
    """Rank a broadcast priority: higher interrupts lower."""
    return PRIORITIES.index(priority)


def is_valid_device_id(device_id: str) -> bool:
    """Whether a device id has the contract's shape."""
    return DEVICE_ID_PATTERN.fullmatch(device_id) is not None
