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
