/* groups.c: named groups from the configuration, with the embedded defaults. */
#include <ctype.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hub/common.h"
#include "hub/config.h"
#include "hub/events.h"
#include "hub/groups.h"
#include "hub/service.h"

/*
 * The defaults are kept as configuration text and go through the same parser
 * as a file, so they cannot drift from what validation accepts.
 */
static const char defaults_text[] =
    "groups = (\n"
    "  { id = \"llr-transitions-subgroup\";\n"
    "    name = \"LLR Transitions Subgroup\";\n"
    "    emails = [ \"transitions-subgroup@example.org\" ];\n"
    "    reminders = [ \"PLAN_OVERDUE\", \"ACTION_OVERDUE\" ]; },\n"
    "  { id = \"llr-strategic-partnership-executive-group\";\n"
    "    name = \"LLR Strategic Partnership Executive Group\";\n"
    "    emails = [ \"strategic-partnership-executive@example.org\" ];\n"
    "    reminders = [ \"ACTION_OVERDUE\", \"GROUP_NOT_BRIEFED\" ]; },\n"
    "  { id = \"llr-exploitation-group\";\n"
    "    name = \"LLR Exploitation Group\";\n"
    "    emails = [ \"exploitation-group@example.org\" ];\n"
    "    reminders = [ \"ACTION_OVERDUE\", \"GROUP_NOT_BRIEFED\" ]; },\n"
    "  { id = \"llr-modern-slavery-action-group\";\n"
    "    name = \"LLR Modern Slavery Action Group\";\n"
    "    emails = [ \"modern-slavery-action-group@example.org\" ];\n"
    "    reminders = [ \"ACTION_OVERDUE\", \"GROUP_NOT_BRIEFED\" ]; },\n"
    "  { id = \"city-transitions-board\";\n"
    "    name = \"City Transitions Board\";\n"
    "    emails = [ \"city-transitions-board@example.org\" ];\n"
    "    reminders = [ \"PLAN_OVERDUE\", \"ACTION_OVERDUE\", \"GROUP_NOT_BRIEFED\" ];\n"
    "    local_authority = \"LEICESTER\"; },\n"
    "  { id = \"leicester-adult-social-care\";\n"
    "    name = \"Leicester City Council Adult Social Care\";\n"
    "    emails = [ \"adult-social-care@leicester.example.org\" ];\n"
    "    reminders = [ \"PLAN_DUE_SOON\", \"PLAN_OVERDUE\", \"ACTION_OVERDUE\" ];\n"
    "    local_authority = \"LEICESTER\"; },\n"
    "  { id = \"leicestershire-adult-social-care\";\n"
    "    name = \"Leicestershire County Council Adult Social Care\";\n"
    "    emails = [ \"adult-social-care@leicestershire.example.org\" ];\n"
    "    reminders = [ \"PLAN_DUE_SOON\", \"PLAN_OVERDUE\", \"ACTION_OVERDUE\" ];\n"
    "    local_authority = \"LEICESTERSHIRE\"; },\n"
    "  { id = \"rutland-adult-social-care\";\n"
    "    name = \"Rutland County Council Adult Social Care\";\n"
    "    emails = [ \"adult-social-care@rutland.example.org\" ];\n"
    "    reminders = [ \"PLAN_DUE_SOON\", \"PLAN_OVERDUE\", \"ACTION_OVERDUE\" ];\n"
    "    local_authority = \"RUTLAND\"; }\n"
    ");\n";

static const char *const reminder_names[HUB_GROUP_REMINDER__COUNT] = {
    [HUB_GROUP_PLAN_DUE_SOON] = "PLAN_DUE_SOON",
    [HUB_GROUP_PLAN_OVERDUE] = "PLAN_OVERDUE",
    [HUB_GROUP_NOT_BRIEFED] = "GROUP_NOT_BRIEFED",
    [HUB_GROUP_ACTION_OVERDUE] = "ACTION_OVERDUE",
};

