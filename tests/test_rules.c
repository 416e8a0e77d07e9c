/*
 * test_rules.c: the transition rules as a pure function: every rule at the
 * day before, on and after each boundary (16, the looked-after date, 17y6m,
 * 18), 29 February and month-end birthdays, per-local-authority overrides,
 * the configuration syntax and its errors, and the re-flag decision that
 * keeps the planner from raising an alert twice.
 */
#include <stdio.h>
#include <string.h>

#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/rules.h"
#include "test.h"

#define LAC  HUB_RISK_BIT(HUB_RISK_LOOKED_AFTER)
#define CIN  HUB_RISK_BIT(HUB_RISK_CHILD_IN_NEED)
#define CSE  HUB_RISK_BIT(HUB_RISK_SEXUAL_EXPLOITATION)
#define GANG HUB_RISK_BIT(HUB_RISK_GANGS)

#define SUBJECT "3f2a9c1b7e8d4f60a1b2c3d4e5f60718293a4b5c6d7e8f90011223344556677"

static hub_date_t D(const char *text)
{
    hub_date_t d;
    if (hub_date_parse(text, &d) != 0)
        TEST_FAIL_("bad date in test table: %s", text);
    return d;
}

static const char *fmt(hub_date_t d)
{
    static char bufs[4][16];
    static int next;
    return hub_date_format(d, bufs[next++ % 4], sizeof(bufs[0]));
}

/* One row: inputs, then the expected rule ("NONE" for no alert) and due date. */
typedef struct {
    const char *dob;
    const char *flagged_on;
    hub_risk_set_t cats;
    hub_local_authority_t la;
    const char *rule;
    const char *due;
    const char *why;
} row_t;

