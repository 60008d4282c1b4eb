-- +goose Up
-- Payloads are kept as text: Append has checked that they are JSON before
-- they reach the database (eventstore.ValidateEvents), and the database's
-- second check of every payload (json_in) was ~15 % of the group
-- committer's CPU under the audit trail (docs/performance.md, third round).
-- The bytes appended are what a read returns, as before. SQL reads them with
-- a cast: data::json ->> 'field'. json to text needs no table rewrite.
ALTER TABLE eventstore.events
    ALTER COLUMN data TYPE text,
    ALTER COLUMN metadata TYPE text;

-- +goose Down
ALTER TABLE eventstore.events
    ALTER COLUMN data TYPE json USING data::json,
    ALTER COLUMN metadata TYPE json USING metadata::json;
