/* service.c: common configuration table and command line for every hub program. */
#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/config.h"
#include "hub/log.h"
#include "hub/service.h"
#include "hub/signals.h"

static const char *const all_groups[] = {HUB_SERVICE_GROUPS};

/* agencies = [ "CODE", ... ]: a list of non-empty upper-case codes. */
static int parse_agencies(const config_setting_t *s, void *var, char *errstr, size_t errstr_size)
{
    hub_common_conf_t *c = var;
    static const char *const defaults[] = {
        "LEICESTER_CS",   "LEICESTERSHIRE_CS", "RUTLAND_CS", "LEICESTER_ASC", "LEICESTERSHIRE_ASC",
        "RUTLAND_ASC",    "LEICS_POLICE",      "LLR_ICB",    "LPT",           "UHL",
        "HUB_COORDINATOR"};
    char where[512];
    size_t n = s ? (size_t)config_setting_length(s) : HUB_ARRAY_LEN(defaults);

    if (s && config_setting_type(s) != CONFIG_TYPE_ARRAY &&
        config_setting_type(s) != CONFIG_TYPE_LIST)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                        "%s: 'agencies' must be a list of strings",
                        hub_cfg_where(s, where, sizeof(where)));
    c->agencies = calloc(n + 1, sizeof(char *));
    if (!c->agencies)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *v = defaults[i < HUB_ARRAY_LEN(defaults) ? i : 0];
        if (s) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_STRING)
                return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                                "%s: 'agencies' entry %zu must be a string",
                                hub_cfg_where(e, where, sizeof(where)), i + 1);
            v = config_setting_get_string(e);
            if (!*v || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(v))
                return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                                "%s: agency code '%s' must be upper-case letters, digits and _",
                                hub_cfg_where(e, where, sizeof(where)), v);
        }
        if (!(c->agencies[i] = strdup(v)))
            return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        c->nagencies = i + 1;
    }
    return HUB_OK;
}

static void free_agencies(void *var)
{
    hub_common_conf_t *c = var;
    for (size_t i = 0; c->agencies && i < c->nagencies; i++)
        free(c->agencies[i]);
    free(c->agencies);
    c->agencies = NULL;
    c->nagencies = 0;
}

/* Another program's group: that program checks it. */
static int ignore_group(const config_setting_t *s, void *var, char *errstr, size_t errstr_size)
{
    return HUB_OK;
}

/* Does the program list path among its own settings (e.g. the shared `groups`)? */
static int owns_path(const hub_service_t *svc, const char *path)
{
    for (size_t i = 0; svc->own && i < svc->nown; i++)
        if (strcmp(svc->own[i].path, path) == 0)
            return 1;
    return 0;
}

#define ITEM(path, type, var, def, help)                                                           \
    {                                                                                              \
        path, type, var, 0, def, help, 0, 0, NULL, NULL                                            \
    }

static size_t common_items(hub_common_conf_t *c, hub_cfg_item_t *out)
{
    const hub_cfg_item_t items[] = {
        {"kafka", HUB_CFG_PROPS, &c->kafka, 0, NULL,
         "librdkafka properties, passed verbatim (underscores become dots); bootstrap.servers "
         "defaults to $HUB_KAFKA_BOOTSTRAP or 127.0.0.1:9092",
         0, 0, NULL, NULL},
        ITEM("postgres.conninfo", HUB_CFG_STRING, &c->pg_conninfo,
             "${HUB_PG_CONNINFO:-host=127.0.0.1 port=5432 dbname=hub}",
             "libpq connection string or URI"),
        ITEM("postgres.password", HUB_CFG_SECRET, &c->pg_password, NULL,
             "PostgreSQL password (prefer password_file or password_env)"),
        ITEM("schema_registry.url", HUB_CFG_STRING, &c->registry_url, "",
             "Confluent-compatible registry API base; empty: pinned ids from the catalogue"),
        ITEM("schemas_dir", HUB_CFG_STRING, &c->schemas_dir,
             "${HUB_DATA_DIR:-" HUB_DATA_DIR "}/schemas", "directory holding catalogue.json"),
        ITEM("log.level", HUB_CFG_STRING, &c->log_level, "info", "debug, info, warn or error"),
        ITEM("linkage.secret", HUB_CFG_SECRET, &c->linkage_secret, NULL,
             "the partnership's linkage secret for pseudonymising NHS numbers"),
        ITEM("topics.risk_flags", HUB_CFG_STRING, &c->topics.risk_flags, "llr.children.risk-flags",
             "YoungPersonFlagged"),
        ITEM("topics.transition_alerts", HUB_CFG_STRING, &c->topics.transition_alerts,
             "llr.adults.transition-alerts", "TransitionPlanDue"),
        ITEM("topics.transition_plans", HUB_CFG_STRING, &c->topics.transition_plans,
             "llr.adults.transition-plans", "TransitionPlanCompleted"),
        ITEM("topics.meeting_actions", HUB_CFG_STRING, &c->topics.meeting_actions,
             "llr.meetings.actions", "MeetingAction* events"),
        ITEM("topics.group_notifications", HUB_CFG_STRING, &c->topics.group_notifications,
             "llr.groups.notifications", "ReminderDue, Briefing* events"),
        ITEM("topics.dead_letters", HUB_CFG_STRING, &c->topics.dead_letters, "llr.hub.dead-letters",
             "rejected messages, original bytes kept"),
        {"agencies", HUB_CFG_CUSTOM, c, 0, NULL, "list of known agency codes", 0, 0, parse_agencies,
         free_agencies},
    };
    if (out)
        memcpy(out, items, sizeof(items));
    return HUB_ARRAY_LEN(items);
}

