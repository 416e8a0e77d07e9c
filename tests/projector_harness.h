/*
 * projector_harness.h: what the hub-projector tests share (included by each
 * tests/test_projector*.c, which are separate executables): fresh topics and a
 * fresh database per test, the real hub-projector binary run as a child
 * process, events built as hub_event_t and produced through the codec, and a
 * seeded workload whose expected final tables the test computes itself.
 */
#ifndef HUB_PROJECTOR_HARNESS_H
#define HUB_PROJECTOR_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/pg.h"
#include "test.h"

/* Each test uses some of these helpers. */
#define PH_UNUSED   __attribute__((unused))
#define PH_PASSWORD "projector-test-password"
#define PH_NTOPICS  6
#define PH_NS       "9b1d4e2a-5c3f-4e8b-a7d6-0f2e1c3b4a59"

/* Topic settings in the order of ph_env_t.topics. */
static const char *const ph_topic_settings[PH_NTOPICS] = {
    "risk_flags",      "transition_alerts",   "transition_plans",
    "meeting_actions", "group_notifications", "dead_letters"};

typedef struct {
    char topics[PH_NTOPICS][256];
    int partitions;
    char db_admin[1024];     /* conninfo of the fresh database as the admin */
    char db_projector[1200]; /* ... as hub_projector */
    char group[128];
    const char *dir;
    char config[1024];
    char log[1024];
    hub_codec_t *codec;
    hub_producer_t *producer;
    pid_t pid;
    int instance;            /* group.instance.id suffix: two instances need two configs */
    int dynamic_membership;  /* no group.instance.id: the production default */
    const char *kafka_extra; /* more kafka { } properties, e.g. "fetch_wait_max_ms = \"10\";" */
} ph_env_t;

/* The topic an event type goes to. */
static const char *ph_topic_of(ph_env_t *e, hub_event_type_t type)
{
    const char *setting = hub_event_topic_setting(type);
    for (int i = 0; i < PH_NTOPICS; i++)
        if (setting && strcmp(setting, ph_topic_settings[i]) == 0)
            return e->topics[i];
    TEST_FAIL_("no topic for event type %d", (int)type);
    return NULL;
}

