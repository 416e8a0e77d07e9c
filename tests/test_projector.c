/*
 * test_projector.c: hub-projector against the real broker and database:
 * every event type projected into the right rows and into transitions_view,
 * duplicates, late (out-of-order) events, a poison message between good ones,
 * an event that breaks a database constraint isolated from its batch (also
 * when the batch is already in flight), access
 * control (roles, no date of birth for the subgroup, row-level security per
 * local authority), retention, and a clean SIGTERM.
 */
#include "projector_harness.h"

static ph_env_t env;
static hub_date_t today;
static int64_t t0;
static char key_a[HUB_SUBJECT_KEY_SIZE], key_b[HUB_SUBJECT_KEY_SIZE], key_c[HUB_SUBJECT_KEY_SIZE],
    key_d[HUB_SUBJECT_KEY_SIZE], key_e[HUB_SUBJECT_KEY_SIZE];
static char flag_a1[HUB_UUID_SIZE];

/* Every event of the scenario, in the order they are produced. */
static hub_event_t events[64];
static size_t nevents;
static size_t poison_after; /* the poison message follows this event (rec-x1) */

static hub_event_t *add(hub_event_type_t type, const char *name, int64_t at, const char *source)
{
    char id[HUB_UUID_SIZE];
    ph_id(id, name, 0);
    events[nevents] = ph_event(type, id, t0 + at, source);
    return &events[nevents++];
}

static void flag(const char *name, const char *key, int64_t at, const char *agency,
                 hub_local_authority_t la, hub_date_t dob, hub_risk_set_t risks, hub_date_t on)
{
    hub_event_t *ev = add(HUB_EVENT_YOUNG_PERSON_FLAGGED, name, at, agency);
    hub_strlcpy(ev->u.flagged.subject_key, key, HUB_SUBJECT_KEY_SIZE);
    ev->u.flagged.local_authority = la;
    ev->u.flagged.date_of_birth = dob;
    ev->u.flagged.risk_categories = risks;
    ev->u.flagged.flagged_on = on;
}

static void plan_due(const char *name, const char *key, int64_t at, hub_local_authority_t la,
                     hub_date_t due, hub_transition_rule_t rule)
{
    hub_event_t *ev = add(HUB_EVENT_TRANSITION_PLAN_DUE, name, at, "hub-planner");
    hub_strlcpy(ev->u.plan_due.subject_key, key, HUB_SUBJECT_KEY_SIZE);
    ev->u.plan_due.local_authority = la;
    ev->u.plan_due.due_date = due;
    ev->u.plan_due.rule = rule;
    ph_id(ev->u.plan_due.cause_event_id, "cause-of-%ld", (long)nevents);
    ev->u.plan_due.risk_categories = HUB_RISK_BIT(HUB_RISK_GANGS);
}

static void action(const char *name, const char *action_name, int64_t at, const char *key,
                   hub_date_t meeting, hub_date_t due)
{
    hub_event_t *ev = add(HUB_EVENT_MEETING_ACTION_RECORDED, name, at, "HUB_COORDINATOR");
    ph_id(ev->u.action_recorded.action_id, action_name, 0);
    hub_strlcpy(ev->u.action_recorded.meeting_id, "CTB-2025-07", HUB_CODE_SIZE);
    ev->u.action_recorded.meeting_date = meeting;
    ev->u.action_recorded.kind = HUB_ACTION_TRANSITION_PLAN;
    hub_strlcpy(ev->u.action_recorded.owner_agency, "LEICESTER_ASC", HUB_CODE_SIZE);
    hub_strlcpy(ev->u.action_recorded.owner_group_id, "city-transitions-board", HUB_CODE_SIZE);
    ev->u.action_recorded.due_date = due;
    ev->u.action_recorded.has_subject_key = key != NULL;
    if (key)
        hub_strlcpy(ev->u.action_recorded.subject_key, key, HUB_SUBJECT_KEY_SIZE);
}

