-- The SQL surface Grafana panels and analysts query. Stable: add, never rename or drop.

CREATE TABLE village_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);

-- The kind catalogue (code) mirrored for SQL; rewritten by every `village migrate`.
CREATE TABLE device_kinds (
    kind text PRIMARY KEY,
    label_zh text NOT NULL,
    label_en text NOT NULL,
    stale_after_s integer NOT NULL CHECK (stale_after_s > 0)
);

CREATE TABLE metrics (
    kind text NOT NULL REFERENCES device_kinds (kind) ON DELETE CASCADE,
    metric text NOT NULL,
    unit text NOT NULL,
    description text NOT NULL,
    minimum double precision NOT NULL,
    maximum double precision NOT NULL,
    PRIMARY KEY (kind, metric)
);

-- The registry: rows, separate from the kind catalogue.
CREATE TABLE devices (
    device_id text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_.-]{3,64}$'),
    kind text NOT NULL REFERENCES device_kinds (kind),
    name text,
    township text,
    village text NOT NULL,
    grid text,
    site text,
    latitude double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude double precision CHECK (longitude BETWEEN -180 AND 180),
    installed_on date,
    firmware text,
    gateway_id text REFERENCES devices (device_id) ON DELETE SET NULL,
    tags jsonb NOT NULL DEFAULT '{}'::jsonb,
    lifecycle text NOT NULL DEFAULT 'active' CHECK (lifecycle IN ('active', 'retired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);
CREATE INDEX devices_place ON devices (township, village, grid);
CREATE INDEX devices_kind ON devices (kind);
CREATE INDEX devices_gateway ON devices (gateway_id) WHERE gateway_id IS NOT NULL;

-- Readings: created per storage path (see the .timescale.sql and .plain.sql parts), with
-- these columns on both:
--   device_id text, metric text, ts timestamptz, value double precision,
--   received_at timestamptz (when the platform stored it), PRIMARY KEY (device_id, metric, ts)

CREATE TABLE device_presence (
    device_id text PRIMARY KEY,
    last_seen timestamptz,
    reported_state text CHECK (reported_state IN ('online', 'offline')),
    state_changed_at timestamptz,
    firmware text,
    ip text
);

-- Online means: it said it was online (or said nothing) and has been heard within its
-- kind's silence limit. A Last Will `offline` makes it offline at once.
CREATE VIEW device_status AS
SELECT d.device_id,
       d.kind,
       d.township,
       d.village,
       d.grid,
       d.site,
       d.lifecycle,
       p.last_seen,
       p.reported_state,
       p.state_changed_at,
       coalesce(d.lifecycle = 'active'
                AND coalesce(p.reported_state, 'online') = 'online'
                AND p.last_seen > now() - make_interval(secs => k.stale_after_s),
                false) AS online,
       coalesce(p.firmware, d.firmware) AS firmware,
       p.ip
FROM devices d
JOIN device_kinds k ON k.kind = d.kind
LEFT JOIN device_presence p ON p.device_id = d.device_id;

CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic text NOT NULL,
    device_id text,
    reason text NOT NULL,
    detail text NOT NULL,
    problems jsonb NOT NULL DEFAULT '[]'::jsonb,
    partial boolean NOT NULL DEFAULT false,
    payload bytea NOT NULL,
    payload_bytes integer NOT NULL
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX dead_letters_device ON dead_letters (device_id, received_at);

-- Devices heard but not registered, recorded when ingest runs in discovery mode; an
-- operator approves them into `devices` (or ignores them).
CREATE TABLE pending_devices (
    device_id text PRIMARY KEY,
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    last_topic text NOT NULL,
    messages bigint NOT NULL DEFAULT 1
);
