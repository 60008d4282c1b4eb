-- +goose Up
-- The event log. Global positions are drawn from eventstore.head inside the
-- appending transaction, which holds that row's lock until it commits: positions
-- are therefore gap-free and handed out in commit order, so a reader that
-- follows positions can never pass an event that commits later (the
-- late-commit gap). docs/architecture.md says why this cure was chosen.
CREATE SCHEMA IF NOT EXISTS eventstore;

CREATE TABLE eventstore.head (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint  NOT NULL
);
INSERT INTO eventstore.head (id, position) VALUES (true, 0);

CREATE TABLE eventstore.streams (
    stream   text   PRIMARY KEY,
    category text   NOT NULL,
    version  bigint NOT NULL CHECK (version > 0)
);

CREATE TABLE eventstore.events (
    position       bigint      PRIMARY KEY CHECK (position > 0),
    event_id       uuid        NOT NULL UNIQUE,
    stream         text        NOT NULL,
    category       text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream, version)
);
CREATE INDEX events_category_position ON eventstore.events (category, position);

-- Events are immutable: auditors read them, and read models are rebuilt from
-- them. Even the table's owner goes through this trigger.
-- +goose StatementBegin
CREATE FUNCTION eventstore.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'eventstore.events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON eventstore.events
    FOR EACH ROW EXECUTE FUNCTION eventstore.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON eventstore.events
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore.refuse_change();

-- +goose Down
DROP SCHEMA eventstore CASCADE;
