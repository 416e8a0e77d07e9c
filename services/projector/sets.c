/*
 * sets.c: a batch as set-based statements, one per table.
 *
 * One round trip asks which of the batch's event ids the event log holds
 * already: only the others (the first copy of each) change state, so a
 * repeated event id stays a no-op. Those go into the event log by binary
 * COPY. The new events are grouped by table and key on this side, sorted by
 * (occurred_at, event_id), and each key's events collapsed into one row the
 * way the merge rules of statements.h would fold them one by one (newest wins
 * per kind, unions, counts, minimum and maximum); each table gets one
 * unnest() statement with the same ON CONFLICT rules against the stored row.
 * Every parameter is sent in binary. The server runs a handful of statements
 * per batch instead of one per event.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
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

/* Which of the batch's event ids the event log holds already. */
static const char SQL_SETS_SEEN[] =
    "SELECT event_id FROM hub_event_log WHERE event_id = ANY($1::uuid[])";

/* The new events go into the event log by COPY: no per-row conflict check, rows written in
   bulk. The table has no row-level security, which COPY FROM would refuse. */
#define LOG_COPY \
    "COPY hub_event_log (event_id, event_type, topic, partition, kafka_offset, occurred_at," \
    " event) FROM STDIN (FORMAT binary)"
static const char SQL_LOG_COPY[] = LOG_COPY;

/* The usual batch's transaction opens with its COPY, in one round trip, sent without
   waiting (projector_sets_log_start). */
static const char SQL_BEGIN_LOG_COPY[] = "BEGIN; " LOG_COPY;

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
    "  CASE WHEN m THEN " SORTED_SET("r::text[]") " ELSE r::text[] END,"
    "  CASE WHEN m THEN " SORTED_SET("a::text[]") " ELSE a::text[] END,"
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
    {"sets_seen", SQL_SETS_SEEN},           {"sets_flags", SQL_SETS_FLAGS},
    {"sets_reminders", SQL_SETS_REMINDERS}, {"sets_people", SQL_SETS_PEOPLE},
    {"sets_plans", SQL_SETS_PLANS},         {"sets_actions", SQL_SETS_ACTIONS},
    {"sets_groups", SQL_SETS_GROUPS},
};

#define MAX_COLS 16

/*
 * Parameters go in binary: an array as PostgreSQL's array_recv reads it, each
 * element as its type's receive function reads it. The server then neither
 * parses array literals nor dates, timestamps and UUIDs from text.
 */
typedef enum { P_TEXT, P_UUID, P_INT4, P_INT8, P_DATE, P_TS, P_JSONB, P_BOOL } ptype_t;

/* The element types' OIDs (pg_type.h), by ptype_t. */
static const uint32_t ptype_oid[] = {25, 2950, 23, 20, 1082, 1184, 3802, 16};

#define ARR_HEADER    20                    /* ndim, flags, element type, length, lower bound */
#define PG_EPOCH_DAYS 10957                 /* 2000-01-01 in days since 1970-01-01 */
#define PG_EPOCH_MS   INT64_C(946684800000) /* 2000-01-01 in Unix milliseconds */

/* A one-dimensional binary array being built. */
typedef struct {
    char *s;
    size_t len, cap;
    size_t n;
    int nulls;
    int bad; /* no memory, or a value the type cannot hold */
    ptype_t type;
} arr_t;

static void put32(char *o, uint32_t v)
{
    o[0] = (char)(v >> 24);
    o[1] = (char)(v >> 16);
    o[2] = (char)(v >> 8);
    o[3] = (char)v;
}

static void put64(char *o, uint64_t v)
{
    put32(o, (uint32_t)(v >> 32));
    put32(o + 4, (uint32_t)v);
}

/* Makes room for n more bytes; NULL (and bad set) when memory ran out. */
static char *arr_room(arr_t *a, size_t n)
{
    if (a->bad)
        return NULL;
    if (a->len + n > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + n)
            cap *= 2;
        char *s2 = realloc(a->s, cap);
        if (!s2) {
            a->bad = 1;
            return NULL;
        }
        a->s = s2;
        a->cap = cap;
    }
    return a->s + a->len;
}

static void arr_reset(arr_t *a, ptype_t type)
{
    a->len = a->n = 0;
    a->nulls = a->bad = 0;
    a->type = type;
    if (arr_room(a, ARR_HEADER))
        a->len = ARR_HEADER;
}

/* One element of n bytes; returns where its bytes go, NULL when out of memory. */
static char *arr_elem(arr_t *a, size_t n)
{
    char *o = arr_room(a, 4 + n);
    if (!o)
        return NULL;
    put32(o, (uint32_t)n);
    a->len += 4 + n;
    a->n++;
    return o + 4;
}

static void arr_null(arr_t *a)
{
    char *o = arr_room(a, 4);
    if (!o)
        return;
    put32(o, UINT32_MAX); /* length -1 */
    a->len += 4;
    a->n++;
    a->nulls = 1;
}

