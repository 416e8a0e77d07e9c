/* kafka.c: idempotent producer with counted delivery reports; manual-store consumer. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/common.h"
#include "hub/kafka.h"
#include "hub/log.h"
#include "hub/signals.h"

struct hub_producer_s {
    rd_kafka_t *rk;
    long failures;
    long delivered;
    int transactional;
};

struct hub_consumer_s {
    rd_kafka_t *rk;
    hub_consumer_hooks_t hooks;
    int fatal;
    /* hub_consumer_wakeup_fd: the consumer queue writes a byte to wake[1] when it stops
       being empty. */
    rd_kafka_queue_t *queue;
    int wake[2];
};

/* librdkafka's own log lines, reformatted into ours. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    hub_log_level_t l = level <= 3   ? HUB_LOG_ERROR
                        : level <= 4 ? HUB_LOG_WARN
                        : level <= 6 ? HUB_LOG_INFO
                                     : HUB_LOG_DEBUG;
    hub_log(l, "event=librdkafka client=%s facility=%s msg=\"%s\"", rd_kafka_name(rk), fac, buf);
}

rd_kafka_conf_t *hub_kafka_conf_new(const hub_props_t *props, const hub_props_t *extra,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const hub_props_t *lists[2] = {props, extra};
    char rderr[512];

    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; lists[l] && i < lists[l]->n; i++) {
            if (rd_kafka_conf_set(conf, lists[l]->keys[i], lists[l]->values[i], rderr,
                                  sizeof(rderr)) != RD_KAFKA_CONF_OK) {
                hub_errf(errstr, errstr_size, HUB_ECONFIG, "kafka property %s: %s",
                         lists[l]->keys[i], rderr);
                rd_kafka_conf_destroy(conf);
                return NULL;
            }
        }
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    return conf;
}

/* ---- producer ------------------------------------------------------------- */

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    hub_producer_t *p = opaque;
    if (m->err) {
        p->failures++;
        hub_log_error("event=delivery_failed topic=%s partition=%d error=\"%s\"",
                      rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
    } else {
        p->delivered++;
    }
}

hub_producer_t *hub_producer_new(const hub_props_t *props, const char *transactional_id,
                                 char *errstr, size_t errstr_size)
{
    hub_producer_t *p = NULL;
    rd_kafka_conf_t *conf = NULL;
    hub_props_t extra = {0};
    char rderr[512];

    p = calloc(1, sizeof(*p));
    if (!p) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        return NULL;
    }
    if (hub_props_set(&extra, "enable.idempotence", "true") ||
        (transactional_id && hub_props_set(&extra, "transactional.id", transactional_id))) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    conf = hub_kafka_conf_new(props, &extra, errstr, errstr_size);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!p->rk) {
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "cannot create producer: %s", rderr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    if (transactional_id) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, 30000);
        if (e) {
            hub_errf(errstr, errstr_size, HUB_EKAFKA, "init_transactions: %s",
                     rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            goto fail;
        }
        p->transactional = 1;
    }
    hub_props_clear(&extra);
    return p;

fail:
    hub_props_clear(&extra);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (p && p->rk)
        rd_kafka_destroy(p->rk);
    free(p);
    return NULL;
}

int hub_producer_send(hub_producer_t *p, const char *topic, int32_t partition, const void *key,
                      size_t key_len, const void *value, size_t value_len,
                      rd_kafka_headers_t *headers, char *errstr, size_t errstr_size)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
        if (!err)
            return HUB_OK;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Back-pressure: serve delivery reports until there is room. */
            rd_kafka_poll(p->rk, 100);
            continue;
        }
        if (headers)
            rd_kafka_headers_destroy(headers);
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "produce to %s: %s", topic,
                        rd_kafka_err2str(err));
    }
}

void hub_producer_poll(hub_producer_t *p, int timeout_ms)
{
    rd_kafka_poll(p->rk, timeout_ms);
}

int hub_producer_flush(hub_producer_t *p, int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT)
        return hub_errf(errstr, errstr_size, HUB_ETIMEOUT,
                        "%d message(s) still undelivered after %d ms", rd_kafka_outq_len(p->rk),
                        timeout_ms);
    if (p->failures)
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "%ld message(s) failed delivery",
                        p->failures);
    return HUB_OK;
}

long hub_producer_failures(const hub_producer_t *p)
{
    return p->failures;
}

long hub_producer_delivered(const hub_producer_t *p)
{
    return p->delivered;
}

void hub_producer_reset_failures(hub_producer_t *p)
{
    p->failures = 0;
}

rd_kafka_t *hub_producer_handle(hub_producer_t *p)
{
    return p->rk;
}

void hub_producer_destroy(hub_producer_t *p)
{
    if (!p)
        return;
    if (p->rk) {
        rd_kafka_flush(p->rk, 10000);
        int left = rd_kafka_outq_len(p->rk);
        if (left > 0)
            hub_log_error("event=producer_undelivered count=%d", left);
        rd_kafka_destroy(p->rk);
    }
    free(p);
}

