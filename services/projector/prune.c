/*
 * prune.c: event-log retention. Old rows go in chunks, each its own short
 * transaction, between batches, so pruning years of history never holds up
 * projection for long.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hub/log.h"
#include "projector.h"

#define PRUNE_CHUNK "5000"

long projector_prune(projector_t *p)
{
    char days[24];
    const char *params[2] = {days, PRUNE_CHUNK};
    PGresult *res;
    long n = -1;

    if (!p->ln->pg || PQstatus(p->ln->pg) != CONNECTION_OK)
        return -1;
    snprintf(days, sizeof(days), "%lld", p->conf.retention_days);
    res = PQexecParams(p->ln->pg,
                       "DELETE FROM hub_event_log WHERE event_id IN ("
                       " SELECT event_id FROM hub_event_log"
                       " WHERE received_at < now() - make_interval(days => $1::integer)"
                       " LIMIT $2::integer)",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        n = atol(PQcmdTuples(res));
        /* The ids remembered as logged may be among those gone. */
        if (n > 0)
            projector_recent_clear(p);
        if (n > 0)
            hub_log_info("event=event_log_pruned rows=%ld retention_days=%lld", n,
                         p->conf.retention_days);
    } else {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        hub_log_warn("event=event_log_prune_failed error=\"%s\"", msg ? msg : "no answer");
    }
    PQclear(res);
    return n;
}