static void arr_text(arr_t *a, const char *v)
{
    size_t n;
    char *o;
    if (!v) {
        arr_null(a);
        return;
    }
    n = strlen(v);
    if ((o = arr_elem(a, n)) != NULL)
        memcpy(o, v, n);
}

/* A UUID in its 8-4-4-4-12 text form (validated events only carry that form). */
static void arr_uuid(arr_t *a, const char *v)
{
    unsigned char u[16];
    char *o;
    if (!v) {
        arr_null(a);
        return;
    }
    if (hub_uuid_parse(v, u) != 0) {
        a->bad = 1;
        return;
    }
    if ((o = arr_elem(a, 16)) != NULL)
        memcpy(o, u, 16);
}

static void arr_int4(arr_t *a, int32_t v)
{
    char *o = arr_elem(a, 4);
    if (o)
        put32(o, (uint32_t)v);
}

static void arr_int8(arr_t *a, int64_t v)
{
    char *o = arr_elem(a, 8);
    if (o)
        put64(o, (uint64_t)v);
}

static void arr_bool(arr_t *a, int v)
{
    char *o = arr_elem(a, 1);
    if (o)
        *o = v ? 1 : 0;
}

/* A date: days since 2000-01-01. present 0: NULL. */
static void arr_date(arr_t *a, int present, hub_date_t d)
{
    if (present)
        arr_int4(a, (int32_t)(d - PG_EPOCH_DAYS));
    else
        arr_null(a);
}

/* A timestamp from Unix milliseconds: microseconds since 2000-01-01 UTC. present 0: NULL. */
static void arr_ts(arr_t *a, int present, int64_t ms)
{
    if (present)
        arr_int8(a, (ms - PG_EPOCH_MS) * 1000);
    else
        arr_null(a);
}

/* jsonb's binary form: a version byte, then the JSON text. */
static void arr_jsonb(arr_t *a, const char *v)
{
    size_t n = strlen(v);
    char *o = arr_elem(a, n + 1);
    if (!o)
        return;
    o[0] = 1;
    memcpy(o + 1, v, n);
}

/* Completes the header; NULL when a value could not be added. */
static const char *arr_end(arr_t *a)
{
    if (a->bad || a->len < ARR_HEADER)
        return NULL;
    put32(a->s, 1);
    put32(a->s + 4, a->nulls ? 1 : 0);
    put32(a->s + 8, ptype_oid[a->type]);
    put32(a->s + 12, (uint32_t)a->n);
    put32(a->s + 16, 1);
    return a->s;
}

static void arr_free(arr_t *a)
{
    free(a->s);
    memset(a, 0, sizeof(*a));
}

/* A PostgreSQL array literal as text ({"a","b"}): a set element of a text column. */
typedef struct {
    char s[512];
    size_t len;
    int n;
} lit_t;

static void lit_reset(lit_t *l)
{
    l->len = 1;
    l->n = 0;
    l->s[0] = '{';
    l->s[1] = '\0';
}

/* Appends v quoted; the caller's values are codes (letters, digits, '_', '.', '-'). */
static int lit_add(lit_t *l, const char *v)
{
    size_t n = strlen(v);
    if (l->len + n + 4 >= sizeof(l->s))
        return -1;
    if (l->n++)
        l->s[l->len++] = ',';
    l->s[l->len++] = '"';
    memcpy(l->s + l->len, v, n);
    l->len += n;
    l->s[l->len++] = '"';
    l->s[l->len] = '\0';
    return 0;
}

static const char *lit_end(lit_t *l)
{
    if (l->len + 2 > sizeof(l->s))
        return NULL;
    l->s[l->len++] = '}';
    l->s[l->len] = '\0';
    return l->s;
}

/* The columns of one set-based statement. */
typedef struct {
    arr_t col[MAX_COLS];
    int ncols;
    size_t rows;
} cols_t;

static void cols_reset(cols_t *c, const ptype_t *types, int ncols)
{
    c->ncols = ncols;
    c->rows = 0;
    for (int i = 0; i < ncols; i++)
        arr_reset(&c->col[i], types[i]);
}

static void cols_free(cols_t *c)
{
    for (int i = 0; i < MAX_COLS; i++)
        arr_free(&c->col[i]);
}

/* Sends the statement when it has rows; 0, or -1 on a send failure or a bad value. */
static int cols_send(PGconn *conn, const char *name, cols_t *c, size_t *commands)
{
    const char *v[MAX_COLS];
    int len[MAX_COLS], fmt[MAX_COLS];
    if (c->rows == 0)
        return 0;
    for (int i = 0; i < c->ncols; i++) {
        if (!(v[i] = arr_end(&c->col[i])) || c->col[i].len > INT32_MAX)
            return -1;
        len[i] = (int)c->col[i].len;
        fmt[i] = 1;
    }
    if (!PQsendQueryPrepared(conn, name, c->ncols, v, len, fmt, 0))
        return -1;
    (*commands)++;
    return 0;
}

