/*
 * test_events.c: the typed events' catalogue, JSON conversion, validation,
 * UUIDs and pseudonymisation, checked against the Avro schemas themselves so
 * the C tables cannot drift from schemas/events/.
 */
#include <jansson.h>

#include "codec_cases.h"
#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"
#include "test.h"

#define SUBJECT "c97edffa2dd49a099a182a731258bb2ea4e160ed328b1f5338ffaaa6c374e111"
#define UUID1   "0b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b80"
#define UUID2   "6e0c2f1b-8d4a-4b9e-b1c3-5a7d9e2f0c41"

/* "Now" for every date rule below: 2025-06-15T12:00:00Z. */
static int64_t fixed_now(void)
{
    int64_t ms;
    if (hub_timestamp_parse("2025-06-15T12:00:00Z", &ms) != 0)
        TEST_FAIL_("cannot parse the fixed time");
    return ms;
}

/* One complete, valid event of each type, as JSON with every field present. */
static const struct {
    hub_event_type_t type;
    const char *json;
} samples[] = {
    {HUB_EVENT_YOUNG_PERSON_FLAGGED,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:00.250Z\","
     "\"source_agency\":\"LEICESTER_CS\",\"subject_key\":\"" SUBJECT "\","
     "\"local_authority\":\"LEICESTER\",\"date_of_birth\":\"2008-02-29\","
     "\"risk_categories\":[\"LOOKED_AFTER\",\"COUNTY_LINES\",\"TRAFFICKING\"],"
     "\"flagged_on\":\"2025-06-14\"}"},
    {HUB_EVENT_TRANSITION_PLAN_DUE,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:01.000Z\","
     "\"producer\":\"hub-planner\",\"subject_key\":\"" SUBJECT "\","
     "\"local_authority\":\"RUTLAND\",\"due_date\":\"2025-08-28\","
     "\"rule\":\"LOOKED_AFTER_16_PLUS_3M\",\"cause_event_id\":\"" UUID2 "\","
     "\"risk_categories\":[\"CHILD_IN_NEED\"]}"},
    {HUB_EVENT_TRANSITION_PLAN_COMPLETED,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:02.000Z\","
     "\"source_agency\":\"RUTLAND_ASC\",\"subject_key\":\"" SUBJECT "\","
     "\"local_authority\":\"LEICESTERSHIRE\",\"completed_on\":\"2025-06-13\","
     "\"outcome\":\"MOVED_OUT_OF_AREA\"}"},
    {HUB_EVENT_MEETING_ACTION_RECORDED,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:03.000Z\","
     "\"source_agency\":\"HUB_COORDINATOR\",\"action_id\":\"" UUID2 "\","
     "\"meeting_id\":\"LLR-EXPLOITATION-2025-06\",\"meeting_date\":\"2025-06-12\","
     "\"kind\":\"SAFETY_PLAN\",\"owner_agency\":\"LEICS_POLICE\","
     "\"owner_group_id\":\"llr-exploitation-group\",\"due_date\":\"2025-07-12\","
     "\"subject_key\":\"" SUBJECT "\"}"},
    {HUB_EVENT_MEETING_ACTION_COMPLETED,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:04.000Z\","
     "\"source_agency\":\"LEICS_POLICE\",\"action_id\":\"" UUID2 "\","
     "\"completed_on\":\"2025-06-14\"}"},
    {HUB_EVENT_MEETING_ACTION_OVERDUE,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:05.000Z\","
     "\"producer\":\"hub-reminder\",\"action_id\":\"" UUID2 "\","
     "\"owner_group_id\":\"llr-exploitation-group\",\"due_date\":\"2025-06-01\","
     "\"as_of\":\"2025-06-14\",\"days_overdue\":13}"},
    {HUB_EVENT_REMINDER_DUE,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:06.000Z\","
     "\"producer\":\"hub-reminder\",\"group_id\":\"city-transitions-board\","
     "\"kind\":\"PLAN_DUE_SOON\",\"subject_key\":\"" SUBJECT "\","
     "\"due_date\":\"2025-07-01\",\"as_of\":\"2025-06-14\"}"},
    {HUB_EVENT_BRIEFING_REQUESTED,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:07.000Z\","
     "\"source_agency\":\"HUB_COORDINATOR\",\"group_id\":\"llr-spe-group\","
     "\"title\":\"Transitions briefing \\u2013 June\","
     "\"link\":\"https://docs.llr.example/briefings/2025-06.pdf\"}"},
    {HUB_EVENT_BRIEFING_SENT,
     "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:08.000Z\","
     "\"producer\":\"hub-notifier\",\"group_id\":\"llr-spe-group\","
     "\"request_event_id\":\"" UUID2 "\",\"recipients\":0}"},
};

static json_t *load_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!j)
        TEST_FAIL_("bad JSON in the test (%s): %s", jerr.text, text);
    return j;
}

static const char *sample_json(hub_event_type_t type)
{
    for (size_t i = 0; i < HUB_ARRAY_LEN(samples); i++)
        if (samples[i].type == type)
            return samples[i].json;
    TEST_FAIL_("no sample for type %d", (int)type);
}

static void parse_event(hub_event_type_t type, const char *text, hub_event_t *ev)
{
    char errstr[256] = "";
    json_t *j = load_json(text);
    ASSERT_OK(hub_event_from_json(type, j, ev, errstr, sizeof(errstr)), errstr);
    json_decref(j);
}

static void test_type_catalogue(void)
{
    static const struct {
        hub_event_type_t type;
        const char *name, *topic, *source;
    } cases[] = {
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "YoungPersonFlagged", "risk_flags", "source_agency"},
        {HUB_EVENT_TRANSITION_PLAN_DUE, "TransitionPlanDue", "transition_alerts", "producer"},
        {HUB_EVENT_TRANSITION_PLAN_COMPLETED, "TransitionPlanCompleted", "transition_plans",
         "source_agency"},
        {HUB_EVENT_MEETING_ACTION_RECORDED, "MeetingActionRecorded", "meeting_actions",
         "source_agency"},
        {HUB_EVENT_MEETING_ACTION_COMPLETED, "MeetingActionCompleted", "meeting_actions",
         "source_agency"},
        {HUB_EVENT_MEETING_ACTION_OVERDUE, "MeetingActionOverdue", "meeting_actions", "producer"},
        {HUB_EVENT_REMINDER_DUE, "ReminderDue", "group_notifications", "producer"},
        {HUB_EVENT_BRIEFING_REQUESTED, "BriefingRequested", "group_notifications", "source_agency"},
        {HUB_EVENT_BRIEFING_SENT, "BriefingSent", "group_notifications", "producer"},
    };
    ASSERT_INT_EQ(HUB_ARRAY_LEN(cases), HUB_EVENT__COUNT - 1);
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        ASSERT_STR_EQ(hub_event_type_name(cases[i].type), cases[i].name);
        ASSERT_INT_EQ(hub_event_type_from_name(cases[i].name), cases[i].type);
        ASSERT_STR_EQ(hub_event_topic_setting(cases[i].type), cases[i].topic);
        ASSERT_STR_EQ(hub_event_source_field(cases[i].type), cases[i].source);
    }
    ASSERT_TRUE(hub_event_type_name(HUB_EVENT_NONE) == NULL);
    ASSERT_TRUE(hub_event_type_name(HUB_EVENT__COUNT) == NULL);
    ASSERT_TRUE(hub_event_topic_setting(HUB_EVENT_NONE) == NULL);
    ASSERT_TRUE(hub_event_source_field(HUB_EVENT__COUNT) == NULL);
    ASSERT_INT_EQ(hub_event_type_from_name("youngpersonflagged"), HUB_EVENT_NONE);
    ASSERT_INT_EQ(hub_event_type_from_name(""), HUB_EVENT_NONE);
    ASSERT_INT_EQ(hub_event_type_from_name(NULL), HUB_EVENT_NONE);
}

static void test_keys(void)
{
    static const struct {
        hub_event_type_t type;
        const char *key;
    } cases[] = {
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, SUBJECT},
        {HUB_EVENT_TRANSITION_PLAN_DUE, SUBJECT},
        {HUB_EVENT_TRANSITION_PLAN_COMPLETED, SUBJECT},
        {HUB_EVENT_MEETING_ACTION_RECORDED, UUID2},
        {HUB_EVENT_MEETING_ACTION_COMPLETED, UUID2},
        {HUB_EVENT_MEETING_ACTION_OVERDUE, UUID2},
        {HUB_EVENT_REMINDER_DUE, "city-transitions-board"},
        {HUB_EVENT_BRIEFING_REQUESTED, "llr-spe-group"},
        {HUB_EVENT_BRIEFING_SENT, "llr-spe-group"},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        hub_event_t ev;
        parse_event(cases[i].type, sample_json(cases[i].type), &ev);
        ASSERT_STR_EQ(hub_event_key(&ev), cases[i].key);
    }
}