static const row_t boundaries[] = {
    /* 29 February 2008: 16th birthday 2024-02-29 (leap), 17y6m 2025-08-29, 18th 2026-02-28. */
    {"2008-02-29", "2024-02-28", CIN, HUB_LA_LEICESTER, "NONE", NULL, "day before 16"},
    {"2008-02-29", "2024-02-29", CIN, HUB_LA_LEICESTER, "PLAN_AT_17Y6M", "2025-08-29", "at 16"},
    {"2008-02-29", "2024-03-01", CIN, HUB_LA_LEICESTER, "PLAN_AT_17Y6M", "2025-08-29",
     "day after 16"},
    {"2008-02-29", "2024-02-28", LAC, HUB_LA_LEICESTER, "NONE", NULL, "looked after, under 16"},
    {"2008-02-29", "2024-02-29", LAC, HUB_LA_LEICESTER, "LOOKED_AFTER_16_PLUS_3M", "2024-05-29",
     "looked after at 16"},
    {"2008-02-29", "2024-05-28", LAC | CSE, HUB_LA_LEICESTER, "LOOKED_AFTER_16_PLUS_3M",
     "2024-05-29", "looked after, day before its due date"},
    {"2008-02-29", "2024-05-29", LAC, HUB_LA_LEICESTER, "LOOKED_AFTER_16_PLUS_3M", "2024-05-29",
     "looked after, flagged on its due date"},
    {"2008-02-29", "2024-05-30", LAC, HUB_LA_LEICESTER, "LATE_REFERRAL", "2024-06-27",
     "looked after, day after its due date"},
    {"2008-02-29", "2025-08-28", CIN, HUB_LA_LEICESTER, "PLAN_AT_17Y6M", "2025-08-29",
     "day before 17y6m"},
    {"2008-02-29", "2025-08-29", CIN, HUB_LA_LEICESTER, "PLAN_AT_17Y6M", "2025-08-29",
     "flagged on the due date (17y6m)"},
    {"2008-02-29", "2025-08-30", CIN, HUB_LA_LEICESTER, "LATE_REFERRAL", "2025-09-27",
     "day after 17y6m"},
    {"2008-02-29", "2026-02-27", CIN, HUB_LA_LEICESTER, "LATE_REFERRAL", "2026-03-27",
     "day before 18 (18th is 2026-02-28)"},
    {"2008-02-29", "2026-02-28", CIN, HUB_LA_LEICESTER, "ADULT_SAFEGUARDING_REFERRAL", "2026-03-28",
     "at 18 (28 February in a common year)"},
    {"2008-02-29", "2026-03-01", LAC, HUB_LA_LEICESTER, "ADULT_SAFEGUARDING_REFERRAL", "2026-03-29",
     "day after 18, looked after"},
    /* An ordinary birthday, 15 June 2009. */
    {"2009-06-15", "2025-06-14", CIN, HUB_LA_LEICESTERSHIRE, "NONE", NULL, "day before 16"},
    {"2009-06-15", "2025-06-15", CIN, HUB_LA_LEICESTERSHIRE, "PLAN_AT_17Y6M", "2026-12-15",
     "at 16"},
    {"2009-06-15", "2025-06-15", LAC, HUB_LA_LEICESTERSHIRE, "LOOKED_AFTER_16_PLUS_3M",
     "2025-09-15", "looked after at 16"},
    {"2009-06-15", "2025-09-15", LAC, HUB_LA_LEICESTERSHIRE, "LOOKED_AFTER_16_PLUS_3M",
     "2025-09-15", "looked after, on its due date"},
    {"2009-06-15", "2025-09-16", LAC, HUB_LA_LEICESTERSHIRE, "LATE_REFERRAL", "2025-10-14",
     "looked after, day after"},
    {"2009-06-15", "2026-12-14", CSE, HUB_LA_LEICESTERSHIRE, "PLAN_AT_17Y6M", "2026-12-15",
     "day before 17y6m"},
    {"2009-06-15", "2026-12-15", CSE, HUB_LA_LEICESTERSHIRE, "PLAN_AT_17Y6M", "2026-12-15",
     "on 17y6m"},
    {"2009-06-15", "2026-12-16", CSE, HUB_LA_LEICESTERSHIRE, "LATE_REFERRAL", "2027-01-13",
     "day after 17y6m"},
    {"2009-06-15", "2027-06-14", CSE, HUB_LA_LEICESTERSHIRE, "LATE_REFERRAL", "2027-07-12",
     "day before 18"},
    {"2009-06-15", "2027-06-15", CSE, HUB_LA_LEICESTERSHIRE, "ADULT_SAFEGUARDING_REFERRAL",
     "2027-07-13", "at 18"},
    {"2009-06-15", "2027-06-16", CSE, HUB_LA_LEICESTERSHIRE, "ADULT_SAFEGUARDING_REFERRAL",
     "2027-07-14", "day after 18"},
    /* Month ends: 31 August 2007 reaches 17y6m on 28 February 2025 (clamped). */
    {"2007-08-31", "2023-08-30", LAC, HUB_LA_RUTLAND, "NONE", NULL, "day before 16"},
    {"2007-08-31", "2023-08-31", LAC, HUB_LA_RUTLAND, "LOOKED_AFTER_16_PLUS_3M", "2023-11-30",
     "looked after: 16th + 3 months clamps to 30 November"},
    {"2007-08-31", "2023-08-31", CIN, HUB_LA_RUTLAND, "PLAN_AT_17Y6M", "2025-02-28",
     "17y6m clamps to 28 February"},
    {"2007-08-31", "2025-02-28", CIN, HUB_LA_RUTLAND, "PLAN_AT_17Y6M", "2025-02-28",
     "on the clamped due date"},
    {"2007-08-31", "2025-03-01", CIN, HUB_LA_RUTLAND, "LATE_REFERRAL", "2025-03-29",
     "day after the clamped due date"},
    /* 29 February 2084: the 16th birthday falls in 2100, a common year (28 February). */
    {"2084-02-29", "2100-02-27", LAC, HUB_LA_RUTLAND, "NONE", NULL, "day before the clamped 16th"},
    {"2084-02-29", "2100-02-28", LAC, HUB_LA_RUTLAND, "LOOKED_AFTER_16_PLUS_3M", "2100-05-28",
     "16th birthday clamped to 28 February 2100"},
    /* Late referral across a year end and a leap day. */
    {"2006-08-20", "2024-02-21", GANG, HUB_LA_LEICESTER, "LATE_REFERRAL", "2024-03-20",
     "28 days across 29 February 2024"},
    {"2006-06-30", "2023-12-31", GANG, HUB_LA_LEICESTER, "LATE_REFERRAL", "2024-01-28",
     "28 days across a year end"},
    /* The day of birth itself and well under 16. */
    {"2012-01-01", "2012-01-01", LAC, HUB_LA_LEICESTER, "NONE", NULL, "flagged at birth"},
    {"2011-05-05", "2026-11-26", LAC | CSE, HUB_LA_LEICESTER, "NONE", NULL, "aged 15"},
};

