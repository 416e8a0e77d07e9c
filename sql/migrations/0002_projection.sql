-- The projected read model. Every state table remembers which event set each
-- group of columns ((occurred_at, event_id) of that event), so an older event
-- arriving late never overwrites newer state, whatever order Kafka delivers
-- partitions in. Sets (risk categories, agencies) are unions, and counters are
-- only bumped for an event id seen for the first time, so applying the same
-- events in any order gives the same rows.

-- The audit trail and replay source: every decoded event, once.
CREATE TABLE hub_event_log (
    event_id     uuid PRIMARY KEY,
    event_type   text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    kafka_offset bigint NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    event        jsonb NOT NULL
);
-- Retention prunes by received_at.
CREATE INDEX hub_event_log_received_at ON hub_event_log (received_at);

-- Sorted union of two text arrays, so sets compare equal however they were built.
CREATE FUNCTION hub_text_union(a text[], b text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}')
    FROM unnest(coalesce(a, '{}') || coalesce(b, '{}')) AS x
$$;

CREATE TABLE young_people (
    subject_key        text PRIMARY KEY CHECK (subject_key ~ '^[0-9a-f]{64}$'),
    local_authority    text NOT NULL
        CHECK (local_authority IN ('LEICESTER', 'LEICESTERSHIRE', 'RUTLAND')),
    date_of_birth      date NOT NULL,
    risk_categories    text[] NOT NULL, -- union over every flag
    agencies           text[] NOT NULL, -- every agency that flagged them
    first_flagged_on   date NOT NULL,
    last_flagged_on    date NOT NULL,
    -- The newest flag, which decides local_authority and date_of_birth.
    last_flag_at       timestamptz NOT NULL,
    last_flag_event_id uuid NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX young_people_local_authority ON young_people (local_authority);

-- Which agencies flagged whom, when, and for what.
CREATE TABLE young_person_flags (
    event_id        uuid PRIMARY KEY,
    subject_key     text NOT NULL,
    source_agency   text NOT NULL,
    local_authority text NOT NULL,
    flagged_on      date NOT NULL,
    risk_categories text[] NOT NULL,
    occurred_at     timestamptz NOT NULL
);
CREATE INDEX young_person_flags_subject ON young_person_flags (subject_key);

-- One plan per young person: the newest TransitionPlanDue and the newest
-- TransitionPlanCompleted. A completion counts unless a newer alert reopened
-- the plan.
CREATE TABLE transition_plans (
    subject_key        text PRIMARY KEY,
    local_authority    text NOT NULL
        CHECK (local_authority IN ('LEICESTER', 'LEICESTERSHIRE', 'RUTLAND')),
    la_at              timestamptz NOT NULL,
    la_event_id        uuid NOT NULL,
    due_date           date,
    rule               text,
    cause_event_id     uuid,
    alert_event_id     uuid,
    due_at             timestamptz,
    completed_on       date,
    outcome            text,
    completed_event_id uuid,
    completed_at       timestamptz,
    status             text GENERATED ALWAYS AS (
        CASE WHEN completed_at IS NOT NULL AND (due_at IS NULL OR completed_at >= due_at)
             THEN 'COMPLETED' ELSE 'OPEN' END) STORED,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Meeting actions. The recorded columns are NULL while only a later event
-- (completion, overdue notice) has arrived.
CREATE TABLE meeting_actions (
    action_id          uuid PRIMARY KEY,
    meeting_id         text,
    meeting_date       date,
    kind               text,
    owner_agency       text,
    owner_group_id     text,
    due_date           date,
    subject_key        text,
    recorded_at        timestamptz,
    recorded_event_id  uuid,
    completed_on       date,
    completed_at       timestamptz,
    completed_event_id uuid,
    status             text GENERATED ALWAYS AS (
        CASE WHEN completed_on IS NULL THEN 'OPEN' ELSE 'COMPLETED' END) STORED,
    overdue_notices    integer NOT NULL DEFAULT 0,
    last_overdue_as_of date,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- An action cannot fall due before the meeting that agreed it.
    CONSTRAINT meeting_actions_due_after_meeting CHECK (due_date >= meeting_date)
);
CREATE INDEX meeting_actions_subject ON meeting_actions (subject_key)
    WHERE subject_key IS NOT NULL;
CREATE INDEX meeting_actions_owner_group ON meeting_actions (owner_group_id);

CREATE TABLE group_state (
    group_id                 text PRIMARY KEY,
    last_briefing_title      text,
    last_briefing_requested_at timestamptz,
    last_request_event_id    uuid,
    last_briefing_sent_at    timestamptz,
    last_briefing_recipients integer,
    last_sent_event_id       uuid,
    briefings_sent           integer NOT NULL DEFAULT 0,
    reminders_received       integer NOT NULL DEFAULT 0,
    last_reminder_at         timestamptz,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reminders (
    event_id    uuid PRIMARY KEY,
    group_id    text NOT NULL,
    kind        text NOT NULL,
    subject_key text,
    due_date    date,
    as_of       date NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX reminders_subject ON reminders (subject_key) WHERE subject_key IS NOT NULL;
CREATE INDEX reminders_group ON reminders (group_id);

-- Rejected messages, from the projector's own rejects and from the
-- dead-letter topic's headers. No payload: the original bytes stay in the
-- dead-letter topic, at dlq_topic/dlq_partition/dlq_offset when known.
CREATE TABLE dead_letters (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reason_class     text NOT NULL,
    message          text NOT NULL,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    service          text NOT NULL,
    occurred_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    dlq_topic        text,
    dlq_partition    integer,
    dlq_offset       bigint,
    -- One row per rejection: a dead letter sent twice (a crash between send
    -- and commit) or seen both directly and on the topic is recorded once.
    CONSTRAINT dead_letters_once UNIQUE (service, source_topic, source_partition, source_offset)
);

-- Consumed positions, committed in the same transaction as the rows they produced.
CREATE TABLE hub_consumer_offsets (
    group_id    text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Moves a partition's position from expected to next, failing with SQLSTATE
-- HB001 when it is not at expected (-1: no row yet): another consumer moved
-- it (a zombie after a rebalance), so this transaction must not commit.
CREATE FUNCTION hub_advance_offset(p_group text, p_topic text, p_partition integer,
                                   p_expected bigint, p_next bigint) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_expected < 0 THEN
        INSERT INTO hub_consumer_offsets (group_id, topic, partition, next_offset)
        VALUES (p_group, p_topic, p_partition, p_next)
        ON CONFLICT DO NOTHING;
    ELSE
        UPDATE hub_consumer_offsets
        SET next_offset = p_next, updated_at = now()
        WHERE group_id = p_group AND topic = p_topic AND partition = p_partition
          AND next_offset = p_expected;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'partition %/% of group % is not at offset %', p_topic, p_partition,
            p_group, p_expected
            USING ERRCODE = 'HB001';
    END IF;
END
$$;
