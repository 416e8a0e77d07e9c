-- hub-reminder: the reminders it has produced.
--
-- Reminder event ids are deterministic (UUIDv5 of what the reminder is about,
-- its kind and due date), so producing one twice is harmless downstream; this
-- table lets the reminder not produce it twice at all. A row is written only
-- after the broker acknowledged the event, so a crash in between produces the
-- same event id again on the next scan, never a lost reminder.
CREATE TABLE reminder_emitted (
    event_id   uuid PRIMARY KEY,
    event_type text NOT NULL CHECK (event_type IN ('ReminderDue', 'MeetingActionOverdue')),
    kind       text NOT NULL, -- PLAN_DUE_SOON, PLAN_OVERDUE, GROUP_NOT_BRIEFED, ACTION_OVERDUE
    group_id   text NOT NULL,
    due_date   date,
    as_of      date NOT NULL,
    emitted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reminder_emitted_as_of ON reminder_emitted (as_of);

-- hub_reminder reads the view, meeting_actions and group_state through
-- hub_transitions_readers (0004_access.sql); here only its own table.
REVOKE ALL ON reminder_emitted FROM PUBLIC;
GRANT SELECT, INSERT ON reminder_emitted TO hub_reminder;