/* ---- the C tables against the .avsc files ---------------------------------- */

static json_t *load_schema(const char *type_name)
{
    char path[1024], errstr[512] = "";
    json_error_t jerr;
    snprintf(path, sizeof(path), "%s/schemas/events/%s.v1.avsc", hub_data_dir(), type_name);
    char *text = hub_read_file(path, NULL, errstr, sizeof(errstr));
    if (!text)
        TEST_FAIL_("%s", errstr);
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        TEST_FAIL_("%s:%d: %s", path, jerr.line, jerr.text);
    free(text);
    return j;
}

/* Finds the definition of the enum named `name` anywhere inside a schema. */
static const json_t *find_enum(const json_t *node, const char *name)
{
    if (json_is_object(node)) {
        const char *k;
        const json_t *v;
        if (json_is_string(json_object_get(node, "type")) &&
            strcmp(json_string_value(json_object_get(node, "type")), "enum") == 0 &&
            strcmp(json_string_value(json_object_get(node, "name")), name) == 0)
            return node;
        json_object_foreach((json_t *)node, k, v)
        {
            const json_t *found = find_enum(v, name);
            if (found)
                return found;
        }
    } else if (json_is_array(node)) {
        size_t i;
        const json_t *v;
        json_array_foreach(node, i, v)
        {
            const json_t *found = find_enum(v, name);
            if (found)
                return found;
        }
    }
    return NULL;
}

typedef const char *(*sym_name_fn)(int);
typedef int (*sym_index_fn)(const char *);

static const char *la_name(int v)
{
    return hub_local_authority_name((hub_local_authority_t)v);
}
static const char *risk_name(int v)
{
    return hub_risk_category_name((hub_risk_category_t)v);
}
static const char *rule_name(int v)
{
    return hub_transition_rule_name((hub_transition_rule_t)v);
}
static const char *outcome_name(int v)
{
    return hub_plan_outcome_name((hub_plan_outcome_t)v);
}
static const char *action_kind_name(int v)
{
    return hub_action_kind_name((hub_action_kind_t)v);
}
static const char *reminder_kind_name(int v)
{
    return hub_reminder_kind_name((hub_reminder_kind_t)v);
}

static void test_enum_tables_match_schemas(void)
{
    static const struct {
        const char *schema, *enum_name;
        int count;
        sym_name_fn name;
        sym_index_fn index;
    } cases[] = {
        {"YoungPersonFlagged", "LocalAuthority", HUB_LA__COUNT, la_name,
         hub_local_authority_from_name},
        {"TransitionPlanDue", "LocalAuthority", HUB_LA__COUNT, la_name,
         hub_local_authority_from_name},
        {"TransitionPlanCompleted", "LocalAuthority", HUB_LA__COUNT, la_name,
         hub_local_authority_from_name},
        {"YoungPersonFlagged", "RiskCategory", HUB_RISK__COUNT, risk_name,
         hub_risk_category_from_name},
        {"TransitionPlanDue", "RiskCategory", HUB_RISK__COUNT, risk_name,
         hub_risk_category_from_name},
        {"TransitionPlanDue", "TransitionRule", HUB_RULE__COUNT, rule_name,
         hub_transition_rule_from_name},
        {"TransitionPlanCompleted", "PlanOutcome", HUB_OUTCOME__COUNT, outcome_name,
         hub_plan_outcome_from_name},
        {"MeetingActionRecorded", "ActionKind", HUB_ACTION__COUNT, action_kind_name,
         hub_action_kind_from_name},
        {"ReminderDue", "ReminderKind", HUB_REMINDER__COUNT, reminder_kind_name,
         hub_reminder_kind_from_name},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        json_t *schema = load_schema(cases[i].schema);
        const json_t *en = find_enum(schema, cases[i].enum_name);
        if (!en)
            TEST_FAIL_("%s.v1.avsc defines no enum %s", cases[i].schema, cases[i].enum_name);
        const json_t *symbols = json_object_get(en, "symbols");
        ASSERT_INT_EQ(json_array_size(symbols), cases[i].count);
        for (int s = 0; s < cases[i].count; s++) {
            const char *sym = json_string_value(json_array_get(symbols, (size_t)s));
            ASSERT_STR_EQ(cases[i].name(s), sym);
            ASSERT_INT_EQ(cases[i].index(sym), s);
        }
        ASSERT_TRUE(cases[i].name(cases[i].count) == NULL);
        ASSERT_TRUE(cases[i].name(-1) == NULL);
        ASSERT_INT_EQ(cases[i].index("NOT_A_SYMBOL"), -1);
        json_decref(schema);
    }
}

/* hub_event_to_json's keys are exactly the schema's field names, in the schema's order. */
static void test_json_fields_match_schemas(void)
{
    for (int t = HUB_EVENT_NONE + 1; t < HUB_EVENT__COUNT; t++) {
        hub_event_t ev;
        parse_event((hub_event_type_t)t, sample_json((hub_event_type_t)t), &ev);
        json_t *schema = load_schema(hub_event_type_name((hub_event_type_t)t));
        json_t *obj = hub_event_to_json(&ev);
        ASSERT_TRUE(obj != NULL);
        const json_t *fields = json_object_get(schema, "fields");
        ASSERT_INT_EQ(json_object_size(obj), json_array_size(fields));
        size_t i = 0;
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v)
        {
            const char *want =
                json_string_value(json_object_get(json_array_get(fields, i++), "name"));
            ASSERT_STR_EQ(key, want);
        }
        json_decref(obj);
        json_decref(schema);
    }
}

/* ---- JSON round trips ----------------------------------------------------- */

static void test_json_round_trip(void)
{
    hub_validation_t rules = {NULL, 0, fixed_now()};
    for (size_t i = 0; i < HUB_ARRAY_LEN(samples); i++) {
        char errstr[256] = "";
        hub_event_t ev, again;
        json_t *in = load_json(samples[i].json);
        ASSERT_OK(hub_event_from_json(samples[i].type, in, &ev, errstr, sizeof(errstr)), errstr);
        ASSERT_OK(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), errstr);
        json_t *out = hub_event_to_json(&ev);
        ASSERT_TRUE(out != NULL);
        if (!json_equal(in, out)) {
            char *a = json_dumps(in, JSON_COMPACT), *b = json_dumps(out, JSON_COMPACT);
            TEST_FAIL_("%s: JSON round trip differs:\n  in:  %s\n  out: %s",
                       hub_event_type_name(samples[i].type), a, b);
        }
        ASSERT_OK(hub_event_from_json(samples[i].type, out, &again, errstr, sizeof(errstr)),
                  errstr);
        ASSERT_TRUE(memcmp(&ev, &again, sizeof(ev)) == 0);
        json_decref(in);
        json_decref(out);
    }
}

