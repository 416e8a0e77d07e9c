/*
 * test_notifier.c: hub-notifier as a process against the real broker,
 * PostgreSQL and SMTP server (scripts/infra.sh): what a mail looks like, one
 * mail per event id however often the event arrives, a SIGKILL mid-stream,
 * the SMTP server down then up, and refused addresses going to the dead
 * letters while everything else is delivered.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/date.h"
#include "hub/deadletter.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/pg.h"
#include "test.h"

#define NOTIFIER_PASSWORD "notifier-test-password"

/* One notifier setup: its topics, database, configuration and log. */
typedef struct setup_s {
    char notifications[256], actions[256], dlq[256];
    char conninfo[1024]; /* superuser, for checks */
    char config[1024];
    char log[1024];
    char dir[512];
    char group[128];   /* Kafka consumer group, the same across configurations */
    char groups[4096]; /* the groups' configuration text */
    pid_t pid;
} setup_t;

static hub_codec_t *s_codec;
static hub_producer_t *s_producer;
static int s_smtp_stopped;
static const char *s_maildir; /* a test's own SMTP server's Maildir; NULL: the shared one */

/* ---- processes ------------------------------------------------------------ */

static void start(setup_t *s)
{
    const char *argv[] = {"hub-notifier", "--config", s->config, NULL};
    s->pid = hub_test_spawn(hub_test_service_binary("notifier"), argv, s->log);
}

