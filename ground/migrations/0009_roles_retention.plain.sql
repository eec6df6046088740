-- Plain PostgreSQL: the ingest maintenance runs the retention functions as the ingest role,
-- so they run as the schema's owner; dead letters leave the raw retention for their own.

ALTER FUNCTION village_ensure_partitions(timestamptz, timestamptz)
    SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION village_refresh_rollups(interval)
    SECURITY DEFINER SET search_path = public, pg_temp;

CREATE OR REPLACE FUNCTION village_apply_retention(keep interval)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
    RETURN removed;
END $$;

CREATE FUNCTION village_forget_device_rollups(device text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    removed bigint;
    n bigint;
BEGIN
    DELETE FROM readings_hourly WHERE device_id = device;
    GET DIAGNOSTICS removed = ROW_COUNT;
    DELETE FROM readings_daily WHERE device_id = device;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN removed + n;
END $$;