/* The scenario: five young people, one of each status, and everything around them. */
static void build_scenario(void)
{
    hub_date_t dob_a = ph_date(2008, 3, 10);
    hub_event_t *ev;

    ph_subject(key_a, 1);
    ph_subject(key_b, 2);
    ph_subject(key_c, 3);
    ph_subject(key_d, 4);
    ph_subject(key_e, 5);

    /* A: three agencies; the newest flag is produced first, the oldest last. */
    flag("flag-a2", key_a, 5000, "UHL", HUB_LA_LEICESTER, dob_a,
         HUB_RISK_BIT(HUB_RISK_COUNTY_LINES), ph_date(2024, 6, 1));
    flag("flag-a1", key_a, 1000, "LEICS_POLICE", HUB_LA_LEICESTER, dob_a,
         HUB_RISK_BIT(HUB_RISK_GANGS), ph_date(2024, 5, 1));
    hub_strlcpy(flag_a1, events[nevents - 1].event_id, sizeof(flag_a1));
    flag("flag-a0", key_a, 0, "LEICESTER_CS", HUB_LA_RUTLAND, ph_date(2008, 3, 11),
         HUB_RISK_BIT(HUB_RISK_LOOKED_AFTER), ph_date(2024, 4, 1));
    /* A's newer alert first, then a late older one that must not win. */
    plan_due("due-a2", key_a, 9000, HUB_LA_LEICESTER, today + 10, HUB_RULE_PLAN_AT_17Y6M);
    plan_due("due-a1", key_a, 8000, HUB_LA_LEICESTER, ph_date(2020, 1, 1), HUB_RULE_LATE_REFERRAL);

    flag("flag-b", key_b, 1000, "RUTLAND_CS", HUB_LA_RUTLAND, ph_date(2007, 1, 31),
         HUB_RISK_BIT(HUB_RISK_CHILD_IN_NEED), ph_date(2024, 1, 2));
    plan_due("due-b", key_b, 2000, HUB_LA_RUTLAND, today - 5, HUB_RULE_PLAN_AT_17Y6M);

    flag("flag-c", key_c, 1000, "LEICS_POLICE", HUB_LA_LEICESTERSHIRE, ph_date(2005, 2, 28),
         HUB_RISK_BIT(HUB_RISK_MODERN_SLAVERY), ph_date(2024, 2, 3));
    plan_due("due-c", key_c, 2000, HUB_LA_LEICESTERSHIRE, today + 100,
             HUB_RULE_ADULT_SAFEGUARDING_REFERRAL);

    flag("flag-d", key_d, 1000, "LEICESTER_CS", HUB_LA_LEICESTER, ph_date(2008, 8, 8),
         HUB_RISK_BIT(HUB_RISK_LOOKED_AFTER), ph_date(2024, 3, 3));
    plan_due("due-d", key_d, 2000, HUB_LA_LEICESTER, today - 30, HUB_RULE_PLAN_AT_17Y6M);
    ev = add(HUB_EVENT_TRANSITION_PLAN_COMPLETED, "done-d", 3000, "LEICESTER_ASC");
    hub_strlcpy(ev->u.plan_completed.subject_key, key_d, HUB_SUBJECT_KEY_SIZE);
    ev->u.plan_completed.local_authority = HUB_LA_LEICESTER;
    ev->u.plan_completed.completed_on = today - 2;
    ev->u.plan_completed.outcome = HUB_OUTCOME_PLAN_AGREED;

    flag("flag-e", key_e, 1000, "LLR_ICB", HUB_LA_LEICESTERSHIRE, ph_date(2009, 12, 1),
         HUB_RISK_BIT(HUB_RISK_DOMESTIC_ABUSE), ph_date(2025, 1, 5));

    /* A's actions: one open and overdue (with one overdue notice, sent twice), one done. */
    action("rec-x1", "action-x1", 4000, key_a, today - 20, today - 1);
    poison_after = nevents - 1;
    ev = add(HUB_EVENT_MEETING_ACTION_OVERDUE, "overdue-x1", 6000, "hub-reminder");
    ph_id(ev->u.action_overdue.action_id, "action-x1", 0);
    hub_strlcpy(ev->u.action_overdue.owner_group_id, "city-transitions-board", HUB_CODE_SIZE);
    ev->u.action_overdue.due_date = today - 1;
    ev->u.action_overdue.as_of = today;
    ev->u.action_overdue.days_overdue = 1;
    events[nevents] = events[nevents - 1]; /* the same notice again */
    nevents++;
    action("rec-x2", "action-x2", 4000, key_a, today - 20, today + 30);
    ev = add(HUB_EVENT_MEETING_ACTION_COMPLETED, "done-x2", 7000, "LEICESTER_ASC");
    ph_id(ev->u.action_completed.action_id, "action-x2", 0);
    ev->u.action_completed.completed_on = today - 1;
    /* Due before the meeting that agreed it: the database refuses it. */
    action("rec-x3", "action-x3", 4000, key_a, today - 20, today - 40);
    /* An action about nobody in particular. */
    action("rec-x4", "action-x4", 4000, NULL, today - 20, today + 3);

    ev = add(HUB_EVENT_REMINDER_DUE, "reminder-a", 20000, "hub-reminder");
    hub_strlcpy(ev->u.reminder.group_id, "city-transitions-board", HUB_CODE_SIZE);
    ev->u.reminder.kind = HUB_REMINDER_PLAN_DUE_SOON;
    ev->u.reminder.has_subject_key = 1;
    hub_strlcpy(ev->u.reminder.subject_key, key_a, HUB_SUBJECT_KEY_SIZE);
    ev->u.reminder.has_due_date = 1;
    ev->u.reminder.due_date = today + 10;
    ev->u.reminder.as_of = today;

    ev = add(HUB_EVENT_BRIEFING_REQUESTED, "brief-req", 21000, "HUB_COORDINATOR");
    hub_strlcpy(ev->u.briefing_requested.group_id, "llr-exploitation-group", HUB_CODE_SIZE);
    hub_strlcpy(ev->u.briefing_requested.title, "Transitions briefing, quarter 3", HUB_TITLE_SIZE);
    hub_strlcpy(ev->u.briefing_requested.link, "https://example.org/briefings/q3", HUB_LINK_SIZE);
    ev = add(HUB_EVENT_BRIEFING_SENT, "brief-sent", 22000, "hub-notifier");
    hub_strlcpy(ev->u.briefing_sent.group_id, "llr-exploitation-group", HUB_CODE_SIZE);
    ph_id(ev->u.briefing_sent.request_event_id, "brief-req", 0);
    ev->u.briefing_sent.recipients = 7;
}

/* Produces the scenario, with poison bytes between A's two actions (same key, same partition). */
static void produce_scenario(void)
{
    char x1[HUB_UUID_SIZE];
    ph_id(x1, "action-x1", 0);
    for (size_t i = 0; i < nevents; i++) {
        ph_send(&env, &events[i]);
        /* An unknown schema id: the partition must flow on past it. */
        if (i == poison_after)
            ph_send_raw(&env, ph_topic_of(&env, HUB_EVENT_MEETING_ACTION_RECORDED), x1,
                        "\x00\x00\x00\x27\x0fnot avro", 13);
    }
    ph_flush(&env);
}