/* Sends sig and waits for the exit; returns the exit status (128+n for a signal). */
static int stop(setup_t *s, int sig)
{
    int status = 0;
    ASSERT_TRUE(s->pid > 0);
    kill(s->pid, sig);
    for (int i = 0; i < 600; i++) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(50 * 1000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    TEST_FAIL_("hub-notifier did not stop within 30 s after signal %d", sig);
}

/* The SMTP server is shared: whatever happens, a test must not leave it down. */
static void restart_smtp_at_exit(void)
{
    if (s_smtp_stopped)
        hub_test_infra("smtp-start");
}

static char *read_text(const char *path)
{
    char errstr[256];
    char *t = hub_read_file(path, NULL, errstr, sizeof(errstr));
    return t ? t : strdup("");
}

/* The port of the notifier's operations endpoint, from its latest start in the log. */
static int http_port(const setup_t *s)
{
    int port = 0;
    for (int i = 0; i < 100 && !port; i++) {
        char *log = read_text(s->log);
        for (const char *p = log; (p = strstr(p, "event=http_listen")) != NULL; p++) {
            const char *q = strstr(p, "port=");
            if (q)
                port = atoi(q + 5);
        }
        free(log);
        if (!port)
            usleep(100 * 1000);
    }
    ASSERT_INT_OP(port, >, 0);
    return port;
}

/* ---- setup ---------------------------------------------------------------- */

/* A prefix plus this process and call, usable in an address: it finds a test's mails. */
static void make_token(char *buf, size_t size, const char *prefix)
{
    snprintf(buf, size, "%s%s", prefix, hub_test_unique());
    for (char *p = buf; *p; p++)
        if (*p == '_')
            *p = '-';
}

static PGconn *admin(const setup_t *s)
{
    char errstr[512] = "";
    PGconn *c = hub_pg_connect(s->conninfo, NULL, 5000, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("%s", errstr);
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    char errstr[512] = "";
    ASSERT_OK(hub_pg_exec(c, sql, errstr, sizeof(errstr)), errstr);
}

static long long count(const setup_t *s, const char *sql, const char *param)
{
    PGconn *c = admin(s);
    const char *params[1] = {param};
    PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        TEST_FAIL_("%s: %s", sql, PQerrorMessage(c));
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return n;
}

/*
 * Writes a configuration for this setup into its directory as name; smtp is
 * the `smtp = { ... };` text (NULL: the shared test server, no TLS). Returns
 * the path (also kept in s->config).
 */
static const char *write_config(setup_t *s, const char *name, const char *smtp)
{
    char text[8192], smtp_default[512];
    snprintf(smtp_default, sizeof(smtp_default),
             "smtp = { url = \"%s\"; starttls = \"none\"; timeout_ms = 10000;\n"
             "           connect_timeout_ms = 2000; };",
             hub_test_env("HUB_SMTP_URL"));
    snprintf(text, sizeof(text),
             /* A killed member's partitions move on after 6 s, not the default 45 s. */
             "kafka = { %s session_timeout_ms = 6000;\n"
             "          heartbeat_interval_ms = 1000; };\n"
             "postgres = { conninfo = \"%s user=hub_notifier password=" NOTIFIER_PASSWORD "\"; };\n"
             "topics = { group_notifications = \"%s\"; meeting_actions = \"%s\";\n"
             "           dead_letters = \"%s\"; };\n"
             "log = { level = \"info\"; };\n"
             "notifier = {\n"
             "  consumer_group = \"%s\";\n"
             "  %s\n"
             "  retry = { initial_ms = 200; max_ms = 1000; };\n"
             "  http_listen = \"127.0.0.1:0\";\n"
             "};\n"
             "groups = ( %s );\n",
             hub_test_kafka_settings(), s->conninfo, s->notifications, s->actions, s->dlq, s->group,
             smtp ? smtp : smtp_default, s->groups);
    snprintf(s->config, sizeof(s->config), "%s", hub_test_write_file(s->dir, name, text));
    return s->config;
}

/* groups: the configuration text of the groups (each test makes its own addresses). */
static void setup(setup_t *s, const char *groups)
{
    char errstr[512] = "", migrations[1024];
    int applied = 0;

    memset(s, 0, sizeof(*s));
    hub_test_topic("notifications", 3, s->notifications, sizeof(s->notifications));
    hub_test_topic("actions", 1, s->actions, sizeof(s->actions));
    hub_test_topic("dlq", 1, s->dlq, sizeof(s->dlq));
    hub_test_pg_db("notifier", s->conninfo, sizeof(s->conninfo));

    PGconn *c = admin(s);
    snprintf(migrations, sizeof(migrations), "%s/sql/migrations", hub_data_dir());
    ASSERT_OK(hub_pg_migrate(c, migrations, &applied, errstr, sizeof(errstr)), errstr);
    exec_ok(c, "ALTER ROLE hub_notifier WITH LOGIN PASSWORD '" NOTIFIER_PASSWORD "'");
    PQfinish(c);

    hub_strlcpy(s->dir, hub_test_tmpdir(), sizeof(s->dir));
    snprintf(s->log, sizeof(s->log), "%s/notifier.log", s->dir);
    snprintf(s->group, sizeof(s->group), "notifier-%s", hub_test_unique());
    snprintf(s->groups, sizeof(s->groups), "%s", groups);
    write_config(s, "hub.conf", NULL);
}

/* ---- events --------------------------------------------------------------- */

static const char *subject_key(int i)
{
    static char buf[4][HUB_SUBJECT_KEY_SIZE];
    static int next;
    char *k = buf[next++ % 4];
    unsigned char md[32];
    unsigned int n = 0;
    char seed[32];
    snprintf(seed, sizeof(seed), "person-%d", i);
    EVP_Digest(seed, strlen(seed), md, &n, EVP_sha256(), NULL);
    for (int j = 0; j < 32; j++)
        snprintf(k + 2 * j, 3, "%02x", md[j]);
    return k;
}

static hub_date_t date(const char *text)
{
    hub_date_t d;
    ASSERT_INT_EQ(hub_date_parse(text, &d), 0);
    return d;
}

static void reminder(hub_event_t *ev, const char *group_id, hub_reminder_kind_t kind, int person,
                     const char *due, const char *as_of)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = HUB_EVENT_REMINDER_DUE;
    ASSERT_INT_EQ(hub_uuid_v4(ev->event_id), 0);
    ev->occurred_at = hub_now_ms();
    hub_strlcpy(ev->source, "hub-reminder", sizeof(ev->source));
    hub_strlcpy(ev->u.reminder.group_id, group_id, sizeof(ev->u.reminder.group_id));
    ev->u.reminder.kind = kind;
    if (person >= 0) {
        ev->u.reminder.has_subject_key = 1;
        hub_strlcpy(ev->u.reminder.subject_key, subject_key(person),
                    sizeof(ev->u.reminder.subject_key));
    }
    if (due) {
        ev->u.reminder.has_due_date = 1;
        ev->u.reminder.due_date = date(due);
    }
    ev->u.reminder.as_of = date(as_of);
}

static void produce(const char *topic, const hub_event_t *ev, int replayed)
{
    char errstr[512] = "";
    hub_buf_t buf = {0};
    rd_kafka_headers_t *h = NULL;
    const char *key = hub_event_key(ev);
    ASSERT_OK(hub_codec_encode(s_codec, ev, &buf, errstr, sizeof(errstr)), errstr);
    if (replayed) {
        h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, HUB_DLQ_HEADER_REPLAYS, -1, "1", -1);
    }
    ASSERT_OK(hub_producer_send(s_producer, topic, RD_KAFKA_PARTITION_UA, key, strlen(key),
                                buf.data, buf.len, h, errstr, sizeof(errstr)),
              errstr);
    hub_buf_free(&buf);
}

static void flush(void)
{
    char errstr[512] = "";
    ASSERT_OK(hub_producer_flush(s_producer, 30000, errstr, sizeof(errstr)), errstr);
}

/* ---- the Maildir ---------------------------------------------------------- */

typedef struct mails_s {
    int n;
    char **texts;
    char **message_ids;
} mails_t;

static void mails_free(mails_t *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->texts[i]);
        free(m->message_ids[i]);
    }
    free(m->texts);
    free(m->message_ids);
    memset(m, 0, sizeof(*m));
}

