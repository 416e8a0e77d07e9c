/*
 * test_reload_notifier.c: SIGHUP makes hub-notifier read its named groups
 * again. A reminder for a group added to the file is mailed to it; a changed
 * SMTP setting is reported as needing a restart; a file that is not valid is
 * logged with its file:line, the groups in use are kept, and mail keeps
 * flowing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/pg.h"
#include "test.h"

#define NOTIFIER_PASSWORD "notifier-test-password"

typedef struct setup_s {
    char notifications[256], actions[256], dlq[256];
    char conninfo[1024];
    char dir[512];
    char config[1024];
    char log[1024];
    char group[128];
    char token[64]; /* in every address of this run, to find its mails */
} setup_t;

static hub_codec_t *s_codec;
static hub_producer_t *s_producer;

static pid_t start(const setup_t *s)
{
    const char *argv[] = {"hub-notifier", "--config", s->config, NULL};
    return hub_test_spawn(hub_test_service_binary("notifier"), argv, s->log);
}

static int running(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

static char *read_text(const char *path)
{
    char *t = hub_read_file(path, NULL, NULL, 0);
    return t ? t : strdup("");
}

static int log_count(const setup_t *s, const char *text)
{
    char *log = read_text(s->log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, text)) != NULL; p++)
        n++;
    free(log);
    return n;
}

static void wait_log(const setup_t *s, pid_t pid, const char *text, int timeout_ms)
{
    int64_t end = hub_monotonic_ms() + timeout_ms;
    while (log_count(s, text) < 1) {
        if (!running(pid) || hub_monotonic_ms() > end) {
            char *log = read_text(s->log);
            fprintf(stderr, "%s\n", log);
            free(log);
            TEST_FAIL_("the log did not show \"%s\" in %d ms", text, timeout_ms);
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

/* Mails in the test server's Maildir whose X-Envelope-To contains needle. */
static int mail_count(const char *needle)
{
    static const char *const sub[] = {"new", "cur"};
    int n = 0;
    for (size_t d = 0; d < HUB_ARRAY_LEN(sub); d++) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s", hub_test_env("HUB_MAILDIR"), sub[d]);
        DIR *dh = opendir(dir);
        ASSERT_TRUE(dh != NULL);
        for (struct dirent *e; (e = readdir(dh)) != NULL;) {
            char path[2048];
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            char *text = read_text(path);
            for (const char *line = text; line && *line && *line != '\r' && *line != '\n';) {
                if (strncasecmp(line, "X-Envelope-To:", 14) == 0) {
                    char value[1024];
                    snprintf(value, sizeof(value), "%.*s", (int)strcspn(line, "\r\n"), line);
                    n += strstr(value, needle) != NULL;
                    break;
                }
                line = strchr(line, '\n');
                if (line)
                    line++;
            }
            free(text);
        }
        closedir(dh);
    }
    return n;
}

/* Waits until want mails for needle arrived (or timeout_ms), then returns how many there are. */
static int wait_mails(const char *needle, int want, int timeout_ms)
{
    int64_t end = hub_monotonic_ms() + timeout_ms;
    int n;
    while ((n = mail_count(needle)) < want && hub_monotonic_ms() < end)
        usleep(100 * 1000);
    return n;
}

/* An address of this run for group name. */
static const char *address(const setup_t *s, const char *name)
{
    static char buf[4][256];
    static int next;
    char *a = buf[next++ % 4];
    snprintf(a, 256, "%s-%s@example.org", name, s->token);
    return a;
}

/* libconfig text of one group subscribing to plan reminders. */
static const char *group_text(const setup_t *s, const char *id, const char *reminder)
{
    static char buf[4][512];
    static int next;
    char *g = buf[next++ % 4];
    snprintf(g, 512,
             "  { id = \"%s\"; name = \"Board %s\"; emails = [ \"%s\" ];\n"
             "    reminders = [ \"%s\" ]; }",
             id, id, address(s, id), reminder);
    return g;
}

/* Writes the notifier's configuration: groups inside ( ... ), the SMTP timeout in ms. */
static const char *write_config(setup_t *s, const char *groups, int smtp_timeout_ms)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "kafka = { %s };\n"
             "postgres = { conninfo = \"%s user=hub_notifier password=" NOTIFIER_PASSWORD "\"; };\n"
             "topics = { group_notifications = \"%s\"; meeting_actions = \"%s\";\n"
             "           dead_letters = \"%s\"; };\n"
             "notifier = {\n"
             "  consumer_group = \"%s\";\n"
             "  smtp = { url = \"%s\"; starttls = \"none\"; timeout_ms = %d; };\n"
             "  http_listen = \"127.0.0.1:0\";\n"
             "};\n"
             "groups = (\n%s);\n",
             hub_test_kafka_settings(), s->conninfo, s->notifications, s->actions, s->dlq, s->group,
             hub_test_env("HUB_SMTP_URL"), smtp_timeout_ms, groups);
    hub_strlcpy(s->config, hub_test_write_file(s->dir, "hub.conf", text), sizeof(s->config));
    return s->config;
}

