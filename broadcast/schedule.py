"""When a scheduled broadcast fires next (the only module that imports APScheduler).

The database is the source of truth for schedules; APScheduler's triggers only compute fire
times, so a restart loses nothing and nothing fires twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

DEFAULT_TIMEZONE = "Asia/Shanghai"


def check_timezone(name: str) -> ZoneInfo:
    """The zone of an IANA name; ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday) as day names APScheduler reads.

    APScheduler 3 counts numeric days from Monday = 0, so `1-5` would silently mean
    Tuesday to Saturday; names mean the same to both.
    """
    if not any(char.isdigit() for char in field):
        return field
    days: set[int] = set()
    for item in field.split(","):
        span, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first, last = int(low), int(high or (6 if step_text else low))
        if not 0 <= first <= last <= 7 or step < 1:
            raise ValueError(f"day of week out of range: {item!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger for a five-field crontab expression (`0 7 * * *`); ValueError if malformed."""
    zone = check_timezone(timezone)
    fields = expression.split()
    try:
        if len(fields) != 5:
            raise ValueError("five fields are needed: minute hour day month day-of-week")
        minute, hour, day, month, day_of_week = fields
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=crontab_days(day_of_week), timezone=zone)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"not a crontab expression {expression!r}: {exc}") from exc


def next_cron_fire(expression: str, timezone: str, after: datetime) -> datetime | None:
    """The first fire time of a crontab expression strictly after `after`."""
    # Cron times are whole seconds and the trigger rounds up, so one microsecond past
    # `after` excludes `after` itself.
    fire: datetime | None = cron_trigger(expression, timezone).get_next_fire_time(
        None, after + timedelta(microseconds=1))
    return fire