/* ---- consumer ------------------------------------------------------------- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    hub_consumer_t *c = opaque;
    /* NULL while the consumer closes (no group any more). */
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    int cooperative = protocol && strcmp(protocol, "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if (c->hooks.on_assign)
            c->hooks.on_assign(c->hooks.opaque, parts);
        hub_log_info("event=partitions_assigned count=%d protocol=%s", parts->cnt,
                     cooperative ? "cooperative" : "eager");
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            ret = rd_kafka_assign(rk, parts);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        if (c->hooks.on_revoke)
            c->hooks.on_revoke(c->hooks.opaque, parts);
        hub_log_info("event=partitions_revoked count=%d protocol=%s", parts->cnt,
                     cooperative ? "cooperative" : "eager");
        /* Commit what is durable before the partitions move to another member. */
        if (!rd_kafka_assignment_lost(rk))
            rd_kafka_commit(rk, NULL, 0);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            ret = rd_kafka_assign(rk, NULL);
        break;
    default:
        hub_log_error("event=rebalance_failed error=\"%s\"", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        break;
    }
    if (error) {
        hub_log_error("event=assign_failed error=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        hub_log_error("event=assign_failed error=\"%s\"", rd_kafka_err2str(ret));
    }
}

hub_consumer_t *hub_consumer_new(const hub_props_t *props, const char *group_id,
                                 const char *const *topics, size_t ntopics,
                                 const hub_consumer_hooks_t *hooks, char *errstr,
                                 size_t errstr_size)
{
    hub_consumer_t *c = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    hub_props_t extra = {0};
    rd_kafka_resp_err_t err;
    char rderr[512];

    c = calloc(1, sizeof(*c));
    if (!c) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        return NULL;
    }
    if (hooks)
        c->hooks = *hooks;
    /* Offsets are stored by the caller once the effect is durable. */
    if (hub_props_set(&extra, "group.id", group_id) ||
        hub_props_set(&extra, "enable.auto.offset.store", "false")) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    if (!hub_props_get(props, "auto.offset.reset") &&
        hub_props_set(&extra, "auto.offset.reset", "earliest")) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    conf = hub_kafka_conf_new(props, &extra, errstr, errstr_size);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!c->rk) {
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "cannot create consumer: %s", rderr);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(c->rk);
    subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err) {
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "subscribe: %s", rd_kafka_err2str(err));
        goto fail;
    }
    hub_props_clear(&extra);
    return c;

fail:
    hub_props_clear(&extra);
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    free(c);
    return NULL;
}

rd_kafka_message_t *hub_consumer_poll(hub_consumer_t *c, int timeout_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!m)
        return NULL;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char reason[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(c->rk, reason, sizeof(reason));
        if (!c->fatal)
            hub_log_error("event=consumer_fatal error=%s reason=\"%s\"", rd_kafka_err2name(orig),
                          reason);
        c->fatal = 1;
        rd_kafka_message_destroy(m);
        return NULL;
    }
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            hub_log_warn("event=consume_error topic=%s partition=%d error=\"%s\"",
                         m->rkt ? rd_kafka_topic_name(m->rkt) : "-", m->partition,
                         rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        return NULL;
    }
    return m;
}

int hub_consumer_fatal(const hub_consumer_t *c)
{
    return c->fatal;
}

int hub_consumer_store(hub_consumer_t *c, const rd_kafka_message_t *msg)
{
    rd_kafka_resp_err_t err = rd_kafka_offset_store(msg->rkt, msg->partition, msg->offset);
    if (err) {
        hub_log_warn("event=offset_store_failed topic=%s partition=%d offset=%lld error=\"%s\"",
                     rd_kafka_topic_name(msg->rkt), msg->partition, (long long)msg->offset,
                     rd_kafka_err2str(err));
        return HUB_EKAFKA;
    }
    return HUB_OK;
}

int hub_consumer_commit(hub_consumer_t *c, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "commit: %s", rd_kafka_err2str(err));
    return HUB_OK;
}

rd_kafka_t *hub_consumer_handle(hub_consumer_t *c)
{
    return c->rk;
}

int hub_consumer_wakeup_fd(hub_consumer_t *c)
{
    if (c->queue)
        return c->wake[0];
    if (pipe(c->wake) != 0)
        return -1;
    if (fcntl(c->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(c->wake[1], F_SETFL, O_NONBLOCK) != 0 ||
        !(c->queue = rd_kafka_queue_get_consumer(c->rk))) {
        close(c->wake[0]);
        close(c->wake[1]);
        return -1;
    }
    rd_kafka_queue_io_event_enable(c->queue, c->wake[1], "1", 1);
    return c->wake[0];
}

void hub_consumer_wakeup_drain(hub_consumer_t *c)
{
    char buf[64];
    if (c->queue)
        while (read(c->wake[0], buf, sizeof(buf)) > 0)
            ;
}

void hub_consumer_destroy(hub_consumer_t *c)
{
    if (!c)
        return;
    if (c->rk) {
        rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            hub_log_warn("event=final_commit_failed error=\"%s\"", rd_kafka_err2str(err));
        /* Closing serves the last rebalance through the consumer queue: its wakeup stays
           in place until then. */
        rd_kafka_consumer_close(c->rk);
        if (c->queue) {
            rd_kafka_queue_io_event_enable(c->queue, -1, NULL, 0);
            rd_kafka_queue_destroy(c->queue);
        }
        rd_kafka_destroy(c->rk);
    }
    if (c->queue) {
        close(c->wake[0]);
        close(c->wake[1]);
    }
    free(c);
}