static const char *snapshot_sql[] = {
    "SELECT format('%s|%s|%s|%s|%s|%s|%s', subject_key, local_authority, date_of_birth,"
    " risk_categories, agencies, first_flagged_on, last_flagged_on) FROM young_people"
    " ORDER BY subject_key",
    "SELECT format('%s|%s|%s', subject_key, source_agency, flagged_on) FROM young_person_flags"
    " ORDER BY 1",
    "SELECT format('%s|%s|%s|%s|%s|%s', subject_key, due_date, rule, status, completed_on,"
    " outcome) FROM transition_plans ORDER BY subject_key",
    "SELECT format('%s|%s|%s|%s|%s', action_id, status, completed_on, overdue_notices,"
    " last_overdue_as_of) FROM meeting_actions ORDER BY action_id",
    "SELECT format('%s|%s|%s|%s|%s', group_id, reminders_received, briefings_sent,"
    " last_briefing_title, last_briefing_recipients) FROM group_state ORDER BY group_id",
    "SELECT count(*) FROM hub_event_log",
    "SELECT count(*) FROM reminders",
};

static char *snapshot(PGconn *c)
{
    size_t cap = 1 << 15, len = 0;
    char *s = malloc(cap);
    s[0] = '\0';
    for (size_t i = 0; i < HUB_ARRAY_LEN(snapshot_sql); i++) {
        char *rows = ph_rows(c, snapshot_sql[i]);
        wl_cat(&s, &len, &cap, "%s--\n", rows);
        free(rows);
    }
    return s;
}

static char *view_row(PGconn *c, const char *key)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT local_authority, age_years, risk_categories, agencies, plan_due_date,"
             " plan_rule, days_until_due, status, open_actions, overdue_actions,"
             " last_reminder_at IS NOT NULL FROM transitions_view WHERE subject_key = '%s'",
             key);
    return ph_rows(c, sql);
}

static void expect_view(PGconn *c, const char *key, const char *la, hub_date_t dob,
                        const char *rest)
{
    char expected[512], *got = view_row(c, key);
    snprintf(expected, sizeof(expected), "%s|%d|%s\n", la, hub_date_age_years(dob, today), rest);
    ASSERT_STR_EQ(got, expected);
    free(got);
}

static void test_every_event_type(void)
{
    char sql[1024], d[16], *s;
    PGconn *c;

    produce_scenario();
    /* Written to the dead-letter topic by hand, without the hub's headers. */
    ph_send_raw(&env, env.topics[5], "by-hand", "junk", 4);
    ph_flush(&env);
    ph_start(&env);
    ph_wait_caught_up(&env, 120);
    c = ph_connect(env.db_admin);

    /* Young people: union of categories and agencies, newest flag's authority and birth date. */
    snprintf(sql, sizeof(sql),
             "SELECT local_authority, date_of_birth, risk_categories, agencies,"
             " first_flagged_on, last_flagged_on FROM young_people WHERE subject_key = '%s'",
             key_a);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "LEICESTER|2008-03-10|{COUNTY_LINES,GANGS,LOOKED_AFTER}|"
                     "{LEICESTER_CS,LEICS_POLICE,UHL}|2024-04-01|2024-06-01\n");
    free(s);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM young_people"), 5);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM young_person_flags WHERE subject_key = '%s'",
             key_a);
    ASSERT_INT_EQ(ph_num(c, sql), 3);

    /* The late, older alert did not replace the newer one. */
    char expect[128];
    snprintf(sql, sizeof(sql),
             "SELECT due_date, rule, status FROM transition_plans WHERE subject_key = '%s'", key_a);
    s = ph_rows(c, sql);
    snprintf(expect, sizeof(expect), "%s|PLAN_AT_17Y6M|OPEN\n",
             hub_date_format(today + 10, d, sizeof(d)));
    ASSERT_STR_EQ(s, expect);
    free(s);
    snprintf(sql, sizeof(sql),
             "SELECT completed_on, outcome, status FROM transition_plans WHERE subject_key = '%s'",
             key_d);
    s = ph_rows(c, sql);
    snprintf(expect, sizeof(expect), "%s|PLAN_AGREED|COMPLETED\n",
             hub_date_format(today - 2, d, sizeof(d)));
    ASSERT_STR_EQ(s, expect);
    free(s);

    /* Actions: the overdue notice counted once although sent twice; x3 refused. */
    s = ph_rows(c, "SELECT kind, owner_agency, owner_group_id, status, overdue_notices,"
                   " subject_key IS NULL FROM meeting_actions ORDER BY due_date");
    ASSERT_STR_EQ(s, "TRANSITION_PLAN|LEICESTER_ASC|city-transitions-board|OPEN|1|f\n"
                     "TRANSITION_PLAN|LEICESTER_ASC|city-transitions-board|OPEN|0|t\n"
                     "TRANSITION_PLAN|LEICESTER_ASC|city-transitions-board|COMPLETED|0|f\n");
    free(s);

    s = ph_rows(c, "SELECT group_id, reminders_received, last_reminder_at IS NOT NULL,"
                   " briefings_sent, last_briefing_title, last_briefing_recipients,"
                   " last_briefing_sent_at IS NOT NULL FROM group_state ORDER BY group_id");
    ASSERT_STR_EQ(s, "city-transitions-board|1|t|0|||f\n"
                     "llr-exploitation-group|0|f|1|Transitions briefing, quarter 3|7|t\n");
    free(s);
    snprintf(sql, sizeof(sql),
             "SELECT group_id, kind, subject_key = '%s', due_date IS NOT NULL FROM reminders",
             key_a);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "city-transitions-board|PLAN_DUE_SOON|t|t\n");
    free(s);

    /* The event log holds each accepted event once, with its decoded JSON. */
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM hub_event_log"), (long long)nevents - 2);
    snprintf(sql, sizeof(sql),
             "SELECT event_type, event->>'source_agency', event->>'subject_key' = '%s'"
             " FROM hub_event_log WHERE event_id = '%s'",
             key_a, flag_a1);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "YoungPersonFlagged|LEICS_POLICE|t\n");
    free(s);

    /* Two dead letters, each once, each also seen on the dead-letter topic; and the
       hand-written one, recorded as its own source. */
    snprintf(sql, sizeof(sql),
             "SELECT reason_class, service, source_topic = '%s', dlq_topic = '%s',"
             " dlq_offset IS NOT NULL FROM dead_letters ORDER BY reason_class",
             env.topics[3], env.topics[5]);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "database|hub-projector|t|t|t\n"
                     "schema|hub-projector|t|t|t\n"
                     "unknown|unknown|f|t|t\n");
    free(s);
    s = ph_rows(c, "SELECT message FROM dead_letters WHERE reason_class = 'database'");
    ASSERT_STR_CONTAINS(s, "meeting_actions_due_after_meeting");
    free(s);
    PQfinish(c);
}

