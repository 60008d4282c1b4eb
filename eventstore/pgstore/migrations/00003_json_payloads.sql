-- +goose Up
-- Payloads are kept as the exact JSON text appended (type json), not parsed
-- into jsonb, and uncompressed up to a page: the store never looks inside
-- them, every access record is appended once and read back by the
-- projections, and jsonb's parse, pglz compression and jsonb-to-text output
-- were most of the database's cost per record (docs/performance.md).
-- Readers get back the bytes that were appended, as from EventStoreDB;
-- SQL can still query them with ->, ->> or a cast to jsonb.
ALTER TABLE eventstore.events
    ALTER COLUMN data TYPE json USING data::json,
    ALTER COLUMN metadata TYPE json USING metadata::json;
ALTER TABLE eventstore.events SET (toast_tuple_target = 8160);

-- +goose Down
ALTER TABLE eventstore.events RESET (toast_tuple_target);
ALTER TABLE eventstore.events
    ALTER COLUMN data TYPE jsonb USING data::jsonb,
    ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb;
