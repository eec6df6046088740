"""Pinned instants for tests whose expectations depend on the calendar.

Code under test takes "now" as an argument; a test that builds data over days gives it one of
these instants instead of the machine's clock, so the result cannot depend on the hour, the
weekday, the month or the time zone of the machine that runs the suite. Together they cross
the county's local midnight, the end of a month (a new monthly partition) and the end of a
year, in county time and in UTC. All lie in the past, so the database's own `now()` is later
than every reading the tests write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

COUNTY = ZoneInfo("Asia/Shanghai")

SHIFTED_CLOCKS: dict[str, datetime] = {
    "county 23:45 on new year's eve": datetime(2025, 12, 31, 23, 45, tzinfo=COUNTY),
    "county 00:15 on new year's day": datetime(2026, 1, 1, 0, 15, tzinfo=COUNTY),
    "UTC 23:45 at the end of February": datetime(2026, 2, 28, 23, 45, tzinfo=UTC),
    "county noon at the end of June": datetime(2026, 6, 30, 12, 0, tzinfo=COUNTY),
    "county 07:45, the day before in UTC": datetime(2026, 9, 30, 7, 45, tzinfo=COUNTY),
}
