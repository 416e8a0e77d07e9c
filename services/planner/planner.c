/*
 * planner.c: flags in, alerts out, exactly once.
 *
 * Each loop collects a batch of flags (no transaction is open while the
 * consumer polls, so rebalance callbacks never meet one), then in one Kafka
 * transaction produces the batch's alerts and dead letters and commits the
 * batch's input offsets (send_offsets_to_transaction with the consumer's
 * group metadata, so a zombie from an older generation is fenced). If any
 * step fails the transaction is aborted, the store's changes are undone and
 * the consumer is rewound to the committed offsets, so the batch is redone
 * from scratch.
 *
 * The store (the last alert per young person) is rebuilt when a partition is
 * first used after assignment, by reading the same partition of the alerts
 * topic to its end with read_committed. Alerts are produced to the input's
 * partition number, so a young person's flags and alerts share a partition
 * number whatever partitioner the flag's producer used, and one instance
 * owns both.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/deadletter.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/log.h"
#include "hub/signals.h"
#include "planner.h"
#include "store.h"

#define SERVICE "hub-planner"

/* Header on every alert: the input offset of the flag that raised it (see handle()). */
#define HEADER_CAUSE_OFFSET "hub.planner.cause_offset"

/* The dead-letter reason classes (deadletter.h), counted separately. */
static const char *const dlq_classes[] = {"decode",   "schema",   "validation",
                                          "database", "delivery", "processing"};
#define HUB_DLQ_NCLASSES ((int)HUB_ARRAY_LEN(dlq_classes))

struct planner_s {
    const hub_service_t *svc;
    const hub_common_conf_t *common;
    const planner_conf_t *conf;
    hub_rules_t rules; /* in use: conf->rules until a reload replaces them */
    const char *in_topic, *out_topic, *dlq_topic;
    hub_props_t restore_props;
    hub_codec_t *codec;
    hub_producer_t *producer;
    hub_consumer_t *consumer;
    store_t *store;
    hub_validation_t validation;
    hub_buf_t buf;
    /* the batch in hand, owned */
    rd_kafka_message_t **batch;
    size_t nbatch;
    int seek_end; /* auto.offset.reset is latest: rewind uncommitted partitions to the end */
    planner_stats_t stats;
    /* operations endpoints; counted at commit, so they agree with read_committed readers */
    hub_metrics_t *metrics;
    hub_http_t *http;
    int assigned; /* partitions currently assigned */
    hub_counter_t *m_in, *m_out, *m_failures;
    hub_counter_t *m_dlq[HUB_DLQ_NCLASSES];
    hub_histogram_t *m_latency;
    long long batch_alerts, batch_dlq[HUB_DLQ_NCLASSES];
    int64_t batch_started;
};

/* ---- rebalance ------------------------------------------------------------ */

static void update_ready(planner_t *p)
{
    hub_http_set_ready(p->http, p->assigned > 0,
                       p->assigned > 0 ? NULL : "waiting for partition assignment");
}

static void on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
    planner_t *p = opaque;
    /* Whatever we knew may be stale: another instance may have owned these meanwhile. */
    for (int i = 0; i < parts->cnt; i++)
        store_drop_partition(p->store, parts->elems[i].partition);
    p->assigned += parts->cnt;
    update_ready(p);
}

static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    planner_t *p = opaque;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        size_t keep = 0;
        store_drop_partition(p->store, part);
        /* Flags of a revoked partition are the new owner's to process. */
        for (size_t j = 0; j < p->nbatch; j++) {
            if (p->batch[j]->partition == part)
                rd_kafka_message_destroy(p->batch[j]);
            else
                p->batch[keep++] = p->batch[j];
        }
        p->nbatch = keep;
    }
    p->assigned -= parts->cnt;
    if (p->assigned < 0)
        p->assigned = 0;
    update_ready(p);
}

/* ---- start-up ------------------------------------------------------------- */

