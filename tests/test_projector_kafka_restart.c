/*
 * test_projector_kafka_restart.c: the Kafka broker stopped and started again while
 * events flow (producer and projector both lose it for seconds). hub-projector
 * must stay up, and once the broker is back finish with exactly the tables a
 * clean single pass gives: a commit whose dead letter could not be delivered
 * is not committed, and positions come from PostgreSQL.
 */
#include <pthread.h>

#include "projector_harness.h"

#define EVENTS 30000
#define RATE   5000
#define SEED   20191101

static ph_env_t env;
static wl_expect_t expect;

static void *produce(void *arg)
{
    wl_produce(&env, SEED, 0, EVENTS, RATE, &expect);
    return NULL;
}

static void test_broker_restart_mid_stream(void)
{
    pthread_t producer;
    PGconn *c;
    char *want, *got, cmd[1200];

    ph_setup(&env, "kafkarestart", 3, "batch_max_ms = 50;\n  retry_max_ms = 1000;");
    /*
     * The production default. With static membership, Debian's librdkafka
     * 2.0.2 can be fenced by the restarted coordinator (FENCED_INSTANCE_ID, a
     * fatal error on which the projector exits for its supervisor to restart
     * it); this test is about riding the outage out in one process.
     */
    env.dynamic_membership = 1;
    ph_write_config(&env, "batch_max_ms = 50;\n  retry_max_ms = 1000;");
    if (pthread_create(&producer, NULL, produce, NULL) != 0)
        TEST_FAIL_("pthread_create");
    ph_start(&env);
    usleep(2500 * 1000);
    hub_test_infra("kafka-stop");
    usleep(2000 * 1000);
    ph_check_alive(&env);
    hub_test_infra("kafka-start");
    pthread_join(producer, NULL);
    ph_wait_caught_up(&env, 300);
    ph_check_alive(&env);

    c = ph_connect(env.db_admin);
    want = wl_expected_text(&expect);
    got = wl_actual_text(c);
    wl_assert_same(want, got);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    /* It rode the outage out in one process. */
    snprintf(cmd, sizeof(cmd), "test $(grep -c 'event=started' %s) -eq 1", env.log);
    ASSERT_INT_EQ(system(cmd), 0);
    free(want);
    free(got);
    PQfinish(c);
    ph_teardown(&env);
}

int main(void)
{
    RUN_TEST(test_broker_restart_mid_stream);
    return 0;
}
