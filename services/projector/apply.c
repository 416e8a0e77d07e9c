/*
 * apply.c: a batch into PostgreSQL in one transaction, pipelined.
 *
 * Normally the batch goes in as a few set-based statements (sets.c): the
 * lookup of its ids and the event log's COPY, then one statement per table,
 * the offsets and COMMIT in one pipeline that is left in flight while the next
 * batch is read (projector_inflight_*). A batch the database refuses part of
 * (SQLSTATE class 22 or 23) is applied again per event, without overlap,
 * which finds the event at fault:
 *
 * Each event is one prepared statement: a data-modifying CTE inserts it into
 * hub_event_log (ON CONFLICT DO NOTHING) and the state changes select FROM
 * that insert, so an event id seen before changes nothing, without a round
 * trip to ask. The whole batch, the partitions' new offsets and COMMIT go out
 * in one pipeline (libpq pipeline mode): one network round trip per batch.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/deadletter.h"
#include "hub/log.h"
#include "hub/pg.h"
#include "projector.h"
#include "statements.h"

/* clang-format off */

/* The event-log insert every event statement starts with ($1..$7). */
#define LOGGED \
    "WITH logged AS (" \
    " INSERT INTO hub_event_log (event_id, event_type, topic, partition, kafka_offset," \
    "  occurred_at, event)" \
    " VALUES ($1::uuid, $2::text, $3::text, $4::integer, $5::bigint, $6::timestamptz, $7::jsonb)" \
    " ON CONFLICT (event_id) DO NOTHING RETURNING 1) "

/* $8 subject_key, $9 local_authority, $10 date_of_birth, $11 risks (sorted), $12 flagged_on,
   $13 agency */
static const char SQL_FLAGGED[] =
    LOGGED ", flag AS ("
    " INSERT INTO young_person_flags (event_id, subject_key, source_agency, local_authority,"
    "  flagged_on, risk_categories, occurred_at)"
    " SELECT $1::uuid, $8::text, $13::text, $9::text, $12::date, $11::text[], $6::timestamptz"
    " FROM logged) "
    "INSERT INTO young_people AS t (subject_key, local_authority, date_of_birth,"
    " risk_categories, agencies, first_flagged_on, last_flagged_on, last_flag_at,"
    " last_flag_event_id)"
    " SELECT $8::text, $9::text, $10::date, $11::text[], ARRAY[$13::text], $12::date, $12::date,"
    "  $6::timestamptz, $1::uuid FROM logged"
    MERGE_YOUNG_PERSON;

/* $8 subject_key, $9 local_authority, $10 due_date, $11 rule, $12 cause_event_id */
static const char SQL_PLAN_DUE[] =
    LOGGED "INSERT INTO transition_plans AS t (subject_key, local_authority, la_at, la_event_id,"
    " due_date, rule, cause_event_id, alert_event_id, due_at)"
    " SELECT $8::text, $9::text, $6::timestamptz, $1::uuid, $10::date, $11::text, $12::uuid,"
    "  $1::uuid, $6::timestamptz FROM logged"
    MERGE_PLAN_DUE;

/* $8 subject_key, $9 local_authority, $10 completed_on, $11 outcome */
static const char SQL_PLAN_COMPLETED[] =
    LOGGED "INSERT INTO transition_plans AS t (subject_key, local_authority, la_at, la_event_id,"
    " completed_on, outcome, completed_event_id, completed_at)"
    " SELECT $8::text, $9::text, $6::timestamptz, $1::uuid, $10::date, $11::text, $1::uuid,"
    "  $6::timestamptz FROM logged"
    MERGE_PLAN_COMPLETED;

/* $8 action_id, $9 meeting_id, $10 meeting_date, $11 kind, $12 owner_agency,
   $13 owner_group_id, $14 due_date, $15 subject_key (NULL when none) */
static const char SQL_ACTION_RECORDED[] =
    LOGGED "INSERT INTO meeting_actions AS t (action_id, meeting_id, meeting_date, kind,"
    " owner_agency, owner_group_id, due_date, subject_key, recorded_at, recorded_event_id)"
    " SELECT $8::uuid, $9::text, $10::date, $11::text, $12::text, $13::text, $14::date,"
    "  $15::text, $6::timestamptz, $1::uuid FROM logged"
    MERGE_ACTION_RECORDED;

/* $8 action_id, $9 completed_on */
static const char SQL_ACTION_COMPLETED[] =
    LOGGED "INSERT INTO meeting_actions AS t (action_id, completed_on, completed_at,"
    " completed_event_id)"
    " SELECT $8::uuid, $9::date, $6::timestamptz, $1::uuid FROM logged"
    MERGE_ACTION_COMPLETED;

