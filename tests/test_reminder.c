/*
 * test_reminder.c: hub-reminder as a process against the real broker and
 * PostgreSQL, on a database built by every migration (the projector's schema
 * and the reminder's own), connecting as hub_reminder. Rows are written
 * straight into the projector's tables, so each boundary date is exact:
 * 28 days before the due date -> PLAN_DUE_SOON, 29 -> nothing, due + 1 ->
 * PLAN_OVERDUE, an action past its date -> MeetingActionOverdue, a group
 * briefed 91 days ago -> GROUP_NOT_BRIEFED, 90 -> nothing. Repeated scans and
 * restarts give the same event ids and no new events.
 */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/pg.h"
#include "test.h"

#define REMINDER_PASSWORD  "reminder-test-password"
#define REMINDER_NAMESPACE "3b8f5e27-4c1d-5a96-8e2f-7d0c9b6a1e54"

typedef struct setup_s {
    char notifications[256], actions[256];
    char conninfo[1024]; /* superuser: writes the projector's tables */
    char dir[512];
    char log[1024];
} setup_t;

static hub_codec_t *s_codec;

/* ---- processes ------------------------------------------------------------ */

/* Starts hub-reminder with args (NULL-terminated, after the program name). */
static pid_t start(const setup_t *s, const char *const *args)
{
    const char *argv[16] = {"hub-reminder"};
    size_t n = 1;
    while (args && *args && n < HUB_ARRAY_LEN(argv) - 1)
        argv[n++] = *args++;
    argv[n] = NULL;
    return hub_test_spawn(hub_test_service_binary("reminder"), argv, s->log);
}

/* Runs one scan as of `now` with config file config; returns the exit status. */
static int scan(const setup_t *s, const char *config, const char *now)
{
    const char *args[] = {"--config", config, "--once", "--now", now, NULL};
    return hub_test_wait_exit(start(s, args), 60000);
}

/* ---- database ------------------------------------------------------------- */

