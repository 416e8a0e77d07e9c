/*
 * test_acl.c: the ACLs of config/acls.conf on the secured broker (SASL_SSL,
 * SCRAM-SHA-512, StandardAuthorizer with allow.everyone.if.no.acl.found=false),
 * seen by real clients logged in as each principal: every allowed path works
 * and the denials come back as the broker's authorization errors. Also: a wrong
 * password, a wrong CA and a plaintext client are refused.
 *
 * Runs only in scripts/test's secured pass (label secure-only): it needs the
 * principals' passwords in $HUB_KAFKA_CLIENTS.
 */
#include "hub/common.h"
#include "hub/kafka.h"
#include "hub/log.h"
#include "test.h"

#define RISK    "llr.children.risk-flags"
#define ALERTS  "llr.adults.transition-alerts"
#define PLANS   "llr.adults.transition-plans"
#define ACTIONS "llr.meetings.actions"
#define NOTIFY  "llr.groups.notifications"
#define DLQ     "llr.hub.dead-letters"

#define OK           RD_KAFKA_RESP_ERR_NO_ERROR
#define TOPIC_DENIED RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
#define GROUP_DENIED RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED

/* Client properties of principal name: the secured broker's settings, its own login. */
static void principal_props(const char *name, hub_props_t *props)
{
    char path[1024], errstr[512];
    hub_test_kafka_props(props);
    snprintf(path, sizeof(path), "%s/%s.password", hub_test_env("HUB_KAFKA_CLIENTS"), name);
    char *pw = hub_read_file(path, NULL, errstr, sizeof(errstr));
    if (!pw)
        TEST_FAIL_("password of %s: %s", name, errstr);
    pw[strcspn(pw, "\r\n")] = '\0';
    hub_props_set(props, "sasl.username", name);
    hub_props_set(props, "sasl.password", pw);
    free(pw);
}

static rd_kafka_t *client_new(rd_kafka_type_t type, const hub_props_t *props)
{
    char errstr[512] = "";
    rd_kafka_conf_t *conf = hub_kafka_conf_new(props, NULL, errstr, sizeof(errstr));
    if (!conf)
        TEST_FAIL_("%s", errstr);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk)
        TEST_FAIL_("rd_kafka_new: %s", errstr);
    return rk;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    *(rd_kafka_resp_err_t *)m->_private = m->err;
}

/* One message to topic as principal (idempotent, like every hub producer): the delivery result. */
static rd_kafka_resp_err_t write_as(const char *principal, const char *topic)
{
    hub_props_t props = {0};
    char errstr[512] = "";
    rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR__IN_PROGRESS;

    principal_props(principal, &props);
    hub_props_set(&props, "enable.idempotence", "true");
    hub_props_set(&props, "message.timeout.ms", "20000");
    rd_kafka_conf_t *conf = hub_kafka_conf_new(&props, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(conf != NULL);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ASSERT_TRUE(rk != NULL);
    /* Not an event of the hub's schemas: the projector and planner reject it to the DLQ. */
    ASSERT_INT_EQ(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY("acl-test", 8),
                                    RD_KAFKA_V_VALUE("not avro", 8), RD_KAFKA_V_OPAQUE(&result),
                                    RD_KAFKA_V_END),
                  OK);
    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);
    hub_props_clear(&props);
    return result;
}

/*
 * Reads topic as principal: in group (subscribe) or, when group is NULL, by
 * assigning every partition. OK once each partition was read to its end, else
 * the first error the broker answered.
 */
static rd_kafka_resp_err_t read_as(const char *principal, const char *topic, const char *group)
{
    hub_props_t props = {0};
    rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR__TIMED_OUT;
    const rd_kafka_metadata_t *md = NULL;
    int eofs = 0, partitions = 3;

    principal_props(principal, &props);
    hub_props_set(&props, "enable.partition.eof", "true");
    hub_props_set(&props, "auto.offset.reset", "earliest");
    hub_props_set(&props, "enable.auto.commit", "false");
    /* As hubctl's reader: librdkafka wants a group.id even to assign; it is never joined. */
    hub_props_set(&props, "group.id", group ? group : "hubctl-reader");
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, &props);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
    if (group) {
        rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
        ASSERT_INT_EQ(rd_kafka_subscribe(rk, l), OK);
    } else {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 20000);
        rd_kafka_topic_destroy(rkt);
        ASSERT_INT_EQ(err, OK);
        if (md->topics[0].err) {
            result = md->topics[0].err;
            goto out;
        }
        partitions = md->topics[0].partition_cnt;
        for (int p = 0; p < partitions; p++)
            rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        ASSERT_INT_EQ(rd_kafka_assign(rk, l), OK);
    }
    int64_t deadline = hub_monotonic_ms() + 30000;
    while (hub_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        rd_kafka_resp_err_t err = m->err;
        rd_kafka_message_destroy(m);
        if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (++eofs == partitions) {
                result = OK;
                break;
            }
        } else if (err == GROUP_DENIED && !group) {
            /* The unused group.id's coordinator lookup: says nothing about the topic. */
            continue;
        } else if (err) {
            result = err;
            break;
        }
    }
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    hub_props_clear(&props);
    return result;
}

