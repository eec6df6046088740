"""Where a running `village up` can be reached: a file it writes under its data directory.

`village up` writes `DATA_DIR/stack.json` (its database and broker URLs and its process id)
once everything runs, and removes it when it stops. Any `village` command run in that
directory, or below it, uses those URLs when no `VILLAGE_DATABASE_URL` or `VILLAGE_MQTT_URL`
is set, so a second terminal needs no exports.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from ground.local import process_running

DATA_DIR = Path("var")
STACK_FILE = "stack.json"

# What `village up` suggests, and the README shows under "What to try next" (a test runs
# them against `village up` from a clean environment).
TRY_NEXT = (
    "village devices list",
    "village alerts list --state all",
    'village broadcast send --county --text "今天下午三点停水"',
    "village broadcast list",
    "village tokens create demo-viewer --role viewer",
)


@dataclass(frozen=True)
class LocalStack:
    """The URLs of a running `village up`."""

    database_url: str
    mqtt_url: str
    api_url: str
    pid: int


def write_stack_file(data_dir: Path, stack: LocalStack) -> Path:
    """Record the running stack (readable by its owner only: the URLs may hold passwords)."""
    path = data_dir / STACK_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(stack), handle, indent=2)
    return path


def announce(console: Console, data_dir: Path, stack: LocalStack) -> Path:
    """Write the stack file, and tell the person what to try next in another terminal."""
    path = write_stack_file(data_dir, stack)
    console.print(f"\nIn another terminal, in this directory (the commands find the stack "
                  f"through {path}):", highlight=False)
    for line in TRY_NEXT:
        console.print(f"    {line}", highlight=False, markup=False)
    console.print("", highlight=False)
    return path


def find_local_stack(start: Path) -> tuple[Path, LocalStack] | None:
    """The stack file of a live `village up` in `start` or a parent directory, if any.

    A file left by a `village up` that died without removing it (its process is gone) is
    ignored, and so is one that cannot be read.
    """
    for folder in (start, *start.parents):
        path = folder / DATA_DIR / STACK_FILE
        try:
            stack = LocalStack(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if process_running(stack.pid):
            return path, stack
    return None