/* The value of the first header `name` in a raw message (static buffer). */
static const char *header_of(const char *text, const char *name)
{
    static char value[1024];
    size_t nl = strlen(name);
    value[0] = '\0';
    for (const char *line = text; line && *line && *line != '\r' && *line != '\n';) {
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(value, sizeof(value), "%.*s", (int)len, v);
            return value;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return value;
}

/* Every delivered message whose envelope recipients contain needle. */
static void mails_find(const char *needle, mails_t *out)
{
    static const char *const sub[] = {"new", "cur"};
    memset(out, 0, sizeof(*out));
    for (size_t d = 0; d < 2; d++) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s", s_maildir ? s_maildir : hub_test_env("HUB_MAILDIR"),
                 sub[d]);
        DIR *dh = opendir(dir);
        ASSERT_TRUE(dh != NULL);
        for (struct dirent *e; (e = readdir(dh)) != NULL;) {
            char path[2048];
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            char *text = read_text(path);
            if (!strstr(header_of(text, "X-Envelope-To"), needle)) {
                free(text);
                continue;
            }
            out->texts = realloc(out->texts, (size_t)(out->n + 1) * sizeof(char *));
            out->message_ids = realloc(out->message_ids, (size_t)(out->n + 1) * sizeof(char *));
            out->message_ids[out->n] = strdup(header_of(text, "Message-ID"));
            out->texts[out->n++] = text;
        }
        closedir(dh);
    }
}

static int mail_count(const char *needle)
{
    mails_t m;
    mails_find(needle, &m);
    int n = m.n;
    mails_free(&m);
    return n;
}

/* Waits until at least want mails for needle arrived; returns how many there are. */
static int wait_mails(const char *needle, int want, int timeout_ms)
{
    int64_t end = hub_monotonic_ms() + timeout_ms;
    int n;
    while ((n = mail_count(needle)) < want && hub_monotonic_ms() < end)
        usleep(100 * 1000);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int distinct_message_ids(mails_t *m)
{
    int d = 0;
    qsort(m->message_ids, (size_t)m->n, sizeof(char *), cmp_str);
    for (int i = 0; i < m->n; i++)
        if (i == 0 || strcmp(m->message_ids[i], m->message_ids[i - 1]) != 0)
            d++;
    return d;
}

/* ---- Kafka reading -------------------------------------------------------- */

/* What a test needs of one consumed message, copied (librdkafka's messages must die early). */
typedef struct record_s {
    hub_event_t ev;
    int decoded;
    char klass[64], service[64], topic[256], reason[1024];
} record_t;

static void copy_header(rd_kafka_message_t *m, const char *name, char *buf, size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(buf, size, "%.*s", (int)n, (const char *)v);
}

/* Reads topic from the start until want messages arrived or timeout; returns how many. */
static int consume(const char *topic, record_t *out, int want, int timeout_ms)
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
    int64_t end = hub_monotonic_ms() + timeout_ms;
    while (got < want && hub_monotonic_ms() < end) {
        rd_kafka_message_t *m = hub_consumer_poll(c, 200);
        if (!m)
            continue;
        record_t *r = &out[got++];
        memset(r, 0, sizeof(*r));
        r->decoded =
            hub_codec_decode(s_codec, m->payload, m->len, &r->ev, errstr, sizeof(errstr)) == 0;
        copy_header(m, HUB_DLQ_HEADER_CLASS, r->klass, sizeof(r->klass));
        copy_header(m, HUB_DLQ_HEADER_SERVICE, r->service, sizeof(r->service));
        copy_header(m, HUB_DLQ_HEADER_TOPIC, r->topic, sizeof(r->topic));
        copy_header(m, HUB_DLQ_HEADER_MESSAGE, r->reason, sizeof(r->reason));
        rd_kafka_message_destroy(m);
    }
    hub_consumer_destroy(c);
    hub_props_clear(&props);
    return got;
}

static void assert_log_clean(const setup_t *s, const char *const *secrets, size_t n)
{
    char *log = read_text(s->log);
    for (size_t i = 0; i < n; i++)
        if (strstr(log, secrets[i]))
            TEST_FAIL_("the notifier's log (%s) contains \"%s\"", s->log, secrets[i]);
    ASSERT_TRUE(strstr(log, "ERROR: AddressSanitizer") == NULL);
    free(log);
}

static void wait_ledger(const setup_t *s, const char *event_id, const char *status)
{
    int64_t end = hub_monotonic_ms() + 20000;
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM notification_deliveries WHERE event_id = $1 AND status = '%s'",
             status);
    while (count(s, sql, event_id) != 1) {
        if (hub_monotonic_ms() > end)
            TEST_FAIL_("event %s not in the ledger as %s", event_id, status);
        usleep(100 * 1000);
    }
}

/* ---- tests ---------------------------------------------------------------- */