/* Partition count of topic, or a negative HUB_E* code. */
static int partition_count(rd_kafka_t *rk, const char *topic, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err;
    int n;

    if (!rkt)
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "topic %s: %s", topic,
                        rd_kafka_err2str(rd_kafka_last_error()));
    err = rd_kafka_metadata(rk, 0, rkt, &md, 30000);
    rd_kafka_topic_destroy(rkt);
    if (err)
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "metadata for topic %s: %s", topic,
                        rd_kafka_err2str(err));
    if (md->topic_cnt != 1 || md->topics[0].err) {
        n = hub_errf(errstr, errstr_size, HUB_ECONFIG, "topic %s: %s (create it first)", topic,
                     md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
        rd_kafka_metadata_destroy(md);
        return n;
    }
    n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

/* dst = src plus the {key, value} pairs of kv (ended by a NULL key). */
static int props_with(hub_props_t *dst, const hub_props_t *src, const char *const (*kv)[2])
{
    if (hub_props_copy(dst, src))
        return HUB_ENOMEM;
    for (; (*kv)[0]; kv++)
        if (hub_props_set(dst, (*kv)[0], (*kv)[1]))
            return HUB_ENOMEM;
    return HUB_OK;
}

planner_t *planner_new(const hub_service_t *svc, const planner_conf_t *conf, hub_metrics_t *metrics,
                       hub_http_t *http, char *errstr, size_t errstr_size)
{
    const hub_common_conf_t *common = &svc->common;
    planner_t *p = calloc(1, sizeof(*p));
    hub_props_t cprops = {0}, pprops = {0};
    hub_codec_opts_t copts = {0};
    char restore_group[512];
    const char *instance;
    int nin, nout;

    if (!p) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        return NULL;
    }
    p->svc = svc;
    p->common = common;
    p->conf = conf;
    p->rules = conf->rules;
    p->in_topic = common->topics.risk_flags;
    p->out_topic = common->topics.transition_alerts;
    p->dlq_topic = common->topics.dead_letters;
    p->metrics = metrics;
    p->http = http;
    update_ready(p);
    if (metrics) {
        /* Every series from zero, so rate() and increase() see the first event. */
        p->m_in = hub_metrics_events_in(metrics, p->in_topic);
        p->m_out = hub_metrics_events_out(metrics, p->out_topic);
        p->m_failures = hub_metrics_delivery_failures(metrics);
        p->m_latency = hub_metrics_batch_latency(metrics);
        for (int i = 0; i < HUB_DLQ_NCLASSES; i++)
            p->m_dlq[i] = hub_metrics_dead_letters(metrics, dlq_classes[i]);
    }
    p->validation.agencies = (const char *const *)common->agencies;
    p->validation.nagencies = common->nagencies;
    p->batch = calloc((size_t)conf->batch_max, sizeof(*p->batch));
    p->store = store_new();
    if (!p->batch || !p->store) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    const char *reset = hub_props_get(&common->kafka, "auto.offset.reset");
    p->seek_end = reset && (strcmp(reset, "latest") == 0 || strcmp(reset, "largest") == 0 ||
                            strcmp(reset, "end") == 0);

    copts.schemas_dir = common->schemas_dir;
    copts.registry_url = common->registry_url;
    if (!(p->codec = hub_codec_new(&copts, errstr, errstr_size)))
        goto fail;

    /* Right after a commit the coordinator answers the next transaction's
       AddOffsetsToTxn with CONCURRENT_TRANSACTIONS until its markers are written,
       and librdkafka retries after retry.backoff.ms: 100 ms by default, which
       would cap the planner at a few transactions a second. */
    if (hub_props_copy(&pprops, &common->kafka) ||
        (!hub_props_get(&common->kafka, "retry.backoff.ms") &&
         hub_props_set(&pprops, "retry.backoff.ms", "20"))) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    /* init_transactions fences and aborts what an earlier incarnation left open, so
       the alerts topic is stable before the state is read back from it. */
    if (!(p->producer = hub_producer_new(&pprops, conf->transactional_id, errstr, errstr_size)))
        goto fail;
    hub_props_clear(&pprops);
    nin = partition_count(hub_producer_handle(p->producer), p->in_topic, errstr, errstr_size);
    if (nin < 0)
        goto fail;
    nout = partition_count(hub_producer_handle(p->producer), p->out_topic, errstr, errstr_size);
    if (nout < 0)
        goto fail;
    if (nout < nin) {
        hub_errf(errstr, errstr_size, HUB_ECONFIG,
                 "topic %s has %d partitions but %s has %d: alerts are written to the flag's "
                 "partition, so the alerts topic needs at least as many",
                 p->out_topic, nout, p->in_topic, nin);
        goto fail;
    }

    snprintf(restore_group, sizeof(restore_group), "%s.restore", conf->group_id);
    static const char *const restore_kv[][2] = {
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        /* The end shows only in an empty fetch, which the broker would hold 500 ms. */
        {"fetch.wait.max.ms", "10"},
        {NULL, NULL},
    };
    if (props_with(&p->restore_props, &common->kafka, restore_kv) ||
        hub_props_set(&p->restore_props, "group.id", restore_group)) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }

    static const char *const consumer_kv[][2] = {
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
        {NULL, NULL},
    };
    if (props_with(&cprops, &common->kafka, consumer_kv)) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    /* Static membership: a restarted instance gets its partitions back at once,
       instead of after the session timeout of its dead predecessor. */
    instance = conf->group_instance_id ? conf->group_instance_id : conf->transactional_id;
    if (*instance && hub_props_set(&cprops, "group.instance.id", instance)) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    hub_consumer_hooks_t hooks = {on_assign, on_revoke, p};
    if (!(p->consumer = hub_consumer_new(&cprops, conf->group_id, &p->in_topic, 1, &hooks, errstr,
                                         errstr_size)))
        goto fail;
    hub_props_clear(&cprops);
    hub_log_info("event=started in=%s out=%s dlq=%s group=%s transactional_id=%s partitions=%d",
                 p->in_topic, p->out_topic, p->dlq_topic, conf->group_id, conf->transactional_id,
                 nin);
    return p;

