/*
 * test_projector_pg_restart.c: PostgreSQL stopped and started again while
 * events flow. hub-projector must stay up, pause, reconnect with back-off,
 * seek back to the offsets PostgreSQL holds and finish with exactly the tables
 * a clean single pass gives.
 */
#include <pthread.h>

#include "projector_harness.h"

#define EVENTS 30000
#define RATE   5000
#define SEED   20191001

static ph_env_t env;
static wl_expect_t expect;

static void *produce(void *arg)
{
    wl_produce(&env, SEED, 0, EVENTS, RATE, &expect);
    return NULL;
}

static void test_postgres_restart_mid_stream(void)
{
    pthread_t producer;
    PGconn *c;
    char *want, *got, cmd[1200];

    ph_setup(&env, "pgrestart", 3, "batch_max_ms = 50;\n  retry_max_ms = 1000;");
    if (pthread_create(&producer, NULL, produce, NULL) != 0)
        TEST_FAIL_("pthread_create");
    ph_start(&env);
    usleep(2500 * 1000);
    hub_test_infra("pg-stop");
    usleep(3000 * 1000);
    ph_check_alive(&env);
    hub_test_infra("pg-start");
    pthread_join(producer, NULL);
    ph_wait_caught_up(&env, 300);
    ph_check_alive(&env);

    c = ph_connect(env.db_admin);
    want = wl_expected_text(&expect);
    got = wl_actual_text(c);
    wl_assert_same(want, got);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    /* It noticed, and came back by resynchronising (not by restarting). */
    snprintf(cmd, sizeof(cmd), "grep -q 'event=resynced' %s", env.log);
    ASSERT_INT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "test $(grep -c 'event=started' %s) -eq 1", env.log);
    ASSERT_INT_EQ(system(cmd), 0);
    free(want);
    free(got);
    PQfinish(c);
    ph_teardown(&env);
}

int main(void)
{
    RUN_TEST(test_postgres_restart_mid_stream);
    return 0;
}