PH_UNUSED static PGconn *ph_connect(const char *conninfo)
{
    char errstr[512] = "";
    PGconn *c = hub_pg_connect(conninfo, NULL, 10000, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("connect: %s", errstr);
    return c;
}

PH_UNUSED static void ph_exec(PGconn *c, const char *sql)
{
    char errstr[512] = "";
    if (hub_pg_exec(c, sql, errstr, sizeof(errstr)) != HUB_OK)
        TEST_FAIL_("%s: %s", sql, errstr);
}

/* Every row of sql as "a|b|c\n" lines, in one malloc'd string. */
PH_UNUSED static char *ph_rows(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    size_t cap = 1024, len = 0;
    char *out = malloc(cap);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        TEST_FAIL_("%s: %s", sql, PQerrorMessage(c));
    out[0] = '\0';
    for (int r = 0; r < PQntuples(res); r++) {
        for (int f = 0; f < PQnfields(res); f++) {
            const char *v = PQgetvalue(res, r, f);
            size_t need = len + strlen(v) + 3;
            if (need > cap) {
                while (need > cap)
                    cap *= 2;
                out = realloc(out, cap);
            }
            len += (size_t)sprintf(out + len, "%s%s", f ? "|" : "", v);
        }
        if (len + 2 > cap)
            out = realloc(out, cap *= 2);
        out[len++] = '\n';
        out[len] = '\0';
    }
    PQclear(res);
    return out;
}

/* The single value of sql, as a number. */
PH_UNUSED static long long ph_num(PGconn *c, const char *sql)
{
    char *s = ph_rows(c, sql);
    long long v = atoll(s);
    free(s);
    return v;
}

/* Where hub-projector was built, next to this test's build directory. */
static const char *ph_binary(void)
{
    static char path[4096];
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        TEST_FAIL_("cannot read /proc/self/exe");
    self[n] = '\0';
    snprintf(path, sizeof(path), "%s/../services/projector/hub-projector", dirname(self));
    if (access(path, X_OK) != 0)
        TEST_FAIL_("%s: not built", path);
    return path;
}

/* Writes the projector's configuration; extra is appended inside projector { }. */
PH_UNUSED static void ph_write_config(ph_env_t *e, const char *extra)
{
    char text[8192], membership[512] = "";
    /* Static membership lets a restarted instance take its partitions back at once. */
    if (!e->dynamic_membership)
        snprintf(membership, sizeof(membership), "group_instance_id = \"%s-%d\";", e->group,
                 e->instance ? e->instance : 1);
    int n = snprintf(text, sizeof(text),
                     "kafka = {%s %s session_timeout_ms = \"6000\"; %s };\n"
                     "postgres = { conninfo = \"%s\"; };\n"
                     "log = { level = \"info\"; };\n"
                     "topics = {\n",
                     hub_test_kafka_settings(), membership, e->kafka_extra ? e->kafka_extra : "",
                     e->db_projector);
    for (int i = 0; i < PH_NTOPICS; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "  %s = \"%s\";\n", ph_topic_settings[i],
                      e->topics[i]);
    snprintf(text + n, sizeof(text) - (size_t)n,
             "};\nprojector = {\n  group_id = \"%s\";\n  migrate_conninfo = \"%s\";\n"
             /* Any free port: several projectors may run at once. */
             "  http_listen = \"127.0.0.1:0\";\n%s\n};\n",
             e->group, e->db_admin, extra ? extra : "");
    char name[32];
    snprintf(name, sizeof(name), "hub-%d.conf", e->instance ? e->instance : 1);
    snprintf(e->config, sizeof(e->config), "%s", hub_test_write_file(e->dir, name, text));
}

/*
 * Fresh topics, a fresh migrated database with passwords for the roles the
 * tests log in as, a producer and a configuration file.
 */
PH_UNUSED static void ph_setup(ph_env_t *e, const char *prefix, int partitions, const char *extra)
{
    char errstr[512] = "", sql[512];
    hub_props_t props = {0};
    hub_codec_opts_t copts = {0};
    static const char *const roles[] = {"hub_projector",    "hub_subgroup",
                                        "hub_la_leicester", "hub_la_leicestershire",
                                        "hub_la_rutland",   "hub_reminder"};
    int applied = 0;

    memset(e, 0, sizeof(*e));
    e->partitions = partitions;
    for (int i = 0; i < PH_NTOPICS; i++)
        hub_test_topic(prefix, partitions, e->topics[i], sizeof(e->topics[i]));
    hub_test_pg_db(prefix, e->db_admin, sizeof(e->db_admin));
    snprintf(e->db_projector, sizeof(e->db_projector), "%s user=hub_projector password=%s",
             e->db_admin, PH_PASSWORD);
    snprintf(e->group, sizeof(e->group), "projector-%s-%s", prefix, hub_test_unique());
    e->dir = strdup(hub_test_tmpdir());
    snprintf(e->log, sizeof(e->log), "%s/projector.log", e->dir);

    PGconn *c = ph_connect(e->db_admin);
    snprintf(sql, sizeof(sql), "%s/sql/migrations", hub_data_dir());
    if (hub_pg_migrate(c, sql, &applied, errstr, sizeof(errstr)) != HUB_OK)
        TEST_FAIL_("migrate: %s", errstr);
    for (size_t i = 0; i < HUB_ARRAY_LEN(roles); i++) {
        snprintf(sql, sizeof(sql), "ALTER ROLE %s PASSWORD '%s'", roles[i], PH_PASSWORD);
        ph_exec(c, sql);
    }
    PQfinish(c);

    e->codec = hub_codec_new(&copts, errstr, sizeof(errstr));
    if (!e->codec)
        TEST_FAIL_("codec: %s", errstr);
    hub_test_kafka_props(&props);
    hub_props_set(&props, "linger.ms", "5");
    e->producer = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    hub_props_clear(&props);
    if (!e->producer)
        TEST_FAIL_("producer: %s", errstr);
    ph_write_config(e, extra);
    fprintf(stderr, "   database %s, config %s, log %s\n", strrchr(e->db_admin, '=') + 1, e->config,
            e->log);
}

/*
 * Another projector of e's: same topics, database and group, its own instance
 * id (instance, 2 or more), configuration and log. It shares e's producer and
 * codec, so only e is torn down.
 */
PH_UNUSED static void ph_another_instance(ph_env_t *out, const ph_env_t *e, int instance,
                                          const char *extra)
{
    *out = *e;
    out->instance = instance;
    out->pid = 0;
    out->producer = NULL;
    out->codec = NULL;
    ph_write_config(out, extra);
    snprintf(out->log, sizeof(out->log), "%s/projector-%d.log", e->dir, instance);
}

PH_UNUSED static void ph_teardown(ph_env_t *e)
{
    hub_producer_destroy(e->producer);
    hub_codec_destroy(e->codec);
    free((void *)e->dir);
}

/* Starts hub-projector with the test's configuration, its output appended to the log. */
PH_UNUSED static void ph_start(ph_env_t *e)
{
    const char *bin = ph_binary();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        TEST_FAIL_("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only async-signal-safe calls here: other threads may hold stdio locks. A
           failing test exits at once; the projector must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(127);
        execl(bin, bin, "--config", e->config, (char *)NULL);
        _exit(127);
    }
    e->pid = pid;
}

/* Sends sig and waits; returns the exit status (128 + signal when killed). */
PH_UNUSED static int ph_stop(ph_env_t *e, int sig)
{
    int status = 0;
    if (e->pid <= 0)
        return -1;
    kill(e->pid, sig);
    if (waitpid(e->pid, &status, 0) < 0)
        TEST_FAIL_("waitpid: %s", strerror(errno));
    e->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The port the projector's operations endpoints listen on, from its log (0: not yet). */
PH_UNUSED static int ph_http_port(ph_env_t *e)
{
    char line[1024];
    int port = 0;
    FILE *f = fopen(e->log, "r");
    while (f && fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, "event=http_listen ");
        if (at && strstr(at, " port="))
            port = atoi(strstr(at, " port=") + 6);
    }
    if (f)
        fclose(f);
    return port;
}

/* Fails the test (after printing the projector's log) if it has exited. */
PH_UNUSED static void ph_check_alive(ph_env_t *e)
{
    int status;
    if (e->pid > 0 && waitpid(e->pid, &status, WNOHANG) == e->pid) {
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "tail -n 40 %s >&2", e->log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        e->pid = 0;
        TEST_FAIL_("hub-projector exited (status %d)", status);
    }
}

PH_UNUSED static void ph_send_raw(ph_env_t *e, const char *topic, const char *key,
                                  const void *value, size_t len)
{
    char errstr[512] = "";
    if (hub_producer_send(e->producer, topic, RD_KAFKA_PARTITION_UA, key, key ? strlen(key) : 0,
                          value, len, NULL, errstr, sizeof(errstr)) != HUB_OK)
        TEST_FAIL_("produce: %s", errstr);
}

PH_UNUSED static void ph_send(ph_env_t *e, const hub_event_t *ev)
{
    static hub_buf_t buf;
    char errstr[512] = "";
    if (hub_codec_encode(e->codec, ev, &buf, errstr, sizeof(errstr)) != HUB_OK)
        TEST_FAIL_("encode %s: %s", ev->event_id, errstr);
    ph_send_raw(e, ph_topic_of(e, ev->type), hub_event_key(ev), buf.data, buf.len);
}

PH_UNUSED static void ph_flush(ph_env_t *e)
{
    char errstr[512] = "";
    if (hub_producer_flush(e->producer, 60000, errstr, sizeof(errstr)) != HUB_OK)
        TEST_FAIL_("flush: %s", errstr);
}

/*
 * Waits until PostgreSQL's stored offsets reach the end of every partition of
 * every topic (dead letters included), i.e. everything produced is projected.
 */
PH_UNUSED static void ph_wait_caught_up(ph_env_t *e, int timeout_s)
{
    PGconn *c = NULL;
    rd_kafka_t *rk = hub_producer_handle(e->producer);
    time_t deadline = time(NULL) + timeout_s;
    char sql[1024];

    for (;;) {
        int behind = 0;
        ph_check_alive(e);
        if (!c || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = PQconnectdb(e->db_admin);
        }
        for (int t = 0; t < PH_NTOPICS && !behind && PQstatus(c) == CONNECTION_OK; t++) {
            for (int p = 0; p < e->partitions && !behind; p++) {
                int64_t lo = 0, hi = 0;
                if (rd_kafka_query_watermark_offsets(rk, e->topics[t], p, &lo, &hi, 10000))
                    TEST_FAIL_("watermarks of %s/%d", e->topics[t], p);
                snprintf(sql, sizeof(sql),
                         "SELECT coalesce((SELECT next_offset FROM hub_consumer_offsets WHERE"
                         " group_id = '%s' AND topic = '%s' AND partition = %d), 0)",
                         e->group, e->topics[t], p);
                PGresult *res = PQexec(c, sql);
                behind =
                    PQresultStatus(res) != PGRES_TUPLES_OK || atoll(PQgetvalue(res, 0, 0)) < hi;
                PQclear(res);
            }
        }
        if (!behind && PQstatus(c) == CONNECTION_OK)
            break;
        if (time(NULL) > deadline) {
            char cmd[1200];
            snprintf(cmd, sizeof(cmd), "tail -n 30 %s >&2", e->log);
            if (system(cmd) != 0)
                fprintf(stderr, "(no log)\n");
            TEST_FAIL_("projector not caught up after %d s", timeout_s);
        }
        usleep(200 * 1000);
    }
    PQfinish(c);
}

/* ---- events ---------------------------------------------------------------- */

PH_UNUSED static void ph_id(char out[HUB_UUID_SIZE], const char *fmt, long n)
{
    char name[128];
    snprintf(name, sizeof(name), fmt, n);
    if (hub_uuid_v5(PH_NS, name, strlen(name), out) != HUB_OK)
        TEST_FAIL_("uuid");
}

PH_UNUSED static void ph_subject(char out[HUB_SUBJECT_KEY_SIZE], long n)
{
    snprintf(out, HUB_SUBJECT_KEY_SIZE, "%064lx", (unsigned long)n * 2654435761u + 1);
}

PH_UNUSED static hub_date_t ph_date(int y, int m, int d)
{
    hub_date_t out;
    if (hub_date_from_ymd(y, m, d, &out) != HUB_OK)
        TEST_FAIL_("bad date %d-%d-%d", y, m, d);
    return out;
}

PH_UNUSED static hub_event_t ph_event(hub_event_type_t type, const char *id, int64_t occurred_at,
                                      const char *source)
{
    hub_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    hub_strlcpy(ev.event_id, id, sizeof(ev.event_id));
    ev.occurred_at = occurred_at;
    hub_strlcpy(ev.source, source, sizeof(ev.source));
    return ev;
}

/* ---- a seeded workload and the tables it must produce ------------------------ */

#ifndef WL_SUBJECTS /* the benchmark uses more */
#define WL_SUBJECTS 400
#define WL_ACTIONS  1500
#endif
#define WL_GROUPS 12

static const char *const wl_agencies[] = {"LEICESTER_CS", "LEICS_POLICE", "UHL", "LLR_ICB",
                                          "RUTLAND_CS"};

typedef struct {
    uint64_t s;
} wl_rng_t;

PH_UNUSED static uint32_t wl_next(wl_rng_t *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 33);
}

