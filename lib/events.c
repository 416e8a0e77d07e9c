/*
 * events.c: the event catalogue in C: names, topics and keys per type, symbol
 * tables, JSON conversion, validation, UUIDs and pseudonymisation.
 *
 * Every type's fields are described once, in one table (field name, kind,
 * place in hub_event_t), and JSON conversion and validation both walk that
 * table, so a field cannot be converted but forgotten by validation.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"

/* ---- symbol tables (order = Avro symbol order in schemas/events/) --------- */

static const char *const la_names[HUB_LA__COUNT] = {"LEICESTER", "LEICESTERSHIRE", "RUTLAND"};

static const char *const risk_names[HUB_RISK__COUNT] = {
    "LOOKED_AFTER",          "CHILD_IN_NEED", "CHILD_PROTECTION_PLAN", "SEXUAL_EXPLOITATION",
    "CRIMINAL_EXPLOITATION", "GANGS",         "COUNTY_LINES",          "CUCKOOING",
    "DOMESTIC_ABUSE",        "EXTREMISM",     "MODERN_SLAVERY",        "TRAFFICKING"};

static const char *const rule_names[HUB_RULE__COUNT] = {
    "PLAN_AT_17Y6M", "LOOKED_AFTER_16_PLUS_3M", "LATE_REFERRAL", "ADULT_SAFEGUARDING_REFERRAL"};

static const char *const outcome_names[HUB_OUTCOME__COUNT] = {
    "PLAN_AGREED", "CARE_ACT_ASSESSMENT_ARRANGED", "NO_ELIGIBLE_NEEDS", "DECLINED_SUPPORT",
    "MOVED_OUT_OF_AREA"};

static const char *const action_kind_names[HUB_ACTION__COUNT] = {"CARE_ACT_ASSESSMENT",
                                                                 "TRANSITION_PLAN",
                                                                 "STRATEGY_MEETING",
                                                                 "INFORMATION_SHARING",
                                                                 "REFERRAL",
                                                                 "SAFETY_PLAN",
                                                                 "OTHER"};

static const char *const reminder_kind_names[HUB_REMINDER__COUNT] = {
    "PLAN_DUE_SOON", "PLAN_OVERDUE", "GROUP_NOT_BRIEFED"};

typedef struct {
    const char *const *names;
    int count;
} syms_t;

static const syms_t la_syms = {la_names, HUB_LA__COUNT};
static const syms_t rule_syms = {rule_names, HUB_RULE__COUNT};
static const syms_t outcome_syms = {outcome_names, HUB_OUTCOME__COUNT};
static const syms_t action_kind_syms = {action_kind_names, HUB_ACTION__COUNT};
static const syms_t reminder_kind_syms = {reminder_kind_names, HUB_REMINDER__COUNT};

static const char *sym_name(const syms_t *s, int v)
{
    return v >= 0 && v < s->count ? s->names[v] : NULL;
}

static int sym_index(const syms_t *s, const char *name)
{
    for (int i = 0; name && i < s->count; i++)
        if (strcmp(s->names[i], name) == 0)
            return i;
    return -1;
}

const char *hub_local_authority_name(hub_local_authority_t la)
{
    return sym_name(&la_syms, (int)la);
}

const char *hub_risk_category_name(hub_risk_category_t rc)
{
    return (int)rc >= 0 && rc < HUB_RISK__COUNT ? risk_names[rc] : NULL;
}

const char *hub_transition_rule_name(hub_transition_rule_t r)
{
    return sym_name(&rule_syms, (int)r);
}

const char *hub_plan_outcome_name(hub_plan_outcome_t o)
{
    return sym_name(&outcome_syms, (int)o);
}

const char *hub_action_kind_name(hub_action_kind_t k)
{
    return sym_name(&action_kind_syms, (int)k);
}

const char *hub_reminder_kind_name(hub_reminder_kind_t k)
{
    return sym_name(&reminder_kind_syms, (int)k);
}

int hub_local_authority_from_name(const char *name)
{
    return sym_index(&la_syms, name);
}

int hub_risk_category_from_name(const char *name)
{
    for (int i = 0; name && i < HUB_RISK__COUNT; i++)
        if (strcmp(risk_names[i], name) == 0)
            return i;
    return -1;
}

int hub_transition_rule_from_name(const char *name)
{
    return sym_index(&rule_syms, name);
}

int hub_plan_outcome_from_name(const char *name)
{
    return sym_index(&outcome_syms, name);
}

int hub_action_kind_from_name(const char *name)
{
    return sym_index(&action_kind_syms, name);
}

int hub_reminder_kind_from_name(const char *name)
{
    return sym_index(&reminder_kind_syms, name);
}

/* ---- field descriptions --------------------------------------------------- */

typedef enum {
    K_UUID,    /* char[HUB_UUID_SIZE], 8-4-4-4-12 hex */
    K_SUBJECT, /* char[HUB_SUBJECT_KEY_SIZE], 64 lower-case hex */
    K_CODE,    /* char[HUB_CODE_SIZE], [A-Za-z0-9_.-]+ */
    K_TITLE,   /* free text without control characters */
    K_LINK,    /* https URL */
    K_DATE,    /* hub_date_t */
    K_INT,     /* int32_t */
    K_ENUM,    /* an enum stored as int */
    K_RISKS,   /* hub_risk_set_t */
} kind_t;

/* Which plausibility rule a date follows (see hub_event_validate). */
typedef enum { D_ANY, D_BIRTH, D_FLAGGED } date_rule_t;

