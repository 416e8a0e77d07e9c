/*
 * test_workflow_e2e.c: the whole transitions workflow at once, on the real
 * broker, PostgreSQL and SMTP server, on fresh topics and a fresh database.
 * hub-projector, hub-planner and hub-notifier run as child processes;
 * `hubctl simulate` publishes a synthetic population and `hubctl brief` a
 * briefing request. The test recomputes, from the flags and actions actually
 * published, each young person's due date and rule (with lib/rules.c), the
 * status the view must show as of a fixed date, and every reminder and mail
 * that must follow. Then:
 *   - the view (hub_transitions_as_of) shows the expected due date, rule and
 *     status for every young person, and nobody else;
 *   - one `hub-reminder --once --now` scan: each expected reminder reaches
 *     each address of its group exactly once, the briefing too, nothing else;
 *   - the same scan again produces nothing;
 *   - a later scan SIGKILLed as soon as it has produced something, then run
 *     again: still exactly one mail per reminder and address;
 *   - every service stops with status 0 on SIGTERM.
 */
#include <dirent.h>
#include <fcntl.h>
#include <strings.h>

#include "hub/pg.h"
#include "planner_support.h"

#define WF_PASSWORD "workflow-test-password"
#define WF_NS       "3b8f5e27-4c1d-5a96-8e2f-7d0c9b6a1e54" /* docs/reminder.md */
#define WF_PEOPLE   "80"
#define WF_SEED     "4242"
#define WF_NOW      "2026-03-03"
/*
 * The scan that is killed is this many days after WF_NOW: late enough for many plans to have
 * fallen overdue since (many new events), and still before the day the test runs, so the
 * briefing it sends (dated today) keeps its group from a GROUP_NOT_BRIEFED reminder.
 */
#define WF_LATER       120
#define WF_BRIEFED     "llr-strategic-partnership-executive-group"
#define WF_MAX_PEOPLE  512
#define WF_MAX_ACTIONS 512
#define WF_MAX_EXPECT  4096

/* The named groups, as the shipped defaults (docs/notifier.md), with this run's addresses. */
typedef struct {
    const char *id;
    const char *reminders; /* the subscriptions, comma-separated */
    int la;                /* a hub_local_authority_t, or -1 for all */
    int naddr;
    char addr[2][160];
} wf_group_t;

static wf_group_t s_groups[] = {
    {"llr-transitions-subgroup", "PLAN_OVERDUE,ACTION_OVERDUE", -1, 2, {"", ""}},
    {"llr-strategic-partnership-executive-group",
     "ACTION_OVERDUE,GROUP_NOT_BRIEFED",
     -1,
     1,
     {"", ""}},
    {"llr-exploitation-group", "ACTION_OVERDUE,GROUP_NOT_BRIEFED", -1, 1, {"", ""}},
    {"llr-modern-slavery-action-group", "ACTION_OVERDUE,GROUP_NOT_BRIEFED", -1, 1, {"", ""}},
    {"city-transitions-board",
     "PLAN_OVERDUE,ACTION_OVERDUE,GROUP_NOT_BRIEFED",
     HUB_LA_LEICESTER,
     1,
     {"", ""}},
    {"leicester-adult-social-care",
     "PLAN_DUE_SOON,PLAN_OVERDUE,ACTION_OVERDUE",
     HUB_LA_LEICESTER,
     2,
     {"", ""}},
    {"leicestershire-adult-social-care",
     "PLAN_DUE_SOON,PLAN_OVERDUE,ACTION_OVERDUE",
     HUB_LA_LEICESTERSHIRE,
     1,
     {"", ""}},
    {"rutland-adult-social-care",
     "PLAN_DUE_SOON,PLAN_OVERDUE,ACTION_OVERDUE",
     HUB_LA_RUTLAND,
     1,
     {"", ""}},
    /* Not a default: subscribed to nothing, so its overdue actions are ledger rows, not mail. */
    {"quiet-group", "", -1, 1, {"", ""}},
};

/* One young person as recomputed from the published flags. */
typedef struct {
    char subject[HUB_SUBJECT_KEY_SIZE];
    hub_local_authority_t la;
    int have_plan;
    hub_plan_state_t plan;
} wf_person_t;

/* One meeting action as published. */
typedef struct {
    char id[HUB_UUID_SIZE];
    char group[HUB_CODE_SIZE];
    hub_date_t due;
    int completed;
} wf_action_t;

/* One expected event of the reminder, and what the notifier must do with it. */
typedef struct {
    char event_id[HUB_UUID_SIZE];
    char what[160]; /* for messages: kind, subject (12 characters), group, due date */
    const wf_group_t *group;
    int mailed; /* the group subscribes, so each address gets one mail */
} wf_expect_t;

static struct {
    char topics[6][256]; /* risk_flags ... dead_letters, in the order of s_topic_names */
    char db_admin[1024];
    char dir[512];
    char token[64];
    char common[16384];
    char conf_hubctl[1024], conf_projector[1024], conf_planner[1024], conf_notifier[1024],
        conf_reminder[1024], conf_slow_reminder[1024];
    pid_t projector, planner, notifier;
    hub_codec_t *codec;
    wf_person_t people[WF_MAX_PEOPLE];
    int npeople;
    wf_action_t actions[WF_MAX_ACTIONS];
    int nactions;
    long flags, alerts, recorded, completed;
    char brief_id[HUB_UUID_SIZE];
    wf_expect_t expect[WF_MAX_EXPECT];
    int nexpect;
} s;