PH_UNUSED static int wl_pick(wl_rng_t *r, int n)
{
    return (int)(wl_next(r) % (uint32_t)n);
}

/* (at, id) of the event that set a group of columns; at == 0: none yet. */
typedef struct {
    int64_t at;
    char id[HUB_UUID_SIZE];
} wl_ver_t;

PH_UNUSED static int wl_newer(const hub_event_t *ev, const wl_ver_t *v)
{
    return v->at == 0 || ev->occurred_at > v->at ||
           (ev->occurred_at == v->at && strcmp(ev->event_id, v->id) > 0);
}

PH_UNUSED static void wl_set(wl_ver_t *v, const hub_event_t *ev)
{
    v->at = ev->occurred_at;
    hub_strlcpy(v->id, ev->event_id, sizeof(v->id));
}

typedef struct {
    int present;
    wl_ver_t ver;
    hub_local_authority_t la;
    hub_date_t dob, first, last;
    hub_risk_set_t risks;
    unsigned agencies; /* bit per wl_agencies */
    int flags;
    /* plan */
    int plan;
    wl_ver_t la_ver, due_ver, done_ver;
    hub_local_authority_t plan_la;
    hub_date_t due;
    hub_transition_rule_t rule;
    hub_date_t completed;
    hub_plan_outcome_t outcome;
} wl_person_t;

