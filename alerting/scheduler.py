"""The one module that imports APScheduler: each job only calls a cycle function."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from apscheduler.schedulers.background import BackgroundScheduler


def start_jobs(jobs: Sequence[tuple[str, Callable[[], None], float]]) -> BackgroundScheduler:
    """Run each (name, job, every seconds) on a background scheduler, one run at a time."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for name, job, every_s in jobs:
        scheduler.add_job(job, "interval", seconds=every_s, id=name, name=name,
                          max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
