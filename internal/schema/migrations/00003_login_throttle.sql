-- +goose Up
-- Failed sign-in attempts, counted per key by internal/throttle, shared by
-- every process. A key is "account:" and the hex SHA-256 of the normalised
-- email (so no email address is stored here), or "addr:" and a client IPv4
-- address or IPv6 /64. Windows, delays and refusals are decided by the
-- application's clock; rows that no longer matter are purged.
CREATE TABLE login_throttle (
    key          text        PRIMARY KEY
                             CHECK (key ~ '^account:[0-9a-f]{64}$' OR key ~ '^addr:[0-9a-f.:/]{2,48}$' OR key = 'addr:invalid'),
    window_start timestamptz NOT NULL,            -- the first failure of the current window
    failures     integer     NOT NULL DEFAULT 0 CHECK (failures >= 0),
    pending      integer     NOT NULL DEFAULT 0 CHECK (pending >= 0), -- attempts checked, outcome not yet reported
    pending_at   timestamptz,                     -- the latest of them; reservations older than a minute are void
    locked_until timestamptz,                     -- refused until then
    updated_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE login_throttle;