/* The output of a shell command, in a static buffer. */
static const char *command_output(const char *cmd)
{
    static char out[65536];
    size_t n;
    FILE *f = popen(cmd, "r");
    if (!f)
        TEST_FAIL_("popen %s", cmd);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    pclose(f);
    return out;
}

static void test_operations_endpoints(void)
{
    char cmd[512], want[512];
    int port = ph_http_port(&env);
    ASSERT_INT_OP(port, >, 0);
    snprintf(cmd, sizeof(cmd), "curl -s http://127.0.0.1:%d/readyz", port);
    ASSERT_STR_EQ(command_output(cmd), "ready\n");
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/healthz", port);
    ASSERT_STR_EQ(command_output(cmd), "200");
    snprintf(cmd, sizeof(cmd), "curl -s http://127.0.0.1:%d/metrics", port);
    const char *m = command_output(cmd);
    ASSERT_STR_CONTAINS(m, "hub_up{service=\"hub-projector\"");
    ASSERT_STR_CONTAINS(m, "hub_dead_letters_total{class=\"schema\"} 1\n");
    ASSERT_STR_CONTAINS(m, "hub_dead_letters_total{class=\"database\"} 1\n");
    snprintf(want, sizeof(want), "hub_events_in_total{topic=\"%s\"} %zu\n", env.topics[3],
             (size_t)8);
    ASSERT_STR_CONTAINS(m, want);
    ASSERT_STR_CONTAINS(m, "hub_batch_latency_ms_count");
}

static void test_transitions_view(void)
{
    PGconn *c = ph_connect(env.db_admin);
    char rest[256], due[16];

    snprintf(rest, sizeof(rest),
             "{COUNTY_LINES,GANGS,LOOKED_AFTER}|{LEICESTER_CS,LEICS_POLICE,UHL}|%s|"
             "PLAN_AT_17Y6M|10|DUE_SOON|1|1|t",
             hub_date_format(today + 10, due, sizeof(due)));
    expect_view(c, key_a, "LEICESTER", ph_date(2008, 3, 10), rest);
    snprintf(rest, sizeof(rest), "{CHILD_IN_NEED}|{RUTLAND_CS}|%s|PLAN_AT_17Y6M|-5|OVERDUE|0|0|f",
             hub_date_format(today - 5, due, sizeof(due)));
    expect_view(c, key_b, "RUTLAND", ph_date(2007, 1, 31), rest);
    snprintf(rest, sizeof(rest),
             "{MODERN_SLAVERY}|{LEICS_POLICE}|%s|ADULT_SAFEGUARDING_REFERRAL|100|"
             "ADULT_REFERRAL|0|0|f",
             hub_date_format(today + 100, due, sizeof(due)));
    expect_view(c, key_c, "LEICESTERSHIRE", ph_date(2005, 2, 28), rest);
    snprintf(rest, sizeof(rest),
             "{LOOKED_AFTER}|{LEICESTER_CS}|%s|PLAN_AT_17Y6M|-30|COMPLETED|0|0|f",
             hub_date_format(today - 30, due, sizeof(due)));
    expect_view(c, key_d, "LEICESTER", ph_date(2008, 8, 8), rest);
    expect_view(c, key_e, "LEICESTERSHIRE", ph_date(2009, 12, 1),
                "{DOMESTIC_ABUSE}|{LLR_ICB}||||UPCOMING|0|0|f");

    /* The reminder's date: 60 days on, A is overdue and so are both open actions. */
    char sql[512], *s;
    snprintf(sql, sizeof(sql),
             "SELECT status, days_until_due, overdue_actions FROM"
             " hub_transitions_as_of(CURRENT_DATE + 60) WHERE subject_key = '%s'",
             key_a);
    s = ph_rows(c, sql);
    ASSERT_STR_CONTAINS(s, "OVERDUE|");
    free(s);

    s = ph_rows(c, "SELECT local_authority, status, young_people FROM transitions_summary"
                   " ORDER BY 1, 2");
    ASSERT_STR_EQ(s, "LEICESTER|COMPLETED|1\nLEICESTER|DUE_SOON|1\n"
                     "LEICESTERSHIRE|ADULT_REFERRAL|1\nLEICESTERSHIRE|UPCOMING|1\n"
                     "RUTLAND|OVERDUE|1\n");
    free(s);
    PQfinish(c);
}

static void test_duplicates_after_restart(void)
{
    PGconn *c = ph_connect(env.db_admin);
    char *before = snapshot(c), *after;

    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    /* Everything again: new offsets, the same event ids. */
    produce_scenario();
    ph_start(&env);
    ph_wait_caught_up(&env, 120);
    after = snapshot(c);
    ASSERT_STR_EQ(after, before);
    /* Dead letters are per message: the poison and the refused event, at their new offsets. */
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM dead_letters WHERE reason_class = 'schema'"), 2);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM dead_letters WHERE reason_class = 'database'"),
                  2);
    free(before);
    free(after);
    PQfinish(c);
}

static PGconn *login(const char *role)
{
    char conninfo[1200];
    snprintf(conninfo, sizeof(conninfo), "%s user=%s password=%s", env.db_admin, role, PH_PASSWORD);
    return ph_connect(conninfo);
}