typedef struct {
    int present;
    wl_ver_t rec, done;
    hub_date_t meeting, due, completed, last_overdue;
    int subject; /* -1 none */
    int group;
    int notices;
} wl_action_t;

typedef struct {
    int present;
    int reminders, briefings;
    wl_ver_t req, sent;
    char title[64];
    int recipients;
} wl_group_t;

typedef struct {
    wl_person_t people[WL_SUBJECTS];
    wl_action_t actions[WL_ACTIONS];
    wl_group_t groups[WL_GROUPS];
    long events, flags, reminders, poison;
} wl_expect_t;

/*
 * Event number n of the workload with seed: a mix of every type, occurred_at
 * scattered so that late events are common. Returns 0 for an event in *ev, 1
 * for a duplicate of an earlier event (*ev holds it again), 2 for poison bytes.
 */
PH_UNUSED static int wl_event(uint64_t seed, long n, hub_event_t *ev)
{
    wl_rng_t r = {seed * 1000003u + (uint64_t)n};
    char id[HUB_UUID_SIZE];
    int k;

    wl_next(&r);
    k = wl_pick(&r, 1000);
    if (k < 2)
        return 2;
    if (k < 22 && n > 10) {
        /* A duplicate: rebuild an earlier event exactly. */
        long earlier = n - 1 - wl_pick(&r, (int)(n < 5000 ? n - 1 : 5000));
        int again = wl_event(seed, earlier, ev);
        return again == 2 ? 2 : 1;
    }
    ph_id(id, "wl-%ld", (long)(seed * 10000000 + (uint64_t)n));
    int64_t at = 1700000000000LL + (int64_t)wl_pick(&r, 1000000) * 1000;
    int t = wl_pick(&r, 100);
    if (t < 35) {
        int s = wl_pick(&r, WL_SUBJECTS);
        *ev = ph_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, id, at, wl_agencies[wl_pick(&r, 5)]);
        ph_subject(ev->u.flagged.subject_key, s);
        ev->u.flagged.local_authority = (hub_local_authority_t)wl_pick(&r, 3);
        ev->u.flagged.date_of_birth = ph_date(2007 + wl_pick(&r, 2), 1 + s % 12, 1 + s % 28);
        ev->u.flagged.risk_categories =
            HUB_RISK_BIT(wl_pick(&r, HUB_RISK__COUNT)) | HUB_RISK_BIT(wl_pick(&r, HUB_RISK__COUNT));
        ev->u.flagged.flagged_on = ph_date(2024, 1 + wl_pick(&r, 12), 1 + wl_pick(&r, 28));
    } else if (t < 50) {
        *ev = ph_event(HUB_EVENT_TRANSITION_PLAN_DUE, id, at, "hub-planner");
        ph_subject(ev->u.plan_due.subject_key, wl_pick(&r, WL_SUBJECTS));
        ev->u.plan_due.local_authority = (hub_local_authority_t)wl_pick(&r, 3);
        ev->u.plan_due.due_date = ph_date(2025, 1 + wl_pick(&r, 12), 1 + wl_pick(&r, 28));
        ev->u.plan_due.rule = (hub_transition_rule_t)wl_pick(&r, HUB_RULE__COUNT);
        ph_id(ev->u.plan_due.cause_event_id, "cause-%ld", n);
        ev->u.plan_due.risk_categories = HUB_RISK_BIT(HUB_RISK_GANGS);
    } else if (t < 56) {
        *ev = ph_event(HUB_EVENT_TRANSITION_PLAN_COMPLETED, id, at, "LEICESTER_ASC");
        ph_subject(ev->u.plan_completed.subject_key, wl_pick(&r, WL_SUBJECTS));
        ev->u.plan_completed.local_authority = (hub_local_authority_t)wl_pick(&r, 3);
        ev->u.plan_completed.completed_on = ph_date(2025, 1 + wl_pick(&r, 12), 1);
        ev->u.plan_completed.outcome = (hub_plan_outcome_t)wl_pick(&r, HUB_OUTCOME__COUNT);
    } else if (t < 71) {
        int a = wl_pick(&r, WL_ACTIONS), s = wl_pick(&r, WL_SUBJECTS + 100);
        *ev = ph_event(HUB_EVENT_MEETING_ACTION_RECORDED, id, at, "HUB_COORDINATOR");
        ph_id(ev->u.action_recorded.action_id, "action-%ld", a);
        snprintf(ev->u.action_recorded.meeting_id, HUB_CODE_SIZE, "MTG-%d", wl_pick(&r, 50));
        ev->u.action_recorded.meeting_date = ph_date(2025, 1 + wl_pick(&r, 6), 1);
        ev->u.action_recorded.kind = (hub_action_kind_t)wl_pick(&r, HUB_ACTION__COUNT);
        hub_strlcpy(ev->u.action_recorded.owner_agency, wl_agencies[wl_pick(&r, 5)], HUB_CODE_SIZE);
        snprintf(ev->u.action_recorded.owner_group_id, HUB_CODE_SIZE, "group-%d",
                 wl_pick(&r, WL_GROUPS));
        ev->u.action_recorded.due_date = ev->u.action_recorded.meeting_date + 7 + wl_pick(&r, 200);
        ev->u.action_recorded.has_subject_key = s < WL_SUBJECTS;
        if (s < WL_SUBJECTS)
            ph_subject(ev->u.action_recorded.subject_key, s);
    } else if (t < 81) {
        *ev = ph_event(HUB_EVENT_MEETING_ACTION_COMPLETED, id, at, "LEICS_POLICE");
        ph_id(ev->u.action_completed.action_id, "action-%ld", wl_pick(&r, WL_ACTIONS));
        ev->u.action_completed.completed_on = ph_date(2025, 1 + wl_pick(&r, 12), 2);
    } else if (t < 86) {
        *ev = ph_event(HUB_EVENT_MEETING_ACTION_OVERDUE, id, at, "hub-reminder");
        ph_id(ev->u.action_overdue.action_id, "action-%ld", wl_pick(&r, WL_ACTIONS));
        snprintf(ev->u.action_overdue.owner_group_id, HUB_CODE_SIZE, "group-%d",
                 wl_pick(&r, WL_GROUPS));
        ev->u.action_overdue.due_date = ph_date(2025, 1, 1);
        ev->u.action_overdue.as_of = ph_date(2025, 2, 1) + wl_pick(&r, 300);
        ev->u.action_overdue.days_overdue = 31;
    } else if (t < 95) {
        int s = wl_pick(&r, WL_SUBJECTS * 2);
        *ev = ph_event(HUB_EVENT_REMINDER_DUE, id, at, "hub-reminder");
        snprintf(ev->u.reminder.group_id, HUB_CODE_SIZE, "group-%d", wl_pick(&r, WL_GROUPS));
        ev->u.reminder.kind = (hub_reminder_kind_t)wl_pick(&r, HUB_REMINDER__COUNT);
        ev->u.reminder.has_subject_key = s < WL_SUBJECTS;
        if (s < WL_SUBJECTS)
            ph_subject(ev->u.reminder.subject_key, s);
        ev->u.reminder.has_due_date = s < WL_SUBJECTS;
        ev->u.reminder.due_date = ph_date(2025, 6, 1);
        ev->u.reminder.as_of = ph_date(2025, 5, 1) + wl_pick(&r, 30);
    } else if (t < 98) {
        *ev = ph_event(HUB_EVENT_BRIEFING_REQUESTED, id, at, "HUB_COORDINATOR");
        snprintf(ev->u.briefing_requested.group_id, HUB_CODE_SIZE, "group-%d",
                 wl_pick(&r, WL_GROUPS));
        snprintf(ev->u.briefing_requested.title, HUB_TITLE_SIZE, "Transitions briefing %d",
                 wl_pick(&r, 1000));
        hub_strlcpy(ev->u.briefing_requested.link, "https://example.org/briefing", HUB_LINK_SIZE);
    } else {
        *ev = ph_event(HUB_EVENT_BRIEFING_SENT, id, at, "hub-notifier");
        snprintf(ev->u.briefing_sent.group_id, HUB_CODE_SIZE, "group-%d", wl_pick(&r, WL_GROUPS));
        ph_id(ev->u.briefing_sent.request_event_id, "request-%ld", n);
        ev->u.briefing_sent.recipients = 1 + wl_pick(&r, 20);
    }
    return 0;
}

