/*
 * planner_support.h: helpers shared by the hub-planner tests (test_planner*.c):
 * run the real hub-planner binary against the real broker, publish flags and
 * read topics back. Header-only because the test build links each
 * test_*.c with support.c alone; every helper is static and may go unused.
 */
#ifndef HUB_TEST_PLANNER_SUPPORT_H
#define HUB_TEST_PLANNER_SUPPORT_H

#include <errno.h>
#include <libgen.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/deadletter.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/rules.h"
#include "test.h"

#define PT_FN static __attribute__((unused))

/* One planner deployment under test: its topics, group, files. */
typedef struct pt_setup_s {
    char flags[256], alerts[256], dlq[256];
    char group[128], txn[128];
    char dir[512];
    char conf[1024];
    char log[1024];
} pt_setup_t;

/* One record read back from a topic. */
typedef struct pt_record_s {
    int32_t partition;
    int64_t offset;
    int decoded; /* ev holds the decoded event */
    hub_event_t ev;
    char key[HUB_SUBJECT_KEY_SIZE + 8];
    char referred_on[16];  /* hub.planner.referred_on header */
    char dlq_class[32];    /* hub.errors.class header */
    char dlq_message[256]; /* hub.errors.message header */
} pt_record_t;

PT_FN hub_date_t pt_date(const char *text)
{
    hub_date_t d;
    if (hub_date_parse(text, &d) != 0)
        TEST_FAIL_("bad date in test: %s", text);
    return d;
}

PT_FN const char *pt_fmt(hub_date_t d)
{
    static char bufs[8][16];
    static int next;
    return hub_date_format(d, bufs[next++ % 8], sizeof(bufs[0]));
}

/* A valid subject key (64 lower-case hex) made from i and a per-run salt. */
PT_FN const char *pt_subject(unsigned salt, int i, char buf[HUB_SUBJECT_KEY_SIZE])
{
    snprintf(buf, HUB_SUBJECT_KEY_SIZE, "%08x%08x%048x", salt, (unsigned)i, (unsigned)(i * 7919));
    return buf;
}

PT_FN hub_event_t pt_flag(const char *subject, const char *agency, hub_local_authority_t la,
                          const char *dob, const char *flagged_on, hub_risk_set_t cats)
{
    hub_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_YOUNG_PERSON_FLAGGED;
    if (hub_uuid_v4(ev.event_id) != 0)
        TEST_FAIL_("hub_uuid_v4 failed");
    ev.occurred_at = hub_now_ms();
    hub_strlcpy(ev.source, agency, sizeof(ev.source));
    hub_strlcpy(ev.u.flagged.subject_key, subject, sizeof(ev.u.flagged.subject_key));
    ev.u.flagged.local_authority = la;
    ev.u.flagged.date_of_birth = pt_date(dob);
    ev.u.flagged.flagged_on = pt_date(flagged_on);
    ev.u.flagged.risk_categories = cats;
    return ev;
}

/* A program of the build tree: env overrides, else <build>/services/<rel>. Static buffer per call
 * site. */
PT_FN const char *pt_build_bin(const char *env_name, const char *rel, char *path, size_t size)
{
    const char *env = getenv(env_name);
    char exe[PATH_MAX];
    ssize_t n;

    if (env && *env)
        return env;
    /* The build tree puts tests in <build>/tests and programs in <build>/services/<name>. */
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        TEST_FAIL_("cannot read /proc/self/exe");
    exe[n] = '\0';
    snprintf(path, size, "%s/services/%s", dirname(dirname(exe)), rel);
    if (access(path, X_OK) != 0)
        TEST_FAIL_("%s not found (set %s)", path, env_name);
    return path;
}

PT_FN const char *pt_planner_bin(void)
{
    static char path[PATH_MAX];
    return pt_build_bin("HUB_PLANNER_BIN", "planner/hub-planner", path, sizeof(path));
}

PT_FN const char *pt_hubctl_bin(void)
{
    static char path[PATH_MAX];
    return pt_build_bin("HUB_HUBCTL_BIN", "hubctl/hubctl", path, sizeof(path));
}