/* Runs sql expecting an error; returns its SQLSTATE. */
static const char *fails(PGconn *c, const char *sql)
{
    static char state[8];
    PGresult *res = PQexec(c, sql);
    const char *s;
    ASSERT_INT_EQ(PQresultStatus(res), PGRES_FATAL_ERROR);
    s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    hub_strlcpy(state, s ? s : "", sizeof(state));
    PQclear(res);
    return state;
}

static void test_access_control(void)
{
    PGconn *admin = ph_connect(env.db_admin), *c;
    char sql[512], *s;

    /* FORCE row-level security on every table that names young people. */
    s = ph_rows(admin, "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
                       " WHERE relname IN ('young_people', 'young_person_flags',"
                       " 'transition_plans', 'meeting_actions', 'reminders') ORDER BY 1");
    ASSERT_STR_EQ(s, "meeting_actions|t|t\nreminders|t|t\ntransition_plans|t|t\n"
                     "young_people|t|t\nyoung_person_flags|t|t\n");
    free(s);
    /* The views have no date of birth. */
    ASSERT_INT_EQ(ph_num(admin, "SELECT count(*) FROM information_schema.columns WHERE"
                                " table_name IN ('transitions_view', 'transitions_summary')"
                                " AND column_name LIKE '%birth%'"),
                  0);

    /* The projector owns nothing and can change no schema. */
    c = login("hub_projector");
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM pg_class WHERE relowner ="
                            " (SELECT oid FROM pg_roles WHERE rolname = 'hub_projector')"),
                  0);
    ASSERT_STR_EQ(fails(c, "CREATE TABLE intruder (x int)"), "42501");
    ASSERT_STR_EQ(fails(c, "DROP TABLE young_people"), "42501");
    ASSERT_STR_EQ(fails(c, "ALTER TABLE young_people DISABLE ROW LEVEL SECURITY"), "42501");
    ASSERT_STR_EQ(fails(c, "DELETE FROM young_people"), "42501");
    /* The fence: a position can only move on from where this consumer found it. */
    snprintf(sql, sizeof(sql), "SELECT hub_advance_offset('%s', '%s', 0, 0, 1)", env.group,
             env.topics[0]);
    ASSERT_STR_EQ(fails(c, sql), "HB001");
    PQfinish(c);

    /* The subgroup: every young person in the views, never a date of birth. */
    c = login("hub_subgroup");
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM transitions_view WHERE age_years IS NOT NULL"),
                  5);
    ASSERT_INT_EQ(ph_num(c, "SELECT sum(young_people) FROM transitions_summary"), 5);
    ASSERT_STR_EQ(fails(c, "SELECT date_of_birth FROM young_people"), "42501");
    ASSERT_STR_EQ(fails(c, "SELECT * FROM young_people"), "42501");
    ASSERT_STR_EQ(fails(c, "SELECT event FROM hub_event_log"), "42501");
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM dead_letters"), 5);
    ASSERT_STR_EQ(fails(c, "INSERT INTO dead_letters (reason_class, message, source_topic,"
                           " source_partition, source_offset, service, occurred_at)"
                           " VALUES ('x', 'x', 'x', 0, 0, 'x', now())"),
                  "42501");
    PQfinish(c);

    /* Each local authority sees its own young people only; across authorities, nothing. */
    c = login("hub_la_rutland");
    s = ph_rows(c, "SELECT local_authority, status FROM transitions_view");
    ASSERT_STR_EQ(s, "RUTLAND|OVERDUE\n");
    free(s);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM young_people WHERE local_authority <> 'RUTLAND'"),
                  0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM transitions_view WHERE subject_key = '%s'",
             key_a);
    ASSERT_INT_EQ(ph_num(c, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM meeting_actions WHERE subject_key = '%s'",
             key_a);
    ASSERT_INT_EQ(ph_num(c, sql), 0);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM transition_plans WHERE local_authority <>"
                            " 'RUTLAND'"),
                  0);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM reminders"), 0);
    /* The age function runs as its owner, past row-level security: it must check itself. */
    snprintf(sql, sizeof(sql), "SELECT hub_age_years('%s', CURRENT_DATE) IS NULL", key_a);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "t\n");
    free(s);
    ASSERT_STR_EQ(fails(c, "SELECT date_of_birth FROM young_people"), "42501");
    ASSERT_INT_EQ(ph_num(c, "SELECT sum(young_people) FROM transitions_summary"), 1);
    PQfinish(c);

    c = login("hub_la_leicester");
    s = ph_rows(c, "SELECT local_authority, status FROM transitions_view ORDER BY status");
    ASSERT_STR_EQ(s, "LEICESTER|COMPLETED\nLEICESTER|DUE_SOON\n");
    free(s);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM meeting_actions WHERE subject_key = '%s'",
             key_a);
    ASSERT_INT_EQ(ph_num(c, sql), 2);
    PQfinish(c);

    c = login("hub_la_leicestershire");
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM transitions_view"), 2);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM young_person_flags"), 2);
    PQfinish(c);

    /* The reminder: any date, every young person, the tables it needs; no birth dates. */
    c = login("hub_reminder");
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM hub_transitions_as_of(DATE '2030-01-01')"
                            " WHERE age_years IS NOT NULL"),
                  5);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM meeting_actions"), 3);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM group_state"), 2);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM reminders"), 1);
    ASSERT_STR_EQ(fails(c, "SELECT date_of_birth FROM young_people"), "42501");
    ASSERT_STR_EQ(fails(c, "UPDATE meeting_actions SET overdue_notices = 0"), "42501");
    PQfinish(c);
    PQfinish(admin);
}