static void test_json_values(void)
{
    hub_event_t ev;
    hub_date_t d;

    parse_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, sample_json(HUB_EVENT_YOUNG_PERSON_FLAGGED), &ev);
    ASSERT_INT_EQ(ev.type, HUB_EVENT_YOUNG_PERSON_FLAGGED);
    ASSERT_STR_EQ(ev.event_id, UUID1);
    ASSERT_STR_EQ(ev.source, "LEICESTER_CS");
    ASSERT_INT_EQ(ev.u.flagged.local_authority, HUB_LA_LEICESTER);
    hub_date_from_ymd(2008, 2, 29, &d);
    ASSERT_INT_EQ(ev.u.flagged.date_of_birth, d);
    ASSERT_INT_EQ(ev.u.flagged.risk_categories, HUB_RISK_BIT(HUB_RISK_LOOKED_AFTER) |
                                                    HUB_RISK_BIT(HUB_RISK_COUNTY_LINES) |
                                                    HUB_RISK_BIT(HUB_RISK_TRAFFICKING));
    int64_t ms;
    hub_timestamp_parse("2025-06-14T09:30:00.250Z", &ms);
    ASSERT_INT_EQ(ev.occurred_at, ms);

    /* Optional fields: null and absent both mean "not present", and come back as null. */
    static const char *const optional[] = {
        "{\"producer\":\"hub-reminder\",\"group_id\":\"g\",\"kind\":\"GROUP_NOT_BRIEFED\","
        "\"subject_key\":null,\"due_date\":null,\"as_of\":\"2025-06-14\"}",
        "{\"producer\":\"hub-reminder\",\"group_id\":\"g\",\"kind\":\"GROUP_NOT_BRIEFED\","
        "\"as_of\":\"2025-06-14\"}",
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(optional); i++) {
        parse_event(HUB_EVENT_REMINDER_DUE, optional[i], &ev);
        ASSERT_INT_EQ(ev.u.reminder.has_subject_key, 0);
        ASSERT_INT_EQ(ev.u.reminder.has_due_date, 0);
        json_t *out = hub_event_to_json(&ev);
        ASSERT_TRUE(json_is_null(json_object_get(out, "subject_key")));
        ASSERT_TRUE(json_is_null(json_object_get(out, "due_date")));
        json_decref(out);
    }

    /* Omitted event_id: a fresh UUIDv4 each time; omitted occurred_at: now. */
    char first[HUB_UUID_SIZE];
    int64_t before = hub_now_ms();
    parse_event(HUB_EVENT_REMINDER_DUE, optional[1], &ev);
    ASSERT_TRUE(hub_uuid_valid(ev.event_id));
    ASSERT_INT_EQ(ev.event_id[14], '4');
    ASSERT_INT_OP(ev.occurred_at, >=, before);
    ASSERT_INT_OP(ev.occurred_at, <=, hub_now_ms());
    memcpy(first, ev.event_id, sizeof(first));
    parse_event(HUB_EVENT_REMINDER_DUE, optional[1], &ev);
    ASSERT_TRUE(strcmp(first, ev.event_id) != 0);

    /* occurred_at as epoch milliseconds, or with an offset. */
    parse_event(HUB_EVENT_MEETING_ACTION_COMPLETED,
                "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\","
                "\"completed_on\":\"2025-06-14\",\"occurred_at\":1749893400250}",
                &ev);
    ASSERT_INT_EQ(ev.occurred_at, 1749893400250LL);
    parse_event(
        HUB_EVENT_MEETING_ACTION_COMPLETED,
        "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\","
        "\"completed_on\":\"2025-06-14\",\"occurred_at\":\"2025-06-14T10:30:00.250+01:00\"}",
        &ev);
    ASSERT_INT_EQ(ev.occurred_at, 1749893400250LL);

    /* An empty risk set is structurally fine for TransitionPlanDue. */
    parse_event(HUB_EVENT_TRANSITION_PLAN_DUE,
                "{\"producer\":\"hub-planner\",\"subject_key\":\"" SUBJECT "\","
                "\"local_authority\":\"RUTLAND\",\"due_date\":\"2025-08-28\","
                "\"rule\":\"LATE_REFERRAL\",\"cause_event_id\":\"" UUID2 "\","
                "\"risk_categories\":[]}",
                &ev);
    ASSERT_INT_EQ(ev.u.plan_due.risk_categories, 0);
}

/* ---- from_json errors ---------------------------------------------------------- */

static void test_json_errors(void)
{
    static const struct {
        hub_event_type_t type;
        const char *json;
        const char *expect; /* substring of the message */
        const char *secret; /* must not appear in the message */
    } cases[] = {
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "[1,2]", "must be a JSON object", NULL},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "\"x\"", "must be a JSON object", NULL},
        {HUB_EVENT_NONE, "{}", "unknown event type", NULL},
        /* missing required fields */
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"action_id\":\"" UUID2 "\",\"completed_on\":\"2025-06-14\"}", "source_agency: missing",
         NULL},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\"}", "completed_on: missing", NULL},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":null,\"completed_on\":\"2025-06-14\"}",
         "action_id: must not be null", NULL},
        /* unknown fields, including the other header's source field */
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\",\"completed_on\":\"2025-06-14\","
         "\"nhs_number\":\"9434765919\"}",
         "nhs_number: unknown field", "9434765919"},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"producer\":\"x\",\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\","
         "\"completed_on\":\"2025-06-14\"}",
         "producer: unknown field", NULL},
        /* wrong JSON types */
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":42,\"completed_on\":\"2025-06-14\"}",
         "action_id: must be a string", NULL},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\",\"completed_on\":20250614}",
         "completed_on: must be a date string", NULL},
        {HUB_EVENT_BRIEFING_SENT,
         "{\"producer\":\"n\",\"group_id\":\"g\",\"request_event_id\":\"" UUID2 "\","
         "\"recipients\":\"3\"}",
         "recipients: must be an integer", NULL},
        {HUB_EVENT_BRIEFING_SENT,
         "{\"producer\":\"n\",\"group_id\":\"g\",\"request_event_id\":\"" UUID2 "\","
         "\"recipients\":1.5}",
         "recipients: must be an integer", NULL},
        {HUB_EVENT_BRIEFING_SENT,
         "{\"producer\":\"n\",\"group_id\":\"g\",\"request_event_id\":\"" UUID2 "\","
         "\"recipients\":4294967296}",
         "recipients: out of the 32-bit range", NULL},
        {HUB_EVENT_TRANSITION_PLAN_COMPLETED,
         "{\"source_agency\":\"A\",\"subject_key\":\"" SUBJECT "\",\"local_authority\":1,"
         "\"completed_on\":\"2025-06-13\",\"outcome\":\"PLAN_AGREED\"}",
         "local_authority: must be a symbol string", NULL},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\",\"completed_on\":\"2025-06-14\","
         "\"occurred_at\":true}",
         "occurred_at: must be an ISO 8601 timestamp string or epoch milliseconds", NULL},
        /* impossible dates and timestamps */
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\",\"completed_on\":\"2023-02-29\"}",
         "completed_on: not an existing date", "2023-02-29"},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\",\"completed_on\":\"2025-13-01\"}",
         "completed_on: not an existing date", "2025-13-01"},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\",\"completed_on\":\"14/06/2025\"}",
         "completed_on: not an existing date", "14/06/2025"},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2 "\",\"completed_on\":\"2025-06-14\","
         "\"occurred_at\":\"2025-06-14 10:00\"}",
         "occurred_at: not an ISO 8601 timestamp", "10:00"},
        /* unknown enum symbols, bad risk arrays */
        {HUB_EVENT_TRANSITION_PLAN_COMPLETED,
         "{\"source_agency\":\"A\",\"subject_key\":\"" SUBJECT "\",\"local_authority\":\"NOTTS\","
         "\"completed_on\":\"2025-06-13\",\"outcome\":\"PLAN_AGREED\"}",
         "local_authority: not a known symbol", "NOTTS"},
        {HUB_EVENT_TRANSITION_PLAN_COMPLETED,
         "{\"source_agency\":\"A\",\"subject_key\":\"" SUBJECT
         "\",\"local_authority\":\"leicester\","
         "\"completed_on\":\"2025-06-13\",\"outcome\":\"PLAN_AGREED\"}",
         "local_authority: not a known symbol", "leicester"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED,
         "{\"source_agency\":\"A\",\"subject_key\":\"" SUBJECT "\",\"local_authority\":\"RUTLAND\","
         "\"date_of_birth\":\"2008-01-01\",\"risk_categories\":\"GANGS\",\"flagged_on\":\"2025-06-"
         "01\"}",
         "risk_categories: must be an array", NULL},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED,
         "{\"source_agency\":\"A\",\"subject_key\":\"" SUBJECT "\",\"local_authority\":\"RUTLAND\","
         "\"date_of_birth\":\"2008-01-01\",\"risk_categories\":[\"GANGS\",\"GANGS\"],"
         "\"flagged_on\":\"2025-06-01\"}",
         "risk_categories: entry 2 repeats a symbol", NULL},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED,
         "{\"source_agency\":\"A\",\"subject_key\":\"" SUBJECT "\",\"local_authority\":\"RUTLAND\","
         "\"date_of_birth\":\"2008-01-01\",\"risk_categories\":[\"GANGS\",\"BURGLARY\"],"
         "\"flagged_on\":\"2025-06-01\"}",
         "risk_categories: entry 2 is not a known symbol", "BURGLARY"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED,
         "{\"source_agency\":\"A\",\"subject_key\":\"" SUBJECT "\",\"local_authority\":\"RUTLAND\","
         "\"date_of_birth\":\"2008-01-01\",\"risk_categories\":[5],\"flagged_on\":\"2025-06-01\"}",
         "risk_categories: entry 1 must be a string", NULL},
        /* over-long strings and embedded NULs */
        {HUB_EVENT_BRIEFING_SENT,
         "{\"producer\":\"n\",\"group_id\":\"g123456789g123456789g123456789g123456789g123456789"
         "g123456789g1234\",\"request_event_id\":\"" UUID2 "\",\"recipients\":1}",
         "group_id: longer than 64 characters", "g123456789"},
        {HUB_EVENT_MEETING_ACTION_COMPLETED,
         "{\"source_agency\":\"LPT\",\"action_id\":\"" UUID2
         "-0\",\"completed_on\":\"2025-06-14\"}",
         "action_id: longer than 36 characters", UUID2},
        {HUB_EVENT_BRIEFING_SENT,
         "{\"producer\":\"n\",\"group_id\":\"a\\u0000b\",\"request_event_id\":\"" UUID2 "\","
         "\"recipients\":1}",
         "group_id: must not contain a NUL", NULL},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        char errstr[256] = "";
        hub_event_t ev;
        json_error_t jerr;
        json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
        if (!j)
            TEST_FAIL_("case %zu: bad JSON in the test: %s", i, jerr.text);
        int r = hub_event_from_json(cases[i].type, j, &ev, errstr, sizeof(errstr));
        if (r != HUB_EVALID)
            TEST_FAIL_("case %zu: expected HUB_EVALID, got %d for %s", i, r, cases[i].json);
        ASSERT_STR_CONTAINS(errstr, cases[i].expect);
        if (cases[i].secret && strstr(errstr, cases[i].secret))
            TEST_FAIL_("case %zu: message \"%s\" repeats the value \"%s\"", i, errstr,
                       cases[i].secret);
        json_decref(j);
    }
}