/* The embedded default (and a file whose kafka group omits it) still needs a broker. */
static int default_bootstrap(hub_props_t *kafka)
{
    const char *env = getenv("HUB_KAFKA_BOOTSTRAP");
    if (hub_props_get(kafka, "bootstrap.servers"))
        return HUB_OK;
    return hub_props_set(kafka, "bootstrap.servers", env && *env ? env : "127.0.0.1:9092");
}

static void print_help(const hub_service_t *svc)
{
    printf("Usage: %s [options]%s\n\n%s\n\n", svc->name,
           strcmp(svc->name, "hubctl") == 0 ? " <command> [args]" : "", svc->usage);
    printf("Options:\n"
           "  -c, --config FILE    configuration file (default: $HUB_CONFIG, else built-in "
           "defaults)\n"
           "  -l, --log-level L    debug, info, warn or error (overrides log.level)\n"
           "      --help-config    list every configuration setting with its default\n"
           "      --check-config   load and check the configuration, print ok, exit 0 (2 if bad)\n"
           "  -V, --version        print the version\n"
           "  -h, --help           this help\n");
    if (svc->options_help)
        printf("%s", svc->options_help);
    printf("\nExit status: 0 success, 1 failure, 2 bad usage or configuration.\n");
}

int hub_service_init(hub_service_t *svc, int argc, char **argv)
{
    enum { OPT_HELP_CONFIG = 1000, OPT_CHECK_CONFIG };
    static const struct option base[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    };
    struct option opts[64];
    size_t nopts = 0, nextra = 0;
    const char *log_override = NULL;
    int help_config = 0, check_config = 0;
    char errstr[1024];
    int ch;

    memset(opts, 0, sizeof(opts));
    memcpy(opts, base, sizeof(base));
    nopts = HUB_ARRAY_LEN(base);
    while (svc->options && svc->options[nextra].name && nopts < HUB_ARRAY_LEN(opts) - 1)
        opts[nopts++] = svc->options[nextra++];

    optind = 1;
    while ((ch = getopt_long(argc, argv, "+c:l:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            free(svc->config_path);
            svc->config_path = strdup(optarg);
            break;
        case 'l':
            log_override = optarg;
            break;
        case 'h':
            print_help(svc);
            return HUB_EXIT_OK;
        case 'V':
            printf("%s %s\n", svc->name, HUB_VERSION);
            return HUB_EXIT_OK;
        case OPT_HELP_CONFIG:
            help_config = 1;
            break;
        case OPT_CHECK_CONFIG:
            check_config = 1;
            break;
        default:
            if (ch >= 256 && svc->option) {
                int r = svc->option(svc, ch, optarg);
                if (r >= 0)
                    return r;
                break;
            }
            fprintf(stderr, "%s: see '%s --help'\n", svc->name, svc->name);
            return HUB_EXIT_USAGE;
        }
    }
    svc->argc = argc - optind;
    svc->argv = argv + optind;

    /* Table: common settings, the other programs' groups (ignored), then our own. */
    size_t ncommon = common_items(&svc->common, NULL);
    size_t ngroups = HUB_ARRAY_LEN(all_groups);
    svc->items = calloc(ncommon + ngroups + svc->nown, sizeof(hub_cfg_item_t));
    if (!svc->items) {
        fprintf(stderr, "%s: out of memory\n", svc->name);
        return HUB_EXIT_FAILURE;
    }
    common_items(&svc->common, svc->items);
    svc->nitems = ncommon;
    for (size_t i = 0; i < ngroups; i++) {
        if (svc->own_group && strcmp(svc->own_group, all_groups[i]) == 0)
            continue;
        if (owns_path(svc, all_groups[i]))
            continue;
        svc->items[svc->nitems++] = (hub_cfg_item_t){
            all_groups[i], HUB_CFG_CUSTOM, NULL, 0, NULL, NULL, 0, 0, ignore_group, NULL};
    }
    for (size_t i = 0; i < svc->nown; i++)
        svc->items[svc->nitems++] = svc->own[i];

    if (help_config) {
        printf("Settings of %s (libconfig syntax; groups written as name = { ... };):\n",
               svc->name);
        for (size_t i = 0; i < svc->nitems; i++)
            if (svc->items[i].parse != ignore_group)
                hub_cfg_print_help(&svc->items[i], 1, stdout);
        return HUB_EXIT_OK;
    }

    if (!svc->config_path) {
        const char *env = getenv("HUB_CONFIG");
        if (env && *env)
            svc->config_path = strdup(env);
    }
    if (hub_cfg_load(svc->config_path, svc->items, svc->nitems, errstr, sizeof(errstr)) != HUB_OK) {
        fprintf(stderr, "%s: %s\n", svc->name, errstr);
        return HUB_EXIT_USAGE;
    }
    if (default_bootstrap(&svc->common.kafka) != HUB_OK) {
        fprintf(stderr, "%s: out of memory\n", svc->name);
        return HUB_EXIT_FAILURE;
    }
    hub_log_level_t level;
    const char *lvl = log_override ? log_override : svc->common.log_level;
    if (hub_log_level_parse(lvl, &level) != 0) {
        fprintf(stderr, "%s: log level '%s' must be debug, info, warn or error\n", svc->name, lvl);
        return HUB_EXIT_USAGE;
    }
    if (check_config) {
        /* Deployment checks (tests/cli/deploy_files.sh, ExecStartPre=): everything a start
           would read from the file and environment, secrets included, then no connection. */
        printf("%s: %s: ok\n", svc->name, svc->config_path ? svc->config_path : "<defaults>");
        return HUB_EXIT_OK;
    }
    hub_log_init(svc->name, level);
    hub_signals_install();
    return -1;
}

const char *hub_service_topic(const hub_service_t *svc, const char *setting)
{
    const hub_topics_t *t = &svc->common.topics;
    static const struct {
        const char *name;
        size_t off;
    } map[] = {
        {"risk_flags", offsetof(hub_topics_t, risk_flags)},
        {"transition_alerts", offsetof(hub_topics_t, transition_alerts)},
        {"transition_plans", offsetof(hub_topics_t, transition_plans)},
        {"meeting_actions", offsetof(hub_topics_t, meeting_actions)},
        {"group_notifications", offsetof(hub_topics_t, group_notifications)},
        {"dead_letters", offsetof(hub_topics_t, dead_letters)},
    };
    for (size_t i = 0; setting && i < HUB_ARRAY_LEN(map); i++)
        if (strcmp(map[i].name, setting) == 0)
            return *(char *const *)((const char *)t + map[i].off);
    return NULL;
}

/* ---- reload --------------------------------------------------------------- */

/*
 * Where a reload puts a setting it reads only to check it: the live value
 * stays in use, this one is compared with it and freed.
 */
typedef struct reload_slot_s {
    union {
        char *s;
        long long i;
        int b;
        hub_props_t p;
    } v;
    int handed_back; /* the caller's variable: the caller keeps it */
} reload_slot_t;

static int props_equal(const hub_props_t *a, const hub_props_t *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        const char *v = hub_props_get(b, a->keys[i]);
        if (!v || strcmp(v, a->values[i]) != 0)
            return 0;
    }
    return 1;
}