PH_UNUSED static int wl_subject_index(const char *key)
{
    static char keys[WL_SUBJECTS][HUB_SUBJECT_KEY_SIZE];
    static int ready;
    if (!ready) {
        for (int s = 0; s < WL_SUBJECTS; s++)
            ph_subject(keys[s], s);
        ready = 1;
    }
    for (int s = 0; s < WL_SUBJECTS; s++)
        if (strcmp(keys[s], key) == 0)
            return s;
    TEST_FAIL_("unknown workload subject");
    return -1;
}

PH_UNUSED static int wl_action_index(const char *id)
{
    static char ids[WL_ACTIONS][HUB_UUID_SIZE];
    static int ready;
    if (!ready) {
        for (int a = 0; a < WL_ACTIONS; a++)
            ph_id(ids[a], "action-%ld", a);
        ready = 1;
    }
    for (int a = 0; a < WL_ACTIONS; a++)
        if (strcmp(ids[a], id) == 0)
            return a;
    TEST_FAIL_("unknown workload action");
    return -1;
}

PH_UNUSED static int wl_group_index(const char *g)
{
    return atoi(g + strlen("group-"));
}

PH_UNUSED static int wl_agency_bit(const char *a)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(wl_agencies[i], a) == 0)
            return i;
    return 0;
}

