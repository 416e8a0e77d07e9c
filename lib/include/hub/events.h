/*
 * events.h: the hub's events as typed C structs (see schemas/ for the Avro
 * contracts and their documentation).
 *
 * Every field is stored inline (fixed-size strings, bit sets, day numbers), so
 * a hub_event_t can be decoded into again and again without allocating.
 * Strings longer than their buffer are invalid events, not truncated ones.
 */
#ifndef HUB_EVENTS_H
#define HUB_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/date.h"

#define HUB_UUID_SIZE        37 /* 36 characters + NUL */
#define HUB_SUBJECT_KEY_SIZE 65 /* 64 hex characters + NUL */
#define HUB_CODE_SIZE        65 /* agency codes, group ids, producer names, meeting refs */
#define HUB_TITLE_SIZE       257
#define HUB_LINK_SIZE        1025

typedef enum {
    HUB_EVENT_NONE = 0,
    HUB_EVENT_YOUNG_PERSON_FLAGGED,
    HUB_EVENT_TRANSITION_PLAN_DUE,
    HUB_EVENT_TRANSITION_PLAN_COMPLETED,
    HUB_EVENT_MEETING_ACTION_RECORDED,
    HUB_EVENT_MEETING_ACTION_COMPLETED,
    HUB_EVENT_MEETING_ACTION_OVERDUE,
    HUB_EVENT_REMINDER_DUE,
    HUB_EVENT_BRIEFING_REQUESTED,
    HUB_EVENT_BRIEFING_SENT,
    HUB_EVENT__COUNT
} hub_event_type_t;

/* Enum values equal the Avro symbol index in the v1 schemas. */
typedef enum {
    HUB_LA_LEICESTER = 0,
    HUB_LA_LEICESTERSHIRE,
    HUB_LA_RUTLAND,
    HUB_LA__COUNT
} hub_local_authority_t;

typedef enum {
    HUB_RISK_LOOKED_AFTER = 0,
    HUB_RISK_CHILD_IN_NEED,
    HUB_RISK_CHILD_PROTECTION_PLAN,
    HUB_RISK_SEXUAL_EXPLOITATION,
    HUB_RISK_CRIMINAL_EXPLOITATION,
    HUB_RISK_GANGS,
    HUB_RISK_COUNTY_LINES,
    HUB_RISK_CUCKOOING,
    HUB_RISK_DOMESTIC_ABUSE,
    HUB_RISK_EXTREMISM,
    HUB_RISK_MODERN_SLAVERY,
    HUB_RISK_TRAFFICKING,
    HUB_RISK__COUNT
} hub_risk_category_t;

/* A set of risk categories: bit (1u << hub_risk_category_t). */
typedef uint32_t hub_risk_set_t;
#define HUB_RISK_BIT(c) ((hub_risk_set_t)1u << (c))

typedef enum {
    HUB_RULE_PLAN_AT_17Y6M = 0,
    HUB_RULE_LOOKED_AFTER_16_PLUS_3M,
    HUB_RULE_LATE_REFERRAL,
    HUB_RULE_ADULT_SAFEGUARDING_REFERRAL,
    HUB_RULE__COUNT
} hub_transition_rule_t;

typedef enum {
    HUB_OUTCOME_PLAN_AGREED = 0,
    HUB_OUTCOME_CARE_ACT_ASSESSMENT_ARRANGED,
    HUB_OUTCOME_NO_ELIGIBLE_NEEDS,
    HUB_OUTCOME_DECLINED_SUPPORT,
    HUB_OUTCOME_MOVED_OUT_OF_AREA,
    HUB_OUTCOME__COUNT
} hub_plan_outcome_t;

typedef enum {
    HUB_ACTION_CARE_ACT_ASSESSMENT = 0,
    HUB_ACTION_TRANSITION_PLAN,
    HUB_ACTION_STRATEGY_MEETING,
    HUB_ACTION_INFORMATION_SHARING,
    HUB_ACTION_REFERRAL,
    HUB_ACTION_SAFETY_PLAN,
    HUB_ACTION_OTHER,
    HUB_ACTION__COUNT
} hub_action_kind_t;

typedef enum {
    HUB_REMINDER_PLAN_DUE_SOON = 0,
    HUB_REMINDER_PLAN_OVERDUE,
    HUB_REMINDER_GROUP_NOT_BRIEFED,
    HUB_REMINDER__COUNT
} hub_reminder_kind_t;

