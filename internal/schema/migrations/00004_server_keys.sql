-- +goose Up
-- Keys the server makes for itself when none is configured (the link-token
-- key when PORTAL_TOKEN_KEY is unset). Secret: readable by the application
-- role only, never exported, never logged.
CREATE TABLE server_keys (
    name       text        PRIMARY KEY,
    key        bytea       NOT NULL CHECK (octet_length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE server_keys;