/* ---- JSON text ------------------------------------------------------------------ */

/* The jansson path the projector used: the tree dumped with JSON_COMPACT. Caller frees. */
static char *jansson_text(const hub_event_t *ev)
{
    json_t *obj = hub_event_to_json(ev);
    ASSERT_TRUE(obj != NULL);
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    ASSERT_TRUE(s != NULL);
    return s;
}

/* Asserts hub_event_json_text gives exactly the jansson text for ev. */
static void assert_text_matches(const hub_event_t *ev, const char *what)
{
    static char buf[16384];
    char *want = jansson_text(ev);
    size_t n = hub_event_json_text(ev, buf, sizeof(buf));
    const char *type = hub_event_type_name(ev->type);

    ASSERT_INT_OP(n, <, sizeof(buf));
    if (n != strlen(want) || memcmp(buf, want, n + 1) != 0)
        TEST_FAIL_(
            "%s (%s): hub_event_json_text differs from jansson\n  jansson: %s\n  text:    %s", what,
            type ? type : "no type", want, buf);
    free(want);
}

/* codec_cases() plus its first event of each type, so every type is covered. */
static int fixture_events(hub_event_t *cases, hub_event_t *per_type)
{
    int n = codec_cases(cases);
    int found = 0;
    for (int t = HUB_EVENT_NONE + 1; t < HUB_EVENT__COUNT; t++)
        for (int i = 0; i < n; i++)
            if (cases[i].type == (hub_event_type_t)t) {
                per_type[t] = cases[i];
                found++;
                break;
            }
    ASSERT_INT_EQ(found, HUB_EVENT__COUNT - 1);
    return n;
}

static void test_json_text_fixtures(void)
{
    hub_event_t cases[CODEC_CASES_MAX], per_type[HUB_EVENT__COUNT], ev;
    int n = fixture_events(cases, per_type);
    char what[64];

    for (size_t i = 0; i < HUB_ARRAY_LEN(samples); i++) {
        parse_event(samples[i].type, samples[i].json, &ev);
        assert_text_matches(&ev, "sample");
    }
    for (int i = 0; i < n; i++) {
        snprintf(what, sizeof(what), "codec case %d", i);
        assert_text_matches(&cases[i], what);
    }

    /* The exact text of one event, so the comparison above is not with an empty string. */
    char buf[1024];
    parse_event(HUB_EVENT_MEETING_ACTION_COMPLETED, sample_json(HUB_EVENT_MEETING_ACTION_COMPLETED),
                &ev);
    ASSERT_INT_EQ(hub_event_json_text(&ev, buf, sizeof(buf)), strlen(buf));
    ASSERT_STR_EQ(buf, "{\"event_id\":\"" UUID1 "\",\"occurred_at\":\"2025-06-14T09:30:04.000Z\","
                       "\"source_agency\":\"LEICS_POLICE\",\"action_id\":\"" UUID2 "\","
                       "\"completed_on\":\"2025-06-14\"}");

    /* No type: an empty object, as hub_event_to_json gives. */
    ev.type = HUB_EVENT_NONE;
    assert_text_matches(&ev, "no type");
    ASSERT_INT_EQ(hub_event_json_text(&ev, buf, sizeof(buf)), 2);
    ASSERT_STR_EQ(buf, "{}");
    ev.type = HUB_EVENT__COUNT;
    assert_text_matches(&ev, "type out of range");

    /* Optional fields absent, in both types that have them. */
    ev = per_type[HUB_EVENT_REMINDER_DUE];
    ev.u.reminder.has_subject_key = 0;
    ev.u.reminder.has_due_date = 0;
    assert_text_matches(&ev, "optional fields absent");
    ev = per_type[HUB_EVENT_MEETING_ACTION_RECORDED];
    ev.u.action_recorded.has_subject_key = 0;
    assert_text_matches(&ev, "optional subject_key absent");
    ev.u.action_recorded.has_subject_key = 1;
    assert_text_matches(&ev, "optional subject_key present");

    /* Enums: every symbol, and values outside the table (null). */
    for (int v = -2; v <= HUB_OUTCOME__COUNT + 1; v++) {
        ev = per_type[HUB_EVENT_TRANSITION_PLAN_COMPLETED];
        ev.u.plan_completed.outcome = (hub_plan_outcome_t)v;
        ev.u.plan_completed.local_authority = (hub_local_authority_t)(v % (HUB_LA__COUNT + 1));
        assert_text_matches(&ev, "enum values");
    }
    for (int v = -1; v <= HUB_ACTION__COUNT; v++) {
        ev = per_type[HUB_EVENT_MEETING_ACTION_RECORDED];
        ev.u.action_recorded.kind = (hub_action_kind_t)v;
        assert_text_matches(&ev, "action kinds");
    }

    /* Risk sets: empty, each category alone, all, and bits beyond the categories. */
    static const hub_risk_set_t sets[] = {0, HUB_RISK_BIT(HUB_RISK__COUNT) - 1,
                                          HUB_RISK_BIT(HUB_RISK__COUNT), UINT32_MAX, 0x80000001u};
    for (size_t i = 0; i < HUB_ARRAY_LEN(sets) + HUB_RISK__COUNT; i++) {
        ev = per_type[HUB_EVENT_YOUNG_PERSON_FLAGGED];
        ev.u.flagged.risk_categories =
            i < HUB_ARRAY_LEN(sets) ? sets[i] : HUB_RISK_BIT(i - HUB_ARRAY_LEN(sets));
        assert_text_matches(&ev, "risk sets");
    }

    /* Integers across the 32-bit range. */
    static const int32_t ints[] = {INT32_MIN, INT32_MIN + 1, -1000000, -10, -9, -1, 0, 1, 9, 10, 99,
                                   100,       1000000,       INT32_MAX};
    for (size_t i = 0; i < HUB_ARRAY_LEN(ints); i++) {
        ev = per_type[HUB_EVENT_BRIEFING_SENT];
        ev.u.briefing_sent.recipients = ints[i];
        assert_text_matches(&ev, "recipients");
        ev = per_type[HUB_EVENT_MEETING_ACTION_OVERDUE];
        ev.u.action_overdue.days_overdue = ints[i];
        assert_text_matches(&ev, "days_overdue");
    }

    /* Dates: every day of years 1899-2201 and the edges of four-digit years and of int32. */
    hub_date_t lo = cc_date(1899, 1, 1), hi = cc_date(2201, 12, 31);
    static const hub_date_t edges[] = {INT32_MIN, -719529, -719528, -1,
                                       0,         2932896, 2932897, INT32_MAX};
    int dates = 0;
    ev = per_type[HUB_EVENT_MEETING_ACTION_COMPLETED];
    for (hub_date_t d = lo; d <= hi; d++, dates++) {
        ev.u.action_completed.completed_on = d;
        assert_text_matches(&ev, "completed_on");
    }
    for (size_t i = 0; i < HUB_ARRAY_LEN(edges); i++, dates++) {
        ev.u.action_completed.completed_on = edges[i];
        assert_text_matches(&ev, "completed_on at an edge");
    }
    ASSERT_INT_OP(dates, >, 300 * 365);

    /* Timestamps: before and after 1970, every millisecond digit, and beyond four-digit years. */
    static const int64_t stamps[] = {
        0,
        -1,
        -999,
        -1000,
        -1001,
        -86400000,
        -86400001,
        INT64_C(-62167219200000), /* 0000-01-01T00:00:00.000Z */
        INT64_C(-62167219200001),
        INT64_C(253402300799999), /* 9999-12-31T23:59:59.999Z */
        INT64_C(253402300800000),
        INT64_C(1749893400250),
        INT64_C(-2208988800001),
        INT64_MAX,
        INT64_MIN + 86400000,
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(stamps); i++) {
        ev.occurred_at = stamps[i];
        assert_text_matches(&ev, "occurred_at");
    }
    for (int64_t ms = INT64_C(1749893400000); ms < INT64_C(1749893400000) + 86400000;
         ms += 86399 * 3 + 1) {
        ev.occurred_at = ms;
        assert_text_matches(&ev, "occurred_at over a day");
        ev.occurred_at = -ms;
        assert_text_matches(&ev, "occurred_at before 1970");
    }
}

