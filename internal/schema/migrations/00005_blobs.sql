-- +goose Up
-- Uploaded files (completed documents, intake forms), content-addressed:
-- the key is the lower-case hex SHA-256 of the bytes, so the same file
-- uploaded twice is stored once. Events hold the hash, size, media type and
-- file name, never the bytes (internal/blobstore). PHI: readable by the
-- application role only, never by the reporting role.
CREATE TABLE blobs (
    sha256     text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size       bigint      NOT NULL CHECK (size >= 0),
    media_type text        NOT NULL,
    bytes      bytea       NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (octet_length(bytes) = size)
);

-- +goose Down
DROP TABLE blobs;
