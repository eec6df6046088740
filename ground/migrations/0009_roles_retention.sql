-- Retention of the records beside the raw data, each with its own setting, and purge of a
-- device's rollups. The functions run as the schema's owner (SECURITY DEFINER): the
-- service roles (ground/roles.py) may call them without owning the tables.

-- Delete dead letters, finished alert history and old broadcast records past their
-- retention; return the rows deleted. Open alerts and pending broadcasts are never touched.
CREATE FUNCTION village_prune_records(dead_letters_keep interval, alert_history_keep interval,
                                      broadcasts_keep interval)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    removed bigint := 0;
    n bigint;
BEGIN
    DELETE FROM dead_letters WHERE received_at < now() - dead_letters_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    -- Transitions and acknowledgements go with their alert (ON DELETE CASCADE).
    DELETE FROM alerts
    WHERE state = 'resolved' AND coalesce(resolved_at, fired_at) < now() - alert_history_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    DELETE FROM notifications WHERE created_at < now() - alert_history_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    -- Deliveries go with their broadcast (ON DELETE CASCADE).
    DELETE FROM broadcasts
    WHERE created_at < now() - broadcasts_keep AND expires_at < now() - broadcasts_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    DELETE FROM broadcast_audit WHERE at < now() - broadcasts_keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN removed + n;
END $$;
