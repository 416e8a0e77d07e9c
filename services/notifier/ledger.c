/* ledger.c: hub-notifier's delivery ledger and offsets in PostgreSQL (libpq, parameters only). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/log.h"
#include "hub/pg.h"
#include "ledger.h"

struct notifier_db_s {
    PGconn *conn;
    char *conninfo;
    char *password;
    char *group;
};

/* Copies libpq's message, without its newline, into errstr and returns HUB_EPG. */
static int pg_error(notifier_db_t *db, const char *what, char *errstr, size_t errstr_size)
{
    char msg[512];
    hub_strlcpy(msg, db->conn ? PQerrorMessage(db->conn) : "no connection", sizeof(msg));
    msg[strcspn(msg, "\r\n")] = '\0';
    return hub_errf(errstr, errstr_size, HUB_EPG, "%s: %s", what, msg);
}

/* Runs a statement with text parameters; *res (may be NULL) gets the result on success. */
static int run(notifier_db_t *db, const char *what, const char *sql, int n,
               const char *const *params, ExecStatusType want, PGresult **res, char *errstr,
               size_t errstr_size)
{
    PGresult *r;
    if (res)
        *res = NULL;
    if (!db->conn)
        return hub_errf(errstr, errstr_size, HUB_EPG, "%s: not connected", what);
    r = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        int err = pg_error(db, what, errstr, errstr_size);
        PQclear(r);
        return err;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return HUB_OK;
}

notifier_db_t *notifier_db_open(const char *conninfo, const char *password,
                                const char *consumer_group, int wait_ms, char *errstr,
                                size_t errstr_size)
{
    notifier_db_t *db = calloc(1, sizeof(*db));
    if (!db || !(db->conninfo = strdup(conninfo)) || !(db->group = strdup(consumer_group)) ||
        (password && !(db->password = strdup(password)))) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    db->conn = hub_pg_connect(conninfo, password, wait_ms, errstr, errstr_size);
    if (!db->conn)
        goto fail;
    return db;
fail:
    notifier_db_close(db);
    return NULL;
}

void notifier_db_close(notifier_db_t *db)
{
    if (!db)
        return;
    PQfinish(db->conn);
    free(db->conninfo);
    free(db->password);
    free(db->group);
    free(db);
}

PGconn *notifier_db_conn(notifier_db_t *db)
{
    return db ? db->conn : NULL;
}

int notifier_db_ensure(notifier_db_t *db, char *errstr, size_t errstr_size)
{
    if (!hub_pg_is_connection_error(db->conn))
        return HUB_OK;
    PQfinish(db->conn);
    db->conn = hub_pg_connect(db->conninfo, db->password, 0, errstr, errstr_size);
    if (!db->conn)
        return HUB_EPG;
    hub_log_info("event=pg_reconnected");
    return HUB_OK;
}

int notifier_db_load_offsets(notifier_db_t *db, rd_kafka_topic_partition_list_t *parts,
                             char *errstr, size_t errstr_size)
{
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        char partition[16];
        const char *params[3] = {db->group, p->topic, partition};
        PGresult *res;
        snprintf(partition, sizeof(partition), "%d", (int)p->partition);
        int err = run(db, "loading offsets",
                      "SELECT next_offset FROM notifier_offsets"
                      " WHERE consumer_group = $1 AND topic = $2 AND \"partition\" = $3::int",
                      3, params, PGRES_TUPLES_OK, &res, errstr, errstr_size);
        if (err)
            return err;
        if (PQntuples(res) == 1)
            p->offset = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    return HUB_OK;
}

/* Forward only: a late writer (a member that lost the partition) cannot move it back. */
static const char save_offset_sql[] =
    "INSERT INTO notifier_offsets (consumer_group, topic, \"partition\", next_offset)"
    " VALUES ($1, $2, $3::int, $4::bigint)"
    " ON CONFLICT (consumer_group, topic, \"partition\") DO UPDATE"
    " SET next_offset = GREATEST(notifier_offsets.next_offset, EXCLUDED.next_offset),"
    "     updated_at = now()";

int notifier_db_save_offset(notifier_db_t *db, const char *topic, int32_t partition,
                            int64_t next_offset, char *errstr, size_t errstr_size)
{
    char p[16], o[32];
    const char *params[4] = {db->group, topic, p, o};
    snprintf(p, sizeof(p), "%d", (int)partition);
    snprintf(o, sizeof(o), "%lld", (long long)next_offset);
    return run(db, "saving offset", save_offset_sql, 4, params, PGRES_COMMAND_OK, NULL, errstr,
               errstr_size);
}

int notifier_db_outcome(notifier_db_t *db, const char *event_id, char *status, size_t status_size,
                        char *errstr, size_t errstr_size)
{
    const char *params[1] = {event_id};
    PGresult *res;
    int err = run(db, "reading the ledger",
                  "SELECT status FROM notification_deliveries WHERE event_id = $1::uuid", 1, params,
                  PGRES_TUPLES_OK, &res, errstr, errstr_size);
    if (err)
        return err;
    hub_strlcpy(status, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "", status_size);
    PQclear(res);
    return HUB_OK;
}

