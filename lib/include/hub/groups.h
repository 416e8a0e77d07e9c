/*
 * groups.h: the partnership's named groups (the LLR Transitions Subgroup, the
 * adult social care teams, ...), the addresses the hub writes to, and which
 * reminders each group receives.
 *
 * Groups come from the top-level `groups` list of the configuration:
 *
 *   groups = (
 *     { id = "leicester-adult-social-care";
 *       name = "Leicester City Council Adult Social Care";
 *       emails = [ "adult-social-care@leicester.example.org" ];
 *       reminders = [ "PLAN_DUE_SOON", "PLAN_OVERDUE", "ACTION_OVERDUE" ];
 *       local_authority = "LEICESTER"; }   // optional
 *   );
 *
 * Without a `groups` setting the embedded defaults apply (every group named in
 * the design brief, with example.org addresses); a `groups` list replaces them
 * entirely. hub-reminder, hub-notifier and hubctl read the same list, so a
 * group id means the same thing to each of them.
 */
#ifndef HUB_GROUPS_H
#define HUB_GROUPS_H

#include <stddef.h>

#include "hub/config.h"
#include "hub/events.h"

/*
 * What a group can subscribe to. The first three equal hub_reminder_kind_t
 * (ReminderDue.kind); ACTION_OVERDUE stands for MeetingActionOverdue, which
 * goes to the action's owner group only.
 */
typedef enum {
    HUB_GROUP_PLAN_DUE_SOON = HUB_REMINDER_PLAN_DUE_SOON,
    HUB_GROUP_PLAN_OVERDUE = HUB_REMINDER_PLAN_OVERDUE,
    HUB_GROUP_NOT_BRIEFED = HUB_REMINDER_GROUP_NOT_BRIEFED,
    HUB_GROUP_ACTION_OVERDUE,
    HUB_GROUP_REMINDER__COUNT
} hub_group_reminder_t;

#define HUB_GROUP_NAME_MAX  200 /* display name, bytes */
#define HUB_GROUP_EMAIL_MAX 254 /* RFC 5321 path limit */

typedef struct hub_group_s {
    char id[HUB_CODE_SIZE]; /* lower-case letters, digits and '-' */
    char *name;             /* display name, used in greetings and To: */
    char **emails;          /* at least one */
    size_t nemails;
    unsigned reminders;  /* bit (1u << hub_group_reminder_t) per subscription */
    int local_authority; /* hub_local_authority_t whose plans it is told of; -1: all */
} hub_group_t;

typedef struct hub_groups_s {
    hub_group_t *items;
    size_t n;
} hub_groups_t;

/*
 * hub_groups_parse: a HUB_CFG_CUSTOM parser for the top-level `groups`
 * setting; var is a hub_groups_t (empty or already freed). s NULL means the
 * setting is absent and the embedded defaults are loaded. Rejects, with
 * `file:line: ...` in errstr and HUB_ECONFIG: a missing or malformed id,
 * name or emails, an address that is not local@domain.tld, an unknown
 * reminder kind or local authority, an unknown setting inside a group, and
 * an id or address given twice. On error *var holds nothing (freed).
 */
int hub_groups_parse(const struct config_setting_t *s, void *var, char *errstr, size_t errstr_size);

/* hub_groups_free: releases everything a hub_groups_t holds (var); it may be reused. */
void hub_groups_free(void *var);

/* The configuration table entry for `groups`, writing into a hub_groups_t *var. */
#define HUB_GROUPS_CFG_ITEM(var)                                                                   \
    {                                                                                              \
        "groups", HUB_CFG_CUSTOM, (var), 0, NULL,                                                  \
            "named groups: id, name, emails, reminders, local_authority (see docs/notifier.md)",   \
            0, 0, hub_groups_parse, hub_groups_free                                                \
    }

struct hub_service_s;

/*
 * hub_groups_reload: reads the groups from svc's configuration file again
 * (see hub_service_reload, which checks the whole file). On success the
 * groups in *g are freed and replaced by the new ones and 0 is returned; on
 * error *g is left as it was and errstr says `file:line: problem`.
 * Pointers into the old groups are invalid after a successful reload.
 */
int hub_groups_reload(const struct hub_service_s *svc, hub_groups_t *g, char *errstr,
                      size_t errstr_size);

/*
 * hub_groups_load_defaults: fills *g with the embedded default groups. 0, or
 * HUB_ENOMEM/HUB_ECONFIG with the reason in errstr.
 */
int hub_groups_load_defaults(hub_groups_t *g, char *errstr, size_t errstr_size);

/* hub_groups_defaults_text: the embedded defaults in configuration syntax. Static. */
const char *hub_groups_defaults_text(void);

/* hub_groups_find: the group with this id, or NULL. Borrowed from g. */
const hub_group_t *hub_groups_find(const hub_groups_t *g, const char *id);

/* hub_group_wants: non-zero if the group subscribes to reminder r. */
int hub_group_wants(const hub_group_t *grp, hub_group_reminder_t r);

/*
 * hub_group_wants_plan: non-zero if the group is to be told about plan
 * reminder r for a young person of local authority la: it subscribes to r
 * and either has no local authority or has la.
 */
int hub_group_wants_plan(const hub_group_t *grp, hub_group_reminder_t r, hub_local_authority_t la);

/* hub_group_reminder_name: "PLAN_DUE_SOON", ...; NULL when out of range. */
const char *hub_group_reminder_name(hub_group_reminder_t r);

/* hub_group_reminder_from_name: the subscription named name, or -1. */
int hub_group_reminder_from_name(const char *name);

/*
 * hub_email_valid: non-zero for a plain addr-spec local@domain with a
 * dot-atom local part and a domain of at least two LDH labels, at most 254
 * bytes. Quoted local parts, IP literals and display names are refused.
 */
int hub_email_valid(const char *addr);

/* hub_group_id_valid: non-zero for 1-64 characters of a-z, 0-9 and '-', not starting with '-'. */
int hub_group_id_valid(const char *id);

#endif
