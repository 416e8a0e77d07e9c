/*
 * sets.c: a batch as set-based statements, one per table.
 *
 * The event log takes the whole batch in one INSERT ... SELECT FROM unnest()
 * (ON CONFLICT DO NOTHING) that returns which events are new: only those
 * change state, so a repeated event id stays a no-op. The new events are then
 * grouped by table and key on this side, sorted by (occurred_at, event_id),
 * and each key's events collapsed into one row the way the merge rules of
 * statements.h would fold them one by one (newest wins per kind, unions,
 * counts, minimum and maximum); each table gets one unnest() statement with
 * the same ON CONFLICT rules against the stored row. The server runs a
 * handful of statements per batch instead of one per event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/common.h"
#include "hub/log.h"
#include "hub/pg.h"
#include "projector.h"
#include "statements.h"

/* clang-format off */

/* $1..$7 per event; returns the 1-based positions of the events that are new. */
static const char SQL_SETS_LOG[] =
    "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::integer[],"
    "  $5::bigint[], $6::timestamptz[], $7::jsonb[]) WITH ORDINALITY"
    "  AS u(event_id, event_type, topic, partition, kafka_offset, occurred_at, event, n)),"
    " logged AS (INSERT INTO hub_event_log (event_id, event_type, topic, partition, kafka_offset,"
    "  occurred_at, event)"
    "  SELECT event_id, event_type, topic, partition, kafka_offset, occurred_at, event FROM input"
    "  ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
    " SELECT input.n FROM input JOIN logged USING (event_id)";

static const char SQL_SETS_FLAGS[] =
    "INSERT INTO young_person_flags (event_id, subject_key, source_agency, local_authority,"
    " flagged_on, risk_categories, occurred_at)"
    " SELECT e, s, a, l, f, r::text[], o FROM unnest($1::uuid[], $2::text[], $3::text[],"
    "  $4::text[], $5::date[], $6::text[], $7::timestamptz[]) AS u(e, s, a, l, f, r, o)";

static const char SQL_SETS_REMINDERS[] =
    "INSERT INTO reminders (event_id, group_id, kind, subject_key, due_date, as_of, occurred_at)"
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::date[],"
    "  $6::date[], $7::timestamptz[])";

/* $10: the row folds several flags, so the database sorts its sets (its collation decides). */
static const char SQL_SETS_PEOPLE[] =
    "INSERT INTO young_people AS t (subject_key, local_authority, date_of_birth,"
    " risk_categories, agencies, first_flagged_on, last_flagged_on, last_flag_at,"
    " last_flag_event_id)"
    " SELECT s, l, d,"
    "  CASE WHEN m THEN hub_text_union(NULL, r::text[]) ELSE r::text[] END,"
    "  CASE WHEN m THEN hub_text_union(NULL, a::text[]) ELSE a::text[] END,"
    "  f1, f2, at, id"
    " FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::date[],"
    "  $7::date[], $8::timestamptz[], $9::uuid[], $10::boolean[])"
    "  AS u(s, l, d, r, a, f1, f2, at, id, m)"
    MERGE_YOUNG_PERSON;

static const char SQL_SETS_PLANS[] =
    "INSERT INTO transition_plans AS t (subject_key, local_authority, la_at, la_event_id,"
    " due_date, rule, cause_event_id, alert_event_id, due_at, completed_on, outcome,"
    " completed_event_id, completed_at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::uuid[], $5::date[],"
    "  $6::text[], $7::uuid[], $8::uuid[], $9::timestamptz[], $10::date[], $11::text[],"
    "  $12::uuid[], $13::timestamptz[])"
    MERGE_PLAN;

static const char SQL_SETS_ACTIONS[] =
    "INSERT INTO meeting_actions AS t (action_id, meeting_id, meeting_date, kind, owner_agency,"
    " owner_group_id, due_date, subject_key, recorded_at, recorded_event_id, completed_on,"
    " completed_at, completed_event_id, overdue_notices, last_overdue_as_of)"
    " SELECT * FROM unnest($1::uuid[], $2::text[], $3::date[], $4::text[], $5::text[],"
    "  $6::text[], $7::date[], $8::text[], $9::timestamptz[], $10::uuid[], $11::date[],"
    "  $12::timestamptz[], $13::uuid[], $14::integer[], $15::date[])"
    MERGE_ACTION;

