/*
 * deadletter.h: the one way every service rejects a message. The original key
 * and value bytes go unchanged to the dead-letter topic; the reason travels in
 * headers (never the payload, never an identifier of a person):
 *
 *   hub.errors.class        decode | schema | validation | database | delivery | processing
 *   hub.errors.message      human-readable reason (no payload, no identifiers)
 *   hub.errors.topic        source topic
 *   hub.errors.partition    source partition (decimal)
 *   hub.errors.offset       source offset (decimal)
 *   hub.errors.service      the service that rejected it
 *   hub.errors.timestamp    when, ISO 8601 UTC
 *   hub.errors.replay.count how many times it was replayed already (decimal, from
 *                           the original's own header, so replays are bounded)
 *
 * The names mirror Kafka Connect's __connect.errors.* headers, which operators know.
 */
#ifndef HUB_DEADLETTER_H
#define HUB_DEADLETTER_H

#include <librdkafka/rdkafka.h>

#include "hub/kafka.h"

#define HUB_DLQ_HEADER_CLASS     "hub.errors.class"
#define HUB_DLQ_HEADER_MESSAGE   "hub.errors.message"
#define HUB_DLQ_HEADER_TOPIC     "hub.errors.topic"
#define HUB_DLQ_HEADER_PARTITION "hub.errors.partition"
#define HUB_DLQ_HEADER_OFFSET    "hub.errors.offset"
#define HUB_DLQ_HEADER_SERVICE   "hub.errors.service"
#define HUB_DLQ_HEADER_TIMESTAMP "hub.errors.timestamp"
#define HUB_DLQ_HEADER_REPLAYS   "hub.errors.replay.count"

/*
 * hub_deadletter_class: the reason class for a HUB_E* code from the codec
 * or elsewhere ("decode", "schema", "validation", "database", "processing").
 */
const char *hub_deadletter_class(int err);

/*
 * hub_deadletter_send: produces orig's key and value to dlq_topic (keyed by
 * the original key, so a subject's dead letters stay in order) with the
 * headers above, and logs one line with the coordinates and class. The
 * message is queued on p (inside p's open transaction, if any). 0 or
 * HUB_EKAFKA.
 */
int hub_deadletter_send(hub_producer_t *p, const char *dlq_topic, const char *service,
                        const rd_kafka_message_t *orig, const char *reason_class,
                        const char *reason, char *errstr, size_t errstr_size);

/*
 * hub_deadletter_replays: the replay count carried by msg's headers (0 when
 * absent). Consumers may use it to refuse a message replayed too often.
 */
int hub_deadletter_replays(const rd_kafka_message_t *msg);

#endif
