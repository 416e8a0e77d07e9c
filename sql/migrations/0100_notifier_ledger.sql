-- hub-notifier: the delivery ledger and the notifier's consumer offsets.
--
-- The notifier never sends twice for one event id: before mailing it looks
-- the event up in notification_deliveries, and it writes that row in the same
-- transaction as the next offset of the partition the event came from. Each
-- address of a group gets its own row in notification_recipients as soon as
-- the mail server has answered for it, so a restart in the middle of a group
-- resumes with the addresses not yet done. The role hub_notifier comes from
-- 0001_roles.sql.

-- One row per event the notifier finished with (delivered, refused, or not
-- for any address), written together with notifier_offsets.
CREATE TABLE notification_deliveries (
    event_id uuid PRIMARY KEY,
    event_type text NOT NULL
        CHECK (event_type IN ('ReminderDue', 'MeetingActionOverdue', 'BriefingRequested')),
    kind text NOT NULL, -- PLAN_DUE_SOON, PLAN_OVERDUE, GROUP_NOT_BRIEFED, ACTION_OVERDUE, BRIEFING
    group_id text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('DELIVERED', 'PARTIAL', 'REFUSED', 'NOT_SUBSCRIBED', 'UNKNOWN_GROUP')),
    recipients integer NOT NULL CHECK (recipients >= 0), -- addresses the server accepted
    refused integer NOT NULL CHECK (refused >= 0),       -- addresses refused for good
    message_id text NOT NULL,
    delivered_at timestamptz NOT NULL DEFAULT now(),
    topic text NOT NULL,
    "partition" integer NOT NULL,
    "offset" bigint NOT NULL,
    -- BriefingRequested only: the BriefingSent event produced after delivery.
    -- NULL while it is still to be produced (the notifier retries until it is).
    briefing_sent_event_id uuid,
    briefing_sent_at timestamptz
);

CREATE INDEX notification_deliveries_group ON notification_deliveries (group_id, delivered_at);
CREATE INDEX notification_deliveries_unannounced ON notification_deliveries (event_id)
    WHERE event_type = 'BriefingRequested' AND recipients > 0 AND briefing_sent_at IS NULL;

-- One row per (event, address) the mail server answered for: accepted, or
-- refused for good (5xx). Transient failures leave no row.
CREATE TABLE notification_recipients (
    event_id uuid NOT NULL,
    recipient text NOT NULL,
    group_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('DELIVERED', 'REFUSED')),
    smtp_code integer,
    message_id text NOT NULL,
    answered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, recipient)
);

-- Where each partition of the notifier's consumer group resumes. PostgreSQL
-- is the source of truth; the offsets committed to Kafka only show lag.
CREATE TABLE notifier_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    "partition" integer NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, "partition")
);

GRANT SELECT, INSERT, UPDATE ON notification_deliveries, notification_recipients, notifier_offsets
    TO hub_notifier;

-- The transitions subgroup may see what reached which group (no addresses).
GRANT SELECT ON notification_deliveries TO hub_subgroup;
