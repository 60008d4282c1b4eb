-- +goose Up
-- Reporting jobs connect as portico_reporting (or a login role granted it)
-- and see only the stable views of schema reporting, never the internal
-- tables that rebuilds replace. Roles are cluster-wide, hence the guard; a
-- database user without CREATEROLE leaves it to the operator (docs/reporting.md).
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portico_reporting') THEN
        BEGIN
            CREATE ROLE portico_reporting NOLOGIN;
        EXCEPTION WHEN insufficient_privilege OR duplicate_object THEN
            RAISE NOTICE 'portico_reporting not created: %', SQLERRM;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portico_reporting') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO portico_reporting', current_database());
        GRANT USAGE ON SCHEMA reporting TO portico_reporting;
        GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO portico_reporting;
        -- Views re-created after a rebuild's switch keep the grant.
        ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO portico_reporting;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
SELECT 1;
