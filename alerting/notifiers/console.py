"""The local receiver: prints what would be sent (for `village up` and development)."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from pydantic import BaseModel, ConfigDict

from alerting.notifiers.base import Message, Recipient


class ConsoleConfig(BaseModel):
    """No options: it prints to standard output."""

    model_config = ConfigDict(extra="forbid")


class ConsoleNotifier:
    """Writes each message, with whom it is for, to a stream."""

    channel = "console"
    _lock = threading.Lock()

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: Message, recipient: Recipient | None) -> None:
        """Print the message."""
        to = f"{recipient.name} ({recipient.person_id})" if recipient else "everyone on the route"
        out = self.stream or sys.stdout
        with self._lock:
            out.write(f"--- alert notification [{message.action}] to {to}\n{message.title}\n"
                      f"{message.text}\n")
            out.flush()
