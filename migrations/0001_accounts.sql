-- Accounts: users, their login sessions, and the refresh tokens that keep a session alive.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    -- Always stored lower-case: 3-32 of [a-z0-9_.-], so uniqueness is case-insensitive.
    username       text NOT NULL CHECK (username ~ '^[a-z0-9_.-]{3,32}$'),
    display_name   text,
    bio            text,
    avatar_url     text,
    password_hash  text NOT NULL,
    is_admin       boolean NOT NULL DEFAULT false,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- One row per login. Access tokens carry the session id (`sid`): revoking the session
-- invalidates them at once, on REST and WebSocket alike.
CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_agent      text,
    ip              text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Refresh tokens are stored as SHA-256 hashes. A token is rotated on every use; the rotated
-- row is kept so that presenting it again is recognised as theft and revokes the session.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
