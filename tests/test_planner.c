/*
 * test_planner.c: hub-planner end to end on the real broker: flags in,
 * alerts out with the expected rule, due date and categories for each rule
 * and a local override; re-flags (same and another agency, new category,
 * corrected date of birth) raise an alert only when something changed; bad
 * messages become dead letters while the partition keeps flowing; a
 * restart rebuilds the planner's memory from the alerts topic, and
 * reprocessing every flag from the start (offsets reset) raises nothing new.
 */
#include "planner_support.h"

#define LAC  HUB_RISK_BIT(HUB_RISK_LOOKED_AFTER)
#define CIN  HUB_RISK_BIT(HUB_RISK_CHILD_IN_NEED)
#define CSE  HUB_RISK_BIT(HUB_RISK_SEXUAL_EXPLOITATION)
#define GANG HUB_RISK_BIT(HUB_RISK_GANGS)
#define DA   HUB_RISK_BIT(HUB_RISK_DOMESTIC_ABUSE)

/* The local override the test configuration adds. */
#define EXTRA "rules = { RUTLAND = { late_referral_days = 14; }; };"

static pt_setup_t s;
static hub_codec_t *codec;
static hub_producer_t *producer;
static pid_t planner;

/* One flag sent, and the alert it must raise (rule NULL: none). */
typedef struct {
    const char *what;
    int subject;
    const char *agency;
    hub_local_authority_t la;
    const char *dob, *flagged_on;
    hub_risk_set_t cats;
    const char *rule, *due;
    hub_risk_set_t alert_cats;
    const char *referred_on;
} case_t;

/* No alert expected. */
#define NO_ALERT NULL, NULL, 0, NULL

enum { A = 1, B, C, D, E, F, G, H, I };

static case_t cases[] = {
    {"first flag: plan at 17y6m", A, "LEICESTER_CS", HUB_LA_LEICESTER, "2009-06-15", "2025-07-01",
     CIN, "PLAN_AT_17Y6M", "2026-12-15", CIN, "2025-07-01"},
    {"same agency again: nothing", A, "LEICESTER_CS", HUB_LA_LEICESTER, "2009-06-15", "2025-08-01",
     CIN, NO_ALERT},
    {"another agency, same facts: nothing", A, "LEICS_POLICE", HUB_LA_LEICESTER, "2009-06-15",
     "2025-09-01", CIN, NO_ALERT},
    {"another agency adds a category", A, "LEICS_POLICE", HUB_LA_LEICESTER, "2009-06-15",
     "2025-10-01", CSE, "PLAN_AT_17Y6M", "2026-12-15", CIN | CSE, "2025-07-01"},
    {"looked after, 29 February birthday", B, "LEICESTERSHIRE_CS", HUB_LA_LEICESTERSHIRE,
     "2008-02-29", "2024-02-29", LAC, "LOOKED_AFTER_16_PLUS_3M", "2024-05-29", LAC, "2024-02-29"},
    {"late referral, day after 17y6m", C, "LEICESTER_CS", HUB_LA_LEICESTER, "2008-02-29",
     "2025-08-30", CIN, "LATE_REFERRAL", "2025-09-27", CIN, "2025-08-30"},
    {"adult at 18 (28 February)", D, "LLR_ICB", HUB_LA_LEICESTER, "2008-02-29", "2026-02-28", DA,
     "ADULT_SAFEGUARDING_REFERRAL", "2026-03-28", DA, "2026-02-28"},
    {"under 16: no alert yet", E, "LEICESTER_CS", HUB_LA_LEICESTER, "2011-01-10", "2026-11-20",
     LAC | CSE, NO_ALERT},
    {"Rutland, plan at 17y6m", F, "RUTLAND_CS", HUB_LA_RUTLAND, "2009-03-03", "2025-04-01", CIN,
     "PLAN_AT_17Y6M", "2026-09-03", CIN, "2025-04-01"},
    {"Rutland, corrected date of birth", F, "RUTLAND_CS", HUB_LA_RUTLAND, "2009-02-03",
     "2025-05-01", CIN, "PLAN_AT_17Y6M", "2026-08-03", CIN, "2025-04-01"},
    {"flagged on the due date itself", G, "LPT", HUB_LA_LEICESTERSHIRE, "2008-05-10", "2025-11-10",
     GANG, "PLAN_AT_17Y6M", "2025-11-10", GANG, "2025-11-10"},
    {"Rutland late referral: local 14 days", I, "RUTLAND_CS", HUB_LA_RUTLAND, "2008-02-29",
     "2025-08-30", CIN, "LATE_REFERRAL", "2025-09-13", CIN, "2025-08-30"},
    /* The dead letters come here, on H's partition; H's flag follows them. */
    {"after the poison messages", H, "UHL", HUB_LA_LEICESTER, "2009-09-09", "2026-01-05", CSE,
     "PLAN_AT_17Y6M", "2027-03-09", CSE, "2026-01-05"},
};