static void check_rows(const hub_rules_t *rules, const row_t *rows, size_t n)
{
    char errstr[256] = "";
    for (size_t i = 0; i < n; i++) {
        const row_t *r = &rows[i];
        hub_rule_decision_t d;
        int err = hub_rules_evaluate(rules, r->la, D(r->dob), r->cats, D(r->flagged_on), &d, errstr,
                                     sizeof(errstr));
        if (err)
            TEST_FAIL_("row %zu (%s): evaluate failed: %s", i, r->why, errstr);
        const char *rule = d.alert ? hub_transition_rule_name(d.rule) : "NONE";
        if (strcmp(rule, r->rule) != 0)
            TEST_FAIL_("row %zu (%s): dob %s flagged %s: rule %s, expected %s", i, r->why, r->dob,
                       r->flagged_on, rule, r->rule);
        if (d.alert && strcmp(fmt(d.due_date), r->due) != 0)
            TEST_FAIL_("row %zu (%s): dob %s flagged %s: due %s, expected %s", i, r->why, r->dob,
                       r->flagged_on, fmt(d.due_date), r->due);
    }
}

static void test_boundaries(void)
{
    hub_rules_t rules;
    hub_rules_defaults(&rules);
    check_rows(&rules, boundaries, HUB_ARRAY_LEN(boundaries));
}

static void test_birthdays_of_29_february(void)
{
    /* The answers the partnership agreed for 29 February births (docs/planner.md). */
    hub_date_t dob = D("2008-02-29");
    ASSERT_STR_EQ(fmt(hub_date_add_months(dob, 210)), "2025-08-29");
    ASSERT_STR_EQ(fmt(hub_date_add_months(dob, 192)), "2024-02-29");
    ASSERT_STR_EQ(fmt(hub_date_add_months(dob, 216)), "2026-02-28");
    ASSERT_STR_EQ(fmt(hub_date_add_months(D("2004-02-29"), 216)), "2022-02-28");
}

static void test_invalid(void)
{
    hub_rules_t rules;
    hub_rule_decision_t d;
    char errstr[256] = "";
    hub_rules_defaults(&rules);
    ASSERT_INT_EQ(hub_rules_evaluate(&rules, HUB_LA_LEICESTER, D("2009-06-15"), CIN,
                                     D("2009-06-14"), &d, errstr, sizeof(errstr)),
                  HUB_EINVAL);
    ASSERT_STR_CONTAINS(errstr, "before date_of_birth");
    ASSERT_INT_EQ(hub_rules_evaluate(&rules, HUB_LA__COUNT, D("2009-06-15"), CIN, D("2026-06-14"),
                                     &d, errstr, sizeof(errstr)),
                  HUB_EINVAL);
}

static void test_ages(void)
{
    int m = -1;
    char buf[16];
    ASSERT_OK(hub_rules_parse_age("17y6m", &m), "17y6m");
    ASSERT_INT_EQ(m, 210);
    ASSERT_OK(hub_rules_parse_age("16y", &m), "16y");
    ASSERT_INT_EQ(m, 192);
    ASSERT_OK(hub_rules_parse_age("9m", &m), "9m");
    ASSERT_INT_EQ(m, 9);
    ASSERT_OK(hub_rules_parse_age("0y15m", &m), "0y15m");
    ASSERT_INT_EQ(m, 15);
    static const char *const bad[] = {"",        "17",   "y",     "6m17y",  "17y6", "-1y",
                                      "17y6m3d", "17 y", "1000y", "16y16y", "17Y"};
    for (size_t i = 0; i < HUB_ARRAY_LEN(bad); i++)
        if (hub_rules_parse_age(bad[i], &m) == HUB_OK)
            TEST_FAIL_("age \"%s\" was accepted", bad[i]);
    ASSERT_STR_EQ(hub_rules_format_age(210, buf, sizeof(buf)), "17y6m");
    ASSERT_STR_EQ(hub_rules_format_age(192, buf, sizeof(buf)), "16y");
    ASSERT_STR_EQ(hub_rules_format_age(3, buf, sizeof(buf)), "3m");
}

