/*
 * test_metrics.c: the metrics registry: the exact exposition text, label and
 * help escaping, histogram buckets, rejected look-ups, updates from two
 * threads while a third renders, and consumer lag on the real broker.
 */
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>

#include "hub/common.h"
#include "hub/metrics.h"
#include "test.h"

/*
 * Renders m and returns the text after hub_up's lines (which carry the
 * library's version), checking those lines on the way. Caller frees *whole.
 */
static const char *render_after_up(hub_metrics_t *m, char **whole)
{
    static const char up[] = "# HELP hub_up 1 while the service runs\n"
                             "# TYPE hub_up gauge\n"
                             "hub_up{service=\"hub-test\",version=\"";
    size_t len = 0;
    const char *end;

    ASSERT_OK(hub_metrics_render(m, whole, &len), "render");
    ASSERT_INT_EQ(len, strlen(*whole));
    ASSERT_TRUE(strncmp(*whole, up, strlen(up)) == 0);
    end = strstr(*whole, "\"} 1\n");
    ASSERT_TRUE(end != NULL);
    return end + strlen("\"} 1\n");
}

static void test_render_exact(void)
{
    static const double bounds[] = {1, 5};
    hub_metrics_t *m = hub_metrics_new("hub-test");
    char *text = NULL;

    ASSERT_TRUE(m != NULL);
    hub_counter_t *in_a = hub_metrics_events_in(m, "llr.a");
    hub_counter_t *in_b = hub_metrics_events_in(m, "llr.b");
    hub_counter_t *fail = hub_metrics_delivery_failures(m);
    hub_gauge_t *g = hub_metrics_gauge(m, "test_temperature", "A gauge", "room", "r1", NULL);
    hub_histogram_t *h =
        hub_metrics_histogram(m, "test_size", "A histogram", bounds, 2, "kind", "k", NULL);
    ASSERT_TRUE(in_a && in_b && fail && g && h);

    hub_counter_add(in_a, 3);
    hub_counter_add(in_b, 1);
    hub_counter_add(in_a, 2);
    hub_gauge_set(g, 21.5);
    hub_histogram_observe(h, 0.5);
    hub_histogram_observe(h, 1);
    hub_histogram_observe(h, 3);
    hub_histogram_observe(h, 7);

    ASSERT_STR_EQ(render_after_up(m, &text),
                  "# HELP hub_events_in_total Messages consumed, by source topic\n"
                  "# TYPE hub_events_in_total counter\n"
                  "hub_events_in_total{topic=\"llr.a\"} 5\n"
                  "hub_events_in_total{topic=\"llr.b\"} 1\n"
                  "# HELP hub_delivery_failures_total Kafka deliveries or e-mails that failed "
                  "after all retries\n"
                  "# TYPE hub_delivery_failures_total counter\n"
                  "hub_delivery_failures_total 0\n"
                  "# HELP test_temperature A gauge\n"
                  "# TYPE test_temperature gauge\n"
                  "test_temperature{room=\"r1\"} 21.5\n"
                  "# HELP test_size A histogram\n"
                  "# TYPE test_size histogram\n"
                  "test_size_bucket{kind=\"k\",le=\"1\"} 2\n"
                  "test_size_bucket{kind=\"k\",le=\"5\"} 3\n"
                  "test_size_bucket{kind=\"k\",le=\"+Inf\"} 4\n"
                  "test_size_sum{kind=\"k\"} 11.5\n"
                  "test_size_count{kind=\"k\"} 4\n");
    free(text);

    /* A second look-up finds the same series, whatever help it passes. */
    ASSERT_TRUE(hub_metrics_events_in(m, "llr.a") == in_a);
    ASSERT_TRUE(hub_metrics_counter(m, "hub_events_in_total", "other help", "topic", "llr.b",
                                    NULL) == in_b);
    ASSERT_INT_EQ(hub_counter_value(in_a), 5);
    ASSERT_INT_EQ(hub_histogram_count(h), 4);
    hub_metrics_destroy(m);
}

