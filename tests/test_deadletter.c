/*
 * test_deadletter.c: messages consumed from a real topic are dead-lettered to
 * a real dead-letter topic; what arrives there has the original key and value
 * bytes unchanged and every reason header, and no header carries the payload.
 */
#include <limits.h>

#include "hub/common.h"
#include "hub/date.h"
#include "hub/deadletter.h"
#include "hub/kafka.h"
#include "test.h"

/* Each source message: its bytes and the replay-count header it carries (NULL: none). */
static const struct {
    const char *key;
    const char *value;
    size_t value_len;
    const char *replay_header;
    int expect_replays;
} msgs[] = {
    {"key-undecodable", "\x01\x00\x00\x03\xe9garbage\xff\x00tail", 17, NULL, 0},
    {"key-replayed", "\x00\x00\x00\x03\xe9\x02\x04", 7, "2", 2},
    {"key-garbage-count", "payload-3", 9, "two", 0},
    {"key-huge-count", "payload-4", 9, "99999999999999999999", INT_MAX},
    {NULL, "keyless", 7, "0", 0},
};

/* Whether needle occurs in hay (byte strings). */
static int contains(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
    for (size_t i = 0; nlen <= hlen && i <= hlen - nlen; i++)
        if (memcmp((const char *)hay + i, needle, nlen) == 0)
            return 1;
    return 0;
}

static const char *header(const rd_kafka_message_t *m, const char *name, char *buf, size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers((rd_kafka_message_t *)m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        TEST_FAIL_("header %s missing", name);
    snprintf(buf, size, "%.*s", (int)n, (const char *)v);
    return buf;
}

/*
 * Consumes exactly n messages (in order: the topics have one partition). The
 * consumer is returned because librdkafka's handle must outlive its messages.
 */
static hub_consumer_t *consume_n(const char *topic, rd_kafka_message_t **out, int n)
{
    hub_props_t props = {0};
    char errstr[512] = "", group[128];
    const char *topics[1] = {topic};
    int got = 0;

    snprintf(group, sizeof(group), "test-dlq-%s", hub_test_unique());
    hub_test_kafka_props(&props);
    hub_consumer_t *c = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("consumer: %s", errstr);
    int64_t deadline = hub_monotonic_ms() + 60000;
    while (got < n && hub_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = hub_consumer_poll(c, 200);
        if (m)
            out[got++] = m;
    }
    ASSERT_INT_EQ(got, n);
    hub_props_clear(&props);
    return c;
}

static void test_classes(void)
{
    static const struct {
        int err;
        const char *cls;
    } cases[] = {
        {HUB_EDECODE, "decode"},    {HUB_ESCHEMA, "schema"}, {HUB_EVALID, "validation"},
        {HUB_EINVAL, "validation"}, {HUB_EPG, "database"},   {HUB_EKAFKA, "delivery"},
        {HUB_ENOMEM, "processing"}, {HUB_EIO, "processing"}, {0, "processing"},
        {-999, "processing"},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++)
        ASSERT_STR_EQ(hub_deadletter_class(cases[i].err), cases[i].cls);
}

static void test_round_trip(void)
{
    char src[256], dlq[256], errstr[512] = "";
    hub_props_t props = {0};
    const int n = (int)HUB_ARRAY_LEN(msgs);
    rd_kafka_message_t *in[8], *out[8];

    hub_test_topic("dlq_src", 1, src, sizeof(src));
    hub_test_topic("dlq", 1, dlq, sizeof(dlq));
    hub_test_kafka_props(&props);
    hub_producer_t *p = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    if (!p)
        TEST_FAIL_("producer: %s", errstr);

    /* The "bad" messages, as a partner might have sent them. */
    for (int i = 0; i < n; i++) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, "traceparent", -1, "00-abc-def-01", -1);
        if (msgs[i].replay_header)
            rd_kafka_header_add(h, HUB_DLQ_HEADER_REPLAYS, -1, msgs[i].replay_header, -1);
        ASSERT_OK(hub_producer_send(p, src, 0, msgs[i].key, msgs[i].key ? strlen(msgs[i].key) : 0,
                                    msgs[i].value, msgs[i].value_len, h, errstr, sizeof(errstr)),
                  errstr);
    }
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);

    hub_consumer_t *cin = consume_n(src, in, n);
    int64_t before = hub_now_ms();
    for (int i = 0; i < n; i++) {
        ASSERT_INT_EQ(hub_deadletter_replays(in[i]), msgs[i].expect_replays);
        ASSERT_OK(hub_deadletter_send(p, dlq, "hub-test", in[i], hub_deadletter_class(HUB_EDECODE),
                                      "bad magic byte 0x01", errstr, sizeof(errstr)),
                  errstr);
    }
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
    int64_t after = hub_now_ms();

    hub_consumer_t *cout = consume_n(dlq, out, n);
    for (int i = 0; i < n; i++) {
        char buf[256], want[64];
        rd_kafka_headers_t *h = NULL;
        const char *name;
        const void *v;
        size_t vlen;

        /* Key and value bytes unchanged. */
        ASSERT_INT_EQ(out[i]->key_len, in[i]->key_len);
        ASSERT_TRUE(out[i]->key_len == 0 || memcmp(out[i]->key, in[i]->key, in[i]->key_len) == 0);
        if (!msgs[i].key)
            ASSERT_TRUE(out[i]->key == NULL);
        ASSERT_INT_EQ(out[i]->len, msgs[i].value_len);
        ASSERT_TRUE(memcmp(out[i]->payload, msgs[i].value, msgs[i].value_len) == 0);

        /* Every reason header, with the right values. */
        ASSERT_STR_EQ(header(out[i], HUB_DLQ_HEADER_CLASS, buf, sizeof(buf)), "decode");
        ASSERT_STR_EQ(header(out[i], HUB_DLQ_HEADER_MESSAGE, buf, sizeof(buf)),
                      "bad magic byte 0x01");
        ASSERT_STR_EQ(header(out[i], HUB_DLQ_HEADER_TOPIC, buf, sizeof(buf)), src);
        snprintf(want, sizeof(want), "%d", (int)in[i]->partition);
        ASSERT_STR_EQ(header(out[i], HUB_DLQ_HEADER_PARTITION, buf, sizeof(buf)), want);
        snprintf(want, sizeof(want), "%lld", (long long)in[i]->offset);
        ASSERT_STR_EQ(header(out[i], HUB_DLQ_HEADER_OFFSET, buf, sizeof(buf)), want);
        ASSERT_STR_EQ(header(out[i], HUB_DLQ_HEADER_SERVICE, buf, sizeof(buf)), "hub-test");
        int64_t ts;
        ASSERT_OK(
            hub_timestamp_parse(header(out[i], HUB_DLQ_HEADER_TIMESTAMP, buf, sizeof(buf)), &ts),
            buf);
        ASSERT_INT_OP(ts, >=, before - 1);
        ASSERT_INT_OP(ts, <=, after);
        snprintf(want, sizeof(want), "%d", msgs[i].expect_replays);
        ASSERT_STR_EQ(header(out[i], HUB_DLQ_HEADER_REPLAYS, buf, sizeof(buf)), want);
        ASSERT_INT_EQ(hub_deadletter_replays(out[i]), msgs[i].expect_replays);

        /* Only the reason headers travel, and none of them holds payload bytes. */
        ASSERT_INT_EQ(rd_kafka_message_headers(out[i], &h), RD_KAFKA_RESP_ERR_NO_ERROR);
        ASSERT_INT_EQ(rd_kafka_header_cnt(h), 8);
        for (size_t k = 0; rd_kafka_header_get_all(h, k, &name, &v, &vlen) == 0; k++) {
            ASSERT_TRUE(strncmp(name, "hub.errors.", 11) == 0);
            ASSERT_TRUE(!contains(v, vlen, msgs[i].value, 7));
        }
    }
    for (int i = 0; i < n; i++) {
        rd_kafka_message_destroy(in[i]);
        rd_kafka_message_destroy(out[i]);
    }
    hub_consumer_destroy(cin);
    hub_consumer_destroy(cout);
    hub_producer_destroy(p);
    hub_props_clear(&props);
}

