/*
 * test_planner_hubctl.c: `hubctl simulate` and `hubctl brief` on the real
 * broker. simulate publishes what it says it publishes, the same seed gives
 * the same population, and hub-planner raises exactly the alerts simulate
 * predicted, rule by rule (and nothing more when the same population is
 * published again). brief publishes one BriefingRequested for a configured
 * group and refuses unknown groups and bad links.
 */
#include "planner_support.h"

static pt_setup_t s;
static char actions[256], notifications[256], conf[1024];

/* Runs hubctl with args; returns its exit status and its stdout (caller frees). */
static int hubctl(const char *args, char **out)
{
    char cmd[2048], *text = calloc(1, 1 << 16);
    size_t n = 0, r;
    int status;
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s' %s 2>>'%s/hubctl.err'", pt_hubctl_bin(), conf,
             args, s.dir);
    FILE *f = popen(cmd, "r");
    if (!f || !text)
        TEST_FAIL_("cannot run %s", cmd);
    while ((r = fread(text + n, 1, (1 << 16) - 1 - n, f)) > 0)
        n += r;
    status = pclose(f);
    text[n] = '\0';
    if (out)
        *out = text;
    else
        free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The number after `label` on the line that starts (after spaces) with it. */
static long count_after(const char *text, const char *label)
{
    const char *at = strstr(text, label);
    long v = -1;
    if (!at || sscanf(at + strlen(label), " %ld", &v) != 1)
        TEST_FAIL_("no \"%s\" count in:\n%s", label, text);
    return v;
}

/* The count of rule in the "TransitionPlanDue N (RULE n, ...)" line. */
static long rule_count(const char *text, const char *rule)
{
    char label[64];
    snprintf(label, sizeof(label), "%s ", rule);
    const char *line = strstr(text, "TransitionPlanDue");
    if (!line)
        TEST_FAIL_("no TransitionPlanDue line in:\n%s", text);
    return count_after(line, label);
}

static void setup(void)
{
    char text[4096];
    pt_setup(&s, "hubctl", 500, "");
    hub_test_topic("planner_actions", 3, actions, sizeof(actions));
    hub_test_topic("planner_notifications", 3, notifications, sizeof(notifications));
    snprintf(text, sizeof(text),
             "kafka = {%s };\n"
             "topics = { risk_flags = \"%s\"; transition_alerts = \"%s\"; dead_letters = \"%s\";\n"
             "           meeting_actions = \"%s\"; group_notifications = \"%s\"; };\n"
             "linkage = { secret = \"a test secret, not the partnership's\"; };\n"
             "planner = { group_id = \"%s\"; transactional_id = \"%s\"; batch_max = 500;\n"
             "            http_listen = \"127.0.0.1:0\"; };\n",
             hub_test_kafka_settings(), s.flags, s.alerts, s.dlq, actions, notifications, s.group,
             s.txn);
    hub_strlcpy(conf, hub_test_write_file(s.dir, "hub.conf", text), sizeof(conf));
}

static void test_simulate_is_deterministic(void)
{
    char *a, *b, *c;
    setup();
    ASSERT_INT_EQ(hubctl("simulate --people 120 --seed 7 --now 2025-03-01 --dry-run", &a), 0);
    ASSERT_INT_EQ(hubctl("simulate --seed 7 --people 120 --now 2025-03-01 --dry-run", &b), 0);
    ASSERT_INT_EQ(hubctl("simulate --people 120 --seed 8 --now 2025-03-01 --dry-run", &c), 0);
    ASSERT_STR_EQ(a, b);
    ASSERT_TRUE(strcmp(a, c) != 0);
    ASSERT_STR_CONTAINS(a, "simulated 120 young people (seed 7, as of 2025-03-01)");
    ASSERT_STR_CONTAINS(a, "would publish (dry run)");
    ASSERT_INT_OP(count_after(a, "YoungPersonFlagged"), >, 120);
    ASSERT_INT_OP(count_after(a, "MeetingActionRecorded"), >, 0);
    free(a);
    free(b);
    free(c);
    /* Nothing was published by the dry runs. */
    hub_codec_t *codec = pt_codec();
    ASSERT_INT_EQ(pt_count(codec, s.flags, 0), 0);
    hub_codec_destroy(codec);

    /* Usage errors are status 2. */
    ASSERT_INT_EQ(hubctl("simulate --people 10", NULL), 2);
    ASSERT_INT_EQ(hubctl("simulate --people 0 --seed 1", NULL), 2);
    ASSERT_INT_EQ(hubctl("simulate --people 10 --seed 1 --now 2999-01-01", NULL), 2);
    ASSERT_INT_EQ(hubctl("simulate --people 10 --seed 1 --now 2025-02-30", NULL), 2);
}

