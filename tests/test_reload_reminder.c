/*
 * test_reload_reminder.c: SIGHUP makes hub-reminder read its named groups
 * again. A group added to the file gets its reminder from the next scan; a
 * file that is not valid is logged with its file:line, the groups in use are
 * kept, and the scans go on.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/pg.h"
#include "test.h"

#define REMINDER_PASSWORD "reminder-test-password"
#define AS_OF             "2026-03-03"

typedef struct setup_s {
    char notifications[256], actions[256];
    char conninfo[1024];
    char dir[512];
    char config[1024];
    char log[1024];
} setup_t;

static hub_codec_t *s_codec;

static pid_t start(const setup_t *s)
{
    const char *argv[] = {"hub-reminder", "--config", s->config, NULL};
    return hub_test_spawn(hub_test_service_binary("reminder"), argv, s->log);
}

/* Non-zero while pid runs (it is reaped if it exited). */
static int running(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

static char *read_log(const setup_t *s)
{
    char *log = hub_read_file(s->log, NULL, NULL, 0);
    return log ? log : strdup("");
}

static int log_count(const setup_t *s, const char *text)
{
    char *log = read_log(s);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* Waits until text occurs at least want times in the log; fails after timeout_ms. */
static void wait_log(const setup_t *s, pid_t pid, const char *text, int want, int timeout_ms)
{
    int64_t end = hub_monotonic_ms() + timeout_ms;
    while (log_count(s, text) < want) {
        if (!running(pid) || hub_monotonic_ms() > end) {
            char *log = read_log(s);
            fprintf(stderr, "%s\n", log);
            free(log);
            TEST_FAIL_("the log did not show \"%s\" %d times in %d ms", text, want, timeout_ms);
        }
        usleep(100 * 1000);
    }
}

static int line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    int line = 1;
    ASSERT_TRUE(at != NULL);
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

/* Writes the reminder's configuration with these groups (libconfig text inside ( ... )). */
static const char *write_config(setup_t *s, const char *groups)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "kafka = { %s };\n"
             "postgres = { conninfo = \"%s user=hub_reminder password=" REMINDER_PASSWORD "\"; };\n"
             "topics = { group_notifications = \"%s\"; meeting_actions = \"%s\"; };\n"
             "reminder = { interval_seconds = 1; now = \"" AS_OF "\";\n"
             "             http_listen = \"127.0.0.1:0\"; };\n"
             "groups = (\n%s);\n",
             hub_test_kafka_settings(), s->conninfo, s->notifications, s->actions, groups);
    hub_strlcpy(s->config, hub_test_write_file(s->dir, "hub.conf", text), sizeof(s->config));
    return s->config;
}

