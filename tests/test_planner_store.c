/*
 * test_planner_store.c: hub-planner's memory (services/planner/store.c)
 * against a plain array model: puts, overwrites, rollback of an aborted
 * transaction (including deletions that shift probe chains), partitions
 * dropped on revocation. The store is compiled into this test directly
 * because it is private to the planner.
 */
#include "../services/planner/store.c"

#include <stdio.h>

#include "test.h"

#define NKEYS  3000
#define NPARTS 3

typedef struct {
    int present;
    store_value_t v;
} model_t;

static model_t model[NPARTS][NKEYS];

static const char *key(int i)
{
    static char buf[HUB_SUBJECT_KEY_SIZE];
    /* Few distinct leading characters, so many keys share probe chains. */
    snprintf(buf, sizeof(buf), "%064x", (unsigned)(i * 2654435761u) % 5000u);
    return buf;
}

static store_value_t value(int i, int gen)
{
    store_value_t v;
    memset(&v, 0, sizeof(v));
    v.st.due_date = i + gen;
    v.st.risk_categories = (hub_risk_set_t)gen;
    v.cause_offset = gen;
    return v;
}

static void check_all(const store_t *s)
{
    size_t count = 0;
    for (int p = 0; p < NPARTS; p++) {
        for (int i = 0; i < NKEYS; i++) {
            const store_value_t *v = store_get(s, p, key(i));
            if (!model[p][i].present) {
                if (v)
                    TEST_FAIL_("partition %d key %d present but should not be", p, i);
                continue;
            }
            count++;
            if (!v)
                TEST_FAIL_("partition %d key %d missing", p, i);
            ASSERT_INT_EQ(v->st.due_date, model[p][i].v.st.due_date);
            ASSERT_INT_EQ(v->cause_offset, model[p][i].v.cause_offset);
        }
    }
    ASSERT_INT_EQ(store_count(s), count);
}

static unsigned rnd(void)
{
    static unsigned long long x = 88172645463325252ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (unsigned)x;
}

static void test_against_model(void)
{
    store_t *s = store_new();
    ASSERT_TRUE(s != NULL);
    ASSERT_TRUE(store_get(s, 0, key(1)) == NULL);
    ASSERT_TRUE(!store_restored(s, 2));
    ASSERT_OK(store_set_restored(s, 2), "set_restored");
    ASSERT_TRUE(store_restored(s, 2));

    for (int round = 0; round < 60; round++) {
        static model_t saved[NPARTS][NKEYS];
        int abort_it = round % 3 == 1;
        memcpy(saved, model, sizeof(model));
        /* One "transaction": a burst of puts, some on keys put earlier in it. */
        int n = 50 + (int)(rnd() % 400);
        for (int k = 0; k < n; k++) {
            int p = (int)(rnd() % NPARTS), i = (int)(rnd() % NKEYS);
            store_value_t v = value(i, round * 1000 + k);
            ASSERT_OK(store_put(s, p, key(i), &v, 1), "put");
            model[p][i].present = 1;
            model[p][i].v = v;
        }
        if (abort_it) {
            store_rollback(s);
            memcpy(model, saved, sizeof(model));
        } else {
            store_commit(s);
        }
        check_all(s);
        if (round == 40) {
            /* Revocation: the partition is forgotten, including its part of an open undo log. */
            store_value_t v = value(7, 1);
            ASSERT_OK(store_put(s, 1, key(7), &v, 1), "put");
            store_drop_partition(s, 1);
            memset(model[1], 0, sizeof(model[1]));
            ASSERT_TRUE(!store_restored(s, 1));
            store_rollback(s);
            check_all(s);
        }
    }
    /* A restore writes without undo. */
    store_value_t v = value(3, 99);
    ASSERT_OK(store_put(s, 0, key(3), &v, 0), "put");
    model[0][3].present = 1;
    model[0][3].v = v;
    store_rollback(s);
    check_all(s);
    ASSERT_INT_EQ(store_put(s, -1, key(3), &v, 0), HUB_EINVAL);
    store_destroy(s);
    store_destroy(NULL);
}

int main(void)
{
    RUN_TEST(test_against_model);
    return 0;
}