/* One reminder, one action, one briefing: each a readable mail, exactly once. */
static void test_mail_once_per_event(void)
{
    setup_t s;
    char groups[2048], addr[256], board[256], quiet[256], token[64];
    hub_event_t due, action, quiet_action, brief;

    make_token(token, sizeof(token), "m");
    snprintf(addr, sizeof(addr), "shire-%s@leicestershire.example.org", token);
    snprintf(board, sizeof(board), "board-%s@example.org", token);
    snprintf(quiet, sizeof(quiet), "quiet-%s@example.org", token);
    snprintf(groups, sizeof(groups),
             "{ id = \"shire-asc\"; name = \"Leicestershire County Council Adult Social Care\";\n"
             "  emails = [ \"%s\" ]; reminders = [ \"PLAN_DUE_SOON\", \"ACTION_OVERDUE\" ];\n"
             "  local_authority = \"LEICESTERSHIRE\"; },\n"
             "{ id = \"board\"; name = \"City Transitions Board\"; emails = [ \"%s\" ]; },\n"
             "{ id = \"quiet\"; name = \"Quiet Group\"; emails = [ \"%s\" ]; }",
             addr, board, quiet);
    setup(&s, groups);

    reminder(&due, "shire-asc", HUB_REMINDER_PLAN_DUE_SOON, 1, "2026-03-31", "2026-03-03");
    memset(&action, 0, sizeof(action));
    action.type = HUB_EVENT_MEETING_ACTION_OVERDUE;
    ASSERT_INT_EQ(hub_uuid_v4(action.event_id), 0);
    action.occurred_at = hub_now_ms();
    hub_strlcpy(action.source, "hub-reminder", sizeof(action.source));
    ASSERT_INT_EQ(hub_uuid_v4(action.u.action_overdue.action_id), 0);
    hub_strlcpy(action.u.action_overdue.owner_group_id, "shire-asc",
                sizeof(action.u.action_overdue.owner_group_id));
    action.u.action_overdue.due_date = date("2026-02-20");
    action.u.action_overdue.as_of = date("2026-03-03");
    action.u.action_overdue.days_overdue = 11;
    /* The quiet group does not subscribe to ACTION_OVERDUE: ledger only. */
    quiet_action = action;
    ASSERT_INT_EQ(hub_uuid_v4(quiet_action.event_id), 0);
    hub_strlcpy(quiet_action.u.action_overdue.owner_group_id, "quiet",
                sizeof(quiet_action.u.action_overdue.owner_group_id));
    memset(&brief, 0, sizeof(brief));
    brief.type = HUB_EVENT_BRIEFING_REQUESTED;
    ASSERT_INT_EQ(hub_uuid_v4(brief.event_id), 0);
    brief.occurred_at = hub_now_ms();
    hub_strlcpy(brief.source, "HUB_COORDINATOR", sizeof(brief.source));
    hub_strlcpy(brief.u.briefing_requested.group_id, "board",
                sizeof(brief.u.briefing_requested.group_id));
    hub_strlcpy(brief.u.briefing_requested.title, "Transitions work: spring update",
                sizeof(brief.u.briefing_requested.title));
    hub_strlcpy(brief.u.briefing_requested.link, "https://docs.example.org/briefings/spring",
                sizeof(brief.u.briefing_requested.link));

    hub_event_t unbriefed;
    reminder(&unbriefed, "board", HUB_REMINDER_GROUP_NOT_BRIEFED, -1, "2026-03-01", "2026-03-03");

    produce(s.notifications, &due, 0);
    produce(s.actions, &action, 0);
    produce(s.actions, &quiet_action, 0);
    produce(s.notifications, &brief, 0);
    produce(s.notifications, &unbriefed, 0);
    flush();
    start(&s);

    ASSERT_INT_EQ(wait_mails(addr, 2, 30000), 2);
    ASSERT_INT_EQ(wait_mails(board, 2, 30000), 2);
    wait_ledger(&s, quiet_action.event_id, "NOT_SUBSCRIBED");

    mails_t m;
    mails_find(addr, &m);
    const char *plan = NULL, *act = NULL;
    for (int i = 0; i < m.n; i++) {
        if (strstr(m.texts[i], "X-LLR-Hub-Event-Type: ReminderDue"))
            plan = m.texts[i];
        else
            act = m.texts[i];
    }
    ASSERT_TRUE(plan && act);
    char want[256];
    ASSERT_STR_CONTAINS(header_of(plan, "To"), addr);
    ASSERT_STR_EQ(header_of(plan, "Subject"),
                  "Transition plan due by 31 March 2026 (Leicestershire)");
    snprintf(want, sizeof(want), "<%s@example.org>", due.event_id);
    ASSERT_STR_EQ(header_of(plan, "Message-ID"), want);
    ASSERT_STR_CONTAINS(header_of(plan, "From"), "<transitions-hub@example.org>");
    ASSERT_TRUE(header_of(plan, "Date")[0] != '\0');
    ASSERT_STR_CONTAINS(plan, "A transition plan is due by 31 March 2026, in 28 days,");
    ASSERT_STR_CONTAINS(plan, subject_key(1));
    ASSERT_STR_CONTAINS(plan, "Local authority: Leicestershire.");
    ASSERT_STR_CONTAINS(plan, "What to do:");
    ASSERT_STR_CONTAINS(plan, "Dear Leicestershire County Council Adult Social Care,");
    ASSERT_TRUE(strstr(plan, "NHS number:") == NULL);
    ASSERT_STR_EQ(header_of(act, "Subject"), "Meeting action overdue since 20 February 2026");
    ASSERT_STR_CONTAINS(act, action.u.action_overdue.action_id);
    ASSERT_STR_CONTAINS(act, "it was 11 days");
    mails_free(&m);

    mails_find(board, &m);
    ASSERT_INT_EQ(m.n, 2);
    const char *briefing = strstr(m.texts[0], "BriefingRequested") ? m.texts[0] : m.texts[1];
    const char *overdue = briefing == m.texts[0] ? m.texts[1] : m.texts[0];
    ASSERT_STR_EQ(header_of(briefing, "Subject"), "Briefing: Transitions work: spring update");
    ASSERT_STR_CONTAINS(briefing, "https://docs.example.org/briefings/spring");
    ASSERT_STR_EQ(header_of(overdue, "Subject"),
                  "Transitions briefing overdue for City Transitions Board");
    ASSERT_STR_CONTAINS(overdue, "by 1 March 2026");
    mails_free(&m);
    ASSERT_INT_EQ(mail_count(quiet), 0);

    /* BriefingSent: deterministic id, one accepted address. */
    static record_t recs[8];
    int sent = 0;
    int64_t end = hub_monotonic_ms() + 20000;
    while (!sent && hub_monotonic_ms() < end) {
        int got = consume(s.notifications, recs, 4, 5000);
        for (int i = 0; i < got; i++) {
            const hub_event_t *ev = &recs[i].ev;
            if (recs[i].decoded && ev->type == HUB_EVENT_BRIEFING_SENT) {
                char id[HUB_UUID_SIZE];
                ASSERT_INT_EQ(hub_uuid_v5("6f1d3c2a-8b4e-5a7f-9c0d-2e4b6a8c0f13", brief.event_id,
                                          strlen(brief.event_id), id),
                              0);
                ASSERT_STR_EQ(ev->event_id, id);
                ASSERT_STR_EQ(ev->u.briefing_sent.request_event_id, brief.event_id);
                ASSERT_STR_EQ(ev->u.briefing_sent.group_id, "board");
                ASSERT_INT_EQ(ev->u.briefing_sent.recipients, 1);
                sent++;
            }
        }
    }
    ASSERT_INT_EQ(sent, 1);

    /* The same events again (a producer retry, a replayed topic): no second mail. */
    produce(s.notifications, &due, 0);
    produce(s.actions, &action, 0);
    produce(s.notifications, &brief, 0);
    hub_event_t marker;
    reminder(&marker, "shire-asc", HUB_REMINDER_PLAN_OVERDUE, 2, "2026-03-01", "2026-03-03");
    produce(s.notifications, &marker, 0);
    flush();
    wait_ledger(&s, marker.event_id, "DELIVERED");
    ASSERT_INT_EQ(wait_mails(addr, 3, 10000), 3);
    /* The duplicates may sit in other partitions than the marker: give them time too. */
    usleep(2000 * 1000);
    ASSERT_INT_EQ(mail_count(addr), 3);
    ASSERT_INT_EQ(mail_count(board), 2);
    ASSERT_INT_EQ(count(&s, "SELECT count(*) FROM notification_deliveries", NULL), 6);

    /* The operations endpoint: alive, ready, and counting what happened. */
    static char body[65536];
    char line[512];
    int port = http_port(&s);
    ASSERT_INT_EQ(hub_test_http_get(port, "/healthz", body, sizeof(body)), 200);
    ASSERT_INT_EQ(hub_test_http_get(port, "/readyz", body, sizeof(body)), 200);
    ASSERT_INT_EQ(hub_test_http_get(port, "/metrics", body, sizeof(body)), 200);
    snprintf(line, sizeof(line), "hub_events_out_total{topic=\"%s\"} 1\n", s.notifications);
    ASSERT_STR_CONTAINS(body, line);
    snprintf(line, sizeof(line), "hub_events_in_total{topic=\"%s\"} 3\n", s.actions);
    ASSERT_STR_CONTAINS(body, line);
    ASSERT_STR_CONTAINS(body, "hub_delivery_failures_total 0\n");

    /* A restart reads from the offsets in PostgreSQL and sends nothing again. */
    ASSERT_INT_EQ(stop(&s, SIGTERM), 0);
    start(&s);
    usleep(3000 * 1000);
    ASSERT_INT_EQ(stop(&s, SIGTERM), 0);
    ASSERT_INT_EQ(mail_count(addr), 3);
    ASSERT_INT_EQ(mail_count(board), 2);

    const char *secrets[] = {subject_key(1), subject_key(2), addr, board};
    assert_log_clean(&s, secrets, HUB_ARRAY_LEN(secrets));
}

