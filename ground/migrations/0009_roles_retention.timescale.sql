-- TimescaleDB: the records' retention runs as a job (`village migrate` schedules it with the
-- settings in its config), and a purge reaches the continuous aggregates' materialized rows,
-- which deleting the raw rows leaves behind outside the refresh window.

CREATE PROCEDURE village_prune_records_job(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM village_prune_records((config ->> 'dead_letters')::interval,
                                  (config ->> 'alert_history')::interval,
                                  (config ->> 'broadcasts')::interval);
END $$;

CREATE FUNCTION village_forget_device_rollups(device text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    rollup record;
    removed bigint := 0;
    n bigint;
BEGIN
    FOR rollup IN
        SELECT materialization_hypertable_schema AS schema_name,
               materialization_hypertable_name AS table_name
        FROM timescaledb_information.continuous_aggregates
        WHERE view_schema = 'public' AND view_name IN ('readings_hourly', 'readings_daily')
    LOOP
        EXECUTE format('DELETE FROM %I.%I WHERE device_id = $1',
                       rollup.schema_name, rollup.table_name) USING device;
        GET DIAGNOSTICS n = ROW_COUNT;
        removed := removed + n;
    END LOOP;
    RETURN removed;
END $$;