/* Writes a planner configuration file dir/name and returns its path (static rotation). */
PT_FN const char *pt_conf(const pt_setup_t *s, const char *name, const char *group, const char *txn,
                          int batch_max, const char *planner_extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "kafka = {%s };\n"
             "topics = { risk_flags = \"%s\"; transition_alerts = \"%s\"; dead_letters = \"%s\"; "
             "};\n"
             "log = { level = \"info\"; };\n"
             "planner = {\n"
             "  group_id = \"%s\";\n"
             "  transactional_id = \"%s\";\n"
             "  batch_max = %d;\n"
             "  batch_ms = 50;\n"
             "  progress_ms = 2000;\n"
             "  http_listen = \"127.0.0.1:0\";\n"
             "  %s\n"
             "};\n",
             hub_test_kafka_settings(), s->flags, s->alerts, s->dlq, group, txn, batch_max,
             planner_extra ? planner_extra : "");
    return hub_test_write_file(s->dir, name, text);
}

PT_FN void pt_setup(pt_setup_t *s, const char *name, int batch_max, const char *planner_extra)
{
    memset(s, 0, sizeof(*s));
    hub_test_topic("planner_flags", 3, s->flags, sizeof(s->flags));
    hub_test_topic("planner_alerts", 3, s->alerts, sizeof(s->alerts));
    hub_test_topic("planner_dlq", 3, s->dlq, sizeof(s->dlq));
    snprintf(s->group, sizeof(s->group), "planner-%s-%s", name, hub_test_unique());
    snprintf(s->txn, sizeof(s->txn), "planner-%s-%s", name, hub_test_unique());
    hub_strlcpy(s->dir, hub_test_tmpdir(), sizeof(s->dir));
    hub_strlcpy(s->conf, pt_conf(s, "planner.conf", s->group, s->txn, batch_max, planner_extra),
                sizeof(s->conf));
    snprintf(s->log, sizeof(s->log), "%s/planner.log", s->dir);
}

PT_FN void pt_show_log(const pt_setup_t *s)
{
    char cmd[1200];
    fprintf(stderr, "---- last lines of %s ----\n", s->log);
    snprintf(cmd, sizeof(cmd), "tail -n 40 '%s' >&2", s->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

/* Planners still running; a failing test must not leave them behind. */
static pid_t pt_children[16];

static void pt_forget(pid_t pid)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(pt_children); i++)
        if (pt_children[i] == pid)
            pt_children[i] = 0;
}

static void pt_kill_children(void)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(pt_children); i++) {
        if (pt_children[i] > 0) {
            kill(pt_children[i], SIGKILL);
            waitpid(pt_children[i], NULL, 0);
        }
    }
}

/* Starts hub-planner --config conf with its output appended to log. */
PT_FN pid_t pt_spawn_log(const char *conf, const char *log)
{
    static int registered;
    const char *bin = pt_planner_bin();
    pid_t pid;

    if (!registered++)
        atexit(pt_kill_children);

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        TEST_FAIL_("fork: %s", strerror(errno));
    if (pid == 0) {
        if (!freopen(log, "a", stderr) || !freopen(log, "a", stdout))
            _exit(127);
        execl(bin, "hub-planner", "--config", conf, (char *)NULL);
        _exit(127);
    }
    for (size_t i = 0; i < HUB_ARRAY_LEN(pt_children); i++) {
        if (pt_children[i] == 0) {
            pt_children[i] = pid;
            break;
        }
    }
    return pid;
}

PT_FN pid_t pt_spawn(const pt_setup_t *s, const char *conf)
{
    return pt_spawn_log(conf, s->log);
}

/* Waits until file path contains text (failing after timeout_ms). */
PT_FN void pt_wait_log(const char *path, const char *text, int timeout_ms)
{
    int64_t deadline = hub_monotonic_ms() + timeout_ms;
    for (;;) {
        char *content = hub_read_file(path, NULL, NULL, 0);
        int found = content && strstr(content, text);
        free(content);
        if (found)
            return;
        if (hub_monotonic_ms() > deadline)
            TEST_FAIL_("%s did not show \"%s\" in %d ms", path, text, timeout_ms);
        usleep(100 * 1000);
    }
}