/* Applies one (first-time) event to the expectation, as the projector's rules say. */
PH_UNUSED static void wl_apply(wl_expect_t *x, const hub_event_t *ev)
{
    x->events++;
    switch (ev->type) {
    case HUB_EVENT_YOUNG_PERSON_FLAGGED: {
        wl_person_t *p = &x->people[wl_subject_index(ev->u.flagged.subject_key)];
        x->flags++;
        if (!p->present || wl_newer(ev, &p->ver)) {
            p->la = ev->u.flagged.local_authority;
            p->dob = ev->u.flagged.date_of_birth;
            wl_set(&p->ver, ev);
        }
        if (!p->present || ev->u.flagged.flagged_on < p->first)
            p->first = ev->u.flagged.flagged_on;
        if (!p->present || ev->u.flagged.flagged_on > p->last)
            p->last = ev->u.flagged.flagged_on;
        p->risks |= ev->u.flagged.risk_categories;
        p->agencies |= 1u << wl_agency_bit(ev->source);
        p->present = 1;
        break;
    }
    case HUB_EVENT_TRANSITION_PLAN_DUE:
    case HUB_EVENT_TRANSITION_PLAN_COMPLETED: {
        int due = ev->type == HUB_EVENT_TRANSITION_PLAN_DUE;
        wl_person_t *p = &x->people[wl_subject_index(due ? ev->u.plan_due.subject_key
                                                         : ev->u.plan_completed.subject_key)];
        if (wl_newer(ev, &p->la_ver)) {
            p->plan_la =
                due ? ev->u.plan_due.local_authority : ev->u.plan_completed.local_authority;
            wl_set(&p->la_ver, ev);
        }
        if (due && wl_newer(ev, &p->due_ver)) {
            p->due = ev->u.plan_due.due_date;
            p->rule = ev->u.plan_due.rule;
            wl_set(&p->due_ver, ev);
        }
        if (!due && wl_newer(ev, &p->done_ver)) {
            p->completed = ev->u.plan_completed.completed_on;
            p->outcome = ev->u.plan_completed.outcome;
            wl_set(&p->done_ver, ev);
        }
        p->plan = 1;
        break;
    }
    case HUB_EVENT_MEETING_ACTION_RECORDED: {
        wl_action_t *a = &x->actions[wl_action_index(ev->u.action_recorded.action_id)];
        if (wl_newer(ev, &a->rec)) {
            a->meeting = ev->u.action_recorded.meeting_date;
            a->due = ev->u.action_recorded.due_date;
            a->subject = ev->u.action_recorded.has_subject_key
                             ? wl_subject_index(ev->u.action_recorded.subject_key)
                             : -1;
            a->group = wl_group_index(ev->u.action_recorded.owner_group_id);
            wl_set(&a->rec, ev);
        }
        a->present = 1;
        break;
    }
    case HUB_EVENT_MEETING_ACTION_COMPLETED: {
        wl_action_t *a = &x->actions[wl_action_index(ev->u.action_completed.action_id)];
        if (wl_newer(ev, &a->done)) {
            a->completed = ev->u.action_completed.completed_on;
            wl_set(&a->done, ev);
        }
        a->present = 1;
        break;
    }
    case HUB_EVENT_MEETING_ACTION_OVERDUE: {
        wl_action_t *a = &x->actions[wl_action_index(ev->u.action_overdue.action_id)];
        a->notices++;
        if (ev->u.action_overdue.as_of > a->last_overdue)
            a->last_overdue = ev->u.action_overdue.as_of;
        a->present = 1;
        break;
    }
    case HUB_EVENT_REMINDER_DUE: {
        wl_group_t *g = &x->groups[wl_group_index(ev->u.reminder.group_id)];
        g->reminders++;
        g->present = 1;
        x->reminders++;
        break;
    }
    case HUB_EVENT_BRIEFING_REQUESTED: {
        wl_group_t *g = &x->groups[wl_group_index(ev->u.briefing_requested.group_id)];
        if (wl_newer(ev, &g->req)) {
            hub_strlcpy(g->title, ev->u.briefing_requested.title, sizeof(g->title));
            wl_set(&g->req, ev);
        }
        g->present = 1;
        break;
    }
    case HUB_EVENT_BRIEFING_SENT: {
        wl_group_t *g = &x->groups[wl_group_index(ev->u.briefing_sent.group_id)];
        g->briefings++;
        if (wl_newer(ev, &g->sent)) {
            g->recipients = ev->u.briefing_sent.recipients;
            wl_set(&g->sent, ev);
        }
        g->present = 1;
        break;
    }
    default:
        break;
    }
}

/* Appends printf text to a growing string. */
PH_UNUSED static void wl_cat(char **s, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
PH_UNUSED static void wl_cat(char **s, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*s + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap *= 2;
        *s = realloc(*s, *cap);
    }
}

PH_UNUSED static int wl_line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the lines of s (C collation, as the database's C.UTF-8 orders them). */
PH_UNUSED static char *wl_sorted(char *s)
{
    size_t n = 0, cap = 64, len = 0, ocap = strlen(s) + 2;
    char **lines = malloc(cap * sizeof(*lines)), *out = malloc(ocap), *save = NULL;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (n == cap)
            lines = realloc(lines, (cap *= 2) * sizeof(*lines));
        lines[n++] = l;
    }
    qsort(lines, n, sizeof(*lines), wl_line_cmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(out + len, "%s\n", lines[i]);
    free(lines);
    free(s);
    return out;
}

PH_UNUSED static void wl_risks(hub_risk_set_t set, char *buf, size_t size)
{
    const char *names[HUB_RISK__COUNT];
    int n = 0;
    size_t len = 0;
    for (int c = 0; c < HUB_RISK__COUNT; c++)
        if (set & HUB_RISK_BIT(c))
            names[n++] = hub_risk_category_name((hub_risk_category_t)c);
    qsort(names, (size_t)n, sizeof(*names), wl_line_cmp);
    len += (size_t)snprintf(buf, size, "{");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "", names[i]);
    snprintf(buf + len, size - len, "}");
}

