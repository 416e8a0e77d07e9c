/*
 * hub-notifier: delivers ReminderDue, MeetingActionOverdue and
 * BriefingRequested events by e-mail to the named groups' addresses, never
 * twice for one event id, and produces BriefingSent once a briefing is out.
 *
 * Per event: look it up in the ledger -> mail each address not yet answered
 * for (recording each answer) -> in one transaction write the ledger row and
 * the partition's next offset -> produce BriefingSent (briefings only).
 * Transient SMTP or database trouble pauses the partition and retries it with
 * capped exponential back-off while the other partitions keep flowing; a
 * permanent refusal goes to the dead-letter topic. See docs/notifier.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/config.h"
#include "hub/deadletter.h"
#include "hub/events.h"
#include "hub/groups.h"
#include "hub/http.h"
#include "hub/kafka.h"
#include "hub/log.h"
#include "hub/metrics.h"
#include "hub/pg.h"
#include "hub/service.h"
#include "hub/signals.h"
#include "ledger.h"
#include "mail.h"

#define SERVICE "hub-notifier"

/* Namespace of the BriefingSent ids: UUIDv5(this, request event id). */
#define BRIEFING_SENT_NAMESPACE "6f1d3c2a-8b4e-5a7f-9c0d-2e4b6a8c0f13"

/* How often positions of skipped messages and pending BriefingSent events are written out. */
#define HOUSEKEEPING_MS 1000

typedef struct retry_s {
    char *topic;
    int32_t partition;
    int64_t offset;     /* the message to try again */
    int64_t due_ms;     /* monotonic time of the next attempt */
    int64_t backoff_ms; /* the wait that led to due_ms */
    int attempts;
    int paused;
} retry_t;

typedef struct position_s {
    char *topic;
    int32_t partition;
    int64_t next_offset; /* past the last message handled without a ledger write */
    int dirty;
} position_t;

typedef struct notifier_s {
    hub_service_t svc;
    /* settings */
    hub_groups_t groups;
    char *consumer_group, *from_address, *from_name, *msgid_domain;
    char *smtp_url, *smtp_starttls, *smtp_username, *smtp_password, *smtp_ca_file;
    int smtp_verify_peer;
    long long smtp_connect_timeout_ms, smtp_timeout_ms;
    long long retry_initial_ms, retry_max_ms, startup_wait_ms;
    hub_http_conf_t http_conf;
    /* operations endpoints */
    hub_metrics_t *metrics;
    hub_http_t *http;
    hub_counter_t *m_in[2], *m_out, *m_failures;
    hub_histogram_t *m_latency;
    int assigned; /* partitions held now */
    int ready;    /* last readiness reported */
    /* runtime */
    hub_codec_t *codec;
    hub_producer_t *producer;
    hub_consumer_t *consumer;
    notifier_db_t *db;
    notifier_smtp_t *smtp;
    notifier_mail_opts_t mail_opts;
    retry_t *retries;
    size_t nretries;
    position_t *positions;
    size_t npositions;
    int announce_pending; /* some BriefingSent may still be owed */
    int announce_failed;  /* one failed in the current round */
    hub_event_t ev;
    notifier_text_t msg;
    hub_buf_t buf;
} notifier_t;

/* ---- retries: pause the partition, rewind to the message, come back later ---- */

static retry_t *retry_find(notifier_t *n, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < n->nretries; i++)
        if (n->retries[i].partition == partition && strcmp(n->retries[i].topic, topic) == 0)
            return &n->retries[i];
    return NULL;
}

static void retry_remove(notifier_t *n, retry_t *r)
{
    free(r->topic);
    *r = n->retries[--n->nretries];
}

