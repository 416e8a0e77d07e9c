/*
 * service.h: what every hub program shares: the common configuration (Kafka,
 * PostgreSQL, registry, topics, agencies, logging) and the command line
 * (--config, --help, --help-config, --check-config, --version), so services
 * differ only in their own settings and loop.
 *
 * One configuration file can serve every service: each program checks the
 * common settings and its own group strictly, and leaves the other services'
 * groups to them.
 */
#ifndef HUB_SERVICE_H
#define HUB_SERVICE_H

#include <stddef.h>

#include "hub/config.h"

struct option;

typedef struct hub_topics_s {
    char *risk_flags;
    char *transition_alerts;
    char *transition_plans;
    char *meeting_actions;
    char *group_notifications;
    char *dead_letters;
} hub_topics_t;

typedef struct hub_common_conf_s {
    hub_props_t kafka;    /* verbatim librdkafka properties */
    char *pg_conninfo;    /* libpq conninfo or URI */
    char *pg_password;    /* from postgres.password_file/_env, may be NULL */
    char *registry_url;   /* "" or NULL: pinned schema ids */
    char *schemas_dir;    /* holds catalogue.json */
    char *log_level;      /* debug|info|warn|error */
    char *linkage_secret; /* for hubctl pseudonymise, may be NULL */
    hub_topics_t topics;
    char **agencies; /* known agency codes, NULL-terminated */
    size_t nagencies;
} hub_common_conf_t;

/*
 * Every top-level setting a hub program may own; each ignores the others'.
 * `groups` (the named groups, hub/groups.h) is shared: a program that lists
 * it among its own settings reads it, the rest leave it alone.
 */
#define HUB_SERVICE_GROUPS "planner", "projector", "reminder", "notifier", "hubctl", "groups"

typedef struct hub_service_s {
    const char *name;          /* e.g. "hub-projector" */
    const char *own_group;     /* e.g. "projector", or NULL */
    const char *usage;         /* one-paragraph description for --help */
    const hub_cfg_item_t *own; /* the program's own settings, may be NULL */
    size_t nown;
    /* Extra long options (terminated by a zero entry; `val` must be >= 256),
       handled by option(); options_help is printed under --help. */
    const struct option *options;
    int (*option)(struct hub_service_s *svc, int val, const char *arg);
    const char *options_help;
    void *opaque;
    hub_common_conf_t common;
    char *config_path; /* the file loaded, or NULL for the embedded defaults */
    int argc;          /* arguments left after the options */
    char **argv;
    /* private */
    hub_cfg_item_t *items;
    size_t nitems;
} hub_service_t;

/*
 * hub_service_init: parses the command line and loads the configuration
 * (--config FILE, else $HUB_CONFIG, else the embedded defaults), sets up
 * logging and signal handling. Returns -1 when the program should go on;
 * otherwise the exit status main() should return now: 0 after --help,
 * --version, --help-config or a --check-config that found the configuration
 * good (it loads it as a start would, secrets included, and connects to
 * nothing), 2 (HUB_EXIT_USAGE) for a bad option or configuration, with the
 * message already printed on stderr. Options stop at the first non-option,
 * which with the rest is left in svc->argc/argv (for hubctl's commands).
 */
int hub_service_init(hub_service_t *svc, int argc, char **argv);

/* hub_service_topic: the topic name configured for a topics.<setting>, or NULL. */
const char *hub_service_topic(const hub_service_t *svc, const char *setting);

/*
 * hub_service_reload: reads the configuration file again (SIGHUP) and hands
 * back the settings items names: the same paths and types as in the
 * program's table, each with the caller's own, empty variable. The whole
 * file is checked as a start would check it; only items' variables are
 * filled, so the caller swaps them in (between events) only on success and
 * the running configuration is never half-changed. Any other setting whose
 * value in the file now differs from the one in use (Kafka, PostgreSQL,
 * topics, ports...) keeps its old value, and one warning line
 * (event=config_restart_needed settings=a,b) names them. Returns 0; or
 * HUB_ECONFIG with `file:line: problem` in errstr, or HUB_EINVAL if items
 * names a setting the program does not have; then items' variables are
 * released and nothing else is changed. Double quotes in errstr become single
 * ones, so it fits a quoted log value (error="..."). The program's own
 * HUB_CFG_CUSTOM settings that items does not name are not read.
 */
int hub_service_reload(const hub_service_t *svc, const hub_cfg_item_t *items, size_t nitems,
                       char *errstr, size_t errstr_size);

/* hub_service_fini: releases the configuration. */
void hub_service_fini(hub_service_t *svc);

#endif
