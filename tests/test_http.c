/*
 * test_http.c: the operations endpoints over a real socket, with libcurl as
 * the client: /metrics, /healthz with its heartbeat timeout, /readyz, 404,
 * 405, and the addresses the server refuses.
 */
#include <curl/curl.h>
#include <unistd.h>

#include "hub/common.h"
#include "hub/http.h"
#include "hub/metrics.h"
#include "test.h"

typedef struct {
    long status;
    char body[65536];
    size_t len;
    char ctype[128];
    char allow[64];
} response_t;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    response_t *r = arg;
    size_t len = size * n;
    if (r->len + len >= sizeof(r->body))
        return 0;
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* Keeps the value of the headers the tests look at, without the line end. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    response_t *r = arg;
    size_t len = size * n;
    static const struct {
        const char *name;
        size_t off, cap;
    } wanted[] = {{"content-type:", offsetof(response_t, ctype), sizeof(((response_t *)0)->ctype)},
                  {"allow:", offsetof(response_t, allow), sizeof(((response_t *)0)->allow)}};

    for (size_t i = 0; i < HUB_ARRAY_LEN(wanted); i++) {
        size_t nl = strlen(wanted[i].name);
        if (len > nl && strncasecmp(data, wanted[i].name, nl) == 0) {
            const char *v = data + nl;
            size_t vlen = len - nl;
            while (vlen && (*v == ' '))
                v++, vlen--;
            while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
                vlen--;
            snprintf((char *)r + wanted[i].off, wanted[i].cap, "%.*s", (int)vlen, v);
        }
    }
    return len;
}

/* One request to host:port (host as in a URL); method is GET, HEAD, POST or any other verb. */
static void request_to(const char *host, int port, const char *method, const char *path,
                       response_t *r)
{
    char url[256];
    CURL *curl = curl_easy_init();
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") == 0)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "a=1");
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK)
        TEST_FAIL_("%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(curl);
}

static void request(int port, const char *method, const char *path, response_t *r)
{
    request_to("127.0.0.1", port, method, path, r);
}

static hub_http_t *start(const char *listen, int allow_remote, long long heartbeat_ms,
                         hub_metrics_t *m)
{
    char errstr[512] = "";
    hub_http_conf_t conf = {(char *)listen, allow_remote, heartbeat_ms};
    hub_http_t *h = hub_http_start(&conf, m, errstr, sizeof(errstr));
    if (!h)
        TEST_FAIL_("hub_http_start(%s): %s", listen, errstr);
    ASSERT_INT_OP(hub_http_port(h), >, 0);
    return h;
}

