/*
 * test_projector_crash.c: exactly once under SIGKILL. 50,000 mixed events
 * (late events, duplicates and poison included) flow while hub-projector is
 * killed at random moments several times and restarted; the final tables must
 * equal what this test computes from the events themselves: no duplicates, no
 * gaps, no double-counted notices.
 */
#include <pthread.h>

#include "projector_harness.h"

#define EVENTS 50000
#define RATE   5000
#define KILLS  6
#define SEED   20190401

static ph_env_t env;
static wl_expect_t expect;

static volatile int producing = 1;

static void *produce(void *arg)
{
    wl_produce(&env, SEED, 0, EVENTS, RATE, &expect);
    producing = 0;
    return NULL;
}

static void test_sigkill_while_events_flow(void)
{
    pthread_t producer;
    unsigned rng = (unsigned)hub_now_ms();
    PGconn *c;
    char *want, *got;
    int killed_while_producing = 0;

    ph_setup(&env, "crash", 3, "batch_max_ms = 50;");
    fprintf(stderr, "   kill-time seed %u\n", rng);
    if (pthread_create(&producer, NULL, produce, NULL) != 0)
        TEST_FAIL_("pthread_create");
    ph_start(&env);
    /* Kill only once events are flowing into the tables. */
    c = ph_connect(env.db_admin);
    for (int i = 0; i < 300 && ph_num(c, "SELECT count(*) FROM hub_event_log") == 0; i++)
        usleep(50 * 1000);
    PQfinish(c);
    for (int k = 0; k < KILLS; k++) {
        /* Between 0.3 and 1.5 s: during start-up, mid-batch, mid-commit, wherever. */
        usleep((useconds_t)(300 + rand_r(&rng) % 1200) * 1000);
        ph_check_alive(&env);
        ASSERT_INT_EQ(ph_stop(&env, SIGKILL), 128 + SIGKILL);
        if (k == KILLS - 1)
            killed_while_producing = producing;
        ph_start(&env);
    }
    pthread_join(producer, NULL);
    ph_wait_caught_up(&env, 300);
    /* The kills must have landed while events flowed, not after. */
    ASSERT_TRUE(killed_while_producing);

    c = ph_connect(env.db_admin);
    want = wl_expected_text(&expect);
    got = wl_actual_text(c);
    wl_assert_same(want, got);
    fprintf(stderr, "   %ld events, %ld poison, %ld distinct applied: tables exact\n", (long)EVENTS,
            expect.poison, expect.events);
    ASSERT_INT_EQ(ph_stop(&env, SIGTERM), 0);
    free(want);
    free(got);
    PQfinish(c);
    ph_teardown(&env);
}

int main(void)
{
    RUN_TEST(test_sigkill_while_events_flow);
    return 0;
}