static void setup(setup_t *s)
{
    char errstr[512] = "", migrations[1024];
    int applied = 0;
    memset(s, 0, sizeof(*s));
    hub_test_topic("reload_notifications", 3, s->notifications, sizeof(s->notifications));
    hub_test_topic("reload_actions", 1, s->actions, sizeof(s->actions));
    hub_test_topic("reload_dlq", 1, s->dlq, sizeof(s->dlq));
    hub_test_pg_db("reload_notifier", s->conninfo, sizeof(s->conninfo));
    hub_strlcpy(s->dir, hub_test_tmpdir(), sizeof(s->dir));
    snprintf(s->log, sizeof(s->log), "%s/notifier.log", s->dir);
    snprintf(s->group, sizeof(s->group), "notifier-reload-%s", hub_test_unique());
    snprintf(s->token, sizeof(s->token), "reload%s", hub_test_unique());
    for (char *p = s->token; *p; p++)
        if (*p == '_')
            *p = '-';
    PGconn *c = hub_pg_connect(s->conninfo, NULL, 5000, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("%s", errstr);
    snprintf(migrations, sizeof(migrations), "%s/sql/migrations", hub_data_dir());
    ASSERT_OK(hub_pg_migrate(c, migrations, &applied, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_pg_exec(c, "ALTER ROLE hub_notifier WITH LOGIN PASSWORD '" NOTIFIER_PASSWORD "'",
                          errstr, sizeof(errstr)),
              errstr);
    PQfinish(c);
}

/* Produces a GROUP_NOT_BRIEFED reminder for group_id (no young person in it). */
static void send_reminder(const setup_t *s, const char *group_id)
{
    char errstr[512] = "";
    hub_event_t ev;
    hub_buf_t buf = {0};
    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_REMINDER_DUE;
    ASSERT_INT_EQ(hub_uuid_v4(ev.event_id), 0);
    ev.occurred_at = hub_now_ms();
    hub_strlcpy(ev.source, "hub-reminder", sizeof(ev.source));
    hub_strlcpy(ev.u.reminder.group_id, group_id, sizeof(ev.u.reminder.group_id));
    ev.u.reminder.kind = HUB_REMINDER_GROUP_NOT_BRIEFED;
    ASSERT_INT_EQ(hub_date_parse("2026-03-03", &ev.u.reminder.as_of), 0);
    const char *key = hub_event_key(&ev);
    ASSERT_OK(hub_codec_encode(s_codec, &ev, &buf, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_producer_send(s_producer, s->notifications, RD_KAFKA_PARTITION_UA, key,
                                strlen(key), buf.data, buf.len, NULL, errstr, sizeof(errstr)),
              errstr);
    hub_buf_free(&buf);
    ASSERT_OK(hub_producer_flush(s_producer, 30000, errstr, sizeof(errstr)), errstr);
}

static void test_reload_groups(void)
{
    setup_t s;
    char groups[2048], want[2048], needle[256];

    setup(&s);
    write_config(&s, group_text(&s, "board-a", "GROUP_NOT_BRIEFED"), 10000);
    pid_t pid = start(&s);

    /* The group of the start gets its mail. */
    send_reminder(&s, "board-a");
    snprintf(needle, sizeof(needle), "board-a-%s@", s.token);
    ASSERT_INT_EQ(wait_mails(needle, 1, 15000), 1);

    /* A group added, and an SMTP setting that only a restart can change. */
    snprintf(groups, sizeof(groups), "%s,\n%s\n", group_text(&s, "board-a", "GROUP_NOT_BRIEFED"),
             group_text(&s, "board-b", "GROUP_NOT_BRIEFED"));
    write_config(&s, groups, 20000);
    kill(pid, SIGHUP);
    wait_log(&s, pid, "event=config_reloaded reloaded=groups groups=2", 5000);
    wait_log(&s, pid, "event=config_restart_needed settings=notifier.smtp.timeout_ms ", 1000);
    send_reminder(&s, "board-b");
    snprintf(needle, sizeof(needle), "board-b-%s@", s.token);
    ASSERT_INT_EQ(wait_mails(needle, 1, 10000), 1);

    /* A file that is not valid: one error line with file:line, the groups in use kept. */
    snprintf(groups, sizeof(groups), "%s,\n%s\n", group_text(&s, "board-a", "GROUP_NOT_BRIEFED"),
             group_text(&s, "board-c", "NOT_A_REMINDER"));
    const char *bad = write_config(&s, groups, 20000);
    char *text = read_text(bad);
    snprintf(want, sizeof(want), "event=config_reload_failed error=\"%s:%d: ", bad,
             line_of(text, "NOT_A_REMINDER"));
    free(text);
    kill(pid, SIGHUP);
    wait_log(&s, pid, want, 5000);
    /* board-b, known only to the configuration in use, still gets its mail. */
    send_reminder(&s, "board-b");
    ASSERT_INT_EQ(wait_mails(needle, 2, 10000), 2);
    ASSERT_INT_EQ(log_count(&s, "event=config_reload_failed"), 1);
    ASSERT_INT_EQ(log_count(&s, "event=config_reloaded"), 1);
    ASSERT_INT_EQ(log_count(&s, "event=config_restart_needed"), 1);
    ASSERT_TRUE(running(pid));

    kill(pid, SIGTERM);
    int status = 0;
    ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_INT_EQ(WEXITSTATUS(status), 0);
    /* Addresses are configuration, not mail content: none of them is logged. */
    ASSERT_INT_EQ(log_count(&s, s.token), 0);
    ASSERT_INT_EQ(log_count(&s, "AddressSanitizer"), 0);
}

int main(void)
{
    char errstr[512] = "";
    hub_props_t props = {0};
    s_codec = hub_codec_new(NULL, errstr, sizeof(errstr));
    if (!s_codec)
        TEST_FAIL_("%s", errstr);
    hub_test_kafka_props(&props);
    s_producer = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    hub_props_clear(&props);
    if (!s_producer)
        TEST_FAIL_("%s", errstr);
    RUN_TEST(test_reload_groups);
    hub_producer_destroy(s_producer);
    hub_codec_destroy(s_codec);
    return 0;
}
