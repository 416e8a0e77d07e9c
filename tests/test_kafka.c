/*
 * test_kafka.c: lib's producer and consumer against the real broker: exact
 * counts, per-partition (and so per-key) order, and committed offsets that a
 * restarted consumer in the same group resumes from; the wakeup descriptor
 * for waiting on the consumer beside other descriptors.
 */
#include <poll.h>

#include "hub/common.h"
#include "hub/kafka.h"
#include "hub/log.h"
#include "test.h"

#define NKEYS 50

static void produce(const char *topic, int n, int *next_seq)
{
    hub_props_t props = {0};
    char errstr[512] = "";
    hub_test_kafka_props(&props);
    hub_props_set(&props, "linger.ms", "5");
    hub_producer_t *p = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(p != NULL);
    for (int i = 0; i < n; i++) {
        char key[32], val[64];
        int k = i % NKEYS;
        snprintf(key, sizeof(key), "key-%d", k);
        snprintf(val, sizeof(val), "%d:%d", k, next_seq[k]++);
        ASSERT_OK(hub_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), val,
                                    strlen(val), NULL, errstr, sizeof(errstr)),
                  errstr);
    }
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(hub_producer_delivered(p), n);
    ASSERT_INT_EQ(hub_producer_failures(p), 0);
    hub_producer_destroy(p);
    hub_props_clear(&props);
}

/* Consumes exactly `expect` messages (failing after 60 s), checking order; then checks none follow.
 */
static void consume(const char *topic, const char *group, int expect, int *seen_seq)
{
    hub_props_t props = {0};
    char errstr[512] = "";
    const char *topics[1] = {topic};
    int64_t last_offset[8];
    int got = 0;

    for (int i = 0; i < 8; i++)
        last_offset[i] = -1;
    hub_test_kafka_props(&props);
    hub_consumer_t *c = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(c != NULL);
    int64_t deadline = hub_monotonic_ms() + 60000;
    while (got < expect && hub_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = hub_consumer_poll(c, 200);
        if (!m)
            continue;
        ASSERT_INT_OP(m->partition, <, 8);
        ASSERT_INT_OP(m->offset, >, last_offset[m->partition]);
        last_offset[m->partition] = m->offset;
        char val[64];
        snprintf(val, sizeof(val), "%.*s", (int)m->len, (const char *)m->payload);
        int k, seq;
        ASSERT_INT_EQ(sscanf(val, "%d:%d", &k, &seq), 2);
        ASSERT_INT_EQ(seq, seen_seq[k]); /* no gap, no repeat, in order */
        seen_seq[k]++;
        ASSERT_OK(hub_consumer_store(c, m), "store");
        rd_kafka_message_destroy(m);
        got++;
    }
    ASSERT_INT_EQ(got, expect);
    /* Nothing beyond what was produced arrives. */
    int64_t quiet = hub_monotonic_ms() + 1500;
    while (hub_monotonic_ms() < quiet) {
        rd_kafka_message_t *m = hub_consumer_poll(c, 100);
        if (m) {
            rd_kafka_message_destroy(m);
            TEST_FAIL_("unexpected extra message");
        }
    }
    ASSERT_OK(hub_consumer_commit(c, errstr, sizeof(errstr)), errstr);
    hub_consumer_destroy(c);
    hub_props_clear(&props);
}

static void test_produce_consume_exact(void)
{
    char topic[256], group[256];
    int next_seq[NKEYS] = {0}, seen_seq[NKEYS] = {0};

    hub_test_topic("kafka", 3, topic, sizeof(topic));
    snprintf(group, sizeof(group), "g.%s", hub_test_unique());
    produce(topic, 20000, next_seq);
    consume(topic, group, 20000, seen_seq);
    /* A restarted member of the same group resumes after the committed offsets. */
    produce(topic, 1000, next_seq);
    consume(topic, group, 1000, seen_seq);
    for (int k = 0; k < NKEYS; k++)
        ASSERT_INT_EQ(seen_seq[k], next_seq[k]);
}

/* Waits (at most 30 s) for the wakeup descriptor; 1 when it became readable. */
static int woken(hub_consumer_t *c, int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, 30000);
    hub_consumer_wakeup_drain(c);
    return r == 1 && (pfd.revents & POLLIN);
}

