/* memory.c: reserving a service's working memory at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "hub/common.h"
#include "hub/memory.h"

/* The reserve is taken in blocks this size, under the mmap threshold set below, so they
   come from the heap and merge back into it when freed. */
#define RESERVE_BLOCK ((size_t)1 << 20)
/* Blocks larger than this are mapped on their own and unmapped when freed. */
#define MMAP_THRESHOLD ((size_t)32 << 20)

int hub_memory_reserve(size_t bytes)
{
    size_t n = (bytes + RESERVE_BLOCK - 1) / RESERVE_BLOCK, got = 0;
    void **blocks;

    if (bytes == 0)
        return HUB_OK;
#ifdef __GLIBC__
    /* One arena: librdkafka's threads allocate each message and free it on the service's
       thread; with an arena per thread, theirs grows apart from the reserve. A fixed mmap
       threshold keeps glibc from raising it (and moving buffers into the heap) as it
       goes; the trim threshold keeps the reserve mapped once it is free again. */
    /* Best effort: under a sanitizer's allocator mallopt does nothing, and the reserve is
       then only a first touch. */
    (void)mallopt(M_ARENA_MAX, 1);
    (void)mallopt(M_MMAP_THRESHOLD, (int)MMAP_THRESHOLD);
    (void)mallopt(M_TRIM_THRESHOLD, (int)(bytes > INT32_MAX / 2 ? INT32_MAX : 2 * bytes));
#endif
    blocks = calloc(n, sizeof(*blocks));
    if (!blocks)
        return HUB_ENOMEM;
    for (got = 0; got < n; got++) {
        blocks[got] = malloc(RESERVE_BLOCK);
        if (!blocks[got])
            break;
        /* Through a volatile pointer: a plain memset before free() may be dropped. */
        for (size_t off = 0; off < RESERVE_BLOCK; off += 4096)
            ((volatile unsigned char *)blocks[got])[off] = 0;
    }
    /* Freed last to first, the blocks merge into the heap's free top, which stays mapped
       (and resident) for the allocations to come. */
    for (size_t i = got; i > 0; i--)
        free(blocks[i - 1]);
    free(blocks);
    return got == n ? HUB_OK : HUB_ENOMEM;
}

long hub_memory_rss_kb(void)
{
    long pages = -1, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}