static void test_escaping(void)
{
    hub_metrics_t *m = hub_metrics_new("hub-test");
    char *text = NULL;

    hub_counter_t *c = hub_metrics_counter(m, "test_escapes_total", "Help with \\ and\nnewline",
                                           "v", "back\\slash \"quoted\"\nnext", "w", "", NULL);
    ASSERT_TRUE(c != NULL);
    hub_counter_add(c, 1);
    ASSERT_STR_EQ(render_after_up(m, &text),
                  "# HELP test_escapes_total Help with \\\\ and\\nnewline\n"
                  "# TYPE test_escapes_total counter\n"
                  "test_escapes_total{v=\"back\\\\slash \\\"quoted\\\"\\nnext\",w=\"\"} 1\n");
    free(text);
    /* The escaped form is also the look-up key: the same raw values find the same series. */
    ASSERT_TRUE(hub_metrics_counter(m, "test_escapes_total", "", "v",
                                    "back\\slash \"quoted\"\nnext", "w", "", NULL) == c);
    hub_metrics_destroy(m);
}

static void test_number_formats(void)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {1234567, "1234567"},
        {-3, "-3"},
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {1e20, "1e+20"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {2.5e-7, "2.5e-07"},
    };
    hub_metrics_t *m = hub_metrics_new("hub-test");
    hub_gauge_t *g = hub_metrics_gauge(m, "test_value", "v", NULL);
    char *text = NULL, want[128];

    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        hub_gauge_set(g, cases[i].v);
        snprintf(want, sizeof(want),
                 "# HELP test_value v\n# TYPE test_value gauge\ntest_value %s\n", cases[i].text);
        ASSERT_STR_EQ(render_after_up(m, &text), want);
        free(text);
    }
    hub_metrics_destroy(m);
}

static void test_gauge_clear_and_add(void)
{
    hub_metrics_t *m = hub_metrics_new("hub-test");
    hub_gauge_t *g = hub_metrics_gauge(m, "test_level", "l", "p", "0", NULL);
    char *text = NULL;

    hub_gauge_add(g, 2.5);
    hub_gauge_add(g, -1);
    ASSERT_TRUE(hub_gauge_value(g) == 1.5);
    hub_gauge_clear(g);
    ASSERT_TRUE(hub_gauge_value(g) == 0);
    /* A family whose only series is cleared disappears, HELP and TYPE included. */
    ASSERT_STR_EQ(render_after_up(m, &text), "");
    free(text);
    hub_gauge_set(g, 4);
    ASSERT_STR_EQ(render_after_up(m, &text),
                  "# HELP test_level l\n# TYPE test_level gauge\ntest_level{p=\"0\"} 4\n");
    free(text);
    hub_metrics_destroy(m);
}

static void test_histogram_buckets(void)
{
    hub_metrics_t *m = hub_metrics_new("hub-test");
    hub_histogram_t *h = hub_metrics_batch_latency(m);
    static const double obs[] = {0, 1, 1.5, 2, 5, 10, 10.01, 20, 49, 100, 200, 500, 999, 1000, 1e6};
    char *text = NULL;

    ASSERT_TRUE(h != NULL);
    for (size_t i = 0; i < HUB_ARRAY_LEN(obs); i++)
        hub_histogram_observe(h, obs[i]);
    /* le is inclusive: an observation equal to a bound counts in that bound's bucket. */
    ASSERT_STR_EQ(render_after_up(m, &text),
                  "# HELP hub_batch_latency_ms Time to process one batch, from first message to "
                  "commit, in ms\n"
                  "# TYPE hub_batch_latency_ms histogram\n"
                  "hub_batch_latency_ms_bucket{le=\"1\"} 2\n"
                  "hub_batch_latency_ms_bucket{le=\"2\"} 4\n"
                  "hub_batch_latency_ms_bucket{le=\"5\"} 5\n"
                  "hub_batch_latency_ms_bucket{le=\"10\"} 6\n"
                  "hub_batch_latency_ms_bucket{le=\"20\"} 8\n"
                  "hub_batch_latency_ms_bucket{le=\"50\"} 9\n"
                  "hub_batch_latency_ms_bucket{le=\"100\"} 10\n"
                  "hub_batch_latency_ms_bucket{le=\"200\"} 11\n"
                  "hub_batch_latency_ms_bucket{le=\"500\"} 12\n"
                  "hub_batch_latency_ms_bucket{le=\"1000\"} 14\n"
                  "hub_batch_latency_ms_bucket{le=\"+Inf\"} 15\n"
                  "hub_batch_latency_ms_sum 1002897.51\n"
                  "hub_batch_latency_ms_count 15\n");
    free(text);
    hub_metrics_destroy(m);
}

