/*
 * planner.h: hub-planner's consume-transform-produce loop: YoungPersonFlagged
 * from the risk flags topic in, TransitionPlanDue to the transition alerts
 * topic out, exactly once with Kafka transactions.
 */
#ifndef HUB_PLANNER_H
#define HUB_PLANNER_H

#include <stddef.h>

#include "hub/http.h"
#include "hub/metrics.h"
#include "hub/rules.h"
#include "hub/service.h"

typedef struct planner_conf_s {
    char *group_id;
    char *transactional_id;
    char *group_instance_id; /* NULL: the transactional id; "": dynamic membership */
    long long batch_max;
    long long batch_ms;
    long long restore_timeout_ms;
    long long progress_ms;
    hub_rules_t rules;
    hub_http_conf_t http;
} planner_conf_t;

typedef struct planner_s planner_t;

/* What the planner did, for the log and the benchmark. */
typedef struct planner_stats_s {
    long long consumed;
    long long alerts;
    long long unchanged; /* flags that changed nothing (re-flags, reprocessing) */
    long long too_young; /* flags under the alert age: no alert yet */
    long long dead_letters;
    long long transactions;
    long long aborts;
    long long restored; /* alerts read back while rebuilding state */
} planner_stats_t;

/*
 * planner_new: checks the topics, creates the transactional producer (which
 * fences any older instance with the same transactional id) and the
 * read_committed consumer. svc (its common settings, and its configuration
 * file for reloads), conf, metrics and http are borrowed and must outlive
 * the planner; metrics and http may be NULL. The planner starts with a copy
 * of conf->rules. NULL on error with the reason in errstr.
 */
planner_t *planner_new(const hub_service_t *svc, const planner_conf_t *conf, hub_metrics_t *metrics,
                       hub_http_t *http, char *errstr, size_t errstr_size);

/*
 * planner_run: processes flags until a stop is requested (SIGTERM/SIGINT),
 * then finishes the transaction in hand. After SIGHUP it reads the rules
 * from the configuration file again, between two transactions, and uses
 * them for every flag handled from then on; a file that is not valid is
 * logged (file:line) and the rules in use are kept. 0 after a clean stop;
 * HUB_EKAFKA after a fatal Kafka error (e.g. fenced by a newer instance),
 * reason in errstr.
 */
int planner_run(planner_t *p, char *errstr, size_t errstr_size);

/* planner_stats: the counters so far. */
const planner_stats_t *planner_stats(const planner_t *p);

/* planner_destroy: leaves the group, flushes, frees. NULL is fine. */
void planner_destroy(planner_t *p);

#endif