static const char *const s_topic_names[6] = {"risk_flags",          "transition_alerts",
                                             "transition_plans",    "meeting_actions",
                                             "group_notifications", "dead_letters"};
enum { T_FLAGS, T_ALERTS, T_PLANS, T_ACTIONS, T_NOTIFICATIONS, T_DLQ };

/* ---- processes ------------------------------------------------------------ */

static pid_t s_children[8];

static void kill_children(void)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(s_children); i++)
        if (s_children[i] > 0) {
            kill(s_children[i], SIGKILL);
            waitpid(s_children[i], NULL, 0);
        }
}

static void forget(pid_t pid)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(s_children); i++)
        if (s_children[i] == pid)
            s_children[i] = 0;
}

static const char *log_path(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *p = bufs[next++ % 4];
    snprintf(p, 1024, "%s/%s.log", s.dir, name);
    return p;
}

static void show_log(const char *name)
{
    char cmd[1200];
    fprintf(stderr, "---- last lines of %s ----\n", log_path(name));
    snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", log_path(name));
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

/*
 * Starts the program rel (under <build>/services, or $env) as name with args, output appended
 * to name.log.
 */
static pid_t spawn(const char *name, const char *env, const char *rel, const char *const *args)
{
    static char bins[8][PATH_MAX];
    static int next;
    const char *bin = pt_build_bin(env, rel, bins[next++ % 8], PATH_MAX);
    const char *argv[16] = {name};
    size_t n = 1;
    while (args && *args && n < HUB_ARRAY_LEN(argv) - 1)
        argv[n++] = *args++;
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        TEST_FAIL_("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log_path(name), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (size_t i = 0; i < HUB_ARRAY_LEN(s_children); i++)
        if (s_children[i] == 0) {
            s_children[i] = pid;
            break;
        }
    return pid;
}

/* Waits up to timeout_ms for pid; returns its exit status (128+n for a signal). */
static int wait_exit(const char *name, pid_t pid, int timeout_ms)
{
    int status = 0;
    int64_t end = hub_monotonic_ms() + timeout_ms;
    while (hub_monotonic_ms() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            forget(pid);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(20 * 1000);
    }
    show_log(name);
    TEST_FAIL_("%s did not exit within %d ms", name, timeout_ms);
}

/* Fails (showing its log) if the service pid has exited. */
static void assert_running(const char *name, pid_t pid)
{
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
        forget(pid);
        show_log(name);
        TEST_FAIL_("%s exited early (status 0x%x)", name, status);
    }
}

static void assert_services_running(void)
{
    assert_running("hub-projector", s.projector);
    assert_running("hub-planner", s.planner);
    assert_running("hub-notifier", s.notifier);
}

/* Runs hubctl with args; returns its exit status and its stdout (caller frees). */
static int hubctl(const char *args, char **out)
{
    char cmd[2048], *text = calloc(1, 1 << 16);
    size_t n = 0, r;
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s' %s 2>>'%s'", pt_hubctl_bin(), s.conf_hubctl,
             args, log_path("hubctl"));
    FILE *f = popen(cmd, "r");
    if (!f || !text)
        TEST_FAIL_("cannot run %s", cmd);
    while ((r = fread(text + n, 1, (1 << 16) - 1 - n, f)) > 0)
        n += r;
    int status = pclose(f);
    text[n] = '\0';
    *out = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The number after label in text. */
static long count_after(const char *text, const char *label)
{
    const char *at = strstr(text, label);
    long v = -1;
    if (!at || sscanf(at + strlen(label), " %ld", &v) != 1)
        TEST_FAIL_("no \"%s\" count in:\n%s", label, text);
    return v;
}

/* ---- database ------------------------------------------------------------- */

static PGconn *admin(void)
{
    char errstr[512] = "";
    PGconn *c = hub_pg_connect(s.db_admin, NULL, 10000, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("%s", errstr);
    return c;
}

/* The rows of sql (text parameters), as admin; caller PQclears. */
static PGresult *query(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        TEST_FAIL_("%s: %s", sql, PQerrorMessage(c));
    return r;
}

static long long scalar(PGconn *c, const char *sql)
{
    PGresult *r = query(c, sql, 0, NULL);
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* ---- setup ---------------------------------------------------------------- */

/* Writes common settings, kafka { } with kafka_extra, and own into the file name. */
static const char *write_conf(const char *name, const char *kafka_extra, const char *own)
{
    static char text[32768];
    snprintf(text, sizeof(text), "kafka = {%s%s };\n%s%s", hub_test_kafka_settings(), kafka_extra,
             s.common, own);
    return hub_test_write_file(s.dir, name, text);
}

static void setup(void)
{
    char errstr[512] = "", migrations[1024], own[4096], roles[1400];
    int applied = 0, n = 0;

    memset(&s, 0, sizeof(s));
    atexit(kill_children);
    hub_strlcpy(s.dir, hub_test_tmpdir(), sizeof(s.dir));
    /* A token in every address: it picks this run's mails out of the shared Maildir. */
    snprintf(s.token, sizeof(s.token), "wf%s", hub_test_unique());
    for (char *p = s.token; *p; p++)
        if (*p == '_')
            *p = '-';
    for (int i = 0; i < 6; i++)
        hub_test_topic("workflow", 3, s.topics[i], sizeof(s.topics[i]));
    hub_test_pg_db("workflow", s.db_admin, sizeof(s.db_admin));

    PGconn *c = admin();
    snprintf(migrations, sizeof(migrations), "%s/sql/migrations", hub_data_dir());
    ASSERT_OK(hub_pg_migrate(c, migrations, &applied, errstr, sizeof(errstr)), errstr);
    static const char *const logins[] = {"hub_projector", "hub_notifier", "hub_reminder"};
    for (size_t i = 0; i < HUB_ARRAY_LEN(logins); i++) {
        snprintf(roles, sizeof(roles), "ALTER ROLE %s WITH LOGIN PASSWORD '" WF_PASSWORD "'",
                 logins[i]);
        ASSERT_OK(hub_pg_exec(c, roles, errstr, sizeof(errstr)), errstr);
    }
    PQfinish(c);

    n += snprintf(s.common + n, sizeof(s.common) - (size_t)n,
                  "log = { level = \"info\"; };\n"
                  "linkage = { secret = \"a test secret, not the partnership's\"; };\n"
                  "topics = {");
    for (int i = 0; i < 6; i++)
        n += snprintf(s.common + n, sizeof(s.common) - (size_t)n, " %s = \"%s\";", s_topic_names[i],
                      s.topics[i]);
    n += snprintf(s.common + n, sizeof(s.common) - (size_t)n, " };\ngroups = (\n");
    for (size_t g = 0; g < HUB_ARRAY_LEN(s_groups); g++) {
        wf_group_t *grp = &s_groups[g];
        char subs[256] = "";
        size_t sl = 0;
        for (int a = 0; a < grp->naddr; a++)
            snprintf(grp->addr[a], sizeof(grp->addr[a]), "%s-%d-%s@example.org", grp->id, a,
                     s.token);
        if (*grp->reminders) {
            char copy[128], *save = NULL;
            hub_strlcpy(copy, grp->reminders, sizeof(copy));
            for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save))
                sl += (size_t)snprintf(subs + sl, sizeof(subs) - sl, "%s\"%s\"", sl ? ", " : "", k);
        }
        n += snprintf(s.common + n, sizeof(s.common) - (size_t)n,
                      "  { id = \"%s\"; name = \"Group %s\"; emails = [ \"%s\"%s%s%s ];"
                      " reminders = [ %s ];%s%s%s },\n",
                      grp->id, grp->id, grp->addr[0], grp->naddr > 1 ? ", \"" : "",
                      grp->naddr > 1 ? grp->addr[1] : "", grp->naddr > 1 ? "\"" : "", subs,
                      grp->la >= 0 ? " local_authority = \"" : "",
                      grp->la >= 0 ? hub_local_authority_name(grp->la) : "",
                      grp->la >= 0 ? "\";" : "");
    }
    /* libconfig accepts no trailing comma in a list. */
    n -= 2;
    n += snprintf(s.common + n, sizeof(s.common) - (size_t)n, "\n);\n");
    if ((size_t)n >= sizeof(s.common) - 1)
        TEST_FAIL_("configuration text too long");

    hub_strlcpy(s.conf_hubctl, write_conf("hubctl.conf", "", ""), sizeof(s.conf_hubctl));
    snprintf(own, sizeof(own),
             "postgres = { conninfo = \"%s user=hub_projector password=" WF_PASSWORD "\"; };\n"
             "projector = { group_id = \"wf-projector-%s\"; migrate_conninfo = \"%s\";\n"
             "  http_listen = \"127.0.0.1:0\"; };\n",
             s.db_admin, s.token, s.db_admin);
    hub_strlcpy(s.conf_projector, write_conf("projector.conf", "", own), sizeof(s.conf_projector));
    snprintf(own, sizeof(own),
             "planner = { group_id = \"wf-planner-%s\"; transactional_id = \"wf-planner-%s\";\n"
             "  batch_max = 500; batch_ms = 50; http_listen = \"127.0.0.1:0\"; };\n",
             s.token, s.token);
    hub_strlcpy(s.conf_planner, write_conf("planner.conf", "", own), sizeof(s.conf_planner));
    snprintf(own, sizeof(own),
             "postgres = { conninfo = \"%s user=hub_notifier password=" WF_PASSWORD "\"; };\n"
             "notifier = { consumer_group = \"wf-notifier-%s\";\n"
             "  smtp = { url = \"%s\"; starttls = \"none\"; timeout_ms = 10000;"
             " connect_timeout_ms = 2000; };\n"
             "  retry = { initial_ms = 200; max_ms = 1000; };\n"
             "  http_listen = \"127.0.0.1:0\"; };\n",
             s.db_admin, s.token, hub_test_env("HUB_SMTP_URL"));
    hub_strlcpy(s.conf_notifier, write_conf("notifier.conf", "", own), sizeof(s.conf_notifier));
    snprintf(own, sizeof(own),
             "postgres = { conninfo = \"%s user=hub_reminder password=" WF_PASSWORD "\"; };\n"
             "reminder = { flush_timeout_ms = 30000; };\n",
             s.db_admin);
    hub_strlcpy(s.conf_reminder, write_conf("reminder.conf", "", own), sizeof(s.conf_reminder));
    /*
     * The scan that is killed sends one event per request, one request at a time, so that its
     * events reach the broker over many round trips and the kill lands between them.
     */
    snprintf(own, sizeof(own),
             "postgres = { conninfo = \"%s user=hub_reminder password=" WF_PASSWORD "\"; };\n"
             "reminder = { flush_timeout_ms = 30000; };\n",
             s.db_admin);
    hub_strlcpy(
        s.conf_slow_reminder,
        write_conf("reminder-slow.conf",
                   " batch_num_messages = \"1\"; max_in_flight_requests_per_connection = \"1\";",
                   own),
        sizeof(s.conf_slow_reminder));
    s.codec = pt_codec();
}

static void start_services(void)
{
    const char *projector[] = {"--config", s.conf_projector, NULL};
    const char *planner[] = {"--config", s.conf_planner, NULL};
    const char *notifier[] = {"--config", s.conf_notifier, NULL};
    s.projector = spawn("hub-projector", "HUB_PROJECTOR_BIN", "projector/hub-projector", projector);
    s.planner = spawn("hub-planner", "HUB_PLANNER_BIN", "planner/hub-planner", planner);
    s.notifier = spawn("hub-notifier", "HUB_NOTIFIER_BIN", "notifier/hub-notifier", notifier);
}

/* ---- the expected outcome, recomputed from what was published -------------- */

static wf_person_t *person(const char *subject, int create)
{
    for (int i = 0; i < s.npeople; i++)
        if (strcmp(s.people[i].subject, subject) == 0)
            return &s.people[i];
    if (!create)
        return NULL;
    if (s.npeople == WF_MAX_PEOPLE)
        TEST_FAIL_("more than %d young people", WF_MAX_PEOPLE);
    wf_person_t *p = &s.people[s.npeople++];
    memset(p, 0, sizeof(*p));
    hub_strlcpy(p->subject, subject, sizeof(p->subject));
    return p;
}

/*
 * Reads the flags topic (each partition in order, so each young person's flags
 * in the order the planner meets them) and applies the rules to every flag:
 * the due date and rule each young person must end with, and the alert count.
 */
static void expect_plans(void)
{
    hub_rules_t rules;
    size_t n;
    char errstr[256];
    hub_rules_defaults(&rules);
    pt_record_t *r = pt_read_all(s.codec, s.topics[T_FLAGS], 1, &n);
    ASSERT_INT_EQ(n, s.flags);
    for (size_t i = 0; i < n; i++) {
        ASSERT_TRUE(r[i].decoded && r[i].ev.type == HUB_EVENT_YOUNG_PERSON_FLAGGED);
        wf_person_t *p = person(r[i].ev.u.flagged.subject_key, 1);
        hub_event_t alert;
        hub_plan_state_t next;
        int emit = 0;
        p->la = r[i].ev.u.flagged.local_authority;
        ASSERT_OK(hub_rules_plan(&rules, p->have_plan ? &p->plan : NULL, &r[i].ev, "hub-planner",
                                 &emit, &alert, &next, errstr, sizeof(errstr)),
                  errstr);
        if (emit) {
            p->plan = next;
            p->have_plan = 1;
            s.alerts++;
        }
    }
    free(r);
}

static wf_action_t *action(const char *id, int create)
{
    for (int i = 0; i < s.nactions; i++)
        if (strcmp(s.actions[i].id, id) == 0)
            return &s.actions[i];
    if (!create)
        return NULL;
    if (s.nactions == WF_MAX_ACTIONS)
        TEST_FAIL_("more than %d actions", WF_MAX_ACTIONS);
    wf_action_t *a = &s.actions[s.nactions++];
    memset(a, 0, sizeof(*a));
    hub_strlcpy(a->id, id, sizeof(a->id));
    return a;
}

static void expect_actions(void)
{
    size_t n;
    long recorded = 0, completed = 0;
    pt_record_t *r = pt_read_all(s.codec, s.topics[T_ACTIONS], 1, &n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_TRUE(r[i].decoded);
        if (r[i].ev.type == HUB_EVENT_MEETING_ACTION_RECORDED) {
            const hub_meeting_action_recorded_t *rec = &r[i].ev.u.action_recorded;
            wf_action_t *a = action(rec->action_id, 1);
            hub_strlcpy(a->group, rec->owner_group_id, sizeof(a->group));
            a->due = rec->due_date;
            recorded++;
        } else if (r[i].ev.type == HUB_EVENT_MEETING_ACTION_COMPLETED) {
            action(r[i].ev.u.action_completed.action_id, 1)->completed = 1;
            completed++;
        }
    }
    free(r);
    ASSERT_INT_EQ(recorded, s.recorded);
    ASSERT_INT_EQ(completed, s.completed);
}

/* The view's status of p as of as_of (docs/projector.md; no plan is ever completed here). */
static const char *expected_status(const wf_person_t *p, hub_date_t as_of)
{
    if (!p->have_plan)
        return "UPCOMING";
    if (p->plan.rule == HUB_RULE_ADULT_SAFEGUARDING_REFERRAL)
        return "ADULT_REFERRAL";
    if (p->plan.due_date - as_of > 28)
        return "UPCOMING";
    return p->plan.due_date >= as_of ? "DUE_SOON" : "OVERDUE";
}

static int subscribes(const wf_group_t *g, const char *kind)
{
    char copy[128], *save = NULL;
    hub_strlcpy(copy, g->reminders, sizeof(copy));
    for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save))
        if (strcmp(k, kind) == 0)
            return 1;
    return 0;
}