fail:
    hub_props_clear(&cprops);
    hub_props_clear(&pprops);
    planner_destroy(p);
    return NULL;
}

/* ---- state restore -------------------------------------------------------- */

/* A short text header of m into buf; 0, or -1 when absent or too long. */
static int header_text(rd_kafka_message_t *m, const char *name, char *buf, size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *val = NULL;
    size_t len = 0;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !val ||
        len >= size)
        return -1;
    memcpy(buf, val, len);
    buf[len] = '\0';
    return 0;
}

/*
 * The memory an alert read back carries: its facts, the referral date (the
 * due date when the header is missing) and the offset of its cause (-1 when
 * missing: then no flag is taken for already applied).
 */
static void value_from_alert(rd_kafka_message_t *m, const hub_event_t *alert, store_value_t *v)
{
    char text[32], *end;
    hub_date_t referred = alert->u.plan_due.due_date, d;
    long long off;

    if (header_text(m, HUB_RULES_HEADER_REFERRED_ON, text, sizeof(text)) == 0 &&
        hub_date_parse(text, &d) == HUB_OK)
        referred = d;
    hub_rules_state_from_alert(alert, referred, &v->st);
    v->cause_offset = -1;
    if (header_text(m, HEADER_CAUSE_OFFSET, text, sizeof(text)) == 0) {
        off = strtoll(text, &end, 10);
        if (end != text && !*end && off >= 0)
            v->cause_offset = off;
    }
}

/*
 * Reads partitions parts of the alerts topic from the beginning to their
 * (read_committed) end and keeps the last alert per young person.
 */
