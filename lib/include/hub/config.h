/*
 * config.h: table-driven configuration files (libconfig syntax).
 *
 * A service describes every setting it accepts in one table of hub_cfg_item_t
 * (path, type, destination, flags, default, help). hub_cfg_load() reads the
 * file, rejects unknown settings and wrong types, applies defaults and copies
 * every string, so nothing points into libconfig's memory afterwards. Errors
 * read `file:line: what is wrong`.
 *
 * String values may use ${VAR} or ${VAR:-default} to take text from the
 * environment. A HUB_CFG_SECRET setting `x` may instead be given as `x_file`
 * (the file's first line; the path may use ${VAR} too) or `x_env` (an
 * environment variable's name), so secrets need not sit inline.
 *
 * A HUB_CFG_PROPS group (e.g. `kafka { ... }`) is handed verbatim to a client
 * library: nested group names and underscores become dots, so
 * `kafka = { security_protocol = "SASL_SSL"; sasl = { mechanism = "SCRAM-SHA-512"; }; };`
 * yields security.protocol and sasl.mechanism. A key ending in `_file` or
 * `_env` inside such a group is read from that file or variable.
 */
#ifndef HUB_CONFIG_H
#define HUB_CONFIG_H

#include <stddef.h>

/* An ordered list of string key/value pairs, e.g. librdkafka properties. */
typedef struct hub_props_s {
    char **keys;
    char **values;
    size_t n;
    size_t cap;
} hub_props_t;

/* hub_props_set: sets key to value (copies both), replacing an earlier value. 0 or HUB_ENOMEM. */
int hub_props_set(hub_props_t *p, const char *key, const char *value);

/* hub_props_get: the value for key, or NULL. Borrowed. */
const char *hub_props_get(const hub_props_t *p, const char *key);

/* hub_props_copy: appends every pair of src into dst. 0 or HUB_ENOMEM. */
int hub_props_copy(hub_props_t *dst, const hub_props_t *src);

/* hub_props_clear: frees every pair; the struct may be reused. */
void hub_props_clear(hub_props_t *p);

typedef enum {
    HUB_CFG_STRING, /* var: char ** (owned copy, freed by hub_cfg_free) */
    HUB_CFG_SECRET, /* as STRING, also accepts path_file and path_env */
    HUB_CFG_INT,    /* var: long long *; bounded by [min, max] when min < max */
    HUB_CFG_BOOL,   /* var: int * (0 or 1) */
    HUB_CFG_PROPS,  /* var: hub_props_t *; a group passed through verbatim */
    HUB_CFG_CUSTOM, /* var: whatever parse() fills; parse() sees the raw setting */
} hub_cfg_type_t;

#define HUB_CFG_REQUIRED 0x1 /* must be present (no default) */

struct config_setting_t;

/*
 * A custom parser gets the libconfig setting (NULL when absent, so it can fill
 * a default) and returns 0 or a HUB_E* code with a message in errstr; the
 * message should already say `file:line:` (use hub_cfg_where()).
 */
typedef int (*hub_cfg_parse_fn)(const struct config_setting_t *s, void *var, char *errstr,
                                size_t errstr_size);
typedef void (*hub_cfg_free_fn)(void *var);

typedef struct hub_cfg_item_s {
    const char *path; /* dotted path, e.g. "postgres.conninfo" */
    hub_cfg_type_t type;
    void *var;
    int flags;
    const char *def; /* default as text ("100", "true", "x"), NULL if none */
    const char *help;
    long long min, max;
    hub_cfg_parse_fn parse; /* HUB_CFG_CUSTOM only */
    hub_cfg_free_fn free;   /* HUB_CFG_CUSTOM only, may be NULL */
} hub_cfg_item_t;

/*
 * hub_cfg_load: reads path (or, when path is NULL, uses only the defaults:
 * the embedded configuration) into the table's variables. On error returns
 * HUB_ECONFIG with `file:line: problem` in errstr; variables already filled
 * are released by hub_cfg_free(). Services exit with status 2 on failure.
 */
int hub_cfg_load(const char *path, const hub_cfg_item_t *items, size_t nitems, char *errstr,
                 size_t errstr_size);

/* hub_cfg_free: releases every string, props list and custom value the table owns. */
void hub_cfg_free(const hub_cfg_item_t *items, size_t nitems);

/*
 * hub_cfg_where: writes "file:line" of setting s into buf (or "<defaults>"
 * when s is NULL) and returns buf.
 */
const char *hub_cfg_where(const struct config_setting_t *s, char *buf, size_t size);

/*
 * hub_cfg_expand: expands ${VAR} and ${VAR:-default} in src into a new string
 * (caller frees). NULL with a reason in errstr if a variable is unset and has
 * no default, or the syntax is broken.
 */
char *hub_cfg_expand(const char *src, char *errstr, size_t errstr_size);

/* hub_cfg_print_help: prints the table as a configuration reference to f. */
void hub_cfg_print_help(const hub_cfg_item_t *items, size_t nitems, void *f);

#endif