static const char *const group_keys[] = {"id", "name", "emails", "reminders", "local_authority"};

const char *hub_groups_defaults_text(void)
{
    return defaults_text;
}

const char *hub_group_reminder_name(hub_group_reminder_t r)
{
    return (unsigned)r < HUB_GROUP_REMINDER__COUNT ? reminder_names[r] : NULL;
}

int hub_group_reminder_from_name(const char *name)
{
    for (int i = 0; name && i < HUB_GROUP_REMINDER__COUNT; i++)
        if (strcmp(reminder_names[i], name) == 0)
            return i;
    return -1;
}

int hub_group_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= HUB_CODE_SIZE || id[0] == '-')
        return 0;
    return strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* RFC 5322 atext: what a dot-atom local part may hold besides dots. */
static int is_atext(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

int hub_email_valid(const char *addr)
{
    const char *at = strrchr(addr, '@');
    size_t len = strlen(addr);
    int labels = 0;

    if (!at || at == addr || len > HUB_GROUP_EMAIL_MAX || at - addr > 64)
        return 0;
    /* Local part: atoms separated by single dots. */
    for (const char *p = addr; p < at; p++) {
        if (*p == '.') {
            if (p == addr || p + 1 == at || p[1] == '.')
                return 0;
        } else if (!is_atext((unsigned char)*p)) {
            return 0;
        }
    }
    /* Domain: letters, digits and hyphens in labels of 1-63, at least two labels. */
    for (const char *p = at + 1;;) {
        const char *end = strchr(p, '.');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '-')
                return 0;
        labels++;
        if (!end)
            break;
        p = end + 1;
    }
    return labels >= 2;
}

static void group_clear(hub_group_t *grp)
{
    for (size_t i = 0; i < grp->nemails; i++)
        free(grp->emails[i]);
    free(grp->emails);
    free(grp->name);
    memset(grp, 0, sizeof(*grp));
}

void hub_groups_free(void *var)
{
    hub_groups_t *g = var;
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        group_clear(&g->items[i]);
    free(g->items);
    g->items = NULL;
    g->n = 0;
}

/* Formats "where: message" for setting s into errstr and returns HUB_ECONFIG. */
static int group_error(char *errstr, size_t errstr_size, const config_setting_t *s, const char *fmt,
                       const char *a, const char *b)
{
    char where[512], msg[512];
    snprintf(msg, sizeof(msg), fmt, a ? a : "", b ? b : "");
    return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: %s",
                    hub_cfg_where(s, where, sizeof(where)), msg);
}

/* A string member of a group; NULL (with errstr filled) when absent or not a string. */
static const char *member_string(const config_setting_t *grp, const char *key, int required,
                                 const char *gid, char *errstr, size_t errstr_size, int *err)
{
    const config_setting_t *s = config_setting_get_member(grp, key);
    *err = HUB_OK;
    if (!s) {
        if (required)
            *err = group_error(errstr, errstr_size, grp, "group %s: '%s' is missing", gid, key);
        return NULL;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        *err = group_error(errstr, errstr_size, s, "group %s: '%s' must be a string", gid, key);
        return NULL;
    }
    return config_setting_get_string(s);
}

/* A list or array of strings; returns its length, or -1 (errstr filled) if it is not one. */
static int string_list(const config_setting_t *s, const char *key, const char *gid, char *errstr,
                       size_t errstr_size)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
        group_error(errstr, errstr_size, s, "group %s: '%s' must be a list of strings", gid, key);
        return -1;
    }
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            group_error(errstr, errstr_size, e, "group %s: every entry of '%s' must be a string",
                        gid, key);
            return -1;
        }
    }
    return n;
}

