"""A live progress line with rates (rich), refreshed by whoever runs the simulation."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulators.connections import FleetCounters


class Progress:
    """Shows the fleet's counters and per-second rates; silent when disabled."""

    def __init__(self, console: Console, title: str, enabled: bool = True) -> None:
        self._console = console
        self._title = title
        self._live = Live(console=console, refresh_per_second=2) if enabled else None
        self._last = (time.monotonic(), 0, 0)
        self._started = time.monotonic()

    def __enter__(self) -> Progress:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(kind, exc, trace)

    def update(self, counters: FleetCounters, online: int, total: int, note: str = "") -> str:
        """Refresh the display; return the line it shows (for logs and tests)."""
        now = time.monotonic()
        then, published, acknowledged = self._last
        elapsed = max(now - then, 1e-6)
        self._last = (now, counters.published, counters.acknowledged)
        line = (f"{now - self._started:7.0f} s  online {online}/{total}  "
                f"published {counters.published} ({(counters.published - published) / elapsed:.0f}/s)  "
                f"acked {counters.acknowledged} ({(counters.acknowledged - acknowledged) / elapsed:.0f}/s)  "
                f"in flight {counters.published - counters.acknowledged}  "
                f"commands {counters.commands}{'  ' + note if note else ''}")
        if self._live is not None:
            table = Table.grid(padding=(0, 1))
            table.add_row(f"[bold]{self._title}[/bold]", line)
            self._live.update(table)
        return line