PH_UNUSED static void wl_agency_list(unsigned bits, char *buf, size_t size)
{
    const char *names[5];
    int n = 0;
    size_t len = 0;
    for (int i = 0; i < 5; i++)
        if (bits & (1u << i))
            names[n++] = wl_agencies[i];
    qsort(names, (size_t)n, sizeof(*names), wl_line_cmp);
    len += (size_t)snprintf(buf, size, "{");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "," : "", names[i]);
    snprintf(buf + len, size - len, "}");
}

/* The queries whose output must equal wl_expected_text(). */
static const char *const wl_queries[] = {
    "SELECT format('P|%s|%s|%s|%s|%s|%s|%s', subject_key, local_authority, date_of_birth,"
    " risk_categories, agencies, first_flagged_on, last_flagged_on) FROM young_people",
    "SELECT format('T|%s|%s|%s|%s|%s|%s|%s', subject_key, local_authority, due_date, rule,"
    " completed_on, outcome, status) FROM transition_plans",
    "SELECT format('A|%s|%s|%s|%s|%s|%s|%s|%s', action_id, meeting_date, due_date, subject_key,"
    " owner_group_id, completed_on, overdue_notices, last_overdue_as_of) FROM meeting_actions",
    "SELECT format('G|%s|%s|%s|%s|%s', group_id, reminders_received, briefings_sent,"
    " last_briefing_title, last_briefing_recipients) FROM group_state",
    "SELECT format('C|events|%s', count(*)) FROM hub_event_log",
    "SELECT format('C|flags|%s', count(*)) FROM young_person_flags",
    "SELECT format('C|reminders|%s', count(*)) FROM reminders",
    "SELECT format('C|dead_letters|%s', count(*)) FROM dead_letters",
};

PH_UNUSED static char *wl_actual_text(PGconn *c)
{
    size_t len = 0, cap = 1 << 16;
    char *s = malloc(cap);
    s[0] = '\0';
    for (size_t i = 0; i < HUB_ARRAY_LEN(wl_queries); i++) {
        char *rows = ph_rows(c, wl_queries[i]);
        wl_cat(&s, &len, &cap, "%s", rows);
        free(rows);
    }
    return wl_sorted(s);
}

PH_UNUSED static void wl_date(hub_date_t d, int present, char *buf)
{
    if (present)
        hub_date_format(d, buf, 11);
    else
        buf[0] = '\0';
}

PH_UNUSED static char *wl_expected_text(const wl_expect_t *x)
{
    size_t len = 0, cap = 1 << 16;
    char *s = malloc(cap), key[HUB_SUBJECT_KEY_SIZE], a[16], b[16], c2[16], d[16], r[320], ag[128],
         id[HUB_UUID_SIZE];
    s[0] = '\0';
    for (int i = 0; i < WL_SUBJECTS; i++) {
        const wl_person_t *p = &x->people[i];
        ph_subject(key, i);
        if (p->present) {
            wl_risks(p->risks, r, sizeof(r));
            wl_agency_list(p->agencies, ag, sizeof(ag));
            wl_date(p->dob, 1, a);
            wl_date(p->first, 1, b);
            wl_date(p->last, 1, c2);
            wl_cat(&s, &len, &cap, "P|%s|%s|%s|%s|%s|%s|%s\n", key, hub_local_authority_name(p->la),
                   a, r, ag, b, c2);
        }
        if (p->plan) {
            int done = p->done_ver.at && (!p->due_ver.at || p->done_ver.at >= p->due_ver.at);
            wl_date(p->due, p->due_ver.at != 0, a);
            wl_date(p->completed, p->done_ver.at != 0, b);
            wl_cat(&s, &len, &cap, "T|%s|%s|%s|%s|%s|%s|%s\n", key,
                   hub_local_authority_name(p->plan_la), a,
                   p->due_ver.at ? hub_transition_rule_name(p->rule) : "", b,
                   p->done_ver.at ? hub_plan_outcome_name(p->outcome) : "",
                   done ? "COMPLETED" : "OPEN");
        }
    }
    for (int i = 0; i < WL_ACTIONS; i++) {
        const wl_action_t *act = &x->actions[i];
        if (!act->present)
            continue;
        ph_id(id, "action-%ld", i);
        wl_date(act->meeting, act->rec.at != 0, a);
        wl_date(act->due, act->rec.at != 0, b);
        wl_date(act->completed, act->done.at != 0, c2);
        wl_date(act->last_overdue, act->notices > 0, d);
        if (act->rec.at && act->subject >= 0)
            ph_subject(key, act->subject);
        else
            key[0] = '\0';
        char group[32] = "";
        if (act->rec.at)
            snprintf(group, sizeof(group), "group-%d", act->group);
        wl_cat(&s, &len, &cap, "A|%s|%s|%s|%s|%s|%s|%d|%s\n", id, a, b, key, group, c2,
               act->notices, d);
    }
    for (int i = 0; i < WL_GROUPS; i++) {
        const wl_group_t *g = &x->groups[i];
        char rec[16] = "";
        if (!g->present)
            continue;
        if (g->sent.at)
            snprintf(rec, sizeof(rec), "%d", g->recipients);
        wl_cat(&s, &len, &cap, "G|group-%d|%d|%d|%s|%s\n", i, g->reminders, g->briefings, g->title,
               rec);
    }
    wl_cat(&s, &len, &cap, "C|events|%ld\nC|flags|%ld\nC|reminders|%ld\nC|dead_letters|%ld\n",
           x->events, x->flags, x->reminders, x->poison);
    return wl_sorted(s);
}