/* $8 action_id, $9 as_of */
static const char SQL_ACTION_OVERDUE[] =
    LOGGED "INSERT INTO meeting_actions AS t (action_id, overdue_notices, last_overdue_as_of)"
    " SELECT $8::uuid, 1, $9::date FROM logged"
    MERGE_ACTION_OVERDUE;

/* $8 group_id, $9 kind, $10 subject_key, $11 due_date (both NULL when absent), $12 as_of */
static const char SQL_REMINDER[] =
    LOGGED ", reminder AS ("
    " INSERT INTO reminders (event_id, group_id, kind, subject_key, due_date, as_of, occurred_at)"
    " SELECT $1::uuid, $8::text, $9::text, $10::text, $11::date, $12::date, $6::timestamptz"
    " FROM logged) "
    "INSERT INTO group_state AS t (group_id, reminders_received, last_reminder_at)"
    " SELECT $8::text, 1, $6::timestamptz FROM logged"
    MERGE_GROUP_REMINDERS;

/* $8 group_id, $9 title */
static const char SQL_BRIEFING_REQUESTED[] =
    LOGGED "INSERT INTO group_state AS t (group_id, last_briefing_title,"
    " last_briefing_requested_at, last_request_event_id)"
    " SELECT $8::text, $9::text, $6::timestamptz, $1::uuid FROM logged"
    MERGE_GROUP_REQUESTED;

/* $8 group_id, $9 recipients */
static const char SQL_BRIEFING_SENT[] =
    LOGGED "INSERT INTO group_state AS t (group_id, last_briefing_sent_at,"
    " last_briefing_recipients, last_sent_event_id, briefings_sent)"
    " SELECT $8::text, $6::timestamptz, $9::integer, $1::uuid, 1 FROM logged"
    MERGE_GROUP_SENT;

/* $1 class, $2 message, $3..$5 source coordinates, $6 service, $7 when, $8..$10 DLQ coordinates */
static const char SQL_DEAD_LETTER[] =
    "INSERT INTO dead_letters AS t (reason_class, message, source_topic, source_partition,"
    " source_offset, service, occurred_at, dlq_topic, dlq_partition, dlq_offset)"
    " VALUES ($1::text, $2::text, $3::text, $4::integer, $5::bigint, $6::text, $7::timestamptz,"
    "  $8::text, $9::integer, $10::bigint)"
    " ON CONFLICT ON CONSTRAINT dead_letters_once DO UPDATE SET"
    " dlq_topic = coalesce(t.dlq_topic, EXCLUDED.dlq_topic),"
    " dlq_partition = coalesce(t.dlq_partition, EXCLUDED.dlq_partition),"
    " dlq_offset = coalesce(t.dlq_offset, EXCLUDED.dlq_offset)";

static const char SQL_OFFSET[] =
    "SELECT hub_advance_offset($1::text, $2::text, $3::integer, $4::bigint, $5::bigint)";

/* clang-format on */

static const struct {
    const char *name;
    const char *sql;
} statements[] = {
    {"flagged", SQL_FLAGGED},
    {"plan_due", SQL_PLAN_DUE},
    {"plan_completed", SQL_PLAN_COMPLETED},
    {"action_recorded", SQL_ACTION_RECORDED},
    {"action_completed", SQL_ACTION_COMPLETED},
    {"action_overdue", SQL_ACTION_OVERDUE},
    {"reminder", SQL_REMINDER},
    {"briefing_requested", SQL_BRIEFING_REQUESTED},
    {"briefing_sent", SQL_BRIEFING_SENT},
    {"dead_letter", SQL_DEAD_LETTER},
    {"offset", SQL_OFFSET},
};

void projector_one_line(char *s)
{
    size_t n;
    for (char *c = s; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
}

/* libpq's message as one line. */
static void pg_message(PGconn *conn, char *buf, size_t size)
{
    hub_strlcpy(buf, conn ? PQerrorMessage(conn) : "no connection", size);
    projector_one_line(buf);
}

int projector_pg_prepare(projector_t *p, char *errstr, size_t errstr_size)
{
    char msg[512];
    for (size_t i = 0; i < HUB_ARRAY_LEN(statements); i++) {
        PGresult *res = PQprepare(p->ln->pg, statements[i].name, statements[i].sql, 0, NULL);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            pg_message(p->ln->pg, msg, sizeof(msg));
            return hub_errf(errstr, errstr_size, HUB_EPG, "preparing %s: %s", statements[i].name,
                            msg);
        }
    }
    if (projector_sets_prepare(p, errstr, errstr_size) != HUB_OK)
        return HUB_EPG;
    p->ln->pg_prepared = 1;
    return HUB_OK;
}

