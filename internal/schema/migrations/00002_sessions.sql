-- +goose Up
-- Sign-in sessions of staff and portal accounts. The opaque bearer token is
-- never stored: only its SHA-256, so a copy of this table signs no one in.
-- Expiry is decided by the application's clock (internal/sessions): 30
-- minutes idle (against last_seen_at) and 12 hours absolute (expires_at).
CREATE TABLE sessions (
    token_hash   bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    account_id   uuid        NOT NULL,
    account_kind text        NOT NULL CHECK (account_kind IN ('staff', 'portal')),
    clinic_id    uuid,                       -- the staff member's clinic; NULL when an account has none
    role         text        NOT NULL DEFAULT '', -- the staff role at sign-in; '' for portal accounts
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CHECK (expires_at > created_at)
);

-- Ending every session of an account (password reset, revocation).
CREATE INDEX sessions_live_by_account ON sessions (account_id) WHERE revoked_at IS NULL;
-- Purging sessions long over.
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
