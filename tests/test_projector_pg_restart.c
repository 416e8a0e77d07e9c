/*
 * test_projector_pg_restart.c: PostgreSQL stopped and started again while
 * events flow. hub-projector must stay up, pause, reconnect with back-off,
 * seek back to the offsets PostgreSQL holds and finish with exactly the tables
 * a clean single pass gives.
 */
#include "projector_harness.h"

static void test_postgres_restart_mid_stream(void)
{
    ph_env_t env;
    char cmd[1200];

    ph_setup(&env, "pgrestart", 3, "batch_max_ms = 50;\n  retry_max_ms = 1000;");
    ph_outage_mid_stream(&env, 20191001, 30000, 5000, "pg-stop", "pg-start", 3000);
    /* It noticed, and came back by resynchronising (not by restarting). */
    snprintf(cmd, sizeof(cmd), "grep -q 'event=resynced' %s", env.log);
    ASSERT_INT_EQ(system(cmd), 0);
    ph_teardown(&env);
}

int main(void)
{
    RUN_TEST(test_postgres_restart_mid_stream);
    return 0;
}
