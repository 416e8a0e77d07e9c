/*
 * offsets.c: where each owned partition stands, as PostgreSQL records it.
 *
 * PostgreSQL is the source of truth for positions: the rows and the offsets
 * commit together, so on assignment the consumer starts exactly after the last
 * committed batch (or at the beginning when nothing is stored), whatever Kafka's
 * own committed offsets say. Whenever that link is in doubt (a lost
 * connection, a failed commit, a rebalance while PostgreSQL was away) the
 * projector resynchronises: pause, reconnect, re-read, seek, resume.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/log.h"
#include "hub/pg.h"
#include "hub/signals.h"
#include "projector.h"

projector_part_t *projector_part_find(projector_t *p, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < p->nparts; i++)
        if (p->parts[i].partition == partition && strcmp(p->parts[i].topic, topic) == 0)
            return &p->parts[i];
    return NULL;
}

/* The lane with the fewest partitions (the first of those), for a partition just assigned. */
static int least_busy_lane(const projector_t *p)
{
    size_t count[PROJECTOR_MAX_LANES] = {0};
    int best = 0;
    for (size_t i = 0; i < p->nparts; i++)
        count[p->parts[i].lane]++;
    for (int k = 1; k < p->nlanes; k++)
        if (count[k] < count[best])
            best = k;
    return best;
}

static projector_part_t *part_add(projector_t *p, const char *topic, int32_t partition)
{
    projector_part_t *part = projector_part_find(p, topic, partition);
    if (part)
        return part;
    if (p->nparts == p->parts_cap) {
        size_t cap = p->parts_cap ? p->parts_cap * 2 : 16;
        projector_part_t *np = realloc(p->parts, cap * sizeof(*np));
        if (!np)
            return NULL;
        p->parts = np;
        p->parts_cap = cap;
    }
    part = &p->parts[p->nparts];
    part->topic = strdup(topic);
    if (!part->topic)
        return NULL;
    part->partition = partition;
    part->expected = -1;
    part->synced = 0;
    part->lane = least_busy_lane(p);
    p->nparts++;
    return part;
}

void projector_parts_free(projector_t *p)
{
    for (size_t i = 0; i < p->nparts; i++)
        free(p->parts[i].topic);
    free(p->parts);
    p->parts = NULL;
    p->nparts = p->parts_cap = 0;
}

/*
 * Reads the stored positions of the group and sets, for every partition in
 * list, both the list's offset (where to start) and our expected position.
 * 0, or HUB_EPG with the connection left as it is.
 */
static int load_offsets(projector_t *p, rd_kafka_topic_partition_list_t *list, char *errstr,
                        size_t errstr_size)
{
    const char *params[1] = {p->conf.group_id};
    PGconn *pg = p->lanes[0].pg; /* any lane would do: none has a batch in flight */
    PGresult *res;
    int n, err = HUB_OK;

    if (!pg || PQstatus(pg) != CONNECTION_OK)
        return hub_errf(errstr, errstr_size, HUB_EPG, "not connected to PostgreSQL");
    res = PQexecParams(pg,
                       "SELECT topic, partition, next_offset FROM hub_consumer_offsets"
                       " WHERE group_id = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        err = hub_errf(errstr, errstr_size, HUB_EPG, "reading offsets: %s",
                       PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                           ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                           : PQerrorMessage(pg));
        goto out;
    }
    n = PQntuples(res);
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        projector_part_t *part = part_add(p, tp->topic, tp->partition);
        if (!part) {
            err = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
            goto out;
        }
        part->expected = -1;
        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        for (int r = 0; r < n; r++) {
            if (strcmp(PQgetvalue(res, r, 0), tp->topic) == 0 &&
                atoi(PQgetvalue(res, r, 1)) == tp->partition) {
                part->expected = atoll(PQgetvalue(res, r, 2));
                tp->offset = part->expected;
                break;
            }
        }
    }
out:
    PQclear(res);
    return err;
}

void projector_on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts)
{
    projector_t *p = opaque;
    char errstr[512];

    projector_lanes_finish(p); /* a connection is needed, and p->parts changes */
    for (int i = 0; i < parts->cnt; i++) {
        projector_part_t *part = part_add(p, parts->elems[i].topic, parts->elems[i].partition);
        if (part)
            part->synced = 0;
    }
    if (load_offsets(p, parts, errstr, sizeof(errstr)) != HUB_OK) {
        /* Start wherever Kafka says; nothing is applied until a resync positions us. */
        hub_log_warn("event=assign_without_offsets error=\"%s\"", errstr);
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        p->need_resync = 1;
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        projector_part_t *part =
            projector_part_find(p, parts->elems[i].topic, parts->elems[i].partition);
        part->synced = 1;
        hub_log_debug("event=partition_assigned topic=%s partition=%d next_offset=%lld",
                      part->topic, (int)part->partition, (long long)part->expected);
    }
}