static const wf_group_t *group(const char *id)
{
    for (size_t g = 0; g < HUB_ARRAY_LEN(s_groups); g++)
        if (strcmp(s_groups[g].id, id) == 0)
            return &s_groups[g];
    return NULL;
}

/* Adds an expected event with the id docs/reminder.md gives for name (unless already there). */
static void expect(const char *name, const char *what, const wf_group_t *g, int mailed)
{
    char id[HUB_UUID_SIZE];
    ASSERT_INT_EQ(hub_uuid_v5(WF_NS, name, strlen(name), id), 0);
    for (int i = 0; i < s.nexpect; i++)
        if (strcmp(s.expect[i].event_id, id) == 0)
            return;
    if (s.nexpect == WF_MAX_EXPECT)
        TEST_FAIL_("too many expected reminders");
    wf_expect_t *e = &s.expect[s.nexpect++];
    hub_strlcpy(e->event_id, id, sizeof(e->event_id));
    hub_strlcpy(e->what, what, sizeof(e->what));
    e->group = g;
    e->mailed = mailed;
}

/* Adds the events a scan as of as_of must raise (docs/reminder.md, "What one scan does"). */
static void expect_reminders(hub_date_t as_of)
{
    char name[512], what[160];
    for (int i = 0; i < s.npeople; i++) {
        const wf_person_t *p = &s.people[i];
        const char *status = expected_status(p, as_of);
        const char *kind = strcmp(status, "DUE_SOON") == 0  ? "PLAN_DUE_SOON"
                           : strcmp(status, "OVERDUE") == 0 ? "PLAN_OVERDUE"
                                                            : NULL;
        if (!kind)
            continue;
        for (size_t g = 0; g < HUB_ARRAY_LEN(s_groups); g++) {
            const wf_group_t *grp = &s_groups[g];
            if (!subscribes(grp, kind) || (grp->la >= 0 && grp->la != (int)p->la))
                continue;
            snprintf(name, sizeof(name), "ReminderDue|%s|%s|%s|%s", kind, p->subject,
                     pt_fmt(p->plan.due_date), grp->id);
            snprintf(what, sizeof(what), "%s subject %.12s due %s to %s", kind, p->subject,
                     pt_fmt(p->plan.due_date), grp->id);
            expect(name, what, grp, 1);
        }
    }
    for (int i = 0; i < s.nactions; i++) {
        const wf_action_t *a = &s.actions[i];
        if (a->completed || a->due >= as_of)
            continue;
        const wf_group_t *grp = group(a->group);
        if (!grp)
            TEST_FAIL_("action %s owned by unknown group %s", a->id, a->group);
        snprintf(name, sizeof(name), "MeetingActionOverdue|%s|%s", a->id, pt_fmt(a->due));
        snprintf(what, sizeof(what), "ACTION_OVERDUE action %.12s due %s to %s", a->id,
                 pt_fmt(a->due), grp->id);
        expect(name, what, grp, subscribes(grp, "ACTION_OVERDUE"));
    }
    /* Every subscribed group but the one briefed today has never been briefed. */
    for (size_t g = 0; g < HUB_ARRAY_LEN(s_groups); g++) {
        const wf_group_t *grp = &s_groups[g];
        if (!subscribes(grp, "GROUP_NOT_BRIEFED") || strcmp(grp->id, WF_BRIEFED) == 0)
            continue;
        snprintf(name, sizeof(name), "ReminderDue|GROUP_NOT_BRIEFED|%s|never", grp->id);
        snprintf(what, sizeof(what), "GROUP_NOT_BRIEFED never to %s", grp->id);
        expect(name, what, grp, 1);
    }
}

