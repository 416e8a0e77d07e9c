/*
 * test_reload_planner.c: SIGHUP makes hub-planner read its rules again. A
 * changed plan_due_age applies to the next flag and leaves the alert already
 * raised as it was; a setting that cannot change at run time is reported as
 * needing a restart; a file that is not valid is logged with its file:line
 * and the rules in use are kept, and the planner keeps serving.
 */
#include "planner_support.h"

#define CIN HUB_RISK_BIT(HUB_RISK_CHILD_IN_NEED)

/* Born 2009-06-15, flagged at 16y6m: the plan is due at plan_due_age, after the flag. */
#define DOB     "2009-06-15"
#define FLAGGED "2026-01-10"

static pt_setup_t s;
static hub_codec_t *codec;
static hub_producer_t *producer;
static unsigned salt;

/* Sends a flag for young person i and returns its event id (static rotation). */
static const char *send_flag(int i)
{
    static char ids[4][HUB_UUID_SIZE];
    static int next;
    char subject[HUB_SUBJECT_KEY_SIZE];
    hub_event_t ev =
        pt_flag(pt_subject(salt, i, subject), "LEICESTER_CS", HUB_LA_LEICESTER, DOB, FLAGGED, CIN);
    pt_send(producer, codec, s.flags, &ev, NULL);
    pt_flush(producer);
    char *id = ids[next++ % 4];
    hub_strlcpy(id, ev.event_id, HUB_UUID_SIZE);
    return id;
}

/* The due date of the one committed alert caused by flag event_id. */
static const char *due_of(const char *event_id)
{
    static char due[16];
    size_t n = 0;
    int found = 0;
    pt_record_t *r = pt_read_all(codec, s.alerts, 1, &n);
    for (size_t i = 0; i < n; i++) {
        if (r[i].decoded && strcmp(r[i].ev.u.plan_due.cause_event_id, event_id) == 0) {
            found++;
            hub_strlcpy(due, pt_fmt(r[i].ev.u.plan_due.due_date), sizeof(due));
        }
    }
    free(r);
    ASSERT_INT_EQ(found, 1);
    return due;
}

/* Occurrences of text in the planner's log. */
static int log_count(const char *text)
{
    char *log = hub_read_file(s.log, NULL, NULL, 0);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, text)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* The 1-based line of the first occurrence of needle in text. */
static int line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    int line = 1;
    ASSERT_TRUE(at != NULL);
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

/* Rewrites the planner's configuration file in place, as an operator would. */
static const char *rewrite(int batch_max, const char *rules)
{
    const char *path = pt_conf(&s, "planner.conf", s.group, s.txn, batch_max, rules);
    ASSERT_STR_EQ(path, s.conf);
    return path;
}

static void test_reload_rules(void)
{
    pid_t pid;
    char want[2048];

    pt_setup(&s, "reload", 10, "rules = { plan_due_age = \"17y6m\"; };");
    pid = pt_spawn(&s, s.conf);

    /* The rules of the start: due at 17y6m. */
    const char *first = send_flag(1);
    pt_wait_caught_up(&s, s.group, s.flags, &pid, 1, 60000);
    ASSERT_STR_EQ(due_of(first), "2026-12-15");

    /* A new plan_due_age, and a batch size that only a restart can change. */
    rewrite(20, "rules = { plan_due_age = \"17y\"; };");
    kill(pid, SIGHUP);
    pt_wait_log(s.log, "event=config_reloaded reloaded=planner.rules", 10000);
    pt_wait_log(s.log, "event=config_restart_needed settings=planner.batch_max ", 1000);
    const char *second = send_flag(2);
    pt_wait_caught_up(&s, s.group, s.flags, &pid, 1, 30000);
    ASSERT_STR_EQ(due_of(second), "2026-06-15");
    /* The alert raised under the old rules stands. */
    ASSERT_STR_EQ(due_of(first), "2026-12-15");

    /* A file that is not valid: one error line with file:line, the rules in use kept. */
    const char *bad = rewrite(20, "rules = {\n    plan_due_age = \"17y6\";\n  };");
    char *text = hub_read_file(bad, NULL, NULL, 0);
    snprintf(want, sizeof(want), "event=config_reload_failed error=\"%s:%d: ", bad,
             line_of(text, "plan_due_age"));
    free(text);
    kill(pid, SIGHUP);
    pt_wait_log(s.log, want, 10000);
    ASSERT_INT_EQ(log_count("event=config_reload_failed"), 1);
    ASSERT_INT_EQ(log_count("event=config_reloaded"), 1);
    const char *third = send_flag(3);
    pt_wait_caught_up(&s, s.group, s.flags, &pid, 1, 30000);
    ASSERT_STR_EQ(due_of(third), "2026-06-15");

    /* Still serving: /healthz answers, and SIGTERM is a clean stop. */
    int status = 0;
    free(pt_http_get(pt_http_port(s.log), "/healthz", &status));
    ASSERT_INT_EQ(status, 200);
    ASSERT_INT_EQ(pt_count(codec, s.alerts, 1), 3);
    pt_stop(&s, pid);
    ASSERT_INT_EQ(log_count("AddressSanitizer"), 0);
}

int main(void)
{
    salt = (unsigned)getpid() ^ (unsigned)hub_now_ms();
    codec = pt_codec();
    producer = pt_producer();
    RUN_TEST(test_reload_rules);
    hub_producer_destroy(producer);
    hub_codec_destroy(codec);
    return 0;
}