#define F_AGENCY   0x1 /* a code that must be a configured agency */
#define F_NONEMPTY 0x2 /* a risk set that must not be empty */

typedef struct {
    const char *name;
    kind_t kind;
    size_t off;   /* of the value within hub_event_t */
    size_t size;  /* of the string buffer */
    long has_off; /* of the int has_* flag of an optional field, or -1 */
    const syms_t *syms;
    int flags;
    int32_t min; /* K_INT lower bound */
    date_rule_t date;
} field_t;

#define MSIZE(arm, m) sizeof(((hub_event_t *)0)->u.arm.m)
#define OFF(arm, m)   offsetof(hub_event_t, u.arm.m)
#define STR(kind, arm, m, flags)                                                                   \
    {                                                                                              \
#m, kind, OFF(arm, m), MSIZE(arm, m), -1, NULL, flags, 0, D_ANY                            \
    }
#define DATE(arm, m, rule)                                                                         \
    {                                                                                              \
#m, K_DATE, OFF(arm, m), 0, -1, NULL, 0, 0, rule                                           \
    }
#define ENUM(arm, m, syms)                                                                         \
    {                                                                                              \
#m, K_ENUM, OFF(arm, m), 0, -1, &syms, 0, 0, D_ANY                                         \
    }
#define INT(arm, m, min)                                                                           \
    {                                                                                              \
#m, K_INT, OFF(arm, m), 0, -1, NULL, 0, min, D_ANY                                         \
    }
#define RISKS(arm, flags)                                                                          \
    {                                                                                              \
        "risk_categories", K_RISKS, OFF(arm, risk_categories), 0, -1, NULL, flags, 0, D_ANY        \
    }

static const field_t flagged_fields[] = {
    STR(K_SUBJECT, flagged, subject_key, 0), ENUM(flagged, local_authority, la_syms),
    DATE(flagged, date_of_birth, D_BIRTH),   RISKS(flagged, F_NONEMPTY),
    DATE(flagged, flagged_on, D_FLAGGED),
};

static const field_t plan_due_fields[] = {
    STR(K_SUBJECT, plan_due, subject_key, 0), ENUM(plan_due, local_authority, la_syms),
    DATE(plan_due, due_date, D_ANY),          ENUM(plan_due, rule, rule_syms),
    STR(K_UUID, plan_due, cause_event_id, 0), RISKS(plan_due, 0),
};

static const field_t plan_completed_fields[] = {
    STR(K_SUBJECT, plan_completed, subject_key, 0),
    ENUM(plan_completed, local_authority, la_syms),
    DATE(plan_completed, completed_on, D_ANY),
    ENUM(plan_completed, outcome, outcome_syms),
};

static const field_t action_recorded_fields[] = {
    STR(K_UUID, action_recorded, action_id, 0),
    STR(K_CODE, action_recorded, meeting_id, 0),
    DATE(action_recorded, meeting_date, D_ANY),
    ENUM(action_recorded, kind, action_kind_syms),
    STR(K_CODE, action_recorded, owner_agency, F_AGENCY),
    STR(K_CODE, action_recorded, owner_group_id, 0),
    DATE(action_recorded, due_date, D_ANY),
    {"subject_key", K_SUBJECT, OFF(action_recorded, subject_key),
     MSIZE(action_recorded, subject_key), (long)OFF(action_recorded, has_subject_key), NULL, 0, 0,
     D_ANY},
};

static const field_t action_completed_fields[] = {
    STR(K_UUID, action_completed, action_id, 0),
    DATE(action_completed, completed_on, D_ANY),
};

static const field_t action_overdue_fields[] = {
    STR(K_UUID, action_overdue, action_id, 0), STR(K_CODE, action_overdue, owner_group_id, 0),
    DATE(action_overdue, due_date, D_ANY),     DATE(action_overdue, as_of, D_ANY),
    INT(action_overdue, days_overdue, 1),
};

static const field_t reminder_fields[] = {
    STR(K_CODE, reminder, group_id, 0),
    ENUM(reminder, kind, reminder_kind_syms),
    {"subject_key", K_SUBJECT, OFF(reminder, subject_key), MSIZE(reminder, subject_key),
     (long)OFF(reminder, has_subject_key), NULL, 0, 0, D_ANY},
    {"due_date", K_DATE, OFF(reminder, due_date), 0, (long)OFF(reminder, has_due_date), NULL, 0, 0,
     D_ANY},
    DATE(reminder, as_of, D_ANY),
};

static const field_t briefing_requested_fields[] = {
    STR(K_CODE, briefing_requested, group_id, 0),
    STR(K_TITLE, briefing_requested, title, 0),
    STR(K_LINK, briefing_requested, link, 0),
};

static const field_t briefing_sent_fields[] = {
    STR(K_CODE, briefing_sent, group_id, 0),
    STR(K_UUID, briefing_sent, request_event_id, 0),
    INT(briefing_sent, recipients, 0),
};

typedef struct {
    const char *name;
    const char *topic_setting;
    int partner; /* 1: source is source_agency (a partner); 0: producer (a hub service) */
    size_t key_off;
    const field_t *fields;
    size_t nfields;
} type_t;

#define TYPE(name, topic, partner, arm, key, fields)                                               \
    {                                                                                              \
        name, topic, partner, OFF(arm, key), fields, HUB_ARRAY_LEN(fields)                         \
    }