/* Look-ups that cannot make a valid exposition return NULL; updates on NULL do nothing. */
static void test_rejected(void)
{
    static const double bad_order[] = {5, 1}, good[] = {1, 5}, other[] = {1, 6};
    hub_metrics_t *m = hub_metrics_new("hub-test");
    char *text = NULL;

    ASSERT_TRUE(hub_metrics_counter(m, "test_x_total", "x", "topic", "t", NULL) != NULL);
    ASSERT_TRUE(hub_metrics_gauge(m, "test_x_total", "x", "topic", "t", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_x_total", "x", "class", "t", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_x_total", "x", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_x_total", "x", "topic", "t", "class", "c", NULL) ==
                NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "9starts_with_digit", "x", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "has-dash", "x", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "", "x", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_y", "x", "bad-label", "v", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_y", "x", "__reserved", "v", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_y", "x", "a", "1", "a", "2", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_y", "x", "odd", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_counter(m, "test_y", "x", "a", "1", "b", "2", "c", "3", "d", "4", "e",
                                    "5", "f", "6", "g", "7", "h", "8", "i", "9", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_histogram(m, "test_h", "x", bad_order, 2, NULL) == NULL);
    ASSERT_TRUE(hub_metrics_histogram(m, "test_h", "x", good, 2, "le", "1", NULL) == NULL);
    ASSERT_TRUE(hub_metrics_histogram(m, "test_h", "x", good, 2, NULL) != NULL);
    ASSERT_TRUE(hub_metrics_histogram(m, "test_h", "x", other, 2, NULL) == NULL);
    ASSERT_TRUE(hub_metrics_histogram(m, "test_h", "x", good, 0, NULL) == NULL);
    /* Colons are allowed in metric names (recording rules use them). */
    ASSERT_TRUE(hub_metrics_counter(m, "test:ok_total", "x", NULL) != NULL);

    hub_counter_add(NULL, 1);
    hub_gauge_set(NULL, 1);
    hub_gauge_add(NULL, 1);
    hub_gauge_clear(NULL);
    hub_histogram_observe(NULL, 1);
    ASSERT_INT_EQ(hub_counter_value(NULL), 0);
    ASSERT_TRUE(hub_gauge_value(NULL) == 0);
    ASSERT_INT_EQ(hub_histogram_count(NULL), 0);
    ASSERT_TRUE(hub_metrics_counter(NULL, "test_z", "x", NULL) == NULL);
    ASSERT_OK(hub_metrics_update_lag(NULL, NULL, NULL, 0), "");

    /* Rejected look-ups leave nothing behind but the families that were valid. */
    ASSERT_STR_CONTAINS(render_after_up(m, &text), "# TYPE test_x_total counter\n");
    ASSERT_TRUE(strstr(text, "test_y") == NULL);
    free(text);
    hub_metrics_destroy(m);
    hub_metrics_destroy(NULL);
}

enum { UPDATES = 200000 };

typedef struct {
    hub_counter_t *c;
    hub_histogram_t *h;
    hub_gauge_t *g;
} shared_t;

static void *updater(void *arg)
{
    shared_t *s = arg;
    for (int i = 0; i < UPDATES; i++) {
        hub_counter_add(s->c, 1);
        hub_histogram_observe(s->h, (double)(i % 4));
        hub_gauge_add(s->g, 1);
    }
    return NULL;
}

/* The value of the sample line that starts with prefix (name and labels), or -1. */
static double sample(const char *text, const char *prefix)
{
    for (const char *line = text; line && *line; line = strchr(line, '\n') + 1) {
        size_t n = strlen(prefix);
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        if (!strchr(line, '\n'))
            break;
    }
    return -1;
}

/* Every line is a comment or `name[{labels}] value`; nothing torn. */
static void check_well_formed(const char *text)
{
    ASSERT_TRUE(*text && text[strlen(text) - 1] == '\n');
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        const char *nl = strchr(line, '\n'), *sp;
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)
            continue;
        sp = memchr(line, ' ', (size_t)(nl - line));
        ASSERT_TRUE(sp != NULL && sp > line);
        char *end;
        strtod(sp + 1, &end);
        ASSERT_TRUE(end == nl);
    }
}

