-- The registry's credentials, the service accounts of the broker, and a log of changes.

-- The Mosquitto `$7$` (PBKDF2-SHA512) hash of the device's secret, written to the broker's
-- passwd file as is; NULL until a secret is issued. The secret itself is never stored.
ALTER TABLE devices
    ADD COLUMN secret_hash text
        CHECK (secret_hash ~ '^\$7\$[0-9]+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$'),
    ADD COLUMN secret_issued_at timestamptz,
    -- `svc-` names are the service accounts' on the broker.
    ADD CONSTRAINT devices_not_service_name CHECK (device_id NOT LIKE 'svc-%');
CREATE INDEX devices_site ON devices (site) WHERE site IS NOT NULL;

CREATE TABLE service_accounts (
    name text PRIMARY KEY CHECK (name ~ '^svc-[a-z]+$'),
    secret_hash text NOT NULL
        CHECK (secret_hash ~ '^\$7\$[0-9]+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$'),
    issued_at timestamptz NOT NULL DEFAULT now()
);

-- Who changed which device how. No foreign key: the log outlives a removed device.
CREATE TABLE device_changes (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    device_id text NOT NULL,
    action text NOT NULL CHECK (action IN
        ('created', 'updated', 'retired', 'secret_issued', 'approved', 'removed')),
    actor text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX device_changes_device ON device_changes (device_id, at);