static const char SQL_SETS_GROUPS[] =
    "INSERT INTO group_state AS t (group_id, last_briefing_title, last_briefing_requested_at,"
    " last_request_event_id, last_briefing_sent_at, last_briefing_recipients,"
    " last_sent_event_id, briefings_sent, reminders_received, last_reminder_at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::uuid[],"
    "  $5::timestamptz[], $6::integer[], $7::uuid[], $8::integer[], $9::integer[],"
    "  $10::timestamptz[])"
    MERGE_GROUP;

/* clang-format on */

static const struct {
    const char *name;
    const char *sql;
} set_statements[] = {
    {"sets_log", SQL_SETS_LOG},
    {"sets_flags", SQL_SETS_FLAGS},
    {"sets_reminders", SQL_SETS_REMINDERS},
    {"sets_people", SQL_SETS_PEOPLE},
    {"sets_plans", SQL_SETS_PLANS},
    {"sets_actions", SQL_SETS_ACTIONS},
    {"sets_groups", SQL_SETS_GROUPS},
};

#define MAX_COLS 16

/* A PostgreSQL array literal being built: {"a",NULL,"b"}. */
typedef struct {
    char *s;
    size_t len, cap;
    size_t n;
    int oom;
} arr_t;

/* Makes room for n more bytes and the NUL; 0 (and oom set) when memory ran out. */
static int arr_room(arr_t *a, size_t n)
{
    if (a->oom)
        return 0;
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + n + 1)
            cap *= 2;
        char *s2 = realloc(a->s, cap);
        if (!s2) {
            a->oom = 1;
            return 0;
        }
        a->s = s2;
        a->cap = cap;
    }
    return 1;
}

static void arr_put(arr_t *a, const char *s, size_t n)
{
    if (!arr_room(a, n))
        return;
    memcpy(a->s + a->len, s, n);
    a->len += n;
    a->s[a->len] = '\0';
}

static void arr_reset(arr_t *a)
{
    a->len = 0;
    a->n = 0;
    arr_put(a, "{", 1);
}

/* Appends v (NULL: an SQL NULL), quoted and escaped. */
static void arr_add(arr_t *a, const char *v)
{
    if (a->n++)
        arr_put(a, ",", 1);
    if (!v) {
        arr_put(a, "NULL", 4);
        return;
    }
    /* Room for the worst case (every byte escaped), then one pass. */
    size_t n = strlen(v);
    if (a->oom || !arr_room(a, 2 * n + 2))
        return;
    char *o = a->s + a->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\')
            *o++ = '\\';
        *o++ = v[i];
    }
    *o++ = '"';
    a->len = (size_t)(o - a->s);
    a->s[a->len] = '\0';
}

/* Closes the literal; NULL when memory ran out. */
static const char *arr_end(arr_t *a)
{
    arr_put(a, "}", 1);
    return a->oom ? NULL : a->s;
}

static void arr_free(arr_t *a)
{
    free(a->s);
    a->s = NULL;
    a->len = a->cap = a->n = 0;
    a->oom = 0;
}

/* The columns of one set-based statement. */
typedef struct {
    arr_t col[MAX_COLS];
    int ncols;
    size_t rows;
} cols_t;

static void cols_reset(cols_t *c, int ncols)
{
    c->ncols = ncols;
    c->rows = 0;
    for (int i = 0; i < ncols; i++)
        arr_reset(&c->col[i]);
}

/* Appends one row of ncols values. */
static void cols_row(cols_t *c, const char *const *v)
{
    for (int i = 0; i < c->ncols; i++)
        arr_add(&c->col[i], v[i]);
    c->rows++;
}

static void cols_free(cols_t *c)
{
    for (int i = 0; i < MAX_COLS; i++)
        arr_free(&c->col[i]);
}

/* Sends the statement when it has rows; 0, or -1 on a send failure or no memory. */
static int cols_send(PGconn *conn, const char *name, cols_t *c, size_t *commands)
{
    const char *v[MAX_COLS];
    if (c->rows == 0)
        return 0;
    for (int i = 0; i < c->ncols; i++)
        if (!(v[i] = arr_end(&c->col[i])))
            return -1;
    if (!PQsendQueryPrepared(conn, name, c->ncols, v, NULL, NULL, 0))
        return -1;
    (*commands)++;
    return 0;
}