static void test_config_overrides(void)
{
    const char *dir = hub_test_tmpdir();
    char errstr[512] = "";
    hub_rules_t rules;
    const char *path =
        hub_test_write_file(dir, "rules.conf",
                            "kafka = { bootstrap_servers = \"x\"; };\n"
                            "planner = {\n"
                            "  transactional_id = \"t\";\n"
                            "  rules = {\n"
                            "    late_referral_days = 21;\n"
                            "    RUTLAND = { late_referral_days = 14; plan_due_age = \"17y\"; };\n"
                            "    LEICESTERSHIRE = { looked_after = false; };\n"
                            "    LEICESTER = { adult_age = \"18y\"; adult_referral_days = 10;\n"
                            "                  looked_after_within_months = 1; };\n"
                            "  };\n"
                            "};\n");
    ASSERT_OK(hub_rules_load_file(path, "planner.rules", &rules, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(rules.defaults.late_referral_days, 21);
    ASSERT_INT_EQ(rules.la[HUB_LA_RUTLAND].late_referral_days, 14);
    ASSERT_INT_EQ(rules.la[HUB_LA_RUTLAND].plan_due_months, 204);
    ASSERT_INT_EQ(rules.la[HUB_LA_LEICESTERSHIRE].late_referral_days, 21);
    ASSERT_INT_EQ(rules.la[HUB_LA_LEICESTERSHIRE].looked_after, 0);
    ASSERT_INT_EQ(rules.la[HUB_LA_LEICESTER].plan_due_months, 210);
    ASSERT_TRUE(rules.overridden[HUB_LA_RUTLAND]);

    static const row_t local[] = {
        {"2009-06-15", "2026-12-16", CSE, HUB_LA_LEICESTER, "LATE_REFERRAL", "2027-01-06",
         "default late period overridden to 21 days"},
        {"2009-06-15", "2026-06-16", CSE, HUB_LA_RUTLAND, "LATE_REFERRAL", "2026-06-30",
         "Rutland: plan at 17y, late period 14 days"},
        {"2009-06-15", "2026-06-15", CSE, HUB_LA_RUTLAND, "PLAN_AT_17Y6M", "2026-06-15",
         "Rutland: on its 17y due date"},
        {"2009-06-15", "2025-06-15", LAC, HUB_LA_LEICESTERSHIRE, "PLAN_AT_17Y6M", "2026-12-15",
         "Leicestershire: looked-after rule switched off"},
        {"2009-06-15", "2025-06-15", LAC, HUB_LA_LEICESTER, "LOOKED_AFTER_16_PLUS_3M", "2025-07-15",
         "Leicester: within 1 month"},
        {"2009-06-15", "2027-06-15", LAC, HUB_LA_LEICESTER, "ADULT_SAFEGUARDING_REFERRAL",
         "2027-06-25", "Leicester: adult referral in 10 days"},
    };
    check_rows(&rules, local, HUB_ARRAY_LEN(local));

    /* Without the group, or without a file, the defaults apply. */
    path = hub_test_write_file(dir, "none.conf", "planner = { transactional_id = \"t\"; };\n");
    ASSERT_OK(hub_rules_load_file(path, "planner.rules", &rules, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(rules.la[HUB_LA_RUTLAND].late_referral_days, 28);
    ASSERT_OK(hub_rules_load_file(NULL, "planner.rules", &rules, errstr, sizeof(errstr)), errstr);
    check_rows(&rules, boundaries, HUB_ARRAY_LEN(boundaries));

    char out[2048] = "";
    FILE *f = fmemopen(out, sizeof(out), "w");
    hub_rules_print(&rules, f);
    fclose(f);
    ASSERT_STR_CONTAINS(out, "RUTLAND");
    ASSERT_STR_CONTAINS(out, "plan due at 17y6m");
}

static void test_config_errors(void)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"rules = { late_referal_days = 21; };", "bad.conf:1: 'late_referal_days' is not a rules"},
        {"rules = {\n plan_due_age = \"17y6\"; };", "bad.conf:2: 'plan_due_age' must be an age"},
        {"rules = { plan_due_age = 210; };", "'plan_due_age' must be an age"},
        {"rules = { late_referral_days = -1; };", "'late_referral_days' must be between 0 and"},
        {"rules = { late_referral_days = \"28\"; };", "'late_referral_days' must be an integer"},
        {"rules = { looked_after = 1; };", "'looked_after' must be true or false"},
        {"rules = { RUTLAND = 3; };", "'RUTLAND' must be a group"},
        {"rules = {\n\n RUTLAND = { colour = \"red\"; }; };",
         "bad.conf:3: 'colour' is not a rules setting"},
        {"rules = { alert_from_age = \"19y\"; };", "alert_from_age must not be after adult_age"},
        {"rules = { LEICESTER = { adult_age = \"15y\"; }; };",
         "alert_from_age must not be after adult_age (in a local authority override)"},
        {"rules = 5;", "must be a group"},
        {"rules = { ", "bad.conf:1: syntax error"},
    };
    const char *dir = hub_test_tmpdir();
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        char errstr[512] = "";
        hub_rules_t rules;
        const char *path = hub_test_write_file(dir, "bad.conf", cases[i].text);
        int err = hub_rules_load_file(path, "rules", &rules, errstr, sizeof(errstr));
        if (err != HUB_ECONFIG)
            TEST_FAIL_("case %zu accepted (%d): %s", i, err, cases[i].text);
        ASSERT_STR_CONTAINS(errstr, cases[i].message);
    }
}