static int restore(planner_t *p, const int32_t *parts, int nparts, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    rd_kafka_resp_err_t rerr;
    hub_event_t ev;
    char rderr[512], derr[256];
    int64_t started = hub_monotonic_ms(), deadline = started + p->conf->restore_timeout_ms;
    long long n = 0;
    int eofs = 0, err = HUB_OK;

    if (!(conf = hub_kafka_conf_new(&p->restore_props, NULL, errstr, errstr_size)))
        return HUB_ECONFIG;
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr)))) {
        rd_kafka_conf_destroy(conf);
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "restore consumer: %s", rderr);
    }
    rd_kafka_poll_set_consumer(rk);
    /* Without the leader known, librdkafka retries the start offset look-up only after 500 ms. */
    if ((err = partition_count(rk, p->out_topic, errstr, errstr_size)) < 0)
        goto out;
    err = HUB_OK;
    assign = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(assign, p->out_topic, parts[i])->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if ((rerr = rd_kafka_assign(rk, assign)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        err =
            hub_errf(errstr, errstr_size, HUB_EKAFKA, "restore assign: %s", rd_kafka_err2str(rerr));
        goto out;
    }
    while (eofs < nparts) {
        if (hub_monotonic_ms() > deadline) {
            err = hub_errf(errstr, errstr_size, HUB_ETIMEOUT,
                           "reading %s back took over %lld ms (an open transaction of another "
                           "producer holds it?)",
                           p->out_topic, p->conf->restore_timeout_ms);
            goto out;
        }
        if (hub_stop_requested()) {
            err = hub_errf(errstr, errstr_size, HUB_ESTOPPED, "stopped while restoring");
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            hub_log_warn("event=restore_error topic=%s partition=%" PRId32 " error=\"%s\"",
                         p->out_topic, m->partition, rd_kafka_message_errstr(m));
        } else if (hub_codec_decode(p->codec, m->payload, m->len, &ev, derr, sizeof(derr)) !=
                       HUB_OK ||
                   ev.type != HUB_EVENT_TRANSITION_PLAN_DUE) {
            /* Not ours to judge here: only the planner writes this topic. */
            hub_log_warn("event=restore_skipped topic=%s partition=%" PRId32 " offset=%" PRId64,
                         p->out_topic, m->partition, (int64_t)m->offset);
        } else {
            store_value_t v;
            value_from_alert(m, &ev, &v);
            err = store_put(p->store, m->partition, ev.u.plan_due.subject_key, &v, 0);
            n++;
        }
        rd_kafka_message_destroy(m);
        if (err) {
            hub_errf(errstr, errstr_size, err, "out of memory while restoring");
            goto out;
        }
    }
    for (int i = 0; i < nparts; i++)
        store_set_restored(p->store, parts[i]);
    p->stats.restored += n;
    hub_log_info("event=state_restored topic=%s partitions=%d alerts=%lld subjects=%zu ms=%lld",
                 p->out_topic, nparts, n, store_count(p->store),
                 (long long)(hub_monotonic_ms() - started));
out:
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}

/* ---- one flag --------------------------------------------------------------- */

static int dead_letter(planner_t *p, const rd_kafka_message_t *m, int code, const char *reason,
                       char *errstr, size_t errstr_size)
{
    const char *cls = hub_deadletter_class(code);
    int err = hub_deadletter_send(p->producer, p->dlq_topic, SERVICE, m, cls, reason, errstr,
                                  errstr_size);
    if (err == HUB_OK) {
        for (int i = 0; i < HUB_DLQ_NCLASSES; i++)
            if (strcmp(cls, dlq_classes[i]) == 0)
                p->batch_dlq[i]++;
    }
    return err;
}

static int agency_known(const planner_t *p, const char *code)
{
    for (size_t i = 0; i < p->validation.nagencies; i++)
        if (strcmp(p->validation.agencies[i], code) == 0)
            return 1;
    return 0;
}

/*
 * Handles one flag inside the open transaction. Bad input becomes a dead
 * letter (and 0); a non-zero return means the transaction must be aborted.
 */