/* The statement name and parameters of an event item; returns the count. */
static int event_statement(projector_item_t *it, const char **name, const char *v[16])
{
    const hub_event_t *ev = &it->ev;
    projector_item_texts(it);
    v[0] = ev->event_id;
    v[1] = hub_event_type_name(ev->type);
    v[2] = rd_kafka_topic_name(it->msg->rkt);
    v[3] = it->partition_s;
    v[4] = it->offset_s;
    v[5] = it->occurred_s;
    v[6] = it->json;
    switch (ev->type) {
    case HUB_EVENT_YOUNG_PERSON_FLAGGED:
        *name = "flagged";
        v[7] = ev->u.flagged.subject_key;
        v[8] = hub_local_authority_name(ev->u.flagged.local_authority);
        v[9] = it->date_a;
        v[10] = it->risks;
        v[11] = it->date_b;
        v[12] = ev->source;
        return 13;
    case HUB_EVENT_TRANSITION_PLAN_DUE:
        *name = "plan_due";
        v[7] = ev->u.plan_due.subject_key;
        v[8] = hub_local_authority_name(ev->u.plan_due.local_authority);
        v[9] = it->date_a;
        v[10] = hub_transition_rule_name(ev->u.plan_due.rule);
        v[11] = ev->u.plan_due.cause_event_id;
        return 12;
    case HUB_EVENT_TRANSITION_PLAN_COMPLETED:
        *name = "plan_completed";
        v[7] = ev->u.plan_completed.subject_key;
        v[8] = hub_local_authority_name(ev->u.plan_completed.local_authority);
        v[9] = it->date_a;
        v[10] = hub_plan_outcome_name(ev->u.plan_completed.outcome);
        return 11;
    case HUB_EVENT_MEETING_ACTION_RECORDED:
        *name = "action_recorded";
        v[7] = ev->u.action_recorded.action_id;
        v[8] = ev->u.action_recorded.meeting_id;
        v[9] = it->date_a;
        v[10] = hub_action_kind_name(ev->u.action_recorded.kind);
        v[11] = ev->u.action_recorded.owner_agency;
        v[12] = ev->u.action_recorded.owner_group_id;
        v[13] = it->date_b;
        v[14] = ev->u.action_recorded.has_subject_key ? ev->u.action_recorded.subject_key : NULL;
        return 15;
    case HUB_EVENT_MEETING_ACTION_COMPLETED:
        *name = "action_completed";
        v[7] = ev->u.action_completed.action_id;
        v[8] = it->date_a;
        return 9;
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        *name = "action_overdue";
        v[7] = ev->u.action_overdue.action_id;
        v[8] = it->date_a;
        return 9;
    case HUB_EVENT_REMINDER_DUE:
        *name = "reminder";
        v[7] = ev->u.reminder.group_id;
        v[8] = hub_reminder_kind_name(ev->u.reminder.kind);
        v[9] = ev->u.reminder.has_subject_key ? ev->u.reminder.subject_key : NULL;
        v[10] = ev->u.reminder.has_due_date ? it->date_b : NULL;
        v[11] = it->date_a;
        return 12;
    case HUB_EVENT_BRIEFING_REQUESTED:
        *name = "briefing_requested";
        v[7] = ev->u.briefing_requested.group_id;
        v[8] = ev->u.briefing_requested.title;
        return 9;
    case HUB_EVENT_BRIEFING_SENT:
        *name = "briefing_sent";
        v[7] = ev->u.briefing_sent.group_id;
        v[8] = it->int_s;
        return 9;
    default:
        return -1;
    }
}

/* The dead_letters row of a reject (source: this message) or of a dead letter (its headers). */
static int dead_letter_statement(projector_t *p, projector_item_t *it, const char *v[16],
                                 char *now_buf, size_t now_size)
{
    const char *topic = rd_kafka_topic_name(it->msg->rkt);
    projector_item_texts(it);
    v[0] = it->reason_class;
    v[1] = it->reason;
    if (it->kind == ITEM_DEAD_LETTER) {
        v[2] = it->dl_topic;
        v[3] = it->dl_partition;
        v[4] = it->dl_offset;
        v[5] = it->dl_service;
        v[6] = it->dl_time;
        v[7] = topic;
        v[8] = it->partition_s;
        v[9] = it->offset_s;
    } else {
        v[2] = topic;
        v[3] = it->partition_s;
        v[4] = it->offset_s;
        v[5] = PROJECTOR_SERVICE;
        v[6] = hub_timestamp_format(hub_now_ms(), now_buf, now_size);
        v[7] = v[8] = v[9] = NULL;
    }
    return 10;
}