int projector_sets_prepare(projector_t *p, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(set_statements); i++) {
        PGresult *res =
            PQprepare(p->ln->pg, set_statements[i].name, set_statements[i].sql, 0, NULL);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            char msg[512];
            hub_strlcpy(msg, PQerrorMessage(p->ln->pg), sizeof(msg));
            projector_one_line(msg);
            return hub_errf(errstr, errstr_size, HUB_EPG, "preparing %s: %s",
                            set_statements[i].name, msg);
        }
    }
    return HUB_OK;
}

int projector_sets_usable(const projector_t *p)
{
    for (size_t i = 0; i < p->ln->nitems; i++) {
        const projector_item_t *it = &p->ln->items[i];
        /* The database refuses it (meeting_actions_due_after_meeting) only while it is the
           action's newest record, which depends on what came before it: the per-event path
           finds out exactly. */
        if (it->kind == ITEM_EVENT && it->ev.type == HUB_EVENT_MEETING_ACTION_RECORDED &&
            it->ev.u.action_recorded.due_date < it->ev.u.action_recorded.meeting_date)
            return 0;
    }
    return 1;
}

int projector_pg_flush(PGconn *c, int block)
{
    for (;;) {
        int r = PQflush(c);
        if (r <= 0 || !block)
            return r < 0 ? -1 : r;
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
            return -1;
        if ((pfd.revents & POLLIN) && !PQconsumeInput(c))
            return -1;
    }
}

/* ---- which events are new ---- */

/* Batches that look their ids up first after a COPY refused for a duplicate. */
#define LOOKUP_BATCHES 5

static int by_event_id(const void *a, const void *b)
{
    const projector_item_t *x = *(projector_item_t *const *)a, *y = *(projector_item_t *const *)b;
    int c = strcasecmp(x->ev.event_id, y->ev.event_id);
    return c ? c : (x < y ? -1 : x > y);
}

static void build_state(projector_t *p, PGconn *c);

/* The first copy (in the sorted candidates) of the event with id, or NULL. */
static projector_item_t *find_first(projector_item_t **cand, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcasecmp(cand[mid]->ev.event_id, id);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcasecmp(cand[lo]->ev.event_id, id) == 0 ? cand[lo] : NULL;
}

/* Records the first error of a result. */
static void note_error(const PGresult *res, char *sqlstate, char *msg, size_t msg_size)
{
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *prim = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (sqlstate[0])
        return;
    hub_strlcpy(sqlstate, s && *s ? s : "XX000", 8);
    hub_strlcpy(msg, prim ? prim : "", msg_size);
}

/* BEGIN and, if lookup, the lookup of the batch's ids in one round trip; marks the events
   already logged. 0, -1 on a database error (sqlstate set), -2 when the connection broke. */
static int seen_before(PGconn *c, projector_item_t **first, size_t nfirst, int lookup,
                       char *sqlstate, char *msg, size_t msg_size)
{
    static const ptype_t types[] = {P_UUID};
    cols_t ids = {0};
    size_t commands = 1;
    PGresult *res;
    int rc = -2;

    cols_reset(&ids, types, 1);
    if (!lookup)
        nfirst = 0;
    for (size_t i = 0; i < nfirst; i++)
        arr_uuid(&ids.col[0], first[i]->ev.event_id);
    ids.rows = nfirst;
    if (PQenterPipelineMode(c) != 1 ||
        !PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
        (lookup && cols_send(c, "sets_seen", &ids, &commands) != 0) || !PQpipelineSync(c))
        goto out;
    for (size_t k = 0; k < commands; k++) {
        while ((res = PQgetResult(c)) != NULL) {
            if (PQresultStatus(res) == PGRES_FATAL_ERROR)
                note_error(res, sqlstate, msg, msg_size);
            else if (PQresultStatus(res) == PGRES_TUPLES_OK)
                for (int r = 0; r < PQntuples(res); r++) {
                    projector_item_t *it = find_first(first, nfirst, PQgetvalue(res, r, 0));
                    if (it)
                        it->fresh = 0;
                }
            PQclear(res);
        }
        if (PQstatus(c) != CONNECTION_OK)
            goto out;
    }
    res = PQgetResult(c);
    if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
        PQclear(res);
        goto out;
    }
    PQclear(res);
    if (PQexitPipelineMode(c) != 1)
        goto out;
    rc = sqlstate[0] ? -1 : 0;
out:
    cols_free(&ids);
    return rc;
}

/* The binary COPY stream of the batch's new events, in event-id order (first: the first
   copy of each id, sorted). NULL when out of memory. */