static int handle(planner_t *p, const rd_kafka_message_t *m, char *errstr, size_t errstr_size)
{
    hub_event_t ev, alert;
    store_value_t next;
    char why[512];
    int err, emit = 0;

    p->stats.consumed++;
    if (!m->payload || m->len == 0)
        return dead_letter(p, m, HUB_EDECODE, "empty message", errstr, errstr_size);
    if ((err = hub_codec_decode(p->codec, m->payload, m->len, &ev, why, sizeof(why))) != HUB_OK)
        return dead_letter(p, m, err, why, errstr, errstr_size);
    if (ev.type != HUB_EVENT_YOUNG_PERSON_FLAGGED) {
        snprintf(why, sizeof(why), "%s does not belong on the risk flags topic",
                 hub_event_type_name(ev.type));
        return dead_letter(p, m, HUB_ESCHEMA, why, errstr, errstr_size);
    }
    /* The codec validated the structure already; what it cannot know is our agencies. */
    if (!agency_known(p, ev.source))
        return dead_letter(p, m, HUB_EVALID,
                           "source_agency: not one of the configured agency codes", errstr,
                           errstr_size);
    /* The key decides the partition, and the partition decides which instance
       remembers the young person: a flag keyed otherwise could raise a twin alert. */
    if (m->key_len != strlen(ev.u.flagged.subject_key) ||
        memcmp(m->key, ev.u.flagged.subject_key, m->key_len) != 0)
        return dead_letter(p, m, HUB_EVALID, "message key is not the event's subject_key", errstr,
                           errstr_size);

    const store_value_t *prev = store_get(p->store, m->partition, ev.u.flagged.subject_key);
    /* Reprocessing (offsets reset, or a batch redone after an abort) meets flags the
       remembered alert already reflects: one at or before its cause changes nothing,
       even if it is older news than the alert (e.g. a date of birth since corrected). */
    if (prev && prev->cause_offset >= 0 && m->offset <= prev->cause_offset) {
        p->stats.unchanged++;
        hub_log_debug("event=no_alert cause_event_id=%s reason=already_applied topic=%s "
                      "partition=%" PRId32 " offset=%" PRId64,
                      ev.event_id, p->in_topic, m->partition, (int64_t)m->offset);
        return HUB_OK;
    }
    if ((err = hub_rules_plan(&p->rules, prev ? &prev->st : NULL, &ev, SERVICE, &emit, &alert,
                              &next.st, why, sizeof(why))) != HUB_OK)
        return dead_letter(p, m, err, why, errstr, errstr_size);
    next.cause_offset = m->offset;
    if (!emit) {
        if (prev)
            p->stats.unchanged++;
        else
            p->stats.too_young++;
        hub_log_debug("event=no_alert cause_event_id=%s reason=%s topic=%s partition=%" PRId32
                      " offset=%" PRId64,
                      ev.event_id, prev ? "unchanged" : "under_alert_age", p->in_topic,
                      m->partition, (int64_t)m->offset);
        return HUB_OK;
    }
    if ((err = hub_codec_encode(p->codec, &alert, &p->buf, why, sizeof(why))) != HUB_OK)
        return dead_letter(p, m, err, why, errstr, errstr_size);

    char date[16], offset[24];
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    if (!h)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    hub_date_format(next.st.referred_on, date, sizeof(date));
    snprintf(offset, sizeof(offset), "%" PRId64, (int64_t)m->offset);
    rd_kafka_header_add(h, HUB_RULES_HEADER_REFERRED_ON, -1, date, -1);
    rd_kafka_header_add(h, HEADER_CAUSE_OFFSET, -1, offset, -1);
    err = hub_producer_send(p->producer, p->out_topic, m->partition, alert.u.plan_due.subject_key,
                            strlen(alert.u.plan_due.subject_key), p->buf.data, p->buf.len, h,
                            errstr, errstr_size);
    if (err)
        return err;
    if ((err = store_put(p->store, m->partition, alert.u.plan_due.subject_key, &next, 1)))
        return hub_errf(errstr, errstr_size, err, "out of memory");
    p->batch_alerts++;
    hub_log_info("event=alert_raised event_id=%s cause_event_id=%s rule=%s topic=%s "
                 "partition=%" PRId32 " offset=%" PRId64,
                 alert.event_id, ev.event_id, hub_transition_rule_name(alert.u.plan_due.rule),
                 p->in_topic, m->partition, (int64_t)m->offset);
    return HUB_OK;
}