/* ---- re-flags: hub_rules_plan ------------------------------------------------ */

static hub_event_t flag_event(const char *event_id, const char *agency, const char *dob,
                              const char *flagged_on, hub_risk_set_t cats, hub_local_authority_t la)
{
    hub_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_YOUNG_PERSON_FLAGGED;
    hub_strlcpy(ev.event_id, event_id, sizeof(ev.event_id));
    ev.occurred_at = 1750000000000LL;
    hub_strlcpy(ev.source, agency, sizeof(ev.source));
    hub_strlcpy(ev.u.flagged.subject_key, SUBJECT, sizeof(ev.u.flagged.subject_key));
    ev.u.flagged.local_authority = la;
    ev.u.flagged.date_of_birth = D(dob);
    ev.u.flagged.risk_categories = cats;
    ev.u.flagged.flagged_on = D(flagged_on);
    return ev;
}

#define ID1 "0b7e3c55-2f0e-4a4c-8d41-5f6f0a8a1c01"
#define ID2 "0b7e3c55-2f0e-4a4c-8d41-5f6f0a8a1c02"

/* Applies flag to state (NULL: none); returns emit and fills alert/next. */
static int plan(const hub_plan_state_t *prev, const hub_event_t *flag, hub_event_t *alert,
                hub_plan_state_t *next)
{
    hub_rules_t rules;
    char errstr[256] = "";
    int emit = -1;
    hub_rules_defaults(&rules);
    ASSERT_OK(hub_rules_plan(&rules, prev, flag, "hub-planner", &emit, alert, next, errstr,
                             sizeof(errstr)),
              errstr);
    return emit;
}

static void test_first_flag_and_repeats(void)
{
    hub_event_t alert, again;
    hub_plan_state_t st, st2;
    hub_event_t f =
        flag_event(ID1, "LEICESTER_CS", "2009-06-15", "2025-07-01", CIN, HUB_LA_LEICESTER);

    ASSERT_INT_EQ(plan(NULL, &f, &alert, &st), 1);
    ASSERT_INT_EQ(alert.type, HUB_EVENT_TRANSITION_PLAN_DUE);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "PLAN_AT_17Y6M");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2026-12-15");
    ASSERT_STR_EQ(alert.u.plan_due.cause_event_id, ID1);
    ASSERT_STR_EQ(alert.u.plan_due.subject_key, SUBJECT);
    ASSERT_STR_EQ(alert.source, "hub-planner");
    ASSERT_INT_EQ(alert.occurred_at, f.occurred_at);
    ASSERT_INT_EQ(alert.u.plan_due.risk_categories, CIN);
    ASSERT_STR_EQ(fmt(st.referred_on), "2025-07-01");
    ASSERT_TRUE(hub_uuid_valid(alert.event_id));

    /* The id depends only on what the alert says, so it is the same every time. */
    char id[HUB_UUID_SIZE];
    ASSERT_OK(hub_rules_alert_id(SUBJECT, HUB_LA_LEICESTER, HUB_RULE_PLAN_AT_17Y6M, D("2026-12-15"),
                                 CIN, id),
              "alert_id");
    ASSERT_STR_EQ(alert.event_id, id);
    ASSERT_INT_EQ(plan(NULL, &f, &again, &st2), 1);
    ASSERT_STR_EQ(again.event_id, alert.event_id);

    /* Reprocessing the same flag, a re-flag by another agency, a re-flag after the due date. */
    ASSERT_INT_EQ(plan(&st, &f, &again, &st2), 0);
    hub_event_t g =
        flag_event(ID2, "LEICS_POLICE", "2009-06-15", "2025-08-01", CIN, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &g, &again, &st2), 0);
    g = flag_event(ID2, "LEICS_POLICE", "2009-06-15", "2027-01-10", CIN, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &g, &again, &st2), 0);
    /* A category already known, flagged alone, adds nothing. */
    hub_plan_state_t two = st;
    two.risk_categories = CIN | CSE;
    g = flag_event(ID2, "LEICS_POLICE", "2009-06-15", "2025-09-01", CSE, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&two, &g, &again, &st2), 0);
}

