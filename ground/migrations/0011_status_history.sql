-- Each device's online/offline transitions, with when and why: ingest records what a device
-- says (a status `offline`, which a Last Will is, or `online`) and hearing from it again;
-- the alerting time pass records silence past its kind's limit. Both paths alike: a small
-- table, kept as long as the alert history.

CREATE TABLE device_status_changes (
    id bigserial PRIMARY KEY,
    device_id text NOT NULL,
    at timestamptz NOT NULL,
    online boolean NOT NULL,
    reason text NOT NULL CHECK (reason IN ('reported_offline', 'reported_online', 'silent',
                                           'heard_again', 'first_heard')),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_status_changes_device ON device_status_changes (device_id, at DESC);
CREATE INDEX device_status_changes_at ON device_status_changes (at);

-- The state last written to the history, per device: the writers change it (and add a
-- history row) only when it differs, so two writers never record one transition twice.
CREATE TABLE device_status_recorded (
    device_id text PRIMARY KEY,
    online boolean NOT NULL,
    at timestamptz NOT NULL
);

-- Devices heard before this migration start from the state the status view gives them now.
INSERT INTO device_status_recorded (device_id, online, at)
SELECT device_id, online, coalesce(state_changed_at, last_seen)
FROM device_status WHERE last_seen IS NOT NULL;

-- The records' retention (0009) also takes status changes older than the alert history.
CREATE OR REPLACE FUNCTION village_prune_records(dead_letters_keep interval,
                                                 alert_history_keep interval,
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
    DELETE FROM device_status_changes WHERE at < now() - alert_history_keep;
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

