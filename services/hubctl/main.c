/*
 * hubctl: the hub's command-line tool for partners and operators: publish
 * JSON as Avro events, tail topics as JSON, check schemas, list and replay
 * dead letters, pseudonymise NHS numbers. See docs/hubctl.md.
 */
#include <stdio.h>
#include <string.h>

#include "hub/common.h"
#include "hub/service.h"
#include "hubctl.h"

static const struct {
    const char *name;
    hubctl_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"publish", hubctl_publish, "publish <Event> [file|-]   JSON lines in, Avro events out"},
    {"tail", hubctl_tail, "tail <topic>               decoded events out, one JSON per line"},
    {"schemas", hubctl_schemas, "schemas list|check <file>  the catalogue; BACKWARD compatibility"},
    {"dead-letters", hubctl_dead_letters,
     "dead-letters list|replay   inspect rejected messages, re-publish them"},
    {"pseudonymise", hubctl_pseudonymise,
     "pseudonymise <nhs-number>  the subject_key for a number"},
    {"simulate", hubctl_simulate, "simulate --people N --seed S  publish a synthetic population"},
    {"brief", hubctl_brief, "brief <group> --title --link  ask the hub to brief a named group"},
};

int main(int argc, char **argv)
{
    static hubctl_t ctl;
    const hub_cfg_item_t own[] = {
        {"hubctl.flush_timeout_ms", HUB_CFG_INT, &ctl.flush_timeout_ms, 0, "30000",
         "longest wait (ms) for published or replayed messages to be delivered", 100, 3600000, NULL,
         NULL},
        {"hubctl.replay_group", HUB_CFG_STRING, &ctl.replay_group, 0, "hubctl-dead-letters-replay",
         "consumer group of 'dead-letters replay': it remembers what was replayed already", 0, 0,
         NULL, NULL},
    };
    char usage[2048];
    size_t used;
    hub_service_t svc = {
        .name = "hubctl",
        .own_group = "hubctl",
        .usage = usage,
        .own = own,
        .nown = HUB_ARRAY_LEN(own),
    };
    int status;

    used = (size_t)snprintf(usage, sizeof(usage), "Commands (each has --help):");
    for (size_t i = 0; i < HUB_ARRAY_LEN(commands) && used < sizeof(usage); i++)
        used += (size_t)snprintf(usage + used, sizeof(usage) - used, "\n  %s", commands[i].summary);
    ctl.svc = &svc;
    status = hub_service_init(&svc, argc, argv);
    if (status >= 0)
        goto out;
    if (svc.argc < 1) {
        fprintf(stderr, "hubctl: a command is needed (see 'hubctl --help')\n");
        status = HUB_EXIT_USAGE;
        goto out;
    }
    status = -1;
    for (size_t i = 0; i < HUB_ARRAY_LEN(commands); i++)
        if (strcmp(svc.argv[0], commands[i].name) == 0)
            status = commands[i].fn(&ctl, svc.argc, svc.argv);
    if (status < 0) {
        fprintf(stderr, "hubctl: unknown command '%s' (see 'hubctl --help')\n", svc.argv[0]);
        status = HUB_EXIT_USAGE;
    }
out:
    hub_service_fini(&svc);
    return status;
}
