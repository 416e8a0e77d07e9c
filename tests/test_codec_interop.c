/*
 * test_codec_interop.c: the hub's bytes are standard Avro. An independent
 * implementation (Debian's python3-avro, driven by tests/peers/avro_peer.py
 * with only the schemas/ folder) decodes every event the codec writes, the
 * codec decodes every event Python writes (byte-identical to its own), and
 * events a partner publishes with confluent-kafka through the real broker are
 * accepted by the hub.
 */
#include <sys/wait.h>

#include "codec_cases.h"
#include "hub/codec.h"
#include "hub/common.h"
#include "hub/kafka.h"
#include "test.h"

static hub_event_t cases[CODEC_CASES_MAX];
static int ncases;

static void run_peer(const char *args)
{
    char cmd[4096];
    const char *data = hub_test_env("HUB_DATA_DIR");
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/tests/peers/avro_peer.py %s", data, args);
    fflush(stderr);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        TEST_FAIL_("peer failed (status %d): %s", rc, cmd);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    ASSERT_INT_EQ(fwrite(p, 1, n, f), n);
    fclose(f);
}

static char *case_json(const hub_event_t *ev)
{
    json_t *j = hub_event_to_json(ev);
    ASSERT_TRUE(j != NULL);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static void assert_same_event(const hub_event_t *a, const hub_event_t *b)
{
    char *sa = case_json(a), *sb = case_json(b);
    if (strcmp(sa, sb) != 0)
        TEST_FAIL_("events differ:\n  expected %s\n  got      %s", sa, sb);
    free(sa);
    free(sb);
}

static void test_both_directions(void)
{
    const char *dir = hub_test_tmpdir();
    char errstr[512] = "", path[1024], args[2048];
    hub_codec_opts_t opts = {0};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    hub_buf_t buf = {0};
    hub_event_t out;

    ASSERT_TRUE(c != NULL);
    for (int i = 0; i < ncases; i++) {
        const char *event = hub_event_type_name(cases[i].type);
        ASSERT_OK(hub_codec_encode(c, &cases[i], &buf, errstr, sizeof(errstr)), errstr);
        snprintf(path, sizeof(path), "%s/case_%02d.%s.bin", dir, i, event);
        write_bytes(path, buf.data, buf.len);
        char *json = case_json(&cases[i]);
        snprintf(path, sizeof(path), "case_%02d.%s.json", i, event);
        hub_test_write_file(dir, path, json);
        free(json);
    }

    /* Python decodes what the hub wrote ... */
    snprintf(args, sizeof(args), "check %s/schemas %s", hub_test_env("HUB_DATA_DIR"), dir);
    run_peer(args);

    /* ... and writes the same events, which the hub decodes: the bytes are the hub's own. */
    snprintf(args, sizeof(args), "encode %s/schemas %s", hub_test_env("HUB_DATA_DIR"), dir);
    run_peer(args);
    for (int i = 0; i < ncases; i++) {
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/case_%02d.%s.py.bin", dir, i,
                 hub_event_type_name(cases[i].type));
        char *py = hub_read_file(path, &len, errstr, sizeof(errstr));
        if (!py)
            TEST_FAIL_("%s", errstr);
        ASSERT_OK(hub_codec_decode(c, py, len, &out, errstr, sizeof(errstr)), errstr);
        assert_same_event(&cases[i], &out);
        ASSERT_OK(hub_codec_encode(c, &cases[i], &buf, errstr, sizeof(errstr)), errstr);
        if (len != buf.len || memcmp(py, buf.data, len) != 0)
            TEST_FAIL_("case %d: python3-avro's bytes differ from the hub's", i);
        free(py);
    }
    fprintf(stderr, "   %d events byte-identical between python3-avro and the hub\n", ncases);
    hub_buf_free(&buf);
    hub_codec_destroy(c);
}

static void test_partner_publishes(void)
{
    const char *dir = hub_test_tmpdir();
    char topic[256], group[128], errstr[512] = "", args[8192], path[1024];
    hub_props_t props = {0};
    hub_codec_opts_t opts = {0};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    hub_event_t out;
    int seen[CODEC_CASES_MAX] = {0};

    ASSERT_TRUE(c != NULL);
    hub_test_topic("interop", 3, topic, sizeof(topic));
    size_t used =
        (size_t)snprintf(args, sizeof(args), "publish %s/schemas %s %s",
                         hub_test_env("HUB_DATA_DIR"), hub_test_env("HUB_KAFKA_BOOTSTRAP"), topic);
    for (int t = 1; t < HUB_EVENT__COUNT; t++) {
        const char *event = hub_event_type_name((hub_event_type_t)t);
        snprintf(path, sizeof(path), "%s/%s.jsonl", dir, event);
        FILE *f = fopen(path, "w");
        ASSERT_TRUE(f != NULL);
        for (int i = 0; i < ncases; i++) {
            if ((int)cases[i].type != t)
                continue;
            char *json = case_json(&cases[i]);
            fprintf(f, "%s\n", json);
            free(json);
        }
        fclose(f);
        used += (size_t)snprintf(args + used, sizeof(args) - used, " %s %s", event, path);
    }
    run_peer(args);

    hub_test_kafka_props(&props);
    const char *topics[1] = {topic};
    snprintf(group, sizeof(group), "interop-%s", hub_test_unique());
    hub_consumer_t *cons = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(cons != NULL);
    int got = 0;
    int64_t deadline = hub_monotonic_ms() + 60000;
    while (got < ncases && hub_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = hub_consumer_poll(cons, 200);
        if (!m)
            continue;
        ASSERT_OK(hub_codec_decode(c, m->payload, m->len, &out, errstr, sizeof(errstr)), errstr);
        int i = 0;
        while (i < ncases && strcmp(cases[i].event_id, out.event_id) != 0)
            i++;
        ASSERT_INT_OP(i, <, ncases);
        ASSERT_INT_EQ(seen[i], 0);
        seen[i] = 1;
        assert_same_event(&cases[i], &out);
        const char *key = hub_event_key(&cases[i]);
        ASSERT_INT_EQ(m->key_len, strlen(key));
        ASSERT_TRUE(memcmp(m->key, key, m->key_len) == 0);
        hub_consumer_store(cons, m);
        rd_kafka_message_destroy(m);
        got++;
    }
    ASSERT_INT_EQ(got, ncases);
    fprintf(stderr, "   %d partner events from confluent-kafka decoded by the hub\n", got);
    hub_consumer_destroy(cons);
    hub_props_clear(&props);
    hub_codec_destroy(c);
}

int main(void)
{
    hub_test_env("HUB_KAFKA_BOOTSTRAP");
    ncases = codec_cases(cases);
    RUN_TEST(test_both_directions);
    RUN_TEST(test_partner_publishes);
    return 0;
}