/* ---- waiting for the services --------------------------------------------- */

/* Waits until hub_event_log holds exactly the expected events of each type. */
static void wait_projected(PGconn *c, int reminders)
{
    static const struct {
        hub_event_type_t type;
        long *want;
    } rows[] = {
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, &s.flags},
        {HUB_EVENT_TRANSITION_PLAN_DUE, &s.alerts},
        {HUB_EVENT_MEETING_ACTION_RECORDED, &s.recorded},
        {HUB_EVENT_MEETING_ACTION_COMPLETED, &s.completed},
    };
    int64_t end = hub_monotonic_ms() + 60000;
    char sql[256], diff[1024];
    for (;;) {
        size_t dl = 0;
        diff[0] = '\0';
        for (size_t i = 0; i < HUB_ARRAY_LEN(rows); i++) {
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM hub_event_log WHERE event_type = '%s'",
                     hub_event_type_name(rows[i].type));
            long long got = scalar(c, sql);
            if (got != *rows[i].want)
                dl += (size_t)snprintf(diff + dl, sizeof(diff) - dl, " %s %lld (want %ld)",
                                       hub_event_type_name(rows[i].type), got, *rows[i].want);
        }
        /* The briefing and its BriefingSent: the reminder must see the group as briefed. */
        long long brief = scalar(c, "SELECT count(*) FROM hub_event_log WHERE event_type IN"
                                    " ('BriefingRequested', 'BriefingSent')");
        if (brief != 2)
            dl += (size_t)snprintf(diff + dl, sizeof(diff) - dl, " briefing events %lld (want 2)",
                                   brief);
        if (!reminders && scalar(c, "SELECT count(*) FROM hub_event_log WHERE event_type IN"
                                    " ('ReminderDue', 'MeetingActionOverdue')") != 0)
            dl += (size_t)snprintf(diff + dl, sizeof(diff) - dl, " reminders before any scan");
        if (!diff[0])
            return;
        assert_services_running();
        if (hub_monotonic_ms() > end) {
            show_log("hub-projector");
            show_log("hub-planner");
            TEST_FAIL_("the projector did not catch up in 60 s:%s", diff);
        }
        usleep(100 * 1000);
    }
}