/* A long reason is cut to 1024 characters; a message without a count header gets "0". */
static void test_reason_truncated(void)
{
    char src[256], dlq[256], errstr[512] = "";
    hub_props_t props = {0};
    rd_kafka_message_t *in[1], *out[1];
    char reason[3000], buf[2048];

    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    hub_test_topic("dlq_src", 1, src, sizeof(src));
    hub_test_topic("dlq", 1, dlq, sizeof(dlq));
    hub_test_kafka_props(&props);
    hub_producer_t *p = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    ASSERT_OK(hub_producer_send(p, src, 0, "k", 1, "v", 1, NULL, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
    hub_consumer_t *cin = consume_n(src, in, 1);
    ASSERT_INT_EQ(hub_deadletter_replays(in[0]), 0);
    ASSERT_OK(hub_deadletter_send(p, dlq, "hub-test", in[0], "processing", reason, errstr,
                                  sizeof(errstr)),
              errstr);
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
    hub_consumer_t *cout = consume_n(dlq, out, 1);
    ASSERT_INT_EQ(strlen(header(out[0], HUB_DLQ_HEADER_MESSAGE, buf, sizeof(buf))), 1024);
    ASSERT_STR_EQ(header(out[0], HUB_DLQ_HEADER_CLASS, buf, sizeof(buf)), "processing");
    ASSERT_STR_EQ(header(out[0], HUB_DLQ_HEADER_REPLAYS, buf, sizeof(buf)), "0");
    rd_kafka_message_destroy(in[0]);
    rd_kafka_message_destroy(out[0]);
    hub_consumer_destroy(cin);
    hub_consumer_destroy(cout);
    hub_producer_destroy(p);
    hub_props_clear(&props);
}

int main(void)
{
    RUN_TEST(test_classes);
    RUN_TEST(test_round_trip);
    RUN_TEST(test_reason_truncated);
    return 0;
}
