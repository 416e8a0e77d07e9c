/*
 * hub-planner: decides, by the transition rules in the configuration, whether
 * and when a transition plan is due for each young person flagged, and tells
 * adult social care (TransitionPlanDue), exactly once. See docs/planner.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "hub/common.h"
#include "hub/http.h"
#include "hub/log.h"
#include "hub/metrics.h"
#include "hub/rules.h"
#include "hub/service.h"
#include "planner.h"

enum { OPT_PRINT_RULES = 256 };

static int print_rules;

static int option(hub_service_t *svc, int val, const char *arg)
{
    if (val == OPT_PRINT_RULES)
        print_rules = 1;
    return -1;
}

int main(int argc, char **argv)
{
    static planner_conf_t conf;
    static const struct option options[] = {{"print-rules", no_argument, NULL, OPT_PRINT_RULES},
                                            {NULL, 0, NULL, 0}};
    const hub_cfg_item_t own[] = {
        {"planner.group_id", HUB_CFG_STRING, &conf.group_id, 0, "hub-planner",
         "consumer group shared by every planner instance", 0, 0, NULL, NULL},
        {"planner.transactional_id", HUB_CFG_STRING, &conf.transactional_id, 0, "hub-planner-1",
         "Kafka transactional.id: unique per instance, the same across its restarts", 0, 0, NULL,
         NULL},
        {"planner.group_instance_id", HUB_CFG_STRING, &conf.group_instance_id, 0, NULL,
         "static group membership id (default: the transactional_id; \"\" for dynamic)", 0, 0, NULL,
         NULL},
        {"planner.batch_max", HUB_CFG_INT, &conf.batch_max, 0, "10000",
         "most flags handled in one transaction", 1, 100000, NULL, NULL},
        {"planner.batch_ms", HUB_CFG_INT, &conf.batch_ms, 0, "100",
         "longest wait (ms) to fill a transaction once a flag is in hand", 1, 60000, NULL, NULL},
        {"planner.restore_timeout_ms", HUB_CFG_INT, &conf.restore_timeout_ms, 0, "120000",
         "longest time to read the alerts topic back at assignment", 1000, 3600000, NULL, NULL},
        {"planner.progress_ms", HUB_CFG_INT, &conf.progress_ms, 0, "10000",
         "interval of the progress log line", 100, 3600000, NULL, NULL},
        HUB_RULES_CFG_ITEM("planner.rules", &conf.rules),
        HUB_HTTP_CFG_ITEMS("planner", &conf.http, HUB_HTTP_PORT_PLANNER),
    };
    hub_service_t svc = {
        .name = "hub-planner",
        .own_group = "planner",
        .usage = "Consumes YoungPersonFlagged from topics.risk_flags and produces "
                 "TransitionPlanDue to topics.transition_alerts, exactly once (Kafka "
                 "transactions); bad input goes to topics.dead_letters.",
        .own = own,
        .nown = HUB_ARRAY_LEN(own),
        .options = options,
        .option = option,
        .options_help = "      --print-rules    print the effective transition rules and exit\n",
    };
    planner_t *planner = NULL;
    hub_metrics_t *metrics = NULL;
    hub_http_t *http = NULL;
    char errstr[1024] = "";
    int status = hub_service_init(&svc, argc, argv);

    if (status >= 0)
        goto out;
    status = HUB_EXIT_FAILURE;
    if (svc.argc > 0) {
        fprintf(stderr, "hub-planner: unexpected argument '%s' (see --help)\n", svc.argv[0]);
        status = HUB_EXIT_USAGE;
        goto out;
    }
    if (print_rules) {
        hub_rules_print(&conf.rules, stdout);
        status = HUB_EXIT_OK;
        goto out;
    }
    if (!(metrics = hub_metrics_new(svc.name))) {
        hub_log_error("event=start_failed error=\"out of memory\"");
        goto out;
    }
    if (conf.http.listen && *conf.http.listen &&
        !(http = hub_http_start(&conf.http, metrics, errstr, sizeof(errstr)))) {
        hub_log_error("event=start_failed error=\"%s\"", errstr);
        goto out;
    }
    planner = planner_new(&svc, &conf, metrics, http, errstr, sizeof(errstr));
    if (!planner) {
        hub_log_error("event=start_failed error=\"%s\"", errstr);
        goto out;
    }
    if (planner_run(planner, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_error("event=run_failed error=\"%s\"", errstr);
        goto out;
    }
    status = HUB_EXIT_OK;
out:
    planner_destroy(planner);
    hub_http_stop(http);
    hub_metrics_destroy(metrics);
    hub_service_fini(&svc);
    return status;
}