static const type_t types[HUB_EVENT__COUNT] = {
    [HUB_EVENT_NONE] = {NULL, NULL, 0, 0, NULL, 0},
    [HUB_EVENT_YOUNG_PERSON_FLAGGED] =
        TYPE("YoungPersonFlagged", "risk_flags", 1, flagged, subject_key, flagged_fields),
    [HUB_EVENT_TRANSITION_PLAN_DUE] =
        TYPE("TransitionPlanDue", "transition_alerts", 0, plan_due, subject_key, plan_due_fields),
    [HUB_EVENT_TRANSITION_PLAN_COMPLETED] =
        TYPE("TransitionPlanCompleted", "transition_plans", 1, plan_completed, subject_key,
             plan_completed_fields),
    [HUB_EVENT_MEETING_ACTION_RECORDED] = TYPE("MeetingActionRecorded", "meeting_actions", 1,
                                               action_recorded, action_id, action_recorded_fields),
    [HUB_EVENT_MEETING_ACTION_COMPLETED] =
        TYPE("MeetingActionCompleted", "meeting_actions", 1, action_completed, action_id,
             action_completed_fields),
    [HUB_EVENT_MEETING_ACTION_OVERDUE] = TYPE("MeetingActionOverdue", "meeting_actions", 0,
                                              action_overdue, action_id, action_overdue_fields),
    [HUB_EVENT_REMINDER_DUE] =
        TYPE("ReminderDue", "group_notifications", 0, reminder, group_id, reminder_fields),
    [HUB_EVENT_BRIEFING_REQUESTED] = TYPE("BriefingRequested", "group_notifications", 1,
                                          briefing_requested, group_id, briefing_requested_fields),
    [HUB_EVENT_BRIEFING_SENT] = TYPE("BriefingSent", "group_notifications", 0, briefing_sent,
                                     group_id, briefing_sent_fields),
};

static const type_t *type_of(hub_event_type_t t)
{
    return (int)t > HUB_EVENT_NONE && t < HUB_EVENT__COUNT ? &types[t] : NULL;
}

const char *hub_event_type_name(hub_event_type_t type)
{
    const type_t *t = type_of(type);
    return t ? t->name : NULL;
}

hub_event_type_t hub_event_type_from_name(const char *name)
{
    for (int i = HUB_EVENT_NONE + 1; name && i < HUB_EVENT__COUNT; i++)
        if (strcmp(types[i].name, name) == 0)
            return (hub_event_type_t)i;
    return HUB_EVENT_NONE;
}

const char *hub_event_topic_setting(hub_event_type_t type)
{
    const type_t *t = type_of(type);
    return t ? t->topic_setting : NULL;
}

const char *hub_event_key(const hub_event_t *ev)
{
    const type_t *t = type_of(ev->type);
    return t ? (const char *)ev + t->key_off : NULL;
}

static const char *source_field(const type_t *t)
{
    return t->partner ? "source_agency" : "producer";
}

const char *hub_event_source_field(hub_event_type_t type)
{
    const type_t *t = type_of(type);
    return t ? source_field(t) : NULL;
}

/* Typed views of a field inside an event. */
static char *f_str(hub_event_t *ev, const field_t *f)
{
    return (char *)ev + f->off;
}

static const char *f_cstr(const hub_event_t *ev, const field_t *f)
{
    return (const char *)ev + f->off;
}

static int32_t *f_i32(hub_event_t *ev, const field_t *f)
{
    return (int32_t *)(void *)((char *)ev + f->off);
}

static int32_t f_ci32(const hub_event_t *ev, const field_t *f)
{
    int32_t v;
    memcpy(&v, (const char *)ev + f->off, sizeof(v));
    return v;
}

/* Enums are stored as the C enum type, which has the size of int on every ABI we build for. */
static int f_cenum(const hub_event_t *ev, const field_t *f)
{
    int v;
    memcpy(&v, (const char *)ev + f->off, sizeof(v));
    return v;
}

static void f_set_enum(hub_event_t *ev, const field_t *f, int v)
{
    memcpy((char *)ev + f->off, &v, sizeof(v));
}

static hub_risk_set_t f_crisks(const hub_event_t *ev, const field_t *f)
{
    hub_risk_set_t v;
    memcpy(&v, (const char *)ev + f->off, sizeof(v));
    return v;
}

static void f_set_risks(hub_event_t *ev, const field_t *f, hub_risk_set_t v)
{
    memcpy((char *)ev + f->off, &v, sizeof(v));
}

static int f_has(const hub_event_t *ev, const field_t *f)
{
    int v;
    if (f->has_off < 0)
        return 1;
    memcpy(&v, (const char *)ev + f->has_off, sizeof(v));
    return v;
}

static void f_set_has(hub_event_t *ev, const field_t *f, int v)
{
    if (f->has_off >= 0)
        memcpy((char *)ev + f->has_off, &v, sizeof(v));
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/*
 * The length (2 to 4) of the well-formed multi-byte UTF-8 sequence at p, of
 * which avail bytes may be read, or 0 for a stray continuation byte, an
 * overlong form, a surrogate, a value above U+10FFFF or a cut-short sequence.
 * *cp gets its code point. jansson's json_stringn accepts exactly these.
 */
static size_t utf8_seq(const unsigned char *p, size_t avail, unsigned *cp)
{
    unsigned c = p[0], v;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
        (n == 4 && (v < 0x10000 || v > 0x10ffff)))
        return 0;
    *cp = v;
    return n;
}