typedef struct {
    char subject_key[HUB_SUBJECT_KEY_SIZE];
    hub_local_authority_t local_authority;
    hub_date_t date_of_birth;
    hub_risk_set_t risk_categories;
    hub_date_t flagged_on;
} hub_young_person_flagged_t;

typedef struct {
    char subject_key[HUB_SUBJECT_KEY_SIZE];
    hub_local_authority_t local_authority;
    hub_date_t due_date;
    hub_transition_rule_t rule;
    char cause_event_id[HUB_UUID_SIZE];
    hub_risk_set_t risk_categories;
} hub_transition_plan_due_t;

typedef struct {
    char subject_key[HUB_SUBJECT_KEY_SIZE];
    hub_local_authority_t local_authority;
    hub_date_t completed_on;
    hub_plan_outcome_t outcome;
} hub_transition_plan_completed_t;

typedef struct {
    char action_id[HUB_UUID_SIZE];
    char meeting_id[HUB_CODE_SIZE];
    hub_date_t meeting_date;
    hub_action_kind_t kind;
    char owner_agency[HUB_CODE_SIZE];
    char owner_group_id[HUB_CODE_SIZE];
    hub_date_t due_date;
    int has_subject_key;
    char subject_key[HUB_SUBJECT_KEY_SIZE];
} hub_meeting_action_recorded_t;

typedef struct {
    char action_id[HUB_UUID_SIZE];
    hub_date_t completed_on;
} hub_meeting_action_completed_t;

typedef struct {
    char action_id[HUB_UUID_SIZE];
    char owner_group_id[HUB_CODE_SIZE];
    hub_date_t due_date;
    hub_date_t as_of;
    int32_t days_overdue;
} hub_meeting_action_overdue_t;

typedef struct {
    char group_id[HUB_CODE_SIZE];
    hub_reminder_kind_t kind;
    int has_subject_key;
    char subject_key[HUB_SUBJECT_KEY_SIZE];
    int has_due_date;
    hub_date_t due_date;
    hub_date_t as_of;
} hub_reminder_due_t;

typedef struct {
    char group_id[HUB_CODE_SIZE];
    char title[HUB_TITLE_SIZE];
    char link[HUB_LINK_SIZE];
} hub_briefing_requested_t;

typedef struct {
    char group_id[HUB_CODE_SIZE];
    char request_event_id[HUB_UUID_SIZE];
    int32_t recipients;
} hub_briefing_sent_t;

/*
 * One event. The header fields are common to every type; `source` holds the
 * schema's source_agency (partner events) or producer (hub-made events).
 */
typedef struct hub_event_s {
    hub_event_type_t type;
    char event_id[HUB_UUID_SIZE];
    int64_t occurred_at; /* Unix milliseconds, UTC */
    char source[HUB_CODE_SIZE];
    union {
        hub_young_person_flagged_t flagged;
        hub_transition_plan_due_t plan_due;
        hub_transition_plan_completed_t plan_completed;
        hub_meeting_action_recorded_t action_recorded;
        hub_meeting_action_completed_t action_completed;
        hub_meeting_action_overdue_t action_overdue;
        hub_reminder_due_t reminder;
        hub_briefing_requested_t briefing_requested;
        hub_briefing_sent_t briefing_sent;
    } u;
} hub_event_t;

/* hub_event_type_name: "YoungPersonFlagged", ...; NULL for an unknown type. */
const char *hub_event_type_name(hub_event_type_t type);

/* hub_event_type_from_name: the type named name, or HUB_EVENT_NONE. */
hub_event_type_t hub_event_type_from_name(const char *name);

/*
 * hub_event_topic_setting: the name of the topics.<name> setting this type is
 * published to ("risk_flags", "transition_alerts", "transition_plans",
 * "meeting_actions", "group_notifications"). NULL for an unknown type.
 */
const char *hub_event_topic_setting(hub_event_type_t type);

/* hub_event_key: the Kafka message key (subject_key, action_id or group_id). Borrowed. */
const char *hub_event_key(const hub_event_t *ev);

/* hub_event_source_field: "source_agency" or "producer", the schema's name for ev->source. */
const char *hub_event_source_field(hub_event_type_t type);

/* Symbol names, matching the Avro enums; NULL when out of range. */
const char *hub_local_authority_name(hub_local_authority_t la);
const char *hub_risk_category_name(hub_risk_category_t rc);
const char *hub_transition_rule_name(hub_transition_rule_t r);
const char *hub_plan_outcome_name(hub_plan_outcome_t o);
const char *hub_action_kind_name(hub_action_kind_t k);
const char *hub_reminder_kind_name(hub_reminder_kind_t k);

