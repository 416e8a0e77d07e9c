/* util.c: what several hubctl commands need: messages, numbers, codec, JSON out, topic reader. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/kafka.h"
#include "hub/signals.h"
#include "hubctl.h"

void hubctl_err(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "hubctl %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int hubctl_parse_count(const char *command, const char *option, const char *text, long long min,
                       long long max, long long *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        hubctl_err(command, "%s must be a whole number from %lld to %lld", option, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

hub_codec_t *hubctl_codec_new(hubctl_t *ctl, const char *command)
{
    char errstr[1024] = "";
    hub_codec_opts_t opts = {ctl->svc->common.schemas_dir, ctl->svc->common.registry_url, 0};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (!c)
        hubctl_err(command, "%s", errstr);
    return c;
}

const char *hubctl_topic(const hubctl_t *ctl, const char *arg)
{
    const char *configured = hub_service_topic(ctl->svc, arg);
    return configured ? configured : arg;
}

int hubctl_print_json(json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    int rc = -1;
    if (text) {
        /* One line per object, flushed, so a pipe reader sees each as it comes. */
        rc = (puts(text) < 0 || fflush(stdout) != 0) ? -1 : 0;
        free(text);
    }
    json_decref(obj);
    return rc;
}

json_t *hubctl_bytes_json(const void *data, size_t len)
{
    json_t *v = data ? json_stringn(data, len) : NULL;
    return v ? v : json_null();
}

char *hubctl_header(const rd_kafka_message_t *m, const char *name)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    char *out;

    /* librdkafka's accessor takes a non-const message but only reads it. */
    if (rd_kafka_message_headers((rd_kafka_message_t *)m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
        return NULL;
    out = malloc(n + 1);
    if (!out)
        return NULL;
    memcpy(out, v, n);
    out[n] = '\0';
    return out;
}

/* ---- assign-based reader ---------------------------------------------------- */

struct hubctl_reader_s {
    rd_kafka_t *rk;
    int npartitions;
    char *at_eof; /* per partition: read to its end, nothing new since */
};

hubctl_reader_t *hubctl_reader_new(hubctl_t *ctl, const char *topic, int from_beginning,
                                   char *errstr, size_t errstr_size)
{
    hubctl_reader_t *r = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    hub_props_t extra = {0};
    rd_kafka_resp_err_t err;
    char rderr[512];

    r = calloc(1, sizeof(*r));
    if (!r) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        return NULL;
    }
    /*
     * Reading must leave no trace: librdkafka wants a group.id even to assign,
     * but with assign() the group is never joined and nothing is committed.
     */
    if (hub_props_set(&extra, "group.id", "hubctl-reader") ||
        hub_props_set(&extra, "enable.auto.commit", "false") ||
        hub_props_set(&extra, "enable.auto.offset.store", "false") ||
        hub_props_set(&extra, "enable.partition.eof", "true")) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    conf = hub_kafka_conf_new(&ctl->svc->common.kafka, &extra, errstr, errstr_size);
    if (!conf)
        goto fail;
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!r->rk) {
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "cannot create a consumer: %s", rderr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rkt = rd_kafka_topic_new(r->rk, topic, NULL);
    if (!rkt) {
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    err = rd_kafka_metadata(r->rk, 0, rkt, &md, 15000);
    if (err) {
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "metadata for topic %s: %s", topic,
                 rd_kafka_err2str(err));
        goto fail;
    }
    if (md->topic_cnt != 1 || md->topics[0].err) {
        hub_errf(errstr, errstr_size, HUB_ENOTFOUND, "topic %s: %s", topic,
                 md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "not found");
        goto fail;
    }
    r->npartitions = md->topics[0].partition_cnt;
    r->at_eof = calloc((size_t)r->npartitions + 1, 1);
    parts = rd_kafka_topic_partition_list_new(r->npartitions);
    if (!r->at_eof || !parts) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    err = rd_kafka_assign(r->rk, parts);
    if (err) {
        hub_errf(errstr, errstr_size, HUB_EKAFKA, "assign %s: %s", topic, rd_kafka_err2str(err));
        goto fail;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    hub_props_clear(&extra);
    return r;

fail:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (conf)
        rd_kafka_conf_destroy(conf);
    hub_props_clear(&extra);
    hubctl_reader_destroy(r);
    return NULL;
}

rd_kafka_message_t *hubctl_reader_poll(hubctl_reader_t *r, int timeout_ms, int *at_end)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, timeout_ms);
    int all = 1;

    if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->partition >= 0 && m->partition < r->npartitions)
            r->at_eof[m->partition] = 1;
        rd_kafka_message_destroy(m);
        m = NULL;
    } else if (m && m->err) {
        fprintf(stderr, "hubctl: consume error on %s [%d]: %s\n",
                m->rkt ? rd_kafka_topic_name(m->rkt) : "-", (int)m->partition,
                rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        m = NULL;
    } else if (m && m->partition >= 0 && m->partition < r->npartitions) {
        r->at_eof[m->partition] = 0;
    }
    for (int i = 0; i < r->npartitions; i++)
        all = all && r->at_eof[i];
    *at_end = !m && all;
    return m;
}

void hubctl_reader_destroy(hubctl_reader_t *r)
{
    if (!r)
        return;
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    free(r->at_eof);
    free(r);
}
