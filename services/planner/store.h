/*
 * store.h: the planner's memory: for each young person, the facts behind the
 * last alert raised for them (hub_plan_state_t), kept per input partition.
 *
 * The store is not durable by itself: it is rebuilt from the alerts topic
 * when a partition is assigned (see planner.c), and changes made inside a
 * Kafka transaction are recorded in an undo log, so an aborted transaction
 * leaves the store exactly as the last committed one did.
 */
#ifndef HUB_PLANNER_STORE_H
#define HUB_PLANNER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "hub/rules.h"

typedef struct store_s store_t;

/* What the store keeps per young person. */
typedef struct store_value_s {
    hub_plan_state_t st;
    int64_t cause_offset; /* input offset of the flag that raised the alert, or -1 */
} store_value_t;

/* store_new: an empty store, or NULL when out of memory. */
store_t *store_new(void);

/* store_destroy: frees everything. NULL is fine. */
void store_destroy(store_t *s);

/* store_get: the value of subject in partition, or NULL. Borrowed until the next put or drop. */
const store_value_t *store_get(const store_t *s, int32_t partition, const char *subject);

/*
 * store_put: sets the state of subject (64 lower-case hex characters, as
 * the codec guarantees) in partition. When undoable, the previous value is
 * logged so store_rollback() can restore it. 0 or HUB_ENOMEM / HUB_EINVAL
 * (negative partition, malformed subject).
 */
int store_put(store_t *s, int32_t partition, const char *subject, const store_value_t *v,
              int undoable);

/* store_commit: forgets the undo log (the transaction committed). */
void store_commit(store_t *s);

/* store_rollback: undoes every logged put, newest first, then empties the log. */
void store_rollback(store_t *s);

/*
 * store_drop_partition: forgets everything about partition and marks it not
 * restored (it was revoked, or assigned afresh).
 */
void store_drop_partition(store_t *s, int32_t partition);

/* store_restored / store_set_restored: whether partition's state was rebuilt since assignment. */
int store_restored(const store_t *s, int32_t partition);
int store_set_restored(store_t *s, int32_t partition);

/* store_count: subjects held across all partitions. */
size_t store_count(const store_t *s);

#endif
