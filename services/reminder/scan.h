/*
 * scan.h: one hub-reminder scan: what is due, overdue or unbriefed as of a
 * date, as ready-made events with deterministic ids, minus those already
 * produced; and the record of what was produced.
 */
#ifndef REMINDER_SCAN_H
#define REMINDER_SCAN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "hub/date.h"
#include "hub/events.h"
#include "hub/groups.h"

/*
 * Namespace of every reminder event id. The names hashed under it are
 *   ReminderDue|<kind>|<subject_key>|<due YYYY-MM-DD>|<group_id>   plan reminders
 *   ReminderDue|GROUP_NOT_BRIEFED|<group_id>|<due YYYY-MM-DD or never>
 *   MeetingActionOverdue|<action_id>|<due YYYY-MM-DD>
 * so the same situation always yields the same id (docs/reminder.md).
 */
#define REMINDER_NAMESPACE "3b8f5e27-4c1d-5a96-8e2f-7d0c9b6a1e54"

typedef struct reminder_rules_s {
    hub_date_t as_of;           /* the day the scan is for */
    int due_soon_days;          /* a plan due within this many days is DUE_SOON */
    int briefing_interval_days; /* a group briefed longer ago than this is reminded */
    const hub_groups_t *groups;
    int64_t now_ms; /* occurred_at of the events */
} reminder_rules_t;

typedef struct reminder_item_s {
    hub_event_t ev;
    const char *kind; /* PLAN_DUE_SOON, PLAN_OVERDUE, GROUP_NOT_BRIEFED, ACTION_OVERDUE */
} reminder_item_t;

/* reminder_item_group: the group an item is for (borrowed from the item). */
const char *reminder_item_group(const reminder_item_t *it);

typedef struct reminder_batch_s {
    reminder_item_t *items;
    size_t n, cap;
    size_t found[HUB_GROUP_REMINDER__COUNT]; /* per kind, before dropping known ones */
    size_t known;                            /* dropped: produced by an earlier scan */
} reminder_batch_t;

/* reminder_batch_free: releases the items; the batch may be reused. */
void reminder_batch_free(reminder_batch_t *b);

/*
 * reminder_scan: fills b (emptied first) with every reminder due as of
 * r->as_of that reminder_emitted does not hold yet. Reads
 * hub_transitions_as_of(), meeting_actions and group_state. 0, HUB_EPG or
 * HUB_ENOMEM with the reason in errstr.
 */
int reminder_scan(PGconn *conn, const reminder_rules_t *r, reminder_batch_t *b, char *errstr,
                  size_t errstr_size);

/*
 * reminder_record: records every item of b as produced, in one transaction.
 * Call only after the broker acknowledged them all. 0 or HUB_EPG.
 */
int reminder_record(PGconn *conn, const reminder_batch_t *b, hub_date_t as_of, char *errstr,
                    size_t errstr_size);

/*
 * reminder_event_id: the deterministic id for one reminder (see
 * REMINDER_NAMESPACE). subject_or_action is NULL for GROUP_NOT_BRIEFED; due
 * < 0 with has_due 0 means "never briefed". Returns 0 or HUB_EINVAL.
 */
int reminder_event_id(hub_event_type_t type, const char *kind, const char *subject_or_action,
                      int has_due, hub_date_t due, const char *group_id, char out[HUB_UUID_SIZE]);

#endif