/*
 * The string buffers of ev: the header's and its type's, optional ones made
 * present. Returns how many (ptr and size hold at least 8).
 */
static size_t string_fields(hub_event_t *ev, char **ptr, size_t *size)
{
    size_t n = 0;
#define S(field) (ptr[n] = (field), size[n] = sizeof(field), n++)
    S(ev->event_id);
    S(ev->source);
    switch (ev->type) {
    case HUB_EVENT_YOUNG_PERSON_FLAGGED:
        S(ev->u.flagged.subject_key);
        break;
    case HUB_EVENT_TRANSITION_PLAN_DUE:
        S(ev->u.plan_due.subject_key);
        S(ev->u.plan_due.cause_event_id);
        break;
    case HUB_EVENT_TRANSITION_PLAN_COMPLETED:
        S(ev->u.plan_completed.subject_key);
        break;
    case HUB_EVENT_MEETING_ACTION_RECORDED:
        S(ev->u.action_recorded.action_id);
        S(ev->u.action_recorded.meeting_id);
        S(ev->u.action_recorded.owner_agency);
        S(ev->u.action_recorded.owner_group_id);
        S(ev->u.action_recorded.subject_key);
        ev->u.action_recorded.has_subject_key = 1;
        break;
    case HUB_EVENT_MEETING_ACTION_COMPLETED:
        S(ev->u.action_completed.action_id);
        break;
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        S(ev->u.action_overdue.action_id);
        S(ev->u.action_overdue.owner_group_id);
        break;
    case HUB_EVENT_REMINDER_DUE:
        S(ev->u.reminder.group_id);
        S(ev->u.reminder.subject_key);
        ev->u.reminder.has_subject_key = 1;
        break;
    case HUB_EVENT_BRIEFING_REQUESTED:
        S(ev->u.briefing_requested.group_id);
        S(ev->u.briefing_requested.title);
        S(ev->u.briefing_requested.link);
        break;
    case HUB_EVENT_BRIEFING_SENT:
        S(ev->u.briefing_sent.group_id);
        S(ev->u.briefing_sent.request_event_id);
        break;
    default:
        TEST_FAIL_("no string fields listed for type %d", (int)ev->type);
    }
#undef S
    return n;
}

/* Fills a buffer of size bytes with len bytes cycled from pattern, then a NUL if len < size. */
static void fill(char *dst, size_t size, const char *pattern, size_t len)
{
    size_t plen = strlen(pattern);
    for (size_t i = 0; i < len; i++)
        dst[i] = pattern[i % plen];
    if (len < size)
        dst[len] = '\0';
}

static void test_json_text_strings(void)
{
    static const char *const awkward[] = {
        "",
        "\"quoted\"",
        "back\\slash\\",
        "\"\\\"\\\\",
        "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
        "\b\f\n\r\t",
        "DEL \x7f end",
        "a/b</script>",
        " leading and trailing spaces ",
        "\xc3\xa9\xc3\xa8 \xe2\x80\x93 \xf0\x9f\x93\x85", /* 2, 3 and 4 bytes */
        "\xc2\x80\xc2\x9f\xc2\xa0",                       /* C1 controls, NBSP */
        "\xe2\x80\xa8\xe2\x80\xa9",                       /* U+2028, U+2029 */
        "\xef\xbb\xbf\xef\xbf\xbd\xef\xbf\xbf",           /* BOM, U+FFFD, U+FFFF */
        "\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf",       /* U+D7FF, U+E000, U+10FFFF */
        "\xc3\x28",                                       /* bad continuation */
        "\xc0\xaf",                                       /* overlong */
        "\xe0\x80\xaf",                                   /* overlong */
        "\xf0\x80\x80\xaf",                               /* overlong */
        "\xed\xa0\x80",                                   /* surrogate */
        "\xf4\x90\x80\x80",                               /* above U+10FFFF */
        "\x80",                                           /* stray continuation */
        "\xff\xfe",                                       /* never valid */
        "cut \xe2\x80",                                   /* cut short */
        "\"\x01\xc3\xa9\\\x1f\xf0\x9f\x93\x85\x7f/",      /* a mixture */
    };
    hub_event_t cases[CODEC_CASES_MAX], per_type[HUB_EVENT__COUNT];
    char *ptr[8], what[64];
    size_t size[8], compared = 0;

    fixture_events(cases, per_type);
    for (int t = HUB_EVENT_NONE + 1; t < HUB_EVENT__COUNT; t++) {
        hub_event_t ev = per_type[t];
        size_t n = string_fields(&ev, ptr, size);

        /* string_fields names every string member: all of them show a marker in the tree. */
        for (size_t f = 0; f < n; f++)
            fill(ptr[f], size[f], "marker", 6);
        json_t *obj = hub_event_to_json(&ev);
        const char *key;
        json_t *value;
        size_t markers = 0;
        json_object_foreach(obj, key, value)
        {
            if (json_is_string(value) && strcmp(json_string_value(value), "marker") == 0)
                markers++;
        }
        json_decref(obj);
        ASSERT_INT_EQ(markers, n);

        for (size_t a = 0; a < HUB_ARRAY_LEN(awkward); a++) {
            /* In each field alone, and in all of them at once. */
            for (size_t f = 0; f <= n; f++) {
                hub_event_t e = per_type[t];
                string_fields(&e, ptr, size);
                for (size_t g = 0; g < n; g++)
                    if (g == f || f == n)
                        fill(ptr[g], size[g], awkward[a], strlen(awkward[a]));
                snprintf(what, sizeof(what), "awkward string %zu in field %zu", a, f);
                assert_text_matches(&e, what);
                compared++;
            }
        }

        /* Each byte 0x01-0xff alone, between ASCII letters. */
        for (int c = 1; c < 256; c++) {
            hub_event_t e = per_type[t];
            char s[4] = {'a', (char)c, 'b', 0};
            string_fields(&e, ptr, size);
            for (size_t g = 0; g < n; g++)
                fill(ptr[g], size[g], s, 3);
            snprintf(what, sizeof(what), "byte 0x%02x", (unsigned)c);
            assert_text_matches(&e, what);
            compared++;
        }

        /* Maximum lengths: size - 1 bytes, and the whole buffer without a NUL. */
        static const char *const patterns[] = {"a",
                                               "\x01",
                                               "\"",
                                               "\\",
                                               "\x1f\x7f",
                                               "\xc3\xa9",
                                               "\xe2\x80\x93",
                                               "\xf0\x9f\x93\x85",
                                               "\"\x01\xc3\xa9\\\x1f\xe2\x80\x93/"};
        for (size_t p = 0; p < HUB_ARRAY_LEN(patterns); p++) {
            for (int whole = 0; whole <= 1; whole++) {
                hub_event_t e = per_type[t];
                string_fields(&e, ptr, size);
                for (size_t g = 0; g < n; g++)
                    fill(ptr[g], size[g], patterns[p], size[g] - 1 + (size_t)whole);
                assert_text_matches(&e, whole ? "whole buffer" : "maximum length");
                compared++;
            }
        }
    }
    ASSERT_INT_OP(compared, >, 1000);

    /* A sequence cut by the end of a full buffer is not completed by the bytes after it. */
    hub_event_t cut = per_type[HUB_EVENT_BRIEFING_REQUESTED];
    hub_briefing_requested_t *br = &cut.u.briefing_requested;
    ASSERT_TRUE(br->title == br->group_id + sizeof(br->group_id));
    memset(br->group_id, 'g', sizeof(br->group_id));
    memcpy(br->group_id + sizeof(br->group_id) - 2, "\xe2\x80", 2);
    snprintf(br->title, sizeof(br->title), "\x93 rest");
    assert_text_matches(&cut, "sequence cut by the end of its buffer");
    br->title[0] = 'x';
    assert_text_matches(&cut, "sequence cut by the end of its buffer");

    /* Multi-byte sequences: jansson's json_stringn and the text writer accept the same ones. */
    /* Every second byte; third and fourth bytes on each side of the continuation range. */
    static const unsigned char tails[] = {0x7f, 0x80, 0xbf, 0xc0};
    hub_event_t ev = per_type[HUB_EVENT_BRIEFING_SENT];
    char *group = ev.u.briefing_sent.group_id;
    size_t nulls = 0, valid = 0;
    for (unsigned lead = 0x80; lead <= 0xff; lead++)
        for (unsigned b1 = 1; b1 <= 0xff; b1++)
            for (size_t t2 = 0; t2 < HUB_ARRAY_LEN(tails); t2++)
                for (size_t t3 = 0; t3 < (lead >= 0xf0 ? HUB_ARRAY_LEN(tails) : 1); t3++) {
                    if (lead < 0xe0 && t2 > 0)
                        break;
                    int len = 0;
                    group[len++] = 'x';
                    group[len++] = (char)lead;
                    group[len++] = (char)b1;
                    if (lead >= 0xe0)
                        group[len++] = (char)tails[t2];
                    if (lead >= 0xf0)
                        group[len++] = (char)tails[t3];
                    group[len++] = 'y';
                    group[len] = '\0';
                    assert_text_matches(&ev, "multi-byte sequence");
                    json_t *j = json_string(group);
                    if (j)
                        valid++;
                    else
                        nulls++;
                    json_decref(j);
                }
    /* Both outcomes occur, so the sweep tells valid and invalid sequences apart. */
    ASSERT_INT_OP(valid, >, 1000);
    ASSERT_INT_OP(nulls, >, 1000);
}