/* ---- JSON members ----------------------------------------------------------- */

/*
 * An event's JSON object is its header (event_id, occurred_at, the source
 * field) followed by its type's fields, in table order. hub_event_to_json and
 * hub_event_json_text both take names, order and null-ness from member(), so
 * the tree and the text cannot disagree.
 */
#define HEADER_MEMBERS 3

typedef enum { V_NULL, V_STR, V_DATE, V_TIME, V_INT, V_RISKS } value_kind_t;

typedef struct {
    value_kind_t kind;
    const char *s; /* V_STR; not NUL-terminated when it fills its buffer */
    size_t len;    /* V_STR */
    int64_t n;     /* V_DATE day, V_TIME Unix ms, V_INT value, V_RISKS set */
} value_t;

static value_t str_value(const char *s, size_t size)
{
    return (value_t){V_STR, s, strnlen(s, size), 0};
}

/* Member i (< HEADER_MEMBERS + t->nfields) of ev, of type t: its name, and its value in *v. */
static const char *member(const hub_event_t *ev, const type_t *t, size_t i, value_t *v)
{
    const field_t *f;

    switch (i) {
    case 0:
        *v = str_value(ev->event_id, sizeof(ev->event_id));
        return "event_id";
    case 1:
        *v = (value_t){V_TIME, NULL, 0, ev->occurred_at};
        return "occurred_at";
    case 2:
        *v = str_value(ev->source, sizeof(ev->source));
        return source_field(t);
    }
    f = &t->fields[i - HEADER_MEMBERS];
    *v = (value_t){V_NULL, NULL, 0, 0};
    if (!f_has(ev, f))
        return f->name;
    switch (f->kind) {
    case K_UUID:
    case K_SUBJECT:
    case K_CODE:
    case K_TITLE:
    case K_LINK:
        *v = str_value(f_cstr(ev, f), f->size);
        break;
    case K_DATE:
        *v = (value_t){V_DATE, NULL, 0, f_ci32(ev, f)};
        break;
    case K_INT:
        *v = (value_t){V_INT, NULL, 0, f_ci32(ev, f)};
        break;
    case K_ENUM: {
        const char *name = sym_name(f->syms, f_cenum(ev, f));
        if (name)
            *v = (value_t){V_STR, name, strlen(name), 0};
        break;
    }
    case K_RISKS:
        *v = (value_t){V_RISKS, NULL, 0, f_crisks(ev, f)};
        break;
    }
    return f->name;
}

/* ---- to JSON ---------------------------------------------------------------- */

/* json_object_set_new that reports failure instead of leaking or ignoring it. */
static int put(json_t *obj, const char *name, json_t *v)
{
    if (!v)
        return -1;
    return json_object_set_new(obj, name, v);
}

static json_t *value_json(const value_t *v)
{
    char buf[40];

    switch (v->kind) {
    case V_NULL:
        return json_null();
    case V_STR: {
        /* Validated events are UTF-8; a struct that is not becomes null, not invalid JSON. */
        json_t *s = json_stringn(v->s, v->len);
        return s ? s : json_null();
    }
    case V_DATE:
        return json_string(hub_date_format((hub_date_t)v->n, buf, sizeof(buf)));
    case V_TIME:
        return json_string(hub_timestamp_format(v->n, buf, sizeof(buf)));
    case V_INT:
        return json_integer(v->n);
    case V_RISKS: {
        json_t *arr = json_array();
        for (int i = 0; arr && i < HUB_RISK__COUNT; i++)
            if ((v->n & HUB_RISK_BIT(i)) &&
                json_array_append_new(arr, json_string(risk_names[i]))) {
                json_decref(arr);
                return NULL;
            }
        return arr;
    }
    }
    return NULL;
}