/* The next offset of each partition in the batch, in first-seen order. */
static size_t batch_positions(projector_t *p, projector_pos_t *pos)
{
    size_t n = 0;
    for (size_t i = 0; i < p->ln->nitems; i++) {
        const rd_kafka_message_t *m = p->ln->items[i].msg;
        size_t j;
        for (j = 0; j < n; j++)
            if (pos[j].part->partition == m->partition &&
                strcmp(pos[j].part->topic, rd_kafka_topic_name(m->rkt)) == 0)
                break;
        if (j == n) {
            pos[n].part = projector_part_find(p, rd_kafka_topic_name(m->rkt), m->partition);
            if (!pos[n].part)
                continue; /* cannot happen: unowned messages never enter the batch */
            n++;
        }
        if (m->offset + 1 > pos[j].next)
            pos[j].next = m->offset + 1;
    }
    return n;
}

/* Outcome of one attempt at committing the batch. */
typedef enum {
    ATTEMPT_OK,
    ATTEMPT_SENT,      /* set-based, in flight: projector_inflight_finish reads the outcome */
    ATTEMPT_LOGGING,   /* the same, its event log's COPY still on its way (inflight_log) */
    ATTEMPT_BAD_EVENT, /* an event broke a constraint: it is a reject now, try again */
    ATTEMPT_PER_EVENT, /* set-based: refused somewhere; try again per event to find where */
    ATTEMPT_FAILED,    /* connection lost, fenced or another error: resync */
} attempt_t;

int projector_event_at_fault(const char *sqlstate)
{
    return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0;
}

/*
 * Reads the pipeline's results as they arrive: one result set per command,
 * then the sync. block 0: only what is there already. Returns 1 when the sync
 * was read (the first error, if any, in *e), 0 while more is to come, -1 if
 * the connection broke.
 */
static int read_results(PGconn *c, size_t commands, size_t *done, projector_pipeline_error_t *e,
                        int block)
{
    PGresult *res;
    if (!block && !PQconsumeInput(c))
        return -1;
    for (;;) {
        if (!block && PQisBusy(c))
            return PQstatus(c) == CONNECTION_OK ? 0 : -1;
        res = PQgetResult(c);
        if (*done == commands) {
            /* Every command's results are in: the sync is next. */
            ExecStatusType st = PQresultStatus(res);
            PQclear(res);
            if (st != PGRES_PIPELINE_SYNC)
                return -1;
            return PQexitPipelineMode(c) == 1 && PQstatus(c) == CONNECTION_OK ? 1 : -1;
        }
        if (!res) {
            /* The end of one command's results. */
            if (PQstatus(c) != CONNECTION_OK)
                return -1;
            (*done)++;
            continue;
        }
        if (PQresultStatus(res) == PGRES_FATAL_ERROR && e->command == (size_t)-1) {
            const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            const char *con = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
            const char *prim = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            e->command = *done;
            hub_strlcpy(e->sqlstate, s ? s : "", sizeof(e->sqlstate));
            hub_strlcpy(e->constraint, con ? con : "", sizeof(e->constraint));
            hub_strlcpy(e->message, prim ? prim : "", sizeof(e->message));
        }
        PQclear(res);
    }
}

/*
 * Sends BEGIN, the batch (items), the offsets and COMMIT as one pipeline; 0 or
 * -1 on a send failure. sets: the transaction is open and the events are in the
 * event log already (projector_sets_log); the state goes as one statement per
 * table.
 */