int projector_sets_prepare(projector_t *p, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(set_statements); i++) {
        PGresult *res = PQprepare(p->pg, set_statements[i].name, set_statements[i].sql, 0, NULL);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            char msg[512];
            hub_strlcpy(msg, PQerrorMessage(p->pg), sizeof(msg));
            projector_one_line(msg);
            return hub_errf(errstr, errstr_size, HUB_EPG, "preparing %s: %s",
                            set_statements[i].name, msg);
        }
    }
    return HUB_OK;
}

int projector_sets_usable(const projector_t *p)
{
    for (size_t i = 0; i < p->nitems; i++) {
        const projector_item_t *it = &p->items[i];
        /* The database refuses it (meeting_actions_due_after_meeting) only while it is the
           action's newest record, which depends on what came before it: the per-event path
           finds out exactly. */
        if (it->kind == ITEM_EVENT && it->ev.type == HUB_EVENT_MEETING_ACTION_RECORDED &&
            it->ev.u.action_recorded.due_date < it->ev.u.action_recorded.meeting_date)
            return 0;
    }
    return 1;
}

/* ---- which events are new ---- */

static int by_event_id(const void *a, const void *b)
{
    const projector_item_t *x = *(projector_item_t *const *)a, *y = *(projector_item_t *const *)b;
    int c = strcasecmp(x->ev.event_id, y->ev.event_id);
    return c ? c : (x < y ? -1 : x > y);
}

int projector_sets_log(projector_t *p, char *errstr, size_t errstr_size)
{
    PGconn *c = p->pg;
    projector_item_t **cand = NULL;
    size_t ncand = 0, ndistinct = 0;
    cols_t cols = {0};
    PGresult *res = NULL;
    char sqlstate[8] = "";
    char msg[512] = "";
    int rc = -1, sent_log = 0;

    cand = calloc(p->nitems ? p->nitems : 1, sizeof(*cand));
    if (!cand) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->nitems; i++) {
        p->items[i].fresh = 0;
        p->items[i].first = 0;
        if (p->items[i].kind == ITEM_EVENT)
            cand[ncand++] = &p->items[i];
    }
    /* The first of several copies of an event id in the batch is the one that counts. */
    qsort(cand, ncand, sizeof(*cand), by_event_id);
    for (size_t i = 0; i < ncand; i++)
        if (i == 0 || strcasecmp(cand[i - 1]->ev.event_id, cand[i]->ev.event_id) != 0)
            cand[i]->first = 1;
    cols_reset(&cols, 7);
    ndistinct = 0;
    for (size_t i = 0; i < p->nitems; i++) {
        projector_item_t *it = &p->items[i];
        if (!it->first)
            continue;
        const char *v[7] = {it->ev.event_id,
                            hub_event_type_name(it->ev.type),
                            rd_kafka_topic_name(it->msg->rkt),
                            it->partition_s,
                            it->offset_s,
                            it->occurred_s,
                            it->json};
        cand[ndistinct++] = it; /* position n of the statement is cand[n - 1] */
        cols_row(&cols, v);
    }

    if (PQenterPipelineMode(c) != 1 || !PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        goto send_failed;
    if (ndistinct) {
        size_t commands = 0;
        if (cols_send(c, "sets_log", &cols, &commands) != 0)
            goto send_failed;
        sent_log = 1;
    }
    if (!PQpipelineSync(c))
        goto send_failed;

    /* BEGIN, then the log insert's rows, then the sync. */
    for (int k = 0; k < 1 + sent_log; k++) {
        while ((res = PQgetResult(c)) != NULL) {
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_FATAL_ERROR && !sqlstate[0]) {
                const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                const char *prim = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
                hub_strlcpy(sqlstate, s && *s ? s : "XX000", sizeof(sqlstate));
                hub_strlcpy(msg, prim ? prim : "", sizeof(msg));
            } else if (st == PGRES_TUPLES_OK && k == 1) {
                for (int r = 0; r < PQntuples(res); r++) {
                    long n = atol(PQgetvalue(res, r, 0));
                    if (n >= 1 && (size_t)n <= ndistinct)
                        cand[n - 1]->fresh = 1;
                }
            }
            PQclear(res);
        }
        if (PQstatus(c) != CONNECTION_OK)
            goto send_failed;
    }
    res = PQgetResult(c);
    if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
        PQclear(res);
        res = NULL;
        goto send_failed;
    }
    PQclear(res);
    res = NULL;
    if (PQexitPipelineMode(c) != 1)
        goto send_failed;
    if (sqlstate[0]) {
        if (PQtransactionStatus(c) != PQTRANS_IDLE)
            hub_pg_exec(c, "ROLLBACK", NULL, 0);
        rc = (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0) ? 1 : -1;
        projector_one_line(msg);
        /* A refused value may be quoted in the message: then only the SQLSTATE. */
        hub_errf(errstr, errstr_size, HUB_EPG, "event log: SQLSTATE %s%s%s", sqlstate,
                 rc == 1 ? "" : ": ", rc == 1 ? "" : msg);
        goto out;
    }
    rc = 0;
    goto out;