static void check_ledger(PGconn *c, const char *stage);

/* Waits until the notifier's ledger holds every expected event (and the briefing). */
static void wait_ledger(PGconn *c)
{
    int64_t end = hub_monotonic_ms() + 60000;
    for (;;) {
        long long n = scalar(c, "SELECT count(*) FROM notification_deliveries");
        if (n >= s.nexpect + 1)
            return;
        assert_services_running();
        if (hub_monotonic_ms() > end) {
            show_log("hub-notifier");
            check_ledger(c, "waiting for the notifier");
            TEST_FAIL_("the ledger holds %lld events after 60 s, want %d", n, s.nexpect + 1);
        }
        usleep(100 * 1000);
    }
}

/* ---- checks --------------------------------------------------------------- */

static void check_view(PGconn *c)
{
    const char *params[1] = {WF_NOW};
    PGresult *r = query(c,
                        "SELECT subject_key, coalesce(plan_due_date::text, ''),"
                        " coalesce(plan_rule, ''), status FROM hub_transitions_as_of($1::date)"
                        " ORDER BY subject_key",
                        1, params);
    hub_date_t as_of = pt_date(WF_NOW);
    int bad = 0, rows = PQntuples(r);
    char *seen = calloc((size_t)s.npeople + 1, 1);
    for (int i = 0; i < rows; i++) {
        const char *subject = PQgetvalue(r, i, 0);
        const wf_person_t *p = person(subject, 0);
        if (!p) {
            if (bad++ < 20)
                fprintf(stderr, "view: unexpected young person %.12s\n", subject);
            continue;
        }
        seen[p - s.people] = 1;
        const char *due = p->have_plan ? pt_fmt(p->plan.due_date) : "";
        const char *rule = p->have_plan ? hub_transition_rule_name(p->plan.rule) : "";
        const char *status = expected_status(p, as_of);
        if (strcmp(due, PQgetvalue(r, i, 1)) != 0 || strcmp(rule, PQgetvalue(r, i, 2)) != 0 ||
            strcmp(status, PQgetvalue(r, i, 3)) != 0) {
            if (bad++ < 20)
                fprintf(stderr,
                        "view: %.12s expected due %s rule %s status %s, got due %s rule %s"
                        " status %s\n",
                        subject, due[0] ? due : "-", rule[0] ? rule : "-", status,
                        PQgetvalue(r, i, 1)[0] ? PQgetvalue(r, i, 1) : "-",
                        PQgetvalue(r, i, 2)[0] ? PQgetvalue(r, i, 2) : "-", PQgetvalue(r, i, 3));
        }
    }
    for (int i = 0; i < s.npeople; i++)
        if (!seen[i] && bad++ < 20)
            fprintf(stderr, "view: %.12s is missing\n", s.people[i].subject);
    free(seen);
    PQclear(r);
    if (bad)
        TEST_FAIL_("the view differs from the recomputation for %d young people", bad);
    ASSERT_INT_EQ(rows, s.npeople);
}

