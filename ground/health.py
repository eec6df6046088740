"""A readiness signal for the long-running services without a port of their own: a file
touched every few seconds while the service's own checks pass (connected to its broker,
its database answering its login, its loop alive), and removed as soon as one fails.

A container healthcheck asks `python -m ground.health FILE MAX_AGE_S`: healthy if the file
was touched within MAX_AGE_S seconds. A hung or disconnected process stops touching it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg

Check = Callable[[], bool]


def database_answers(database_url: str) -> Check:
    """A check that the database answers this login within five seconds."""
    def check() -> bool:
        try:
            with psycopg.connect(database_url, connect_timeout=5,
                                 application_name="village-readiness") as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False
    return check


def all_pass(checks: Sequence[Check]) -> bool:
    """Whether every check passes (a check that raises fails)."""
    for check in checks:
        try:
            if not check():
                return False
        except Exception:  # noqa: BLE001 - a broken check means "not ready", never a crash
            return False
    return True


def keep_ready_file(path: Path, checks: Sequence[Check], stop: threading.Event,
                    interval_s: float = 5.0) -> threading.Thread:
    """Start a daemon thread that touches `path` while every check passes."""
    def run() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            if all_pass(checks):
                path.touch()
            else:
                path.unlink(missing_ok=True)
            stop.wait(interval_s)
        path.unlink(missing_ok=True)
    thread = threading.Thread(target=run, name="village-readiness", daemon=True)
    thread.start()
    return thread


def signal_readiness(path: Path | None, database_url: str, checks: Sequence[Check],
                     stop: threading.Event) -> None:
    """Keep `path` fresh while the checks pass and the database answers (nothing if unset)."""
    if path is not None:
        keep_ready_file(path, [*checks, database_answers(database_url)], stop)


def is_fresh(path: Path, max_age_s: float, now: float | None = None) -> bool:
    """Whether `path` exists and was touched within `max_age_s` seconds of `now`."""
    with contextlib.suppress(OSError):
        return (time.time() if now is None else now) - path.stat().st_mtime <= max_age_s
    return False


def main(argv: Sequence[str]) -> int:
    """`python -m ground.health FILE MAX_AGE_S`: exit 0 if ready, 1 otherwise."""
    if len(argv) != 2:
        print("usage: python -m ground.health FILE MAX_AGE_S", file=sys.stderr)
        return 2
    return 0 if is_fresh(Path(argv[0]), float(argv[1])) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