static hub_event_t sent[HUB_ARRAY_LEN(cases)];
static unsigned salt;

static const char *subj(int i)
{
    static char bufs[4][HUB_SUBJECT_KEY_SIZE];
    static int next;
    return pt_subject(salt, i, bufs[next++ % 4]);
}

static void send_case(size_t i)
{
    const case_t *c = &cases[i];
    sent[i] = pt_flag(subj(c->subject), c->agency, c->la, c->dob, c->flagged_on, c->cats);
    pt_send(producer, codec, s.flags, &sent[i], NULL);
}

/* The bad messages, all keyed to H so they share its partition. */
static void send_poison(void)
{
    const char *key = subj(H);
    hub_event_t ev;

    pt_send_raw(producer, s.flags, key, "this is not avro", 16);
    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_BRIEFING_REQUESTED;
    hub_uuid_v4(ev.event_id);
    ev.occurred_at = hub_now_ms();
    hub_strlcpy(ev.source, "HUB_COORDINATOR", sizeof(ev.source));
    hub_strlcpy(ev.u.briefing_requested.group_id, "llr-exploitation-group",
                sizeof(ev.u.briefing_requested.group_id));
    hub_strlcpy(ev.u.briefing_requested.title, "t", sizeof(ev.u.briefing_requested.title));
    hub_strlcpy(ev.u.briefing_requested.link, "https://example.org/b",
                sizeof(ev.u.briefing_requested.link));
    pt_send(producer, codec, s.flags, &ev, key);
    ev = pt_flag(key, "NOT_AN_AGENCY", HUB_LA_LEICESTER, "2009-09-09", "2026-01-05", CSE);
    pt_send(producer, codec, s.flags, &ev, NULL);
    ev = pt_flag(subj(A), "LEICESTER_CS", HUB_LA_LEICESTER, "2009-06-15", "2026-01-05", GANG);
    pt_send(producer, codec, s.flags, &ev, key);
}

static const pt_record_t *find_cause(const pt_record_t *r, size_t n, const char *cause)
{
    const pt_record_t *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!r[i].decoded || strcmp(r[i].ev.u.plan_due.cause_event_id, cause) != 0)
            continue;
        if (found)
            TEST_FAIL_("two alerts for the cause %s", cause);
        found = &r[i];
    }
    return found;
}

static size_t expected_alerts(void)
{
    size_t n = 0;
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++)
        n += cases[i].rule != NULL;
    return n;
}