/* One delivered mail of this run: "<event id> <recipient>". */
typedef struct {
    char key[512];
    char subject[200];
    int matched;
} wf_mail_t;

/* The value of header name in a raw message (static buffer). */
static const char *header_of(const char *text, const char *name)
{
    static char value[512];
    size_t nl = strlen(name);
    value[0] = '\0';
    for (const char *line = text; line && *line && *line != '\r' && *line != '\n';) {
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(value, sizeof(value), "%.*s", (int)strcspn(v, "\r\n"), v);
            return value;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return value;
}

/* Every mail in the Maildir addressed to this run's token. Caller frees. */
static wf_mail_t *read_mails(int *count)
{
    static const char *const sub[] = {"new", "cur"};
    wf_mail_t *mails = NULL;
    int n = 0;
    for (size_t d = 0; d < 2; d++) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s", hub_test_env("HUB_MAILDIR"), sub[d]);
        DIR *dh = opendir(dir);
        ASSERT_TRUE(dh != NULL);
        for (struct dirent *e; (e = readdir(dh)) != NULL;) {
            char path[2048], rcpt[256];
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            char *text = hub_read_file(path, NULL, NULL, 0);
            if (!text || !strstr(header_of(text, "X-Envelope-To"), s.token)) {
                free(text);
                continue;
            }
            mails = realloc(mails, (size_t)(n + 1) * sizeof(*mails));
            wf_mail_t *m = &mails[n++];
            memset(m, 0, sizeof(*m));
            hub_strlcpy(rcpt, header_of(text, "X-Envelope-To"), sizeof(rcpt));
            char id[HUB_UUID_SIZE];
            hub_strlcpy(id, header_of(text, "X-LLR-Hub-Event-Id"), sizeof(id));
            snprintf(m->key, sizeof(m->key), "%s %s", id, rcpt);
            hub_strlcpy(m->subject, header_of(text, "Subject"), sizeof(m->subject));
            free(text);
        }
        closedir(dh);
    }
    *count = n;
    return mails;
}

