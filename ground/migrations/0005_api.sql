-- The HTTP API: bearer tokens (only their SHA-256 is stored) and the audit of every change.

CREATE TABLE api_tokens (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    role text NOT NULL CHECK (role IN ('viewer', 'cadre', 'operator', 'admin')),
    -- The scope: both NULL is the county; a township; or a village (in a township).
    township text,
    village text,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);

-- One row per change made through the API or the token commands, in the change's own
-- transaction: a change without its audit row cannot commit.
CREATE TABLE api_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    actor_role text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    township text,
    village text,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX api_audit_at ON api_audit (at);
CREATE INDEX api_audit_target ON api_audit (target, at);