static void test_metrics_endpoint(void)
{
    hub_metrics_t *m = hub_metrics_new("hub-test");
    hub_counter_t *c = hub_metrics_events_in(m, "llr.children.risk-flags");
    hub_http_t *h = start("127.0.0.1:0", 0, 30000, m);
    response_t r;
    char *text = NULL;

    hub_counter_add(c, 41);
    request(hub_http_port(h), "GET", "/metrics", &r);
    ASSERT_INT_EQ(r.status, 200);
    ASSERT_STR_EQ(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    ASSERT_OK(hub_metrics_render(m, &text, NULL), "render");
    ASSERT_STR_EQ(r.body, text);
    free(text);
    ASSERT_STR_CONTAINS(r.body, "hub_events_in_total{topic=\"llr.children.risk-flags\"} 41\n");

    /* Live: the next scrape sees the next value. */
    hub_counter_add(c, 1);
    request(hub_http_port(h), "GET", "/metrics", &r);
    ASSERT_STR_CONTAINS(r.body, "hub_events_in_total{topic=\"llr.children.risk-flags\"} 42\n");

    request(hub_http_port(h), "HEAD", "/metrics", &r);
    ASSERT_INT_EQ(r.status, 200);
    ASSERT_INT_EQ(r.len, 0);

    /* A query string is not part of the path. */
    request(hub_http_port(h), "GET", "/metrics?x=1", &r);
    ASSERT_INT_EQ(r.status, 200);
    hub_http_stop(h);
    hub_metrics_destroy(m);

    /* Without a registry there is nothing to scrape, but health still answers. */
    h = start("127.0.0.1:0", 0, 30000, NULL);
    request(hub_http_port(h), "GET", "/metrics", &r);
    ASSERT_INT_EQ(r.status, 404);
    request(hub_http_port(h), "GET", "/healthz", &r);
    ASSERT_INT_EQ(r.status, 200);
    hub_http_stop(h);
}

static void test_healthz_heartbeat(void)
{
    hub_http_t *h = start("127.0.0.1:0", 0, 500, NULL);
    response_t r;

    request(hub_http_port(h), "GET", "/healthz", &r);
    ASSERT_INT_EQ(r.status, 200);
    ASSERT_STR_EQ(r.body, "ok\n");
    ASSERT_STR_EQ(r.ctype, "text/plain; charset=utf-8");

    /* The loop stops calling in: after the timeout the process is reported stuck. */
    usleep(1000 * 1000);
    request(hub_http_port(h), "GET", "/healthz", &r);
    ASSERT_INT_EQ(r.status, 503);
    ASSERT_STR_CONTAINS(r.body, "no heartbeat for ");

    hub_http_heartbeat(h);
    request(hub_http_port(h), "GET", "/healthz", &r);
    ASSERT_INT_EQ(r.status, 200);
    hub_http_stop(h);
}

static void test_readyz(void)
{
    hub_http_t *h = start("127.0.0.1:0", 0, 500, NULL);
    response_t r;

    hub_http_heartbeat(h);
    request(hub_http_port(h), "GET", "/readyz", &r);
    ASSERT_INT_EQ(r.status, 503);
    ASSERT_STR_EQ(r.body, "not ready: starting\n");

    hub_http_set_ready(h, 0, "waiting for partition assignment");
    hub_http_heartbeat(h);
    request(hub_http_port(h), "GET", "/readyz", &r);
    ASSERT_INT_EQ(r.status, 503);
    ASSERT_STR_EQ(r.body, "not ready: waiting for partition assignment\n");

    hub_http_set_ready(h, 1, NULL);
    hub_http_heartbeat(h);
    request(hub_http_port(h), "GET", "/readyz", &r);
    ASSERT_INT_EQ(r.status, 200);
    ASSERT_STR_EQ(r.body, "ready\n");

    /* A stuck loop is not ready either, whatever it said last. */
    usleep(1000 * 1000);
    request(hub_http_port(h), "GET", "/readyz", &r);
    ASSERT_INT_EQ(r.status, 503);
    ASSERT_STR_CONTAINS(r.body, "not ready: no heartbeat for ");
    hub_http_heartbeat(h);
    request(hub_http_port(h), "GET", "/readyz", &r);
    ASSERT_INT_EQ(r.status, 200);

    hub_http_set_ready(h, 0, NULL);
    hub_http_heartbeat(h);
    request(hub_http_port(h), "GET", "/readyz", &r);
    ASSERT_INT_EQ(r.status, 503);
    ASSERT_STR_EQ(r.body, "not ready\n");
    hub_http_stop(h);
}

static void test_not_found_and_methods(void)
{
    static const struct {
        const char *method, *path;
        long status;
    } cases[] = {
        {"GET", "/", 404},          {"GET", "/metrics/", 404},    {"GET", "/metricsx", 404},
        {"GET", "/HEALTHZ", 404},   {"POST", "/metrics", 405},    {"PUT", "/healthz", 405},
        {"DELETE", "/readyz", 405}, {"OPTIONS", "/metrics", 405}, {"POST", "/nowhere", 405},
        {"HEAD", "/healthz", 200},  {"GET", "/../metrics", 404},
    };
    hub_metrics_t *m = hub_metrics_new("hub-test");
    hub_http_t *h = start("127.0.0.1:0", 0, 30000, m);
    response_t r;

    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        request(hub_http_port(h), cases[i].method, cases[i].path, &r);
        fprintf(stderr, "   %s %s -> %ld\n", cases[i].method, cases[i].path, r.status);
        ASSERT_INT_EQ(r.status, cases[i].status);
        if (r.status == 405)
            ASSERT_STR_EQ(r.allow, "GET, HEAD");
    }
    hub_http_stop(h);
    hub_metrics_destroy(m);
}

/* Addresses the server refuses, and why; errors never start a thread. */
static void test_refused_addresses(void)
{
    static const struct {
        const char *listen;
        int allow_remote;
        int err;
        const char *msg;
    } cases[] = {
        {"0.0.0.0:0", 0, HUB_EINVAL, "is not a loopback address"},
        {"[::]:0", 0, HUB_EINVAL, "is not a loopback address"},
        {"192.0.2.1:9464", 0, HUB_EINVAL, "is not a loopback address"},
        {"", 0, HUB_EINVAL, "http_listen is empty"},
        {"127.0.0.1", 0, HUB_EINVAL, "is not host:port"},
        {"127.0.0.1:", 0, HUB_EINVAL, "is not host:port"},
        {":9464", 0, HUB_EINVAL, "is not host:port"},
        {"127.0.0.1:70000", 0, HUB_EINVAL, "is not host:port"},
        {"127.0.0.1:http", 0, HUB_EINVAL, "is not host:port"},
        {"::1:9464", 0, HUB_EINVAL, "is not host:port"},
        {"[::1:9464", 0, HUB_EINVAL, "is not host:port"},
        {"no-such-host.invalid:9464", 0, HUB_EINVAL, "no-such-host.invalid:9464"},
        /* 192.0.2.0/24 is TEST-NET-1: allowed, but no interface has it. */
        {"192.0.2.1:9464", 1, HUB_EIO, "192.0.2.1:9464"},
    };
    char errstr[512];

    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        hub_http_conf_t conf = {(char *)cases[i].listen, cases[i].allow_remote, 1000};
        errstr[0] = '\0';
        ASSERT_TRUE(hub_http_start(&conf, NULL, errstr, sizeof(errstr)) == NULL);
        fprintf(stderr, "   '%s' -> %s\n", cases[i].listen, errstr);
        ASSERT_STR_CONTAINS(errstr, cases[i].msg);
    }
    ASSERT_TRUE(hub_http_start(NULL, NULL, errstr, sizeof(errstr)) == NULL);

    /* A port in use is an error that names the address, not a silent second server. */
    hub_http_t *h = start("127.0.0.1:0", 0, 1000, NULL);
    char busy[64];
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", hub_http_port(h));
    hub_http_conf_t conf = {busy, 0, 1000};
    ASSERT_TRUE(hub_http_start(&conf, NULL, errstr, sizeof(errstr)) == NULL);
    fprintf(stderr, "   '%s' (in use) -> %s\n", busy, errstr);
    ASSERT_STR_CONTAINS(errstr, busy);
    ASSERT_STR_CONTAINS(errstr, "in use");
    hub_http_stop(h);

    /* Stopping releases the port at once. */
    h = start(busy, 0, 1000, NULL);
    hub_http_stop(h);
}

