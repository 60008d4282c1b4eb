-- +goose Up
-- The projection engine's own tables. A projection's checkpoint is written in
-- the same transaction as its read-model rows, so a crash can never leave the
-- two disagreeing (effectively once).
CREATE SCHEMA IF NOT EXISTS projection;
-- Stable names that readers and reporting use; each is a view over the
-- active generation's table, switched atomically after a rebuild.
CREATE SCHEMA IF NOT EXISTS rm;
CREATE SCHEMA IF NOT EXISTS reporting;

CREATE TABLE projection.checkpoints (
    name            text        NOT NULL,
    generation      integer     NOT NULL,
    position        bigint      NOT NULL DEFAULT 0,
    -- live: feeds the rm views; rebuilding: catching up beside the live one;
    -- retired: replaced by a newer generation.
    state           text        NOT NULL CHECK (state IN ('live', 'rebuilding', 'retired')),
    event_time      timestamptz,            -- recorded time of the event at position
    updated_at      timestamptz NOT NULL DEFAULT now(),
    skipped_unknown bigint      NOT NULL DEFAULT 0,
    halted_at       timestamptz,
    halted_position bigint,
    halted_error    text,
    PRIMARY KEY (name, generation)
);
CREATE UNIQUE INDEX checkpoints_one_live ON projection.checkpoints (name) WHERE state = 'live';

CREATE TABLE projection.dead_letters (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL,
    generation  integer     NOT NULL,
    position    bigint      NOT NULL,
    event_id    uuid        NOT NULL,
    stream      text        NOT NULL,
    type        text        NOT NULL,
    error       text        NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    retried_at  timestamptz,
    resolved    boolean     NOT NULL DEFAULT false,
    UNIQUE (name, generation, position)
);

-- +goose Down
DROP SCHEMA projection CASCADE;
DROP SCHEMA rm CASCADE;
DROP SCHEMA reporting CASCADE;
