-- Plain PostgreSQL: readings partitioned by month (retention drops whole partitions),
-- rollups as tables that the service refreshes from the rows stored since its last pass.

CREATE TABLE readings (
    device_id text NOT NULL,
    metric text NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, metric, ts)
) PARTITION BY RANGE (ts);
-- Catches anything outside the prepared months, so no valid reading is ever refused.
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE INDEX readings_received_at ON readings USING brin (received_at);

CREATE TABLE events (
    device_id text NOT NULL,
    ts timestamptz NOT NULL,
    type text NOT NULL,
    severity text NOT NULL,
    body jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, type, ts)
);
CREATE INDEX events_ts ON events (ts DESC);

CREATE TABLE readings_hourly (
    device_id text NOT NULL,
    metric text NOT NULL,
    bucket timestamptz NOT NULL,
    count bigint NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    avg double precision NOT NULL,
    first double precision NOT NULL,
    last double precision NOT NULL,
    PRIMARY KEY (device_id, metric, bucket)
);
CREATE TABLE readings_daily (LIKE readings_hourly INCLUDING ALL);

CREATE TABLE rollup_watermarks (
    rollup text PRIMARY KEY,
    refreshed_to timestamptz NOT NULL
);
INSERT INTO rollup_watermarks VALUES ('readings', '-infinity');

-- One monthly partition per month in [from_ts, to_ts).
CREATE FUNCTION village_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', from_ts, 'UTC');
    created integer := 0;
    name text;
BEGIN
    WHILE month_start < to_ts LOOP
        name := 'readings_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass(name) IS NULL THEN
            -- Rows that landed in the default partition for this month move in with it.
            EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS)', name);
            EXECUTE format(
                'WITH moved AS (DELETE FROM readings_default WHERE ts >= %L AND ts < %L RETURNING *)'
                ' INSERT INTO %I SELECT * FROM moved',
                month_start, month_start + INTERVAL '1 month', name);
            EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                name, month_start, month_start + INTERVAL '1 month');
            created := created + 1;
        END IF;
        month_start := month_start + INTERVAL '1 month';
    END LOOP;
    RETURN created;
END $$;

-- Drops whole months older than the cut-off, deletes the rest row by row.
CREATE FUNCTION village_apply_retention(keep interval)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cutoff timestamptz := now() - keep;
    part record;
    removed bigint := 0;
    n bigint;
BEGIN
    FOR part IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz
                   AS upper_bound
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'readings'::regclass AND c.relname <> 'readings_default'
    LOOP
        IF part.upper_bound <= cutoff THEN
            EXECUTE format('SELECT count(*) FROM %I', part.relname) INTO n;
            EXECUTE format('DROP TABLE %I', part.relname);
            removed := removed + n;
        END IF;
    END LOOP;
    DELETE FROM readings WHERE ts < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    DELETE FROM events WHERE ts < cutoff;
    DELETE FROM dead_letters WHERE received_at < cutoff;
    RETURN removed;
END $$;

-- Recompute every hourly and daily bucket touched by rows stored since the last pass.
-- The overlap covers transactions that began before the last pass and committed after it.
CREATE FUNCTION village_refresh_rollups(overlap interval DEFAULT INTERVAL '5 minutes')
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    since timestamptz;
    started timestamptz := clock_timestamp();
    touched integer;
BEGIN
    SELECT refreshed_to INTO since FROM rollup_watermarks WHERE rollup = 'readings' FOR UPDATE;
    CREATE TEMP TABLE touched_series ON COMMIT DROP AS
        SELECT device_id, metric, min(ts) AS from_ts, max(ts) AS to_ts
        FROM readings
        WHERE received_at >= since - overlap
        GROUP BY device_id, metric;
    GET DIAGNOSTICS touched = ROW_COUNT;

    INSERT INTO readings_hourly
    SELECT r.device_id, r.metric, date_trunc('hour', r.ts) AS bucket,
           count(*), min(r.value), max(r.value), avg(r.value),
           (array_agg(r.value ORDER BY r.ts))[1], (array_agg(r.value ORDER BY r.ts DESC))[1]
    FROM touched_series t
    JOIN readings r ON r.device_id = t.device_id AND r.metric = t.metric
     AND r.ts >= date_trunc('hour', t.from_ts)
     AND r.ts < date_trunc('hour', t.to_ts) + INTERVAL '1 hour'
    GROUP BY r.device_id, r.metric, date_trunc('hour', r.ts)
    ORDER BY 1, 2, 3
    ON CONFLICT (device_id, metric, bucket) DO UPDATE
    SET count = excluded.count, min = excluded.min, max = excluded.max, avg = excluded.avg,
        first = excluded.first, last = excluded.last;

    INSERT INTO readings_daily
    SELECT r.device_id, r.metric, date_trunc('day', r.ts, 'Asia/Shanghai') AS bucket,
           count(*), min(r.value), max(r.value), avg(r.value),
           (array_agg(r.value ORDER BY r.ts))[1], (array_agg(r.value ORDER BY r.ts DESC))[1]
    FROM touched_series t
    JOIN readings r ON r.device_id = t.device_id AND r.metric = t.metric
     AND r.ts >= date_trunc('day', t.from_ts, 'Asia/Shanghai')
     AND r.ts < date_trunc('day', t.to_ts, 'Asia/Shanghai') + INTERVAL '1 day'
    GROUP BY r.device_id, r.metric, date_trunc('day', r.ts, 'Asia/Shanghai')
    ORDER BY 1, 2, 3
    ON CONFLICT (device_id, metric, bucket) DO UPDATE
    SET count = excluded.count, min = excluded.min, max = excluded.max, avg = excluded.avg,
        first = excluded.first, last = excluded.last;

    UPDATE rollup_watermarks SET refreshed_to = started WHERE rollup = 'readings';
    RETURN touched;
END $$;
