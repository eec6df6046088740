"""The latest-value table: each series' newest reading, merged in the readings' transaction.

`newest_per_series` (pure) keeps a batch's newest reading of each device and metric;
`merge_latest` upserts them into `latest_values` with the cursor of the transaction that
stores the readings, so the table can never disagree with `readings`.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from devices.decode import Reading

# Rows in key order, so two writers merging overlapping series lock them in the same order.
# The arrays go in binary: psycopg writes a text array element by element in Python, about
# six times slower (4.6 against 0.7 µs a row; a tenth of the committer's time on
# one-reading messages).
# Late data (older than the stored newest) and a second reading at the same time change
# nothing, as `readings` keeps the first reading of a (device, metric, ts).
_MERGE = """
INSERT INTO latest_values AS l (device_id, metric, ts, value, received_at)
SELECT device_id, metric, ts, value, now()
FROM unnest(%b::text[], %b::text[], %b::timestamptz[], %b::float8[])
     AS b (device_id, metric, ts, value)
ORDER BY device_id, metric
ON CONFLICT (device_id, metric) DO UPDATE
SET ts = excluded.ts, value = excluded.value, received_at = excluded.received_at
WHERE excluded.ts > l.ts
"""


def newest_per_series(readings: Iterable[Reading]) -> list[Reading]:
    """The newest reading of each (device, metric) among these; of equal times, the first."""
    newest: dict[tuple[str, str], Reading] = {}
    for reading in readings:
        key = (reading.device_id, reading.metric)
        held = newest.get(key)
        if held is None or reading.ts > held.ts:
            newest[key] = reading
    return list(newest.values())


def merge_latest(cur: psycopg.Cursor, readings: Iterable[Reading]) -> int:
    """Merge the readings' newest values into `latest_values`; return how many rows changed.

    `received_at` is the transaction's `now()`, as for the readings it stores.
    """
    newest = newest_per_series(readings)
    if not newest:
        return 0
    device_ids, metrics, times, values = zip(*newest, strict=True)
    cur.execute(_MERGE, (list(device_ids), list(metrics), list(times), list(values)))
    return cur.rowcount
