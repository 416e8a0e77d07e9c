/*
 * memory.h: a resident size fixed at start. A service that reserves its
 * working memory up front claims it while starting (a shortage shows then,
 * not under a backlog at night) and its resident size does not grow as
 * buffers and queues first fill.
 */
#ifndef HUB_MEMORY_H
#define HUB_MEMORY_H

#include <stddef.h>

/*
 * hub_memory_reserve: with glibc, puts every thread's allocations in one
 * heap that is not given back below `bytes`, grows that heap to `bytes` and
 * writes every page once. Call it before any thread starts. 0 does nothing.
 * Returns 0, or HUB_ENOMEM if the memory could not be had.
 */
int hub_memory_reserve(size_t bytes);

/* hub_memory_rss_kb: this process's resident size in kB, or -1. */
long hub_memory_rss_kb(void);

#endif