/* Reverse look-ups: the index of the symbol, or -1 when unknown. */
int hub_local_authority_from_name(const char *name);
int hub_risk_category_from_name(const char *name);
int hub_transition_rule_from_name(const char *name);
int hub_plan_outcome_from_name(const char *name);
int hub_action_kind_from_name(const char *name);
int hub_reminder_kind_from_name(const char *name);

/*
 * hub_event_to_json: the event as a JSON object with the schema's field names,
 * dates as "YYYY-MM-DD", timestamps as ISO 8601 UTC, enums as symbol names,
 * optional fields as null when absent. A new reference (json_decref it); NULL
 * only when out of memory.
 */
json_t *hub_event_to_json(const hub_event_t *ev);

/*
 * hub_event_json_text: the event as compact JSON text, byte for byte what
 * json_dumps(hub_event_to_json(ev), JSON_COMPACT) gives, without building a
 * jansson tree. Writes into buf (size bytes) and returns the length the full
 * text needs (excluding the NUL), like snprintf: when the result is >= size the
 * text was truncated and the caller should retry with a larger buffer.
 */
size_t hub_event_json_text(const hub_event_t *ev, char *buf, size_t size);

/*
 * hub_event_from_json: fills *ev (of the given type) from such an object.
 * Unknown fields, missing required fields, wrong JSON types, impossible dates,
 * unknown enum symbols and over-long strings are errors; the message names
 * the field but never repeats its value. Returns 0 or HUB_EVALID.
 *
 * For people writing JSON by hand: event_id may be left out (a random UUIDv4
 * is generated), occurred_at may be left out (now) or given as an integer of
 * Unix milliseconds, and optional fields may be null or left out. A
 * risk_categories array naming a category twice is an error. Only the
 * structure is checked here; hub_event_validate checks the values.
 */
int hub_event_from_json(hub_event_type_t type, const json_t *obj, hub_event_t *ev, char *errstr,
                        size_t errstr_size);

/*
 * Validation beyond the Avro types, applied before encoding and after
 * decoding: UUID shape of ids, subject_key = 64 lower-case hex, dates that
 * exist and are plausible (date of birth not in the future, not before 1900),
 * non-empty codes, https links, and (when agencies is not NULL) source and
 * owner agencies among the configured codes. Messages name the field, never
 * its value. Returns 0 or HUB_EVALID.
 */
typedef struct hub_validation_s {
    const char *const *agencies; /* known agency codes; NULL: do not check */
    size_t nagencies;
    int64_t now_ms; /* "now" for future-date checks; 0: the real clock */
} hub_validation_t;

int hub_event_validate(const hub_event_t *ev, const hub_validation_t *rules, char *errstr,
                       size_t errstr_size);

/* hub_uuid_valid: non-zero for the 8-4-4-4-12 hex shape (any version). */
int hub_uuid_valid(const char *s);

/* hub_uuid_parse: the 16 bytes of a UUID in the 8-4-4-4-12 hex shape. 0, or -1 (out
   unchanged) for anything else. */
int hub_uuid_parse(const char *s, unsigned char out[16]);

/* hub_subject_key_valid: non-zero for exactly 64 lower-case hex characters. */
int hub_subject_key_valid(const char *s);

/*
 * hub_uuid_v5: the name-based (SHA-1) UUID of name within namespace ns (a
 * UUID string), written into out as 36 characters + NUL. Deterministic event
 * ids are made this way. 0 or HUB_EINVAL when ns is not a UUID.
 */
int hub_uuid_v5(const char *ns, const void *name, size_t name_len, char out[HUB_UUID_SIZE]);

/* hub_uuid_v4: a random UUID into out. 0 or HUB_EIO if no randomness. */
int hub_uuid_v4(char out[HUB_UUID_SIZE]);

/*
 * hub_pseudonymise: the subject_key for an NHS number: lower-case hex
 * HMAC-SHA256 of its ten digits under secret. Spaces and hyphens in the input
 * are ignored; anything else, a length other than ten digits, or a failed
 * modulus-11 check digit is HUB_EINVAL (the message never repeats the number).
 */
int hub_pseudonymise(const char *nhs_number, const void *secret, size_t secret_len,
                     char out[HUB_SUBJECT_KEY_SIZE], char *errstr, size_t errstr_size);

#endif
