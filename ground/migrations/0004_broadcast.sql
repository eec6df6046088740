-- Loudspeaker broadcasts: what was sent, by whom, to which speakers, and what each answered.

CREATE TABLE broadcasts (
    broadcast_id text PRIMARY KEY,  -- also the id of the play command every speaker gets
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    creator_role text NOT NULL,
    creator_township text,
    creator_village text,
    priority text NOT NULL CHECK (priority IN ('normal', 'alert', 'emergency')),
    text text,
    audio_url text,
    volume_pct integer CHECK (volume_pct BETWEEN 0 AND 100),
    repeat integer NOT NULL CHECK (repeat BETWEEN 1 AND 100),
    expires_at timestamptz NOT NULL,
    scope jsonb NOT NULL,
    scope_label text NOT NULL,
    -- the smallest place holding every target (both NULL: the county); who may see it
    place_township text,
    place_village text,
    schedule_id bigint,
    status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'active', 'cancelled')),
    dispatched_at timestamptz,
    cancelled_at timestamptz,
    cancelled_by text,
    CHECK ((text IS NULL) <> (audio_url IS NULL))
);
CREATE INDEX broadcasts_created_at ON broadcasts (created_at DESC);
CREATE INDEX broadcasts_new ON broadcasts (created_at) WHERE status = 'new';

CREATE TABLE broadcast_deliveries (
    broadcast_id text NOT NULL REFERENCES broadcasts (broadcast_id) ON DELETE CASCADE,
    device_id text NOT NULL,
    -- copied from the broadcast so the delivery daemon's sweeps read one table
    priority_rank smallint NOT NULL,
    expires_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'queued' CHECK (state IN (
        'queued', 'held', 'offline', 'sent', 'accepted', 'done', 'rejected', 'failed',
        'no_answer', 'expired', 'cancelled')),
    reason text,
    attempts integer NOT NULL DEFAULT 0,
    first_sent_at timestamptz,
    last_sent_at timestamptz,
    accepted_at timestamptz,
    finished_at timestamptz,
    stop_sent_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (broadcast_id, device_id)
);
CREATE INDEX broadcast_deliveries_open ON broadcast_deliveries (state, expires_at)
    WHERE state IN ('queued', 'held', 'offline', 'sent', 'accepted');
CREATE INDEX broadcast_deliveries_device ON broadcast_deliveries (device_id)
    WHERE state IN ('sent', 'accepted');
CREATE INDEX broadcast_deliveries_stop ON broadcast_deliveries (broadcast_id)
    WHERE state = 'cancelled' AND attempts > 0 AND stop_sent_at IS NULL;

-- Named groups of speakers (a school's speakers, the river-bank villages...).
CREATE TABLE broadcast_groups (
    group_name text NOT NULL CHECK (group_name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    device_id text NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    PRIMARY KEY (group_name, device_id)
);

CREATE TABLE broadcast_schedules (
    schedule_id bigserial PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    creator_role text NOT NULL,
    creator_township text,
    creator_village text,
    request jsonb NOT NULL,
    cron text,
    run_at timestamptz,
    timezone text NOT NULL,
    next_fire_at timestamptz,  -- NULL: nothing more to fire
    last_fired_at timestamptz,
    last_broadcast_id text,
    enabled boolean NOT NULL DEFAULT true,
    CHECK ((cron IS NULL) <> (run_at IS NULL))
);
CREATE INDEX broadcast_schedules_due ON broadcast_schedules (next_fire_at)
    WHERE enabled AND next_fire_at IS NOT NULL;

-- Who did what, when: every broadcast, cancellation, schedule change and schedule firing.
CREATE TABLE broadcast_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    actor_role text NOT NULL,
    action text NOT NULL CHECK (action IN (
        'broadcast', 'cancel', 'schedule', 'unschedule', 'fire', 'group')),
    broadcast_id text,
    schedule_id bigint,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX broadcast_audit_at ON broadcast_audit (at DESC);

-- The delivery report and audit of each broadcast: who, what, when, where, and the outcome
-- (counts per state).
CREATE VIEW broadcast_report AS
SELECT b.broadcast_id,
       b.created_at,
       b.created_by,
       b.priority,
       b.scope_label,
       b.status,
       b.expires_at,
       count(d.device_id) AS speakers,
       count(*) FILTER (WHERE d.state IN ('accepted', 'done')) AS confirmed,
       count(*) FILTER (WHERE d.state = 'queued') AS queued,
       count(*) FILTER (WHERE d.state = 'held') AS held,
       count(*) FILTER (WHERE d.state = 'offline') AS offline,
       count(*) FILTER (WHERE d.state = 'sent') AS sent,
       count(*) FILTER (WHERE d.state = 'accepted') AS accepted,
       count(*) FILTER (WHERE d.state = 'done') AS done,
       count(*) FILTER (WHERE d.state = 'rejected') AS rejected,
       count(*) FILTER (WHERE d.state = 'failed') AS failed,
       count(*) FILTER (WHERE d.state = 'no_answer') AS no_answer,
       count(*) FILTER (WHERE d.state = 'expired') AS expired,
       count(*) FILTER (WHERE d.state = 'cancelled') AS cancelled,
       b.creator_role,
       coalesce(b.text, b.audio_url) AS what
FROM broadcasts b
LEFT JOIN broadcast_deliveries d ON d.broadcast_id = b.broadcast_id
GROUP BY b.broadcast_id;

-- The speakers of each broadcast that have not confirmed (accepted or done), and why.
CREATE VIEW broadcast_unconfirmed AS
SELECT d.broadcast_id,
       d.device_id,
       dev.township,
       dev.village,
       d.state,
       d.reason,
       d.attempts,
       d.last_sent_at
FROM broadcast_deliveries d
LEFT JOIN devices dev ON dev.device_id = d.device_id
WHERE d.state NOT IN ('accepted', 'done');
