/* batch.c: consumed messages into batch items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/deadletter.h"
#include "hub/log.h"
#include "projector.h"

/* Copies header name's last value as text into buf; 0 when present. */
static int header_text(const rd_kafka_message_t *msg, const char *name, char *buf, size_t size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t len = 0;

    buf[0] = '\0';
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !val)
        return -1;
    if (len >= size)
        len = size - 1;
    memcpy(buf, val, len);
    buf[len] = '\0';
    return 0;
}

/* A non-negative decimal that fits, as text. */
static int is_decimal(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < 19 && strspn(s, "0123456789") == n;
}

/*
 * A message of the dead-letter topic: where it came from and why, from its
 * headers. Headers that are missing or malformed (a message someone wrote to
 * the topic by hand) make the dead letter its own source, so it is still
 * recorded exactly once.
 */
static void classify_dead_letter(projector_item_t *it)
{
    const rd_kafka_message_t *m = it->msg;
    char ts[64];
    int64_t ms;

    it->kind = ITEM_DEAD_LETTER;
    if (header_text(m, HUB_DLQ_HEADER_CLASS, it->reason_class, sizeof(it->reason_class)) != 0 ||
        !it->reason_class[0])
        hub_strlcpy(it->reason_class, "unknown", sizeof(it->reason_class));
    header_text(m, HUB_DLQ_HEADER_MESSAGE, it->reason, sizeof(it->reason));
    if (header_text(m, HUB_DLQ_HEADER_SERVICE, it->dl_service, sizeof(it->dl_service)) != 0 ||
        !it->dl_service[0])
        hub_strlcpy(it->dl_service, "unknown", sizeof(it->dl_service));
    if (header_text(m, HUB_DLQ_HEADER_TOPIC, it->dl_topic, sizeof(it->dl_topic)) != 0 ||
        !it->dl_topic[0] ||
        header_text(m, HUB_DLQ_HEADER_PARTITION, it->dl_partition, sizeof(it->dl_partition)) != 0 ||
        !is_decimal(it->dl_partition) ||
        header_text(m, HUB_DLQ_HEADER_OFFSET, it->dl_offset, sizeof(it->dl_offset)) != 0 ||
        !is_decimal(it->dl_offset)) {
        projector_item_texts(it);
        hub_strlcpy(it->dl_topic, rd_kafka_topic_name(m->rkt), sizeof(it->dl_topic));
        hub_strlcpy(it->dl_partition, it->partition_s, sizeof(it->dl_partition));
        hub_strlcpy(it->dl_offset, it->offset_s, sizeof(it->dl_offset));
    }
    if (header_text(m, HUB_DLQ_HEADER_TIMESTAMP, ts, sizeof(ts)) != 0 ||
        hub_timestamp_parse(ts, &ms) != HUB_OK) {
        rd_kafka_timestamp_type_t tstype;
        ms = rd_kafka_message_timestamp(m, &tstype);
        if (ms <= 0)
            ms = hub_now_ms();
    }
    hub_timestamp_format(ms, it->dl_time, sizeof(it->dl_time));
}

static void reject(projector_item_t *it, const char *reason_class, const char *reason)
{
    it->kind = ITEM_REJECT;
    hub_strlcpy(it->reason_class, reason_class, sizeof(it->reason_class));
    hub_strlcpy(it->reason, reason, sizeof(it->reason));
}

/* Risk category indexes in the order of their names (the database keeps sets sorted). */
static int risk_order[HUB_RISK__COUNT];

static int by_name(const void *a, const void *b)
{
    return strcmp(hub_risk_category_name((hub_risk_category_t) * (const int *)a),
                  hub_risk_category_name((hub_risk_category_t) * (const int *)b));
}

void projector_risks_literal(hub_risk_set_t set, char *buf, size_t size)
{
    size_t n = 0;
    if (!risk_order[1]) {
        for (int c = 0; c < HUB_RISK__COUNT; c++)
            risk_order[c] = c;
        qsort(risk_order, HUB_RISK__COUNT, sizeof(int), by_name);
    }
    if (size < 3) {
        if (size)
            buf[0] = '\0';
        return;
    }
    buf[n++] = '{';
    for (int i = 0; i < HUB_RISK__COUNT; i++) {
        int c = risk_order[i];
        if (!(set & HUB_RISK_BIT(c)))
            continue;
        const char *name = hub_risk_category_name((hub_risk_category_t)c);
        size_t len = strlen(name);
        if (n + len + 3 > size) /* a comma, the name, the brace and the NUL */
            break;
        if (n > 1)
            buf[n++] = ',';
        memcpy(buf + n, name, len);
        n += len;
    }
    buf[n++] = '}';
    buf[n] = '\0';
}