/* The allowed and the denied paths of every principal of config/acls.conf. */
static void test_matrix(void)
{
    static const struct {
        const char *principal, *topic;
        int write;         /* else read */
        const char *group; /* read in this consumer group; NULL: assign */
        rd_kafka_resp_err_t want;
    } cases[] = {
        /* Children's services write risk flags and read nothing. */
        {"childrens-services", RISK, 1, NULL, OK},
        {"childrens-services", RISK, 0, NULL, TOPIC_DENIED},
        {"childrens-services", ALERTS, 1, NULL, TOPIC_DENIED},
        {"childrens-services", ALERTS, 0, NULL, TOPIC_DENIED},
        /* Adult social care reads alerts, writes plan completions, never sees risk flags. */
        {"adult-social-care", ALERTS, 0, "adult-social-care-leicester", OK},
        {"adult-social-care", PLANS, 1, NULL, OK},
        {"adult-social-care", RISK, 0, NULL, TOPIC_DENIED},
        {"adult-social-care", RISK, 0, "adult-social-care-leicester", TOPIC_DENIED},
        {"adult-social-care", ALERTS, 1, NULL, TOPIC_DENIED},
        {"adult-social-care", ALERTS, 0, "hub-planner", GROUP_DENIED},
        {"adult-social-care", PLANS, 0, NULL, TOPIC_DENIED},
        /* Meeting coordinators and the subgroup write their one topic. */
        {"meeting-coordinators", ACTIONS, 1, NULL, OK},
        {"meeting-coordinators", ACTIONS, 0, NULL, TOPIC_DENIED},
        {"meeting-coordinators", NOTIFY, 1, NULL, TOPIC_DENIED},
        {"transitions-subgroup", NOTIFY, 1, NULL, OK},
        {"transitions-subgroup", NOTIFY, 0, NULL, TOPIC_DENIED},
        {"transitions-subgroup", RISK, 1, NULL, TOPIC_DENIED},
        /* The services: what their loops do, and nothing beside it. */
        {"hub-planner", RISK, 0, "hub-planner-acl-test", OK},
        {"hub-planner", ALERTS, 0, NULL, OK},
        {"hub-planner", ALERTS, 1, NULL, OK},
        {"hub-planner", DLQ, 1, NULL, OK},
        {"hub-planner", RISK, 1, NULL, TOPIC_DENIED},
        {"hub-planner", ACTIONS, 0, NULL, TOPIC_DENIED},
        {"hub-planner", RISK, 0, "hub-projector", GROUP_DENIED},
        {"hub-projector", RISK, 0, "hub-projector-acl-test", OK},
        {"hub-projector", ALERTS, 0, NULL, OK},
        {"hub-projector", PLANS, 0, NULL, OK},
        {"hub-projector", ACTIONS, 0, NULL, OK},
        {"hub-projector", NOTIFY, 0, NULL, OK},
        {"hub-projector", DLQ, 0, NULL, OK},
        {"hub-projector", DLQ, 1, NULL, OK},
        {"hub-projector", ALERTS, 1, NULL, TOPIC_DENIED},
        {"hub-reminder", NOTIFY, 1, NULL, OK},
        {"hub-reminder", ACTIONS, 1, NULL, OK},
        {"hub-reminder", RISK, 0, NULL, TOPIC_DENIED},
        {"hub-notifier", NOTIFY, 0, "hub-notifier-acl-test", OK},
        {"hub-notifier", ACTIONS, 0, NULL, OK},
        {"hub-notifier", NOTIFY, 1, NULL, OK},
        {"hub-notifier", DLQ, 1, NULL, OK},
        {"hub-notifier", RISK, 0, NULL, TOPIC_DENIED},
        {"hub-notifier", ALERTS, 1, NULL, TOPIC_DENIED},
        /* Operators: any hub topic, in hubctl's groups. */
        {"hubctl-admin", RISK, 0, "hubctl-acl-test", OK},
        {"hubctl-admin", DLQ, 1, NULL, OK},
        {"hubctl-admin", RISK, 0, "adult-social-care-leicester", GROUP_DENIED},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        rd_kafka_resp_err_t got = cases[i].write
                                      ? write_as(cases[i].principal, cases[i].topic)
                                      : read_as(cases[i].principal, cases[i].topic, cases[i].group);
        fprintf(stderr, "  %-22s %-5s %-30s %-28s -> %s\n", cases[i].principal,
                cases[i].write ? "write" : "read", cases[i].topic,
                cases[i].group ? cases[i].group : "(assign)", rd_kafka_err2name(got));
        if (got != cases[i].want)
            TEST_FAIL_("%s %s %s: got %s, want %s", cases[i].principal,
                       cases[i].write ? "write" : "read", cases[i].topic, rd_kafka_err2name(got),
                       rd_kafka_err2name(cases[i].want));
    }
}

