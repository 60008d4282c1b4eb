-- +goose Up
-- The one-round-trip append checks expected versions with a plain SQL
-- statement now (store.go, commitOptimistic): cheaper than a PL/pgSQL call.
DROP FUNCTION IF EXISTS eventstore.expect_versions(text[], bigint[]);

-- +goose Down
SELECT 1;