/* Checks every case's alert; extra alerts beyond the cases' are allowed. */
static void check_alerts(size_t extra)
{
    size_t n;
    pt_record_t *r = pt_read_all(codec, s.alerts, 1, &n);

    ASSERT_INT_EQ(n, expected_alerts() + extra);
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        const case_t *c = &cases[i];
        const pt_record_t *a = find_cause(r, n, sent[i].event_id);
        fprintf(stderr, "   %s\n", c->what);
        if (!c->rule) {
            ASSERT_TRUE(a == NULL);
            continue;
        }
        ASSERT_TRUE(a != NULL);
        const hub_transition_plan_due_t *due = &a->ev.u.plan_due;
        char id[HUB_UUID_SIZE];
        ASSERT_INT_EQ(a->ev.type, HUB_EVENT_TRANSITION_PLAN_DUE);
        ASSERT_STR_EQ(hub_transition_rule_name(due->rule), c->rule);
        ASSERT_STR_EQ(pt_fmt(due->due_date), c->due);
        ASSERT_INT_EQ(due->risk_categories, c->alert_cats);
        ASSERT_INT_EQ(due->local_authority, c->la);
        ASSERT_STR_EQ(due->subject_key, subj(c->subject));
        ASSERT_STR_EQ(a->key, subj(c->subject));
        ASSERT_STR_EQ(a->ev.source, "hub-planner");
        ASSERT_STR_EQ(a->referred_on, c->referred_on);
        ASSERT_OK(hub_rules_alert_id(due->subject_key, due->local_authority, due->rule,
                                     due->due_date, due->risk_categories, id),
                  "alert id");
        ASSERT_STR_EQ(a->ev.event_id, id);
    }
    free(r);
}

static void check_dead_letters(size_t expect)
{
    size_t n;
    pt_record_t *r = pt_read_all(codec, s.dlq, 1, &n);
    static const char *const classes[] = {"decode", "schema", "validation", "validation"};
    static const char *const messages[] = {"", "does not belong on the risk flags topic",
                                           "source_agency", "message key is not"};
    ASSERT_INT_EQ(n, expect);
    for (size_t i = 0; i < n; i++) {
        ASSERT_STR_EQ(r[i].key, subj(H));
        ASSERT_STR_EQ(r[i].dlq_class, classes[i % 4]);
        ASSERT_STR_CONTAINS(r[i].dlq_message, messages[i % 4]);
    }
    free(r);
}

/* /metrics counts what was committed; /readyz and /healthz say the planner is serving. */
static void check_operations_endpoint(void)
{
    int port = pt_http_port(s.log), status;
    char series[512];
    char *body = pt_http_get(port, "/metrics", &status);

    ASSERT_INT_EQ(status, 200);
    snprintf(series, sizeof(series), "hub_events_in_total{topic=\"%s\"}", s.flags);
    ASSERT_INT_EQ(pt_metric(body, series), HUB_ARRAY_LEN(cases) + 4);
    snprintf(series, sizeof(series), "hub_events_out_total{topic=\"%s\"}", s.alerts);
    ASSERT_INT_EQ(pt_metric(body, series), expected_alerts());
    ASSERT_INT_EQ(pt_metric(body, "hub_dead_letters_total{class=\"decode\"}"), 1);
    ASSERT_INT_EQ(pt_metric(body, "hub_dead_letters_total{class=\"schema\"}"), 1);
    ASSERT_INT_EQ(pt_metric(body, "hub_dead_letters_total{class=\"validation\"}"), 2);
    ASSERT_INT_EQ(pt_metric(body, "hub_dead_letters_total{class=\"database\"}"), 0);
    ASSERT_INT_EQ(pt_metric(body, "hub_delivery_failures_total"), 0);
    ASSERT_INT_OP(pt_metric(body, "hub_batch_latency_ms_count"), >=, 1);
    free(body);
    body = pt_http_get(port, "/readyz", &status);
    ASSERT_INT_EQ(status, 200);
    free(body);
    body = pt_http_get(port, "/healthz", &status);
    ASSERT_INT_EQ(status, 200);
    free(body);
}

static void test_rules_end_to_end(void)
{
    size_t half = HUB_ARRAY_LEN(cases) / 2;

    salt = (unsigned)getpid();
    pt_setup(&s, "e2e", 100, EXTRA);
    codec = pt_codec();
    producer = pt_producer();
    /* Some flags wait for the planner, the rest arrive while it runs. */
    for (size_t i = 0; i < half; i++)
        send_case(i);
    pt_flush(producer);
    planner = pt_spawn(&s, s.conf);
    for (size_t i = half; i < HUB_ARRAY_LEN(cases); i++) {
        if (cases[i].subject == H)
            send_poison();
        send_case(i);
    }
    pt_flush(producer);
    pt_wait_caught_up(&s, s.group, s.flags, &planner, 1, 90000);
    check_alerts(0);
    check_dead_letters(4);
    check_operations_endpoint();
}