static void test_reflag_changes(void)
{
    hub_event_t first, alert;
    hub_plan_state_t st, next;
    hub_event_t f =
        flag_event(ID1, "LEICESTER_CS", "2009-06-15", "2025-07-01", CIN, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(NULL, &f, &first, &st), 1);

    /* A new category: same due date, new alert with the union of categories. */
    hub_event_t g =
        flag_event(ID2, "LEICS_POLICE", "2009-06-15", "2025-09-01", CSE, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &g, &alert, &next), 1);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "PLAN_AT_17Y6M");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2026-12-15");
    ASSERT_INT_EQ(alert.u.plan_due.risk_categories, CIN | CSE);
    ASSERT_STR_EQ(alert.u.plan_due.cause_event_id, ID2);
    ASSERT_TRUE(strcmp(alert.event_id, first.event_id) != 0);
    ASSERT_STR_EQ(fmt(next.referred_on), "2025-07-01");

    /* Looked after, learnt before its date: the earlier looked-after date. */
    g = flag_event(ID2, "LEICESTER_CS", "2009-06-15", "2025-08-01", LAC, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &g, &alert, &next), 1);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "LOOKED_AFTER_16_PLUS_3M");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2025-09-15");
    ASSERT_INT_EQ(alert.u.plan_due.risk_categories, CIN | LAC);

    /* Looked after, learnt after that date: a late referral from the new flag. */
    g = flag_event(ID2, "LEICESTER_CS", "2009-06-15", "2025-10-01", LAC, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &g, &alert, &next), 1);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "LATE_REFERRAL");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2025-10-29");
    /* ... and flagging it again changes nothing. */
    hub_plan_state_t late = next;
    ASSERT_INT_EQ(plan(&late, &g, &alert, &next), 0);
    g = flag_event(ID1, "LPT", "2009-06-15", "2025-11-20", LAC | CIN, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&late, &g, &alert, &next), 0);

    /* Looked after, learnt at 18: the new facts make it an adult referral. */
    g = flag_event(ID2, "LEICESTER_CS", "2009-06-15", "2027-08-20", LAC, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &g, &alert, &next), 1);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "ADULT_SAFEGUARDING_REFERRAL");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2027-09-17");
    ASSERT_STR_EQ(fmt(next.referred_on), "2027-08-20");

    /* A corrected date of birth moves the due date. */
    g = flag_event(ID2, "LEICESTER_CS", "2009-05-15", "2025-08-01", CIN, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &g, &alert, &next), 1);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "PLAN_AT_17Y6M");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2026-11-15");

    /* Moving to another local authority: its adult social care needs the alert. */
    g = flag_event(ID2, "LEICESTERSHIRE_CS", "2009-06-15", "2025-08-01", CIN,
                   HUB_LA_LEICESTERSHIRE);
    ASSERT_INT_EQ(plan(&st, &g, &alert, &next), 1);
    ASSERT_STR_EQ(hub_local_authority_name(alert.u.plan_due.local_authority), "LEICESTERSHIRE");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2026-12-15");
    ASSERT_TRUE(strcmp(alert.event_id, first.event_id) != 0);
}

