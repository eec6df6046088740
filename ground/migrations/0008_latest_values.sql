-- The newest reading of every series (device and metric), kept by ingest in the transaction
-- that stores the readings, so "latest values" is one index lookup per series instead of a
-- search through every partition or chunk of `readings`.

CREATE TABLE latest_values (
    device_id text NOT NULL,
    metric text NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, metric)
-- Every stored batch updates its series in place: room on each page keeps the updates HOT.
) WITH (fillfactor = 70);

-- Merge the newest of the readings stored since `since` (by `received_at`) into
-- latest_values. Late data never replaces a newer stored value, and a reading at the same
-- `ts` does not replace the stored one (as `readings` keeps the first of a duplicate).
-- For writers that fill `readings` without ingest (imports, backfills) and this migration.
CREATE FUNCTION village_merge_latest(since timestamptz DEFAULT '-infinity')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    merged bigint;
BEGIN
    INSERT INTO latest_values AS l (device_id, metric, ts, value, received_at)
    SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, value, received_at
    FROM readings
    WHERE received_at >= since
    ORDER BY device_id, metric, ts DESC
    ON CONFLICT (device_id, metric) DO UPDATE
    SET ts = excluded.ts, value = excluded.value, received_at = excluded.received_at
    WHERE excluded.ts > l.ts;
    GET DIAGNOSTICS merged = ROW_COUNT;
    RETURN merged;
END $$;

SELECT village_merge_latest();
