/* config.c: table-driven libconfig loading with file:line errors. */
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/config.h"

/* ---- props ---------------------------------------------------------------- */

int hub_props_set(hub_props_t *p, const char *key, const char *value)
{
    char *v = strdup(value);
    if (!v)
        return HUB_ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->keys[i], key) == 0) {
            free(p->values[i]);
            p->values[i] = v;
            return HUB_OK;
        }
    }
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        char **nk = realloc(p->keys, ncap * sizeof(*nk));
        if (!nk)
            goto nomem;
        p->keys = nk;
        char **nv = realloc(p->values, ncap * sizeof(*nv));
        if (!nv)
            goto nomem;
        p->values = nv;
        p->cap = ncap;
    }
    p->keys[p->n] = strdup(key);
    if (!p->keys[p->n])
        goto nomem;
    p->values[p->n++] = v;
    return HUB_OK;
nomem:
    free(v);
    return HUB_ENOMEM;
}

const char *hub_props_get(const hub_props_t *p, const char *key)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (strcmp(p->keys[i], key) == 0)
            return p->values[i];
    return NULL;
}

int hub_props_copy(hub_props_t *dst, const hub_props_t *src)
{
    for (size_t i = 0; src && i < src->n; i++) {
        int err = hub_props_set(dst, src->keys[i], src->values[i]);
        if (err)
            return err;
    }
    return HUB_OK;
}

void hub_props_clear(hub_props_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->values[i]);
    }
    free(p->keys);
    free(p->values);
    memset(p, 0, sizeof(*p));
}

/* ---- helpers -------------------------------------------------------------- */

const char *hub_cfg_where(const config_setting_t *s, char *buf, size_t size)
{
    if (!s) {
        hub_strlcpy(buf, "<defaults>", size);
        return buf;
    }
    const char *file = config_setting_source_file(s);
    snprintf(buf, size, "%s:%u", file ? file : "<config>", config_setting_source_line(s));
    return buf;
}

char *hub_cfg_expand(const char *src, char *errstr, size_t errstr_size)
{
    size_t cap = strlen(src) + 64, n = 0;
    char *out = malloc(cap);
    if (!out) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        return NULL;
    }
    for (const char *s = src; *s;) {
        const char *piece = s;
        size_t plen = 1;
        char name[128];
        if (s[0] == '$' && s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            if (!end) {
                hub_errf(errstr, errstr_size, HUB_ECONFIG, "unterminated ${ in \"%s\"", src);
                goto fail;
            }
            const char *def = NULL;
            const char *colon = strstr(s + 2, ":-");
            size_t nlen = (size_t)((colon && colon < end ? colon : end) - (s + 2));
            if (colon && colon < end)
                def = colon + 2;
            if (nlen == 0 || nlen >= sizeof(name)) {
                hub_errf(errstr, errstr_size, HUB_ECONFIG, "bad variable name in \"%s\"", src);
                goto fail;
            }
            memcpy(name, s + 2, nlen);
            name[nlen] = '\0';
            const char *val = getenv(name);
            if (val && *val) {
                piece = val;
                plen = strlen(val);
            } else if (def) {
                piece = def;
                plen = (size_t)(end - def);
            } else {
                hub_errf(errstr, errstr_size, HUB_ECONFIG,
                         "environment variable %s is not set (use ${%s:-default} for a default)",
                         name, name);
                goto fail;
            }
            s = end + 1;
        } else {
            s++;
        }
        if (n + plen + 1 > cap) {
            cap = (n + plen + 1) * 2;
            char *nout = realloc(out, cap);
            if (!nout) {
                hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
                goto fail;
            }
            out = nout;
        }
        memcpy(out + n, piece, plen);
        n += plen;
    }
    out[n] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

/*
 * Reads the first line of a secret file, without its line ending. The path
 * takes ${VAR} like any string, so one file can name a per-process directory
 * such as systemd's ${CREDENTIALS_DIRECTORY}.
 */