json_t *hub_event_to_json(const hub_event_t *ev)
{
    const type_t *t = type_of(ev->type);
    json_t *obj = json_object();

    for (size_t i = 0; obj && t && i < HEADER_MEMBERS + t->nfields; i++) {
        value_t v;
        const char *name = member(ev, t, i, &v);
        if (put(obj, name, value_json(&v))) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

/* ---- to JSON text ----------------------------------------------------------- */

/* Output in the manner of snprintf: len counts every byte, only the first size are stored. */
typedef struct {
    char *buf;
    size_t size;
    size_t len;
} text_t;

static void put_bytes(text_t *w, const void *s, size_t n)
{
    if (w->len < w->size) {
        size_t room = w->size - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

/* jansson's escape for c (a control character, '"' or '\\'): upper-case hex in \u00XX. */
static void put_escape(text_t *w, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[6] = {'\\', (char)c, '0', '0', 0, 0};
    size_t n = 2;

    switch (c) {
    case '\b':
        e[1] = 'b';
        break;
    case '\f':
        e[1] = 'f';
        break;
    case '\n':
        e[1] = 'n';
        break;
    case '\r':
        e[1] = 'r';
        break;
    case '\t':
        e[1] = 't';
        break;
    case '"':
    case '\\':
        break;
    default:
        e[1] = 'u';
        e[4] = hex[c >> 4];
        e[5] = hex[c & 0xf];
        n = 6;
    }
    put_bytes(w, e, n);
}

/*
 * A string as json_dumps writes it without JSON_ENSURE_ASCII or
 * JSON_ESCAPE_SLASH; null when it is not UTF-8, as value_json makes it.
 */
static void put_string(text_t *w, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    size_t start = w->len;
    unsigned cp;

    put_bytes(w, "\"", 1);
    while (p < end) {
        if (*p >= 0x80) {
            size_t n = utf8_seq(p, (size_t)(end - p), &cp);
            if (!n) {
                w->len = start;
                put_bytes(w, "null", 4);
                return;
            }
            p += n;
        } else if (*p < 0x20 || *p == '"' || *p == '\\') {
            put_bytes(w, run, (size_t)(p - run));
            put_escape(w, *p);
            run = ++p;
        } else {
            p++;
        }
    }
    put_bytes(w, run, (size_t)(p - run));
    put_bytes(w, "\"", 1);
}

/* v as exactly width decimal digits, zero-padded. */
static void put_digits(char *out, unsigned v, int width)
{
    while (width-- > 0) {
        out[width] = (char)('0' + v % 10);
        v /= 10;
    }
}

/*
 * "YYYY-MM-DD" for day number d into out (no NUL), as hub_date_format writes
 * it; 0 for years outside 0000-9999, which are left to hub_date_format.
 */
static size_t ymd_text(int64_t d, char *out)
{
    int y, m, day;

    if (d < INT32_MIN || d > INT32_MAX)
        return 0;
    hub_date_to_ymd((hub_date_t)d, &y, &m, &day);
    if (y < 0 || y > 9999)
        return 0;
    put_digits(out, (unsigned)y, 4);
    out[4] = '-';
    put_digits(out + 5, (unsigned)m, 2);
    out[7] = '-';
    put_digits(out + 8, (unsigned)day, 2);
    return 10;
}

/* Dates and timestamps as quoted strings, without snprintf for years 0000-9999. */
static void put_time(text_t *w, value_kind_t kind, int64_t n)
{
    char buf[48];
    size_t len;

    if (kind == V_DATE) {
        len = ymd_text(n, buf + 1);
        if (!len)
            len = strlen(hub_date_format((hub_date_t)n, buf + 1, sizeof(buf) - 2));
    } else {
        /* Floor division, as hub_timestamp_format splits ms into days and the time of day. */
        int64_t day = n / 86400000, ms = n % 86400000;
        if (ms < 0) {
            day--;
            ms += 86400000;
        }
        len = ymd_text(day, buf + 1);
        if (len) {
            buf[11] = 'T';
            put_digits(buf + 12, (unsigned)(ms / 3600000), 2);
            buf[14] = ':';
            put_digits(buf + 15, (unsigned)(ms / 60000 % 60), 2);
            buf[17] = ':';
            put_digits(buf + 18, (unsigned)(ms / 1000 % 60), 2);
            buf[20] = '.';
            put_digits(buf + 21, (unsigned)(ms % 1000), 3);
            buf[24] = 'Z';
            len = 24;
        } else {
            len = strlen(hub_timestamp_format(n, buf + 1, sizeof(buf) - 2));
        }
    }
    buf[0] = '"';
    buf[len + 1] = '"';
    put_bytes(w, buf, len + 2);
}

static void put_int(text_t *w, int64_t n)
{
    char buf[24];
    size_t i = sizeof(buf);
    uint64_t u = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;

    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (n < 0)
        buf[--i] = '-';
    put_bytes(w, buf + i, sizeof(buf) - i);
}

static void put_value(text_t *w, const value_t *v)
{
    switch (v->kind) {
    case V_NULL:
        put_bytes(w, "null", 4);
        break;
    case V_STR:
        put_string(w, v->s, v->len);
        break;
    case V_DATE:
    case V_TIME:
        put_time(w, v->kind, v->n);
        break;
    case V_INT:
        put_int(w, v->n);
        break;
    case V_RISKS: {
        const char *sep = "\"";
        put_bytes(w, "[", 1);
        for (int i = 0; i < HUB_RISK__COUNT; i++)
            if (v->n & HUB_RISK_BIT(i)) {
                put_bytes(w, sep, strlen(sep));
                put_bytes(w, risk_names[i], strlen(risk_names[i]));
                put_bytes(w, "\"", 1);
                sep = ",\"";
            }
        put_bytes(w, "]", 1);
        break;
    }
    }
}

size_t hub_event_json_text(const hub_event_t *ev, char *buf, size_t size)
{
    const type_t *t = type_of(ev->type);
    text_t w = {buf, size, 0};

    put_bytes(&w, "{", 1);
    for (size_t i = 0; t && i < HEADER_MEMBERS + t->nfields; i++) {
        value_t v;
        const char *name = member(ev, t, i, &v);
        put_bytes(&w, i ? ",\"" : "\"", i ? 2 : 1);
        put_bytes(&w, name, strlen(name));
        put_bytes(&w, "\":", 2);
        put_value(&w, &v);
    }
    put_bytes(&w, "}", 1);
    if (size)
        buf[w.len < size ? w.len : size - 1] = '\0';
    return w.len;
}

/* ---- from JSON -------------------------------------------------------------- */

/* Copies a JSON string into a fixed buffer: not a string, embedded NUL or too long are errors. */
static int str_from_json(const char *name, const json_t *v, char *buf, size_t size, char *errstr,
                         size_t errstr_size)
{
    size_t len;
    if (!json_is_string(v))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must be a string", name);
    len = json_string_length(v);
    if (memchr(json_string_value(v), '\0', len))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must not contain a NUL character",
                        name);
    if (len >= size)
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: longer than %zu characters", name,
                        size - 1);
    memcpy(buf, json_string_value(v), len);
    buf[len] = '\0';
    return HUB_OK;
}

static int date_from_json(const char *name, const json_t *v, hub_date_t *out, char *errstr,
                          size_t errstr_size)
{
    if (!json_is_string(v))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must be a date string (YYYY-MM-DD)",
                        name);
    if (hub_date_parse(json_string_value(v), out) != HUB_OK)
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "%s: not an existing date in the form YYYY-MM-DD", name);
    return HUB_OK;
}