/* Two threads update while the main thread renders: every render is whole and consistent. */
static void test_concurrent_updates(void)
{
    hub_metrics_t *m = hub_metrics_new("hub-test");
    shared_t s = {hub_metrics_counter(m, "test_ops_total", "ops", NULL),
                  hub_metrics_histogram(m, "test_obs", "obs", NULL, 0, NULL),
                  hub_metrics_gauge(m, "test_gauge", "g", NULL)};
    pthread_t t[2];
    double last = 0;
    int renders = 0;

    for (int i = 0; i < 2; i++)
        ASSERT_INT_EQ(pthread_create(&t[i], NULL, updater, &s), 0);
    for (;;) {
        char *text = NULL;
        ASSERT_OK(hub_metrics_render(m, &text, NULL), "render");
        check_well_formed(text);
        double ops = sample(text, "test_ops_total");
        double inf = sample(text, "test_obs_bucket{le=\"+Inf\"}");
        double count = sample(text, "test_obs_count");
        double b1 = sample(text, "test_obs_bucket{le=\"1\"}");
        double b2 = sample(text, "test_obs_bucket{le=\"2\"}");
        double sum = sample(text, "test_obs_sum");
        free(text);
        ASSERT_TRUE(ops >= last);
        last = ops;
        /* One snapshot per histogram: cumulative buckets, +Inf = count, and the sum they imply. */
        ASSERT_TRUE(b1 <= b2 && b2 <= inf);
        ASSERT_TRUE(inf == count);
        ASSERT_TRUE(sum <= 3 * count);
        renders++;
        if (ops == 2.0 * UPDATES && count == 2.0 * UPDATES)
            break;
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "   %d renders while updating\n", renders);
    ASSERT_INT_EQ(hub_counter_value(s.c), 2 * UPDATES);
    ASSERT_INT_EQ(hub_histogram_count(s.h), 2 * UPDATES);
    ASSERT_TRUE(hub_gauge_value(s.g) == 2.0 * UPDATES);
    /* Each thread observed 0,1,2,3 UPDATES/4 times each: the sum is exact. */
    char *text = NULL;
    ASSERT_OK(hub_metrics_render(m, &text, NULL), "render");
    ASSERT_TRUE(sample(text, "test_obs_sum") == 2.0 * (UPDATES / 4) * (0 + 1 + 2 + 3));
    ASSERT_TRUE(sample(text, "test_obs_bucket{le=\"1\"}") == 2.0 * UPDATES / 2);
    free(text);
    hub_metrics_destroy(m);
}

static rd_kafka_topic_partition_list_t *one_partition(const char *topic, int32_t partition,
                                                      int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    return l;
}

/* Consumes n messages, which must all come from partition, in order from offset first. */
static void consume_exactly(rd_kafka_t *consumer, int32_t partition, int64_t first, int n)
{
    int64_t deadline = hub_monotonic_ms() + 30000;
    for (int got = 0; got < n;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 100);
        if (hub_monotonic_ms() > deadline)
            TEST_FAIL_("only %d of %d messages in 30 s", got, n);
        if (!msg)
            continue;
        if (!msg->err) {
            ASSERT_INT_EQ(msg->partition, partition);
            ASSERT_INT_EQ(msg->offset, first + got);
            got++;
        }
        rd_kafka_message_destroy(msg);
    }
}

static double lag_of(hub_metrics_t *m, const char *series)
{
    char *text = NULL;
    double v = sample(render_after_up(m, &text), series);
    free(text);
    return v;
}

/* A client configuration for the real test broker. */
static rd_kafka_conf_t *broker_conf(void)
{
    hub_props_t props = {0};
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    hub_test_kafka_props(&props);
    for (size_t i = 0; i < props.n; i++)
        ASSERT_INT_EQ(
            rd_kafka_conf_set(conf, props.keys[i], props.values[i], errstr, sizeof(errstr)),
            RD_KAFKA_CONF_OK);
    hub_props_clear(&props);
    return conf;
}

