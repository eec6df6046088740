-- The operator console: people who sign in (argon2 hashes only), and their sessions (only the
-- SHA-256 of a session's cookie is stored). Changes are audited in api_audit.

CREATE TABLE console_users (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    display_name text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'cadre', 'operator', 'admin')),
    -- The scope, as for API tokens: both NULL is the county; a township; or a village in it.
    township text,
    village text CHECK (village IS NULL OR township IS NOT NULL),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    disabled_at timestamptz,
    -- Repeated wrong passwords lock the account for a while (counted since the last success).
    failed_attempts integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    last_sign_in_at timestamptz
);

CREATE TABLE console_sessions (
    session_hash text PRIMARY KEY CHECK (session_hash ~ '^[0-9a-f]{64}$'),
    user_id bigint NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ended_at timestamptz
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- Audio files uploaded with a broadcast from the console, served to the speakers by their
-- SHA-256 (speakers fetch them without signing in).
CREATE TABLE console_audio (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL,
    content bytea NOT NULL,
    uploaded_by text NOT NULL,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