/* SIGKILL twice while 200 reminders flow: all delivered, the ledger holds each once. */
static void test_sigkill_mid_stream(void)
{
    enum { N = 200, GROUPS = 6 };
    setup_t s;
    char groups[2048], addr[GROUPS][256], token[64];
    static hub_event_t evs[N];
    size_t used = 0;

    /* Several groups, so the events (keyed by group id) spread over the partitions. */
    make_token(token, sizeof(token), "k");
    for (int g = 0; g < GROUPS; g++) {
        snprintf(addr[g], sizeof(addr[g]), "many%d-%s@example.org", g, token);
        used += (size_t)snprintf(groups + used, sizeof(groups) - used,
                                 "%s{ id = \"many-%d\"; name = \"Many %d\"; emails = [ \"%s\" ]; }",
                                 g ? ",\n" : "", g, g, addr[g]);
    }
    setup(&s, groups);
    for (int i = 0; i < N; i++) {
        char gid[16];
        snprintf(gid, sizeof(gid), "many-%d", i % GROUPS);
        reminder(&evs[i], gid, HUB_REMINDER_PLAN_OVERDUE, 1000 + i, "2026-01-01", "2026-03-03");
        produce(s.notifications, &evs[i], 0);
    }
    flush();

    start(&s);
    wait_mails(token, 40, 60000);
    ASSERT_INT_EQ(stop(&s, SIGKILL), 128 + SIGKILL);
    int after_first = mail_count(token);
    start(&s);
    wait_mails(token, after_first + 60, 60000);
    ASSERT_INT_EQ(stop(&s, SIGKILL), 128 + SIGKILL);
    start(&s);
    int64_t end = hub_monotonic_ms() + 90000;
    mails_t m = {0};
    for (;;) {
        mails_free(&m);
        mails_find(token, &m);
        if (distinct_message_ids(&m) == N || hub_monotonic_ms() > end)
            break;
        usleep(200 * 1000);
    }
    ASSERT_INT_EQ(distinct_message_ids(&m), N);
    /*
     * At most one mail can be in flight when a kill lands (accepted by the
     * server, not yet recorded): two kills, at most two second copies, each
     * with the same Message-ID as the first.
     */
    ASSERT_INT_OP(m.n, <=, N + 2);
    fprintf(stderr, "   %d mails for %d events after two SIGKILLs\n", m.n, N);
    mails_free(&m);

    for (int i = 0; i < N; i++)
        wait_ledger(&s, evs[i].event_id, "DELIVERED");
    ASSERT_INT_EQ(count(&s, "SELECT count(*) FROM notification_deliveries", NULL), N);
    ASSERT_INT_EQ(count(&s, "SELECT count(*) FROM notification_recipients", NULL), N);
    ASSERT_INT_EQ(count(&s, "SELECT sum(recipients) FROM notification_deliveries", NULL), N);
    ASSERT_INT_OP(
        count(&s, "SELECT count(DISTINCT \"partition\") FROM notification_deliveries", NULL), >=,
        2);
    ASSERT_INT_EQ(stop(&s, SIGTERM), 0);
}

