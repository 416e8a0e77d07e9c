/* support.c: helpers shared by the tests: environment, fresh topics and databases. */
#include <curl/curl.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
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

/* Calls fn for each key=value of HUB_KAFKA_EXTRA_PROPS (the secured broker's TLS/SASL settings). */
static void extra_props_each(void (*fn)(const char *key, const char *value, void *opaque),
                             void *opaque)
{
    const char *extra = getenv("HUB_KAFKA_EXTRA_PROPS");
    if (!extra || !*extra)
        return;
    char *copy = strdup(extra), *save = NULL;
    if (!copy)
        TEST_FAIL_("out of memory");
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq) {
            *eq = '\0';
            fn(kv, eq + 1, opaque);
        }
    }
    free(copy);
}

/* key.file=path stands for key=<first line of path>, as in the kafka { } config group. */
static void set_prop(const char *key, const char *value, void *opaque)
{
    size_t n = strlen(key);
    if (n > 5 && strcmp(key + n - 5, ".file") == 0) {
        char errstr[512], bare[256];
        char *secret = hub_read_file(value, NULL, errstr, sizeof(errstr));
        if (!secret)
            TEST_FAIL_("HUB_KAFKA_EXTRA_PROPS %s: %s", key, errstr);
        secret[strcspn(secret, "\r\n")] = '\0';
        snprintf(bare, sizeof(bare), "%.*s", (int)(n - 5), key);
        hub_props_set(opaque, bare, secret);
        free(secret);
        return;
    }
    hub_props_set(opaque, key, value);
}

void hub_test_kafka_props(hub_props_t *props)
{
    hub_props_set(props, "bootstrap.servers", hub_test_env("HUB_KAFKA_BOOTSTRAP"));
    extra_props_each(set_prop, props);
}

typedef struct {
    char *buf;
    size_t size, used;
} settings_t;

/* Appends `key_with_underscores = "value";` (a .file key stays a _file setting). */
static void add_setting(const char *key, const char *value, void *opaque)
{
    settings_t *s = opaque;
    char name[256];
    hub_strlcpy(name, key, sizeof(name));
    for (char *c = name; *c; c++)
        if (*c == '.')
            *c = '_';
    if (s->used < s->size)
        s->used +=
            (size_t)snprintf(s->buf + s->used, s->size - s->used, " %s = \"%s\";", name, value);
}

const char *hub_test_kafka_settings(void)
{
    static char buf[4096];
    settings_t s = {buf, sizeof(buf), 0};
    add_setting("bootstrap.servers", hub_test_env("HUB_KAFKA_BOOTSTRAP"), &s);
    extra_props_each(add_setting, &s);
    if (s.used >= sizeof(buf))
        TEST_FAIL_("HUB_KAFKA_EXTRA_PROPS is too long");
    return buf;
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

typedef struct {
    char *buf;
    size_t size, len;
} http_body_t;

static size_t http_collect(char *data, size_t size, size_t n, void *userp)
{
    http_body_t *b = userp;
    size_t len = size * n, room = b->size - 1 - b->len;
    memcpy(b->buf + b->len, data, len < room ? len : room);
    b->len += len < room ? len : room;
    b->buf[b->len] = '\0';
    return size * n;
}

long hub_test_http_get(int port, const char *path, char *buf, size_t size)
{
    char url[256];
    long code = 0;
    http_body_t body = {buf, size, 0};
    CURL *h = curl_easy_init();
    if (!h || size == 0)
        TEST_FAIL_("curl_easy_init failed");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    buf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
        TEST_FAIL_("GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    return code;
}

const char *hub_test_service_binary(const char *service)
{
    static char paths[4][PATH_MAX];
    static int next;
    char self[PATH_MAX], *path = paths[next++ % 4];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        TEST_FAIL_("cannot read /proc/self/exe");
    self[n] = '\0';
    /* <build>/tests/test_x -> <build>/services/<service>/hub-<service> */
    snprintf(path, PATH_MAX, "%s/../services/%s/hub-%s", dirname(self), service, service);
    if (access(path, X_OK) != 0)
        TEST_FAIL_("%s is not built", path);
    return path;
}

pid_t hub_test_spawn(const char *path, const char *const *argv, const char *log)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        TEST_FAIL_("fork failed");
    if (pid == 0) {
        /* Only async-signal-safe calls here; the program must not outlive a failed test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(126);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int hub_test_wait_exit(pid_t pid, int timeout_ms)
{
    int status = 0;
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    TEST_FAIL_("process %ld did not exit within %d ms", (long)pid, timeout_ms);
}

void hub_test_infra(const char *command)
{
    char cmd[4096];
    hub_test_env("HUB_SCRATCH");
    snprintf(cmd, sizeof(cmd), "bash \"%s\" %s >&2", hub_test_env("HUB_INFRA_CLI"), command);
    if (system(cmd) != 0)
        TEST_FAIL_("scripts/infra.sh %s failed", command);
}
