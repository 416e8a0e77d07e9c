/*
 * test_hubctl_replay.c: dead letters made by hub_deadletter_send on the real
 * broker, then `hubctl dead-letters list` and `replay` run as a user would:
 * list shows every reason header and no payload; replay sends the original
 * key and bytes back to the source topic with the replay count raised by
 * one; a second run sends nothing; a message that keeps failing is refused
 * once it reaches --max-replays, so nothing loops for ever.
 */
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "hub/common.h"
#include "hub/deadletter.h"
#include "hub/kafka.h"
#include "test.h"

static char hubctl[1100];
static char config[1024];
static char tmpdir[512];

/* hubctl sits in the build tree beside this test: <build>/services/hubctl/hubctl. */
static void find_hubctl(void)
{
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        TEST_FAIL_("cannot read /proc/self/exe");
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(hubctl, sizeof(hubctl), "%s/../services/hubctl/hubctl", self);
    if (access(hubctl, X_OK) != 0)
        TEST_FAIL_("hubctl not found at %s (build the hubctl target)", hubctl);
}

/* Runs hubctl with args; stdout into out (NUL-terminated), stderr echoed. Returns the status. */
static int run(const char *args, char *out, size_t size)
{
    char cmd[8192], errpath[600];
    size_t len = 0;
    snprintf(errpath, sizeof(errpath), "%s/stderr", tmpdir);
    snprintf(cmd, sizeof(cmd), "'%s' --config '%s' %s 2>'%s'", hubctl, config, args, errpath);
    FILE *p = popen(cmd, "r");
    if (!p)
        TEST_FAIL_("popen %s", cmd);
    while (len + 1 < size && !feof(p)) {
        size_t got = fread(out + len, 1, size - 1 - len, p);
        if (got == 0)
            break;
        len += got;
    }
    out[len] = '\0';
    int status = pclose(p);
    char *err = hub_read_file(errpath, NULL, NULL, 0);
    fprintf(stderr, "$ hubctl %s\n%s%s", args, out, err ? err : "");
    free(err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Parses hubctl's JSON lines; returns an array (caller decrefs). */
static json_t *json_lines(const char *text)
{
    json_t *arr = json_array();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t jerr;
        json_t *o = json_loadb(p, n, 0, &jerr);
        if (!o)
            TEST_FAIL_("not a JSON line (%s): %.*s", jerr.text, (int)n, p);
        json_array_append_new(arr, o);
        p += n + (nl ? 1 : 0);
    }
    return arr;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(null)";
}

static long long jint(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        TEST_FAIL_("%s is not an integer", k);
    return json_integer_value(v);
}

static hub_producer_t *producer(void)
{
    hub_props_t props = {0};
    char errstr[512] = "";
    hub_test_kafka_props(&props);
    hub_producer_t *p = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    if (!p)
        TEST_FAIL_("producer: %s", errstr);
    hub_props_clear(&props);
    return p;
}

/* A consumer reading topic from the start; the caller keeps it while it holds messages. */
static hub_consumer_t *reader(const char *topic)
{
    hub_props_t props = {0};
    char errstr[512] = "", group[128];
    const char *topics[1] = {topic};
    snprintf(group, sizeof(group), "test-replay-%s", hub_test_unique());
    hub_test_kafka_props(&props);
    hub_consumer_t *c = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("consumer: %s", errstr);
    hub_props_clear(&props);
    return c;
}

static rd_kafka_message_t *next(hub_consumer_t *c)
{
    int64_t deadline = hub_monotonic_ms() + 60000;
    while (hub_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = hub_consumer_poll(c, 200);
        if (m)
            return m;
    }
    TEST_FAIL_("no message within 60 s");
}

/* Asserts no further message arrives on c for a while. */
static void no_more(hub_consumer_t *c)
{
    int64_t until = hub_monotonic_ms() + 2000;
    while (hub_monotonic_ms() < until) {
        rd_kafka_message_t *m = hub_consumer_poll(c, 200);
        if (m) {
            fprintf(stderr, "unexpected message at offset %lld\n", (long long)m->offset);
            rd_kafka_message_destroy(m);
            TEST_FAIL_("a message arrived that should not have");
        }
    }
}

static void produce(hub_producer_t *p, const char *topic, const char *key, const void *value,
                    size_t len, const char *replays)
{
    char errstr[512] = "";
    rd_kafka_headers_t *h = NULL;
    if (replays) {
        h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, HUB_DLQ_HEADER_REPLAYS, -1, replays, -1);
    }
    ASSERT_OK(
        hub_producer_send(p, topic, 0, key, strlen(key), value, len, h, errstr, sizeof(errstr)),
        errstr);
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
}