static const char *log_rows(projector_item_t *const *first, size_t nfirst, arr_t *a)
{
    static const char signature[11] = "PGCOPY\n\377\r\n";
    char *o;
    arr_reset(a, P_TEXT);
    a->len = 0;
    if (!(o = arr_room(a, 19)))
        return NULL;
    memcpy(o, signature, 11);
    put32(o + 11, 0); /* flags */
    put32(o + 15, 0); /* header extension length */
    a->len = 19;
    for (size_t i = 0; i < nfirst; i++) {
        const projector_item_t *it = first[i];
        if (!it->fresh)
            continue;
        if (!(o = arr_room(a, 2)))
            return NULL;
        o[0] = 0;
        o[1] = 7; /* fields */
        a->len += 2;
        arr_uuid(a, it->ev.event_id);
        arr_text(a, hub_event_type_name(it->ev.type));
        arr_text(a, rd_kafka_topic_name(it->msg->rkt));
        arr_int4(a, it->msg->partition);
        arr_int8(a, it->msg->offset);
        arr_ts(a, 1, it->ev.occurred_at);
        arr_jsonb(a, it->json);
    }
    if (!(o = arr_room(a, 2)))
        return NULL;
    o[0] = o[1] = (char)0xff; /* end of data */
    a->len += 2;
    return a->bad ? NULL : a->s;
}

/* COPYs the new events into the event log. In event-id order, so two lanes that log the
   same ids (a duplicate on two partitions) wait for each other in one order, never in a
   circle. 0, -1 on a database error, -2 connection broken. */
static int copy_log(projector_t *p, projector_item_t *const *first, size_t nfirst, char *sqlstate,
                    char *msg, size_t msg_size)
{
    PGconn *c = p->ln->pg;
    arr_t buf = {0};
    const char *data = log_rows(first, nfirst, &buf);
    PGresult *res;
    int rc = -2;

    if (!data) {
        hub_strlcpy(sqlstate, "53200", 8); /* out of memory */
        hub_strlcpy(msg, "out of memory building the event-log rows", msg_size);
        rc = -1;
        goto out;
    }
    res = PQexec(c, SQL_LOG_COPY);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
            note_error(res, sqlstate, msg, msg_size);
            rc = -1;
        }
        PQclear(res);
        goto out;
    }
    PQclear(res);
    /* Non-blocking, libpq queues the rows and the server reads them while the state
       statements are built here. */
    if (PQsetnonblocking(c, 1) != 0 || buf.len > INT32_MAX ||
        PQputCopyData(c, data, (int)buf.len) != 1 || PQputCopyEnd(c, NULL) != 1)
        goto out;
    build_state(p, c);
    if (projector_pg_flush(c, 1) != 0 || PQsetnonblocking(c, 0) != 0)
        goto out;
    rc = 0;
    while ((res = PQgetResult(c)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            note_error(res, sqlstate, msg, msg_size);
            rc = -1;
        }
        PQclear(res);
    }
    if (PQstatus(c) != CONNECTION_OK)
        rc = -2;
out:
    arr_free(&buf);
    return rc;
}

/*
 * The batch's events that count, sorted by event id: the first of several
 * copies of an id (marked first), and of those the ones not committed lately
 * (marked fresh). *nfresh counts those. NULL when out of memory.
 */
static projector_item_t **candidates(projector_t *p, size_t *nfirst, size_t *nfresh)
{
    projector_item_t **cand = calloc(p->ln->nitems ? p->ln->nitems : 1, sizeof(*cand));
    size_t ncand = 0;

    *nfirst = *nfresh = 0;
    if (!cand)
        return NULL;
    for (size_t i = 0; i < p->ln->nitems; i++) {
        p->ln->items[i].fresh = 0;
        p->ln->items[i].first = 0;
        p->ln->items[i].later = 0;
        if (p->ln->items[i].kind == ITEM_EVENT)
            cand[ncand++] = &p->ln->items[i];
    }
    qsort(cand, ncand, sizeof(*cand), by_event_id);
    for (size_t i = 0; i < ncand; i++)
        if (i == 0 || strcasecmp(cand[i - 1]->ev.event_id, cand[i]->ev.event_id) != 0) {
            cand[i]->first = 1;
            cand[i]->fresh = !projector_recent_has(p, cand[i]->ev.event_id);
            *nfresh += (size_t)cand[i]->fresh;
            cand[(*nfirst)++] = cand[i]; /* still sorted by event id */
        }
    return cand;
}

void projector_sets_duplicate_refused(projector_t *p)
{
    p->ln->lookup_batches = LOOKUP_BATCHES;
    hub_log_info("event=event_log_duplicate action=\"batch again with an id lookup, and the "
                 "next %d batches\"",
                 LOOKUP_BATCHES);
}

