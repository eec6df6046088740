"""What every benchmark prints beside its figures: the machine's load and peak memory.

Benchmarks run as scripts (`.venv/bin/python bench/NAME.py`), so this folder is on their
import path and they import this module as `common`.
"""

from __future__ import annotations

import os
from pathlib import Path


def load() -> str:
    """The machine's load average and core count, printed with every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process: the most resident memory it ever had, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(row for row in status.splitlines() if row.startswith("VmHWM:")).split()[1]) / 1024