/* Pauses or resumes one partition, logging (not failing) if librdkafka refuses. */
static void set_paused(notifier_t *n, const char *topic, int32_t partition, int64_t seek_to,
                       int pause)
{
    rd_kafka_t *rk = hub_consumer_handle(n->consumer);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = seek_to;
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(rk, l) : rd_kafka_resume_partitions(rk, l);
    if (!err && pause) {
        /* Rewind so the same message comes back when the partition resumes. */
        rd_kafka_error_t *e = rd_kafka_seek_partitions(rk, l, 5000);
        if (e) {
            hub_log_error("event=seek_failed topic=%s partition=%d error=\"%s\"", topic,
                          (int)partition, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    if (err)
        hub_log_error("event=%s_failed topic=%s partition=%d error=\"%s\"",
                      pause ? "pause" : "resume", topic, (int)partition, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

/* A transient failure: the message is tried again after a capped, doubling wait. */
static void retry_later(notifier_t *n, const rd_kafka_message_t *m, const char *reason)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    retry_t *r = retry_find(n, topic, m->partition);
    if (!r) {
        retry_t *nr = realloc(n->retries, (n->nretries + 1) * sizeof(*nr));
        char *t = strdup(topic);
        if (!nr || !t) {
            free(t);
            if (nr)
                n->retries = nr;
            hub_log_error("event=out_of_memory where=retry");
            hub_stop_request();
            return;
        }
        n->retries = nr;
        r = &n->retries[n->nretries++];
        memset(r, 0, sizeof(*r));
        r->topic = t;
        r->partition = m->partition;
    }
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : n->retry_initial_ms;
    if (r->backoff_ms > n->retry_max_ms)
        r->backoff_ms = n->retry_max_ms;
    r->offset = m->offset;
    r->attempts++;
    r->due_ms = hub_monotonic_ms() + r->backoff_ms;
    r->paused = 1;
    set_paused(n, topic, m->partition, m->offset, 1);
    hub_log_warn("event=delivery_retry topic=%s partition=%d offset=%lld attempt=%d "
                 "backoff_ms=%lld reason=\"%s\"",
                 topic, (int)m->partition, (long long)m->offset, r->attempts,
                 (long long)r->backoff_ms, reason);
}

/* Resumes the partitions whose wait is over. */
static void retry_tick(notifier_t *n)
{
    int64_t now = hub_monotonic_ms();
    for (size_t i = 0; i < n->nretries; i++) {
        retry_t *r = &n->retries[i];
        if (r->paused && r->due_ms <= now) {
            r->paused = 0;
            set_paused(n, r->topic, r->partition, r->offset, 0);
        }
    }
}

/* ---- positions of messages that needed no ledger row ---------------------- */

static void position_note(notifier_t *n, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    position_t *p = NULL;
    for (size_t i = 0; i < n->npositions && !p; i++)
        if (n->positions[i].partition == m->partition && strcmp(n->positions[i].topic, topic) == 0)
            p = &n->positions[i];
    if (!p) {
        position_t *np = realloc(n->positions, (n->npositions + 1) * sizeof(*np));
        char *t = strdup(topic);
        if (!np || !t) {
            /* Losing a skip position only means reading the message again. */
            free(t);
            if (np)
                n->positions = np;
            return;
        }
        n->positions = np;
        p = &n->positions[n->npositions++];
        p->topic = t;
        p->partition = m->partition;
        p->next_offset = 0;
    }
    if (m->offset + 1 > p->next_offset)
        p->next_offset = m->offset + 1;
    p->dirty = 1;
}

/* Writes the skipped messages' positions to PostgreSQL (all, or one topic's partitions). */
static void positions_flush(notifier_t *n, const rd_kafka_topic_partition_list_t *only)
{
    char errstr[512];
    for (size_t i = 0; i < n->npositions; i++) {
        position_t *p = &n->positions[i];
        if (!p->dirty ||
            (only && !rd_kafka_topic_partition_list_find(only, p->topic, p->partition)))
            continue;
        if (notifier_db_ensure(n->db, errstr, sizeof(errstr)) != HUB_OK ||
            notifier_db_save_offset(n->db, p->topic, p->partition, p->next_offset, errstr,
                                    sizeof(errstr)) != HUB_OK) {
            hub_log_warn("event=offset_save_failed topic=%s partition=%d error=\"%s\"", p->topic,
                         (int)p->partition, errstr);
            return;
        }
        p->dirty = 0;
    }
}

/* ---- rebalance hooks ----------------------------------------------------- */

static void on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
    notifier_t *n = opaque;
    char errstr[512];
    /* Eager assignments replace, cooperative ones add. */
    if (strcmp(rd_kafka_rebalance_protocol(hub_consumer_handle(n->consumer)), "COOPERATIVE") != 0)
        n->assigned = 0;
    n->assigned += parts->cnt;
    /* A partition we paused before losing it must flow again when it comes back. */
    rd_kafka_resume_partitions(hub_consumer_handle(n->consumer), parts);
    if (notifier_db_ensure(n->db, errstr, sizeof(errstr)) != HUB_OK ||
        notifier_db_load_offsets(n->db, parts, errstr, sizeof(errstr)) != HUB_OK) {
        /*
         * Kafka's committed offsets are never ahead of PostgreSQL's, so
         * starting from them only re-reads events the ledger will recognise.
         */
        hub_log_warn("event=offsets_not_loaded error=\"%s\" fallback=kafka_committed", errstr);
        return;
    }
    for (int i = 0; i < parts->cnt; i++)
        hub_log_info("event=partition_start topic=%s partition=%d offset=%lld",
                     parts->elems[i].topic, (int)parts->elems[i].partition,
                     (long long)parts->elems[i].offset);
}

static void on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    notifier_t *n = opaque;
    n->assigned -= parts->cnt;
    if (n->assigned < 0)
        n->assigned = 0;
    positions_flush(n, parts);
    for (size_t i = 0; i < n->nretries;) {
        if (rd_kafka_topic_partition_list_find(parts, n->retries[i].topic, n->retries[i].partition))
            retry_remove(n, &n->retries[i]);
        else
            i++;
    }
}

/* ---- BriefingSent -------------------------------------------------------- */

static void announce_one(void *opaque, const char *event_id, const char *group_id, int recipients)
{
    notifier_t *n = opaque;
    hub_event_t ev;
    char errstr[512];
    const char *topic = n->svc.common.topics.group_notifications;

    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_BRIEFING_SENT;
    ev.occurred_at = hub_now_ms();
    hub_strlcpy(ev.source, SERVICE, sizeof(ev.source));
    hub_strlcpy(ev.u.briefing_sent.group_id, group_id, sizeof(ev.u.briefing_sent.group_id));
    hub_strlcpy(ev.u.briefing_sent.request_event_id, event_id,
                sizeof(ev.u.briefing_sent.request_event_id));
    ev.u.briefing_sent.recipients = recipients;
    if (hub_uuid_v5(BRIEFING_SENT_NAMESPACE, event_id, strlen(event_id), ev.event_id) != HUB_OK ||
        hub_codec_encode(n->codec, &ev, &n->buf, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_error("event=briefing_sent_failed request_event_id=%s error=\"%s\"", event_id,
                      errstr);
        n->announce_failed = 1;
        return;
    }
    hub_producer_reset_failures(n->producer);
    if (hub_producer_send(n->producer, topic, RD_KAFKA_PARTITION_UA, group_id, strlen(group_id),
                          n->buf.data, n->buf.len, NULL, errstr, sizeof(errstr)) != HUB_OK ||
        hub_producer_flush(n->producer, 10000, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_warn("event=briefing_sent_retry request_event_id=%s error=\"%s\"", event_id,
                     errstr);
        n->announce_failed = 1;
        return;
    }
    if (notifier_db_mark_announced(n->db, event_id, ev.event_id, errstr, sizeof(errstr)) !=
        HUB_OK) {
        /* Produced again later under the same id; readers drop the copy. */
        hub_log_warn("event=briefing_sent_unrecorded event_id=%s error=\"%s\"", ev.event_id,
                     errstr);
        n->announce_failed = 1;
        return;
    }
    hub_counter_add(n->m_out, 1);
    hub_log_info("event=briefing_sent event_id=%s request_event_id=%s group_id=%s recipients=%d",
                 ev.event_id, event_id, group_id, recipients);
}

/* Produces every BriefingSent still owed; what fails stays owed for the next round. */
static void announce_pending(notifier_t *n)
{
    char errstr[512];
    n->announce_failed = 0;
    if (notifier_db_ensure(n->db, errstr, sizeof(errstr)) != HUB_OK ||
        notifier_db_unannounced(n->db, announce_one, n, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_warn("event=briefing_sent_scan_failed error=\"%s\"", errstr);
        n->announce_failed = 1;
    }
    n->announce_pending = n->announce_failed;
}

/* ---- one message --------------------------------------------------------- */

typedef enum { DONE, RETRY } step_t;

/* Sends m to the dead-letter topic and waits until the broker has it. */
static step_t dead_letter(notifier_t *n, const rd_kafka_message_t *m, const char *klass,
                          const char *reason)
{
    char errstr[512];
    hub_producer_reset_failures(n->producer);
    if (hub_deadletter_send(n->producer, n->svc.common.topics.dead_letters, SERVICE, m, klass,
                            reason, errstr, sizeof(errstr)) != HUB_OK ||
        hub_producer_flush(n->producer, 10000, errstr, sizeof(errstr)) != HUB_OK) {
        retry_later(n, m, errstr);
        return RETRY;
    }
    hub_counter_add(hub_metrics_dead_letters(n->metrics, klass), 1);
    return DONE;
}

/* Writes the ledger row and the offset together; a failure means try the message again. */
static step_t finish(notifier_t *n, const rd_kafka_message_t *m, const char *kind,
                     const char *group_id, const char *status, int accepted, int refused)
{
    char errstr[512], msgid[160];
    notifier_outcome_t o = {
        .event_id = n->ev.event_id,
        .event_type = hub_event_type_name(n->ev.type),
        .kind = kind,
        .group_id = group_id,
        .status = status,
        .recipients = accepted,
        .refused = refused,
        .message_id = notifier_mail_message_id(n->ev.event_id, &n->mail_opts, msgid, sizeof(msgid)),
        .topic = rd_kafka_topic_name(m->rkt),
        .partition = m->partition,
        .offset = m->offset,
    };
    if (notifier_db_finish(n->db, &o, errstr, sizeof(errstr)) != HUB_OK) {
        retry_later(n, m, errstr);
        return RETRY;
    }
    return DONE;
}

static const char *event_kind(const hub_event_t *ev)
{
    switch (ev->type) {
    case HUB_EVENT_REMINDER_DUE:
        return hub_reminder_kind_name(ev->u.reminder.kind);
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        return "ACTION_OVERDUE";
    default:
        return "BRIEFING";
    }
}

static const char *event_group(const hub_event_t *ev)
{
    switch (ev->type) {
    case HUB_EVENT_REMINDER_DUE:
        return ev->u.reminder.group_id;
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        return ev->u.action_overdue.owner_group_id;
    default:
        return ev->u.briefing_requested.group_id;
    }
}

/* Mails every address of grp not yet answered for; DONE once each has an answer. */
static step_t deliver(notifier_t *n, const rd_kafka_message_t *m, const hub_group_t *grp,
                      int replay, int *accepted, int *refused, char *why, size_t why_size)
{
    char errstr[512], reason[512], msgid[160];
    notifier_mail_message_id(n->ev.event_id, &n->mail_opts, msgid, sizeof(msgid));
    int la = -1;
    if (n->ev.type == HUB_EVENT_REMINDER_DUE &&
        n->ev.u.reminder.kind != HUB_REMINDER_GROUP_NOT_BRIEFED)
        la = grp->local_authority;
    if (notifier_mail_compose(&n->ev, grp, la, &n->mail_opts, hub_now_ms(), &n->msg, errstr,
                              sizeof(errstr)) != HUB_OK) {
        retry_later(n, m, errstr);
        return RETRY;
    }
    *accepted = *refused = 0;
    why[0] = '\0';
    for (size_t i = 0; i < grp->nemails; i++) {
        const char *rcpt = grp->emails[i];
        notifier_answer_t answer;
        long code = 0;
        if (notifier_db_answer(n->db, n->ev.event_id, rcpt, &answer, errstr, sizeof(errstr)) !=
            HUB_OK) {
            retry_later(n, m, errstr);
            return RETRY;
        }
        if (answer == NOTIFIER_ANSWER_DELIVERED) {
            (*accepted)++;
            continue;
        }
        /* A refused address is asked again only when an operator replays the dead letter. */
        if (answer == NOTIFIER_ANSWER_REFUSED && !replay) {
            (*refused)++;
            continue;
        }
        notifier_smtp_result_t r = notifier_smtp_send(n->smtp, n->from_address, rcpt, n->msg.data,
                                                      n->msg.len, &code, reason, sizeof(reason));
        if (r != NOTIFIER_SMTP_ACCEPTED)
            hub_counter_add(n->m_failures, 1);
        if (r == NOTIFIER_SMTP_TRANSIENT) {
            retry_later(n, m, reason);
            return RETRY;
        }
        answer = r == NOTIFIER_SMTP_ACCEPTED ? NOTIFIER_ANSWER_DELIVERED : NOTIFIER_ANSWER_REFUSED;
        if (notifier_db_record_answer(n->db, n->ev.event_id, rcpt, grp->id, answer, code, msgid,
                                      errstr, sizeof(errstr)) != HUB_OK) {
            /* The one window for a second copy: accepted, but not yet on record. */
            retry_later(n, m, errstr);
            return RETRY;
        }
        if (answer == NOTIFIER_ANSWER_DELIVERED) {
            (*accepted)++;
        } else {
            (*refused)++;
            const char *at = strrchr(rcpt, '@');
            snprintf(why, why_size, "address %zu of %zu (domain %s) refused: %s", i + 1,
                     grp->nemails, at ? at + 1 : "?", reason);
            hub_log_warn("event=recipient_refused event_id=%s group_id=%s address_index=%zu "
                         "smtp_code=%ld",
                         n->ev.event_id, grp->id, i + 1, code);
        }
    }
    return DONE;
}

static step_t handle(notifier_t *n, rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    char errstr[512], status[32], why[768];
    int accepted = 0, refused = 0, err;
    retry_t *r = retry_find(n, topic, m->partition);

    /* Fetched before the pause took hold: it comes back when the partition resumes. */
    if (r && r->paused)
        return RETRY;

    err = hub_codec_decode(n->codec, m->payload, m->len, &n->ev, errstr, sizeof(errstr));
    if (err == HUB_EIO || err == HUB_ETIMEOUT) {
        retry_later(n, m, errstr);
        return RETRY;
    }
    if (err) {
        if (dead_letter(n, m, hub_deadletter_class(err), errstr) == RETRY)
            return RETRY;
        position_note(n, m);
        return DONE;
    }
    if (n->ev.type != HUB_EVENT_REMINDER_DUE && n->ev.type != HUB_EVENT_MEETING_ACTION_OVERDUE &&
        n->ev.type != HUB_EVENT_BRIEFING_REQUESTED) {
        position_note(n, m);
        return DONE;
    }

    if (notifier_db_ensure(n->db, errstr, sizeof(errstr)) != HUB_OK ||
        notifier_db_outcome(n->db, n->ev.event_id, status, sizeof(status), errstr,
                            sizeof(errstr)) != HUB_OK) {
        retry_later(n, m, errstr);
        return RETRY;
    }
    int replay = hub_deadletter_replays(m) > 0;
    if (*status &&
        (strcmp(status, "DELIVERED") == 0 || strcmp(status, "NOT_SUBSCRIBED") == 0 || !replay)) {
        hub_log_info("event=duplicate event_id=%s status=%s topic=%s partition=%d offset=%lld",
                     n->ev.event_id, status, topic, (int)m->partition, (long long)m->offset);
        position_note(n, m);
        return DONE;
    }

    const char *kind = event_kind(&n->ev), *gid = event_group(&n->ev);
    const hub_group_t *grp = hub_groups_find(&n->groups, gid);
    if (!grp) {
        snprintf(why, sizeof(why), "group '%s' is not configured (groups in the configuration)",
                 gid);
        if (dead_letter(n, m, "delivery", why) == RETRY)
            return RETRY;
        return finish(n, m, kind, gid, "UNKNOWN_GROUP", 0, 0);
    }
    if (n->ev.type == HUB_EVENT_MEETING_ACTION_OVERDUE &&
        !hub_group_wants(grp, HUB_GROUP_ACTION_OVERDUE)) {
        hub_log_info("event=not_subscribed event_id=%s group_id=%s kind=%s", n->ev.event_id, gid,
                     kind);
        return finish(n, m, kind, gid, "NOT_SUBSCRIBED", 0, 0);
    }

    if (deliver(n, m, grp, replay, &accepted, &refused, why, sizeof(why)) == RETRY)
        return RETRY;
    if (refused > 0) {
        char reason[1024];
        snprintf(reason, sizeof(reason), "%d of %zu address(es) of group %s refused for good; %s",
                 refused, grp->nemails, grp->id, why[0] ? why : "refused earlier");
        if (dead_letter(n, m, "delivery", reason) == RETRY)
            return RETRY;
    }
    const char *outcome = refused == 0 ? "DELIVERED" : accepted > 0 ? "PARTIAL" : "REFUSED";
    if (finish(n, m, kind, grp->id, outcome, accepted, refused) == RETRY)
        return RETRY;
    hub_log_info("event=delivered event_id=%s type=%s kind=%s group_id=%s status=%s "
                 "recipients=%d refused=%d topic=%s partition=%d offset=%lld",
                 n->ev.event_id, hub_event_type_name(n->ev.type), kind, grp->id, outcome, accepted,
                 refused, topic, (int)m->partition, (long long)m->offset);
    if (n->ev.type == HUB_EVENT_BRIEFING_REQUESTED && accepted > 0)
        n->announce_pending = 1;
    return DONE;
}

/* ---- configuration and main ---------------------------------------------- */

static void heartbeat(void *opaque)
{
    notifier_t *n = opaque;
    hub_http_heartbeat(n->http);
}

/*
 * SIGHUP: the groups as the file has them now, for every event handled from
 * here on (including one waiting for a retry). Runs between two events, so
 * no event sees two sets of groups. A file that is not valid changes nothing.
 */
static void reload_groups(notifier_t *n)
{
    char errstr[1024];

    if (hub_groups_reload(&n->svc, &n->groups, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_error("event=config_reload_failed error=\"%s\" kept=previous", errstr);
        return;
    }
    hub_log_info("event=config_reloaded reloaded=groups groups=%zu", n->groups.n);
}

/* Ready: partitions to work on and PostgreSQL reachable. Reported on change only. */
static void update_ready(notifier_t *n)
{
    int pg = !hub_pg_is_connection_error(notifier_db_conn(n->db));
    int ready = n->assigned > 0 && pg;
    if (ready == n->ready)
        return;
    n->ready = ready;
    hub_http_set_ready(n->http, ready,
                       ready ? NULL
                       : !pg ? "PostgreSQL is not reachable"
                             : "waiting for partition assignment");
}

#define OWN(path, type, var, def, help, min, max)                                                  \
    {                                                                                              \
        path, type, var, 0, def, help, min, max, NULL, NULL                                        \
    }

static int run(notifier_t *n)
{
    char errstr[1024];
    const char *topics[2] = {n->svc.common.topics.group_notifications,
                             n->svc.common.topics.meeting_actions};
    hub_codec_opts_t copts = {n->svc.common.schemas_dir, n->svc.common.registry_url, 0};
    notifier_smtp_opts_t sopts = {n->smtp_url,
                                  n->smtp_starttls,
                                  n->smtp_username,
                                  n->smtp_password,
                                  n->smtp_ca_file,
                                  n->smtp_verify_peer,
                                  (long)n->smtp_connect_timeout_ms,
                                  (long)n->smtp_timeout_ms,
                                  heartbeat,
                                  n};
    hub_consumer_hooks_t hooks = {on_assign, on_revoke, n};
    int64_t last_housekeeping = 0, last_lag = 0;

    n->mail_opts.from_address = n->from_address;
    n->mail_opts.from_name = n->from_name;
    n->mail_opts.msgid_domain = n->msgid_domain;
    if (!hub_email_valid(n->from_address)) {
        fprintf(stderr, "%s: notifier.from_address is not an e-mail address\n", SERVICE);
        return HUB_EXIT_USAGE;
    }
    if (!(n->smtp = notifier_smtp_new(&sopts, errstr, sizeof(errstr)))) {
        fprintf(stderr, "%s: %s\n", SERVICE, errstr);
        return HUB_EXIT_USAGE;
    }
    if (!(n->metrics = hub_metrics_new(SERVICE))) {
        hub_log_error("event=start_failed error=\"out of memory\"");
        return HUB_EXIT_FAILURE;
    }
    if (n->http_conf.listen && *n->http_conf.listen &&
        !(n->http = hub_http_start(&n->http_conf, n->metrics, errstr, sizeof(errstr)))) {
        hub_log_error("event=start_failed error=\"%s\"", errstr);
        return HUB_EXIT_FAILURE;
    }
    hub_http_set_ready(n->http, 0, "connecting to PostgreSQL and Kafka");
    /* Created at start so every series is exported from zero. */
    n->m_in[0] = hub_metrics_events_in(n->metrics, topics[0]);
    n->m_in[1] = hub_metrics_events_in(n->metrics, topics[1]);
    n->m_out = hub_metrics_events_out(n->metrics, topics[0]);
    n->m_failures = hub_metrics_delivery_failures(n->metrics);
    n->m_latency = hub_metrics_batch_latency(n->metrics);
    hub_metrics_dead_letters(n->metrics, "decode");
    hub_metrics_dead_letters(n->metrics, "schema");
    hub_metrics_dead_letters(n->metrics, "validation");
    hub_metrics_dead_letters(n->metrics, "delivery");
    if (!(n->codec = hub_codec_new(&copts, errstr, sizeof(errstr))) ||
        !(n->db = notifier_db_open(n->svc.common.pg_conninfo, n->svc.common.pg_password,
                                   n->consumer_group, (int)n->startup_wait_ms, errstr,
                                   sizeof(errstr))) ||
        !(n->producer = hub_producer_new(&n->svc.common.kafka, NULL, errstr, sizeof(errstr))) ||
        !(n->consumer = hub_consumer_new(&n->svc.common.kafka, n->consumer_group, topics, 2, &hooks,
                                         errstr, sizeof(errstr)))) {
        hub_log_error("event=start_failed error=\"%s\"", errstr);
        return HUB_EXIT_FAILURE;
    }
    hub_log_info("event=started consumer_group=%s groups=%zu topics=%s,%s", n->consumer_group,
                 n->groups.n, topics[0], topics[1]);
    n->announce_pending = 1; /* whatever an earlier run left owed */

    while (!hub_stop_requested()) {
        if (hub_reload_requested())
            reload_groups(n);
        retry_tick(n);
        hub_http_heartbeat(n->http);
        rd_kafka_message_t *m = hub_consumer_poll(n->consumer, 100);
        if (m) {
            int64_t started = hub_monotonic_ms();
            const char *topic = rd_kafka_topic_name(m->rkt);
            if (handle(n, m) == DONE) {
                retry_t *r = retry_find(n, topic, m->partition);
                if (r)
                    retry_remove(n, r);
                hub_consumer_store(n->consumer, m);
                hub_counter_add(n->m_in[strcmp(topic, topics[0]) == 0 ? 0 : 1], 1);
                hub_histogram_observe(n->m_latency, (double)(hub_monotonic_ms() - started));
            }
            rd_kafka_message_destroy(m);
        }
        hub_producer_poll(n->producer, 0);
        if (hub_monotonic_ms() - last_housekeeping >= HOUSEKEEPING_MS) {
            positions_flush(n, NULL);
            if (n->announce_pending)
                announce_pending(n);
            update_ready(n);
            if (hub_monotonic_ms() - last_lag >= 5000) {
                if (hub_metrics_update_lag(n->metrics, hub_consumer_handle(n->consumer), errstr,
                                           sizeof(errstr)) != HUB_OK)
                    hub_log_debug("event=lag_unavailable error=\"%s\"", errstr);
                last_lag = hub_monotonic_ms();
            }
            last_housekeeping = hub_monotonic_ms();
        }
        if (hub_consumer_fatal(n->consumer)) {
            hub_log_error("event=stopping reason=consumer_fatal");
            positions_flush(n, NULL);
            return HUB_EXIT_FAILURE;
        }
    }
    hub_log_info("event=stopping");
    positions_flush(n, NULL);
    return HUB_EXIT_OK;
}

int main(int argc, char **argv)
{
    static notifier_t n;
    const hub_cfg_item_t own[] = {
        OWN("notifier.consumer_group", HUB_CFG_STRING, &n.consumer_group, "hub-notifier",
            "Kafka consumer group, also the key of the offsets kept in PostgreSQL", 0, 0),
        OWN("notifier.from_address", HUB_CFG_STRING, &n.from_address, "transitions-hub@example.org",
            "envelope sender and From: address", 0, 0),
        OWN("notifier.from_name", HUB_CFG_STRING, &n.from_name, "LLR Transitions Hub",
            "From: display name", 0, 0),
        OWN("notifier.message_id_domain", HUB_CFG_STRING, &n.msgid_domain, "",
            "right-hand side of Message-ID (empty: the from address's domain)", 0, 0),
        OWN("notifier.smtp.url", HUB_CFG_STRING, &n.smtp_url,
            "${HUB_SMTP_URL:-smtp://127.0.0.1:25}", "smtp://host:port or smtps://host:port", 0, 0),
        OWN("notifier.smtp.starttls", HUB_CFG_STRING, &n.smtp_starttls, "try",
            "none, try or required (smtp:// only; smtps:// is always TLS)", 0, 0),
        OWN("notifier.smtp.username", HUB_CFG_STRING, &n.smtp_username, "",
            "SMTP AUTH user name (empty: no authentication)", 0, 0),
        OWN("notifier.smtp.password", HUB_CFG_SECRET, &n.smtp_password, NULL,
            "SMTP AUTH password (prefer password_file or password_env)", 0, 0),
        OWN("notifier.smtp.ca_file", HUB_CFG_STRING, &n.smtp_ca_file, "",
            "PEM file of CA certificates to trust (empty: the system's)", 0, 0),
        OWN("notifier.smtp.verify_peer", HUB_CFG_BOOL, &n.smtp_verify_peer, "true",
            "check the server's TLS certificate and name", 0, 0),
        OWN("notifier.smtp.connect_timeout_ms", HUB_CFG_INT, &n.smtp_connect_timeout_ms, "10000",
            "connection timeout", 100, 300000),
        OWN("notifier.smtp.timeout_ms", HUB_CFG_INT, &n.smtp_timeout_ms, "60000",
            "timeout of one whole SMTP transaction", 1000, 600000),
        OWN("notifier.retry.initial_ms", HUB_CFG_INT, &n.retry_initial_ms, "1000",
            "first wait after a transient failure (doubles each time)", 10, 3600000),
        OWN("notifier.retry.max_ms", HUB_CFG_INT, &n.retry_max_ms, "300000",
            "longest wait between attempts", 10, 86400000),
        OWN("notifier.startup_wait_ms", HUB_CFG_INT, &n.startup_wait_ms, "60000",
            "how long to keep trying PostgreSQL at start", 0, 3600000),
        HUB_GROUPS_CFG_ITEM(&n.groups),
        HUB_HTTP_CFG_ITEMS("notifier", &n.http_conf, HUB_HTTP_PORT_NOTIFIER),
    };
    int rc;

    n.svc.name = SERVICE;
    n.svc.own_group = "notifier";
    n.svc.usage = "Delivers reminders, overdue meeting actions and briefings by e-mail to the "
                  "named groups, at most once per event id, and records each delivery.";
    n.svc.own = own;
    n.svc.nown = HUB_ARRAY_LEN(own);
    rc = hub_service_init(&n.svc, argc, argv);
    if (rc >= 0)
        goto out;
    if (n.svc.argc > 0) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", SERVICE, n.svc.argv[0]);
        rc = HUB_EXIT_USAGE;
        goto out;
    }
    if (n.retry_max_ms < n.retry_initial_ms)
        n.retry_max_ms = n.retry_initial_ms;
    rc = run(&n);
out:
    hub_consumer_destroy(n.consumer);
    hub_producer_destroy(n.producer);
    notifier_db_close(n.db);
    notifier_smtp_destroy(n.smtp);
    hub_codec_destroy(n.codec);
    hub_http_stop(n.http);
    hub_metrics_destroy(n.metrics);
    hub_buf_free(&n.buf);
    notifier_text_free(&n.msg);
    for (size_t i = 0; i < n.nretries; i++)
        free(n.retries[i].topic);
    free(n.retries);
    for (size_t i = 0; i < n.npositions; i++)
        free(n.positions[i].topic);
    free(n.positions);
    hub_service_fini(&n.svc);
    return rc;
}