/* The mail server is down when the reminder arrives; it is delivered once it is back. */
static void test_smtp_down_then_up(void)
{
    setup_t s;
    char groups[1024], addr[256], token[64], *log;
    hub_event_t ev;

    make_token(token, sizeof(token), "d");
    snprintf(addr, sizeof(addr), "later-%s@example.org", token);
    snprintf(groups, sizeof(groups),
             "{ id = \"later\"; name = \"Later Group\"; emails = [ \"%s\" ]; }", addr);
    setup(&s, groups);
    reminder(&ev, "later", HUB_REMINDER_PLAN_DUE_SOON, 7, "2026-03-10", "2026-03-03");

    s_smtp_stopped = 1;
    hub_test_infra("smtp-stop");
    produce(s.notifications, &ev, 0);
    flush();
    start(&s);
    /* Several attempts fail and back off; nothing is delivered or dead-lettered. */
    int64_t end = hub_monotonic_ms() + 20000;
    int retries = 0;
    while (retries < 3 && hub_monotonic_ms() < end) {
        usleep(200 * 1000);
        log = read_text(s.log);
        retries = 0;
        for (const char *p = log; (p = strstr(p, "event=delivery_retry")) != NULL; p++)
            retries++;
        free(log);
    }
    ASSERT_INT_OP(retries, >=, 3);
    ASSERT_INT_EQ(count(&s, "SELECT count(*) FROM notification_deliveries", NULL), 0);

    hub_test_infra("smtp-start");
    s_smtp_stopped = 0;
    ASSERT_INT_EQ(wait_mails(addr, 1, 30000), 1);
    wait_ledger(&s, ev.event_id, "DELIVERED");
    usleep(1500 * 1000);
    ASSERT_INT_EQ(mail_count(addr), 1);
    static record_t dead[1];
    ASSERT_INT_EQ(consume(s.dlq, dead, 1, 2000), 0);
    ASSERT_INT_EQ(stop(&s, SIGTERM), 0);
}