static int strings_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Do the live and the freshly read value of one setting agree? */
static int value_equal(const hub_cfg_item_t *live, const hub_cfg_item_t *fresh)
{
    switch (live->type) {
    case HUB_CFG_STRING:
    case HUB_CFG_SECRET:
        return strings_equal(*(char **)live->var, *(char **)fresh->var);
    case HUB_CFG_INT:
        return *(long long *)live->var == *(long long *)fresh->var;
    case HUB_CFG_BOOL:
        return *(int *)live->var == *(int *)fresh->var;
    case HUB_CFG_PROPS:
        return props_equal(live->var, fresh->var);
    case HUB_CFG_CUSTOM:
        if (live->parse == parse_agencies) {
            const hub_common_conf_t *a = live->var, *b = fresh->var;
            if (a->nagencies != b->nagencies)
                return 0;
            for (size_t i = 0; i < a->nagencies; i++)
                if (strcmp(a->agencies[i], b->agencies[i]) != 0)
                    return 0;
        }
        /* Another custom setting cannot be compared; it is not read on reload either. */
        return 1;
    }
    return 1;
}

/* The index of path in the program's table, or -1. */
static long find_item(const hub_service_t *svc, const char *path)
{
    for (size_t i = 0; i < svc->nitems; i++)
        if (strcmp(svc->items[i].path, path) == 0)
            return (long)i;
    return -1;
}