void projector_on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts)
{
    projector_t *p = opaque;

    projector_lane_t *was = p->ln;

    /* The batches in flight were sent while we owned these partitions: let them commit. */
    projector_lanes_finish(p);
    for (int k = 0; k < p->nlanes; k++) {
        projector_lane_use(p, k);
        projector_batch_drop_partitions(p, parts);
    }
    p->ln = was;
    for (int i = 0; i < parts->cnt; i++) {
        projector_part_t *part =
            projector_part_find(p, parts->elems[i].topic, parts->elems[i].partition);
        if (!part)
            continue;
        free(part->topic);
        *part = p->parts[--p->nparts];
    }
}

/* Serves the consumer (heartbeats, rebalances) for ms, dropping whatever it delivers. */
static void idle(projector_t *p, int64_t ms)
{
    int64_t until = hub_monotonic_ms() + ms;
    while (!hub_stop_requested()) {
        int64_t left = until - hub_monotonic_ms();
        if (left <= 0)
            break;
        rd_kafka_message_t *m = hub_consumer_poll(p->consumer, left > 100 ? 100 : (int)left);
        if (m)
            rd_kafka_message_destroy(m);
        /* Waiting is not being stuck: stay healthy, say why not ready. */
        hub_http_heartbeat(p->http);
    }
}

/* (Re)connects every lane and prepares; 0 or HUB_EPG. */
static int ensure_connections(projector_t *p, char *errstr, size_t errstr_size)
{
    projector_lane_t *was = p->ln;
    int err = HUB_OK;
    for (int k = 0; err == HUB_OK && k < p->nlanes; k++) {
        projector_lane_use(p, k);
        if (p->ln->pg && PQstatus(p->ln->pg) == CONNECTION_OK && p->ln->pg_prepared)
            continue;
        PQfinish(p->ln->pg);
        p->ln->pg_prepared = 0;
        p->ln->pg = hub_pg_connect(p->svc->common.pg_conninfo, p->svc->common.pg_password, 0,
                                   errstr, errstr_size);
        err = p->ln->pg ? projector_pg_prepare(p, errstr, errstr_size) : HUB_EPG;
    }
    p->ln = was;
    return err;
}

int projector_resync(projector_t *p)
{
    rd_kafka_t *rk = hub_consumer_handle(p->consumer);
    rd_kafka_topic_partition_list_t *list = NULL;
    int64_t delay = 100;
    char errstr[512];
    int attempt = 0;

    projector_lanes_finish(p);
    projector_lanes_clear(p);
    hub_http_set_ready(p->http, 0, "resynchronising with PostgreSQL");
    p->ready = 0;
    if (rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        list = NULL;
    }
    for (;;) {
        rd_kafka_error_t *error;
        if (hub_stop_requested())
            return HUB_ESTOPPED;
        attempt++;
        if (ensure_connections(p, errstr, sizeof(errstr)) == HUB_OK &&
            rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (load_offsets(p, list, errstr, sizeof(errstr)) == HUB_OK) {
                error = list->cnt ? rd_kafka_seek_partitions(rk, list, 10000) : NULL;
                int seek_failed = error != NULL;
                for (int i = 0; !seek_failed && i < list->cnt; i++)
                    seek_failed = list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR;
                if (error) {
                    hub_strlcpy(errstr, rd_kafka_error_string(error), sizeof(errstr));
                    rd_kafka_error_destroy(error);
                } else if (seek_failed) {
                    hub_strlcpy(errstr, "seek failed", sizeof(errstr));
                }
                if (!seek_failed) {
                    for (int i = 0; i < list->cnt; i++)
                        projector_part_find(p, list->elems[i].topic, list->elems[i].partition)
                            ->synced = 1;
                    rd_kafka_resume_partitions(rk, list);
                    rd_kafka_topic_partition_list_destroy(list);
                    p->need_resync = 0;
                    hub_log_info("event=resynced partitions=%d attempts=%d",
                                 p->nparts ? (int)p->nparts : 0, attempt);
                    return HUB_OK;
                }
            }
            rd_kafka_topic_partition_list_destroy(list);
            list = NULL;
        }
        projector_one_line(errstr);
        hub_log_warn("event=resync_retry attempt=%d delay_ms=%lld error=\"%s\"", attempt,
                     (long long)delay, errstr);
        idle(p, delay);
        delay = delay * 2 > p->conf.retry_max_ms ? p->conf.retry_max_ms : delay * 2;
    }
}