/* ---- transactions --------------------------------------------------------- */

static void drop_batch(planner_t *p)
{
    for (size_t i = 0; i < p->nbatch; i++)
        rd_kafka_message_destroy(p->batch[i]);
    p->nbatch = 0;
    p->batch_alerts = 0;
    memset(p->batch_dlq, 0, sizeof(p->batch_dlq));
}

/* Seeks every assigned partition back to its committed offset. */
static int rewind_consumer(planner_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = hub_consumer_handle(p->consumer);
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_error_t *e;
    rd_kafka_resp_err_t err;
    int ret = HUB_OK;

    if ((err = rd_kafka_assignment(rk, &parts)))
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "assignment: %s", rd_kafka_err2str(err));
    if (parts->cnt == 0)
        goto out;
    if ((err = rd_kafka_committed(rk, parts, 30000))) {
        ret = hub_errf(errstr, errstr_size, HUB_EKAFKA, "committed offsets: %s",
                       rd_kafka_err2str(err));
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = p->seek_end ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    if ((e = rd_kafka_seek_partitions(rk, parts, 30000))) {
        ret = hub_errf(errstr, errstr_size, HUB_EKAFKA, "seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return ret;
}

/*
 * Aborts the open transaction (if any), undoes the store and rewinds the
 * consumer, so the batch will be consumed again. HUB_EKAFKA if that fails
 * fatally.
 */
static int abort_batch(planner_t *p, const char *why, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = hub_producer_handle(p->producer);
    rd_kafka_error_t *e;

    hub_log_warn("event=transaction_abort reason=\"%s\" flags=%zu", why, p->nbatch);
    while ((e = rd_kafka_abort_transaction(rk, 60000))) {
        int fatal = rd_kafka_error_is_fatal(e), retriable = rd_kafka_error_is_retriable(e);
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "abort_transaction: %s",
                 rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        if (fatal || !retriable)
            return HUB_EKAFKA;
    }
    p->stats.aborts++;
    store_rollback(p->store);
    drop_batch(p);
    hub_counter_add(p->m_failures, (uint64_t)hub_producer_failures(p->producer));
    hub_producer_reset_failures(p->producer);
    return rewind_consumer(p, errstr, errstr_size);
}

/* Offsets to commit: one past the last flag of each partition in the batch. */
static rd_kafka_topic_partition_list_t *batch_offsets(const planner_t *p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < p->nbatch; i++) {
        const rd_kafka_message_t *m = p->batch[i];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(l, p->in_topic, m->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(l, p->in_topic, m->partition);
        if (m->offset + 1 > tp->offset)
            tp->offset = m->offset + 1;
    }
    return l;
}

/*
 * Kafka error in a transaction step: fatal errors end the planner; anything
 * else aborts the batch so it is redone.
 */
static int txn_failed(planner_t *p, rd_kafka_error_t *e, const char *step, char *errstr,
                      size_t errstr_size)
{
    char why[512];
    int fatal = rd_kafka_error_is_fatal(e);
    snprintf(why, sizeof(why), "%s: %s", step, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    if (fatal)
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "fatal: %s", why);
    return abort_batch(p, why, errstr, errstr_size);
}

/*
 * Makes sure every assigned partition has its state, reading all that lack
 * it in one pass (so the batch's partitions, and the others, are ready
 * together); 0, or a reason to retry later.
 */
static int restore_assigned(planner_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    rd_kafka_resp_err_t rerr;
    int32_t *parts;
    int n = 0, err = HUB_OK;

    for (size_t i = 0; i < p->nbatch; i++)
        if (!store_restored(p->store, p->batch[i]->partition))
            n++;
    if (n == 0)
        return HUB_OK;
    if ((rerr = rd_kafka_assignment(hub_consumer_handle(p->consumer), &assigned)))
        return hub_errf(errstr, errstr_size, HUB_EKAFKA, "assignment: %s", rd_kafka_err2str(rerr));
    if (!(parts = calloc((size_t)assigned->cnt + 1, sizeof(*parts)))) {
        rd_kafka_topic_partition_list_destroy(assigned);
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    }
    n = 0;
    for (int i = 0; i < assigned->cnt; i++)
        if (!store_restored(p->store, assigned->elems[i].partition))
            parts[n++] = assigned->elems[i].partition;
    if (n)
        err = restore(p, parts, n, errstr, errstr_size);
    free(parts);
    rd_kafka_topic_partition_list_destroy(assigned);
    return err;
}

static int process_batch(planner_t *p, char *errstr, size_t errstr_size)
{
    rd_kafka_t *prk = hub_producer_handle(p->producer);
    rd_kafka_error_t *e;
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    int err;

    if ((err = restore_assigned(p, errstr, errstr_size)) != HUB_OK) {
        if (err == HUB_ESTOPPED) {
            drop_batch(p);
            return HUB_OK;
        }
        if (err != HUB_ETIMEOUT)
            return err;
        /* Go back to polling (staying in the group) and try again with the next batch. */
        hub_log_warn("event=restore_retry error=\"%s\"", errstr);
        drop_batch(p);
        return rewind_consumer(p, errstr, errstr_size);
    }
    if ((e = rd_kafka_begin_transaction(prk)))
        return txn_failed(p, e, "begin_transaction", errstr, errstr_size);
    for (size_t i = 0; i < p->nbatch; i++) {
        if ((err = handle(p, p->batch[i], errstr, errstr_size)) != HUB_OK) {
            char why[600];
            snprintf(why, sizeof(why), "producing: %s", errstr);
            return abort_batch(p, why, errstr, errstr_size);
        }
    }
    offsets = batch_offsets(p);
    cgmd = rd_kafka_consumer_group_metadata(hub_consumer_handle(p->consumer));
    e = rd_kafka_send_offsets_to_transaction(prk, offsets, cgmd, 60000);
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(offsets);
    if (e)
        return txn_failed(p, e, "send_offsets_to_transaction", errstr, errstr_size);
    while ((e = rd_kafka_commit_transaction(prk, 60000))) {
        if (rd_kafka_error_is_retriable(e)) {
            hub_log_warn("event=commit_retry error=\"%s\"", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            continue;
        }
        return txn_failed(p, e, "commit_transaction", errstr, errstr_size);
    }
    store_commit(p->store);
    p->stats.transactions++;
    p->stats.alerts += p->batch_alerts;
    hub_counter_add(p->m_in, p->nbatch);
    hub_counter_add(p->m_out, (uint64_t)p->batch_alerts);
    for (int i = 0; i < HUB_DLQ_NCLASSES; i++) {
        p->stats.dead_letters += p->batch_dlq[i];
        hub_counter_add(p->m_dlq[i], (uint64_t)p->batch_dlq[i]);
    }
    hub_histogram_observe(p->m_latency, (double)(hub_monotonic_ms() - p->batch_started));
    drop_batch(p);
    return HUB_OK;
}

/* ---- the loop ------------------------------------------------------------- */

static void log_progress(const planner_t *p, const char *event)
{
    const planner_stats_t *s = &p->stats;
    hub_log_info("event=%s consumed=%lld alerts=%lld unchanged=%lld too_young=%lld "
                 "dead_letters=%lld transactions=%lld aborts=%lld subjects=%zu",
                 event, s->consumed, s->alerts, s->unchanged, s->too_young, s->dead_letters,
                 s->transactions, s->aborts, store_count(p->store));
}

/*
 * SIGHUP: the rules as the file has them now. Called only with no batch in
 * hand and no transaction open, so every transaction applies one set of
 * rules, and a batch redone after an abort is decided afresh by the rules
 * then in use. Alerts already committed stand; a later flag for the same
 * young person may raise a revised alert if the new rules move the due date.
 */
static void reload_rules(planner_t *p)
{
    hub_rules_t rules;
    const hub_cfg_item_t item = HUB_RULES_CFG_ITEM("planner.rules", &rules);
    char errstr[1024];

    if (hub_service_reload(p->svc, &item, 1, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_error("event=config_reload_failed error=\"%s\" kept=previous", errstr);
        return;
    }
    p->rules = rules;
    hub_log_info("event=config_reloaded reloaded=planner.rules consumed=%lld", p->stats.consumed);
}

int planner_run(planner_t *p, char *errstr, size_t errstr_size)
{
    int64_t next_progress = hub_monotonic_ms() + p->conf->progress_ms, next_lag = 0;
    long long last_consumed = 0;
    int err = HUB_OK;

    while (!hub_stop_requested()) {
        int64_t first = 0;
        hub_http_heartbeat(p->http);
        if (p->nbatch == 0 && hub_reload_requested())
            reload_rules(p);
        if (p->metrics && hub_monotonic_ms() >= next_lag) {
            char lagerr[256];
            if (hub_metrics_update_lag(p->metrics, hub_consumer_handle(p->consumer), lagerr,
                                       sizeof(lagerr)) != HUB_OK)
                hub_log_debug("event=lag_unavailable error=\"%s\"", lagerr);
            next_lag = hub_monotonic_ms() + 5000;
        }
        /* Fill a batch: up to batch_max flags, or batch_ms after the first one. */
        while (p->nbatch < (size_t)p->conf->batch_max && !hub_stop_requested()) {
            int timeout = 100;
            if (p->nbatch) {
                int64_t left = first + p->conf->batch_ms - hub_monotonic_ms();
                if (left <= 0)
                    break;
                timeout = left < 100 ? (int)left : 100;
            }
            rd_kafka_message_t *m = hub_consumer_poll(p->consumer, timeout);
            if (!m) {
                if (!p->nbatch)
                    break;
                continue;
            }
            if (!p->nbatch)
                first = p->batch_started = hub_monotonic_ms();
            p->batch[p->nbatch++] = m;
        }
        if (p->nbatch && (err = process_batch(p, errstr, errstr_size)) != HUB_OK)
            break;
        if (hub_consumer_fatal(p->consumer)) {
            err = hub_errf(errstr, errstr_size, HUB_EKAFKA,
                           "the consumer hit a fatal error (see the consumer_fatal line)");
            break;
        }
        if (hub_monotonic_ms() >= next_progress) {
            if (p->stats.consumed != last_consumed)
                log_progress(p, "progress");
            last_consumed = p->stats.consumed;
            next_progress = hub_monotonic_ms() + p->conf->progress_ms;
        }
    }
    drop_batch(p);
    log_progress(p, err ? "failed" : "stopped");
    return err;
}

const planner_stats_t *planner_stats(const planner_t *p)
{
    return &p->stats;
}

void planner_destroy(planner_t *p)
{
    if (!p)
        return;
    drop_batch(p);
    /* The consumer first: it leaves the group while the producer can still flush. */
    hub_consumer_destroy(p->consumer);
    hub_producer_destroy(p->producer);
    hub_codec_destroy(p->codec);
    store_destroy(p->store);
    hub_buf_free(&p->buf);
    hub_props_clear(&p->restore_props);
    free(p->batch);
    free(p);
}