static char *read_secret_file(const char *path, char *errstr, size_t errstr_size)
{
    char *expanded = hub_cfg_expand(path, errstr, errstr_size);
    char *buf;

    if (!expanded)
        return NULL;
    buf = hub_read_file(expanded, NULL, errstr, errstr_size);
    free(expanded);
    if (!buf)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static char *secret_from_env(const char *var, char *errstr, size_t errstr_size)
{
    const char *v = getenv(var);
    if (!v) {
        hub_errf(errstr, errstr_size, HUB_ECONFIG, "environment variable %s is not set", var);
        return NULL;
    }
    char *c = strdup(v);
    if (!c)
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    return c;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Fills errstr with "where: msg" and returns HUB_ECONFIG. */
static int cfg_error(char *errstr, size_t errstr_size, const config_setting_t *s, const char *msg,
                     const char *path)
{
    char where[512];
    return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: '%s' %s",
                    hub_cfg_where(s, where, sizeof(where)), path, msg);
}

/* ---- props groups --------------------------------------------------------- */

static int props_from_group(const config_setting_t *g, const char *prefix, hub_props_t *props,
                            char *errstr, size_t errstr_size)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        char key[256], where[512], value[64];
        char *owned = NULL;
        const char *val = NULL;
        int err;

        snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", name);
        for (char *c = key; *c; c++)
            if (*c == '_')
                *c = '.';
        switch (config_setting_type(s)) {
        case CONFIG_TYPE_GROUP:
            err = props_from_group(s, key, props, errstr, errstr_size);
            if (err)
                return err;
            continue;
        case CONFIG_TYPE_STRING:
            val = config_setting_get_string(s);
            break;
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
            snprintf(value, sizeof(value), "%lld", config_setting_get_int64(s));
            val = value;
            break;
        case CONFIG_TYPE_BOOL:
            val = config_setting_get_bool(s) ? "true" : "false";
            break;
        case CONFIG_TYPE_FLOAT:
            snprintf(value, sizeof(value), "%g", config_setting_get_float(s));
            val = value;
            break;
        default:
            return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                            "%s: '%s' must be a string, number or boolean",
                            hub_cfg_where(s, where, sizeof(where)), name);
        }
        /* key.file / key.env: read a secret, store it under the bare key. */
        char sub[512];
        if (ends_with(key, ".file") || ends_with(key, ".env")) {
            int is_file = ends_with(key, ".file");
            key[strlen(key) - (is_file ? 5 : 4)] = '\0';
            owned = is_file ? read_secret_file(val, sub, sizeof(sub))
                            : secret_from_env(val, sub, sizeof(sub));
            if (!owned)
                return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: %s",
                                hub_cfg_where(s, where, sizeof(where)), sub);
            val = owned;
        } else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
            owned = hub_cfg_expand(val, sub, sizeof(sub));
            if (!owned)
                return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: %s",
                                hub_cfg_where(s, where, sizeof(where)), sub);
            val = owned;
        }
        err = hub_props_set(props, key, val);
        free(owned);
        if (err)
            return hub_errf(errstr, errstr_size, err, "out of memory");
    }
    return HUB_OK;
}

/* ---- table ---------------------------------------------------------------- */

/* Is path a table entry, or a group on the way to one? Sets *item when an entry. */
static int table_knows(const hub_cfg_item_t *items, size_t nitems, const char *path,
                       const hub_cfg_item_t **item, int *is_prefix)
{
    size_t plen = strlen(path);
    *item = NULL;
    *is_prefix = 0;
    for (size_t i = 0; i < nitems; i++) {
        const char *ip = items[i].path;
        if (strcmp(ip, path) == 0) {
            *item = &items[i];
            return 1;
        }
        if (items[i].type == HUB_CFG_SECRET) {
            size_t il = strlen(ip);
            if (plen > il && strncmp(ip, path, il) == 0 &&
                (strcmp(path + il, "_file") == 0 || strcmp(path + il, "_env") == 0)) {
                *item = &items[i];
                return 1;
            }
        }
        if (strncmp(ip, path, plen) == 0 && ip[plen] == '.')
            *is_prefix = 1;
    }
    return *is_prefix;
}