static int risks_from_json(const char *name, const json_t *v, hub_risk_set_t *out, char *errstr,
                           size_t errstr_size)
{
    size_t i;
    const json_t *e;

    *out = 0;
    if (!json_is_array(v))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must be an array of symbols", name);
    json_array_foreach(v, i, e)
    {
        int rc = json_is_string(e) ? hub_risk_category_from_name(json_string_value(e)) : -2;
        if (rc == -2)
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: entry %zu must be a string", name,
                            i + 1);
        if (rc < 0)
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: entry %zu is not a known symbol",
                            name, i + 1);
        if (*out & HUB_RISK_BIT(rc))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: entry %zu repeats a symbol", name,
                            i + 1);
        *out |= HUB_RISK_BIT(rc);
    }
    return HUB_OK;
}

static int field_from_json(const field_t *f, const json_t *v, hub_event_t *ev, char *errstr,
                           size_t errstr_size)
{
    if (!v || json_is_null(v)) {
        if (f->has_off >= 0) {
            f_set_has(ev, f, 0);
            return HUB_OK;
        }
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: %s", f->name,
                        v ? "must not be null" : "missing");
    }
    f_set_has(ev, f, 1);
    switch (f->kind) {
    case K_UUID:
    case K_SUBJECT:
    case K_CODE:
    case K_TITLE:
    case K_LINK:
        return str_from_json(f->name, v, f_str(ev, f), f->size, errstr, errstr_size);
    case K_DATE:
        return date_from_json(f->name, v, f_i32(ev, f), errstr, errstr_size);
    case K_INT: {
        json_int_t n;
        if (!json_is_integer(v))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must be an integer", f->name);
        n = json_integer_value(v);
        if (n < INT32_MIN || n > INT32_MAX)
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: out of the 32-bit range",
                            f->name);
        *f_i32(ev, f) = (int32_t)n;
        return HUB_OK;
    }
    case K_ENUM: {
        int idx;
        if (!json_is_string(v))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must be a symbol string",
                            f->name);
        idx = sym_index(f->syms, json_string_value(v));
        if (idx < 0)
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: not a known symbol", f->name);
        f_set_enum(ev, f, idx);
        return HUB_OK;
    }
    case K_RISKS: {
        hub_risk_set_t set;
        int err = risks_from_json(f->name, v, &set, errstr, errstr_size);
        if (err == HUB_OK)
            f_set_risks(ev, f, set);
        return err;
    }
    }
    return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: unsupported field", f->name);
}

static int known_field(const type_t *t, const char *source_field, const char *key)
{
    if (strcmp(key, "event_id") == 0 || strcmp(key, "occurred_at") == 0 ||
        strcmp(key, source_field) == 0)
        return 1;
    for (size_t i = 0; i < t->nfields; i++)
        if (strcmp(t->fields[i].name, key) == 0)
            return 1;
    return 0;
}

int hub_event_from_json(hub_event_type_t type, const json_t *obj, hub_event_t *ev, char *errstr,
                        size_t errstr_size)
{
    const type_t *t = type_of(type);
    const char *source_field = hub_event_source_field(type);
    const char *key;
    const json_t *v;
    int err;

    memset(ev, 0, sizeof(*ev));
    if (!t)
        return hub_errf(errstr, errstr_size, HUB_EVALID, "unknown event type %d", (int)type);
    if (!json_is_object(obj))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "event: must be a JSON object");
    ev->type = type;

    json_object_foreach((json_t *)obj, key, v)
    {
        if (!known_field(t, source_field, key))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%.64s: unknown field for %s", key,
                            t->name);
    }

    v = json_object_get(obj, "event_id");
    if (v) {
        if ((err = str_from_json("event_id", v, ev->event_id, sizeof(ev->event_id), errstr,
                                 errstr_size)))
            return err;
    } else if (hub_uuid_v4(ev->event_id) != HUB_OK) {
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "event_id: missing, and no randomness "
                        "to generate one");
    }

    v = json_object_get(obj, "occurred_at");
    if (!v) {
        ev->occurred_at = hub_now_ms();
    } else if (json_is_integer(v)) {
        ev->occurred_at = (int64_t)json_integer_value(v);
    } else if (!json_is_string(v)) {
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "occurred_at: must be an ISO 8601 timestamp string or epoch milliseconds");
    } else if (hub_timestamp_parse(json_string_value(v), &ev->occurred_at) != HUB_OK) {
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "occurred_at: not an ISO 8601 timestamp (YYYY-MM-DDThh:mm:ss[.sss]Z)");
    }

    v = json_object_get(obj, source_field);
    if (!v || json_is_null(v))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: %s", source_field,
                        v ? "must not be null" : "missing");
    if ((err = str_from_json(source_field, v, ev->source, sizeof(ev->source), errstr, errstr_size)))
        return err;

    for (size_t i = 0; i < t->nfields; i++)
        if ((err = field_from_json(&t->fields[i], json_object_get(obj, t->fields[i].name), ev,
                                   errstr, errstr_size)))
            return err;
    return HUB_OK;
}

