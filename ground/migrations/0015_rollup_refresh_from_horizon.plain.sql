-- The rollup refresh reads from where the last one stopped rather than five minutes before
-- it: it stops at the oldest open writer's start, below which every row is committed. With
-- the overlap every refresh re-read five minutes of stored rows and re-aggregated every
-- series heard in them (a county's every camera, each 15 s), and in the ten-county soak it
-- ran back to back. The rest is 0014's refresh unchanged.
CREATE OR REPLACE FUNCTION village_refresh_rollups(overlap interval DEFAULT INTERVAL '5 minutes')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    since timestamptz;
    started timestamptz := clock_timestamp();
    read_to timestamptz := started;
    lookback interval := overlap;
    touched integer;
    part regclass;
BEGIN
    -- Rows are found by received_at through BRIN indexes, which skip only page ranges
    -- already summarized, and which the planner chooses only with fresh statistics. After a
    -- burst (a morning's day uploads: millions of rows in a minute) neither holds until
    -- autovacuum comes by, and every read by received_at (this refresh, alerting's stream)
    -- scanned the whole month: 2.4 s a read in the ten-county soak, 44 ms once both were
    -- fresh. Keep them fresh here, on the interval the refresh already runs at.
    FOR part IN
        SELECT h.inhrelid::regclass FROM pg_inherits h WHERE h.inhparent = 'readings'::regclass
    LOOP
        PERFORM brin_summarize_new_values(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
        WHERE i.indrelid = part AND a.amname = 'brin';
        IF (SELECT n_mod_since_analyze > 100000 + 0.1 * greatest(s.n_live_tup, 0)
            FROM pg_stat_user_tables s WHERE s.relid = part) THEN
            EXECUTE format('ANALYZE %s', part);
        END IF;
    END LOOP;
    SELECT w.refreshed_to INTO since FROM rollup_watermarks w WHERE w.rollup = 'readings'
        FOR UPDATE;
    -- Every row stored before the oldest open writer began is committed (a row's
    -- received_at is its transaction's start), so the next refresh starts there and reads
    -- nothing twice; the overlap only bounds how far a writer held open holds it back.
    -- Another login's transactions are visible to members of pg_read_all_stats only:
    -- without it, the old way (re-read the overlap every time).
    IF pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') THEN
        SELECT greatest(least(started, min(a.xact_start)), started - overlap)
        INTO read_to
        FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
          AND a.xact_start IS NOT NULL
          AND (a.backend_xid IS NOT NULL OR a.xact_start > started - INTERVAL '5 seconds');
        lookback := INTERVAL '0';
    END IF;
    CREATE TEMP TABLE touched_series ON COMMIT DROP AS
        SELECT device_id, metric, min(ts) AS from_ts, max(ts) AS to_ts
        FROM readings
        WHERE received_at >= since - lookback
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
    SELECT h.device_id, h.metric, date_trunc('day', h.bucket, 'Asia/Shanghai') AS bucket,
           sum(h.count), min(h.min), max(h.max), sum(h.avg * h.count) / sum(h.count),
           (array_agg(h.first ORDER BY h.bucket))[1],
           (array_agg(h.last ORDER BY h.bucket DESC))[1]
    FROM touched_series t
    JOIN readings_hourly h ON h.device_id = t.device_id AND h.metric = t.metric
     AND h.bucket >= date_trunc('day', t.from_ts, 'Asia/Shanghai')
     AND h.bucket < date_trunc('day', t.to_ts, 'Asia/Shanghai') + INTERVAL '1 day'
    GROUP BY h.device_id, h.metric, date_trunc('day', h.bucket, 'Asia/Shanghai')
    ORDER BY 1, 2, 3
    ON CONFLICT (device_id, metric, bucket) DO UPDATE
    SET count = excluded.count, min = excluded.min, max = excluded.max, avg = excluded.avg,
        first = excluded.first, last = excluded.last;

    UPDATE rollup_watermarks w SET refreshed_to = read_to
        WHERE w.rollup = 'readings';
    RETURN touched;
END $$;
