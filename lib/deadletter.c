/* deadletter.c: rejected messages go to the dead-letter topic, reason in headers. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/date.h"
#include "hub/deadletter.h"
#include "hub/kafka.h"
#include "hub/log.h"

/* A reason longer than this is cut: headers are for operators, not for dumps. */
#define REASON_MAX 1024

const char *hub_deadletter_class(int err)
{
    switch (err) {
    case HUB_EDECODE:
        return "decode";
    case HUB_ESCHEMA:
        return "schema";
    case HUB_EVALID:
    case HUB_EINVAL:
        return "validation";
    case HUB_EPG:
        return "database";
    case HUB_EKAFKA:
        return "delivery";
    default:
        return "processing";
    }
}

static int add_header(rd_kafka_headers_t *h, const char *name, const char *value)
{
    return rd_kafka_header_add(h, name, -1, value, -1) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int hub_deadletter_send(hub_producer_t *p, const char *dlq_topic, const char *service,
                        const rd_kafka_message_t *orig, const char *reason_class,
                        const char *reason, char *errstr, size_t errstr_size)
{
    rd_kafka_headers_t *h = NULL;
    const char *src_topic = orig->rkt ? rd_kafka_topic_name(orig->rkt) : "";
    char partition[16], offset[32], when[40], replays[16], msg[REASON_MAX + 1];
    int err;

    snprintf(partition, sizeof(partition), "%" PRId32, orig->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, (int64_t)orig->offset);
    snprintf(replays, sizeof(replays), "%d", hub_deadletter_replays(orig));
    hub_timestamp_format(hub_now_ms(), when, sizeof(when));
    hub_strlcpy(msg, reason ? reason : "", sizeof(msg));

    h = rd_kafka_headers_new(8);
    if (!h)
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "cannot allocate headers");
    if (add_header(h, HUB_DLQ_HEADER_CLASS, reason_class ? reason_class : "processing") ||
        add_header(h, HUB_DLQ_HEADER_MESSAGE, msg) ||
        add_header(h, HUB_DLQ_HEADER_TOPIC, src_topic) ||
        add_header(h, HUB_DLQ_HEADER_PARTITION, partition) ||
        add_header(h, HUB_DLQ_HEADER_OFFSET, offset) ||
        add_header(h, HUB_DLQ_HEADER_SERVICE, service ? service : "") ||
        add_header(h, HUB_DLQ_HEADER_TIMESTAMP, when) ||
        add_header(h, HUB_DLQ_HEADER_REPLAYS, replays)) {
        rd_kafka_headers_destroy(h);
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "cannot add dead-letter headers");
    }
    /* The headers belong to the producer from here on, whether or not the send succeeds. */
    err = hub_producer_send(p, dlq_topic, RD_KAFKA_PARTITION_UA, orig->key, orig->key_len,
                            orig->payload, orig->len, h, errstr, errstr_size);
    if (err) {
        hub_log_error(
            "event=dead_letter_failed topic=%s partition=%s offset=%s dlq=%s error=\"%s\"",
            src_topic, partition, offset, dlq_topic, errstr);
        return err;
    }
    hub_log_warn("event=dead_letter topic=%s partition=%s offset=%s dlq=%s class=%s replays=%s "
                 "reason=\"%.200s\"",
                 src_topic, partition, offset, dlq_topic,
                 reason_class ? reason_class : "processing", replays, msg);
    return HUB_OK;
}

int hub_deadletter_replays(const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *h = NULL;
    const void *val = NULL;
    size_t size = 0;
    long long n = 0;

    /* librdkafka's accessor takes a non-const message but only reads it. */
    if (rd_kafka_message_headers((rd_kafka_message_t *)msg, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    if (rd_kafka_header_get_last(h, HUB_DLQ_HEADER_REPLAYS, &val, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        !val)
        return 0;
    /* Only the decimal we write counts; a huge count saturates so it still stops replays. */
    for (size_t i = 0; i < size; i++) {
        char c = ((const char *)val)[i];
        if (c < '0' || c > '9')
            return 0;
        n = n * 10 + (c - '0');
        if (n > INT_MAX)
            return INT_MAX;
    }
    return (int)n;
}