static void test_wakeup_fd(void)
{
    hub_props_t props = {0};
    char topic[256], group[256], errstr[512] = "";
    const char *topics[1] = {topic};
    int next_seq[NKEYS] = {0}, got = 0, fd, wakeups = 0;
    rd_kafka_message_t *m;

    hub_test_topic("kafka-wake", 1, topic, sizeof(topic));
    snprintf(group, sizeof(group), "g.%s", hub_test_unique());
    hub_test_kafka_props(&props);
    hub_consumer_t *c = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(c != NULL);
    fd = hub_consumer_wakeup_fd(c);
    ASSERT_INT_OP(fd, >=, 0);
    ASSERT_INT_EQ(hub_consumer_wakeup_fd(c), fd); /* set up once */

    /* Joining the group (the assignment arrives through the queue too), then idle: polled
       dry, the descriptor stays quiet. */
    int64_t deadline = hub_monotonic_ms() + 5000;
    while (hub_monotonic_ms() < deadline)
        if ((m = hub_consumer_poll(c, 100)))
            rd_kafka_message_destroy(m);
    hub_consumer_wakeup_drain(c);
    struct pollfd quiet = {.fd = fd, .events = POLLIN};
    ASSERT_INT_EQ(poll(&quiet, 1, 300), 0);

    /* A message on the empty queue makes it readable; poll with no wait then finds it. */
    produce(topic, 1, next_seq);
    while (got < 1 && wakeups < 20) {
        ASSERT_TRUE(woken(c, fd));
        wakeups++;
        while ((m = hub_consumer_poll(c, 0))) {
            ASSERT_INT_EQ((int)m->len, 3);
            ASSERT_TRUE(memcmp(m->payload, "0:0", 3) == 0);
            rd_kafka_message_destroy(m);
            got++;
        }
    }
    ASSERT_INT_EQ(got, 1);
    hub_consumer_destroy(c);
    hub_props_clear(&props);
}

static void test_bad_property_is_named(void)
{
    hub_props_t props = {0};
    char errstr[512] = "";
    hub_props_set(&props, "bootstrap.servers", "127.0.0.1:1");
    hub_props_set(&props, "no.such.property", "1");
    ASSERT_TRUE(hub_producer_new(&props, NULL, errstr, sizeof(errstr)) == NULL);
    ASSERT_STR_CONTAINS(errstr, "no.such.property");
    hub_props_clear(&props);
}

/*
 * A static member replaced by a newer instance with the same
 * group.instance.id is fenced: librdkafka reports a fatal error and the
 * consumer must say so, so the service exits instead of idling unassigned.
 */
static void test_fenced_static_member_is_fatal(void)
{
    hub_props_t props = {0};
    char errstr[512] = "", topic[256], group[256];
    const char *topics[1] = {topic};

    hub_test_topic("fence", 1, topic, sizeof(topic));
    snprintf(group, sizeof(group), "g.fence.%s", hub_test_unique());
    hub_test_kafka_props(&props);
    hub_props_set(&props, "group.instance.id", "the-only-instance");
    hub_props_set(&props, "session.timeout.ms", "10000");
    hub_consumer_t *old = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(old != NULL);
    /* Let the first instance join and take the partition. */
    int64_t deadline = hub_monotonic_ms() + 30000;
    while (hub_monotonic_ms() < deadline) {
        rd_kafka_topic_partition_list_t *a = NULL;
        rd_kafka_message_t *m = hub_consumer_poll(old, 100);
        if (m)
            rd_kafka_message_destroy(m);
        if (rd_kafka_assignment(hub_consumer_handle(old), &a) == 0 && a) {
            int n = a->cnt;
            rd_kafka_topic_partition_list_destroy(a);
            if (n > 0)
                break;
        }
    }
    ASSERT_INT_EQ(hub_consumer_fatal(old), 0);

    hub_consumer_t *newer =
        hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(newer != NULL);
    deadline = hub_monotonic_ms() + 60000;
    while (!hub_consumer_fatal(old) && hub_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = hub_consumer_poll(newer, 50);
        if (m)
            rd_kafka_message_destroy(m);
        m = hub_consumer_poll(old, 50);
        if (m)
            rd_kafka_message_destroy(m);
    }
    ASSERT_INT_EQ(hub_consumer_fatal(old), 1);
    ASSERT_INT_EQ(hub_consumer_fatal(newer), 0);
    hub_consumer_destroy(old);
    hub_consumer_destroy(newer);
    hub_props_clear(&props);
}

int main(void)
{
    hub_log_init("test_kafka", HUB_LOG_WARN);
    RUN_TEST(test_produce_consume_exact);
    RUN_TEST(test_wakeup_fd);
    RUN_TEST(test_bad_property_is_named);
    RUN_TEST(test_fenced_static_member_is_fatal);
    return 0;
}