/* Every buffer size from 0 to past the end: snprintf's contract, and no byte written past size. */
static void sweep_sizes(const hub_event_t *ev)
{
    char *full = jansson_text(ev);
    size_t len = strlen(full);
    char *canary = malloc(len + 64);

    ASSERT_TRUE(canary != NULL);
    ASSERT_INT_EQ(hub_event_json_text(ev, NULL, 0), len);
    for (size_t size = 0; size <= len + 2; size++) {
        /* A heap block of exactly size bytes, for ASan to catch any overflow. */
        char *exact = size ? malloc(size) : NULL;
        ASSERT_TRUE(size == 0 || exact != NULL);
        ASSERT_INT_EQ(hub_event_json_text(ev, exact, size), len);
        if (size) {
            size_t kept = size <= len ? size - 1 : len;
            ASSERT_TRUE(memcmp(exact, full, kept) == 0);
            ASSERT_INT_EQ(exact[kept], '\0');
        }
        free(exact);

        memset(canary, 0xa5, len + 64);
        ASSERT_INT_EQ(hub_event_json_text(ev, canary, size), len);
        for (size_t i = size; i < len + 64; i++)
            if ((unsigned char)canary[i] != 0xa5)
                TEST_FAIL_("size %zu: byte %zu written", size, i);
    }
    free(canary);
    free(full);
}

static void test_json_text_truncation(void)
{
    hub_event_t ev;

    /* Escapes and multi-byte characters straddle many of the cut points. */
    parse_event(HUB_EVENT_BRIEFING_REQUESTED, sample_json(HUB_EVENT_BRIEFING_REQUESTED), &ev);
    snprintf(ev.u.briefing_requested.title, sizeof(ev.u.briefing_requested.title),
             "\"Q\"\\\x01\x1f\n\xc3\xa9\xe2\x80\x93\xf0\x9f\x93\x85/\x7f end");
    sweep_sizes(&ev);
    /* A string that is not UTF-8 turns into null after part of it was written. */
    snprintf(ev.u.briefing_requested.title, sizeof(ev.u.briefing_requested.title),
             "a long valid start \x01\x02\x03\x04 then \xc3\x28");
    sweep_sizes(&ev);
    /* No type: "{}". */
    ev.type = HUB_EVENT_NONE;
    sweep_sizes(&ev);
}

/* ---- validation ----------------------------------------------------------------- */

/* Sets one field of a sample (value given as JSON text), parses and validates it. */
static int validate_patched(hub_event_type_t type, const char *field, const char *value_json,
                            const hub_validation_t *rules, char *errstr, size_t errstr_size)
{
    json_t *obj = load_json(sample_json(type));
    hub_event_t ev;
    if (field)
        json_object_set_new(obj, field, load_json(value_json));
    int r = hub_event_from_json(type, obj, &ev, errstr, errstr_size);
    json_decref(obj);
    if (r != HUB_OK)
        TEST_FAIL_("from_json failed before validation: %s", errstr);
    return hub_event_validate(&ev, rules, errstr, errstr_size);
}

