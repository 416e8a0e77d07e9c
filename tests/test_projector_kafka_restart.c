/*
 * test_projector_kafka_restart.c: the Kafka broker stopped and started again while
 * events flow (producer and projector both lose it for seconds). hub-projector
 * must stay up, and once the broker is back finish with exactly the tables a
 * clean single pass gives: a commit whose dead letter could not be delivered
 * is not committed, and positions come from PostgreSQL.
 */
#include "projector_harness.h"

static void test_broker_restart_mid_stream(void)
{
    ph_env_t env;

    ph_setup(&env, "kafkarestart", 3, "batch_max_ms = 50;\n  retry_max_ms = 1000;");
    /*
     * The production default. With static membership, Debian's librdkafka
     * 2.0.2 can be fenced by the restarted coordinator (FENCED_INSTANCE_ID, a
     * fatal error on which the projector exits for its supervisor to restart
     * it); this test is about riding the outage out in one process.
     */
    env.dynamic_membership = 1;
    ph_write_config(&env, "batch_max_ms = 50;\n  retry_max_ms = 1000;");
    ph_outage_mid_stream(&env, 20191101, 30000, 5000, "kafka-stop", "kafka-start", 2000);
    ph_teardown(&env);
}

int main(void)
{
    RUN_TEST(test_broker_restart_mid_stream);
    return 0;
}