int projector_sets_log(projector_t *p, char *errstr, size_t errstr_size)
{
    PGconn *c = p->ln->pg;
    projector_item_t **cand = NULL;
    size_t nfirst = 0, nfresh = 0;
    char sqlstate[8] = "";
    char msg[512] = "";
    int rc = -1;

    cand = candidates(p, &nfirst, &nfresh);
    if (!cand) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }

    /* Normally no id of the batch is in the log yet (offsets commit with the rows, so a
       restart never reads a committed event again): the COPY goes without a lookup, and
       the log's primary key refuses it if that is wrong. Then the batch goes again with
       the lookup, and so do the next LOOKUP_BATCHES, as duplicates come in runs (a
       partner re-sending a day's events, a replay). */
    for (int lookup = p->ln->lookup_batches > 0;; lookup = 1) {
        rc = seen_before(c, cand, nfirst, lookup, sqlstate, msg, sizeof(msg));
        nfresh = 0;
        for (size_t i = 0; rc == 0 && i < nfirst; i++)
            nfresh += (size_t)cand[i]->fresh;
        if (rc == 0 && nfresh)
            /* builds the state statements too */
            rc = copy_log(p, cand, nfirst, sqlstate, msg, sizeof(msg));
        else if (rc == 0)
            build_state(p, NULL);
        if (lookup) {
            p->ln->lookup_batches -= p->ln->lookup_batches > 0;
            break;
        }
        if (rc != -1 || strcmp(sqlstate, "23505") != 0)
            break;
        if (hub_pg_exec(c, "ROLLBACK", NULL, 0) != HUB_OK) {
            rc = -2;
            break;
        }
        for (size_t i = 0; i < nfirst; i++)
            cand[i]->fresh = !projector_recent_has(p, cand[i]->ev.event_id);
        sqlstate[0] = msg[0] = '\0';
        projector_sets_duplicate_refused(p);
    }
    if (rc == -2) {
        hub_strlcpy(msg, PQerrorMessage(c), sizeof(msg));
        projector_one_line(msg);
        hub_errf(errstr, errstr_size, HUB_EPG, "connection lost during commit: %s", msg);
        goto out;
    }
    if (rc == -1) {
        if (PQtransactionStatus(c) != PQTRANS_IDLE)
            hub_pg_exec(c, "ROLLBACK", NULL, 0);
        /* An id logged meanwhile by another consumer is a unique violation: the per-event
           path's ON CONFLICT handles it. */
        rc = projector_event_at_fault(sqlstate) ? 1 : -1;
        projector_one_line(msg);
        /* A refused value may be quoted in the message: then only the SQLSTATE. */
        hub_errf(errstr, errstr_size, HUB_EPG, "event log: SQLSTATE %s%s%s", sqlstate,
                 rc == 1 ? "" : ": ", rc == 1 ? "" : msg);
    }
out:
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
    for (size_t i = 0; i < p->ln->nitems; i++) {
        projector_item_t *it = &p->ln->items[i];
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

static const ptype_t people_types[] = {P_TEXT, P_TEXT, P_DATE, P_TEXT, P_TEXT,
                                       P_DATE, P_DATE, P_TS,   P_UUID, P_BOOL};
static const ptype_t plans_types[] = {P_TEXT, P_TEXT, P_TS,   P_UUID, P_DATE, P_TEXT, P_UUID,
                                      P_UUID, P_TS,   P_DATE, P_TEXT, P_UUID, P_TS};
static const ptype_t actions_types[] = {P_UUID, P_TEXT, P_DATE, P_TEXT, P_TEXT,
                                        P_TEXT, P_DATE, P_TEXT, P_TS,   P_UUID,
                                        P_DATE, P_TS,   P_UUID, P_INT4, P_DATE};
static const ptype_t groups_types[] = {P_TEXT, P_TEXT, P_TS,   P_UUID, P_TS,
                                       P_INT4, P_UUID, P_INT4, P_INT4, P_TS};
static const ptype_t flags_types[] = {P_UUID, P_TEXT, P_TEXT, P_TEXT, P_DATE, P_TEXT, P_TS};
static const ptype_t reminders_types[] = {P_UUID, P_TEXT, P_TEXT, P_TEXT, P_DATE, P_DATE, P_TS};

static void rows_people(const entry_t *e, size_t n, cols_t *c, const char **scratch)
{
    arr_t *col = c->col;
    for (size_t i = 0, j; i < n; i = j) {
        const projector_item_t *newest, *first = e[i].it, *last = e[i].it;
        hub_risk_set_t risks = 0;
        size_t nag = 0;
        char risks_s[320];
        lit_t agencies;
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
        lit_reset(&agencies);
        for (size_t k = 0; k < nag; k++)
            if ((k == 0 || strcmp(scratch[k - 1], scratch[k]) != 0) &&
                lit_add(&agencies, scratch[k]) != 0)
                col[0].bad = 1;
        projector_risks_literal(risks, risks_s, sizeof(risks_s));
        arr_text(&col[0], e[i].key);
        arr_text(&col[1], hub_local_authority_name(newest->ev.u.flagged.local_authority));
        arr_date(&col[2], 1, newest->ev.u.flagged.date_of_birth);
        arr_text(&col[3], risks_s);
        arr_text(&col[4], lit_end(&agencies));
        arr_date(&col[5], 1, first->ev.u.flagged.flagged_on);
        arr_date(&col[6], 1, last->ev.u.flagged.flagged_on);
        arr_ts(&col[7], 1, newest->ev.occurred_at);
        arr_uuid(&col[8], newest->ev.event_id);
        arr_bool(&col[9], j - i > 1);
        c->rows++;
    }
}

static void rows_plans(const entry_t *e, size_t n, cols_t *c)
{
    arr_t *col = c->col;
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
        const hub_transition_plan_due_t *d = due ? &due->ev.u.plan_due : NULL;
        const hub_transition_plan_completed_t *f = done ? &done->ev.u.plan_completed : NULL;
        arr_text(&col[0], e[i].key);
        arr_text(&col[1], hub_local_authority_name(la));
        arr_ts(&col[2], 1, newest->ev.occurred_at);
        arr_uuid(&col[3], newest->ev.event_id);
        arr_date(&col[4], d != NULL, d ? d->due_date : 0);
        arr_text(&col[5], d ? hub_transition_rule_name(d->rule) : NULL);
        arr_uuid(&col[6], d ? d->cause_event_id : NULL);
        arr_uuid(&col[7], d ? due->ev.event_id : NULL);
        arr_ts(&col[8], d != NULL, d ? due->ev.occurred_at : 0);
        arr_date(&col[9], f != NULL, f ? f->completed_on : 0);
        arr_text(&col[10], f ? hub_plan_outcome_name(f->outcome) : NULL);
        arr_uuid(&col[11], f ? done->ev.event_id : NULL);
        arr_ts(&col[12], f != NULL, f ? done->ev.occurred_at : 0);
        c->rows++;
    }
}