/* Rejects any setting the table does not describe. */
static int check_unknown(const config_setting_t *g, const char *prefix, const hub_cfg_item_t *items,
                         size_t nitems, char *errstr, size_t errstr_size)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        char path[256];
        const hub_cfg_item_t *item;
        int is_prefix;

        if (!name)
            continue;
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
        if (!table_knows(items, nitems, path, &item, &is_prefix))
            return cfg_error(errstr, errstr_size, s, "is not a known setting (see --help-config)",
                             path);
        if (!item && config_setting_type(s) == CONFIG_TYPE_GROUP) {
            int err = check_unknown(s, path, items, nitems, errstr, errstr_size);
            if (err)
                return err;
        } else if (!item) {
            return cfg_error(errstr, errstr_size, s, "must be a group { ... }", path);
        }
    }
    return HUB_OK;
}

static int parse_bool_text(const char *t, int *out)
{
    if (strcmp(t, "true") == 0 || strcmp(t, "1") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(t, "false") == 0 || strcmp(t, "0") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int load_string(const config_setting_t *s, const hub_cfg_item_t *it, config_t *cfg,
                       char *errstr, size_t errstr_size)
{
    char **var = it->var;
    char sub[512], where[512], path[256];
    const config_setting_t *src = s;
    char *val = NULL;

    if (it->type == HUB_CFG_SECRET && !s) {
        snprintf(path, sizeof(path), "%s_file", it->path);
        if ((src = config_lookup(cfg, path)) != NULL) {
            if (config_setting_type(src) != CONFIG_TYPE_STRING)
                return cfg_error(errstr, errstr_size, src, "must be a string (a file path)", path);
            val = read_secret_file(config_setting_get_string(src), sub, sizeof(sub));
        } else {
            snprintf(path, sizeof(path), "%s_env", it->path);
            if ((src = config_lookup(cfg, path)) != NULL) {
                if (config_setting_type(src) != CONFIG_TYPE_STRING)
                    return cfg_error(errstr, errstr_size, src, "must be a string (a variable name)",
                                     path);
                val = secret_from_env(config_setting_get_string(src), sub, sizeof(sub));
            }
        }
        if (src && !val)
            return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: %s",
                            hub_cfg_where(src, where, sizeof(where)), sub);
    } else if (s) {
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return cfg_error(errstr, errstr_size, s, "must be a string", it->path);
        val = hub_cfg_expand(config_setting_get_string(s), sub, sizeof(sub));
        if (!val)
            return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: %s",
                            hub_cfg_where(s, where, sizeof(where)), sub);
    }
    if (!val && it->def) {
        val = hub_cfg_expand(it->def, sub, sizeof(sub));
        if (!val)
            return hub_errf(errstr, errstr_size, HUB_ECONFIG, "default of '%s': %s", it->path, sub);
    }
    free(*var);
    *var = val;
    return HUB_OK;
}