static void test_accepted_addresses(void)
{
    response_t r;
    hub_http_t *h;

    /* With the flag, the wildcard address is allowed (and reachable over loopback). */
    h = start("0.0.0.0:0", 1, 1000, NULL);
    request(hub_http_port(h), "GET", "/healthz", &r);
    ASSERT_INT_EQ(r.status, 200);
    hub_http_stop(h);

    /* Any 127/8 address, and names that resolve to loopback. */
    h = start("127.0.0.2:0", 0, 1000, NULL);
    hub_http_stop(h);
    h = start("localhost:0", 0, 1000, NULL);
    hub_http_stop(h);
    h = start("[::1]:0", 0, 1000, NULL);
    request_to("[::1]", hub_http_port(h), "GET", "/healthz", &r);
    ASSERT_INT_EQ(r.status, 200);
    hub_http_stop(h);

    /* NULL stands for a disabled endpoint: every call is harmless. */
    hub_http_heartbeat(NULL);
    hub_http_set_ready(NULL, 1, "x");
    ASSERT_INT_EQ(hub_http_port(NULL), 0);
    hub_http_stop(NULL);
}

/* The settings a service adds to its table: defaults, the environment override, a file. */
static void test_config_items(void)
{
    hub_http_conf_t conf = {0};
    const hub_cfg_item_t items[] = {HUB_HTTP_CFG_ITEMS("planner", &conf, HUB_HTTP_PORT_PLANNER)};
    char errstr[512] = "";
    const char *dir = hub_test_tmpdir();

    unsetenv("HUB_HTTP_LISTEN");
    ASSERT_OK(hub_cfg_load(NULL, items, HUB_ARRAY_LEN(items), errstr, sizeof(errstr)), errstr);
    ASSERT_STR_EQ(conf.listen, "127.0.0.1:9472");
    ASSERT_INT_EQ(conf.allow_remote, 0);
    ASSERT_INT_EQ(conf.heartbeat_ms, 30000);
    hub_cfg_free(items, HUB_ARRAY_LEN(items));

    /* Several instances on one host (tests, scale-out drills) each pick a free port. */
    setenv("HUB_HTTP_LISTEN", "127.0.0.1:0", 1);
    ASSERT_OK(hub_cfg_load(NULL, items, HUB_ARRAY_LEN(items), errstr, sizeof(errstr)), errstr);
    ASSERT_STR_EQ(conf.listen, "127.0.0.1:0");
    hub_cfg_free(items, HUB_ARRAY_LEN(items));
    unsetenv("HUB_HTTP_LISTEN");

    const char *path = hub_test_write_file(
        dir, "http.conf",
        "planner: { http_listen = \"\"; http_allow_remote = true; http_heartbeat_ms = 500; };\n");
    ASSERT_OK(hub_cfg_load(path, items, HUB_ARRAY_LEN(items), errstr, sizeof(errstr)), errstr);
    ASSERT_STR_EQ(conf.listen, "");
    ASSERT_INT_EQ(conf.allow_remote, 1);
    ASSERT_INT_EQ(conf.heartbeat_ms, 500);
    hub_cfg_free(items, HUB_ARRAY_LEN(items));

    path = hub_test_write_file(dir, "bad.conf", "planner: { http_heartbeat_ms = 5; };\n");
    ASSERT_INT_EQ(hub_cfg_load(path, items, HUB_ARRAY_LEN(items), errstr, sizeof(errstr)),
                  HUB_ECONFIG);
    ASSERT_STR_CONTAINS(errstr, "bad.conf:1");
    hub_cfg_free(items, HUB_ARRAY_LEN(items));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN_TEST(test_metrics_endpoint);
    RUN_TEST(test_healthz_heartbeat);
    RUN_TEST(test_readyz);
    RUN_TEST(test_not_found_and_methods);
    RUN_TEST(test_refused_addresses);
    RUN_TEST(test_accepted_addresses);
    RUN_TEST(test_config_items);
    curl_global_cleanup();
    return 0;
}