static void test_young_and_adult(void)
{
    hub_event_t alert;
    hub_plan_state_t st, next;

    /* Under 16: nothing yet; the first flag at 16 or over raises the alert. */
    hub_event_t f =
        flag_event(ID1, "LEICESTER_CS", "2010-06-15", "2026-06-14", CIN, HUB_LA_RUTLAND);
    ASSERT_INT_EQ(plan(NULL, &f, &alert, &st), 0);
    f = flag_event(ID2, "LEICESTER_CS", "2010-06-15", "2026-06-15", CIN, HUB_LA_RUTLAND);
    ASSERT_INT_EQ(plan(NULL, &f, &alert, &st), 1);

    /* First flagged as an adult; a re-flag with a new category keeps the referral date. */
    f = flag_event(ID1, "LEICS_POLICE", "2006-01-10", "2025-03-01", GANG, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(NULL, &f, &alert, &st), 1);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "ADULT_SAFEGUARDING_REFERRAL");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2025-03-29");
    f = flag_event(ID2, "LLR_ICB", "2006-01-10", "2025-05-01", CSE, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&st, &f, &alert, &next), 1);
    ASSERT_STR_EQ(hub_transition_rule_name(alert.u.plan_due.rule), "ADULT_SAFEGUARDING_REFERRAL");
    ASSERT_STR_EQ(fmt(alert.u.plan_due.due_date), "2025-03-29");
    ASSERT_INT_EQ(alert.u.plan_due.risk_categories, GANG | CSE);
    f = flag_event(ID2, "LLR_ICB", "2006-01-10", "2025-06-01", GANG, HUB_LA_LEICESTER);
    ASSERT_INT_EQ(plan(&next, &f, &alert, &next), 0);

    /* Inconsistent input is refused, not guessed at. */
    hub_rules_t rules;
    char errstr[256] = "";
    int emit;
    hub_rules_defaults(&rules);
    f = flag_event(ID1, "LEICESTER_CS", "2010-06-15", "2010-06-14", CIN, HUB_LA_RUTLAND);
    ASSERT_INT_EQ(hub_rules_plan(&rules, NULL, &f, "hub-planner", &emit, &alert, &next, errstr,
                                 sizeof(errstr)),
                  HUB_EINVAL);
    f.type = HUB_EVENT_BRIEFING_SENT;
    ASSERT_INT_EQ(hub_rules_plan(&rules, NULL, &f, "hub-planner", &emit, &alert, &next, errstr,
                                 sizeof(errstr)),
                  HUB_EINVAL);
}

static void test_alert_id_is_pinned(void)
{
    /* Published ids must never change: these are UUIDv5 of the documented name
       ("subject|LA|RULE|YYYY-MM-DD|CAT,CAT") in HUB_RULES_ALERT_NAMESPACE, computed
       independently (Python's uuid.uuid5). */
    char id[HUB_UUID_SIZE];
    ASSERT_OK(hub_rules_alert_id(SUBJECT, HUB_LA_LEICESTER, HUB_RULE_PLAN_AT_17Y6M, D("2026-12-15"),
                                 CSE | CIN, id),
              "alert_id");
    ASSERT_STR_EQ(id, "d13f9e27-11b9-5959-84a6-bc6a373d3ba5");
    ASSERT_OK(
        hub_rules_alert_id(SUBJECT, HUB_LA_RUTLAND, HUB_RULE_LATE_REFERRAL, D("2025-09-13"), 0, id),
        "alert_id");
    ASSERT_STR_EQ(id, "b0577229-2d16-558d-a069-cc7b10b517ba");
    ASSERT_INT_EQ(
        hub_rules_alert_id(SUBJECT, HUB_LA__COUNT, HUB_RULE_LATE_REFERRAL, D("2025-09-13"), 0, id),
        HUB_EINVAL);
}

static void test_state_round_trip(void)
{
    /* The memory rebuilt from an alert decides exactly like the memory kept in RAM. */
    hub_event_t alert, again;
    hub_plan_state_t st, rebuilt, next;
    hub_event_t f = flag_event(ID1, "LEICESTER_CS", "2008-02-29", "2024-03-10", LAC | CSE,
                               HUB_LA_LEICESTERSHIRE);
    ASSERT_INT_EQ(plan(NULL, &f, &alert, &st), 1);
    hub_rules_state_from_alert(&alert, D("2024-03-10"), &rebuilt);
    ASSERT_INT_EQ(memcmp(&st, &rebuilt, sizeof(st)), 0);
    ASSERT_INT_EQ(plan(&rebuilt, &f, &again, &next), 0);
}

int main(void)
{
    RUN_TEST(test_boundaries);
    RUN_TEST(test_birthdays_of_29_february);
    RUN_TEST(test_invalid);
    RUN_TEST(test_ages);
    RUN_TEST(test_config_overrides);
    RUN_TEST(test_config_errors);
    RUN_TEST(test_first_flag_and_repeats);
    RUN_TEST(test_reflag_changes);
    RUN_TEST(test_young_and_adult);
    RUN_TEST(test_alert_id_is_pinned);
    RUN_TEST(test_state_round_trip);
    return 0;
}