/* Each expected (event, address) exactly once in the Maildir, the briefing too, nothing else. */
static void check_mails(const char *stage)
{
    int nmails, bad = 0, want = 0;
    wf_mail_t *mails = read_mails(&nmails);
    const wf_group_t *briefed = group(WF_BRIEFED);
    char key[256];

    for (int i = -1; i < s.nexpect; i++) {
        const wf_expect_t *e = i < 0 ? NULL : &s.expect[i];
        const wf_group_t *g = e ? e->group : briefed;
        if (e && !e->mailed)
            continue;
        for (int a = 0; a < g->naddr; a++) {
            int got = 0;
            snprintf(key, sizeof(key), "%s %s", e ? e->event_id : s.brief_id, g->addr[a]);
            want++;
            for (int m = 0; m < nmails; m++)
                if (strcmp(mails[m].key, key) == 0) {
                    got++;
                    mails[m].matched = 1;
                }
            if (got != 1 && bad++ < 20)
                fprintf(stderr, "%s: %s to address %d: %d mails, expected 1\n", stage,
                        e ? e->what : "briefing", a, got);
        }
    }
    for (int m = 0; m < nmails; m++)
        if (!mails[m].matched && bad++ < 20)
            fprintf(stderr, "%s: unexpected mail \"%s\" (event %.12s)\n", stage, mails[m].subject,
                    mails[m].key);
    free(mails);
    if (bad)
        TEST_FAIL_("%s: %d differences between the expected and the delivered mails", stage, bad);
    fprintf(stderr, "%s: %d mails, each expected once (%d events)\n", stage, want, s.nexpect + 1);
}

/* The ledger holds exactly the expected events and the briefing, no other. */
static void check_ledger(PGconn *c, const char *stage)
{
    PGresult *r =
        query(c, "SELECT event_id::text, kind, status FROM notification_deliveries", 0, NULL);
    int bad = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        int found = strcmp(id, s.brief_id) == 0;
        for (int e = 0; !found && e < s.nexpect; e++)
            if (strcmp(s.expect[e].event_id, id) == 0) {
                found = 1;
                const char *want = s.expect[e].mailed ? "DELIVERED" : "NOT_SUBSCRIBED";
                if (strcmp(PQgetvalue(r, i, 2), want) != 0 && bad++ < 20)
                    fprintf(stderr, "%s: %s is %s in the ledger, expected %s\n", stage,
                            s.expect[e].what, PQgetvalue(r, i, 2), want);
            }
        if (!found && bad++ < 20)
            fprintf(stderr, "%s: unexpected %s event %.12s in the ledger\n", stage,
                    PQgetvalue(r, i, 1), id);
    }
    if (PQntuples(r) != s.nexpect + 1 && bad++ < 20)
        fprintf(stderr, "%s: %d events in the ledger, expected %d\n", stage, PQntuples(r),
                s.nexpect + 1);
    PQclear(r);
    if (bad)
        TEST_FAIL_("%s: the notifier's ledger differs in %d places", stage, bad);
}

/* The sum of the high watermarks of the topics the reminder writes. */
static int64_t reminder_output(rd_kafka_t *rk)
{
    int64_t sum = 0;
    for (int t = T_ACTIONS; t <= T_NOTIFICATIONS; t++)
        for (int p = 0; p < 3; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, s.topics[t], p, &lo, &hi, 10000))
                TEST_FAIL_("watermarks of %s [%d]", s.topics[t], p);
            sum += hi;
        }
    return sum;
}

static int run_reminder(const char *now)
{
    const char *args[] = {"--config", s.conf_reminder, "--once", "--now", now, NULL};
    return wait_exit("hub-reminder",
                     spawn("hub-reminder", "HUB_REMINDER_BIN", "reminder/hub-reminder", args),
                     60000);
}

/*
 * A consumer of the reminder's partitions from their current ends, fetching without delay:
 * the first message it returns says a scan has started producing.
 */
static rd_kafka_t *watch_reminder_output(void)
{
    hub_props_t props = {0};
    char errstr[512] = "", name[128];
    snprintf(name, sizeof(name), "wf-watch-%s", s.token);
    hub_test_kafka_props(&props);
    hub_props_set(&props, "group.id", name);
    hub_props_set(&props, "enable.auto.commit", "false");
    hub_props_set(&props, "fetch.wait.max.ms", "1");
    rd_kafka_conf_t *conf = hub_kafka_conf_new(&props, NULL, errstr, sizeof(errstr));
    hub_props_clear(&props);
    if (!conf)
        TEST_FAIL_("conf: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk)
        TEST_FAIL_("rd_kafka_new: %s", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(6);
    for (int t = T_ACTIONS; t <= T_NOTIFICATIONS; t++)
        for (int p = 0; p < 3; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, s.topics[t], p, &lo, &hi, 10000))
                TEST_FAIL_("watermarks of %s [%d]", s.topics[t], p);
            rd_kafka_topic_partition_list_add(l, s.topics[t], p)->offset = hi;
        }
    if (rd_kafka_assign(rk, l))
        TEST_FAIL_("assign the reminder's partitions");
    rd_kafka_topic_partition_list_destroy(l);
    /* Let the fetchers start before the scan does. */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
    if (m)
        TEST_FAIL_("the reminder's topics moved before the third scan");
    return rk;
}

/* ---- the test ------------------------------------------------------------- */