/* Refused addresses: dead letter with the reason; every other mail still goes out. */
static void test_bad_recipient_dead_letter(void)
{
    setup_t s;
    char groups[2048], good[256], bad[256], mixed_ok[256], mixed_bad[256], token[64];
    hub_event_t to_bad, to_mixed, to_good, to_nobody;

    make_token(token, sizeof(token), "b");
    snprintf(good, sizeof(good), "good-%s@example.org", token);
    snprintf(bad, sizeof(bad), "gone-%s@invalid.example.org", token);
    snprintf(mixed_ok, sizeof(mixed_ok), "mixed-%s@example.org", token);
    snprintf(mixed_bad, sizeof(mixed_bad), "mixed-%s@invalid.example.org", token);
    snprintf(groups, sizeof(groups),
             "{ id = \"bad\"; name = \"Bad\"; emails = [ \"%s\" ]; },\n"
             "{ id = \"mixed\"; name = \"Mixed\"; emails = [ \"%s\", \"%s\" ]; },\n"
             "{ id = \"good\"; name = \"Good\"; emails = [ \"%s\" ]; }",
             bad, mixed_bad, mixed_ok, good);
    setup(&s, groups);
    reminder(&to_bad, "bad", HUB_REMINDER_PLAN_OVERDUE, 11, "2026-03-01", "2026-03-03");
    reminder(&to_mixed, "mixed", HUB_REMINDER_PLAN_OVERDUE, 12, "2026-03-01", "2026-03-03");
    reminder(&to_good, "good", HUB_REMINDER_PLAN_OVERDUE, 13, "2026-03-01", "2026-03-03");
    reminder(&to_nobody, "no-such-group", HUB_REMINDER_PLAN_OVERDUE, 14, "2026-03-01",
             "2026-03-03");
    produce(s.notifications, &to_bad, 0);
    produce(s.notifications, &to_mixed, 0);
    produce(s.notifications, &to_nobody, 0);
    produce(s.notifications, &to_good, 0);
    flush();
    start(&s);

    ASSERT_INT_EQ(wait_mails(good, 1, 30000), 1);
    ASSERT_INT_EQ(wait_mails(mixed_ok, 1, 30000), 1);
    wait_ledger(&s, to_bad.event_id, "REFUSED");
    wait_ledger(&s, to_mixed.event_id, "PARTIAL");
    wait_ledger(&s, to_nobody.event_id, "UNKNOWN_GROUP");
    wait_ledger(&s, to_good.event_id, "DELIVERED");

    static record_t dead[5];
    int got = consume(s.dlq, dead, 3, 20000);
    ASSERT_INT_EQ(got, 3);
    int refused = 0, unknown = 0;
    for (int i = 0; i < got; i++) {
        const record_t *r = &dead[i];
        ASSERT_TRUE(r->decoded);
        ASSERT_STR_EQ(r->klass, "delivery");
        ASSERT_STR_EQ(r->service, "hub-notifier");
        ASSERT_STR_EQ(r->topic, s.notifications);
        ASSERT_TRUE(strstr(r->reason, token) == NULL); /* no address in the reason */
        if (strcmp(r->ev.event_id, to_nobody.event_id) == 0) {
            ASSERT_STR_CONTAINS(r->reason, "group 'no-such-group' is not configured");
            unknown++;
        } else {
            ASSERT_TRUE(strcmp(r->ev.event_id, to_bad.event_id) == 0 ||
                        strcmp(r->ev.event_id, to_mixed.event_id) == 0);
            ASSERT_STR_CONTAINS(r->reason, "550");
            ASSERT_STR_CONTAINS(r->reason, "invalid.example.org");
            refused++;
        }
    }
    ASSERT_INT_EQ(refused, 2);
    ASSERT_INT_EQ(unknown, 1);

    static char body[65536];
    ASSERT_INT_EQ(hub_test_http_get(http_port(&s), "/metrics", body, sizeof(body)), 200);
    ASSERT_STR_CONTAINS(body, "hub_dead_letters_total{class=\"delivery\"} 3\n");
    ASSERT_STR_CONTAINS(body, "hub_delivery_failures_total 2\n");

    /* A duplicate of a refused event is not dead-lettered again ... */
    produce(s.notifications, &to_bad, 0);
    /* ... but a replay of the dead letter is tried again (and refused again). */
    produce(s.notifications, &to_mixed, 1);
    flush();
    got = consume(s.dlq, dead, 5, 8000);
    ASSERT_INT_EQ(got, 4);
    ASSERT_STR_EQ(dead[3].ev.event_id, to_mixed.event_id);
    /* The address that took the mail the first time is not written to again. */
    ASSERT_INT_EQ(mail_count(mixed_ok), 1);
    ASSERT_INT_EQ(stop(&s, SIGTERM), 0);

    const char *secrets[] = {good, bad, mixed_ok, mixed_bad, subject_key(11)};
    assert_log_clean(&s, secrets, HUB_ARRAY_LEN(secrets));
}