send_failed:
    hub_strlcpy(msg, PQerrorMessage(c), sizeof(msg));
    projector_one_line(msg);
    hub_errf(errstr, errstr_size, HUB_EPG, "connection lost during commit: %s", msg);
    rc = -2;
out:
    cols_free(&cols);
    free(cand);
    return rc;
}

/* ---- collapsing per key ---- */

typedef struct {
    const char *key;
    projector_item_t *it;
} entry_t;

/* Same key, then (occurred_at, event_id) ascending: the newest of a key comes last. */
static int entry_order(const entry_t *x, const entry_t *y, int c)
{
    if (c)
        return c;
    if (x->it->ev.occurred_at != y->it->ev.occurred_at)
        return x->it->ev.occurred_at < y->it->ev.occurred_at ? -1 : 1;
    return strcasecmp(x->it->ev.event_id, y->it->ev.event_id);
}

/* Text keys compare as text; uuid keys (action ids) case-insensitively, as the uuid type does. */
static int by_text_key(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    return entry_order(x, y, strcmp(x->key, y->key));
}

static int by_uuid_key(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    return entry_order(x, y, strcasecmp(x->key, y->key));
}

/* The key of item it in table t, or NULL when the item does not touch it. */
enum { T_PEOPLE, T_PLANS, T_ACTIONS, T_GROUPS };

static const char *table_key(const projector_item_t *it, int t)
{
    const hub_event_t *ev = &it->ev;
    switch (ev->type) {
    case HUB_EVENT_YOUNG_PERSON_FLAGGED:
        return t == T_PEOPLE ? ev->u.flagged.subject_key : NULL;
    case HUB_EVENT_TRANSITION_PLAN_DUE:
        return t == T_PLANS ? ev->u.plan_due.subject_key : NULL;
    case HUB_EVENT_TRANSITION_PLAN_COMPLETED:
        return t == T_PLANS ? ev->u.plan_completed.subject_key : NULL;
    case HUB_EVENT_MEETING_ACTION_RECORDED:
        return t == T_ACTIONS ? ev->u.action_recorded.action_id : NULL;
    case HUB_EVENT_MEETING_ACTION_COMPLETED:
        return t == T_ACTIONS ? ev->u.action_completed.action_id : NULL;
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        return t == T_ACTIONS ? ev->u.action_overdue.action_id : NULL;
    case HUB_EVENT_REMINDER_DUE:
        return t == T_GROUPS ? ev->u.reminder.group_id : NULL;
    case HUB_EVENT_BRIEFING_REQUESTED:
        return t == T_GROUPS ? ev->u.briefing_requested.group_id : NULL;
    case HUB_EVENT_BRIEFING_SENT:
        return t == T_GROUPS ? ev->u.briefing_sent.group_id : NULL;
    default:
        return NULL;
    }
}

/* The new events of table t, sorted; returns the count. */
static size_t collect(projector_t *p, int t, entry_t *e)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nitems; i++) {
        projector_item_t *it = &p->items[i];
        const char *key;
        if (it->kind != ITEM_EVENT || !it->fresh || !(key = table_key(it, t)))
            continue;
        e[n].key = key;
        e[n].it = it;
        n++;
    }
    qsort(e, n, sizeof(*e), t == T_ACTIONS ? by_uuid_key : by_text_key);
    return n;
}