static void test_simulate_then_plan(void)
{
    hub_codec_t *codec = pt_codec();
    char *out;
    size_t n;

    ASSERT_INT_EQ(hubctl("simulate --people 400 --seed 2026", &out), 0);
    fprintf(stderr, "%s", out);
    long flags = count_after(out, "YoungPersonFlagged");
    long recorded = count_after(out, "MeetingActionRecorded");
    long completed = count_after(out, "MeetingActionCompleted");
    long alerts = count_after(out, "TransitionPlanDue");
    ASSERT_INT_EQ(pt_count(codec, s.flags, 1), flags);
    ASSERT_INT_EQ(pt_count(codec, actions, 1), recorded + completed);

    /* Every flag decodes, is keyed by its subject and names a configured agency. */
    pt_record_t *r = pt_read_all(codec, s.flags, 1, &n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_TRUE(r[i].decoded);
        ASSERT_STR_EQ(r[i].key, r[i].ev.u.flagged.subject_key);
        ASSERT_TRUE(hub_subject_key_valid(r[i].ev.u.flagged.subject_key));
    }
    free(r);

    pid_t planner = pt_spawn(&s, conf);
    pt_wait_caught_up(&s, s.group, s.flags, &planner, 1, 90000);
    r = pt_read_all(codec, s.alerts, 1, &n);
    ASSERT_INT_EQ(n, alerts);
    long by_rule[HUB_RULE__COUNT] = {0};
    for (size_t i = 0; i < n; i++)
        by_rule[r[i].ev.u.plan_due.rule]++;
    for (int i = 0; i < HUB_RULE__COUNT; i++)
        ASSERT_INT_EQ(by_rule[i], rule_count(out, hub_transition_rule_name(i)));
    free(r);
    ASSERT_INT_EQ(pt_count(codec, s.dlq, 1), 0);
    free(out);

    /* The same population again: the same events, so no new alert. */
    ASSERT_INT_EQ(hubctl("simulate --people 400 --seed 2026", NULL), 0);
    ASSERT_INT_EQ(pt_count(codec, s.flags, 1), 2 * flags);
    pt_wait_caught_up(&s, s.group, s.flags, &planner, 1, 90000);
    ASSERT_INT_EQ(pt_count(codec, s.alerts, 1), alerts);
    pt_stop(&s, planner);
    hub_codec_destroy(codec);
}

static void test_brief(void)
{
    hub_codec_t *codec = pt_codec();
    char *out;
    size_t n;

    ASSERT_INT_EQ(hubctl("brief llr-exploitation-group --title 'Transitions work: Q4 update' "
                         "--link https://example.org/briefings/q4.pdf",
                         &out),
                  0);
    ASSERT_STR_CONTAINS(out, "briefing requested for llr-exploitation-group");
    free(out);
    pt_record_t *r = pt_read_all(codec, notifications, 1, &n);
    ASSERT_INT_EQ(n, 1);
    ASSERT_TRUE(r[0].decoded);
    ASSERT_INT_EQ(r[0].ev.type, HUB_EVENT_BRIEFING_REQUESTED);
    ASSERT_STR_EQ(r[0].key, "llr-exploitation-group");
    ASSERT_STR_EQ(r[0].ev.u.briefing_requested.group_id, "llr-exploitation-group");
    ASSERT_STR_EQ(r[0].ev.u.briefing_requested.title, "Transitions work: Q4 update");
    ASSERT_STR_EQ(r[0].ev.u.briefing_requested.link, "https://example.org/briefings/q4.pdf");
    ASSERT_STR_EQ(r[0].ev.source, "HUB_COORDINATOR");
    free(r);

    /* Refused before anything is sent. */
    ASSERT_INT_EQ(hubctl("brief no-such-group --title t --link https://example.org/x", NULL), 2);
    ASSERT_INT_EQ(
        hubctl("brief llr-exploitation-group --title t --link http://example.org/x", NULL), 2);
    ASSERT_INT_EQ(hubctl("brief llr-exploitation-group --title t --link https://example.org/x "
                         "--agency NOBODY",
                         NULL),
                  2);
    ASSERT_INT_EQ(hubctl("brief llr-exploitation-group --title t", NULL), 2);
    ASSERT_INT_EQ(pt_count(codec, notifications, 1), 1);
    char path[1100];
    snprintf(path, sizeof(path), "%s/hubctl.err", s.dir);
    char *err = hub_read_file(path, NULL, NULL, 0);
    ASSERT_STR_CONTAINS(err, "no group 'no-such-group' is configured");
    ASSERT_STR_CONTAINS(err, "link: must be an https:// URL");
    free(err);
    hub_codec_destroy(codec);
}

int main(void)
{
    RUN_TEST(test_simulate_is_deterministic);
    RUN_TEST(test_simulate_then_plan);
    RUN_TEST(test_brief);
    return 0;
}
