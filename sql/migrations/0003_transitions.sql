-- The shared cross-agency view. The rules live in hub_transitions_as_of(), which
-- the reminder calls with its own (injectable) date; transitions_view is the
-- same function for today in Europe/London.

-- Whole years from born to on. A 29 February birthday falls on 28 February in
-- common years (date + interval clamps to the month's end), as in libhub's
-- hub_date_age_years().
CREATE FUNCTION hub_age_on(born date, on_date date) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT y - CASE WHEN on_date < (born + make_interval(years => y))::date THEN 1 ELSE 0 END
    FROM (SELECT (extract(year FROM on_date) - extract(year FROM born))::integer AS y) AS t
$$;

-- Whether the session may see young people of local authority la. It asks
-- about session_user, not current_user, because it is called from a SECURITY
-- DEFINER function, where current_user is the function's owner; session_user
-- cannot be changed by an ordinary role (and SET ROLE only ever narrows what
-- session_user may do, so using it grants nothing the session could not get).
CREATE FUNCTION hub_session_may_see(la text) RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT pg_has_role(session_user, 'hub_projector', 'MEMBER')
        OR pg_has_role(session_user, 'hub_reminder', 'MEMBER')
        OR pg_has_role(session_user, 'hub_subgroup', 'MEMBER')
        OR (la IN ('LEICESTER', 'LEICESTERSHIRE', 'RUTLAND')
            AND pg_has_role(session_user, 'hub_la_' || lower(la), 'MEMBER'))
$$;

-- Age in whole years on as_of of one young person, without handing the date
-- of birth to the caller: readers of the views (the subgroup) have no
-- privilege on young_people.date_of_birth, so the age comes through this
-- SECURITY DEFINER function owned by hub_dob_reader. A definer function
-- escapes the caller's row-level security, so it applies the caller's
-- visibility itself: NULL for anyone the session may not see.
CREATE FUNCTION hub_age_years(p_subject_key text, p_as_of date) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT public.hub_age_on(yp.date_of_birth, p_as_of)
    FROM public.young_people yp
    WHERE yp.subject_key = p_subject_key
      AND public.hub_session_may_see(yp.local_authority)
$$;

-- One row per young person as of a date. An SQL function of one SELECT, stable
-- and SECURITY INVOKER, so the planner inlines it (a filter on subject_key
-- reaches the indexes) and every table is read with the caller's own
-- privileges and row-level security.
--   status: COMPLETED       the plan is completed
--           ADULT_REFERRAL  rule ADULT_SAFEGUARDING_REFERRAL, not completed
--           OVERDUE         past its due date, not completed
--           DUE_SOON        due within 28 days (0..28 days until due)
--           UPCOMING        due later, or no plan yet
CREATE FUNCTION hub_transitions_as_of(as_of date)
RETURNS TABLE (
    subject_key      text,
    local_authority  text,
    age_years        integer,
    risk_categories  text[],
    agencies         text[],
    plan_due_date    date,
    plan_rule        text,
    days_until_due   integer,
    status           text,
    open_actions     integer,
    overdue_actions  integer,
    last_reminder_at timestamptz)
LANGUAGE sql STABLE
AS $$
    SELECT yp.subject_key,
           yp.local_authority,
           hub_age_years(yp.subject_key, as_of),
           yp.risk_categories,
           yp.agencies,
           tp.due_date,
           tp.rule,
           tp.due_date - as_of,
           CASE
               WHEN tp.status = 'COMPLETED' THEN 'COMPLETED'
               WHEN tp.rule = 'ADULT_SAFEGUARDING_REFERRAL' THEN 'ADULT_REFERRAL'
               WHEN tp.due_date IS NULL OR tp.due_date - as_of > 28 THEN 'UPCOMING'
               WHEN tp.due_date >= as_of THEN 'DUE_SOON'
               ELSE 'OVERDUE'
           END,
           coalesce(act.open_actions, 0),
           coalesce(act.overdue_actions, 0),
           rem.last_reminder_at
    FROM young_people yp
    LEFT JOIN transition_plans tp ON tp.subject_key = yp.subject_key
    LEFT JOIN LATERAL (
        SELECT (count(*) FILTER (WHERE ma.completed_on IS NULL))::integer AS open_actions,
               (count(*) FILTER (WHERE ma.completed_on IS NULL
                                   AND ma.due_date < as_of))::integer AS overdue_actions
        FROM meeting_actions ma
        WHERE ma.subject_key = yp.subject_key AND ma.recorded_at IS NOT NULL) AS act ON true
    LEFT JOIN LATERAL (
        SELECT max(r.occurred_at) AS last_reminder_at
        FROM reminders r
        WHERE r.subject_key = yp.subject_key) AS rem ON true
$$;

-- security_invoker: whoever queries the views is who the tables' row-level
-- security sees (a view otherwise reads its tables as the view's owner).
CREATE VIEW transitions_view WITH (security_invoker = true) AS
    SELECT * FROM hub_transitions_as_of((now() AT TIME ZONE 'Europe/London')::date);

CREATE VIEW transitions_summary WITH (security_invoker = true) AS
    SELECT local_authority, status, count(*) AS young_people
    FROM transitions_view
    GROUP BY local_authority, status;