/* ---- validation ------------------------------------------------------------- */

/* Each hex digit's value plus one; 0 for any other byte (NUL too). */
static const unsigned char hex_plus_one[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int hub_uuid_parse(const char *s, unsigned char out[16])
{
    const unsigned char *c = (const unsigned char *)s;
    unsigned char u[16];
    int k = 0;
    if (!s)
        return -1;
    /* Left to right, so a short string stops at its NUL (never a digit or a dash). */
    for (int i = 0; i < 36;) {
        unsigned hi, lo;
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c[i++] != '-')
                return -1;
            continue;
        }
        if (!(hi = hex_plus_one[c[i]]) || !(lo = hex_plus_one[c[i + 1]]))
            return -1;
        u[k++] = (unsigned char)((hi - 1) << 4 | (lo - 1));
        i += 2;
    }
    if (c[36])
        return -1;
    memcpy(out, u, 16);
    return 0;
}

int hub_uuid_valid(const char *s)
{
    unsigned char u[16];
    return hub_uuid_parse(s, u) == 0;
}

int hub_subject_key_valid(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int code_valid(const char *s)
{
    static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789_.-";
    return *s && strspn(s, allowed) == strlen(s);
}

/* Well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF) without control codes. */
static int text_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);

    if (p == end)
        return 0;
    while (p < end) {
        unsigned cp;
        size_t n;
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        if (*p < 0x80) {
            p++;
            continue;
        }
        n = utf8_seq(p, (size_t)(end - p), &cp);
        if (!n || (cp >= 0x80 && cp <= 0x9f))
            return 0;
        p += n;
    }
    return 1;
}

/* An https URL with a host, in printable ASCII (non-ASCII must be percent-encoded). */
static int link_valid(const char *s)
{
    if (strncmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/')
        return 0;
    for (const char *p = s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

static int agency_known(const hub_validation_t *rules, const char *code)
{
    for (size_t i = 0; i < rules->nagencies; i++)
        if (rules->agencies[i] && strcmp(rules->agencies[i], code) == 0)
            return 1;
    return 0;
}

static int date_in_range(hub_date_t d)
{
    hub_date_t lo, hi;
    hub_date_from_ymd(1900, 1, 1, &lo);
    hub_date_from_ymd(2200, 12, 31, &hi);
    return d >= lo && d <= hi;
}

/* The date of birth the flagged_on rule compares with, when the event has one. */
static hub_date_t birth_of(const hub_event_t *ev)
{
    return ev->type == HUB_EVENT_YOUNG_PERSON_FLAGGED ? ev->u.flagged.date_of_birth : INT32_MIN;
}

static int validate_field(const hub_event_t *ev, const field_t *f, const hub_validation_t *rules,
                          hub_date_t today, char *errstr, size_t errstr_size)
{
    const char *s = f_cstr(ev, f);
    int has = f_has(ev, f);

    if (has != 0 && has != 1)
        return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: presence flag must be 0 or 1",
                        f->name);
    if (!has)
        return HUB_OK;
    switch (f->kind) {
    case K_UUID:
    case K_SUBJECT:
    case K_CODE:
    case K_TITLE:
    case K_LINK:
        if (!memchr(s, '\0', f->size))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: longer than %zu characters",
                            f->name, f->size - 1);
        break;
    default:
        break;
    }
    switch (f->kind) {
    case K_UUID:
        if (!hub_uuid_valid(s))
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: must be a UUID (8-4-4-4-12 hex digits)", f->name);
        break;
    case K_SUBJECT:
        if (!hub_subject_key_valid(s))
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: must be 64 lower-case hex characters", f->name);
        break;
    case K_CODE:
        if (!code_valid(s))
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: must be a non-empty code of letters, digits, '_', '.' and '-'",
                            f->name);
        if ((f->flags & F_AGENCY) && rules && rules->agencies && !agency_known(rules, s))
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: not one of the configured agency codes", f->name);
        break;
    case K_TITLE:
        if (!text_valid(s))
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: must be non-empty UTF-8 text without control characters", f->name);
        break;
    case K_LINK:
        if (!link_valid(s))
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: must be an https:// URL without spaces", f->name);
        break;
    case K_DATE: {
        hub_date_t d = f_ci32(ev, f);
        if (!date_in_range(d))
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: must be between 1900-01-01 and 2200-12-31", f->name);
        if (f->date == D_BIRTH && d > today)
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must not be in the future",
                            f->name);
        if (f->date == D_FLAGGED && d > today + 1)
            return hub_errf(errstr, errstr_size, HUB_EVALID,
                            "%s: must not be more than one day in the future", f->name);
        if (f->date == D_FLAGGED && d < birth_of(ev))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must not be before date_of_birth",
                            f->name);
        break;
    }
    case K_INT:
        if (f_ci32(ev, f) < f->min)
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must be at least %d", f->name,
                            (int)f->min);
        break;
    case K_ENUM:
        if (!sym_name(f->syms, f_cenum(ev, f)))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: not a known symbol", f->name);
        break;
    case K_RISKS: {
        hub_risk_set_t set = f_crisks(ev, f);
        if (set & ~(hub_risk_set_t)(HUB_RISK_BIT(HUB_RISK__COUNT) - 1))
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: holds an unknown category",
                            f->name);
        if ((f->flags & F_NONEMPTY) && set == 0)
            return hub_errf(errstr, errstr_size, HUB_EVALID, "%s: must name at least one category",
                            f->name);
        break;
    }
    }
    return HUB_OK;
}