static void setup(setup_t *s)
{
    char errstr[512] = "", migrations[1024];
    int applied = 0;
    memset(s, 0, sizeof(*s));
    hub_test_topic("reload_reminders", 3, s->notifications, sizeof(s->notifications));
    hub_test_topic("reload_actions", 1, s->actions, sizeof(s->actions));
    hub_test_pg_db("reload_reminder", s->conninfo, sizeof(s->conninfo));
    hub_strlcpy(s->dir, hub_test_tmpdir(), sizeof(s->dir));
    snprintf(s->log, sizeof(s->log), "%s/reminder.log", s->dir);
    PGconn *c = hub_pg_connect(s->conninfo, NULL, 5000, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("%s", errstr);
    snprintf(migrations, sizeof(migrations), "%s/sql/migrations", hub_data_dir());
    ASSERT_OK(hub_pg_migrate(c, migrations, &applied, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_pg_exec(c, "ALTER ROLE hub_reminder WITH LOGIN PASSWORD '" REMINDER_PASSWORD "'",
                          errstr, sizeof(errstr)),
              errstr);
    PQfinish(c);
}

/*
 * The group ids of the GROUP_NOT_BRIEFED reminders on the topic, space
 * separated in the order read, reading until want arrived (or 15 s), then
 * a second more so an extra one is seen too.
 */
static int not_briefed(const setup_t *s, int want, char *ids, size_t size)
{
    hub_props_t props = {0};
    char errstr[512] = "", group[128];
    const char *topics[1] = {s->notifications};
    int got = 0;
    snprintf(group, sizeof(group), "test-reload-read-%s", hub_test_unique());
    hub_test_kafka_props(&props);
    hub_consumer_t *c = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("%s", errstr);
    ids[0] = '\0';
    int64_t end = hub_monotonic_ms() + 15000, extra_end = 0;
    while (hub_monotonic_ms() < (extra_end ? extra_end : end)) {
        if (got >= want && !extra_end)
            extra_end = hub_monotonic_ms() + 1000;
        rd_kafka_message_t *m = hub_consumer_poll(c, 100);
        if (!m)
            continue;
        hub_event_t ev;
        ASSERT_OK(hub_codec_decode(s_codec, m->payload, m->len, &ev, errstr, sizeof(errstr)),
                  errstr);
        rd_kafka_message_destroy(m);
        ASSERT_INT_EQ(ev.type, HUB_EVENT_REMINDER_DUE);
        ASSERT_INT_EQ(ev.u.reminder.kind, HUB_REMINDER_GROUP_NOT_BRIEFED);
        size_t used = strlen(ids);
        snprintf(ids + used, size - used, "%s%s", used ? " " : "", ev.u.reminder.group_id);
        got++;
    }
    hub_consumer_destroy(c);
    hub_props_clear(&props);
    return got;
}

#define GROUP_OLD                                                                                  \
    "  { id = \"board-old\"; name = \"Old board\"; emails = [ \"old@example.org\" ];\n"            \
    "    reminders = [ \"GROUP_NOT_BRIEFED\" ]; }"
#define GROUP_NEW                                                                                  \
    "  { id = \"board-new\"; name = \"New board\"; emails = [ \"new@example.org\" ];\n"            \
    "    reminders = [ \"GROUP_NOT_BRIEFED\" ]; }"
#define GROUP_BAD                                                                                  \
    "  { id = \"board-bad\"; name = \"Bad board\"; emails = [ \"bad@example.org\" ];\n"            \
    "    reminders = [ \"NOT_A_REMINDER\" ]; }"

static void test_reload_groups(void)
{
    setup_t s;
    char ids[1024], want[2048];

    setup(&s);
    write_config(&s, GROUP_OLD "\n");
    pid_t pid = start(&s);

    /* A never-briefed group is reminded once, by the first scan. */
    wait_log(&s, pid, "event=scan_done", 1, 15000);
    ASSERT_INT_EQ(not_briefed(&s, 1, ids, sizeof(ids)), 1);
    ASSERT_STR_EQ(ids, "board-old");

    /* A group added to the file: the next scan reminds it, and only it. */
    write_config(&s, GROUP_OLD ",\n" GROUP_NEW "\n");
    kill(pid, SIGHUP);
    wait_log(&s, pid, "event=config_reloaded reloaded=groups groups=2", 1, 5000);
    ASSERT_INT_EQ(not_briefed(&s, 2, ids, sizeof(ids)), 2);
    ASSERT_STR_CONTAINS(ids, "board-old");
    ASSERT_STR_CONTAINS(ids, "board-new");
    ASSERT_INT_EQ(log_count(&s, "event=config_restart_needed"), 0);

    /* A file that is not valid: one error line with file:line, the groups in use kept. */
    const char *bad = write_config(&s, GROUP_OLD ",\n" GROUP_BAD "\n");
    char *text = hub_read_file(bad, NULL, NULL, 0);
    snprintf(want, sizeof(want), "event=config_reload_failed error=\"%s:%d: ", bad,
             line_of(text, "NOT_A_REMINDER"));
    free(text);
    int scans = log_count(&s, "event=scan_done");
    kill(pid, SIGHUP);
    wait_log(&s, pid, want, 1, 5000);
    /* The scans go on, with both groups still known and nothing new to say. */
    wait_log(&s, pid, "event=scan_done", scans + 2, 10000);
    ASSERT_INT_EQ(log_count(&s, "event=config_reload_failed"), 1);
    ASSERT_INT_EQ(log_count(&s, "event=config_reloaded"), 1);
    ASSERT_INT_OP(log_count(&s, "produced=0 already_produced=2"), >=, 2);
    ASSERT_INT_EQ(not_briefed(&s, 2, ids, sizeof(ids)), 2);
    ASSERT_TRUE(running(pid));
    char *log = read_log(&s), body[4096];
    const char *listen = strstr(log, "event=http_listen");
    ASSERT_TRUE(listen != NULL && strstr(listen, "port=") != NULL);
    int port = atoi(strstr(listen, "port=") + 5);
    free(log);
    ASSERT_INT_EQ(hub_test_http_get(port, "/healthz", body, sizeof(body)), 200);

    kill(pid, SIGTERM);
    int status = 0;
    ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_INT_EQ(WEXITSTATUS(status), 0);
    ASSERT_INT_EQ(log_count(&s, "AddressSanitizer"), 0);
}

int main(void)
{
    char errstr[512] = "";
    s_codec = hub_codec_new(NULL, errstr, sizeof(errstr));
    if (!s_codec)
        TEST_FAIL_("%s", errstr);
    RUN_TEST(test_reload_groups);
    hub_codec_destroy(s_codec);
    return 0;
}
