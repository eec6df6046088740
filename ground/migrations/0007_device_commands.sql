-- Live broker access (Mosquitto's dynamic security plugin) and device commands.

-- Registry changes waiting for the access daemon to apply them at the broker. A granted
-- login carries the new secret in plain: the plugin's control API takes no hash, and the
-- door that issued it is the only other holder. The row is deleted as soon as the broker
-- confirms, and rows are only written while live access is switched on (below).
CREATE TABLE broker_access_queue (
    id bigserial PRIMARY KEY,
    queued_at timestamptz NOT NULL DEFAULT now(),
    device_id text NOT NULL,
    action text NOT NULL CHECK (action IN ('grant', 'revoke')),
    secret text,
    gateway boolean NOT NULL DEFAULT false,
    CHECK ((action = 'grant') = (secret IS NOT NULL))
);

-- One row while the registry drives a broker's dynamic security plugin: written by
-- `village broker-config --dynsec`, deleted by `village broker-config` (files).
CREATE TABLE broker_live_access (
    only_one boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    since timestamptz NOT NULL DEFAULT now()
);

-- Commands to devices beyond broadcasts (set_valve, a speaker's set_volume...): what was
-- asked, by whom and why, and what each device answered. Delivered by the broadcast daemon
-- with the same states and retries as a broadcast's play command.
CREATE TABLE device_commands (
    command_id text PRIMARY KEY,  -- also the `id` every device of the selection gets
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    creator_role text NOT NULL,
    why text NOT NULL CHECK (length(why) > 0),
    op text NOT NULL,
    args jsonb NOT NULL,
    expires_at timestamptz NOT NULL,
    selection text NOT NULL,  -- how the devices were chosen, for people
    alert_id bigint,  -- set when an alert rule's action sent it
    status text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'active')),
    dispatched_at timestamptz
);
CREATE INDEX device_commands_new ON device_commands (created_at) WHERE status = 'new';
CREATE INDEX device_commands_created_at ON device_commands (created_at DESC);

CREATE TABLE device_command_deliveries (
    command_id text NOT NULL REFERENCES device_commands (command_id) ON DELETE CASCADE,
    device_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'queued' CHECK (state IN (
        'queued', 'offline', 'sent', 'accepted', 'done', 'rejected', 'failed',
        'no_answer', 'expired')),
    reason text,
    attempts integer NOT NULL DEFAULT 0,
    first_sent_at timestamptz,
    last_sent_at timestamptz,
    accepted_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (command_id, device_id)
);
CREATE INDEX device_command_deliveries_open ON device_command_deliveries (state, expires_at)
    WHERE state IN ('queued', 'offline', 'sent', 'accepted');
CREATE INDEX device_command_deliveries_device ON device_command_deliveries (device_id);