static void test_retention(void)
{
    PGconn *c = ph_connect(env.db_admin);
    char sql[512];
    long long before;
    int gone = 0;

    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    ph_write_config(&env, "event_log_retention_days = 1;\n  event_log_prune_interval_s = 1;");
    snprintf(sql, sizeof(sql),
             "UPDATE hub_event_log SET received_at = now() - interval '3 days'"
             " WHERE event_id = '%s'",
             flag_a1);
    ph_exec(c, sql);
    before = ph_num(c, "SELECT count(*) FROM hub_event_log");
    ph_start(&env);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM hub_event_log WHERE event_id = '%s'", flag_a1);
    for (int i = 0; i < 150 && !gone; i++) {
        ph_check_alive(&env);
        gone = ph_num(c, sql) == 0;
        if (!gone)
            usleep(100 * 1000);
    }
    ASSERT_TRUE(gone);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM hub_event_log"), before - 1);
    /* The young person the pruned event built is untouched. */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM young_people WHERE subject_key = '%s'", key_a);
    ASSERT_INT_EQ(ph_num(c, sql), 1);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    PQfinish(c);
}

/* The next event of the collapse test, in its own array (the scenario's is produced elsewhere). */
static hub_event_t batch_events[32];
static size_t nbatch;

static hub_event_t *batch_add(hub_event_type_t type, const char *name, int64_t at,
                              const char *source)
{
    char id[HUB_UUID_SIZE];
    ph_id(id, name, 0);
    batch_events[nbatch] = ph_event(type, id, t0 + at, source);
    return &batch_events[nbatch++];
}

static void batch_flag(const char *name, const char *key, int64_t at, const char *agency,
                       hub_local_authority_t la, hub_date_t dob, hub_risk_category_t risk,
                       hub_date_t on)
{
    hub_event_t *ev = batch_add(HUB_EVENT_YOUNG_PERSON_FLAGGED, name, at, agency);
    hub_strlcpy(ev->u.flagged.subject_key, key, HUB_SUBJECT_KEY_SIZE);
    ev->u.flagged.local_authority = la;
    ev->u.flagged.date_of_birth = dob;
    ev->u.flagged.risk_categories = HUB_RISK_BIT(risk);
    ev->u.flagged.flagged_on = on;
}

static void batch_plan_due(const char *name, const char *key, int64_t at, hub_local_authority_t la,
                           hub_date_t due, hub_transition_rule_t rule, const char *cause)
{
    hub_event_t *ev = batch_add(HUB_EVENT_TRANSITION_PLAN_DUE, name, at, "hub-planner");
    hub_strlcpy(ev->u.plan_due.subject_key, key, HUB_SUBJECT_KEY_SIZE);
    ev->u.plan_due.local_authority = la;
    ev->u.plan_due.due_date = due;
    ev->u.plan_due.rule = rule;
    ph_id(ev->u.plan_due.cause_event_id, cause, 0);
}

static void batch_again(void)
{
    batch_events[nbatch] = batch_events[nbatch - 1];
    nbatch++;
}

/*
 * Many events for the same keys reaching the projector together (so the
 * set-based path collapses them into one row per key), newest first, with
 * event ids repeated inside the batch: the rows are those of one event at a
 * time in time order, and a repeated id counts once.
 */