int notifier_db_answer(notifier_db_t *db, const char *event_id, const char *recipient,
                       notifier_answer_t *answer, char *errstr, size_t errstr_size)
{
    const char *params[2] = {event_id, recipient};
    PGresult *res;
    int err = run(db, "reading recipient answers",
                  "SELECT status FROM notification_recipients"
                  " WHERE event_id = $1::uuid AND recipient = $2",
                  2, params, PGRES_TUPLES_OK, &res, errstr, errstr_size);
    if (err)
        return err;
    *answer = NOTIFIER_ANSWER_NONE;
    if (PQntuples(res) == 1)
        *answer = strcmp(PQgetvalue(res, 0, 0), "DELIVERED") == 0 ? NOTIFIER_ANSWER_DELIVERED
                                                                  : NOTIFIER_ANSWER_REFUSED;
    PQclear(res);
    return HUB_OK;
}

int notifier_db_record_answer(notifier_db_t *db, const char *event_id, const char *recipient,
                              const char *group_id, notifier_answer_t answer, long smtp_code,
                              const char *message_id, char *errstr, size_t errstr_size)
{
    char code[16];
    const char *params[6] = {event_id,
                             recipient,
                             group_id,
                             answer == NOTIFIER_ANSWER_DELIVERED ? "DELIVERED" : "REFUSED",
                             smtp_code > 0 ? code : NULL,
                             message_id};
    snprintf(code, sizeof(code), "%ld", smtp_code);
    return run(db, "recording a recipient",
               "INSERT INTO notification_recipients"
               " (event_id, recipient, group_id, status, smtp_code, message_id)"
               " VALUES ($1::uuid, $2, $3, $4, $5::int, $6)"
               " ON CONFLICT (event_id, recipient) DO UPDATE"
               " SET status = EXCLUDED.status, smtp_code = EXCLUDED.smtp_code,"
               "     answered_at = now()",
               6, params, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
}

int notifier_db_finish(notifier_db_t *db, const notifier_outcome_t *o, char *errstr,
                       size_t errstr_size)
{
    char recipients[16], refused[16], partition[16], offset[32], next[32];
    const char *row[11] = {o->event_id, o->event_type, o->kind,  o->group_id, o->status, recipients,
                           refused,     o->message_id, o->topic, partition,   offset};
    const char *pos[4] = {db->group, o->topic, partition, next};
    int err;

    snprintf(recipients, sizeof(recipients), "%d", o->recipients);
    snprintf(refused, sizeof(refused), "%d", o->refused);
    snprintf(partition, sizeof(partition), "%d", (int)o->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)o->offset);
    snprintf(next, sizeof(next), "%lld", (long long)o->offset + 1);

    if ((err = run(db, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, errstr, errstr_size)))
        return err;
    err = run(db, "writing the ledger",
              "INSERT INTO notification_deliveries (event_id, event_type, kind, group_id, status,"
              " recipients, refused, message_id, topic, \"partition\", \"offset\")"
              " VALUES ($1::uuid, $2, $3, $4, $5, $6::int, $7::int, $8, $9, $10::int, $11::bigint)"
              " ON CONFLICT (event_id) DO UPDATE SET status = EXCLUDED.status,"
              "  recipients = EXCLUDED.recipients, refused = EXCLUDED.refused,"
              "  group_id = EXCLUDED.group_id, delivered_at = now(), topic = EXCLUDED.topic,"
              "  \"partition\" = EXCLUDED.\"partition\", \"offset\" = EXCLUDED.\"offset\"",
              11, row, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    if (!err)
        err = run(db, "saving offset", save_offset_sql, 4, pos, PGRES_COMMAND_OK, NULL, errstr,
                  errstr_size);
    if (!err)
        err = run(db, "COMMIT", "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
    if (err && db->conn && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(db->conn, "ROLLBACK");
        PQclear(r);
    }
    return err;
}

int notifier_db_unannounced(notifier_db_t *db, notifier_unannounced_fn fn, void *opaque,
                            char *errstr, size_t errstr_size)
{
    PGresult *res;
    int err = run(db, "reading unannounced briefings",
                  "SELECT event_id, group_id, recipients FROM notification_deliveries"
                  " WHERE event_type = 'BriefingRequested' AND recipients > 0"
                  "   AND briefing_sent_at IS NULL ORDER BY delivered_at LIMIT 1000",
                  0, NULL, PGRES_TUPLES_OK, &res, errstr, errstr_size);
    if (err)
        return err;
    for (int i = 0; i < PQntuples(res); i++)
        fn(opaque, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), atoi(PQgetvalue(res, i, 2)));
    PQclear(res);
    return HUB_OK;
}

int notifier_db_mark_announced(notifier_db_t *db, const char *event_id, const char *sent_event_id,
                               char *errstr, size_t errstr_size)
{
    const char *params[2] = {event_id, sent_event_id};
    return run(db, "marking a briefing announced",
               "UPDATE notification_deliveries SET briefing_sent_event_id = $2::uuid,"
               " briefing_sent_at = now() WHERE event_id = $1::uuid",
               2, params, PGRES_COMMAND_OK, NULL, errstr, errstr_size);
}