static void dead_letter(hub_producer_t *p, const char *dlq, const rd_kafka_message_t *m,
                        const char *cls)
{
    char errstr[512] = "";
    ASSERT_OK(hub_deadletter_send(p, dlq, "hub-test-service", m, cls, "undecodable: bad magic byte",
                                  errstr, sizeof(errstr)),
              errstr);
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
}

static int header_is(const rd_kafka_message_t *m, const char *name, const char *want)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers((rd_kafka_message_t *)m, &h) ||
        rd_kafka_header_get_last(h, name, &v, &n))
        return 0;
    return n == strlen(want) && memcmp(v, want, n) == 0;
}

static void test_list_and_replay(void)
{
    static const char bad_a[] = "\x00\x00\x00\x03\xe9secret-payload-a\xff";
    static const char bad_b[] = "\x00\x00\x00\x03\xe9secret-payload-b";
    static const char bad_d[] = "\x07secret-payload-d";
    char src[256], src2[256], dlq[256], group[128], args[1024], out[65536];
    hub_producer_t *p = producer();

    hub_test_topic("replay_src", 1, src, sizeof(src));
    hub_test_topic("replay_src2", 1, src2, sizeof(src2));
    hub_test_topic("replay_dlq", 1, dlq, sizeof(dlq));
    snprintf(group, sizeof(group), "hubctl-replay-%s", hub_test_unique());
    snprintf(tmpdir, sizeof(tmpdir), "%s", hub_test_tmpdir());
    char text[2048];
    snprintf(text, sizeof(text),
             "kafka = {%s };\n"
             "schema_registry = { url = \"\"; };\n"
             "log = { level = \"warn\"; };\n"
             "topics = { dead_letters = \"%s\"; };\n"
             "hubctl = { replay_group = \"%s\"; };\n",
             hub_test_kafka_settings(), dlq, group);
    snprintf(config, sizeof(config), "%s", hub_test_write_file(tmpdir, "hub.conf", text));

    /* Three rejected messages: A fresh, B already replayed 3 times, D from another topic. */
    produce(p, src, "action-a", bad_a, sizeof(bad_a) - 1, NULL);
    produce(p, src, "action-b", bad_b, sizeof(bad_b) - 1, "3");
    produce(p, src2, "group-d", bad_d, sizeof(bad_d) - 1, NULL);
    hub_consumer_t *csrc = reader(src), *csrc2 = reader(src2);
    rd_kafka_message_t *a = next(csrc), *b = next(csrc), *d = next(csrc2);
    dead_letter(p, dlq, a, "decode");
    dead_letter(p, dlq, b, "decode");
    dead_letter(p, dlq, d, "validation");

    /* list: every header, no payload. */
    ASSERT_INT_EQ(run("dead-letters list", out, sizeof(out)), 0);
    ASSERT_TRUE(strstr(out, "secret-payload") == NULL);
    json_t *rows = json_lines(out);
    ASSERT_INT_EQ(json_array_size(rows), 3);
    static const struct {
        const char *cls, *topic_of;
        long long offset, replays, bytes;
    } want[] = {{"decode", "src", 0, 0, sizeof(bad_a) - 1},
                {"decode", "src", 1, 3, sizeof(bad_b) - 1},
                {"validation", "src2", 0, 0, sizeof(bad_d) - 1}};
    for (size_t i = 0; i < 3; i++) {
        const json_t *r = json_array_get(rows, i);
        ASSERT_INT_EQ(jint(r, "offset"), (long long)i);
        ASSERT_STR_EQ(jstr(r, "class"), want[i].cls);
        ASSERT_STR_EQ(jstr(r, "message"), "undecodable: bad magic byte");
        ASSERT_STR_EQ(jstr(r, "source_topic"), strcmp(want[i].topic_of, "src") ? src2 : src);
        ASSERT_INT_EQ(jint(r, "source_partition"), 0);
        ASSERT_INT_EQ(jint(r, "source_offset"), want[i].offset);
        ASSERT_STR_EQ(jstr(r, "service"), "hub-test-service");
        ASSERT_INT_EQ(strlen(jstr(r, "timestamp")), 24);
        ASSERT_INT_EQ(jint(r, "replay_count"), want[i].replays);
        ASSERT_INT_EQ(jint(r, "bytes"), want[i].bytes);
    }
    json_decref(rows);
    ASSERT_INT_EQ(run("dead-letters list --count 1", out, sizeof(out)), 0);
    rows = json_lines(out);
    ASSERT_INT_EQ(json_array_size(rows), 1);
    json_decref(rows);

    /* A dry run reports and changes nothing. */
    snprintf(args, sizeof(args), "dead-letters replay --dry-run --source-topic '%s'", src);
    ASSERT_INT_EQ(run(args, out, sizeof(out)), 0);
    rows = json_lines(out);
    ASSERT_INT_EQ(json_array_size(rows), 2);
    ASSERT_STR_EQ(jstr(json_array_get(rows, 0), "action"), "would-replay");
    ASSERT_STR_EQ(jstr(json_array_get(rows, 1), "action"), "refused");
    json_decref(rows);
    no_more(csrc);

    /* Replay from src: A goes back with replay count 1; B (3 replays) is refused; D passed over. */
    snprintf(args, sizeof(args), "dead-letters replay --source-topic '%s'", src);
    ASSERT_INT_EQ(run(args, out, sizeof(out)), 0);
    rows = json_lines(out);
    ASSERT_INT_EQ(json_array_size(rows), 2);
    ASSERT_STR_EQ(jstr(json_array_get(rows, 0), "action"), "replayed");
    ASSERT_INT_EQ(jint(json_array_get(rows, 0), "replay_count"), 1);
    ASSERT_STR_EQ(jstr(json_array_get(rows, 0), "source_topic"), src);
    ASSERT_STR_EQ(jstr(json_array_get(rows, 1), "action"), "refused");
    ASSERT_STR_CONTAINS(jstr(json_array_get(rows, 1), "reason"), "--max-replays 3");
    json_decref(rows);

    rd_kafka_message_t *a1 = next(csrc);
    ASSERT_INT_EQ(a1->key_len, strlen("action-a"));
    ASSERT_TRUE(memcmp(a1->key, "action-a", a1->key_len) == 0);
    ASSERT_INT_EQ(a1->len, sizeof(bad_a) - 1);
    ASSERT_TRUE(memcmp(a1->payload, bad_a, a1->len) == 0);
    ASSERT_TRUE(header_is(a1, HUB_DLQ_HEADER_REPLAYS, "1"));
    ASSERT_INT_EQ(hub_deadletter_replays(a1), 1);
    no_more(csrc);

    /* A second run sends nothing: the group remembers what was handled. */
    ASSERT_INT_EQ(run("dead-letters replay", out, sizeof(out)), 0);
    ASSERT_STR_EQ(out, "");
    no_more(csrc);

    /* Another group can still replay what the first passed over. */
    snprintf(args, sizeof(args), "dead-letters replay --class validation --group '%s-2'", group);
    ASSERT_INT_EQ(run(args, out, sizeof(out)), 0);
    rows = json_lines(out);
    ASSERT_INT_EQ(json_array_size(rows), 1);
    ASSERT_STR_EQ(jstr(json_array_get(rows, 0), "source_topic"), src2);
    json_decref(rows);
    rd_kafka_message_t *d1 = next(csrc2);
    ASSERT_TRUE(memcmp(d1->payload, bad_d, d1->len) == 0);
    ASSERT_INT_EQ(hub_deadletter_replays(d1), 1);

    /* A keeps failing: each failure carries its count into the next dead letter ... */
    dead_letter(p, dlq, a1, "decode");
    ASSERT_INT_EQ(run("dead-letters replay --max-replays 2", out, sizeof(out)), 0);
    ASSERT_STR_CONTAINS(out, "\"action\":\"replayed\"");
    ASSERT_STR_CONTAINS(out, "\"replay_count\":2");
    rd_kafka_message_t *a2 = next(csrc);
    ASSERT_INT_EQ(hub_deadletter_replays(a2), 2);
    ASSERT_TRUE(memcmp(a2->payload, bad_a, a2->len) == 0);

    /* ... until it reaches the limit and is refused instead of sent. */
    dead_letter(p, dlq, a2, "decode");
    ASSERT_INT_EQ(run("dead-letters replay --max-replays 2", out, sizeof(out)), 0);
    ASSERT_STR_CONTAINS(out, "\"action\":\"refused\"");
    ASSERT_STR_CONTAINS(out, "replayed 2 time(s) already");
    ASSERT_TRUE(strstr(out, "\"action\":\"replayed\"") == NULL);
    no_more(csrc);

    /* Usage errors. */
    ASSERT_INT_EQ(run("dead-letters", out, sizeof(out)), 2);
    ASSERT_INT_EQ(run("dead-letters list --dry-run", out, sizeof(out)), 2);
    ASSERT_INT_EQ(run("dead-letters replay --max-replays many", out, sizeof(out)), 2);
    ASSERT_INT_EQ(run("dead-letters --help", out, sizeof(out)), 0);
    ASSERT_STR_CONTAINS(out, "--max-replays");

    rd_kafka_message_destroy(a);
    rd_kafka_message_destroy(b);
    rd_kafka_message_destroy(d);
    rd_kafka_message_destroy(a1);
    rd_kafka_message_destroy(a2);
    rd_kafka_message_destroy(d1);
    hub_consumer_destroy(csrc);
    hub_consumer_destroy(csrc2);
    hub_producer_destroy(p);
}

int main(void)
{
    find_hubctl();
    RUN_TEST(test_list_and_replay);
    return 0;
}
