/* support.c: helpers shared by the tests: environment, fresh topics and databases. */
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/common.h"
#include "hub/config.h"
#include "test.h"

const char *hub_test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        TEST_FAIL_("environment variable %s is not set: run the tests through scripts/test, "
                   "which starts the real infrastructure",
                   name);
    return v;
}

void hub_test_kafka_props(hub_props_t *props)
{
    hub_props_set(props, "bootstrap.servers", hub_test_env("HUB_KAFKA_BOOTSTRAP"));
    /* A config file for the secured broker may add TLS/SASL properties. */
    const char *extra = getenv("HUB_KAFKA_EXTRA_PROPS");
    if (extra && *extra) {
        char *copy = strdup(extra), *save = NULL;
        for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (eq) {
                *eq = '\0';
                hub_props_set(props, kv, eq + 1);
            }
        }
        free(copy);
    }
}

const char *hub_test_unique(void)
{
    static char buf[64];
    static int seq;
    snprintf(buf, sizeof(buf), "%ld_%lld_%d", (long)getpid(), (long long)hub_now_ms() % 100000000,
             ++seq);
    return buf;
}

void hub_test_topic(const char *prefix, int partitions, char *buf, size_t size)
{
    hub_props_t props = {0};
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;

    snprintf(buf, size, "test.%s.%s", prefix, hub_test_unique());
    hub_test_kafka_props(&props);
    conf = rd_kafka_conf_new();
    for (size_t i = 0; i < props.n; i++)
        if (rd_kafka_conf_set(conf, props.keys[i], props.values[i], errstr, sizeof(errstr)))
            TEST_FAIL_("kafka property %s: %s", props.keys[i], errstr);
    hub_props_clear(&props);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        TEST_FAIL_("rd_kafka_new: %s", errstr);
    nt = rd_kafka_NewTopic_new(buf, partitions, 1, errstr, sizeof(errstr));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (!ev)
        TEST_FAIL_("CreateTopics %s: no answer in 30 s", buf);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    if (rd_kafka_event_error(ev))
        TEST_FAIL_("CreateTopics %s: %s", buf, rd_kafka_event_error_string(ev));
    if (cnt != 1 || rd_kafka_topic_result_error(tr[0]))
        TEST_FAIL_("CreateTopics %s: %s", buf,
                   cnt ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}

void hub_test_pg_db(const char *prefix, char *buf, size_t size)
{
    const char *admin = hub_test_env("HUB_PG_CONNINFO");
    char name[128], sql[256];
    PGconn *conn = PQconnectdb(admin);
    PGresult *res;

    if (PQstatus(conn) != CONNECTION_OK)
        TEST_FAIL_("cannot connect to the test PostgreSQL: %s", PQerrorMessage(conn));
    snprintf(name, sizeof(name), "t_%s_%s", prefix, hub_test_unique());
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        TEST_FAIL_("%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    /* A later dbname= overrides the one in the admin conninfo. */
    snprintf(buf, size, "%s dbname=%s", admin, name);
}

const char *hub_test_tmpdir(void)
{
    static char dir[512];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/hubtest.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir))
        TEST_FAIL_("mkdtemp %s failed", dir);
    return dir;
}

const char *hub_test_write_file(const char *dir, const char *name, const char *text)
{
    static char paths[4][1024];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 1024, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        TEST_FAIL_("cannot write %s", p);
    fputs(text, f);
    fclose(f);
    return p;
}
