/* scan.c: hub-reminder's reading of the view and its record of what it produced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/groups.h"
#include "hub/log.h"
#include "scan.h"

#define PRODUCER "hub-reminder"

void reminder_batch_free(reminder_batch_t *b)
{
    free(b->items);
    memset(b, 0, sizeof(*b));
}

int reminder_event_id(hub_event_type_t type, const char *kind, const char *subject_or_action,
                      int has_due, hub_date_t due, const char *group_id, char out[HUB_UUID_SIZE])
{
    char name[512], d[16];
    if (has_due)
        hub_date_format(due, d, sizeof(d));
    else
        hub_strlcpy(d, "never", sizeof(d));
    if (type == HUB_EVENT_MEETING_ACTION_OVERDUE)
        snprintf(name, sizeof(name), "MeetingActionOverdue|%s|%s", subject_or_action, d);
    else if (!subject_or_action)
        snprintf(name, sizeof(name), "ReminderDue|%s|%s|%s", kind, group_id, d);
    else
        snprintf(name, sizeof(name), "ReminderDue|%s|%s|%s|%s", kind, subject_or_action, d,
                 group_id);
    return hub_uuid_v5(REMINDER_NAMESPACE, name, strlen(name), out);
}

const char *reminder_item_group(const reminder_item_t *it)
{
    return it->ev.type == HUB_EVENT_MEETING_ACTION_OVERDUE ? it->ev.u.action_overdue.owner_group_id
                                                           : it->ev.u.reminder.group_id;
}

static reminder_item_t *add_item(reminder_batch_t *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        reminder_item_t *items = realloc(b->items, cap * sizeof(*items));
        if (!items)
            return NULL;
        b->items = items;
        b->cap = cap;
    }
    reminder_item_t *it = &b->items[b->n++];
    memset(it, 0, sizeof(*it));
    return it;
}

static int pg_fail(PGconn *conn, PGresult *res, const char *what, char *errstr, size_t errstr_size)
{
    char msg[512];
    hub_strlcpy(msg, PQerrorMessage(conn), sizeof(msg));
    msg[strcspn(msg, "\r\n")] = '\0';
    PQclear(res);
    return hub_errf(errstr, errstr_size, HUB_EPG, "%s: %s", what, msg);
}

static int reminder_due(reminder_batch_t *b, const reminder_rules_t *r, const hub_group_t *grp,
                        hub_group_reminder_t kind, const char *subject_key, int has_due,
                        hub_date_t due)
{
    reminder_item_t *it = add_item(b);
    if (!it)
        return HUB_ENOMEM;
    hub_event_t *ev = &it->ev;
    hub_reminder_due_t *rd = &ev->u.reminder;
    ev->type = HUB_EVENT_REMINDER_DUE;
    ev->occurred_at = r->now_ms;
    hub_strlcpy(ev->source, PRODUCER, sizeof(ev->source));
    hub_strlcpy(rd->group_id, grp->id, sizeof(rd->group_id));
    rd->kind = (hub_reminder_kind_t)kind;
    if (subject_key) {
        rd->has_subject_key = 1;
        hub_strlcpy(rd->subject_key, subject_key, sizeof(rd->subject_key));
    }
    rd->has_due_date = has_due;
    rd->due_date = has_due ? due : 0;
    rd->as_of = r->as_of;
    it->kind = hub_group_reminder_name(kind);
    b->found[kind]++;
    return reminder_event_id(ev->type, it->kind, subject_key, has_due, due, grp->id, ev->event_id);
}

/* Plans due within the window or overdue, for every group that wants to hear of them. */
static int scan_plans(PGconn *conn, const reminder_rules_t *r, reminder_batch_t *b, char *errstr,
                      size_t errstr_size)
{
    char as_of[16], window[16];
    const char *params[2] = {hub_date_format(r->as_of, as_of, sizeof(as_of)), window};
    int err = HUB_OK;
    snprintf(window, sizeof(window), "%d", r->due_soon_days);
    /*
     * Completed plans need no reminder, and an adult safeguarding referral
     * follows the safeguarding procedures' own timescales, not a plan's.
     */
    PGresult *res = PQexecParams(conn,
                                 "SELECT subject_key, local_authority, plan_due_date"
                                 " FROM hub_transitions_as_of($1::date)"
                                 " WHERE plan_due_date IS NOT NULL"
                                 "   AND status NOT IN ('COMPLETED', 'ADULT_REFERRAL')"
                                 "   AND days_until_due <= $2::int",
                                 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_fail(conn, res, "reading hub_transitions_as_of", errstr, errstr_size);
    for (int i = 0; i < PQntuples(res) && !err; i++) {
        const char *key = PQgetvalue(res, i, 0);
        int la = hub_local_authority_from_name(PQgetvalue(res, i, 1));
        hub_date_t due;
        if (la < 0 || hub_date_parse(PQgetvalue(res, i, 2), &due) != HUB_OK) {
            hub_log_warn("event=plan_skipped reason=\"unreadable row\" row=%d", i);
            continue;
        }
        hub_group_reminder_t kind =
            due >= r->as_of ? HUB_GROUP_PLAN_DUE_SOON : HUB_GROUP_PLAN_OVERDUE;
        for (size_t g = 0; g < r->groups->n && !err; g++) {
            const hub_group_t *grp = &r->groups->items[g];
            if (hub_group_wants_plan(grp, kind, (hub_local_authority_t)la))
                err = reminder_due(b, r, grp, kind, key, 1, due);
        }
    }
    PQclear(res);
    if (err)
        return hub_errf(errstr, errstr_size, err, "building plan reminders failed");
    return HUB_OK;
}

/* Open actions past their due date: one notice per action and due date, to its owner group. */
static int scan_actions(PGconn *conn, const reminder_rules_t *r, reminder_batch_t *b, char *errstr,
                        size_t errstr_size)
{
    char as_of[16];
    const char *params[1] = {hub_date_format(r->as_of, as_of, sizeof(as_of))};
    int err = HUB_OK;
    PGresult *res = PQexecParams(conn,
                                 "SELECT action_id, owner_group_id, due_date FROM meeting_actions"
                                 " WHERE recorded_at IS NOT NULL AND completed_on IS NULL"
                                 "   AND owner_group_id IS NOT NULL AND due_date < $1::date",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_fail(conn, res, "reading meeting_actions", errstr, errstr_size);
    for (int i = 0; i < PQntuples(res) && !err; i++) {
        hub_date_t due;
        const char *action = PQgetvalue(res, i, 0), *owner = PQgetvalue(res, i, 1);
        if (hub_date_parse(PQgetvalue(res, i, 2), &due) != HUB_OK ||
            strlen(owner) >= HUB_CODE_SIZE) {
            hub_log_warn("event=action_skipped reason=\"unreadable row\" action_id=%s", action);
            continue;
        }
        reminder_item_t *it = add_item(b);
        if (!it) {
            err = HUB_ENOMEM;
            break;
        }
        hub_event_t *ev = &it->ev;
        hub_meeting_action_overdue_t *a = &ev->u.action_overdue;
        ev->type = HUB_EVENT_MEETING_ACTION_OVERDUE;
        ev->occurred_at = r->now_ms;
        hub_strlcpy(ev->source, PRODUCER, sizeof(ev->source));
        hub_strlcpy(a->action_id, action, sizeof(a->action_id));
        hub_strlcpy(a->owner_group_id, owner, sizeof(a->owner_group_id));
        a->due_date = due;
        a->as_of = r->as_of;
        a->days_overdue = r->as_of - due;
        it->kind = hub_group_reminder_name(HUB_GROUP_ACTION_OVERDUE);
        b->found[HUB_GROUP_ACTION_OVERDUE]++;
        err = reminder_event_id(ev->type, it->kind, action, 1, due, owner, ev->event_id);
    }
    PQclear(res);
    if (err)
        return hub_errf(errstr, errstr_size, err, "building action notices failed");
    return HUB_OK;
}

/*
 * Groups that subscribe to GROUP_NOT_BRIEFED and were last briefed more than
 * the interval ago (one reminder per missed due date), or never (one reminder
 * until their first briefing).
 */
static int scan_briefings(PGconn *conn, const reminder_rules_t *r, reminder_batch_t *b,
                          char *errstr, size_t errstr_size)
{
    int err = HUB_OK;
    /* The calendar day of the last briefing in Europe/London, like every date in the hub. */
    PGresult *res = PQexecParams(conn,
                                 "SELECT group_id,"
                                 " (last_briefing_sent_at AT TIME ZONE 'Europe/London')::date"
                                 " FROM group_state WHERE last_briefing_sent_at IS NOT NULL",
                                 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_fail(conn, res, "reading group_state", errstr, errstr_size);
    for (size_t g = 0; g < r->groups->n && !err; g++) {
        const hub_group_t *grp = &r->groups->items[g];
        int has_last = 0;
        hub_date_t last = 0;
        if (!hub_group_wants(grp, HUB_GROUP_NOT_BRIEFED))
            continue;
        for (int i = 0; i < PQntuples(res); i++)
            if (strcmp(PQgetvalue(res, i, 0), grp->id) == 0 &&
                hub_date_parse(PQgetvalue(res, i, 1), &last) == HUB_OK)
                has_last = 1;
        hub_date_t due = has_last ? last + r->briefing_interval_days : 0;
        if (has_last && r->as_of <= due)
            continue;
        err = reminder_due(b, r, grp, HUB_GROUP_NOT_BRIEFED, NULL, has_last, due);
    }
    PQclear(res);
    if (err)
        return hub_errf(errstr, errstr_size, err, "building briefing reminders failed");
    return HUB_OK;
}

/* Drops the items reminder_emitted already holds. */
static int drop_known(PGconn *conn, reminder_batch_t *b, char *errstr, size_t errstr_size)
{
    char *ids = NULL;
    size_t len = 0;
    int err = HUB_OK;

    if (b->n == 0)
        return HUB_OK;
    /* An array literal of uuids (hex and hyphens only) passed as one parameter. */
    ids = malloc(b->n * (HUB_UUID_SIZE + 1) + 3);
    if (!ids)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    ids[len++] = '{';
    for (size_t i = 0; i < b->n; i++) {
        if (i)
            ids[len++] = ',';
        memcpy(ids + len, b->items[i].ev.event_id, HUB_UUID_SIZE - 1);
        len += HUB_UUID_SIZE - 1;
    }
    ids[len++] = '}';
    ids[len] = '\0';
    const char *params[1] = {ids};
    PGresult *res =
        PQexecParams(conn, "SELECT event_id FROM reminder_emitted WHERE event_id = ANY($1::uuid[])",
                     1, NULL, params, NULL, NULL, 0);
    free(ids);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_fail(conn, res, "reading reminder_emitted", errstr, errstr_size);
    for (size_t i = 0; i < b->n;) {
        int known = 0;
        for (int j = 0; j < PQntuples(res) && !known; j++)
            known = strcmp(PQgetvalue(res, j, 0), b->items[i].ev.event_id) == 0;
        if (known) {
            b->items[i] = b->items[--b->n];
            b->known++;
        } else {
            i++;
        }
    }
    PQclear(res);
    return err;
}

int reminder_scan(PGconn *conn, const reminder_rules_t *r, reminder_batch_t *b, char *errstr,
                  size_t errstr_size)
{
    int err;
    reminder_batch_free(b);
    /* One snapshot, so the three reads agree with each other. */
    PGresult *res = PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return pg_fail(conn, res, "BEGIN", errstr, errstr_size);
    PQclear(res);
    if ((err = scan_plans(conn, r, b, errstr, errstr_size)) == HUB_OK &&
        (err = scan_actions(conn, r, b, errstr, errstr_size)) == HUB_OK &&
        (err = scan_briefings(conn, r, b, errstr, errstr_size)) == HUB_OK)
        err = drop_known(conn, b, errstr, errstr_size);
    res = PQexec(conn, err ? "ROLLBACK" : "COMMIT");
    if (!err && PQresultStatus(res) != PGRES_COMMAND_OK)
        return pg_fail(conn, res, "COMMIT", errstr, errstr_size);
    PQclear(res);
    return err;
}

int reminder_record(PGconn *conn, const reminder_batch_t *b, hub_date_t as_of, char *errstr,
                    size_t errstr_size)
{
    char as_of_text[16], due[16];
    PGresult *res = PQexec(conn, "BEGIN");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return pg_fail(conn, res, "BEGIN", errstr, errstr_size);
    PQclear(res);
    hub_date_format(as_of, as_of_text, sizeof(as_of_text));
    for (size_t i = 0; i < b->n; i++) {
        const reminder_item_t *it = &b->items[i];
        int has_due =
            it->ev.type == HUB_EVENT_MEETING_ACTION_OVERDUE || it->ev.u.reminder.has_due_date;
        hub_date_t d = it->ev.type == HUB_EVENT_MEETING_ACTION_OVERDUE
                           ? it->ev.u.action_overdue.due_date
                           : it->ev.u.reminder.due_date;
        const char *params[6] = {it->ev.event_id,
                                 hub_event_type_name(it->ev.type),
                                 it->kind,
                                 reminder_item_group(it),
                                 has_due ? hub_date_format(d, due, sizeof(due)) : NULL,
                                 as_of_text};
        res = PQexecParams(conn,
                           "INSERT INTO reminder_emitted"
                           " (event_id, event_type, kind, group_id, due_date, as_of)"
                           " VALUES ($1::uuid, $2, $3, $4, $5::date, $6::date)"
                           " ON CONFLICT (event_id) DO NOTHING",
                           6, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            int err = pg_fail(conn, res, "recording reminders", errstr, errstr_size);
            res = PQexec(conn, "ROLLBACK");
            PQclear(res);
            return err;
        }
        PQclear(res);
    }
    res = PQexec(conn, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return pg_fail(conn, res, "COMMIT", errstr, errstr_size);
    PQclear(res);
    return HUB_OK;
}