static void test_validation(void)
{
    static const char *const agencies[] = {"LEICESTER_CS", "RUTLAND_ASC", "LEICS_POLICE",
                                           "HUB_COORDINATOR"};
    hub_validation_t rules = {agencies, HUB_ARRAY_LEN(agencies), fixed_now()};
    static const struct {
        hub_event_type_t type;
        const char *field, *value; /* JSON */
        const char *expect;        /* NULL: valid */
    } cases[] = {
        /* ids */
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "event_id", "\"0b9f8a52-3c1e-4d7a-9a55-2f7e6c1d4b8\"",
         "event_id: must be a UUID"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "event_id", "\"0b9f8a52x3c1e-4d7a-9a55-2f7e6c1d4b80\"",
         "event_id: must be a UUID"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "event_id", "\"0B9F8A52-3C1E-4D7A-9A55-2F7E6C1D4B80\"",
         NULL},
        {HUB_EVENT_TRANSITION_PLAN_DUE, "cause_event_id", "\"not-a-uuid\"",
         "cause_event_id: must be a UUID"},
        {HUB_EVENT_MEETING_ACTION_COMPLETED, "action_id", "\"\"", "action_id: must be a UUID"},
        {HUB_EVENT_BRIEFING_SENT, "request_event_id", "\"g0000000-0000-0000-0000-000000000000\"",
         "request_event_id: must be a UUID"},
        /* subject keys */
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "subject_key",
         "\"C97EDFFA2DD49A099A182A731258BB2EA4E160ED328B1F5338FFAAA6C374E111\"",
         "subject_key: must be 64 lower-case hex characters"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "subject_key", "\"9434765919\"",
         "subject_key: must be 64 lower-case hex characters"},
        {HUB_EVENT_TRANSITION_PLAN_COMPLETED, "subject_key",
         "\"c97edffa2dd49a099a182a731258bb2ea4e160ed328b1f5338ffaaa6c374e11\"",
         "subject_key: must be 64 lower-case hex characters"},
        {HUB_EVENT_MEETING_ACTION_RECORDED, "subject_key", "\"x\"",
         "subject_key: must be 64 lower-case hex characters"},
        {HUB_EVENT_MEETING_ACTION_RECORDED, "subject_key", "null", NULL},
        {HUB_EVENT_REMINDER_DUE, "subject_key", "\"\"",
         "subject_key: must be 64 lower-case hex characters"},
        /* codes and agencies */
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "source_agency", "\"NOTTS_CS\"",
         "source_agency: not one of the configured agency codes"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "source_agency", "\"\"",
         "source_agency: must be a "
         "non-empty code"},
        {HUB_EVENT_MEETING_ACTION_RECORDED, "owner_agency", "\"LLR_ICB\"",
         "owner_agency: not one of the configured agency codes"},
        {HUB_EVENT_MEETING_ACTION_RECORDED, "meeting_id", "\"SAB meeting 12\"",
         "meeting_id: must be a non-empty code"},
        {HUB_EVENT_MEETING_ACTION_RECORDED, "owner_group_id", "\"\"",
         "owner_group_id: must be a non-empty code"},
        {HUB_EVENT_TRANSITION_PLAN_DUE, "producer", "\"hub planner\"",
         "producer: must be a non-empty code"},
        {HUB_EVENT_TRANSITION_PLAN_DUE, "producer", "\"any-service.v2\"", NULL},
        {HUB_EVENT_REMINDER_DUE, "group_id", "\"g/1\"", "group_id: must be a non-empty code"},
        /* text and links */
        {HUB_EVENT_BRIEFING_REQUESTED, "title", "\"\"", "title: must be non-empty UTF-8 text"},
        {HUB_EVENT_BRIEFING_REQUESTED, "title", "\"two\\nlines\"",
         "title: must be non-empty UTF-8 text"},
        {HUB_EVENT_BRIEFING_REQUESTED, "link", "\"http://docs.llr.example/b.pdf\"",
         "link: must be an https:// URL"},
        {HUB_EVENT_BRIEFING_REQUESTED, "link", "\"https:///path\"",
         "link: must be an https:// URL"},
        {HUB_EVENT_BRIEFING_REQUESTED, "link", "\"https://docs.llr.example/a b.pdf\"",
         "link: must be an https:// URL"},
        {HUB_EVENT_BRIEFING_REQUESTED, "link", "\"javascript:alert(1)\"",
         "link: must be an https:// URL"},
        /* dates (now is 2025-06-15T12:00Z) */
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "date_of_birth", "\"2025-06-16\"",
         "date_of_birth: must not be in the future"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "date_of_birth", "\"1899-12-31\"",
         "date_of_birth: must be between 1900-01-01 and 2200-12-31"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "date_of_birth", "\"1900-01-01\"", NULL},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "flagged_on", "\"2025-06-16\"", NULL},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "flagged_on", "\"2025-06-17\"",
         "flagged_on: must not be more than one day in the future"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "flagged_on", "\"2008-02-28\"",
         "flagged_on: must not be before date_of_birth"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "flagged_on", "\"2008-02-29\"", NULL},
        {HUB_EVENT_TRANSITION_PLAN_DUE, "due_date", "\"2201-01-01\"",
         "due_date: must be between 1900-01-01 and 2200-12-31"},
        {HUB_EVENT_TRANSITION_PLAN_DUE, "due_date", "\"2200-12-31\"", NULL},
        {HUB_EVENT_MEETING_ACTION_RECORDED, "due_date", "\"1800-01-01\"",
         "due_date: must be between 1900-01-01 and 2200-12-31"},
        {HUB_EVENT_REMINDER_DUE, "due_date", "\"9999-12-31\"",
         "due_date: must be between 1900-01-01 and 2200-12-31"},
        {HUB_EVENT_REMINDER_DUE, "due_date", "null", NULL},
        {HUB_EVENT_MEETING_ACTION_COMPLETED, "occurred_at", "-2208988800001",
         "occurred_at: must be between 1900-01-01 and 2200-12-31"},
        /* numbers and sets */
        {HUB_EVENT_MEETING_ACTION_OVERDUE, "days_overdue", "0", "days_overdue: must be at least 1"},
        {HUB_EVENT_MEETING_ACTION_OVERDUE, "days_overdue", "1", NULL},
        {HUB_EVENT_BRIEFING_SENT, "recipients", "-1", "recipients: must be at least 0"},
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, "risk_categories", "[]",
         "risk_categories: must name at least one category"},
        {HUB_EVENT_TRANSITION_PLAN_DUE, "risk_categories", "[]", NULL},
        /* every sample as is */
        {HUB_EVENT_YOUNG_PERSON_FLAGGED, NULL, NULL, NULL},
        {HUB_EVENT_TRANSITION_PLAN_DUE, NULL, NULL, NULL},
        {HUB_EVENT_TRANSITION_PLAN_COMPLETED, NULL, NULL, NULL},
        {HUB_EVENT_MEETING_ACTION_RECORDED, NULL, NULL, NULL},
        {HUB_EVENT_MEETING_ACTION_COMPLETED, NULL, NULL, NULL},
        {HUB_EVENT_MEETING_ACTION_OVERDUE, NULL, NULL, NULL},
        {HUB_EVENT_REMINDER_DUE, NULL, NULL, NULL},
        {HUB_EVENT_BRIEFING_REQUESTED, NULL, NULL, NULL},
        {HUB_EVENT_BRIEFING_SENT, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        char errstr[256] = "";
        int r = validate_patched(cases[i].type, cases[i].field, cases[i].value, &rules, errstr,
                                 sizeof(errstr));
        if (!cases[i].expect) {
            if (r != HUB_OK)
                TEST_FAIL_("case %zu (%s %s): expected valid, got %d: %s", i,
                           hub_event_type_name(cases[i].type),
                           cases[i].field ? cases[i].field : "-", r, errstr);
            continue;
        }
        if (r != HUB_EVALID)
            TEST_FAIL_("case %zu (%s %s): expected HUB_EVALID, got %d", i,
                       hub_event_type_name(cases[i].type), cases[i].field, r);
        ASSERT_STR_CONTAINS(errstr, cases[i].expect);
        /* The message never repeats a string value. */
        if (cases[i].value && cases[i].value[0] == '"' && strlen(cases[i].value) > 4) {
            char inner[256];
            snprintf(inner, sizeof(inner), "%.*s", (int)strlen(cases[i].value) - 2,
                     cases[i].value + 1);
            if (strstr(errstr, inner))
                TEST_FAIL_("case %zu: message \"%s\" repeats the value", i, errstr);
        }
    }
}

/* Values only a C producer could set (not reachable through JSON). */
static void test_validation_structs(void)
{
    hub_validation_t rules = {NULL, 0, fixed_now()};
    char errstr[256] = "";
    hub_event_t ev;

    /* Without agencies configured, any well-formed code is accepted. */
    parse_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, sample_json(HUB_EVENT_YOUNG_PERSON_FLAGGED), &ev);
    strcpy(ev.source, "ANY_AGENCY");
    ASSERT_OK(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), errstr);

    ev.u.flagged.local_authority = (hub_local_authority_t)HUB_LA__COUNT;
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    ASSERT_STR_CONTAINS(errstr, "local_authority: not a known symbol");

    parse_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, sample_json(HUB_EVENT_YOUNG_PERSON_FLAGGED), &ev);
    ev.u.flagged.risk_categories |= HUB_RISK_BIT(HUB_RISK__COUNT);
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    ASSERT_STR_CONTAINS(errstr, "risk_categories: holds an unknown category");

    parse_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, sample_json(HUB_EVENT_YOUNG_PERSON_FLAGGED), &ev);
    memset(ev.u.flagged.subject_key, 'a', sizeof(ev.u.flagged.subject_key));
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    ASSERT_STR_CONTAINS(errstr, "subject_key: longer than 64 characters");

    parse_event(HUB_EVENT_MEETING_ACTION_RECORDED, sample_json(HUB_EVENT_MEETING_ACTION_RECORDED),
                &ev);
    ev.u.action_recorded.has_subject_key = 2;
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    ASSERT_STR_CONTAINS(errstr, "subject_key: presence flag");

    parse_event(HUB_EVENT_BRIEFING_REQUESTED, sample_json(HUB_EVENT_BRIEFING_REQUESTED), &ev);
    strcpy(ev.u.briefing_requested.title, "bad \xc3\x28 utf-8");
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    ASSERT_STR_CONTAINS(errstr, "title: must be non-empty UTF-8 text");
    strcpy(ev.u.briefing_requested.title, "overlong \xc0\xaf slash");
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    strcpy(ev.u.briefing_requested.title, "surrogate \xed\xa0\x80");
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    strcpy(ev.u.briefing_requested.title, "Briefing \xe2\x80\x93 \xf0\x9f\x93\x85 ok");
    ASSERT_OK(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), errstr);

    ev.type = HUB_EVENT_NONE;
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);
    ev.type = HUB_EVENT__COUNT;
    ASSERT_INT_EQ(hub_event_validate(&ev, &rules, errstr, sizeof(errstr)), HUB_EVALID);

    /* The real clock is used when now_ms is 0: a birth date of tomorrow (by it) is invalid. */
    parse_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, sample_json(HUB_EVENT_YOUNG_PERSON_FLAGGED), &ev);
    ev.u.flagged.date_of_birth = hub_date_london(hub_now_ms()) + 2;
    ev.u.flagged.flagged_on = ev.u.flagged.date_of_birth;
    ASSERT_INT_EQ(hub_event_validate(&ev, NULL, errstr, sizeof(errstr)), HUB_EVALID);
    ASSERT_STR_CONTAINS(errstr, "date_of_birth: must not be in the future");
}