int hub_service_reload(const hub_service_t *svc, const hub_cfg_item_t *items, size_t nitems,
                       char *errstr, size_t errstr_size)
{
    hub_common_conf_t fresh;
    hub_cfg_item_t *shadow = NULL;
    reload_slot_t *slots = NULL;
    char changed[512] = "";
    int err = HUB_OK, loaded = 0;

    memset(&fresh, 0, sizeof(fresh));
    for (size_t j = 0; j < nitems; j++) {
        long i = find_item(svc, items[j].path);
        if (i < 0 || svc->items[i].type != items[j].type || svc->items[i].parse == ignore_group) {
            err = hub_errf(errstr, errstr_size, HUB_EINVAL, "'%s' is not a setting of %s",
                           items[j].path, svc->name);
            goto out;
        }
    }
    shadow = calloc(svc->nitems, sizeof(*shadow));
    slots = calloc(svc->nitems, sizeof(*slots));
    if (!shadow || !slots) {
        err = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    /* The same table as at start, reading into fresh variables: the common settings
       into `fresh`, the caller's settings into the caller's, the rest into slots. */
    size_t ncommon = common_items(&fresh, shadow);
    for (size_t i = ncommon; i < svc->nitems; i++) {
        shadow[i] = svc->items[i];
        switch (shadow[i].type) {
        case HUB_CFG_STRING:
        case HUB_CFG_SECRET:
            shadow[i].var = &slots[i].v.s;
            break;
        case HUB_CFG_INT:
            shadow[i].var = &slots[i].v.i;
            break;
        case HUB_CFG_BOOL:
            shadow[i].var = &slots[i].v.b;
            break;
        case HUB_CFG_PROPS:
            shadow[i].var = &slots[i].v.p;
            break;
        case HUB_CFG_CUSTOM:
            /* Only the program knows what its variable holds: unread unless named. */
            shadow[i].var = NULL;
            shadow[i].parse = ignore_group;
            shadow[i].free = NULL;
            break;
        }
    }
    for (size_t j = 0; j < nitems; j++) {
        long i = find_item(svc, items[j].path);
        shadow[i] = items[j];
        slots[i].handed_back = 1;
    }
    loaded = 1;
    err = hub_cfg_load(svc->config_path, shadow, svc->nitems, errstr, errstr_size);
    if (!err && default_bootstrap(&fresh.kafka) != HUB_OK)
        err = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    if (err)
        goto out;
    for (size_t i = 0; i < svc->nitems; i++) {
        if (slots[i].handed_back || svc->items[i].parse == ignore_group ||
            value_equal(&svc->items[i], &shadow[i]))
            continue;
        size_t used = strlen(changed);
        snprintf(changed + used, sizeof(changed) - used, "%s%s", used ? "," : "",
                 svc->items[i].path);
    }
    if (*changed)
        hub_log_warn("event=config_restart_needed settings=%s reason=\"only some settings are "
                     "reloaded at run time; these keep their old values until a restart\"",
                     changed);
out:
    /* On success the caller's variables are theirs; everything else read is released. */
    for (size_t i = 0; loaded && i < svc->nitems; i++)
        if (err || !slots[i].handed_back)
            hub_cfg_free(&shadow[i], 1);
    free(slots);
    free(shadow);
    /* The reason goes into a quoted log value (error="..."): keep it one value. */
    for (char *c = errstr; err && c && errstr_size && *c; c++)
        if (*c == '"' || *c == '\n')
            *c = *c == '"' ? '\'' : ' ';
    return err;
}

void hub_service_fini(hub_service_t *svc)
{
    if (svc->items)
        hub_cfg_free(svc->items, svc->nitems);
    free(svc->items);
    svc->items = NULL;
    free(svc->config_path);
    svc->config_path = NULL;
}