static int send_batch(projector_t *p, projector_item_t *items, size_t nitems,
                      const projector_pos_t *pos, size_t npos, int sets, size_t *commands)
{
    PGconn *c = p->ln->pg;
    const char *v[16];
    char now_buf[40];
    /* Offsets as text must live until the pipeline is flushed by the sync. */
    char(*off)[3][24] = calloc(npos ? npos : 1, sizeof(*off));
    int rc = -1;

    *commands = 0;
    if (!off || PQenterPipelineMode(c) != 1)
        goto out;
    if (sets) {
        if (projector_sets_send(p, commands) != 0)
            goto out;
    } else {
        if (!PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
            goto out;
        (*commands)++;
    }
    for (size_t i = 0; i < nitems; i++) {
        projector_item_t *it = &items[i];
        const char *name = "dead_letter";
        if (sets && it->kind == ITEM_EVENT)
            continue;
        int n = it->kind == ITEM_EVENT ? event_statement(it, &name, v)
                                       : dead_letter_statement(p, it, v, now_buf, sizeof(now_buf));
        if (n < 0 || !PQsendQueryPrepared(c, name, n, v, NULL, NULL, 0))
            goto out;
        (*commands)++;
    }
    for (size_t j = 0; j < npos; j++) {
        snprintf(off[j][0], 24, "%d", (int)pos[j].part->partition);
        snprintf(off[j][1], 24, "%lld", (long long)pos[j].part->expected);
        snprintf(off[j][2], 24, "%lld", (long long)pos[j].next);
        v[0] = p->conf.group_id;
        v[1] = pos[j].part->topic;
        v[2] = off[j][0];
        v[3] = off[j][1];
        v[4] = off[j][2];
        if (!PQsendQueryPrepared(c, "offset", 5, v, NULL, NULL, 0))
            goto out;
        (*commands)++;
    }
    if (!PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        goto out;
    (*commands)++;
    if (!PQpipelineSync(c))
        goto out;
    rc = 0;
out:
    free(off);
    return rc;
}

/* Why a commit failed, for the log (never a value from the DETAIL). */
static void failure_message(const projector_pipeline_error_t *e, char *errstr, size_t errstr_size)
{
    if (strcmp(e->sqlstate, "HB001") == 0)
        hub_errf(errstr, errstr_size, HUB_EPG, "offsets moved by another consumer: %s", e->message);
    else
        hub_errf(errstr, errstr_size, HUB_EPG, "commit failed: SQLSTATE %s: %s", e->sqlstate,
                 e->message);
}

/* After a broken pipeline: the connection is of no further use. */
static void connection_lost(projector_t *p, char *errstr, size_t errstr_size)
{
    char msg[512];
    pg_message(p->ln->pg, msg, sizeof(msg));
    hub_errf(errstr, errstr_size, HUB_EPG, "connection lost during commit: %s", msg);
    PQfinish(p->ln->pg);
    p->ln->pg = NULL;
}

/* async: a set-based batch is left in flight once sent (*commands: its result sets). */
static attempt_t attempt(projector_t *p, const projector_pos_t *pos, size_t npos, int sets,
                         int async, size_t *commands, char *errstr, size_t errstr_size)
{
    projector_pipeline_error_t e = {(size_t)-1, "", "", ""};
    size_t done = 0;

    if (sets && async) {
        int rc = projector_sets_log_start(p);
        if (rc == 0)
            return ATTEMPT_LOGGING;
        if (rc < 0) {
            connection_lost(p, errstr, errstr_size);
            return ATTEMPT_FAILED;
        }
    }
    if (sets) {
        int rc = projector_sets_log(p, errstr, errstr_size);
        if (rc == 1)
            return ATTEMPT_PER_EVENT;
        if (rc == -2) {
            PQfinish(p->ln->pg);
            p->ln->pg = NULL;
        }
        if (rc != 0)
            return ATTEMPT_FAILED;
    }
    /* In flight, libpq keeps what the socket cannot take yet instead of waiting for the
       server to read it: sending is flushed from the main loop (projector_inflight_busy). */
    if ((sets && async && PQsetnonblocking(p->ln->pg, 1) != 0) ||
        send_batch(p, p->ln->items, p->ln->nitems, pos, npos, sets, commands) != 0) {
        connection_lost(p, errstr, errstr_size);
        return ATTEMPT_FAILED;
    }
    if (sets && async)
        return ATTEMPT_SENT;
    if (read_results(p->ln->pg, *commands, &done, &e, 1) != 1) {
        connection_lost(p, errstr, errstr_size);
        return ATTEMPT_FAILED;
    }
    if (e.command == (size_t)-1)
        return ATTEMPT_OK;
    /* COMMIT of a failed block rolled it back; make sure the session is idle again. */
    if (PQtransactionStatus(p->ln->pg) != PQTRANS_IDLE)
        hub_pg_exec(p->ln->pg, "ROLLBACK", NULL, 0);

    if (sets && projector_event_at_fault(e.sqlstate)) {
        /* The message may quote a value: only the SQLSTATE and the constraint. */
        hub_errf(errstr, errstr_size, HUB_EPG, "SQLSTATE %s%s%s", e.sqlstate,
                 e.constraint[0] ? " constraint " : "", e.constraint);
        return ATTEMPT_PER_EVENT;
    }
    /* Command k is item k-1 (command 0 is BEGIN). */
    if (e.command >= 1 && e.command <= p->ln->nitems && projector_event_at_fault(e.sqlstate) &&
        p->ln->items[e.command - 1].kind == ITEM_EVENT) {
        projector_item_t *it = &p->ln->items[e.command - 1];
        it->kind = ITEM_REJECT;
        hub_strlcpy(it->reason_class, "database", sizeof(it->reason_class));
        if (e.constraint[0])
            snprintf(it->reason, sizeof(it->reason), "violates constraint %s (SQLSTATE %s)",
                     e.constraint, e.sqlstate);
        else
            snprintf(it->reason, sizeof(it->reason), "rejected by the database (SQLSTATE %s)",
                     e.sqlstate);
        return ATTEMPT_BAD_EVENT;
    }
    failure_message(&e, errstr, errstr_size);
    return ATTEMPT_FAILED;
}

/*
 * Queues every reject not yet sent to the dead-letter topic and waits for
 * delivery, so a reject is never committed as done while its dead letter
 * could still be lost.
 */
static int send_rejects(projector_t *p, char *errstr, size_t errstr_size)
{
    int rejects = 0;
    for (size_t i = 0; i < p->ln->nitems; i++) {
        projector_item_t *it = &p->ln->items[i];
        if (it->kind != ITEM_REJECT)
            continue;
        rejects = 1;
        if (!it->dlq_sent && projector_dead_letter(p, it, errstr, errstr_size) != HUB_OK)
            return HUB_EKAFKA;
    }
    /* Most were queued as they were read (projector_batch_add): by now they are usually
       delivered, and the flush only confirms it. */
    if (!rejects)
        return HUB_OK;
    hub_producer_reset_failures(p->dlq);
    int err = hub_producer_flush(p->dlq, 30000, errstr, errstr_size);
    hub_counter_add(p->m_failures, (uint64_t)hub_producer_failures(p->dlq));
    return err;
}

/* After a commit: what the batch did, for /metrics. */
static void count_batch(projector_t *p, const projector_item_t *items, size_t nitems,
                        int64_t started_ms)
{
    static const char *const classes[] = {PROJECTOR_DLQ_CLASSES};
    for (size_t i = 0; i < nitems; i++) {
        const projector_item_t *it = &items[i];
        const char *topic = rd_kafka_topic_name(it->msg->rkt);
        for (size_t t = 0; t < p->nin; t++)
            if (strcmp(p->in_topics[t], topic) == 0) {
                hub_counter_add(p->m_in[t], 1);
                break;
            }
        for (size_t c = 0; it->kind == ITEM_REJECT && c < HUB_ARRAY_LEN(classes); c++)
            if (strcmp(classes[c], it->reason_class) == 0)
                hub_counter_add(p->m_dlq[c], 1);
    }
    hub_histogram_observe(p->m_latency, (double)(hub_monotonic_ms() - started_ms));
}

/* After the PostgreSQL commit: the new positions, for Kafka's lag tools. */
static void store_kafka_offsets(projector_t *p, const projector_pos_t *pos, size_t npos)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;

    if (!p->conf.commit_kafka || npos == 0)
        return;
    list = rd_kafka_topic_partition_list_new((int)npos);
    for (size_t j = 0; j < npos; j++)
        rd_kafka_topic_partition_list_add(list, pos[j].part->topic, pos[j].part->partition)
            ->offset = pos[j].next;
    err = rd_kafka_offsets_store(hub_consumer_handle(p->consumer), list);
    if (err)
        hub_log_warn("event=kafka_offset_store_failed error=\"%s\"", rd_kafka_err2str(err));
    else
        p->kafka_dirty = 1;
    rd_kafka_topic_partition_list_destroy(list);
}

/* A committed batch: the partitions' positions, the counters, and the offsets for Kafka. */
static void batch_committed(projector_t *p, const projector_item_t *items, size_t nitems,
                            const projector_pos_t *pos, size_t npos, int64_t started_ms)
{
    for (size_t j = 0; j < npos; j++)
        pos[j].part->expected = pos[j].next;
    for (size_t i = 0; i < nitems; i++) {
        if (items[i].kind == ITEM_EVENT) {
            /* Logged now or before: the event log holds it. */
            projector_recent_add(p, items[i].ev.event_id);
            p->applied++;
        } else if (items[i].kind == ITEM_REJECT)
            p->rejected++;
        else
            p->dead_letters++;
    }
    p->batches++;
    count_batch(p, items, nitems, started_ms);
    store_kafka_offsets(p, pos, npos);
}

/* The in-flight batch's outcome (read: 1 its results are in, -1 the connection broke). */
static int inflight_complete(projector_t *p, int read)
{
    projector_inflight_t *f = &p->ln->inflight;
    char errstr[1024];
    int err = HUB_OK;

    if (p->ln->pg)
        PQsetnonblocking(p->ln->pg, 0);
    if (read != 1) {
        connection_lost(p, errstr, sizeof(errstr));
        err = HUB_EPG;
    } else if (f->error.command != (size_t)-1) {
        /* COMMIT of a failed block rolled it back; make sure the session is idle again. */
        if (PQtransactionStatus(p->ln->pg) != PQTRANS_IDLE)
            hub_pg_exec(p->ln->pg, "ROLLBACK", NULL, 0);
        if (projector_event_at_fault(f->error.sqlstate)) {
            /* Read again from the stored offsets and applied without overlap, where the
               per-event path can find the event at fault. */
            p->ln->sync_next = 1;
            hub_errf(errstr, sizeof(errstr), HUB_EPG,
                     "SQLSTATE %s%s%s; applying it again one batch at a time", f->error.sqlstate,
                     f->error.constraint[0] ? " constraint " : "", f->error.constraint);
        } else {
            failure_message(&f->error, errstr, sizeof(errstr));
        }
        err = HUB_EPG;
    }
    if (err == HUB_OK) {
        batch_committed(p, f->items, f->nitems, f->pos, f->npos, f->started_ms);
    } else {
        projector_one_line(errstr);
        hub_log_error("event=batch_failed messages=%zu error=\"%s\"", f->nitems, errstr);
        p->need_resync = 1;
    }
    projector_items_release(f->items, f->nitems);
    p->ln->spare_items = f->items;
    free(f->pos);
    memset(f, 0, sizeof(*f));
    return err;
}

/*
 * A batch whose event log was refused in flight for an event (an id logged
 * already, a value refused): applied again at once without going in flight,
 * with the id lookup or per event, while the lane's next batch waits aside.
 * HUB_OK when it committed.
 */
static int inflight_retry(projector_t *p)
{
    projector_lane_t *l = p->ln;
    projector_inflight_t *f = &l->inflight;
    projector_item_t *next = l->items;
    size_t nnext = l->nitems;
    int64_t next_started = l->batch_started_ms;
    char errstr[1024];
    int err;

    l->items = f->items;
    l->nitems = f->nitems;
    l->batch_started_ms = f->started_ms;
    free(f->pos);
    memset(f, 0, sizeof(*f));
    /* No spare array while it is applied: projector_apply_batch waits for the answer. */
    err = projector_apply_batch(p, errstr, sizeof(errstr));
    if (err != HUB_OK) {
        projector_one_line(errstr);
        hub_log_error("event=batch_failed messages=%zu error=\"%s\"", l->nitems, errstr);
        p->need_resync = 1;
        projector_batch_clear(p);
    }
    l->spare_items = l->items;
    l->items = next;
    l->nitems = nnext;
    l->batch_started_ms = next_started;
    return err;
}

/*
 * Moves on a batch in flight whose event log's COPY is still on its way
 * (block: until it is in): once it is, the state statements, offsets and
 * COMMIT are sent. 1 sent (or nothing to do), 0 not yet; otherwise the batch
 * is finished already: 2 committed (applied again, inflight_retry), -1 failed.
 */
static int inflight_log(projector_t *p, int block)
{
    projector_inflight_t *f = &p->ln->inflight;
    char sqlstate[8] = "", msg[256] = "";
    int rc;

    if (!f->logging)
        return 1;
    rc = p->ln->pg ? projector_sets_log_step(p, block, sqlstate, msg, sizeof(msg)) : -2;
    if (rc == 0)
        return 0;
    f->logging = 0;
    if (rc == 1 && send_batch(p, f->items, f->nitems, f->pos, f->npos, 1, &f->commands) == 0)
        return 1;
    if (rc == -1 && projector_event_at_fault(sqlstate)) {
        PQsetnonblocking(p->ln->pg, 0);
        if (hub_pg_exec(p->ln->pg, "ROLLBACK", NULL, 0) == HUB_OK) {
            /* An id logged already: looked up this time. Otherwise the per-event path finds
               the event at fault. */
            if (strcmp(sqlstate, "23505") == 0)
                projector_sets_duplicate_refused(p);
            return inflight_retry(p) == HUB_OK ? 2 : -1;
        }
        rc = -2;
    }
    if (rc == -1) {
        f->error.command = 0;
        hub_strlcpy(f->error.sqlstate, sqlstate, sizeof(f->error.sqlstate));
        hub_strlcpy(f->error.message, msg, sizeof(f->error.message));
        inflight_complete(p, 1);
    } else {
        inflight_complete(p, -1);
    }
    return -1;
}

int projector_inflight_busy(projector_t *p)
{
    projector_inflight_t *f = &p->ln->inflight;
    int read;
    if (!f->items)
        return 0;
    if ((read = inflight_log(p, 0)) != 1)
        return read == 0;
    if (!p->ln->pg || (read = projector_pg_flush(p->ln->pg, 0)) < 0)
        read = -1;
    else if (read == 1)
        return 1;
    else if ((read = read_results(p->ln->pg, f->commands, &f->done, &f->error, 0)) == 0)
        return 1;
    inflight_complete(p, read);
    return 0;
}

int projector_inflight_finish(projector_t *p)
{
    projector_inflight_t *f = &p->ln->inflight;
    int read = -1;
    if (!f->items)
        return HUB_OK;
    if ((read = inflight_log(p, 1)) != 1)
        return read == 2 ? HUB_OK : HUB_EPG;
    read = -1;
    /* Everything sent, the connection blocking again, then the answer. */
    if (p->ln->pg && projector_pg_flush(p->ln->pg, 1) == 0 && PQsetnonblocking(p->ln->pg, 0) == 0)
        read = read_results(p->ln->pg, f->commands, &f->done, &f->error, 1);
    return inflight_complete(p, read);
}

int projector_lanes_finish(projector_t *p)
{
    projector_lane_t *was = p->ln;
    int err = HUB_OK;
    for (int k = 0; k < p->nlanes; k++) {
        projector_lane_use(p, k);
        if (projector_inflight_finish(p) != HUB_OK)
            err = HUB_EPG;
    }
    p->ln = was;
    return err;
}

void projector_lanes_wait(projector_t *p, int wake_fd, int timeout_ms)
{
    struct pollfd pfd[PROJECTOR_MAX_LANES + 1];
    nfds_t n = 0;
    if (wake_fd >= 0) {
        pfd[n].fd = wake_fd;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        n++;
    }
    for (int k = 0; k < p->nlanes; k++) {
        PGconn *c = p->lanes[k].pg;
        if (!p->lanes[k].inflight.items || !c)
            continue;
        pfd[n].fd = PQsocket(c);
        pfd[n].events = POLLIN | (PQflush(c) == 1 ? POLLOUT : 0);
        pfd[n].revents = 0;
        n++;
    }
    if (n)
        poll(pfd, n, timeout_ms);
    if (wake_fd >= 0)
        hub_consumer_wakeup_drain(p->consumer);
}

void projector_lanes_clear(projector_t *p)
{
    projector_lane_t *was = p->ln;
    for (int k = 0; k < p->nlanes; k++) {
        projector_lane_use(p, k);
        projector_batch_clear(p);
        projector_stash_clear(p);
    }
    p->ln = was;
}

int projector_apply_batch(projector_t *p, char *errstr, size_t errstr_size)
{
    projector_pos_t *pos = NULL;
    size_t npos, commands = 0;
    int sets, err = HUB_OK;

    if (p->ln->nitems == 0)
        return HUB_OK;
    if (projector_inflight_finish(p) != HUB_OK)
        return hub_errf(errstr, errstr_size, HUB_EPG, "the batch before it failed");
    if (!p->ln->pg || !p->ln->pg_prepared)
        return hub_errf(errstr, errstr_size, HUB_EPG, "not connected to PostgreSQL");
    pos = calloc(p->ln->nitems, sizeof(*pos));
    if (!pos)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    npos = batch_positions(p, pos);
    sets = projector_sets_usable(p);

    /* Each failed try turns one event into a reject (or leaves the set-based path), so this
       ends. */
    for (size_t tries = 0; tries <= p->ln->nitems + 1; tries++) {
        attempt_t a;
        if ((err = send_rejects(p, errstr, errstr_size)) != HUB_OK)
            goto out;
        /* One event at a time, in arrival order, takes its rows' locks in no fixed order:
           alone on the server, it cannot deadlock with another lane's batch. */
        if (!sets)
            projector_lanes_finish(p);
        a = attempt(p, pos, npos, sets, !p->ln->sync_next && p->ln->spare_items, &commands, errstr,
                    errstr_size);
        if (a == ATTEMPT_SENT || a == ATTEMPT_LOGGING) {
            /* In flight: the next batch is read while PostgreSQL works on this one. */
            projector_inflight_t *f = &p->ln->inflight;
            f->items = p->ln->items;
            f->nitems = p->ln->nitems;
            f->pos = pos;
            f->npos = npos;
            f->started_ms = p->ln->batch_started_ms;
            f->logging = a == ATTEMPT_LOGGING;
            f->commands = commands;
            f->done = 0;
            f->error.command = (size_t)-1;
            p->ln->items = p->ln->spare_items;
            p->ln->spare_items = NULL;
            p->ln->nitems = 0;
            return HUB_OK;
        }
        if (a == ATTEMPT_OK)
            break;
        if (a == ATTEMPT_PER_EVENT) {
            hub_log_info("event=batch_per_event messages=%zu reason=\"%s\"", p->ln->nitems, errstr);
            sets = 0;
            continue;
        }
        if (a == ATTEMPT_FAILED) {
            err = HUB_EPG;
            goto out;
        }
        p->retries++;
    }
    p->ln->sync_next = 0;
    batch_committed(p, p->ln->items, p->ln->nitems, pos, npos, p->ln->batch_started_ms);
    projector_batch_clear(p);
out:
    free(pos);
    return err;
}