static void rows_actions(const entry_t *e, size_t n, cols_t *c)
{
    arr_t *col = c->col;
    for (size_t i = 0, j; i < n; i = j) {
        const projector_item_t *rec = NULL, *done = NULL, *over = NULL;
        int notices = 0;
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
        const hub_meeting_action_recorded_t *r = rec ? &rec->ev.u.action_recorded : NULL;
        arr_uuid(&col[0], e[i].key);
        arr_text(&col[1], r ? r->meeting_id : NULL);
        arr_date(&col[2], r != NULL, r ? r->meeting_date : 0);
        arr_text(&col[3], r ? hub_action_kind_name(r->kind) : NULL);
        arr_text(&col[4], r ? r->owner_agency : NULL);
        arr_text(&col[5], r ? r->owner_group_id : NULL);
        arr_date(&col[6], r != NULL, r ? r->due_date : 0);
        arr_text(&col[7], r && r->has_subject_key ? r->subject_key : NULL);
        arr_ts(&col[8], r != NULL, r ? rec->ev.occurred_at : 0);
        arr_uuid(&col[9], r ? rec->ev.event_id : NULL);
        arr_date(&col[10], done != NULL, done ? done->ev.u.action_completed.completed_on : 0);
        arr_ts(&col[11], done != NULL, done ? done->ev.occurred_at : 0);
        arr_uuid(&col[12], done ? done->ev.event_id : NULL);
        arr_int4(&col[13], notices);
        arr_date(&col[14], over != NULL, over ? over->ev.u.action_overdue.as_of : 0);
        c->rows++;
    }
}

static void rows_groups(const entry_t *e, size_t n, cols_t *c)
{
    arr_t *col = c->col;
    for (size_t i = 0, j; i < n; i = j) {
        const projector_item_t *rem = NULL, *req = NULL, *sent = NULL;
        int reminders = 0, briefings = 0;
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
        arr_text(&col[0], e[i].key);
        arr_text(&col[1], req ? req->ev.u.briefing_requested.title : NULL);
        arr_ts(&col[2], req != NULL, req ? req->ev.occurred_at : 0);
        arr_uuid(&col[3], req ? req->ev.event_id : NULL);
        arr_ts(&col[4], sent != NULL, sent ? sent->ev.occurred_at : 0);
        if (sent)
            arr_int4(&col[5], (int32_t)sent->ev.u.briefing_sent.recipients);
        else
            arr_null(&col[5]);
        arr_uuid(&col[6], sent ? sent->ev.event_id : NULL);
        arr_int4(&col[7], briefings);
        arr_int4(&col[8], reminders);
        arr_ts(&col[9], rem != NULL, rem ? rem->ev.occurred_at : 0);
        c->rows++;
    }
}