static void test_restart_and_reprocess(void)
{
    char group[256], txn[256];

    /* A clean stop, a restart: nothing new to do, nothing raised. */
    pt_stop(&s, planner);
    planner = pt_spawn(&s, s.conf);
    pt_wait_caught_up(&s, s.group, s.flags, &planner, 1, 90000);
    ASSERT_INT_EQ(pt_count(codec, s.alerts, 1), expected_alerts());

    /* The restarted planner remembers A's categories (CIN, CSE) from the alerts topic. */
    hub_event_t ev =
        pt_flag(subj(A), "LLR_ICB", HUB_LA_LEICESTER, "2009-06-15", "2026-02-01", GANG);
    pt_send(producer, codec, s.flags, &ev, NULL);
    pt_flush(producer);
    pt_wait_caught_up(&s, s.group, s.flags, &planner, 1, 90000);
    size_t n;
    pt_record_t *r = pt_read_all(codec, s.alerts, 1, &n);
    ASSERT_INT_EQ(n, expected_alerts() + 1);
    const pt_record_t *a = find_cause(r, n, ev.event_id);
    ASSERT_TRUE(a != NULL);
    ASSERT_INT_EQ(a->ev.u.plan_due.risk_categories, CIN | CSE | GANG);
    ASSERT_STR_EQ(pt_fmt(a->ev.u.plan_due.due_date), "2026-12-15");
    ASSERT_STR_EQ(a->referred_on, "2025-07-01");
    free(r);
    pt_stop(&s, planner);

    /* Reprocessing every flag from the start (a new group: offsets reset) raises no alert twice. */
    snprintf(group, sizeof(group), "%s-replay", s.group);
    snprintf(txn, sizeof(txn), "%s-replay", s.txn);
    const char *conf = pt_conf(&s, "replay.conf", group, txn, 3, EXTRA);
    planner = pt_spawn(&s, conf);
    pt_wait_caught_up(&s, group, s.flags, &planner, 1, 90000);
    pt_stop(&s, planner);
    ASSERT_INT_EQ(pt_count(codec, s.alerts, 1), expected_alerts() + 1);
    check_alerts(1);
    /* Dead letters, by contrast, are per delivery: the replay rejected them again. */
    check_dead_letters(8);
}

static void test_bad_configuration(void)
{
    /* The alerts topic must have at least the flags topic's partitions. */
    pt_setup_t t;
    char few[256], cmd[4096];
    pt_setup(&t, "badconf", 10, "");
    hub_test_topic("planner_one", 1, few, sizeof(few));
    hub_strlcpy(t.alerts, few, sizeof(t.alerts));
    const char *conf = pt_conf(&t, "few.conf", t.group, t.txn, 10, "");
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s' 2>'%s/err.txt'", pt_planner_bin(), conf, t.dir);
    ASSERT_INT_EQ(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof(cmd), "%s/err.txt", t.dir);
    char *err = hub_read_file(cmd, NULL, NULL, 0);
    ASSERT_STR_CONTAINS(err, "needs at least as many");
    free(err);

    /* A rules mistake names the file and line, and the exit status is 2. */
    conf = pt_conf(&t, "rules.conf", t.group, t.txn, 10, "rules = { plan_due_age = \"17y6\"; };");
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s' 2>'%s/err.txt'", pt_planner_bin(), conf, t.dir);
    ASSERT_INT_EQ(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof(cmd), "%s/err.txt", t.dir);
    err = hub_read_file(cmd, NULL, NULL, 0);
    ASSERT_STR_CONTAINS(err, "rules.conf:11: 'plan_due_age' must be an age");
    free(err);
}

int main(void)
{
    RUN_TEST(test_rules_end_to_end);
    RUN_TEST(test_restart_and_reprocess);
    RUN_TEST(test_bad_configuration);
    hub_producer_destroy(producer);
    hub_codec_destroy(codec);
    return 0;
}