static int load_item(config_t *cfg, const hub_cfg_item_t *it, const char *file, char *errstr,
                     size_t errstr_size)
{
    const config_setting_t *s = file ? config_lookup(cfg, it->path) : NULL;
    char where[512];

    if (!s && (it->flags & HUB_CFG_REQUIRED) && it->type != HUB_CFG_SECRET &&
        it->type != HUB_CFG_STRING)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: required setting '%s' is missing",
                        file ? file : "<defaults>", it->path);

    switch (it->type) {
    case HUB_CFG_STRING:
    case HUB_CFG_SECRET: {
        int err = load_string(s, it, cfg, errstr, errstr_size);
        if (err)
            return err;
        if ((it->flags & HUB_CFG_REQUIRED) && !*(char **)it->var)
            return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                            "%s: required setting '%s' is missing", file ? file : "<defaults>",
                            it->path);
        return HUB_OK;
    }
    case HUB_CFG_INT: {
        long long v = 0;
        if (s) {
            int t = config_setting_type(s);
            if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
                return cfg_error(errstr, errstr_size, s, "must be an integer", it->path);
            v = config_setting_get_int64(s);
        } else if (it->def) {
            v = strtoll(it->def, NULL, 10);
        }
        if (it->min < it->max && (v < it->min || v > it->max)) {
            char msg[128];
            snprintf(msg, sizeof(msg), "must be between %lld and %lld (is %lld)", it->min, it->max,
                     v);
            return cfg_error(errstr, errstr_size, s, msg, it->path);
        }
        *(long long *)it->var = v;
        return HUB_OK;
    }
    case HUB_CFG_BOOL: {
        int v = 0;
        if (s) {
            if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return cfg_error(errstr, errstr_size, s, "must be true or false", it->path);
            v = config_setting_get_bool(s);
        } else if (it->def) {
            /* A default may come from the environment, as string defaults do. */
            char sub[512];
            char *def = hub_cfg_expand(it->def, sub, sizeof(sub));
            int err = HUB_OK;
            if (!def)
                err = hub_errf(errstr, errstr_size, HUB_ECONFIG, "default of '%s': %s", it->path,
                               sub);
            else if (parse_bool_text(def, &v) != 0)
                err = hub_errf(errstr, errstr_size, HUB_ECONFIG,
                               "default of '%s' must be true or false (is '%s')", it->path, def);
            free(def);
            if (err)
                return err;
        }
        *(int *)it->var = v;
        return HUB_OK;
    }
    case HUB_CFG_PROPS: {
        hub_props_t *p = it->var;
        if (!s)
            return HUB_OK;
        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
            return cfg_error(errstr, errstr_size, s, "must be a group { ... }", it->path);
        return props_from_group(s, "", p, errstr, errstr_size);
    }
    case HUB_CFG_CUSTOM:
        return it->parse(s, it->var, errstr, errstr_size);
    }
    return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: unsupported type",
                    hub_cfg_where(s, where, sizeof(where)));
}

int hub_cfg_load(const char *path, const hub_cfg_item_t *items, size_t nitems, char *errstr,
                 size_t errstr_size)
{
    config_t cfg;
    int err = HUB_OK;
    int have_file = path != NULL;

    config_init(&cfg);
    if (have_file) {
        FILE *f = fopen(path, "r");
        if (!f) {
            err = hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: cannot open: %s", path,
                           strerror(errno));
            goto out;
        }
        fclose(f);
        if (!config_read_file(&cfg, path)) {
            err = hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s:%d: %s",
                           config_error_file(&cfg) ? config_error_file(&cfg) : path,
                           config_error_line(&cfg), config_error_text(&cfg));
            goto out;
        }
        err = check_unknown(config_root_setting(&cfg), "", items, nitems, errstr, errstr_size);
        if (err)
            goto out;
    }
    for (size_t i = 0; i < nitems; i++) {
        err = load_item(&cfg, &items[i], path, errstr, errstr_size);
        if (err)
            goto out;
    }
out:
    config_destroy(&cfg);
    return err;
}

void hub_cfg_free(const hub_cfg_item_t *items, size_t nitems)
{
    for (size_t i = 0; i < nitems; i++) {
        switch (items[i].type) {
        case HUB_CFG_STRING:
        case HUB_CFG_SECRET: {
            char **v = items[i].var;
            free(*v);
            *v = NULL;
            break;
        }
        case HUB_CFG_PROPS:
            hub_props_clear(items[i].var);
            break;
        case HUB_CFG_CUSTOM:
            if (items[i].free)
                items[i].free(items[i].var);
            break;
        default:
            break;
        }
    }
}

void hub_cfg_print_help(const hub_cfg_item_t *items, size_t nitems, void *fp)
{
    FILE *f = fp;
    static const char *const type_names[] = {"string",  "secret", "integer",
                                             "boolean", "group",  "group"};
    for (size_t i = 0; i < nitems; i++) {
        const hub_cfg_item_t *it = &items[i];
        fprintf(f, "  %-32s %-8s %s", it->path, type_names[it->type], it->help ? it->help : "");
        if (it->def)
            fprintf(f, " (default: %s)", it->def);
        if (it->flags & HUB_CFG_REQUIRED)
            fprintf(f, " (required)");
        if (it->type == HUB_CFG_SECRET)
            fprintf(f, " [also %s_file, %s_env]", it->path, it->path);
        fputc('\n', f);
    }
}