/* The append-only tables: one row per new event, in batch order. */
static void rows_appended(projector_t *p, cols_t *flags, cols_t *reminders)
{
    for (size_t i = 0; i < p->ln->nitems; i++) {
        const projector_item_t *it = &p->ln->items[i];
        const hub_event_t *ev = &it->ev;
        if (it->kind != ITEM_EVENT || !it->fresh)
            continue;
        if (ev->type == HUB_EVENT_YOUNG_PERSON_FLAGGED) {
            arr_t *col = flags->col;
            arr_uuid(&col[0], ev->event_id);
            arr_text(&col[1], ev->u.flagged.subject_key);
            arr_text(&col[2], ev->source);
            arr_text(&col[3], hub_local_authority_name(ev->u.flagged.local_authority));
            arr_date(&col[4], 1, ev->u.flagged.flagged_on);
            arr_text(&col[5], it->risks);
            arr_ts(&col[6], 1, ev->occurred_at);
            flags->rows++;
        } else if (ev->type == HUB_EVENT_REMINDER_DUE) {
            const hub_reminder_due_t *r = &ev->u.reminder;
            arr_t *col = reminders->col;
            arr_uuid(&col[0], ev->event_id);
            arr_text(&col[1], r->group_id);
            arr_text(&col[2], hub_reminder_kind_name(r->kind));
            arr_text(&col[3], r->has_subject_key ? r->subject_key : NULL);
            arr_date(&col[4], r->has_due_date, r->due_date);
            arr_date(&col[5], 1, r->as_of);
            arr_ts(&col[6], 1, ev->occurred_at);
            reminders->rows++;
        }
    }
}

/* The statements for the state, in the order they are sent (projector_sets_send). */
enum { S_FLAGS, S_REMINDERS, S_PEOPLE, S_PLANS, S_ACTIONS, S_GROUPS, S__COUNT };

static const struct {
    const char *name;
    const ptype_t *types;
    int ncols;
} state_statements[S__COUNT] = {
    [S_FLAGS] = {"sets_flags", flags_types, 7},
    [S_REMINDERS] = {"sets_reminders", reminders_types, 7},
    [S_PEOPLE] = {"sets_people", people_types, 10},
    [S_PLANS] = {"sets_plans", plans_types, 13},
    [S_ACTIONS] = {"sets_actions", actions_types, 15},
    [S_GROUPS] = {"sets_groups", groups_types, 10},
};

/* The batch's state statements, built before they are sent; kept between batches. */
struct projector_sets_s {
    cols_t cols[S__COUNT];
    entry_t *e;
    const char **scratch;
    size_t cap;
    int oom;
    /* The event log's COPY started without waiting (projector_sets_log_start). */
    arr_t copy;        /* its rows, until the server asks for them */
    char log_state[8]; /* the first error's SQLSTATE, or "" */
    char log_msg[256]; /* and its primary message */
};

/*
 * Builds the state statements of the batch's new events into p->ln->sets. c: a
 * connection with a COPY being sent, flushed between steps so the server
 * keeps reading; NULL for none. Out of memory leaves p->ln->sets->oom set.
 */
static void build_state_into(projector_t *p, projector_sets_t *st, PGconn *c)
{
    size_t n;

    st->oom = 0;
    if (st->cap < p->ln->nitems) {
        entry_t *e = realloc(st->e, p->ln->nitems * sizeof(*e));
        const char **scratch = e ? realloc(st->scratch, p->ln->nitems * sizeof(*scratch)) : NULL;
        if (e)
            st->e = e;
        if (scratch)
            st->scratch = scratch;
        if (!e || !scratch) {
            st->oom = 1;
            return;
        }
        st->cap = p->ln->nitems;
    }
    for (int i = 0; i < S__COUNT; i++)
        cols_reset(&st->cols[i], state_statements[i].types, state_statements[i].ncols);
    rows_appended(p, &st->cols[S_FLAGS], &st->cols[S_REMINDERS]);
    if (c)
        PQflush(c);
    n = collect(p, T_PEOPLE, st->e);
    rows_people(st->e, n, &st->cols[S_PEOPLE], st->scratch);
    if (c)
        PQflush(c);
    n = collect(p, T_PLANS, st->e);
    rows_plans(st->e, n, &st->cols[S_PLANS]);
    n = collect(p, T_ACTIONS, st->e);
    rows_actions(st->e, n, &st->cols[S_ACTIONS]);
    n = collect(p, T_GROUPS, st->e);
    rows_groups(st->e, n, &st->cols[S_GROUPS]);
}

static void build_state(projector_t *p, PGconn *c)
{
    if (p->ln->sets || (p->ln->sets = calloc(1, sizeof(*p->ln->sets))))
        build_state_into(p, p->ln->sets, c);
}

void projector_sets_prebuild(projector_t *p)
{
    projector_lane_t *l = p->ln;
    projector_item_t **cand;
    size_t nfirst, nfresh;

    if (l->prebuilt || l->lookup_batches > 0 || !l->nitems)
        return;
    l->prebuilt = -1; /* tried: not again for this batch */
    if (!l->next_sets && !(l->next_sets = calloc(1, sizeof(*l->next_sets))))
        return;
    if (!(cand = candidates(p, &nfirst, &nfresh)))
        return;
    /* An id of the batch in flight will be in the log once it commits (a partner's
       repeat is often that close); checked again before this batch is sent. */
    for (size_t i = 0; i < l->inflight.nitems; i++) {
        const projector_item_t *f = &l->inflight.items[i];
        projector_item_t *it;
        if (f->kind == ITEM_EVENT && (it = find_first(cand, nfirst, f->ev.event_id)) && it->fresh) {
            it->fresh = 0;
            it->later = 1;
            nfresh--;
        }
    }
    if (nfresh && log_rows(cand, nfirst, &l->next_sets->copy)) {
        build_state_into(p, l->next_sets, NULL);
        l->prebuilt = l->next_sets->oom ? -1 : 1;
        l->prebuilt_n = l->nitems;
    }
    free(cand);
}

