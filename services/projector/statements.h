/*
 * statements.h: the SQL rules of the projection, shared by both ways of
 * applying a batch (apply.c: one prepared statement per event, pipelined;
 * staging.c: COPY into a staging table, then one set-based statement per event
 * type). Each ON CONFLICT rule merges an incoming row (EXCLUDED) into the
 * stored one (t) so that the result does not depend on arrival order:
 * columns versioned by (occurred_at, event_id) take the newer event's values,
 * sets are unions, counters add, dates keep their minimum or maximum.
 */
#ifndef HUB_PROJECTOR_STATEMENTS_H
#define HUB_PROJECTOR_STATEMENTS_H

/* clang-format off */

/* col takes the incoming value when cond (the incoming event is newer) holds. */
#define PICK(cond, col) col " = CASE WHEN " cond " THEN EXCLUDED." col " ELSE t." col " END"

/* The incoming event is newer than the one that set the columns versioned by (at, id). */
#define NEWER(at, id) \
    "(t." at " IS NULL OR (EXCLUDED." at ", EXCLUDED." id ") > (t." at ", t." id "))"

#define NEWER_FLAG NEWER("last_flag_at", "last_flag_event_id")
#define NEWER_LA   NEWER("la_at", "la_event_id")
#define NEWER_DUE  NEWER("due_at", "alert_event_id")
#define NEWER_DONE NEWER("completed_at", "completed_event_id")
#define NEWER_REC  NEWER("recorded_at", "recorded_event_id")
#define NEWER_REQ  NEWER("last_briefing_requested_at", "last_request_event_id")
#define NEWER_SENT NEWER("last_briefing_sent_at", "last_sent_event_id")

/* A set union that skips the function call when nothing is new. */
#define UNION(col) \
    col " = CASE WHEN EXCLUDED." col " <@ t." col " THEN t." col \
    " ELSE hub_text_union(t." col ", EXCLUDED." col ") END"

#define MERGE_YOUNG_PERSON \
    " ON CONFLICT (subject_key) DO UPDATE SET " \
    UNION("risk_categories") ", " \
    UNION("agencies") ", " \
    "first_flagged_on = LEAST(t.first_flagged_on, EXCLUDED.first_flagged_on), " \
    "last_flagged_on = GREATEST(t.last_flagged_on, EXCLUDED.last_flagged_on), " \
    PICK(NEWER_FLAG, "local_authority") ", " \
    PICK(NEWER_FLAG, "date_of_birth") ", " \
    PICK(NEWER_FLAG, "last_flag_event_id") ", " \
    "last_flag_at = GREATEST(t.last_flag_at, EXCLUDED.last_flag_at), " \
    "updated_at = now()"

#define MERGE_PLAN_AUTHORITY \
    PICK(NEWER_LA, "local_authority") ", " \
    PICK(NEWER_LA, "la_event_id") ", " \
    "la_at = GREATEST(t.la_at, EXCLUDED.la_at), "

#define MERGE_PLAN_DUE \
    " ON CONFLICT (subject_key) DO UPDATE SET " MERGE_PLAN_AUTHORITY \
    PICK(NEWER_DUE, "due_date") ", " \
    PICK(NEWER_DUE, "rule") ", " \
    PICK(NEWER_DUE, "cause_event_id") ", " \
    PICK(NEWER_DUE, "alert_event_id") ", " \
    "due_at = GREATEST(t.due_at, EXCLUDED.due_at), " \
    "updated_at = now()"

#define MERGE_PLAN_COMPLETED \
    " ON CONFLICT (subject_key) DO UPDATE SET " MERGE_PLAN_AUTHORITY \
    PICK(NEWER_DONE, "completed_on") ", " \
    PICK(NEWER_DONE, "outcome") ", " \
    PICK(NEWER_DONE, "completed_event_id") ", " \
    "completed_at = GREATEST(t.completed_at, EXCLUDED.completed_at), " \
    "updated_at = now()"

#define MERGE_ACTION_RECORDED \
    " ON CONFLICT (action_id) DO UPDATE SET " \
    PICK(NEWER_REC, "meeting_id") ", " \
    PICK(NEWER_REC, "meeting_date") ", " \
    PICK(NEWER_REC, "kind") ", " \
    PICK(NEWER_REC, "owner_agency") ", " \
    PICK(NEWER_REC, "owner_group_id") ", " \
    PICK(NEWER_REC, "due_date") ", " \
    PICK(NEWER_REC, "subject_key") ", " \
    PICK(NEWER_REC, "recorded_event_id") ", " \
    "recorded_at = GREATEST(t.recorded_at, EXCLUDED.recorded_at), " \
    "updated_at = now()"

#define MERGE_ACTION_COMPLETED \
    " ON CONFLICT (action_id) DO UPDATE SET " \
    PICK(NEWER_DONE, "completed_on") ", " \
    PICK(NEWER_DONE, "completed_event_id") ", " \
    "completed_at = GREATEST(t.completed_at, EXCLUDED.completed_at), " \
    "updated_at = now()"

#define MERGE_ACTION_OVERDUE \
    " ON CONFLICT (action_id) DO UPDATE SET " \
    "overdue_notices = t.overdue_notices + EXCLUDED.overdue_notices, " \
    "last_overdue_as_of = GREATEST(t.last_overdue_as_of, EXCLUDED.last_overdue_as_of), " \
    "updated_at = now()"

#define MERGE_GROUP_REMINDERS \
    " ON CONFLICT (group_id) DO UPDATE SET " \
    "reminders_received = t.reminders_received + EXCLUDED.reminders_received, " \
    "last_reminder_at = GREATEST(t.last_reminder_at, EXCLUDED.last_reminder_at), " \
    "updated_at = now()"

#define MERGE_GROUP_REQUESTED \
    " ON CONFLICT (group_id) DO UPDATE SET " \
    PICK(NEWER_REQ, "last_briefing_title") ", " \
    PICK(NEWER_REQ, "last_request_event_id") ", " \
    "last_briefing_requested_at = GREATEST(t.last_briefing_requested_at," \
    " EXCLUDED.last_briefing_requested_at), " \
    "updated_at = now()"

#define MERGE_GROUP_SENT \
    " ON CONFLICT (group_id) DO UPDATE SET " \
    "briefings_sent = t.briefings_sent + EXCLUDED.briefings_sent, " \
    PICK(NEWER_SENT, "last_briefing_recipients") ", " \
    PICK(NEWER_SENT, "last_sent_event_id") ", " \
    "last_briefing_sent_at = GREATEST(t.last_briefing_sent_at, EXCLUDED.last_briefing_sent_at), " \
    "updated_at = now()"

/* clang-format on */

#endif
