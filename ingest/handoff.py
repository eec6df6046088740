"""The hand-off between the MQTT network thread and the writer: a bounded queue of messages.

The network callback only appends here and returns. What bounds it is the MQTT v5 receive
maximum (the broker sends no more unacknowledged QoS 1 messages than that), or over MQTT
3.1.1 the subscriber holding its network thread while this is that full; QoS 0 messages
are not covered by it, so past a hard cap they are refused and counted instead of growing
memory without bound (the contract says QoS 1 for every device topic).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime
from typing import NamedTuple


class Message(NamedTuple):
    """One received MQTT message, as the network thread saw it (a tuple: cheap to build)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: datetime
    # Which connection delivered it: a packet id means nothing on another connection.
    generation: int = 0


class HandOff:
    """A FIFO of received messages that the writer takes in batches."""

    def __init__(self, cap: int) -> None:
        self._queue: deque[Message] = deque()
        self._cond = threading.Condition()
        self._cap = cap
        self._bytes = 0  # payload bytes held
        self.dropped_qos0 = 0

    def put(self, message: Message) -> bool:
        """Append a message (never blocks); False if a QoS 0 message was refused at the cap."""
        with self._cond:
            if message.qos == 0 and len(self._queue) >= self._cap:
                self.dropped_qos0 += 1
                return False
            self._queue.append(message)
            self._bytes += len(message.payload)
            if len(self._queue) == 1:
                self._cond.notify()
            return True

    def take(self, max_messages: int, max_wait_s: float, idle_wait_s: float,
             max_bytes: int = 1 << 62) -> list[Message]:
        """Up to `max_messages` (and about `max_bytes` of payload), once the oldest held
        message has waited `max_wait_s`.

        The wait counts from when the oldest message arrived, so messages that queued up
        while the previous batch was committing go at once. With nothing held it waits at
        most `idle_wait_s` for a first message, so the caller can look at its stop flag.
        """
        with self._cond:
            if not self._queue:
                self._cond.wait(idle_wait_s)
            if not self._queue:
                return []
            deadline = self._queue[0].received_at.timestamp() + max_wait_s
        while len(self._queue) < max_messages and self._bytes < max_bytes:
            remaining = deadline - time.time()
            if remaining <= 0:
                break
            # Polling in short sleeps is cheaper than a notify per message on the hot path.
            time.sleep(min(remaining, 0.002))
        batch: list[Message] = []
        taken = 0
        with self._cond:
            while self._queue and len(batch) < max_messages and (not batch or taken < max_bytes):
                message = self._queue.popleft()
                taken += len(message.payload)
                batch.append(message)
            self._bytes -= taken
        return batch

    def __len__(self) -> int:
        return len(self._queue)
