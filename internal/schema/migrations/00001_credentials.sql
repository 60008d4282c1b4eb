-- +goose Up
-- Password hashes live here, never in events: events are immutable and read by
-- auditors. Events say only that a password was set, and when.
CREATE TABLE credentials (
    account_id    uuid        PRIMARY KEY,
    password_hash text        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE credentials;