PT_FN void pt_stop(const pt_setup_t *s, pid_t pid)
{
    int status = 0;
    if (kill(pid, SIGTERM) != 0)
        TEST_FAIL_("kill: %s", strerror(errno));
    if (waitpid(pid, &status, 0) != pid)
        TEST_FAIL_("waitpid: %s", strerror(errno));
    pt_forget(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        pt_show_log(s);
        TEST_FAIL_("hub-planner did not exit 0 after SIGTERM (status 0x%x)", status);
    }
}

PT_FN void pt_kill(pid_t pid)
{
    int status;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    pt_forget(pid);
}

PT_FN hub_codec_t *pt_codec(void)
{
    char errstr[512] = "";
    char dir[1024];
    hub_codec_opts_t opts = {0};
    snprintf(dir, sizeof(dir), "%s/schemas", hub_test_env("HUB_DATA_DIR"));
    opts.schemas_dir = dir;
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("hub_codec_new: %s", errstr);
    return c;
}

PT_FN hub_producer_t *pt_producer(void)
{
    hub_props_t props = {0};
    char errstr[512] = "";
    hub_test_kafka_props(&props);
    hub_props_set(&props, "linger.ms", "5");
    hub_producer_t *p = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    hub_props_clear(&props);
    if (!p)
        TEST_FAIL_("hub_producer_new: %s", errstr);
    return p;
}

PT_FN void pt_send_raw(hub_producer_t *p, const char *topic, const char *key, const void *value,
                       size_t len)
{
    char errstr[512] = "";
    ASSERT_OK(hub_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, key ? strlen(key) : 0, value,
                                len, NULL, errstr, sizeof(errstr)),
              errstr);
}

PT_FN void pt_send(hub_producer_t *p, hub_codec_t *c, const char *topic, const hub_event_t *ev,
                   const char *key)
{
    hub_buf_t buf = {0};
    char errstr[512] = "";
    ASSERT_OK(hub_codec_encode(c, ev, &buf, errstr, sizeof(errstr)), errstr);
    pt_send_raw(p, topic, key ? key : hub_event_key(ev), buf.data, buf.len);
    hub_buf_free(&buf);
}

PT_FN void pt_flush(hub_producer_t *p)
{
    char errstr[512] = "";
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
}

/* A consumer handle for admin-ish reads (no subscription). */
PT_FN rd_kafka_t *pt_consumer_rk(const char *group, int read_committed, int eof)
{
    hub_props_t props = {0};
    char errstr[512] = "";
    hub_test_kafka_props(&props);
    hub_props_set(&props, "group.id", group);
    hub_props_set(&props, "enable.auto.commit", "false");
    hub_props_set(&props, "isolation.level",
                  read_committed ? "read_committed" : "read_uncommitted");
    hub_props_set(&props, "enable.partition.eof", eof ? "true" : "false");
    rd_kafka_conf_t *conf = hub_kafka_conf_new(&props, NULL, errstr, sizeof(errstr));
    hub_props_clear(&props);
    if (!conf)
        TEST_FAIL_("conf: %s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk)
        TEST_FAIL_("rd_kafka_new: %s", errstr);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

PT_FN int pt_partitions(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int n;
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err)
        TEST_FAIL_("metadata for %s: %s", topic, rd_kafka_err2str(err));
    n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Non-zero when any of pids has exited (reaping it). */
PT_FN int pt_any_exited(const pid_t *pids, int npids)
{
    for (int i = 0; i < npids; i++) {
        int status;
        if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
            pt_forget(pids[i]);
            return 1;
        }
    }
    return 0;
}

PT_FN void pt_wait_caught_up(const pt_setup_t *s, const char *group, const char *topic,
                             const pid_t *pids, int npids, int timeout_ms)
{
    rd_kafka_t *rk = pt_consumer_rk(group, 1, 0);
    int n = pt_partitions(rk, topic);
    int64_t deadline = hub_monotonic_ms() + timeout_ms;
    int done = 0;

    while (!done) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
        int64_t high[64];
        for (int i = 0; i < n; i++) {
            int64_t lo;
            rd_kafka_topic_partition_list_add(l, topic, i);
            if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &high[i], 10000))
                TEST_FAIL_("watermarks of %s [%d]", topic, i);
        }
        done = rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; done && i < n; i++)
            done = high[i] == 0 || l->elems[i].offset >= high[i];
        rd_kafka_topic_partition_list_destroy(l);
        if (done)
            break;
        if (pt_any_exited(pids, npids)) {
            pt_show_log(s);
            TEST_FAIL_("hub-planner exited before catching up with %s", topic);
        }
        if (hub_monotonic_ms() > deadline) {
            pt_show_log(s);
            TEST_FAIL_("group %s did not catch up with %s in %d ms", group, topic, timeout_ms);
        }
        usleep(200 * 1000);
    }
    rd_kafka_destroy(rk);
}