/* The planner's transactions: its own transactional ids only. */
static void test_transactional_ids(void)
{
    hub_props_t props = {0};
    char errstr[512] = "";

    principal_props("hub-planner", &props);
    hub_producer_t *p = hub_producer_new(&props, "hub-planner-acl-test", errstr, sizeof(errstr));
    if (!p)
        TEST_FAIL_("hub-planner transactional id hub-planner-acl-test: %s", errstr);
    hub_producer_destroy(p);
    p = hub_producer_new(&props, "someone-else", errstr, sizeof(errstr));
    ASSERT_TRUE(p == NULL);
    ASSERT_STR_CONTAINS(errstr, "Transactional Id authorization failed");
    hub_props_clear(&props);

    principal_props("hub-projector", &props);
    p = hub_producer_new(&props, "hub-planner-1", errstr, sizeof(errstr));
    ASSERT_TRUE(p == NULL);
    ASSERT_STR_CONTAINS(errstr, "Transactional Id authorization failed");
    hub_props_clear(&props);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    rd_kafka_resp_err_t *first = opaque;
    if (*first == OK && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        *first = (rd_kafka_resp_err_t)err;
}

/* The first client error of a metadata request with props, or OK when it was answered. */
static rd_kafka_resp_err_t connect_with(const hub_props_t *props)
{
    char errstr[512] = "";
    rd_kafka_resp_err_t first = OK;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_conf_t *conf = hub_kafka_conf_new(props, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(conf != NULL);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, &first);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    ASSERT_TRUE(rk != NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, 5000);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_poll(rk, 100); /* serve the error callback */
    rd_kafka_destroy(rk);
    return err == OK ? OK : first != OK ? first : err;
}

/* Authentication and TLS: right login works; a wrong password, CA or protocol does not. */
static void test_authentication(void)
{
    hub_props_t props = {0};
    rd_kafka_conf_t *defaults = rd_kafka_conf_new();
    char value[64];
    size_t size = sizeof(value);

    /* Hostname verification is librdkafka's default (since 2.0) and the hub keeps it. */
    ASSERT_INT_EQ(
        rd_kafka_conf_get(defaults, "ssl.endpoint.identification.algorithm", value, &size),
        RD_KAFKA_CONF_OK);
    ASSERT_STR_EQ(value, "https");
    rd_kafka_conf_destroy(defaults);

    principal_props("adult-social-care", &props);
    ASSERT_INT_EQ(connect_with(&props), OK);
    hub_props_set(&props, "sasl.password", "not-the-password");
    ASSERT_INT_EQ(connect_with(&props), RD_KAFKA_RESP_ERR__AUTHENTICATION);
    hub_props_clear(&props);

    principal_props("adult-social-care", &props);
    hub_props_set(&props, "ssl.ca.location", hub_test_env("HUB_TLS_OTHER_CA"));
    ASSERT_INT_EQ(connect_with(&props), RD_KAFKA_RESP_ERR__SSL);
    hub_props_clear(&props);

    hub_test_kafka_props(&props);
    hub_props_set(&props, "sasl.username", "nobody-in-acls-conf");
    hub_props_set(&props, "sasl.password", "guess");
    ASSERT_INT_EQ(connect_with(&props), RD_KAFKA_RESP_ERR__AUTHENTICATION);
    hub_props_clear(&props);

    hub_props_set(&props, "bootstrap.servers", hub_test_env("HUB_KAFKA_BOOTSTRAP"));
    hub_props_set(&props, "security.protocol", "plaintext");
    ASSERT_INT_OP(connect_with(&props), !=, OK);
    hub_props_clear(&props);
}

int main(void)
{
    hub_log_init("test_acl", HUB_LOG_WARN);
    hub_test_env("HUB_KAFKA_CLIENTS");
    RUN_TEST(test_authentication);
    RUN_TEST(test_transactional_ids);
    RUN_TEST(test_matrix);
    return 0;
}
