"""A batch crosses to the committer process column by column and arrives as it was sent."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

from ingest.committer import from_wire, to_wire
from ingest.handoff import Message

AT = datetime(2026, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)


def test_messages_arrive_as_sent_with_their_receipt_time_to_the_microsecond() -> None:
    sent = [
        Message("v/wm-1/telemetry", b'{"total_m3": 1}', 17, 1, False, AT, 3),
        Message("v/cam-1/status", b"online", 18, 1, True, AT + timedelta(microseconds=1), 3),
        Message("v/村-1/telemetry", b"\x00\xff", 0, 0, False,
                AT + timedelta(days=400, microseconds=999_999), 3),
        Message("v/wm-2/event", b"", 19, 0, True, datetime(1999, 12, 31, tzinfo=UTC), 4),
    ]
    number, received = from_wire(pickle.loads(pickle.dumps(to_wire(42, sent))))
    assert number == 42
    # Packet ids and connection generations stay with the worker, which acknowledges.
    assert received == [message._replace(mid=0, generation=0) for message in sent]


def test_an_empty_batch_stays_empty() -> None:
    assert from_wire(to_wire(1, [])) == (1, [])
