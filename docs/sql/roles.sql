-- carerecord's database privileges: what the app role may do, and that the audit trail is append-only to it.
--
-- Run after every `manage.py migrate` (it is idempotent), as the owner role or a superuser, in the
-- carerecord database; `owner` is the role that runs migrations and owns every table, `app` the role the
-- web processes and cron jobs sign in as:
--
--   psql "$OWNER_DATABASE_URL" -v owner=carerecord_owner -v app=carerecord_app -f docs/sql/roles.sql
--
-- Creating the two roles (with their passwords) and the database is a one-off: docs/database-roles.md.
-- tests/audit/test_tamper.py applies this file to a role of its own and checks what that role cannot do.

\set ON_ERROR_STOP on

-- The DO block below cannot see psql variables: hand it the app role's name through a setting.
SELECT set_config('carerecord.app_role', :'app', false);

-- Nobody but the owner creates objects in the schema (PostgreSQL 15's default; said again for older ones).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";

-- Every table: read and write rows. No TRUNCATE, REFERENCES or TRIGGER, and no ownership: the app role can
-- never ALTER, DROP or DISABLE TRIGGER on anything.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
-- Sequences: nextval for new rows. Not UPDATE (setval).
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";

-- The audit trail (every table named audit_*): read and append, nothing else.
DO $$
DECLARE
    audit_table regclass;
    app_role text := current_setting('carerecord.app_role');
BEGIN
    FOR audit_table IN
        SELECT c.oid::regclass
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname LIKE 'audit\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %I', audit_table, app_role);
        EXECUTE format('GRANT SELECT, INSERT ON %s TO %I', audit_table, app_role);
    END LOOP;
END
$$;

-- Tables and sequences that later migrations create get the same rights at once. A new audit table would
-- get UPDATE and DELETE too until this file is run again: run it in the same deployment step as `migrate`,
-- before the app starts.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