/*
 * Lag against the real broker: 10 messages in partition 0 and 4 in
 * partition 1 of a fresh topic; the consumer reads 3 of partition 0 and all
 * of partition 1, then loses partition 1.
 */
static void test_consumer_lag(void)
{
    char errstr[512] = "", topic[256], p0[512], p1[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *producer, *consumer;
    rd_kafka_topic_partition_list_t *l;
    hub_metrics_t *m = hub_metrics_new("hub-test");

    hub_test_topic("lag", 2, topic, sizeof(topic));
    snprintf(p0, sizeof(p0), "hub_consumer_lag{topic=\"%s\",partition=\"0\"}", topic);
    snprintf(p1, sizeof(p1), "hub_consumer_lag{topic=\"%s\",partition=\"1\"}", topic);

    conf = broker_conf();
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ASSERT_TRUE(producer != NULL);
    for (int i = 0; i < 14; i++)
        ASSERT_INT_EQ(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                                        RD_KAFKA_V_PARTITION(i < 10 ? 0 : 1),
                                        RD_KAFKA_V_VALUE("v", 1), RD_KAFKA_V_END),
                      0);
    ASSERT_INT_EQ(rd_kafka_flush(producer, 10000), 0);
    rd_kafka_destroy(producer);

    conf = broker_conf();
    ASSERT_INT_EQ(rd_kafka_conf_set(conf, "group.id", topic, errstr, sizeof(errstr)),
                  RD_KAFKA_CONF_OK);
    ASSERT_INT_EQ(rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)),
                  RD_KAFKA_CONF_OK);
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ASSERT_TRUE(consumer != NULL);
    rd_kafka_poll_set_consumer(consumer);

    /* Assigned but not fetched yet: the lag is unknown and left out. */
    l = one_partition(topic, 0, RD_KAFKA_OFFSET_BEGINNING);
    ASSERT_TRUE(rd_kafka_incremental_assign(consumer, l) == NULL);
    rd_kafka_topic_partition_list_destroy(l);
    ASSERT_OK(hub_metrics_update_lag(m, consumer, errstr, sizeof(errstr)), errstr);
    ASSERT_TRUE(lag_of(m, p0) == -1);

    consume_exactly(consumer, 0, 0, 3);
    ASSERT_OK(hub_metrics_update_lag(m, consumer, errstr, sizeof(errstr)), errstr);
    ASSERT_TRUE(lag_of(m, p0) == 7);

    /* Partition 0 paused keeps its position while partition 1 is read to the end. */
    l = one_partition(topic, 0, RD_KAFKA_OFFSET_INVALID);
    ASSERT_INT_EQ(rd_kafka_pause_partitions(consumer, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    l = one_partition(topic, 1, RD_KAFKA_OFFSET_BEGINNING);
    ASSERT_TRUE(rd_kafka_incremental_assign(consumer, l) == NULL);
    consume_exactly(consumer, 1, 0, 4);
    ASSERT_OK(hub_metrics_update_lag(m, consumer, errstr, sizeof(errstr)), errstr);
    ASSERT_TRUE(lag_of(m, p0) == 7);
    ASSERT_TRUE(lag_of(m, p1) == 0);

    /* A partition lost in a rebalance is reported by its new owner, not here. */
    ASSERT_TRUE(rd_kafka_incremental_unassign(consumer, l) == NULL);
    rd_kafka_topic_partition_list_destroy(l);
    ASSERT_OK(hub_metrics_update_lag(m, consumer, errstr, sizeof(errstr)), errstr);
    ASSERT_TRUE(lag_of(m, p0) == 7);
    ASSERT_TRUE(lag_of(m, p1) == -1);

    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    hub_metrics_destroy(m);
}

int main(void)
{
    RUN_TEST(test_render_exact);
    RUN_TEST(test_escaping);
    RUN_TEST(test_number_formats);
    RUN_TEST(test_gauge_clear_and_add);
    RUN_TEST(test_histogram_buckets);
    RUN_TEST(test_rejected);
    RUN_TEST(test_concurrent_updates);
    RUN_TEST(test_consumer_lag);
    return 0;
}