static void test_one_batch_collapsed(void)
{
    char key_f[HUB_SUBJECT_KEY_SIZE], sql[1024], expect[512], d1[16], d2[16], *s;
    hub_event_t *ev;
    PGconn *c = ph_connect(env.db_admin);

    ph_write_config(&env, "batch_max_events = 500; batch_max_ms = 2000;");
    ph_subject(key_f, 6);
    batch_flag("flag-f3", key_f, 30000, "UHL", HUB_LA_LEICESTERSHIRE, ph_date(2008, 5, 5),
               HUB_RISK_GANGS, ph_date(2024, 9, 1));
    batch_flag("flag-f2", key_f, 20000, "UHL", HUB_LA_LEICESTER, ph_date(2008, 5, 7),
               HUB_RISK_COUNTY_LINES, ph_date(2024, 8, 1));
    batch_flag("flag-f1", key_f, 10000, "LEICS_POLICE", HUB_LA_RUTLAND, ph_date(2008, 5, 6),
               HUB_RISK_LOOKED_AFTER, ph_date(2024, 7, 1));
    batch_again();
    /* The newest alert, a completion between the alerts, and an older alert. */
    batch_plan_due("due-f2", key_f, 32000, HUB_LA_LEICESTERSHIRE, today + 50,
                   HUB_RULE_PLAN_AT_17Y6M, "flag-f3");
    ev = batch_add(HUB_EVENT_TRANSITION_PLAN_COMPLETED, "done-f", 31000, "LEICESTER_ASC");
    hub_strlcpy(ev->u.plan_completed.subject_key, key_f, HUB_SUBJECT_KEY_SIZE);
    ev->u.plan_completed.local_authority = HUB_LA_LEICESTERSHIRE;
    ev->u.plan_completed.completed_on = today - 1;
    ev->u.plan_completed.outcome = HUB_OUTCOME_PLAN_AGREED;
    batch_plan_due("due-f1", key_f, 30500, HUB_LA_LEICESTERSHIRE, ph_date(2020, 1, 1),
                   HUB_RULE_LATE_REFERRAL, "flag-f2");
    /* An action: completed, two overdue notices (one sent twice), newer record first. */
    for (int i = 2; i >= 1; i--) {
        char name[32];
        snprintf(name, sizeof(name), "rec-y%d", i);
        ev =
            batch_add(HUB_EVENT_MEETING_ACTION_RECORDED, name, 33000 + i * 1000, "HUB_COORDINATOR");
        ph_id(ev->u.action_recorded.action_id, "action-y", 0);
        hub_strlcpy(ev->u.action_recorded.meeting_id, i == 2 ? "CTB-NEW" : "CTB-OLD",
                    HUB_CODE_SIZE);
        ev->u.action_recorded.meeting_date = today - 3;
        ev->u.action_recorded.kind = HUB_ACTION_REFERRAL;
        hub_strlcpy(ev->u.action_recorded.owner_agency, "LEICESTER_ASC", HUB_CODE_SIZE);
        hub_strlcpy(ev->u.action_recorded.owner_group_id, "collapse-group", HUB_CODE_SIZE);
        ev->u.action_recorded.due_date = today + i;
        ev->u.action_recorded.has_subject_key = 1;
        hub_strlcpy(ev->u.action_recorded.subject_key, key_f, HUB_SUBJECT_KEY_SIZE);
    }
    ev = batch_add(HUB_EVENT_MEETING_ACTION_COMPLETED, "done-y", 36000, "LEICESTER_ASC");
    ph_id(ev->u.action_completed.action_id, "action-y", 0);
    ev->u.action_completed.completed_on = today;
    for (int i = 1; i >= 0; i--) {
        char name[32];
        snprintf(name, sizeof(name), "overdue-y%d", i);
        ev = batch_add(HUB_EVENT_MEETING_ACTION_OVERDUE, name, 34500 + i, "hub-reminder");
        ph_id(ev->u.action_overdue.action_id, "action-y", 0);
        hub_strlcpy(ev->u.action_overdue.owner_group_id, "collapse-group", HUB_CODE_SIZE);
        ev->u.action_overdue.due_date = today - 1;
        ev->u.action_overdue.as_of = today - i;
        ev->u.action_overdue.days_overdue = 2 - i;
        batch_again();
    }
    /* A group: two reminders, two requests (the newer first), one briefing sent twice. */
    for (int i = 1; i >= 0; i--) {
        char name[32];
        snprintf(name, sizeof(name), "reminder-g%d", i);
        ev = batch_add(HUB_EVENT_REMINDER_DUE, name, 40000 + i, "hub-reminder");
        hub_strlcpy(ev->u.reminder.group_id, "collapse-group", HUB_CODE_SIZE);
        ev->u.reminder.kind = HUB_REMINDER_GROUP_NOT_BRIEFED;
        ev->u.reminder.as_of = today;
        snprintf(name, sizeof(name), "request-g%d", i);
        ev = batch_add(HUB_EVENT_BRIEFING_REQUESTED, name, 41000 + i, "HUB_COORDINATOR");
        hub_strlcpy(ev->u.briefing_requested.group_id, "collapse-group", HUB_CODE_SIZE);
        hub_strlcpy(ev->u.briefing_requested.title, i ? "newer \"title\"\\" : "older",
                    HUB_TITLE_SIZE);
        hub_strlcpy(ev->u.briefing_requested.link, "https://example.org/b", HUB_LINK_SIZE);
    }
    ev = batch_add(HUB_EVENT_BRIEFING_SENT, "sent-g", 42000, "hub-notifier");
    hub_strlcpy(ev->u.briefing_sent.group_id, "collapse-group", HUB_CODE_SIZE);
    ph_id(ev->u.briefing_sent.request_event_id, "request-g1", 0);
    ev->u.briefing_sent.recipients = 3;
    batch_again();
    for (size_t i = 0; i < nbatch; i++)
        ph_send(&env, &batch_events[i]);
    ph_flush(&env);
    ph_start(&env);
    ph_wait_caught_up(&env, 120);

    snprintf(sql, sizeof(sql),
             "SELECT local_authority, date_of_birth, risk_categories, agencies,"
             " first_flagged_on, last_flagged_on FROM young_people WHERE subject_key = '%s'",
             key_f);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "LEICESTERSHIRE|2008-05-05|{COUNTY_LINES,GANGS,LOOKED_AFTER}|"
                     "{LEICS_POLICE,UHL}|2024-07-01|2024-09-01\n");
    free(s);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM young_person_flags WHERE subject_key = '%s'",
             key_f);
    ASSERT_INT_EQ(ph_num(c, sql), 3);
    snprintf(sql, sizeof(sql),
             "SELECT due_date, rule, completed_on, outcome, status FROM transition_plans"
             " WHERE subject_key = '%s'",
             key_f);
    s = ph_rows(c, sql);
    snprintf(expect, sizeof(expect), "%s|PLAN_AT_17Y6M|%s|PLAN_AGREED|OPEN\n",
             hub_date_format(today + 50, d1, sizeof(d1)),
             hub_date_format(today - 1, d2, sizeof(d2)));
    ASSERT_STR_EQ(s, expect);
    free(s);
    s = ph_rows(c,
                "SELECT meeting_id, due_date, status, completed_on, overdue_notices,"
                " last_overdue_as_of FROM meeting_actions WHERE owner_group_id = 'collapse-group'");
    snprintf(expect, sizeof(expect), "CTB-NEW|%s|COMPLETED|%s|2|%s\n",
             hub_date_format(today + 2, d1, sizeof(d1)), hub_date_format(today, d2, sizeof(d2)),
             d2);
    ASSERT_STR_EQ(s, expect);
    free(s);
    s = ph_rows(c, "SELECT reminders_received, briefings_sent, last_briefing_title,"
                   " last_briefing_recipients FROM group_state WHERE group_id = 'collapse-group'");
    ASSERT_STR_EQ(s, "2|1|newer \"title\"\\|3\n");
    free(s);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM reminders WHERE group_id = 'collapse-group'"), 2);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    PQfinish(c);
}

/*
 * An event the database refuses for a reason the projector cannot foresee (a
 * constraint added by hand), in a batch that is already in flight when the
 * refusal comes back: the batch is rolled back, read again from the stored
 * offsets and applied without overlap, the event is dead-lettered and the
 * rest of its batch committed.
 */