static int parse_emails(const config_setting_t *grps, hub_group_t *grp, char *errstr,
                        size_t errstr_size)
{
    const config_setting_t *s = config_setting_get_member(grps, "emails");
    if (!s)
        return group_error(errstr, errstr_size, grps, "group %s: 'emails' is missing", grp->id,
                           NULL);
    int n = string_list(s, "emails", grp->id, errstr, errstr_size);
    if (n < 0)
        return HUB_ECONFIG;
    if (n == 0)
        return group_error(errstr, errstr_size, s, "group %s: 'emails' needs at least one address",
                           grp->id, NULL);
    grp->emails = calloc((size_t)n, sizeof(char *));
    if (!grp->emails)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *addr = config_setting_get_string(e);
        if (!hub_email_valid(addr))
            return group_error(errstr, errstr_size, e,
                               "group %s: '%s' is not an e-mail address (local@domain.tld)",
                               grp->id, addr);
        for (size_t j = 0; j < grp->nemails; j++)
            if (strcasecmp(grp->emails[j], addr) == 0)
                return group_error(errstr, errstr_size, e, "group %s: address '%s' listed twice",
                                   grp->id, addr);
        if (!(grp->emails[grp->nemails] = strdup(addr)))
            return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        grp->nemails++;
    }
    return HUB_OK;
}

static int parse_reminders(const config_setting_t *grps, hub_group_t *grp, char *errstr,
                           size_t errstr_size)
{
    const config_setting_t *s = config_setting_get_member(grps, "reminders");
    if (!s)
        return HUB_OK; /* a group may receive only briefings */
    int n = string_list(s, "reminders", grp->id, errstr, errstr_size);
    if (n < 0)
        return HUB_ECONFIG;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_get_string(e);
        int r = hub_group_reminder_from_name(name);
        if (r < 0)
            return group_error(errstr, errstr_size, e,
                               "group %s: unknown reminder kind '%s' (PLAN_DUE_SOON, PLAN_OVERDUE, "
                               "ACTION_OVERDUE, GROUP_NOT_BRIEFED)",
                               grp->id, name);
        if (grp->reminders & (1u << r))
            return group_error(errstr, errstr_size, e, "group %s: reminder kind '%s' listed twice",
                               grp->id, name);
        grp->reminders |= 1u << r;
    }
    return HUB_OK;
}

/* Fills grp from one `{ ... }` element; ids seen so far are in g. */
static int parse_group(const config_setting_t *s, const hub_groups_t *g, hub_group_t *grp,
                       char *errstr, size_t errstr_size)
{
    char where[512];
    const char *id, *name, *la;
    int err;

    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return group_error(errstr, errstr_size, s,
                           "every entry of 'groups' must be a group { ... }", NULL, NULL);
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
        const char *key = config_setting_name(m);
        size_t k = 0;
        while (k < HUB_ARRAY_LEN(group_keys) && strcmp(group_keys[k], key) != 0)
            k++;
        if (k == HUB_ARRAY_LEN(group_keys))
            return group_error(errstr, errstr_size, m,
                               "'%s' is not a group setting (id, name, emails, reminders, "
                               "local_authority)",
                               key, NULL);
    }
    if (!(id = member_string(s, "id", 1, "entry", errstr, errstr_size, &err)))
        return err;
    if (!hub_group_id_valid(id))
        return group_error(errstr, errstr_size, config_setting_get_member(s, "id"),
                           "group id '%s' must be 1-64 characters of a-z, 0-9 and '-'", id, NULL);
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->items[i].id, id) == 0)
            return group_error(errstr, errstr_size, config_setting_get_member(s, "id"),
                               "duplicate group id '%s'", id, NULL);
    hub_strlcpy(grp->id, id, sizeof(grp->id));

    if (!(name = member_string(s, "name", 1, grp->id, errstr, errstr_size, &err)))
        return err;
    size_t nlen = strlen(name);
    int printable = nlen > 0 && nlen <= HUB_GROUP_NAME_MAX;
    for (size_t i = 0; printable && i < nlen; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            printable = 0;
    if (!printable)
        return group_error(errstr, errstr_size, config_setting_get_member(s, "name"),
                           "group %s: 'name' must be 1-200 bytes without control characters",
                           grp->id, NULL);
    if (!(grp->name = strdup(name)))
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");

    if ((err = parse_emails(s, grp, errstr, errstr_size)) != HUB_OK ||
        (err = parse_reminders(s, grp, errstr, errstr_size)) != HUB_OK)
        return err;

    grp->local_authority = -1;
    la = member_string(s, "local_authority", 0, grp->id, errstr, errstr_size, &err);
    if (err)
        return err;
    if (la && (grp->local_authority = hub_local_authority_from_name(la)) < 0)
        return hub_errf(
            errstr, errstr_size, HUB_ECONFIG,
            "%s: group %s: unknown local authority '%s' (LEICESTER, LEICESTERSHIRE, RUTLAND)",
            hub_cfg_where(config_setting_get_member(s, "local_authority"), where, sizeof(where)),
            grp->id, la);
    return HUB_OK;
}