void projector_item_texts(projector_item_t *it)
{
    const hub_event_t *ev = &it->ev;

    if (it->texts)
        return;
    it->texts = 1;
    snprintf(it->partition_s, sizeof(it->partition_s), "%d", (int)it->msg->partition);
    snprintf(it->offset_s, sizeof(it->offset_s), "%lld", (long long)it->msg->offset);
    if (it->kind != ITEM_EVENT)
        return;
    hub_timestamp_format(ev->occurred_at, it->occurred_s, sizeof(it->occurred_s));
    switch (ev->type) {
    case HUB_EVENT_YOUNG_PERSON_FLAGGED:
        hub_date_format(ev->u.flagged.date_of_birth, it->date_a, sizeof(it->date_a));
        hub_date_format(ev->u.flagged.flagged_on, it->date_b, sizeof(it->date_b));
        break;
    case HUB_EVENT_TRANSITION_PLAN_DUE:
        hub_date_format(ev->u.plan_due.due_date, it->date_a, sizeof(it->date_a));
        break;
    case HUB_EVENT_TRANSITION_PLAN_COMPLETED:
        hub_date_format(ev->u.plan_completed.completed_on, it->date_a, sizeof(it->date_a));
        break;
    case HUB_EVENT_MEETING_ACTION_RECORDED:
        hub_date_format(ev->u.action_recorded.meeting_date, it->date_a, sizeof(it->date_a));
        hub_date_format(ev->u.action_recorded.due_date, it->date_b, sizeof(it->date_b));
        break;
    case HUB_EVENT_MEETING_ACTION_COMPLETED:
        hub_date_format(ev->u.action_completed.completed_on, it->date_a, sizeof(it->date_a));
        break;
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        hub_date_format(ev->u.action_overdue.as_of, it->date_a, sizeof(it->date_a));
        break;
    case HUB_EVENT_REMINDER_DUE:
        hub_date_format(ev->u.reminder.as_of, it->date_a, sizeof(it->date_a));
        if (ev->u.reminder.has_due_date)
            hub_date_format(ev->u.reminder.due_date, it->date_b, sizeof(it->date_b));
        break;
    case HUB_EVENT_BRIEFING_SENT:
        snprintf(it->int_s, sizeof(it->int_s), "%d", (int)ev->u.briefing_sent.recipients);
        break;
    default:
        break;
    }
}

/* What every path needs of an event: its JSON for the event log, and a flag's risk set. */
static int event_params(projector_item_t *it)
{
    const hub_event_t *ev = &it->ev;
    char text[2048];
    size_t n;

    if (ev->type <= HUB_EVENT_NONE || ev->type >= HUB_EVENT__COUNT)
        return HUB_EINVAL;
    if (ev->type == HUB_EVENT_YOUNG_PERSON_FLAGGED)
        projector_risks_literal(ev->u.flagged.risk_categories, it->risks, sizeof(it->risks));
    n = hub_event_json_text(ev, text, sizeof(text));
    if (!(it->json = malloc(n + 1)))
        return HUB_ENOMEM;
    if (n < sizeof(text))
        memcpy(it->json, text, n + 1);
    else
        hub_event_json_text(ev, it->json, n + 1);
    return HUB_OK;
}

void projector_batch_add(projector_t *p, rd_kafka_message_t *msg)
{
    projector_item_t *it = &p->ln->items[p->ln->nitems++];
    const char *topic = rd_kafka_topic_name(msg->rkt);
    char errstr[256];
    int err;

    p->ln->prebuilt = 0;
    it->msg = msg;
    it->kind = ITEM_EVENT;
    it->dlq_sent = 0;
    it->json = NULL;
    it->texts = 0;
    it->reason[0] = it->reason_class[0] = '\0';
    if (p->ln->nitems == 1)
        p->ln->batch_started_ms = hub_monotonic_ms();

    if (p->dlq_topic && strcmp(topic, p->dlq_topic) == 0) {
        classify_dead_letter(it);
        return;
    }
    err = hub_codec_decode(p->codec, msg->payload, msg->len, &it->ev, errstr, sizeof(errstr));
    if (err == HUB_OK)
        err = hub_event_validate(&it->ev, &p->rules, errstr, sizeof(errstr));
    if (err != HUB_OK) {
        reject(it, hub_deadletter_class(err), errstr);
        /* Queued now, delivered while the batch fills; the commit waits for it
           (projector_apply_batch). A failure here is retried there. */
        projector_dead_letter(p, it, errstr, sizeof(errstr));
        return;
    }
    err = event_params(it);
    if (err != HUB_OK)
        reject(it, "processing",
               err == HUB_ENOMEM ? "out of memory converting the event" : "unknown event type");
}

