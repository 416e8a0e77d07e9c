/*
 * test_projector_rebalance.c: two hub-projector instances in one consumer
 * group while events flow: a second instance joins (rebalance), the first is
 * frozen with SIGSTOP past its session timeout (its partitions move to the
 * other instance) and then thawed, a zombie that may still hold a batch, and
 * finally the second leaves. Offsets fenced in PostgreSQL keep the zombie's
 * late commit out, so the tables end exactly as computed from the events.
 */
#include <pthread.h>

#include "projector_harness.h"

#define EVENTS 40000
#define RATE   4000
#define SEED   20200101

static ph_env_t a, b;
static wl_expect_t expect;

static void *produce(void *arg)
{
    wl_produce(&a, SEED, 0, EVENTS, RATE, &expect);
    return NULL;
}

static void test_rebalance_and_zombie(void)
{
    pthread_t producer;
    PGconn *c;
    char *want, *got;

    ph_setup(&a, "rebalance", 3, "batch_max_ms = 50;");
    ph_another_instance(&b, &a, 2, "batch_max_ms = 50;");

    if (pthread_create(&producer, NULL, produce, NULL) != 0)
        TEST_FAIL_("pthread_create");
    ph_start(&a);
    usleep(2000 * 1000);
    ph_start(&b);
    usleep(2000 * 1000);
    ph_check_alive(&a);
    /* Longer than session.timeout.ms (6 s): the group gives A's partitions to B. */
    kill(a.pid, SIGSTOP);
    usleep(8000 * 1000);
    kill(a.pid, SIGCONT);
    usleep(3000 * 1000);
    ph_check_alive(&a);
    ph_check_alive(&b);
    ASSERT_INT_EQ(ph_stop(&b, SIGTERM), 0);
    pthread_join(producer, NULL);
    ph_wait_caught_up(&a, 300);

    c = ph_connect(a.db_admin);
    want = wl_expected_text(&expect);
    got = wl_actual_text(c);
    wl_assert_same(want, got);
    ASSERT_INT_EQ(ph_stop(&a, SIGTERM), 0);
    free(want);
    free(got);
    PQfinish(c);
    ph_teardown(&a);
}

int main(void)
{
    RUN_TEST(test_rebalance_and_zombie);
    return 0;
}
