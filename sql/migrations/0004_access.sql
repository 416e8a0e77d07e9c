-- Who may do what. Objects belong to the role that runs the migrations; the
-- projector's steady-state role only reads and writes rows. Row-level security
-- is FORCEd on every table that names young people, so even the tables' owner
-- (unless a superuser) sees only what a policy grants.

REVOKE ALL ON hub_event_log, young_people, young_person_flags, transition_plans,
    meeting_actions, group_state, reminders, dead_letters, hub_consumer_offsets FROM PUBLIC;
REVOKE ALL ON FUNCTION hub_age_years(text, date), hub_transitions_as_of(date),
    hub_advance_offset(text, text, integer, bigint, bigint) FROM PUBLIC;
REVOKE ALL ON transitions_view, transitions_summary FROM PUBLIC;

-- The projector: rows of its own tables, nothing else.
GRANT SELECT, INSERT, UPDATE ON young_people, young_person_flags, transition_plans,
    meeting_actions, group_state, reminders, dead_letters, hub_consumer_offsets TO hub_projector;
GRANT SELECT, INSERT, DELETE ON hub_event_log TO hub_projector; -- DELETE: retention
GRANT EXECUTE ON FUNCTION hub_advance_offset(text, text, integer, bigint, bigint) TO hub_projector;

-- Every reader of the transitions views (the subgroup, the local authorities,
-- the reminder): the views, the function behind them and the tables it reads,
-- except the date of birth.
GRANT SELECT ON transitions_view, transitions_summary TO hub_transitions_readers;
GRANT EXECUTE ON FUNCTION hub_transitions_as_of(date), hub_age_years(text, date)
    TO hub_transitions_readers;
GRANT SELECT (subject_key, local_authority, risk_categories, agencies, first_flagged_on,
              last_flagged_on, last_flag_at, last_flag_event_id, updated_at)
    ON young_people TO hub_transitions_readers;
GRANT SELECT ON young_person_flags, transition_plans, meeting_actions, reminders, group_state,
    dead_letters TO hub_transitions_readers;

-- The age function's owner reads dates of birth and nothing else.
GRANT SELECT (subject_key, local_authority, date_of_birth) ON young_people TO hub_dob_reader;
ALTER FUNCTION hub_age_years(text, date) OWNER TO hub_dob_reader;

-- Row-level security. Policies name roles, so they hold for the roles'
-- members too (a person's LOGIN role granted hub_la_rutland sees Rutland).
DO $$
DECLARE
    t text;
    la text;
    own text;
BEGIN
    FOREACH t IN ARRAY ARRAY['young_people', 'young_person_flags', 'transition_plans',
                             'meeting_actions', 'reminders']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY projector_all ON %I TO hub_projector'
                       ' USING (true) WITH CHECK (true)', t);
        EXECUTE format('CREATE POLICY readers_all ON %I FOR SELECT TO hub_subgroup, hub_reminder'
                       ' USING (true)', t);
        FOREACH la IN ARRAY ARRAY['LEICESTER', 'LEICESTERSHIRE', 'RUTLAND']
        LOOP
            IF t IN ('meeting_actions', 'reminders') THEN
                -- No authority of their own: that of the young person they concern.
                own := format('subject_key IN (SELECT yp.subject_key FROM young_people yp'
                              ' WHERE yp.local_authority = %L)', la);
            ELSE
                own := format('local_authority = %L', la);
            END IF;
            EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO %I USING (%s)',
                           'la_' || lower(la), t, 'hub_la_' || lower(la), own);
        END LOOP;
    END LOOP;
END
$$;

CREATE POLICY dob_reader ON young_people FOR SELECT TO hub_dob_reader USING (true);