int projector_dead_letter(projector_t *p, projector_item_t *it, char *errstr, size_t errstr_size)
{
    if (hub_deadletter_send(p->dlq, p->dlq_topic, PROJECTOR_SERVICE, it->msg, it->reason_class,
                            it->reason, errstr, errstr_size) != HUB_OK)
        return HUB_EKAFKA;
    it->dlq_sent = 1;
    return HUB_OK;
}

static void item_release(projector_item_t *it)
{
    rd_kafka_message_destroy(it->msg);
    it->msg = NULL;
    free(it->json);
    it->json = NULL;
}

void projector_items_release(projector_item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        item_release(&items[i]);
}

/* How many messages a batch (and the stash behind it) holds at most. */
static size_t batch_cap(const projector_t *p)
{
    return (size_t)p->conf.batch_max_events;
}

void projector_batch_clear(projector_t *p)
{
    projector_items_release(p->ln->items, p->ln->nitems);
    p->ln->nitems = 0;
    p->ln->prebuilt = 0;
}

void projector_stash_clear(projector_t *p)
{
    projector_lane_t *l = p->ln;
    for (size_t i = 0; i < l->nstash; i++)
        rd_kafka_message_destroy(l->stash[l->stash_first + i]);
    l->stash_first = l->nstash = 0;
}

int projector_batch_full(const projector_t *p)
{
    return p->ln->nitems >= batch_cap(p);
}

int projector_stash_full(const projector_t *p)
{
    return p->ln->nstash >= batch_cap(p);
}

int projector_batch_take(projector_t *p, rd_kafka_message_t *msg)
{
    projector_lane_t *l = p->ln;
    if (!l->nstash && l->nitems < batch_cap(p)) {
        projector_batch_add(p, msg);
        return 0;
    }
    if (l->nstash >= batch_cap(p))
        return -1;
    if (l->stash_first + l->nstash == batch_cap(p)) {
        memmove(l->stash, l->stash + l->stash_first, l->nstash * sizeof(*l->stash));
        l->stash_first = 0;
    }
    l->stash[l->stash_first + l->nstash++] = msg;
    return 0;
}

void projector_stash_drain(projector_t *p)
{
    projector_lane_t *l = p->ln;
    while (l->nstash && l->nitems < batch_cap(p)) {
        projector_batch_add(p, l->stash[l->stash_first++]);
        l->nstash--;
    }
    if (!l->nstash)
        l->stash_first = 0;
}

/* 1 when msg is of one of the partitions. */
static int in_partitions(const rd_kafka_message_t *msg,
                         const rd_kafka_topic_partition_list_t *parts)
{
    const char *topic = rd_kafka_topic_name(msg->rkt);
    for (int j = 0; j < parts->cnt; j++)
        if (parts->elems[j].partition == msg->partition &&
            strcmp(parts->elems[j].topic, topic) == 0)
            return 1;
    return 0;
}

void projector_batch_drop_partitions(projector_t *p, const rd_kafka_topic_partition_list_t *parts)
{
    projector_lane_t *l = p->ln;
    size_t kept = 0, stashed = 0;
    for (size_t i = 0; i < l->nitems; i++) {
        projector_item_t *it = &l->items[i];
        if (in_partitions(it->msg, parts)) {
            item_release(it);
            continue;
        }
        if (kept != i)
            l->items[kept] = *it;
        kept++;
    }
    for (size_t i = 0; i < l->nstash; i++) {
        rd_kafka_message_t *m = l->stash[l->stash_first + i];
        if (in_partitions(m, parts))
            rd_kafka_message_destroy(m);
        else
            l->stash[l->stash_first + stashed++] = m;
    }
    if (kept != l->nitems || stashed != l->nstash)
        hub_log_info("event=batch_dropped reason=revoked messages=%zu",
                     l->nitems - kept + l->nstash - stashed);
    if (kept != l->nitems)
        l->prebuilt = 0;
    l->nitems = kept;
    l->nstash = stashed;
    projector_stash_drain(p);
}