static PGconn *admin(const setup_t *s)
{
    char errstr[512] = "";
    PGconn *c = hub_pg_connect(s->conninfo, NULL, 5000, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("%s", errstr);
    return c;
}

/* Runs sql with text parameters as the superuser (RLS does not apply to it). */
static void sql(const setup_t *s, const char *text, int n, const char *const *params)
{
    PGconn *c = admin(s);
    PGresult *r = PQexecParams(c, text, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        TEST_FAIL_("%s: %s", text, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static long long count(const setup_t *s, const char *text)
{
    PGconn *c = admin(s);
    PGresult *r = PQexec(c, text);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        TEST_FAIL_("%s: %s", text, PQerrorMessage(c));
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

static const char *subject_key(const char *seed)
{
    static char buf[8][HUB_SUBJECT_KEY_SIZE];
    static int next;
    char *k = buf[next++ % 8];
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(seed, strlen(seed), md, &n, EVP_sha256(), NULL);
    for (int j = 0; j < 32; j++)
        snprintf(k + 2 * j, 3, "%02x", md[j]);
    return k;
}

static const char *day(const char *base, int offset)
{
    static char buf[8][16];
    static int next;
    hub_date_t d;
    ASSERT_INT_EQ(hub_date_parse(base, &d), 0);
    return hub_date_format(d + offset, buf[next++ % 8], 16);
}

/* A young person and, when due is not NULL, their plan (optionally completed or a referral). */
static void person(const setup_t *s, const char *seed, const char *la, const char *due,
                   const char *rule, int completed)
{
    char id1[HUB_UUID_SIZE], id2[HUB_UUID_SIZE];
    hub_uuid_v4(id1);
    hub_uuid_v4(id2);
    const char *p[] = {subject_key(seed), la, id1};
    sql(s,
        "INSERT INTO young_people (subject_key, local_authority, date_of_birth, risk_categories,"
        " agencies, first_flagged_on, last_flagged_on, last_flag_at, last_flag_event_id)"
        " VALUES ($1, $2, '2008-09-01', '{LOOKED_AFTER}', '{LEICESTERSHIRE_CS}', '2025-01-10',"
        " '2025-01-10', now(), $3::uuid)",
        3, p);
    if (!due)
        return;
    const char *q[] = {subject_key(seed), la, id1, due, rule, id2, completed ? "t" : "f"};
    sql(s,
        "INSERT INTO transition_plans (subject_key, local_authority, la_at, la_event_id,"
        " due_date, rule, alert_event_id, due_at, completed_on, outcome, completed_at)"
        " VALUES ($1, $2, now() - interval '1 day', $3::uuid, $4::date, $5, $6::uuid,"
        " now() - interval '1 day',"
        " CASE WHEN $7::boolean THEN current_date END,"
        " CASE WHEN $7::boolean THEN 'PLAN_AGREED' END,"
        " CASE WHEN $7::boolean THEN now() END)",
        7, q);
}

static void action(const setup_t *s, const char *action_id, const char *owner, const char *due,
                   const char *completed_on)
{
    const char *p[] = {action_id, owner, due, completed_on};
    sql(s,
        "INSERT INTO meeting_actions (action_id, meeting_id, meeting_date, kind, owner_agency,"
        " owner_group_id, due_date, recorded_at, recorded_event_id, completed_on)"
        " VALUES ($1::uuid, 'LLR-TSG-2026-01', '2026-01-15', 'REFERRAL', 'LEICESTERSHIRE_ASC',"
        " $2, $3::date, now(), gen_random_uuid(), $4::date)",
        4, p);
}

/* Last briefed at noon, London time, on date. */
static void briefed(const setup_t *s, const char *group, const char *date)
{
    char ts[64];
    snprintf(ts, sizeof(ts), "%s 12:00", date);
    const char *p[] = {group, ts};
    sql(s,
        "INSERT INTO group_state (group_id, last_briefing_sent_at, briefings_sent)"
        " VALUES ($1, ($2::timestamp AT TIME ZONE 'Europe/London'), 1)",
        2, p);
}

/* ---- setup ---------------------------------------------------------------- */

static const char groups_conf[] =
    "groups = (\n"
    "  { id = \"shire-asc\"; name = \"Leicestershire ASC\"; emails = [ \"s@example.org\" ];\n"
    "    reminders = [ \"PLAN_DUE_SOON\", \"PLAN_OVERDUE\" ]; local_authority = "
    "\"LEICESTERSHIRE\"; },\n"
    "  { id = \"city-asc\"; name = \"Leicester ASC\"; emails = [ \"c@example.org\" ];\n"
    "    reminders = [ \"PLAN_DUE_SOON\", \"PLAN_OVERDUE\" ]; local_authority = \"LEICESTER\"; "
    "},\n"
    "  { id = \"overseer\"; name = \"Overseer\"; emails = [ \"o@example.org\" ];\n"
    "    reminders = [ \"PLAN_OVERDUE\" ]; },\n"
    "  { id = \"board-90\"; name = \"Board 90\"; emails = [ \"b90@example.org\" ];\n"
    "    reminders = [ \"GROUP_NOT_BRIEFED\", \"ACTION_OVERDUE\" ]; },\n"
    "  { id = \"board-91\"; name = \"Board 91\"; emails = [ \"b91@example.org\" ];\n"
    "    reminders = [ \"GROUP_NOT_BRIEFED\" ]; },\n"
    "  { id = \"board-never\"; name = \"Board never\"; emails = [ \"bn@example.org\" ];\n"
    "    reminders = [ \"GROUP_NOT_BRIEFED\" ]; },\n"
    "  { id = \"quiet-never\"; name = \"Quiet\"; emails = [ \"q@example.org\" ]; }\n"
    ");\n";

/*
 * Writes a configuration file; kafka_extra and reminder_extra go inside their
 * groups. bootstrap NULL means the test broker with all its client settings.
 */
static const char *config(const setup_t *s, const char *name, const char *bootstrap,
                          const char *kafka_extra, const char *reminder_extra)
{
    static char path[1024];
    char text[8192], kafka[2048];
    if (bootstrap)
        snprintf(kafka, sizeof(kafka), "bootstrap_servers = \"%s\";", bootstrap);
    else
        hub_strlcpy(kafka, hub_test_kafka_settings(), sizeof(kafka));
    snprintf(text, sizeof(text),
             "kafka = { %s %s };\n"
             "postgres = { conninfo = \"%s user=hub_reminder password=" REMINDER_PASSWORD "\"; };\n"
             "topics = { group_notifications = \"%s\"; meeting_actions = \"%s\"; };\n"
             "reminder = { %s };\n"
             "%s",
             kafka, kafka_extra ? kafka_extra : "", s->conninfo, s->notifications, s->actions,
             reminder_extra ? reminder_extra : "", groups_conf);
    snprintf(path, sizeof(path), "%s", hub_test_write_file(s->dir, name, text));
    return path;
}

static void setup(setup_t *s)
{
    char errstr[512] = "", migrations[1024];
    int applied = 0;
    memset(s, 0, sizeof(*s));
    hub_test_topic("reminders", 3, s->notifications, sizeof(s->notifications));
    hub_test_topic("actions", 2, s->actions, sizeof(s->actions));
    hub_test_pg_db("reminder", s->conninfo, sizeof(s->conninfo));
    hub_strlcpy(s->dir, hub_test_tmpdir(), sizeof(s->dir));
    snprintf(s->log, sizeof(s->log), "%s/reminder.log", s->dir);
    PGconn *c = admin(s);
    snprintf(migrations, sizeof(migrations), "%s/sql/migrations", hub_data_dir());
    ASSERT_OK(hub_pg_migrate(c, migrations, &applied, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_pg_exec(c, "ALTER ROLE hub_reminder WITH LOGIN PASSWORD '" REMINDER_PASSWORD "'",
                          errstr, sizeof(errstr)),
              errstr);
    PQfinish(c);
}

/* ---- what reached the topics ---------------------------------------------- */

typedef struct seen_s {
    char event_id[HUB_UUID_SIZE];
    char what[256]; /* "type kind group subject due as_of" for comparing */
} seen_t;

/*
 * Reads topic from its start until want events arrived (or 30 s passed), then
 * a second more, so an event too many is seen too.
 */
static int consume(const char *topic, seen_t *out, int max, int want)
{
    hub_props_t props = {0};
    char errstr[512] = "", group[128];
    const char *topics[1] = {topic};
    int got = 0;
    snprintf(group, sizeof(group), "test-read-%s", hub_test_unique());
    hub_test_kafka_props(&props);
    hub_consumer_t *c = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("%s", errstr);
    int64_t end = hub_monotonic_ms() + 30000, extra_end = 0;
    while (hub_monotonic_ms() < (extra_end ? extra_end : end)) {
        if (got >= want && !extra_end)
            extra_end = hub_monotonic_ms() + 1000;
        rd_kafka_message_t *m = hub_consumer_poll(c, 100);
        if (!m)
            continue;
        hub_event_t ev;
        char due[16] = "-", as_of[16];
        ASSERT_OK(hub_codec_decode(s_codec, m->payload, m->len, &ev, errstr, sizeof(errstr)),
                  errstr);
        rd_kafka_message_destroy(m);
        ASSERT_TRUE(got < max);
        seen_t *e = &out[got++];
        hub_strlcpy(e->event_id, ev.event_id, sizeof(e->event_id));
        ASSERT_STR_EQ(ev.source, "hub-reminder");
        if (ev.type == HUB_EVENT_REMINDER_DUE) {
            const hub_reminder_due_t *r = &ev.u.reminder;
            if (r->has_due_date)
                hub_date_format(r->due_date, due, sizeof(due));
            snprintf(e->what, sizeof(e->what), "ReminderDue %s %s %.8s %s %s",
                     hub_reminder_kind_name(r->kind), r->group_id,
                     r->has_subject_key ? r->subject_key : "-", due,
                     hub_date_format(r->as_of, as_of, sizeof(as_of)));
        } else {
            const hub_meeting_action_overdue_t *a = &ev.u.action_overdue;
            ASSERT_INT_EQ(ev.type, HUB_EVENT_MEETING_ACTION_OVERDUE);
            ASSERT_INT_EQ(a->days_overdue, a->as_of - a->due_date);
            snprintf(e->what, sizeof(e->what), "MeetingActionOverdue %.8s %s %s %s %d",
                     a->action_id, a->owner_group_id,
                     hub_date_format(a->due_date, due, sizeof(due)),
                     hub_date_format(a->as_of, as_of, sizeof(as_of)), (int)a->days_overdue);
        }
    }
    hub_consumer_destroy(c);
    hub_props_clear(&props);
    return got;
}

/* Every event on both topics, expecting so many on each. */
static int read_all(const setup_t *s, seen_t *out, int max, int notifications, int actions)
{
    int n = consume(s->notifications, out, max, notifications);
    ASSERT_INT_EQ(n, notifications);
    int a = consume(s->actions, out + n, max - n, actions);
    ASSERT_INT_EQ(a, actions);
    return n + a;
}

static int has(const seen_t *seen, int n, const char *what)
{
    int found = 0;
    for (int i = 0; i < n; i++)
        found += strcmp(seen[i].what, what) == 0;
    return found;
}

static const char *id_of(const seen_t *seen, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (strcmp(seen[i].what, what) == 0)
            return seen[i].event_id;
    TEST_FAIL_("no event \"%s\"", what);
}

static void expect_id(const seen_t *seen, int n, const char *what, const char *name)
{
    char id[HUB_UUID_SIZE];
    ASSERT_INT_EQ(hub_uuid_v5(REMINDER_NAMESPACE, name, strlen(name), id), 0);
    ASSERT_STR_EQ(id_of(seen, n, what), id);
}

/* ---- the test --------------------------------------------------------------- */

#define AS_OF "2026-03-03"

static void test_boundaries_and_determinism(void)
{
    setup_t s;
    static seen_t seen[64], again[64];
    char a1[HUB_UUID_SIZE], a0[HUB_UUID_SIZE], adone[HUB_UUID_SIZE], want[512], name[512];
    const char *cfg;

    setup(&s);
    person(&s, "p28", "LEICESTERSHIRE", day(AS_OF, 28), "PLAN_AT_17Y6M", 0);
    person(&s, "p29", "LEICESTERSHIRE", day(AS_OF, 29), "PLAN_AT_17Y6M", 0);
    person(&s, "p0", "LEICESTER", AS_OF, "LOOKED_AFTER_16_PLUS_3M", 0);
    person(&s, "pm1", "LEICESTERSHIRE", day(AS_OF, -1), "PLAN_AT_17Y6M", 0);
    person(&s, "pdone", "LEICESTERSHIRE", day(AS_OF, -5), "PLAN_AT_17Y6M", 1);
    person(&s, "padult", "LEICESTERSHIRE", day(AS_OF, -3), "ADULT_SAFEGUARDING_REFERRAL", 0);
    person(&s, "pnoplan", "RUTLAND", NULL, NULL, 0);
    person(&s, "prutland", "RUTLAND", day(AS_OF, 10), "PLAN_AT_17Y6M", 0);
    hub_uuid_v4(a1);
    hub_uuid_v4(a0);
    hub_uuid_v4(adone);
    action(&s, a1, "board-90", day(AS_OF, -1), NULL);
    action(&s, a0, "board-90", AS_OF, NULL);
    action(&s, adone, "board-90", day(AS_OF, -10), day(AS_OF, -2));
    /* A malformed row (no owner group) is skipped without holding up the rest. */
    char abad[HUB_UUID_SIZE];
    hub_uuid_v4(abad);
    action(&s, abad, "", day(AS_OF, -3), NULL);
    briefed(&s, "board-90", day(AS_OF, -90));
    briefed(&s, "board-91", day(AS_OF, -91));

    cfg = config(&s, "hub.conf", NULL, NULL, NULL);
    ASSERT_INT_EQ(scan(&s, cfg, AS_OF), 0);

    int n = read_all(&s, seen, 64, 6, 1);
    char p28[16], p0[16], pm1[16], p29[16];
    snprintf(p28, sizeof(p28), "%.8s", subject_key("p28"));
    snprintf(p0, sizeof(p0), "%.8s", subject_key("p0"));
    snprintf(pm1, sizeof(pm1), "%.8s", subject_key("pm1"));
    snprintf(p29, sizeof(p29), "%.8s", subject_key("p29"));
    const struct {
        const char *fmt, *a, *b;
    } first[] = {
        /* 28 days before the due date: due soon, to the county's team only. */
        {"ReminderDue PLAN_DUE_SOON shire-asc %s %s " AS_OF, p28, day(AS_OF, 28)},
        /* Due today: still due soon, to the city's team. */
        {"ReminderDue PLAN_DUE_SOON city-asc %s %s " AS_OF, p0, AS_OF},
        /* A day past the due date: overdue, to the county and the overseer. */
        {"ReminderDue PLAN_OVERDUE shire-asc %s %s " AS_OF, pm1, day(AS_OF, -1)},
        {"ReminderDue PLAN_OVERDUE overseer %s %s " AS_OF, pm1, day(AS_OF, -1)},
        /* Briefed 91 days ago: reminded, with the day the briefing fell due. */
        {"ReminderDue GROUP_NOT_BRIEFED board-91 %s %s " AS_OF, "-", day(AS_OF, -1)},
        /* Never briefed: reminded once, without a due date. */
        {"ReminderDue GROUP_NOT_BRIEFED board-never %s %s " AS_OF, "-", "-"},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(first); i++) {
        snprintf(want, sizeof(want), first[i].fmt, first[i].a, first[i].b);
        if (has(seen, n, want) != 1)
            TEST_FAIL_("expected exactly one \"%s\" among %d events", want, n);
    }
    snprintf(want, sizeof(want), "MeetingActionOverdue %.8s board-90 %s " AS_OF " 1", a1,
             day(AS_OF, -1));
    ASSERT_INT_EQ(has(seen, n, want), 1);
    /* 29 days before, completed plans, referrals, no plan, no team for Rutland: nothing. */
    ASSERT_INT_EQ(n, 7);

    /* The ids are the documented UUIDv5 names. */
    snprintf(want, sizeof(want), "ReminderDue PLAN_DUE_SOON shire-asc %s %s " AS_OF, p28,
             day(AS_OF, 28));
    snprintf(name, sizeof(name), "ReminderDue|PLAN_DUE_SOON|%s|%s|shire-asc", subject_key("p28"),
             day(AS_OF, 28));
    expect_id(seen, n, want, name);
    snprintf(want, sizeof(want), "MeetingActionOverdue %.8s board-90 %s " AS_OF " 1", a1,
             day(AS_OF, -1));
    snprintf(name, sizeof(name), "MeetingActionOverdue|%s|%s", a1, day(AS_OF, -1));
    expect_id(seen, n, want, name);
    expect_id(seen, n, "ReminderDue GROUP_NOT_BRIEFED board-never - - " AS_OF,
              "ReminderDue|GROUP_NOT_BRIEFED|board-never|never");
    ASSERT_INT_EQ(count(&s, "SELECT count(*) FROM reminder_emitted"), 7);
    char *skipped = hub_read_file(s.log, NULL, NULL, 0);
    ASSERT_STR_CONTAINS(skipped, "event=reminder_skipped");
    free(skipped);

    /* The same day again, in a new process: nothing new reaches the topics. */
    ASSERT_INT_EQ(scan(&s, cfg, AS_OF), 0);
    ASSERT_INT_EQ(read_all(&s, again, 64, 6, 1), 7);
    char *log = hub_read_file(s.log, NULL, NULL, 0);
    ASSERT_STR_CONTAINS(log, "produced=0 already_produced=7");
    free(log);

    /*
     * A crash after the broker took the events but before they were recorded:
     * the next scan produces them again, under the very same ids.
     */
    sql(&s, "DELETE FROM reminder_emitted", 0, NULL);
    ASSERT_INT_EQ(scan(&s, cfg, AS_OF), 0);
    int m = read_all(&s, again, 64, 12, 2);
    ASSERT_INT_EQ(m, 14);
    for (int i = 0; i < n; i++) {
        int same = 0;
        for (int j = 0; j < m; j++)
            same += strcmp(again[j].event_id, seen[i].event_id) == 0;
        if (same != 2)
            TEST_FAIL_("event %s (%s) seen %d times, expected 2", seen[i].event_id, seen[i].what,
                       same);
    }

    /* The next day: each boundary steps over, and only the new situations are produced. */
    const char *next = day(AS_OF, 1);
    ASSERT_INT_EQ(scan(&s, cfg, next), 0);
    m = read_all(&s, again, 64, 16, 3);
    ASSERT_INT_EQ(m, 19);
    snprintf(want, sizeof(want), "ReminderDue PLAN_DUE_SOON shire-asc %s %s %s", p29,
             day(AS_OF, 29), next);
    ASSERT_INT_EQ(has(again, m, want), 1);
    snprintf(want, sizeof(want), "ReminderDue PLAN_OVERDUE city-asc %s %s %s", p0, AS_OF, next);
    ASSERT_INT_EQ(has(again, m, want), 1);
    snprintf(want, sizeof(want), "ReminderDue PLAN_OVERDUE overseer %s %s %s", p0, AS_OF, next);
    ASSERT_INT_EQ(has(again, m, want), 1);
    snprintf(want, sizeof(want), "ReminderDue GROUP_NOT_BRIEFED board-90 - %s %s", day(AS_OF, 0),
             next);
    ASSERT_INT_EQ(has(again, m, want), 1);
    snprintf(want, sizeof(want), "MeetingActionOverdue %.8s board-90 %s %s 1", a0, AS_OF, next);
    ASSERT_INT_EQ(has(again, m, want), 1);

    /* As a service: reminder.now from the file, a scan a second, SIGTERM drains and exits 0. */
    cfg = config(&s, "loop.conf", NULL, NULL,
                 "interval_seconds = 1; now = \"2026-03-04\"; http_listen = \"127.0.0.1:0\";");
    const char *loop_args[] = {"--config", cfg, NULL};
    pid_t pid = start(&s, loop_args);
    usleep(3500 * 1000);
    /* Its operations endpoint: alive between scans, ready after a good one. */
    static char body[65536];
    int port = 0;
    log = hub_read_file(s.log, NULL, NULL, 0);
    const char *listen = strstr(log, "event=http_listen");
    ASSERT_TRUE(listen != NULL);
    port = atoi(strstr(listen, "port=") + 5);
    free(log);
    ASSERT_INT_EQ(hub_test_http_get(port, "/healthz", body, sizeof(body)), 200);
    ASSERT_INT_EQ(hub_test_http_get(port, "/readyz", body, sizeof(body)), 200);
    ASSERT_INT_EQ(hub_test_http_get(port, "/metrics", body, sizeof(body)), 200);
    snprintf(want, sizeof(want), "hub_events_out_total{topic=\"%s\"} 0\n", s.notifications);
    ASSERT_STR_CONTAINS(body, want);
    ASSERT_STR_CONTAINS(body, "hub_delivery_failures_total 0\n");
    kill(pid, SIGTERM);
    ASSERT_INT_EQ(hub_test_wait_exit(pid, 20000), 0);
    ASSERT_INT_EQ(read_all(&s, again, 64, 16, 3), 19);
    log = hub_read_file(s.log, NULL, NULL, 0);
    int scans = 0;
    for (const char *p = log; (p = strstr(p, "as_of=2026-03-04 plan_due_soon")) != NULL; p++)
        scans++;
    ASSERT_INT_OP(scans, >=, 3);
    /* No identifiers of people in the log. */
    const char *seeds[] = {"p28", "p29", "p0", "pm1", "pdone", "padult", "pnoplan", "prutland"};
    for (size_t i = 0; i < HUB_ARRAY_LEN(seeds); i++)
        ASSERT_TRUE(strstr(log, subject_key(seeds[i])) == NULL);
    ASSERT_TRUE(strstr(log, "AddressSanitizer") == NULL);
    free(log);
}

/* A scan counts only once the broker has its events: with no broker, nothing is recorded. */
static void test_unacknowledged_scan_fails(void)
{
    setup_t s;
    setup(&s);
    person(&s, "late", "LEICESTER", day(AS_OF, -2), "PLAN_AT_17Y6M", 0);
    const char *cfg = config(&s, "nobroker.conf", "127.0.0.1:1", "message_timeout_ms = 2000;",
                             "flush_timeout_ms = 5000;");
    ASSERT_INT_EQ(scan(&s, cfg, AS_OF), 1);
    ASSERT_INT_EQ(count(&s, "SELECT count(*) FROM reminder_emitted"), 0);
    char *log = hub_read_file(s.log, NULL, NULL, 0);
    ASSERT_STR_CONTAINS(log, "event=scan_failed");
    free(log);

    /* A bad --now is a usage error. */
    const char *args[] = {"--config", cfg, "--once", "--now", "2026-02-30", NULL};
    ASSERT_INT_EQ(hub_test_wait_exit(start(&s, args), 20000), 2);
}

int main(void)
{
    char errstr[512] = "";
    /* Pinned schema ids, as the services use when the configuration names no registry. */
    s_codec = hub_codec_new(NULL, errstr, sizeof(errstr));
    if (!s_codec)
        TEST_FAIL_("%s", errstr);
    RUN_TEST(test_boundaries_and_determinism);
    RUN_TEST(test_unacknowledged_scan_fails);
    hub_codec_destroy(s_codec);
    return 0;
}