static void test_workflow(void)
{
    int64_t t0 = hub_monotonic_ms();
    char *out, later[16];
    setup();
    PGconn *c = admin();
    start_services();

    ASSERT_INT_EQ(hubctl("simulate --people " WF_PEOPLE " --seed " WF_SEED " --now " WF_NOW, &out),
                  0);
    fprintf(stderr, "%s", out);
    s.flags = count_after(out, "YoungPersonFlagged");
    s.recorded = count_after(out, "MeetingActionRecorded");
    s.completed = count_after(out, "MeetingActionCompleted");
    long predicted = count_after(out, "TransitionPlanDue");
    free(out);
    ASSERT_INT_EQ(hubctl("brief " WF_BRIEFED " --title 'Transitions work: test update'"
                         " --link https://example.org/briefings/e2e.pdf",
                         &out),
                  0);
    free(out);
    size_t n;
    /* The one BriefingRequested (the notifier may have answered it with BriefingSent already). */
    pt_record_t *r = pt_read_all(s.codec, s.topics[T_NOTIFICATIONS], 1, &n);
    int requests = 0;
    for (size_t i = 0; i < n; i++) {
        ASSERT_TRUE(r[i].decoded);
        if (r[i].ev.type == HUB_EVENT_BRIEFING_REQUESTED && requests++ == 0)
            hub_strlcpy(s.brief_id, r[i].ev.event_id, sizeof(s.brief_id));
    }
    ASSERT_INT_EQ(requests, 1);
    free(r);

    expect_plans();
    expect_actions();
    ASSERT_INT_EQ(s.alerts, predicted);
    ASSERT_TRUE(s.npeople >= 80);
    wait_projected(c, 0);
    fprintf(stderr, "projected: %ld flags, %ld alerts, %ld actions (%ld completed), %.1f s\n",
            s.flags, s.alerts, s.recorded, s.completed, (hub_monotonic_ms() - t0) / 1000.0);
    ASSERT_INT_EQ(pt_count(s.codec, s.topics[T_ALERTS], 1), s.alerts);
    ASSERT_INT_EQ(pt_count(s.codec, s.topics[T_DLQ], 0), 0);
    check_view(c);

    /* One scan: every expected reminder reaches every address of its group once. */
    expect_reminders(pt_date(WF_NOW));
    ASSERT_INT_EQ(run_reminder(WF_NOW), 0);
    wait_ledger(c);
    check_ledger(c, "first scan");
    check_mails("first scan");
    ASSERT_INT_EQ(scalar(c, "SELECT count(*) FROM reminder_emitted"), s.nexpect);

    /* The same scan again: nothing new reaches the broker, so nothing new can be mailed. */
    char reader[128];
    snprintf(reader, sizeof(reader), "wf-watermarks-%s", s.token);
    rd_kafka_t *rk = pt_consumer_rk(reader, 1, 0);
    int64_t before = reminder_output(rk);
    ASSERT_INT_EQ(run_reminder(WF_NOW), 0);
    ASSERT_INT_EQ(reminder_output(rk), before);
    ASSERT_INT_EQ(scalar(c, "SELECT count(*) FROM reminder_emitted"), s.nexpect);

    /* A later scan, killed as soon as the broker has some of its events, then run again. */
    int first = s.nexpect;
    hub_strlcpy(later, pt_fmt(pt_date(WF_NOW) + WF_LATER), sizeof(later));
    expect_reminders(pt_date(later));
    ASSERT_INT_OP(s.nexpect, >, first);
    rd_kafka_t *watch = watch_reminder_output();
    const char *args[] = {"--config", s.conf_slow_reminder, "--once", "--now", later, NULL};
    pid_t pid = spawn("hub-reminder", "HUB_REMINDER_BIN", "reminder/hub-reminder", args);
    int64_t end = hub_monotonic_ms() + 30000;
    int status = 0, exited = 0;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(watch, 1);
        if (m) {
            int err = m->err;
            rd_kafka_message_destroy(m);
            if (!err)
                break;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            break;
        }
        if (hub_monotonic_ms() > end)
            TEST_FAIL_("the third scan produced nothing in 30 s");
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    forget(pid);
    long long recorded = scalar(c, "SELECT count(*) FROM reminder_emitted");
    long long produced = reminder_output(rk) - before;
    fprintf(stderr, "third scan %s after %lld of its %d events reached the broker; %lld recorded\n",
            exited ? "finished before the kill" : "killed", produced, s.nexpect - first,
            recorded - first);
    /* Otherwise the kill came too late to test anything. */
    ASSERT_TRUE(!exited);
    ASSERT_INT_OP(recorded, <, s.nexpect);
    ASSERT_INT_EQ(run_reminder(later), 0);
    rd_kafka_consumer_close(watch);
    rd_kafka_destroy(watch);
    rd_kafka_destroy(rk);
    wait_ledger(c);
    check_ledger(c, "after the killed scan");
    check_mails("after the killed scan");
    ASSERT_INT_EQ(scalar(c, "SELECT count(*) FROM reminder_emitted"), s.nexpect);

    /* SIGTERM: each service drains and exits 0. */
    const struct {
        const char *name;
        pid_t pid;
    } svc[] = {
        {"hub-planner", s.planner}, {"hub-notifier", s.notifier}, {"hub-projector", s.projector}};
    for (size_t i = 0; i < HUB_ARRAY_LEN(svc); i++) {
        assert_running(svc[i].name, svc[i].pid);
        kill(svc[i].pid, SIGTERM);
    }
    for (size_t i = 0; i < HUB_ARRAY_LEN(svc); i++) {
        int rc = wait_exit(svc[i].name, svc[i].pid, 30000);
        if (rc != 0) {
            show_log(svc[i].name);
            TEST_FAIL_("%s exited %d after SIGTERM, expected 0", svc[i].name, rc);
        }
    }
    PQfinish(c);
    hub_codec_destroy(s.codec);
    fprintf(stderr, "workflow done in %.1f s\n", (hub_monotonic_ms() - t0) / 1000.0);
}

int main(void)
{
    RUN_TEST(test_workflow);
    return 0;
}
