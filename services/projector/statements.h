/*
 * statements.h: the SQL rules of the projection, shared by both ways of
 * applying a batch (sets.c: the batch collapsed per key, one set-based
 * statement per table; apply.c: one prepared statement per event, pipelined).
 * Each ON CONFLICT rule merges an incoming row (EXCLUDED) into the stored one
 * (t) so that the result does not depend on arrival order: columns versioned
 * by (occurred_at, event_id) take the newer event's values, sets are unions,
 * counters add, dates keep their minimum or maximum.
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

/* The sorted, distinct elements of a text[] expression. Written out rather than calling
   hub_text_union: as a sub-select it is planned once per statement, and costs about half
   of the PL/pgSQL call (docs/performance.md). */
#define SORTED_SET(expr) "ARRAY(SELECT DISTINCT x FROM unnest(" expr ") AS x ORDER BY x)"

/* A set union that does nothing when nothing is new. */
#define UNION(col) \
    col " = CASE WHEN EXCLUDED." col " <@ t." col " THEN t." col \
    " ELSE " SORTED_SET("t." col " || EXCLUDED." col) " END"

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

/* The SET items of each event kind, without updated_at; a MERGE_* rule below
   is " ON CONFLICT ... DO UPDATE SET " plus the items of one or more kinds. */
#define SET_PLAN_DUE \
    PICK(NEWER_DUE, "due_date") ", " \
    PICK(NEWER_DUE, "rule") ", " \
    PICK(NEWER_DUE, "cause_event_id") ", " \
    PICK(NEWER_DUE, "alert_event_id") ", " \
    "due_at = GREATEST(t.due_at, EXCLUDED.due_at), "

#define SET_PLAN_COMPLETED \
    PICK(NEWER_DONE, "completed_on") ", " \
    PICK(NEWER_DONE, "outcome") ", " \
    PICK(NEWER_DONE, "completed_event_id") ", " \
    "completed_at = GREATEST(t.completed_at, EXCLUDED.completed_at), "

#define SET_ACTION_RECORDED \
    PICK(NEWER_REC, "meeting_id") ", " \
    PICK(NEWER_REC, "meeting_date") ", " \
    PICK(NEWER_REC, "kind") ", " \
    PICK(NEWER_REC, "owner_agency") ", " \
    PICK(NEWER_REC, "owner_group_id") ", " \
    PICK(NEWER_REC, "due_date") ", " \
    PICK(NEWER_REC, "subject_key") ", " \
    PICK(NEWER_REC, "recorded_event_id") ", " \
    "recorded_at = GREATEST(t.recorded_at, EXCLUDED.recorded_at), "

#define SET_ACTION_COMPLETED \
    PICK(NEWER_DONE, "completed_on") ", " \
    PICK(NEWER_DONE, "completed_event_id") ", " \
    "completed_at = GREATEST(t.completed_at, EXCLUDED.completed_at), "

#define SET_ACTION_OVERDUE \
    "overdue_notices = t.overdue_notices + EXCLUDED.overdue_notices, " \
    "last_overdue_as_of = GREATEST(t.last_overdue_as_of, EXCLUDED.last_overdue_as_of), "

#define SET_GROUP_REMINDERS \
    "reminders_received = t.reminders_received + EXCLUDED.reminders_received, " \
    "last_reminder_at = GREATEST(t.last_reminder_at, EXCLUDED.last_reminder_at), "

#define SET_GROUP_REQUESTED \
    PICK(NEWER_REQ, "last_briefing_title") ", " \
    PICK(NEWER_REQ, "last_request_event_id") ", " \
    "last_briefing_requested_at = GREATEST(t.last_briefing_requested_at," \
    " EXCLUDED.last_briefing_requested_at), "

#define SET_GROUP_SENT \
    "briefings_sent = t.briefings_sent + EXCLUDED.briefings_sent, " \
    PICK(NEWER_SENT, "last_briefing_recipients") ", " \
    PICK(NEWER_SENT, "last_sent_event_id") ", " \
    "last_briefing_sent_at = GREATEST(t.last_briefing_sent_at, EXCLUDED.last_briefing_sent_at), "

#define ON_PLAN   " ON CONFLICT (subject_key) DO UPDATE SET " MERGE_PLAN_AUTHORITY
#define ON_ACTION " ON CONFLICT (action_id) DO UPDATE SET "
#define ON_GROUP  " ON CONFLICT (group_id) DO UPDATE SET "

/* One event per statement (apply.c, per-event path). */
#define MERGE_PLAN_DUE         ON_PLAN SET_PLAN_DUE "updated_at = now()"
#define MERGE_PLAN_COMPLETED   ON_PLAN SET_PLAN_COMPLETED "updated_at = now()"
#define MERGE_ACTION_RECORDED  ON_ACTION SET_ACTION_RECORDED "updated_at = now()"
#define MERGE_ACTION_COMPLETED ON_ACTION SET_ACTION_COMPLETED "updated_at = now()"
#define MERGE_ACTION_OVERDUE   ON_ACTION SET_ACTION_OVERDUE "updated_at = now()"
#define MERGE_GROUP_REMINDERS  ON_GROUP SET_GROUP_REMINDERS "updated_at = now()"
#define MERGE_GROUP_REQUESTED  ON_GROUP SET_GROUP_REQUESTED "updated_at = now()"
#define MERGE_GROUP_SENT       ON_GROUP SET_GROUP_SENT "updated_at = now()"

/*
 * A batch's events of one key collapsed into one row (sets.c): the columns of
 * each kind come from that kind's newest event, or are NULL (counters 0) when
 * the batch has none, and NULL never wins a PICK nor a GREATEST. So one merge
 * of the collapsed row gives what merging its events one by one gives.
 */
#define MERGE_PLAN   ON_PLAN SET_PLAN_DUE SET_PLAN_COMPLETED "updated_at = now()"
#define MERGE_ACTION \
    ON_ACTION SET_ACTION_RECORDED SET_ACTION_COMPLETED SET_ACTION_OVERDUE "updated_at = now()"
#define MERGE_GROUP \
    ON_GROUP SET_GROUP_REMINDERS SET_GROUP_REQUESTED SET_GROUP_SENT "updated_at = now()"

/* clang-format on */

#endif