/* Starts a second real SMTP server (the same aiosmtpd script) offering STARTTLS. */
static pid_t start_tls_smtp(const char *dir, int *port)
{
    char cmd[4096], ready[600], maildir[600], cert[600], key[600], sport[16], log[600];
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    snprintf(cert, sizeof(cert), "%s/tls.crt", dir);
    snprintf(key, sizeof(key), "%s/tls.key", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0)
        TEST_FAIL_("openssl could not make a test certificate");
    /* A free port: bound by the kernel, released for the server a moment later. */
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_TRUE(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    ASSERT_TRUE(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    *port = ntohs(a.sin_port);
    close(fd);
    snprintf(sport, sizeof(sport), "%d", *port);
    snprintf(ready, sizeof(ready), "%s/ready", dir);
    snprintf(maildir, sizeof(maildir), "%s/mail", dir);
    snprintf(log, sizeof(log), "%s/smtp.log", dir);
    snprintf(cmd, sizeof(cmd), "%s/scripts/infra/smtp_server.py", hub_data_dir());
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        int out = open("/dev/null", O_WRONLY);
        dup2(out, 1);
        dup2(out, 2);
        execl("/usr/bin/python3", "python3", cmd, "--host", "127.0.0.1", "--port", sport,
              "--maildir", maildir, "--log", log, "--ready-file", ready, "--tls-cert", cert,
              "--tls-key", key, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && access(ready, F_OK) != 0; i++)
        usleep(100 * 1000);
    if (access(ready, F_OK) != 0)
        TEST_FAIL_("the STARTTLS SMTP server did not start (log: %s)", log);
    return pid;
}

/* STARTTLS required: refused without the CA (retried, not dead-lettered), delivered with it. */
static void test_starttls_required(void)
{
    setup_t s;
    char groups[512], addr[256], token[64], smtp[1024], maildir[1024];
    hub_event_t ev;
    int port = 0;

    make_token(token, sizeof(token), "t");
    snprintf(addr, sizeof(addr), "tls-%s@example.org", token);
    snprintf(groups, sizeof(groups), "{ id = \"tls\"; name = \"TLS Group\"; emails = [ \"%s\" ]; }",
             addr);
    setup(&s, groups);
    pid_t smtp_pid = start_tls_smtp(s.dir, &port);
    snprintf(maildir, sizeof(maildir), "%s/mail", s.dir);
    s_maildir = maildir;

    reminder(&ev, "tls", HUB_REMINDER_PLAN_DUE_SOON, 21, "2026-03-20", "2026-03-03");
    produce(s.notifications, &ev, 0);
    flush();

    /* The server's certificate is not trusted: every attempt fails before any mail. */
    snprintf(smtp, sizeof(smtp),
             "smtp = { url = \"smtp://127.0.0.1:%d\"; starttls = \"required\";"
             " connect_timeout_ms = 2000; timeout_ms = 10000; };",
             port);
    write_config(&s, "untrusted.conf", smtp);
    start(&s);
    int64_t end = hub_monotonic_ms() + 20000;
    int retries = 0;
    while (retries < 2 && hub_monotonic_ms() < end) {
        usleep(200 * 1000);
        char *log = read_text(s.log);
        retries = 0;
        for (const char *p = log; (p = strstr(p, "event=delivery_retry")) != NULL; p++)
            retries++;
        free(log);
    }
    ASSERT_INT_OP(retries, >=, 2);
    ASSERT_INT_EQ(stop(&s, SIGTERM), 0);
    ASSERT_INT_EQ(mail_count(addr), 0);
    ASSERT_INT_EQ(count(&s, "SELECT count(*) FROM notification_deliveries", NULL), 0);

    /* Trusting the test CA: delivered once, over TLS. */
    snprintf(smtp, sizeof(smtp),
             "smtp = { url = \"smtp://127.0.0.1:%d\"; starttls = \"required\";"
             " ca_file = \"%s/tls.crt\"; connect_timeout_ms = 2000; timeout_ms = 10000; };",
             port, s.dir);
    write_config(&s, "trusted.conf", smtp);
    start(&s);
    ASSERT_INT_EQ(wait_mails(addr, 1, 30000), 1);
    wait_ledger(&s, ev.event_id, "DELIVERED");
    ASSERT_INT_EQ(stop(&s, SIGTERM), 0);
    ASSERT_INT_EQ(mail_count(addr), 1);
    static record_t dead[1];
    ASSERT_INT_EQ(consume(s.dlq, dead, 1, 1000), 0);

    s_maildir = NULL;
    kill(smtp_pid, SIGTERM);
    waitpid(smtp_pid, NULL, 0);
}

int main(void)
{
    char errstr[512] = "";
    hub_props_t props = {0};

    atexit(restart_smtp_at_exit);
    hub_test_env("HUB_SMTP_URL");
    hub_test_env("HUB_MAILDIR");
    /* Pinned schema ids, as the services use when the configuration names no registry. */
    s_codec = hub_codec_new(NULL, errstr, sizeof(errstr));
    if (!s_codec)
        TEST_FAIL_("%s", errstr);
    hub_test_kafka_props(&props);
    s_producer = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    if (!s_producer)
        TEST_FAIL_("%s", errstr);
    hub_props_clear(&props);

    RUN_TEST(test_mail_once_per_event);
    RUN_TEST(test_bad_recipient_dead_letter);
    RUN_TEST(test_smtp_down_then_up);
    RUN_TEST(test_starttls_required);
    RUN_TEST(test_sigkill_mid_stream);

    hub_producer_destroy(s_producer);
    hub_codec_destroy(s_codec);
    return 0;
}
