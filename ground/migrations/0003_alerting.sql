-- Alerting: rule state, alerts and their history, acknowledgements, silences and the
-- notification log. Stable for dashboards: add columns, never rename or drop.

-- One row per rule and subject (a device, or an area for area rules): where its state
-- machine stands, so a `for` window survives a restart.
CREATE TABLE alert_states (
    fingerprint text PRIMARY KEY,
    rule text NOT NULL,
    device_id text,
    state text NOT NULL CHECK (state IN ('inactive', 'pending', 'firing')),
    active_since timestamptz,          -- when the condition became true (data time)
    last_ts timestamptz,               -- the newest sample judged (data time)
    value double precision,            -- the value that made it pending or firing
    alert_id bigint,                   -- the open alert while firing
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_states_rule ON alert_states (rule);

CREATE TABLE alerts (
    id bigserial PRIMARY KEY,
    fingerprint text NOT NULL,
    rule text NOT NULL,
    condition text NOT NULL,           -- threshold, stopped, stuck, event, ...
    severity text NOT NULL CHECK (severity IN ('info', 'minor', 'major', 'critical')),
    state text NOT NULL CHECK (state IN ('firing', 'resolved')),
    device_id text,
    kind text,
    township text,
    village text,
    grid text,
    site text,
    metric text,
    labels jsonb NOT NULL DEFAULT '{}'::jsonb,
    summary text NOT NULL,             -- what it is, in the rule's words
    value double precision,            -- the value that triggered it
    threshold double precision,
    last_value double precision,
    started_at timestamptz NOT NULL,   -- when the condition began (data time)
    fired_at timestamptz NOT NULL,     -- when it became firing (data time)
    resolved_at timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text,
    ack_comment text,
    -- Dispatch bookkeeping: the notification log per alert (repeat and escalation).
    notified_level integer NOT NULL DEFAULT -1,   -- -1: nobody told yet
    last_notified_at timestamptz,
    escalated_at timestamptz,
    resolved_notified boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One open alert per rule and subject.
CREATE UNIQUE INDEX alerts_one_open ON alerts (fingerprint) WHERE state = 'firing';
CREATE INDEX alerts_place ON alerts (township, village, started_at DESC);
CREATE INDEX alerts_started ON alerts (started_at DESC);
CREATE INDEX alerts_device ON alerts (device_id, started_at DESC);

CREATE TABLE alert_transitions (
    id bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    from_state text,
    to_state text NOT NULL,            -- firing, resolved, acknowledged, escalated
    value double precision,
    detail text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, at);

CREATE TABLE alert_acks (
    id bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    acknowledged_by text NOT NULL,
    acknowledged_at timestamptz NOT NULL,
    comment text NOT NULL DEFAULT ''
);
CREATE INDEX alert_acks_alert ON alert_acks (alert_id);

-- Silences (someone mutes what matches) and maintenance windows (planned work); both
-- bounded in time.
CREATE TABLE silences (
    id bigserial PRIMARY KEY,
    kind text NOT NULL DEFAULT 'silence' CHECK (kind IN ('silence', 'maintenance')),
    matchers jsonb NOT NULL,           -- {"label": "value", ...}: all must match
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    created_by text NOT NULL,
    comment text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX silences_ends ON silences (ends_at);

-- Every message sent or attempted, one row per recipient and channel.
CREATE TABLE notifications (
    id bigserial PRIMARY KEY,
    alert_ids bigint[] NOT NULL,       -- the alerts it lists (a group lists many)
    group_key text NOT NULL,
    action text NOT NULL CHECK (action IN ('firing', 'repeat', 'escalation', 'resolved')),
    level integer NOT NULL,            -- 0 nearest people, then up the hierarchy
    receiver text NOT NULL,            -- the configured receiver's name
    channel text NOT NULL,             -- webhook, sms, wecom, dingtalk, feishu, email, broadcast, console
    person_id text,
    status text NOT NULL CHECK (status IN ('sent', 'failed')),
    attempts integer NOT NULL,
    error text,                        -- never carries a secret
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX notifications_created ON notifications (created_at DESC);
CREATE INDEX notifications_alerts ON notifications USING gin (alert_ids);

-- How far the streaming evaluator has read `readings` and `events` (by received_at).
CREATE TABLE alerting_watermarks (
    source text PRIMARY KEY,
    position timestamptz NOT NULL
);
-- The epoch means "never read": a first start begins a little before now instead.
INSERT INTO alerting_watermarks VALUES ('readings', 'epoch'), ('events', 'epoch');

-- The streaming evaluator reads events by when they were stored.
CREATE INDEX IF NOT EXISTS events_received_at ON events (received_at);