/* The end of the group that starts at e[i]. */
static size_t group_end(const entry_t *e, size_t n, size_t i, int uuid_key)
{
    size_t j = i + 1;
    while (j < n && (uuid_key ? strcasecmp(e[i].key, e[j].key) : strcmp(e[i].key, e[j].key)) == 0)
        j++;
    return j;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void rows_people(const entry_t *e, size_t n, cols_t *c, arr_t *agencies,
                        const char **scratch)
{
    for (size_t i = 0, j; i < n; i = j) {
        const projector_item_t *newest, *first = e[i].it, *last = e[i].it;
        hub_risk_set_t risks = 0;
        size_t nag = 0;
        char risks_s[320];
        j = group_end(e, n, i, 0);
        for (size_t k = i; k < j; k++) {
            const projector_item_t *it = e[k].it;
            risks |= it->ev.u.flagged.risk_categories;
            scratch[nag++] = it->ev.source;
            if (it->ev.u.flagged.flagged_on < first->ev.u.flagged.flagged_on)
                first = it;
            if (it->ev.u.flagged.flagged_on > last->ev.u.flagged.flagged_on)
                last = it;
        }
        newest = e[j - 1].it;
        qsort(scratch, nag, sizeof(*scratch), by_string);
        arr_reset(agencies);
        for (size_t k = 0; k < nag; k++)
            if (k == 0 || strcmp(scratch[k - 1], scratch[k]) != 0)
                arr_add(agencies, scratch[k]);
        projector_risks_literal(risks, risks_s, sizeof(risks_s));
        const char *v[10] = {e[i].key,
                             hub_local_authority_name(newest->ev.u.flagged.local_authority),
                             newest->date_a,
                             risks_s,
                             arr_end(agencies),
                             first->date_b,
                             last->date_b,
                             newest->occurred_s,
                             newest->ev.event_id,
                             j - i > 1 ? "t" : "f"};
        if (!v[4])
            c->col[0].oom = 1;
        cols_row(c, v);
    }
}

static void rows_plans(const entry_t *e, size_t n, cols_t *c)
{
    for (size_t i = 0, j; i < n; i = j) {
        const projector_item_t *newest, *due = NULL, *done = NULL;
        j = group_end(e, n, i, 0);
        for (size_t k = i; k < j; k++) {
            if (e[k].it->ev.type == HUB_EVENT_TRANSITION_PLAN_DUE)
                due = e[k].it;
            else
                done = e[k].it;
        }
        newest = e[j - 1].it;
        hub_local_authority_t la = newest->ev.type == HUB_EVENT_TRANSITION_PLAN_DUE
                                       ? newest->ev.u.plan_due.local_authority
                                       : newest->ev.u.plan_completed.local_authority;
        const char *v[13] = {
            e[i].key,
            hub_local_authority_name(la),
            newest->occurred_s,
            newest->ev.event_id,
            due ? due->date_a : NULL,
            due ? hub_transition_rule_name(due->ev.u.plan_due.rule) : NULL,
            due ? due->ev.u.plan_due.cause_event_id : NULL,
            due ? due->ev.event_id : NULL,
            due ? due->occurred_s : NULL,
            done ? done->date_a : NULL,
            done ? hub_plan_outcome_name(done->ev.u.plan_completed.outcome) : NULL,
            done ? done->ev.event_id : NULL,
            done ? done->occurred_s : NULL,
        };
        cols_row(c, v);
    }
}

static void rows_actions(const entry_t *e, size_t n, cols_t *c)
{
    for (size_t i = 0, j; i < n; i = j) {
        const projector_item_t *rec = NULL, *done = NULL, *over = NULL;
        int notices = 0;
        char notices_s[16];
        j = group_end(e, n, i, 1);
        for (size_t k = i; k < j; k++) {
            const projector_item_t *it = e[k].it;
            if (it->ev.type == HUB_EVENT_MEETING_ACTION_RECORDED)
                rec = it;
            else if (it->ev.type == HUB_EVENT_MEETING_ACTION_COMPLETED)
                done = it;
            else {
                notices++;
                if (!over || it->ev.u.action_overdue.as_of > over->ev.u.action_overdue.as_of)
                    over = it;
            }
        }
        snprintf(notices_s, sizeof(notices_s), "%d", notices);
        const hub_meeting_action_recorded_t *r = rec ? &rec->ev.u.action_recorded : NULL;
        const char *v[15] = {
            e[i].key,
            r ? r->meeting_id : NULL,
            r ? rec->date_a : NULL,
            r ? hub_action_kind_name(r->kind) : NULL,
            r ? r->owner_agency : NULL,
            r ? r->owner_group_id : NULL,
            r ? rec->date_b : NULL,
            r && r->has_subject_key ? r->subject_key : NULL,
            r ? rec->occurred_s : NULL,
            r ? rec->ev.event_id : NULL,
            done ? done->date_a : NULL,
            done ? done->occurred_s : NULL,
            done ? done->ev.event_id : NULL,
            notices_s,
            over ? over->date_a : NULL,
        };
        cols_row(c, v);
    }
}

static void rows_groups(const entry_t *e, size_t n, cols_t *c)
{
    for (size_t i = 0, j; i < n; i = j) {
        const projector_item_t *rem = NULL, *req = NULL, *sent = NULL;
        int reminders = 0, briefings = 0;
        char reminders_s[16], briefings_s[16];
        j = group_end(e, n, i, 0);
        for (size_t k = i; k < j; k++) {
            const projector_item_t *it = e[k].it;
            if (it->ev.type == HUB_EVENT_REMINDER_DUE) {
                reminders++;
                rem = it; /* sorted by occurred_at: the last is the latest */
            } else if (it->ev.type == HUB_EVENT_BRIEFING_REQUESTED) {
                req = it;
            } else {
                briefings++;
                sent = it;
            }
        }
        snprintf(reminders_s, sizeof(reminders_s), "%d", reminders);
        snprintf(briefings_s, sizeof(briefings_s), "%d", briefings);
        const char *v[10] = {
            e[i].key,
            req ? req->ev.u.briefing_requested.title : NULL,
            req ? req->occurred_s : NULL,
            req ? req->ev.event_id : NULL,
            sent ? sent->occurred_s : NULL,
            sent ? sent->int_s : NULL,
            sent ? sent->ev.event_id : NULL,
            briefings_s,
            reminders_s,
            rem ? rem->occurred_s : NULL,
        };
        cols_row(c, v);
    }
}

int projector_sets_send(projector_t *p, size_t *commands)
{
    PGconn *conn = p->pg;
    entry_t *e = calloc(p->nitems ? p->nitems : 1, sizeof(*e));
    const char **scratch = calloc(p->nitems ? p->nitems : 1, sizeof(*scratch));
    cols_t flags = {0}, reminders = {0}, c = {0};
    arr_t agencies = {0};
    int rc = -1;
    size_t n;

    if (!e || !scratch)
        goto out;
    /* The append-only tables: one row per new event, in batch order. */
    cols_reset(&flags, 7);
    cols_reset(&reminders, 7);
    for (size_t i = 0; i < p->nitems; i++) {
        const projector_item_t *it = &p->items[i];
        const hub_event_t *ev = &it->ev;
        if (it->kind != ITEM_EVENT || !it->fresh)
            continue;
        if (ev->type == HUB_EVENT_YOUNG_PERSON_FLAGGED) {
            const char *v[7] = {
                ev->event_id,  ev->u.flagged.subject_key,
                ev->source,    hub_local_authority_name(ev->u.flagged.local_authority),
                it->date_b,    it->risks,
                it->occurred_s};
            cols_row(&flags, v);
        } else if (ev->type == HUB_EVENT_REMINDER_DUE) {
            const char *v[7] = {ev->event_id,
                                ev->u.reminder.group_id,
                                hub_reminder_kind_name(ev->u.reminder.kind),
                                ev->u.reminder.has_subject_key ? ev->u.reminder.subject_key : NULL,
                                ev->u.reminder.has_due_date ? it->date_b : NULL,
                                it->date_a,
                                it->occurred_s};
            cols_row(&reminders, v);
        }
    }
    if (cols_send(conn, "sets_flags", &flags, commands) != 0 ||
        cols_send(conn, "sets_reminders", &reminders, commands) != 0)
        goto out;

    /* The state tables: one row per key. */
    n = collect(p, T_PEOPLE, e);
    cols_reset(&c, 10);
    rows_people(e, n, &c, &agencies, scratch);
    if (cols_send(conn, "sets_people", &c, commands) != 0)
        goto out;
    n = collect(p, T_PLANS, e);
    cols_reset(&c, 13);
    rows_plans(e, n, &c);
    if (cols_send(conn, "sets_plans", &c, commands) != 0)
        goto out;
    n = collect(p, T_ACTIONS, e);
    cols_reset(&c, 15);
    rows_actions(e, n, &c);
    if (cols_send(conn, "sets_actions", &c, commands) != 0)
        goto out;
    n = collect(p, T_GROUPS, e);
    cols_reset(&c, 10);
    rows_groups(e, n, &c);
    if (cols_send(conn, "sets_groups", &c, commands) != 0)
        goto out;
    rc = 0;
out:
    cols_free(&flags);
    cols_free(&reminders);
    cols_free(&c);
    arr_free(&agencies);
    free(scratch);
    free(e);
    return rc;
}