PT_FN void pt_header(rd_kafka_message_t *m, const char *name, char *out, size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *val = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR && val) {
        if (len >= size)
            len = size - 1;
        memcpy(out, val, len);
        out[len] = '\0';
    }
}

/* The port hub-planner's operations endpoint listens on, from its (last) log line saying so. */
PT_FN int pt_http_port(const char *log)
{
    char *text = hub_read_file(log, NULL, NULL, 0), *at = text, *last = NULL;
    int port = 0;
    while (at && (at = strstr(at, "event=http_listen")))
        last = at++;
    if (!last || !(last = strstr(last, " port=")) || sscanf(last, " port=%d", &port) != 1)
        TEST_FAIL_("no event=http_listen line with a port in %s", log);
    free(text);
    return port;
}

/* GET http://127.0.0.1:port/path: the body (1 MiB buffer, caller frees) and *status. */
PT_FN char *pt_http_get(int port, const char *path, int *status)
{
    char *body = calloc(1, 1 << 20);
    if (!body)
        TEST_FAIL_("out of memory");
    *status = (int)hub_test_http_get(port, path, body, 1 << 20);
    return body;
}

/* The value of one series ("name{labels}") in a Prometheus text exposition, or -1. */
PT_FN double pt_metric(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL)
        if (strncmp(line, series, len) == 0 && line[len] == ' ')
            return strtod(line + len + 1, NULL);
    return -1;
}

/* Reads topic from the beginning to its end into a new array (caller frees). */
PT_FN pt_record_t *pt_read_all(hub_codec_t *c, const char *topic, int read_committed, size_t *nout)
{
    char group[128];
    snprintf(group, sizeof(group), "pt-reader-%s", hub_test_unique());
    rd_kafka_t *rk = pt_consumer_rk(group, read_committed, 1);
    int np = pt_partitions(rk, topic), eof[64] = {0}, neof = 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(np);
    size_t n = 0, cap = 1024;
    pt_record_t *recs = malloc(cap * sizeof(*recs));
    int64_t deadline = hub_monotonic_ms() + 60000;

    for (int i = 0; i < np; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, l))
        TEST_FAIL_("assign %s", topic);
    rd_kafka_topic_partition_list_destroy(l);
    while (neof < np) {
        if (hub_monotonic_ms() > deadline)
            TEST_FAIL_("reading %s to its end took over 60 s", topic);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!eof[m->partition]++)
                neof++;
        } else if (m->err) {
            TEST_FAIL_("consume %s: %s", topic, rd_kafka_message_errstr(m));
        } else {
            char errstr[256];
            if (eof[m->partition]) {
                eof[m->partition] = 0;
                neof--;
            }
            if (n == cap)
                recs = realloc(recs, (cap *= 2) * sizeof(*recs));
            pt_record_t *r = &recs[n++];
            memset(r, 0, sizeof(*r));
            r->partition = m->partition;
            r->offset = m->offset;
            snprintf(r->key, sizeof(r->key), "%.*s", (int)m->key_len, (const char *)m->key);
            r->decoded =
                hub_codec_decode(c, m->payload, m->len, &r->ev, errstr, sizeof(errstr)) == HUB_OK;
            pt_header(m, HUB_RULES_HEADER_REFERRED_ON, r->referred_on, sizeof(r->referred_on));
            pt_header(m, HUB_DLQ_HEADER_CLASS, r->dlq_class, sizeof(r->dlq_class));
            pt_header(m, HUB_DLQ_HEADER_MESSAGE, r->dlq_message, sizeof(r->dlq_message));
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *nout = n;
    return recs;
}

/* Records in topic right now (read_committed or not), counted from the watermarks' view. */
PT_FN size_t pt_count(hub_codec_t *c, const char *topic, int read_committed)
{
    size_t n;
    free(pt_read_all(c, topic, read_committed, &n));
    return n;
}

#endif