/* ---- UUIDs and pseudonymisation ------------------------------------------------ */

static void test_uuids(void)
{
    char out[HUB_UUID_SIZE], other[HUB_UUID_SIZE];
    static const char dns_ns[] = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

    /* Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") */
    ASSERT_OK(hub_uuid_v5(dns_ns, "python.org", 10, out), "uuid_v5");
    ASSERT_STR_EQ(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    /* Upper-case namespace text is the same namespace. */
    ASSERT_OK(hub_uuid_v5("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "python.org", 10, other),
              "uuid_v5");
    ASSERT_STR_EQ(other, out);
    /* Python: uuid.uuid5(uuid.NAMESPACE_URL, "") */
    ASSERT_OK(hub_uuid_v5("6ba7b811-9dad-11d1-80b4-00c04fd430c8", "", 0, out), "uuid_v5");
    ASSERT_STR_EQ(out, "1b4db7eb-4057-5ddf-91e0-36dec72071f5");
    ASSERT_INT_EQ(hub_uuid_v5("not-a-namespace", "x", 1, out), HUB_EINVAL);

    ASSERT_OK(hub_uuid_v4(out), "uuid_v4");
    ASSERT_OK(hub_uuid_v4(other), "uuid_v4");
    ASSERT_TRUE(hub_uuid_valid(out));
    ASSERT_INT_EQ(out[14], '4');
    ASSERT_TRUE(strchr("89ab", out[19]) != NULL);
    ASSERT_TRUE(strcmp(out, other) != 0);

    static const struct {
        const char *s;
        int uuid, subject;
    } shapes[] = {
        {"886313e1-3b8a-5372-9b90-0c9aee199e5d", 1, 0},
        {"886313E1-3B8A-5372-9B90-0C9AEE199E5D", 1, 0},
        {"886313e13b8a53729b900c9aee199e5d", 0, 0},
        {"{886313e1-3b8a-5372-9b90-0c9aee199e5d}", 0, 0},
        {"886313e1-3b8a-5372-9b90-0c9aee199e5", 0, 0},
        {"", 0, 0},
        {SUBJECT, 0, 1},
        {"C97edffa2dd49a099a182a731258bb2ea4e160ed328b1f5338ffaaa6c374e111", 0, 0},
        {SUBJECT "0", 0, 0},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(shapes); i++) {
        ASSERT_INT_EQ(!!hub_uuid_valid(shapes[i].s), shapes[i].uuid);
        ASSERT_INT_EQ(!!hub_subject_key_valid(shapes[i].s), shapes[i].subject);
    }
    ASSERT_INT_EQ(hub_uuid_valid(NULL), 0);
    ASSERT_INT_EQ(hub_subject_key_valid(NULL), 0);

    /* Parsed to bytes exactly when valid, either case. */
    unsigned char u[16], want[16] = {0x88, 0x63, 0x13, 0xe1, 0x3b, 0x8a, 0x53, 0x72,
                                     0x9b, 0x90, 0x0c, 0x9a, 0xee, 0x19, 0x9e, 0x5d};
    for (size_t i = 0; i < HUB_ARRAY_LEN(shapes); i++) {
        memset(u, 0, sizeof(u));
        ASSERT_INT_EQ(hub_uuid_parse(shapes[i].s, u) == 0, shapes[i].uuid);
        if (shapes[i].uuid)
            ASSERT_INT_EQ(memcmp(u, want, 16), 0);
    }
    ASSERT_INT_EQ(hub_uuid_parse("886313e1-3b8a-5372-9b90-0c9aee199e5g", u), -1);
    ASSERT_INT_EQ(hub_uuid_parse(NULL, u), -1);
}

static void test_pseudonymise(void)
{
    static const char secret[] = "test-linkage-secret";
    /*
     * Expected keys computed once with OpenSSL, independently of this code:
     *   printf %s 9434765919 | openssl dgst -sha256 -hmac test-linkage-secret
     *   printf %s 4010232137 | openssl dgst -sha256 -hmac test-linkage-secret
     */
    static const char key_943[] =
        "c97edffa2dd49a099a182a731258bb2ea4e160ed328b1f5338ffaaa6c374e111";
    static const char key_401[] =
        "cad662c879cd744dd25c7d4f9461ef506b169f7b3bd6d37d611f0797c2175c81";
    static const struct {
        const char *nhs;
        const char *key;    /* NULL: invalid */
        const char *expect; /* message substring when invalid */
    } cases[] = {
        {"9434765919", key_943, NULL},
        {"943 476 5919", key_943, NULL},
        {"943-476-5919", key_943, NULL},
        {" 9434765919 ", key_943, NULL},
        {"4010232137", key_401, NULL},
        {"401 023 2137", key_401, NULL},
        {"9434765918", NULL, "check digit"},  /* last digit changed */
        {"9434765910", NULL, "check digit"},  /* last digit changed */
        {"9434865919", NULL, "check digit"},  /* a middle digit changed */
        {"4010232138", NULL, "check digit"},  /* last digit changed */
        {"1000000010", NULL, "check digit"},  /* remainder 1: check digit 10 is never issued */
        {"943476591", NULL, "ten digits"},    /* too short */
        {"94347659190", NULL, "ten digits"},  /* too long */
        {"", NULL, "ten digits"},             /* empty */
        {"943476591X", NULL, "only digits"},  /* a letter */
        {"943.476.5919", NULL, "only digits"} /* other punctuation */
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        char out[HUB_SUBJECT_KEY_SIZE] = "", errstr[256] = "";
        int r = hub_pseudonymise(cases[i].nhs, secret, strlen(secret), out, errstr, sizeof(errstr));
        if (cases[i].key) {
            ASSERT_OK(r, errstr);
            ASSERT_STR_EQ(out, cases[i].key);
            ASSERT_TRUE(hub_subject_key_valid(out));
        } else {
            if (r != HUB_EINVAL)
                TEST_FAIL_("case %zu: expected HUB_EINVAL, got %d", i, r);
            ASSERT_STR_CONTAINS(errstr, cases[i].expect);
            if (*cases[i].nhs && strstr(errstr, cases[i].nhs))
                TEST_FAIL_("case %zu: message repeats the number", i);
            for (const char *p = errstr; *p; p++)
                if (*p >= '0' && *p <= '9')
                    TEST_FAIL_("case %zu: message \"%s\" contains digits", i, errstr);
        }
    }
    /* A different secret gives a different key; no secret is an error. */
    char out[HUB_SUBJECT_KEY_SIZE], errstr[256];
    ASSERT_OK(hub_pseudonymise("9434765919", "other", 5, out, errstr, sizeof(errstr)), errstr);
    ASSERT_TRUE(strcmp(out, key_943) != 0);
    ASSERT_INT_EQ(hub_pseudonymise("9434765919", "", 0, out, errstr, sizeof(errstr)), HUB_EINVAL);
    ASSERT_INT_EQ(hub_pseudonymise("9434765919", NULL, 0, out, errstr, sizeof(errstr)), HUB_EINVAL);
    ASSERT_INT_EQ(hub_pseudonymise(NULL, "s", 1, out, errstr, sizeof(errstr)), HUB_EINVAL);
}

int main(void)
{
    RUN_TEST(test_type_catalogue);
    RUN_TEST(test_keys);
    RUN_TEST(test_enum_tables_match_schemas);
    RUN_TEST(test_json_fields_match_schemas);
    RUN_TEST(test_json_round_trip);
    RUN_TEST(test_json_values);
    RUN_TEST(test_json_errors);
    RUN_TEST(test_json_text_fixtures);
    RUN_TEST(test_json_text_strings);
    RUN_TEST(test_json_text_truncation);
    RUN_TEST(test_validation);
    RUN_TEST(test_validation_structs);
    RUN_TEST(test_uuids);
    RUN_TEST(test_pseudonymise);
    return 0;
}