/* Prints the first line where two texts differ, and fails. */
PH_UNUSED static void wl_assert_same(const char *expected, const char *actual)
{
    if (strcmp(expected, actual) == 0)
        return;
    const char *e = expected, *a = actual;
    while (*e && *a) {
        const char *ee = strchr(e, '\n'), *ae = strchr(a, '\n');
        size_t el = ee ? (size_t)(ee - e) : strlen(e), al = ae ? (size_t)(ae - a) : strlen(a);
        if (el != al || strncmp(e, a, el) != 0)
            TEST_FAIL_("tables differ:\n expected: %.*s\n actual:   %.*s", (int)el, e, (int)al, a);
        e += el + (ee ? 1 : 0);
        a += al + (ae ? 1 : 0);
    }
    TEST_FAIL_("tables differ in length: expected %zu bytes, got %zu", strlen(expected),
               strlen(actual));
}

/* The poison message number n: bytes that are not a framed event (odd n: a good
   frame with an unknown schema id and garbage after it). */
PH_UNUSED static void wl_poison(long n, char *buf, size_t size, size_t *len)
{
    size_t head = 0;
    if (n % 2) {
        memcpy(buf, "\x00\x00\x00\x03\xe9", 5);
        head = 5;
    }
    *len = head + (size_t)snprintf(buf + head, size - head, "not an event %ld", n);
}

/*
 * Produces workload events from..to-1 (poison to the risk-flags topic), at
 * most per_second a second (0: as fast as possible), and records in x what
 * the projector must make of them.
 */
PH_UNUSED static void wl_produce(ph_env_t *e, uint64_t seed, long from, long to, int per_second,
                                 wl_expect_t *x)
{
    int64_t start = hub_monotonic_ms();
    for (long n = from; n < to; n++) {
        hub_event_t ev;
        int kind = wl_event(seed, n, &ev);
        if (kind == 2) {
            char buf[64], key[32];
            size_t len;
            wl_poison(n, buf, sizeof(buf), &len);
            snprintf(key, sizeof(key), "poison-%ld", n);
            ph_send_raw(e, e->topics[0], key, buf, len);
            x->poison++;
            continue;
        }
        ph_send(e, &ev);
        if (kind == 0)
            wl_apply(x, &ev);
        if (per_second > 0 && (n - from) % 100 == 99) {
            int64_t due = start + (n - from + 1) * 1000 / per_second;
            int64_t now = hub_monotonic_ms();
            if (due > now)
                usleep((useconds_t)(due - now) * 1000);
        }
    }
    ph_flush(e);
}

typedef struct {
    ph_env_t *env;
    uint64_t seed;
    long events;
    int rate;
    wl_expect_t *expect;
} ph_outage_producer_t;

static void *ph_outage_produce(void *arg)
{
    ph_outage_producer_t *p = arg;
    wl_produce(p->env, p->seed, 0, p->events, p->rate, p->expect);
    return NULL;
}

/*
 * ph_outage_mid_stream: with e set up (not started), produces events from
 * seed at rate per second while the projector runs, stops a peer with
 * `scripts/infra.sh <stop>` for outage_ms and starts it with <start>. Then
 * the projector must still be the same process, catch up, leave exactly the
 * tables a clean single pass gives, and exit 0 on SIGTERM. The caller checks
 * its log further and tears e down.
 */
PH_UNUSED static void ph_outage_mid_stream(ph_env_t *e, uint64_t seed, long events, int rate,
                                           const char *stop, const char *start, int outage_ms)
{
    static wl_expect_t expect;
    ph_outage_producer_t arg = {e, seed, events, rate, &expect};
    pthread_t producer;
    char cmd[1200];

    if (pthread_create(&producer, NULL, ph_outage_produce, &arg) != 0)
        TEST_FAIL_("pthread_create");
    ph_start(e);
    usleep(2500 * 1000);
    hub_test_infra(stop);
    usleep((useconds_t)outage_ms * 1000);
    ph_check_alive(e);
    hub_test_infra(start);
    pthread_join(producer, NULL);
    ph_wait_caught_up(e, 300);
    ph_check_alive(e);

    PGconn *c = ph_connect(e->db_admin);
    char *want = wl_expected_text(&expect), *got = wl_actual_text(c);
    wl_assert_same(want, got);
    free(want);
    free(got);
    PQfinish(c);
    ASSERT_INT_EQ(ph_stop(e, SIGTERM), 0);
    /* It rode the outage out in one process. */
    snprintf(cmd, sizeof(cmd), "test $(grep -c 'event=started' %s) -eq 1", e->log);
    ASSERT_INT_EQ(system(cmd), 0);
}

#endif