static void test_refused_in_flight(void)
{
    char key_g[HUB_SUBJECT_KEY_SIZE], key_h[HUB_SUBJECT_KEY_SIZE], sql[1024], *s;
    PGconn *c = ph_connect(env.db_admin);

    ph_exec(c, "ALTER TABLE transition_plans ADD CONSTRAINT test_due_this_century"
               " CHECK (due_date < DATE '2100-01-01') NOT VALID");
    ph_write_config(&env, "batch_max_events = 500; batch_max_ms = 2000;");
    nbatch = 0;
    ph_subject(key_g, 7);
    ph_subject(key_h, 8);
    batch_flag("flag-g", key_g, 50000, "UHL", HUB_LA_RUTLAND, ph_date(2008, 2, 2), HUB_RISK_GANGS,
               ph_date(2024, 10, 1));
    batch_plan_due("due-g-far", key_g, 50100, HUB_LA_RUTLAND, ph_date(2100, 6, 1),
                   HUB_RULE_PLAN_AT_17Y6M, "flag-g");
    batch_plan_due("due-h", key_h, 50200, HUB_LA_LEICESTER, today + 30, HUB_RULE_PLAN_AT_17Y6M,
                   "flag-g");
    for (size_t i = 0; i < nbatch; i++)
        ph_send(&env, &batch_events[i]);
    ph_flush(&env);
    ph_start(&env);
    ph_wait_caught_up(&env, 120);

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM young_people WHERE subject_key = '%s'", key_g);
    ASSERT_INT_EQ(ph_num(c, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT subject_key = '%s', due_date - CURRENT_DATE FROM transition_plans"
             " WHERE subject_key IN ('%s', '%s')",
             key_h, key_g, key_h);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "t|30\n");
    free(s);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM dead_letters WHERE reason_class = 'database'"
                            " AND message LIKE '%test_due_this_century%'"),
                  1);
    char errstr[256];
    s = hub_read_file(env.log, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(s != NULL);
    ASSERT_STR_CONTAINS(s, "applying it again one batch at a time");
    free(s);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    ph_exec(c, "ALTER TABLE transition_plans DROP CONSTRAINT test_due_this_century");
    PQfinish(c);
}

/* How many lines of the projector's log contain text. */
static int log_count(const char *text)
{
    char errstr[256];
    char *s = hub_read_file(env.log, NULL, errstr, sizeof(errstr)), *at;
    int n = 0;
    ASSERT_TRUE(s != NULL);
    for (at = s; (at = strstr(at, text)) != NULL; at += strlen(text))
        n++;
    free(s);
    return n;
}

/*
 * The event log is written by COPY without looking the batch's ids up first. A
 * batch that holds an id logged already is refused by the log's primary key
 * and goes again with the lookup: its new events are applied once, the
 * repeated one not again.
 */
static void test_duplicate_among_new_events(void)
{
    char key_m[HUB_SUBJECT_KEY_SIZE], sql[512], *s;
    PGconn *c = ph_connect(env.db_admin);
    long long logged = ph_num(c, "SELECT count(*) FROM hub_event_log");
    int refused = log_count("event=event_log_duplicate"); /* by the tests before */

    /* One lane here (every other test runs with the default two). */
    ph_write_config(&env, "batch_max_events = 5000; batch_max_ms = 2000; connections = 1;");
    nbatch = 0;
    ph_subject(key_m, 9);
    batch_flag("flag-m", key_m, 60000, "UHL", HUB_LA_RUTLAND, ph_date(2008, 3, 3), HUB_RISK_GANGS,
               ph_date(2024, 11, 1));
    batch_flag("flag-m2", key_m, 60100, "LPT", HUB_LA_RUTLAND, ph_date(2008, 3, 3),
               HUB_RISK_COUNTY_LINES, ph_date(2024, 11, 2));
    ph_send(&env, &batch_events[0]);
    ph_flush(&env);
    ph_start(&env);
    ph_wait_caught_up(&env, 120);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM hub_event_log"), logged + 1);
    ASSERT_INT_OP(log_count("connections=1 "), >=, 1);

    /* The same subject, so the same partition and, read together at start, one batch: the
       repeated flag, then a new one. */
    ph_send(&env, &batch_events[0]);
    ph_send(&env, &batch_events[1]);
    ph_flush(&env);
    ph_start(&env);
    ph_wait_caught_up(&env, 120);

    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM hub_event_log"), logged + 2);
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM young_person_flags WHERE subject_key = '%s'),"
             " risk_categories, agencies FROM young_people WHERE subject_key = '%s'",
             key_m, key_m);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "2|{COUNTY_LINES,GANGS}|{LPT,UHL}\n");
    free(s);
    ASSERT_INT_EQ(log_count("event=event_log_duplicate"), refused + 1);

    /* Running on: an id it committed itself is remembered, found without the log's key
       refusing a COPY, and not applied again. */
    batch_flag("flag-m3", key_m, 60200, "UHL", HUB_LA_RUTLAND, ph_date(2008, 3, 3),
               HUB_RISK_CUCKOOING, ph_date(2024, 11, 3));
    ph_send(&env, &batch_events[1]);
    ph_send(&env, &batch_events[2]);
    ph_flush(&env);
    ph_wait_caught_up(&env, 120);
    ASSERT_INT_EQ(ph_num(c, "SELECT count(*) FROM hub_event_log"), logged + 3);
    s = ph_rows(c, sql);
    ASSERT_STR_EQ(s, "3|{COUNTY_LINES,CUCKOOING,GANGS}|{LPT,UHL}\n");
    free(s);
    ASSERT_INT_EQ(log_count("event=event_log_duplicate"), refused + 1);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    PQfinish(c);
}

int main(void)
{
    today = hub_date_london(hub_now_ms());
    t0 = hub_now_ms() - 3600 * 1000;
    ph_setup(&env, "proj", 3, "batch_max_ms = 50;");
    build_scenario();
    RUN_TEST(test_every_event_type);
    RUN_TEST(test_operations_endpoints);
    RUN_TEST(test_transitions_view);
    RUN_TEST(test_duplicates_after_restart);
    RUN_TEST(test_access_control);
    RUN_TEST(test_retention);
    RUN_TEST(test_one_batch_collapsed);
    RUN_TEST(test_refused_in_flight);
    RUN_TEST(test_duplicate_among_new_events);
    ph_teardown(&env);
    return 0;
}
