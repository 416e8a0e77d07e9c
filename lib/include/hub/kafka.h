/*
 * kafka.h: the hub's Kafka producer and consumer, thin layers over librdkafka
 * that carry the project's rules:
 *  - producers are idempotent, count failed deliveries and flush before exit;
 *  - consumers never store an offset until the caller says the effect is
 *    durable (enable.auto.offset.store=false) and handle both eager and
 *    cooperative rebalances, letting the caller choose start offsets;
 *  - every property from the config's kafka { } group reaches librdkafka.
 */
#ifndef HUB_KAFKA_H
#define HUB_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "hub/config.h"

typedef struct hub_producer_s hub_producer_t;
typedef struct hub_consumer_s hub_consumer_t;

/*
 * hub_kafka_conf_new: a librdkafka configuration holding every property in
 * props (then extra, which wins). NULL with the offending property in errstr.
 */
rd_kafka_conf_t *hub_kafka_conf_new(const hub_props_t *props, const hub_props_t *extra,
                                    char *errstr, size_t errstr_size);

/*
 * hub_producer_new: an idempotent producer. When transactional_id is not
 * NULL the producer is transactional and its transactions are initialised
 * (which fences older instances with the same id). NULL on error.
 */
hub_producer_t *hub_producer_new(const hub_props_t *props, const char *transactional_id,
                                 char *errstr, size_t errstr_size);

/*
 * hub_producer_send: queues one message. key/value are copied. Ownership of
 * headers (may be NULL) moves to the producer whether or not the call
 * succeeds. partition is RD_KAFKA_PARTITION_UA to partition by key. Returns 0
 * or HUB_EKAFKA. Blocks (polling) while the local queue is full.
 */
int hub_producer_send(hub_producer_t *p, const char *topic, int32_t partition, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      rd_kafka_headers_t *headers, char *errstr, size_t errstr_size);

/* hub_producer_poll: serves delivery reports for up to timeout_ms. */
void hub_producer_poll(hub_producer_t *p, int timeout_ms);

/*
 * hub_producer_flush: waits up to timeout_ms for every queued message to be
 * delivered. Returns 0 if all were delivered and none failed since the last
 * hub_producer_reset_failures(), HUB_ETIMEOUT or HUB_EKAFKA otherwise.
 */
int hub_producer_flush(hub_producer_t *p, int timeout_ms, char *errstr, size_t errstr_size);

/* hub_producer_failures: deliveries that failed since creation or the last reset. */
long hub_producer_failures(const hub_producer_t *p);
/* hub_producer_delivered: deliveries that succeeded since creation. */
long hub_producer_delivered(const hub_producer_t *p);
void hub_producer_reset_failures(hub_producer_t *p);

/* hub_producer_handle: the underlying rd_kafka_t (borrowed), e.g. for transactions. */
rd_kafka_t *hub_producer_handle(hub_producer_t *p);

/* hub_producer_destroy: flushes (up to 10 s), logs anything undelivered, frees. NULL is fine. */
void hub_producer_destroy(hub_producer_t *p);

/*
 * Rebalance hooks. on_assign may change the offsets in parts (e.g. to those
 * stored in PostgreSQL) before they are assigned; on_revoke runs before the
 * partitions are taken away, so the caller can finish or drop work in flight.
 * Either may be NULL.
 */
typedef struct hub_consumer_hooks_s {
    void (*on_assign)(void *opaque, rd_kafka_topic_partition_list_t *parts);
    void (*on_revoke)(void *opaque, const rd_kafka_topic_partition_list_t *parts);
    void *opaque;
} hub_consumer_hooks_t;

/*
 * hub_consumer_new: a consumer in group_id subscribed to topics, with manual
 * offset store. hooks may be NULL. NULL on error.
 */
hub_consumer_t *hub_consumer_new(const hub_props_t *props, const char *group_id,
                                 const char *const *topics, size_t ntopics,
                                 const hub_consumer_hooks_t *hooks, char *errstr,
                                 size_t errstr_size);

/*
 * hub_consumer_poll: the next message, or NULL when none arrived within
 * timeout_ms. Error events (partition EOF, transport errors) are logged and
 * returned as NULL. The caller destroys the message with rd_kafka_message_destroy.
 */
rd_kafka_message_t *hub_consumer_poll(hub_consumer_t *c, int timeout_ms);

/*
 * hub_consumer_fatal: non-zero once librdkafka reported a fatal error on the
 * consumer (e.g. a static group member fenced by a newer instance with the
 * same group.instance.id). The consumer can no longer make progress: the
 * service should stop and exit non-zero so its supervisor starts it afresh.
 */
int hub_consumer_fatal(const hub_consumer_t *c);

/*
 * hub_consumer_wakeup_fd: a descriptor that becomes readable when a message
 * (or a rebalance) arrives on an empty consumer queue, to wait on beside
 * other descriptors with poll(): poll the consumer until it returns NULL, then
 * wait, then hub_consumer_wakeup_drain. -1 when it cannot be set up.
 */
int hub_consumer_wakeup_fd(hub_consumer_t *c);

/* hub_consumer_wakeup_drain: empties the wakeup descriptor after it was readable. */
void hub_consumer_wakeup_drain(hub_consumer_t *c);

/* hub_consumer_store: marks msg as done (stores offset+1 for the next commit). */
int hub_consumer_store(hub_consumer_t *c, const rd_kafka_message_t *msg);

/* hub_consumer_commit: commits stored offsets now (synchronously). 0 or HUB_EKAFKA. */
int hub_consumer_commit(hub_consumer_t *c, char *errstr, size_t errstr_size);

/* hub_consumer_handle: the underlying rd_kafka_t (borrowed). */
rd_kafka_t *hub_consumer_handle(hub_consumer_t *c);

/* hub_consumer_destroy: commits stored offsets, leaves the group, frees. NULL is fine. */
void hub_consumer_destroy(hub_consumer_t *c);

#endif