int hub_event_validate(const hub_event_t *ev, const hub_validation_t *rules, char *errstr,
                       size_t errstr_size)
{
    const type_t *t = type_of(ev->type);
    const char *source_field;
    int64_t now = rules && rules->now_ms ? rules->now_ms : hub_now_ms();
    hub_date_t today = hub_date_london(now);
    hub_date_t lo, hi;
    int err;

    if (!t)
        return hub_errf(errstr, errstr_size, HUB_EVALID, "type: not a known event type");
    source_field = hub_event_source_field(ev->type);
    if (!memchr(ev->event_id, '\0', sizeof(ev->event_id)) || !hub_uuid_valid(ev->event_id))
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "event_id: must be a UUID (8-4-4-4-12 hex digits)");
    hub_date_from_ymd(1900, 1, 1, &lo);
    hub_date_from_ymd(2200, 12, 31, &hi);
    if (ev->occurred_at < (int64_t)lo * 86400000 || ev->occurred_at >= ((int64_t)hi + 1) * 86400000)
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "occurred_at: must be between 1900-01-01 and 2200-12-31");
    if (!memchr(ev->source, '\0', sizeof(ev->source)) || !code_valid(ev->source))
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "%s: must be a non-empty code of letters, digits, '_', '.' and '-'",
                        source_field);
    if (t->partner && rules && rules->agencies && !agency_known(rules, ev->source))
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "%s: not one of the configured agency codes", source_field);
    for (size_t i = 0; i < t->nfields; i++)
        if ((err = validate_field(ev, &t->fields[i], rules, today, errstr, errstr_size)))
            return err;
    return HUB_OK;
}

/* ---- UUIDs -------------------------------------------------------------------- */

static void uuid_format(const unsigned char b[16], char out[HUB_UUID_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0xf];
    }
    *p = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

static EVP_MD *uuid_sha1;
static pthread_once_t uuid_sha1_once = PTHREAD_ONCE_INIT;

/* OpenSSL 3 looks an algorithm up on every EVP_sha1() init; fetch it once per process. */
static void uuid_sha1_fetch(void)
{
    uuid_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
}

int hub_uuid_v5(const char *ns, const void *name, size_t name_len, char out[HUB_UUID_SIZE])
{
    unsigned char nsb[16], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = NULL;
    int err = HUB_EINVAL;

    if (!hub_uuid_valid(ns))
        return HUB_EINVAL;
    for (int i = 0, j = 0; i < 16; i++, j += 2) {
        if (ns[j] == '-')
            j++;
        nsb[i] = (unsigned char)(hexval(ns[j]) << 4 | hexval(ns[j + 1]));
    }
    pthread_once(&uuid_sha1_once, uuid_sha1_fetch);
    if (!uuid_sha1)
        return HUB_EINVAL;
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return HUB_ENOMEM;
    if (EVP_DigestInit_ex(ctx, uuid_sha1, NULL) != 1 || EVP_DigestUpdate(ctx, nsb, 16) != 1 ||
        (name_len && EVP_DigestUpdate(ctx, name, name_len) != 1) ||
        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16)
        goto out;
    /* RFC 4122 section 4.3: version 5 in the high nibble of byte 6, variant 10xx in byte 8. */
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    uuid_format(md, out);
    err = HUB_OK;
out:
    EVP_MD_CTX_free(ctx);
    return err;
}

int hub_uuid_v4(char out[HUB_UUID_SIZE])
{
    unsigned char b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return HUB_EIO;
        }
        got += (size_t)n;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
    return HUB_OK;
}

/* ---- pseudonymisation ------------------------------------------------------- */

int hub_pseudonymise(const char *nhs_number, const void *secret, size_t secret_len,
                     char out[HUB_SUBJECT_KEY_SIZE], char *errstr, size_t errstr_size)
{
    static const char hex[] = "0123456789abcdef";
    char digits[10];
    size_t n = 0;
    int sum = 0, check;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    if (!nhs_number)
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "no NHS number given");
    if (!secret || secret_len == 0)
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "the linkage secret is empty");
    for (const char *p = nhs_number; *p; p++) {
        if (*p == ' ' || *p == '-')
            continue;
        if (*p < '0' || *p > '9')
            return hub_errf(errstr, errstr_size, HUB_EINVAL,
                            "an NHS number may contain only digits, spaces and hyphens");
        if (n == sizeof(digits))
            return hub_errf(errstr, errstr_size, HUB_EINVAL,
                            "an NHS number has exactly ten digits");
        digits[n++] = *p;
    }
    if (n != sizeof(digits))
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "an NHS number has exactly ten digits");
    /* Modulus 11: weights 10..2 over the first nine digits; 11 means 0, 10 is never issued. */
    for (int i = 0; i < 9; i++)
        sum += (digits[i] - '0') * (10 - i);
    check = 11 - sum % 11;
    if (check == 11)
        check = 0;
    if (check == 10 || check != digits[9] - '0')
        return hub_errf(errstr, errstr_size, HUB_EINVAL,
                        "not a valid NHS number (the check digit does not match)");
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)digits, sizeof(digits),
              mac, &maclen) ||
        maclen != 32)
        return hub_errf(errstr, errstr_size, HUB_EINVAL, "HMAC-SHA256 failed");
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 0xf];
    }
    out[64] = '\0';
    return HUB_OK;
}
