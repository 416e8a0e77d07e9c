/*
 * test_memory.c: the working-memory reserve of a service. After
 * hub_memory_reserve the reserved bytes are resident (every page written),
 * and 0 leaves the process as it was. Whether the reserve then keeps the
 * resident size flat under load is measured by bench/projector (a sanitizer's
 * allocator, as in this build, ignores the allocator settings it makes).
 */
#include <stdlib.h>

#include "hub/common.h"
#include "hub/memory.h"
#include "test.h"

static void test_rss_is_read(void)
{
    long kb = hub_memory_rss_kb();
    ASSERT_INT_OP(kb, >, 0);
    /* 32 MB written: the resident size follows. */
    unsigned char *block = malloc((size_t)32 << 20);
    ASSERT_TRUE(block != NULL);
    for (size_t off = 0; off < ((size_t)32 << 20); off += 4096)
        ((volatile unsigned char *)block)[off] = 1;
    ASSERT_INT_OP(hub_memory_rss_kb(), >=, kb + 30 * 1024);
    free(block);
}

static void test_zero_reserves_nothing(void)
{
    long before = hub_memory_rss_kb();
    ASSERT_INT_EQ(hub_memory_reserve(0), HUB_OK);
    ASSERT_INT_OP(hub_memory_rss_kb(), <, before + 4 * 1024);
}

static void test_reserve_is_resident(void)
{
    long before = hub_memory_rss_kb();
    ASSERT_INT_EQ(hub_memory_reserve((size_t)64 << 20), HUB_OK);
    /* Freed again, but still resident for what comes next. */
    ASSERT_INT_OP(hub_memory_rss_kb(), >=, before + 60 * 1024);
}

int main(void)
{
    RUN_TEST(test_zero_reserves_nothing);
    RUN_TEST(test_rss_is_read);
    RUN_TEST(test_reserve_is_resident);
    return 0;
}