int hub_groups_parse(const config_setting_t *s, void *var, char *errstr, size_t errstr_size)
{
    hub_groups_t *g = var;
    int err = HUB_OK;

    hub_groups_free(g);
    if (!s)
        return hub_groups_load_defaults(g, errstr, errstr_size);
    if (config_setting_type(s) != CONFIG_TYPE_LIST)
        return group_error(errstr, errstr_size, s,
                           "'groups' must be a list of groups: groups = ( { id = ...; }, ... );",
                           NULL, NULL);
    int n = config_setting_length(s);
    if (n > 0 && !(g->items = calloc((size_t)n, sizeof(hub_group_t))))
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        /* Counted before parsing so a half-filled entry is freed on error. */
        g->n = (size_t)i + 1;
        err = parse_group(config_setting_get_elem(s, (unsigned)i), g, &g->items[i], errstr,
                          errstr_size);
        if (err)
            goto fail;
    }
    return HUB_OK;
fail:
    hub_groups_free(g);
    return err;
}

int hub_groups_reload(const hub_service_t *svc, hub_groups_t *g, char *errstr, size_t errstr_size)
{
    hub_groups_t fresh = {NULL, 0};
    const hub_cfg_item_t item = HUB_GROUPS_CFG_ITEM(&fresh);
    int err = hub_service_reload(svc, &item, 1, errstr, errstr_size);

    if (err)
        return err;
    hub_groups_free(g);
    *g = fresh;
    return HUB_OK;
}

int hub_groups_load_defaults(hub_groups_t *g, char *errstr, size_t errstr_size)
{
    config_t cfg;
    int err;

    config_init(&cfg);
    if (!config_read_string(&cfg, defaults_text)) {
        err = hub_errf(errstr, errstr_size, HUB_ECONFIG, "embedded groups:%d: %s",
                       config_error_line(&cfg), config_error_text(&cfg));
        goto out;
    }
    /* A NULL setting would mean "load the defaults" again. */
    const config_setting_t *s = config_lookup(&cfg, "groups");
    err = s ? hub_groups_parse(s, g, errstr, errstr_size)
            : hub_errf(errstr, errstr_size, HUB_ECONFIG, "embedded groups: no 'groups' list");
out:
    config_destroy(&cfg);
    return err;
}

const hub_group_t *hub_groups_find(const hub_groups_t *g, const char *id)
{
    for (size_t i = 0; g && id && i < g->n; i++)
        if (strcmp(g->items[i].id, id) == 0)
            return &g->items[i];
    return NULL;
}

int hub_group_wants(const hub_group_t *grp, hub_group_reminder_t r)
{
    return (unsigned)r < HUB_GROUP_REMINDER__COUNT && (grp->reminders & (1u << r)) != 0;
}

int hub_group_wants_plan(const hub_group_t *grp, hub_group_reminder_t r, hub_local_authority_t la)
{
    return hub_group_wants(grp, r) && (grp->local_authority < 0 || grp->local_authority == (int)la);
}
