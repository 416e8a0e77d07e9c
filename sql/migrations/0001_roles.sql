-- Roles of the hub database. Roles are global to the PostgreSQL cluster while
-- migrations run per database, so every statement here is idempotent and
-- tolerates another database's migration creating the same role at the same
-- moment. Passwords are set by operators (ALTER ROLE ... PASSWORD), never here.
--
-- LOGIN roles (a service or a person connects as them, or as a member of them):
--   hub_projector          writes the projection; owns nothing, no DDL
--   hub_reminder           reads what the reminder needs
--   hub_notifier           the notifier's own tables (granted by its migrations)
--   hub_subgroup           the transitions subgroup: the views, never a date of birth
--   hub_la_leicester, hub_la_leicestershire, hub_la_rutland
--                          a local authority: its own young people only (RLS)
-- NOLOGIN group roles:
--   hub_transitions_readers  what every reader of the transitions views shares
--   hub_dob_reader           owns the one function that reads dates of birth
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT *
        FROM (VALUES ('hub_projector', true), ('hub_reminder', true), ('hub_notifier', true),
                     ('hub_subgroup', true), ('hub_la_leicester', true),
                     ('hub_la_leicestershire', true), ('hub_la_rutland', true),
                     ('hub_transitions_readers', false), ('hub_dob_reader', false)) AS t (name, login)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS',
                               r.name, CASE WHEN r.login THEN 'LOGIN' ELSE 'NOLOGIN' END);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN
                    NULL; -- another database's migration created it first
            END;
        END IF;
    END LOOP;

    FOR r IN
        SELECT *
        FROM (VALUES ('hub_subgroup'), ('hub_reminder'), ('hub_la_leicester'),
                     ('hub_la_leicestershire'), ('hub_la_rutland')) AS t (member)
    LOOP
        IF NOT EXISTS (SELECT 1
                       FROM pg_auth_members m
                       JOIN pg_roles g ON g.oid = m.roleid
                       JOIN pg_roles u ON u.oid = m.member
                       WHERE g.rolname = 'hub_transitions_readers' AND u.rolname = r.member) THEN
            BEGIN
                EXECUTE format('GRANT hub_transitions_readers TO %I', r.member);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN
                    NULL;
            END;
        END IF;
    END LOOP;
END
$$;