/* The prebuilt batch still fits: the same items, none it counted as new committed since,
   and every id it left to the batch that was in flight committed by it. */
static int prebuilt_usable(projector_t *p)
{
    projector_lane_t *l = p->ln;
    if (l->prebuilt != 1 || l->prebuilt_n != l->nitems)
        return 0;
    for (size_t i = 0; i < l->nitems; i++) {
        const projector_item_t *it = &l->items[i];
        if ((it->fresh || it->later) && projector_recent_has(p, it->ev.event_id) != it->later)
            return 0;
    }
    return 1;
}

int projector_sets_log_start(projector_t *p)
{
    projector_lane_t *l = p->ln;
    PGconn *c = l->pg;
    projector_sets_t *st;
    projector_item_t **cand = NULL;
    size_t nfirst, nfresh;
    int ready, rc = -1;

    /* An id lookup due, or nothing new (no COPY): the blocking form does those. */
    if (l->lookup_batches > 0) {
        l->prebuilt = 0;
        return 1;
    }
    ready = prebuilt_usable(p);
    l->prebuilt = 0;
    if (ready) {
        /* Built while the batch before it was in flight: sent at once. */
        st = l->next_sets;
        l->next_sets = l->sets;
        l->sets = st;
    } else {
        if (!l->sets && !(l->sets = calloc(1, sizeof(*l->sets))))
            return 1;
        st = l->sets;
        if (!(cand = candidates(p, &nfirst, &nfresh)))
            return 1;
        if (!nfresh || !log_rows(cand, nfirst, &st->copy)) {
            free(cand);
            return 1;
        }
    }
    st->log_state[0] = st->log_msg[0] = '\0';
    if (PQsetnonblocking(c, 1) == 0 && PQsendQuery(c, SQL_BEGIN_LOG_COPY)) {
        /* While the server answers, then reads the rows. */
        if (!ready)
            build_state(p, c);
        rc = 0;
    }
    free(cand);
    return rc;
}

int projector_sets_log_step(projector_t *p, int block, char *sqlstate, char *msg, size_t msg_size)
{
    PGconn *c = p->ln->pg;
    projector_sets_t *st = p->ln->sets;

    for (;;) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int unsent = projector_pg_flush(c, 0);
        if (unsent < 0 || !PQconsumeInput(c))
            return -2;
        while (!PQisBusy(c)) {
            PGresult *res = PQgetResult(c);
            ExecStatusType status;
            if (!res) {
                /* Every result of BEGIN and the COPY is in. */
                if (PQstatus(c) != CONNECTION_OK)
                    return -2;
                if (!st->log_state[0])
                    return 1;
                hub_strlcpy(sqlstate, st->log_state, 8);
                hub_strlcpy(msg, st->log_msg, msg_size);
                return -1;
            }
            status = PQresultStatus(res);
            if (status != PGRES_COMMAND_OK && status != PGRES_COPY_IN)
                note_error(res, st->log_state, st->log_msg, sizeof(st->log_msg));
            PQclear(res);
            /* The server asks for the rows: libpq queues them, sent from here on. */
            if (status == PGRES_COPY_IN &&
                (st->copy.len > INT32_MAX || PQputCopyData(c, st->copy.s, (int)st->copy.len) != 1 ||
                 PQputCopyEnd(c, NULL) != 1))
                return -2;
        }
        if (!block)
            return 0;
        if (unsent || PQflush(c) == 1)
            pfd.events |= POLLOUT;
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
            return -2;
    }
}

int projector_sets_send(projector_t *p, size_t *commands)
{
    projector_sets_t *st = p->ln->sets;
    if (!st || st->oom)
        return -1;
    for (size_t i = 0; i < HUB_ARRAY_LEN(state_statements); i++)
        if (cols_send(p->ln->pg, state_statements[i].name, &st->cols[i], commands) != 0)
            return -1;
    return 0;
}

static void sets_free(projector_sets_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < HUB_ARRAY_LEN(state_statements); i++)
        cols_free(&st->cols[i]);
    free(st->e);
    free(st->scratch);
    arr_free(&st->copy);
    free(st);
}

void projector_sets_free(projector_t *p)
{
    sets_free(p->ln->sets);
    sets_free(p->ln->next_sets);
    p->ln->sets = p->ln->next_sets = NULL;
    p->ln->prebuilt = 0;
}
