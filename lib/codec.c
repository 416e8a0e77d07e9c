/*
 * codec.c: hub events to and from Confluent-framed Avro.
 *
 * Three paths, chosen per message by its schema id:
 *
 *  - the direct coder: for the catalogue's newest schema of each event type
 *    (writer == reader, the everyday case) a small op list is compiled at
 *    start from the parsed schema and the C struct layout, and bytes are
 *    read and written straight to and from the struct. Nothing is allocated
 *    per event, and every length, index and string is checked against the
 *    bytes actually present before it is used.
 *  - avro-c's resolved reader: for any other writer schema (an older
 *    catalogue version, or one fetched from the registry) the bytes are
 *    first checked by the same validating walker, then read by avro-c into a
 *    value of the writer schema and seen through a resolved reader of the
 *    reader schema, cached per writer id.
 *  - avro-c generic values for the catalogue's own schemas, selected with
 *    hub_codec_set_generic(): the reference the direct coder is measured
 *    and cross-checked against.
 *
 * Messages never quote payload bytes: they name the field and the problem.
 */
#include <avro.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/events.h"
#include "hub/registry.h"
#include "registry_int.h"

#define FRAME_HEADER 5
/* Arrays of items that take no bytes (e.g. null) could claim any count; cap them. */
#define MAX_ZERO_SIZE_ITEMS 65536
/* Deeper nesting than this in a writer schema is refused rather than recursed into. */
#define MAX_DEPTH 64
/* Schema ids that failed to resolve are remembered, up to this many writers in all. */
#define MAX_WRITERS 1024

_Static_assert(sizeof(hub_local_authority_t) == sizeof(int32_t), "C enums are stored as int32");
_Static_assert(sizeof(hub_date_t) == sizeof(int32_t), "dates are stored as int32");
_Static_assert(HUB_RISK__COUNT < 32, "risk sets are 32-bit and are shifted by the count");

/* ------------------------------------------------------------------------- */
/* What each C struct holds                                                  */
/* ------------------------------------------------------------------------- */

typedef enum {
    FK_STR,      /* string into a char buffer */
    FK_OPT_STR,  /* ["null", "string"] into a has_ flag and a buffer */
    FK_LONG,     /* long (timestamp-millis) into int64_t */
    FK_INT,      /* int or date into int32_t */
    FK_OPT_INT,  /* ["null", int/date] into a has_ flag and int32_t */
    FK_ENUM,     /* enum into a C enum */
    FK_ENUM_SET, /* array of enum into a bit set */
} field_kind_t;

typedef struct {
    const char *name; /* the Avro field name */
    field_kind_t kind;
    size_t off;     /* in hub_event_t */
    size_t size;    /* FK_*STR: the buffer size */
    size_t has_off; /* FK_OPT_*: the int has_ flag */
    int (*from_name)(const char *symbol);
    int nvalues; /* FK_ENUM*: number of C values */
} field_desc_t;

#define EV_OFF(m)  offsetof(hub_event_t, m)
#define EV_SIZE(m) sizeof(((hub_event_t *)0)->m)
#define F_STR(n, m)                                                                                \
    {                                                                                              \
        n, FK_STR, EV_OFF(m), EV_SIZE(m), 0, NULL, 0                                               \
    }
#define F_OPT_STR(n, m, has)                                                                       \
    {                                                                                              \
        n, FK_OPT_STR, EV_OFF(m), EV_SIZE(m), EV_OFF(has), NULL, 0                                 \
    }
#define F_LONG(n, m)                                                                               \
    {                                                                                              \
        n, FK_LONG, EV_OFF(m), 0, 0, NULL, 0                                                       \
    }
#define F_INT(n, m)                                                                                \
    {                                                                                              \
        n, FK_INT, EV_OFF(m), 0, 0, NULL, 0                                                        \
    }
#define F_OPT_INT(n, m, has)                                                                       \
    {                                                                                              \
        n, FK_OPT_INT, EV_OFF(m), 0, EV_OFF(has), NULL, 0                                          \
    }
#define F_ENUM(n, m, fn, cnt)                                                                      \
    {                                                                                              \
        n, FK_ENUM, EV_OFF(m), 0, 0, fn, cnt                                                       \
    }
#define F_SET(n, m, fn, cnt)                                                                       \
    {                                                                                              \
        n, FK_ENUM_SET, EV_OFF(m), 0, 0, fn, cnt                                                   \
    }
#define F_HEADER(src)                                                                              \
    F_STR("event_id", event_id), F_LONG("occurred_at", occurred_at), F_STR(src, source)

static const field_desc_t fields_flagged[] = {
    F_HEADER("source_agency"),
    F_STR("subject_key", u.flagged.subject_key),
    F_ENUM("local_authority", u.flagged.local_authority, hub_local_authority_from_name,
           HUB_LA__COUNT),
    F_INT("date_of_birth", u.flagged.date_of_birth),
    F_SET("risk_categories", u.flagged.risk_categories, hub_risk_category_from_name,
          HUB_RISK__COUNT),
    F_INT("flagged_on", u.flagged.flagged_on),
};

static const field_desc_t fields_plan_due[] = {
    F_HEADER("producer"),
    F_STR("subject_key", u.plan_due.subject_key),
    F_ENUM("local_authority", u.plan_due.local_authority, hub_local_authority_from_name,
           HUB_LA__COUNT),
    F_INT("due_date", u.plan_due.due_date),
    F_ENUM("rule", u.plan_due.rule, hub_transition_rule_from_name, HUB_RULE__COUNT),
    F_STR("cause_event_id", u.plan_due.cause_event_id),
    F_SET("risk_categories", u.plan_due.risk_categories, hub_risk_category_from_name,
          HUB_RISK__COUNT),
};

static const field_desc_t fields_plan_completed[] = {
    F_HEADER("source_agency"),
    F_STR("subject_key", u.plan_completed.subject_key),
    F_ENUM("local_authority", u.plan_completed.local_authority, hub_local_authority_from_name,
           HUB_LA__COUNT),
    F_INT("completed_on", u.plan_completed.completed_on),
    F_ENUM("outcome", u.plan_completed.outcome, hub_plan_outcome_from_name, HUB_OUTCOME__COUNT),
};

static const field_desc_t fields_action_recorded[] = {
    F_HEADER("source_agency"),
    F_STR("action_id", u.action_recorded.action_id),
    F_STR("meeting_id", u.action_recorded.meeting_id),
    F_INT("meeting_date", u.action_recorded.meeting_date),
    F_ENUM("kind", u.action_recorded.kind, hub_action_kind_from_name, HUB_ACTION__COUNT),
    F_STR("owner_agency", u.action_recorded.owner_agency),
    F_STR("owner_group_id", u.action_recorded.owner_group_id),
    F_INT("due_date", u.action_recorded.due_date),
    F_OPT_STR("subject_key", u.action_recorded.subject_key, u.action_recorded.has_subject_key),
};

static const field_desc_t fields_action_completed[] = {
    F_HEADER("source_agency"),
    F_STR("action_id", u.action_completed.action_id),
    F_INT("completed_on", u.action_completed.completed_on),
};

static const field_desc_t fields_action_overdue[] = {
    F_HEADER("producer"),
    F_STR("action_id", u.action_overdue.action_id),
    F_STR("owner_group_id", u.action_overdue.owner_group_id),
    F_INT("due_date", u.action_overdue.due_date),
    F_INT("as_of", u.action_overdue.as_of),
    F_INT("days_overdue", u.action_overdue.days_overdue),
};

static const field_desc_t fields_reminder[] = {
    F_HEADER("producer"),
    F_STR("group_id", u.reminder.group_id),
    F_ENUM("kind", u.reminder.kind, hub_reminder_kind_from_name, HUB_REMINDER__COUNT),
    F_OPT_STR("subject_key", u.reminder.subject_key, u.reminder.has_subject_key),
    F_OPT_INT("due_date", u.reminder.due_date, u.reminder.has_due_date),
    F_INT("as_of", u.reminder.as_of),
};

static const field_desc_t fields_briefing_requested[] = {
    F_HEADER("source_agency"),
    F_STR("group_id", u.briefing_requested.group_id),
    F_STR("title", u.briefing_requested.title),
    F_STR("link", u.briefing_requested.link),
};

static const field_desc_t fields_briefing_sent[] = {
    F_HEADER("producer"),
    F_STR("group_id", u.briefing_sent.group_id),
    F_STR("request_event_id", u.briefing_sent.request_event_id),
    F_INT("recipients", u.briefing_sent.recipients),
};

typedef struct {
    const field_desc_t *fields;
    size_t nfields;
    size_t used; /* bytes of hub_event_t this type uses, cleared before decoding */
} type_desc_t;

#define TYPE_DESC(arr, member)                                                                     \
    {                                                                                              \
        arr, HUB_ARRAY_LEN(arr), EV_OFF(u) + EV_SIZE(u.member)                                     \
    }

static const type_desc_t type_descs[HUB_EVENT__COUNT] = {
    [HUB_EVENT_YOUNG_PERSON_FLAGGED] = TYPE_DESC(fields_flagged, flagged),
    [HUB_EVENT_TRANSITION_PLAN_DUE] = TYPE_DESC(fields_plan_due, plan_due),
    [HUB_EVENT_TRANSITION_PLAN_COMPLETED] = TYPE_DESC(fields_plan_completed, plan_completed),
    [HUB_EVENT_MEETING_ACTION_RECORDED] = TYPE_DESC(fields_action_recorded, action_recorded),
    [HUB_EVENT_MEETING_ACTION_COMPLETED] = TYPE_DESC(fields_action_completed, action_completed),
    [HUB_EVENT_MEETING_ACTION_OVERDUE] = TYPE_DESC(fields_action_overdue, action_overdue),
    [HUB_EVENT_REMINDER_DUE] = TYPE_DESC(fields_reminder, reminder),
    [HUB_EVENT_BRIEFING_REQUESTED] = TYPE_DESC(fields_briefing_requested, briefing_requested),
    [HUB_EVENT_BRIEFING_SENT] = TYPE_DESC(fields_briefing_sent, briefing_sent),
};

static const field_desc_t *type_field(hub_event_type_t t, const char *name)
{
    const type_desc_t *td = &type_descs[t];
    for (size_t i = 0; i < td->nfields; i++)
        if (strcmp(td->fields[i].name, name) == 0)
            return &td->fields[i];
    return NULL;
}

static inline void put_i32(hub_event_t *ev, size_t off, int32_t v)
{
    memcpy((char *)ev + off, &v, sizeof(v));
}

static inline int32_t get_i32(const hub_event_t *ev, size_t off)
{
    int32_t v;
    memcpy(&v, (const char *)ev + off, sizeof(v));
    return v;
}

static inline void put_i64(hub_event_t *ev, size_t off, int64_t v)
{
    memcpy((char *)ev + off, &v, sizeof(v));
}

static inline int64_t get_i64(const hub_event_t *ev, size_t off)
{
    int64_t v;
    memcpy(&v, (const char *)ev + off, sizeof(v));
    return v;
}

static inline void put_u32(hub_event_t *ev, size_t off, uint32_t v)
{
    memcpy((char *)ev + off, &v, sizeof(v));
}

static inline uint32_t get_u32(const hub_event_t *ev, size_t off)
{
    uint32_t v;
    memcpy(&v, (const char *)ev + off, sizeof(v));
    return v;
}

/* ------------------------------------------------------------------------- */
/* Bytes                                                                     */
/* ------------------------------------------------------------------------- */

void hub_buf_free(hub_buf_t *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Makes room for need more bytes after b->len. 0 or HUB_ENOMEM. */
static int buf_reserve(hub_buf_t *b, size_t need)
{
    if (b->cap - b->len >= need)
        return HUB_OK;
    size_t ncap = b->cap ? b->cap * 2 : 256;
    while (ncap - b->len < need)
        ncap *= 2;
    unsigned char *nd = realloc(b->data, ncap);
    if (!nd)
        return HUB_ENOMEM;
    b->data = nd;
    b->cap = ncap;
    return HUB_OK;
}

/* Writes a zig-zag varint; the caller has reserved 10 bytes. */
static inline void buf_put_long(hub_buf_t *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    unsigned char *p = b->data + b->len;
    while (z > 0x7f) {
        *p++ = (unsigned char)((z & 0x7f) | 0x80);
        z >>= 7;
    }
    *p++ = (unsigned char)z;
    b->len = (size_t)(p - b->data);
}

static int buf_long(hub_buf_t *b, int64_t v)
{
    if (buf_reserve(b, 10))
        return HUB_ENOMEM;
    buf_put_long(b, v);
    return HUB_OK;
}

static int buf_bytes(hub_buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n + 10))
        return HUB_ENOMEM;
    buf_put_long(b, (int64_t)n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return HUB_OK;
}

/* A cursor over untrusted bytes. */
typedef struct {
    const unsigned char *p, *end;
} rd_t;

enum { RD_OK = 0, RD_TRUNCATED, RD_OVERLONG };

static inline int rd_long(rd_t *r, int64_t *out)
{
    uint64_t v = 0;
    for (int i = 0, shift = 0; i < 10; i++, shift += 7) {
        if (r->p == r->end)
            return RD_TRUNCATED;
        unsigned b = *r->p++;
        /* The tenth byte may only carry the top bit of a 64-bit value. */
        if (i == 9 && b > 1)
            return RD_OVERLONG;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return RD_OK;
        }
    }
    return RD_OVERLONG;
}

static inline int rd_int(rd_t *r, int32_t *out)
{
    int64_t v;
    int rc = rd_long(r, &v);
    if (rc)
        return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return RD_OVERLONG;
    *out = (int32_t)v;
    return RD_OK;
}

static inline size_t rd_left(const rd_t *r)
{
    return (size_t)(r->end - r->p);
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            unsigned b = s[i + k];
            if ((b & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (b & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

/* ------------------------------------------------------------------------- */
/* Errors                                                                    */
/* ------------------------------------------------------------------------- */

static int rd_error(int rdrc, const char *field, char *errstr, size_t errstr_size)
{
    if (rdrc == RD_TRUNCATED)
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "truncated body: it ends inside field %s",
                        field);
    return hub_errf(errstr, errstr_size, HUB_EDECODE,
                    "field %s: integer encoding is too long or out of range", field);
}

/*
 * Reads a length prefix and checks it against the bytes left, so nothing is
 * ever sized from an untrusted number.
 */
static int rd_length(rd_t *r, const char *field, size_t *len, char *errstr, size_t errstr_size)
{
    int64_t n;
    int rc = rd_long(r, &n);
    if (rc)
        return rd_error(rc, field, errstr, errstr_size);
    if (n < 0)
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "field %s: negative length %" PRId64,
                        field, n);
    if ((uint64_t)n > rd_left(r))
        return hub_errf(errstr, errstr_size, HUB_EDECODE,
                        "field %s: length %" PRId64 " is more than the %zu bytes left", field, n,
                        rd_left(r));
    *len = (size_t)n;
    return HUB_OK;
}

/*
 * Reads an array or map block count. A negative count is followed by the
 * block's size in bytes, which must fit in what is left. *count is 0 at the
 * end of the array.
 */
static int rd_block(rd_t *r, const char *field, int64_t *count, char *errstr, size_t errstr_size)
{
    int rc = rd_long(r, count);
    if (rc)
        return rd_error(rc, field, errstr, errstr_size);
    if (*count < 0) {
        size_t bytes;
        if (*count == INT64_MIN)
            return hub_errf(errstr, errstr_size, HUB_EDECODE, "field %s: bad block count", field);
        *count = -*count;
        rc = rd_length(r, field, &bytes, errstr, errstr_size);
        if (rc)
            return rc;
    }
    return HUB_OK;
}

/* ------------------------------------------------------------------------- */
/* The validating walker: checks (and skips) any value of any schema         */
/* ------------------------------------------------------------------------- */

static avro_schema_t deref(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

/* Whether a value of s may take no bytes at all (null, empty records, ...). */
static int may_be_empty(avro_schema_t s, int depth)
{
    s = deref(s);
    if (depth > MAX_DEPTH)
        return 1;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 1;
    case AVRO_FIXED:
        return avro_schema_fixed_size(s) == 0;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (!may_be_empty(avro_schema_record_field_get_by_index(s, (int)i), depth + 1))
                return 0;
        return 1;
    default:
        return 0;
    }
}

static int walk(rd_t *r, avro_schema_t s, const char *field, int depth, char *errstr,
                size_t errstr_size)
{
    int64_t v, count = 0;
    int32_t i32;
    size_t len;
    int rc;

    s = deref(s);
    if (depth > MAX_DEPTH)
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "field %s: nested too deeply", field);
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return HUB_OK;
    case AVRO_BOOLEAN:
        if (!rd_left(r))
            return rd_error(RD_TRUNCATED, field, errstr, errstr_size);
        if (*r->p > 1)
            return hub_errf(errstr, errstr_size, HUB_EDECODE, "field %s: boolean is not 0 or 1",
                            field);
        r->p++;
        return HUB_OK;
    case AVRO_INT32:
        rc = rd_int(r, &i32);
        return rc ? rd_error(rc, field, errstr, errstr_size) : HUB_OK;
    case AVRO_INT64:
        rc = rd_long(r, &v);
        return rc ? rd_error(rc, field, errstr, errstr_size) : HUB_OK;
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        len = avro_typeof(s) == AVRO_FLOAT ? 4 : 8;
        if (rd_left(r) < len)
            return rd_error(RD_TRUNCATED, field, errstr, errstr_size);
        r->p += len;
        return HUB_OK;
    case AVRO_STRING:
    case AVRO_BYTES:
        rc = rd_length(r, field, &len, errstr, errstr_size);
        if (rc)
            return rc;
        if (avro_typeof(s) == AVRO_STRING && !utf8_valid(r->p, len))
            return hub_errf(errstr, errstr_size, HUB_EDECODE, "field %s: string is not valid UTF-8",
                            field);
        r->p += len;
        return HUB_OK;
    case AVRO_FIXED:
        len = (size_t)avro_schema_fixed_size(s);
        if (rd_left(r) < len)
            return rd_error(RD_TRUNCATED, field, errstr, errstr_size);
        r->p += len;
        return HUB_OK;
    case AVRO_ENUM: {
        int nsym = avro_schema_enum_number_of_symbols(s);
        rc = rd_int(r, &i32);
        if (rc)
            return rd_error(rc, field, errstr, errstr_size);
        if (i32 < 0 || i32 >= nsym)
            return hub_errf(errstr, errstr_size, HUB_EDECODE,
                            "field %s: enum index %" PRId32 " out of range (%d symbols)", field,
                            i32, nsym);
        return HUB_OK;
    }
    case AVRO_UNION: {
        size_t nb = avro_schema_union_size(s);
        rc = rd_long(r, &v);
        if (rc)
            return rd_error(rc, field, errstr, errstr_size);
        if (v < 0 || (uint64_t)v >= nb)
            return hub_errf(errstr, errstr_size, HUB_EDECODE,
                            "field %s: union branch %" PRId64 " out of range (%zu branches)", field,
                            v, nb);
        return walk(r, avro_schema_union_branch(s, (int)v), field, depth + 1, errstr, errstr_size);
    }
    case AVRO_ARRAY:
    case AVRO_MAP: {
        avro_schema_t item =
            is_avro_array(s) ? avro_schema_array_items(s) : avro_schema_map_values(s);
        int empty_items = is_avro_array(s) && may_be_empty(item, depth + 1);
        uint64_t total = 0;
        for (;;) {
            rc = rd_block(r, field, &count, errstr, errstr_size);
            if (rc)
                return rc;
            if (count == 0)
                return HUB_OK;
            /* Each item takes at least a byte, unless it may be empty. */
            total += (uint64_t)count;
            if (empty_items ? total > MAX_ZERO_SIZE_ITEMS : (uint64_t)count > rd_left(r))
                return hub_errf(errstr, errstr_size, HUB_EDECODE,
                                "field %s: block of %" PRId64 " items is more than the bytes left",
                                field, count);
            for (int64_t k = 0; k < count; k++) {
                if (is_avro_map(s)) {
                    rc = rd_length(r, field, &len, errstr, errstr_size);
                    if (rc)
                        return rc;
                    if (!utf8_valid(r->p, len))
                        return hub_errf(errstr, errstr_size, HUB_EDECODE,
                                        "field %s: map key is not valid UTF-8", field);
                    r->p += len;
                }
                rc = walk(r, item, field, depth + 1, errstr, errstr_size);
                if (rc)
                    return rc;
            }
        }
    }
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            /* Name nested problems by the top-level field, which is what operators know. */
            const char *name = depth == 0 ? avro_schema_record_field_name(s, (int)i) : field;
            rc = walk(r, avro_schema_record_field_get_by_index(s, (int)i), name, depth + 1, errstr,
                      errstr_size);
            if (rc)
                return rc;
        }
        return HUB_OK;
    default:
        return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "field %s: unsupported Avro type", field);
    }
}

/* Checks a whole record body: well-formed for s, with nothing left over. */
static int walk_body(const unsigned char *p, size_t n, avro_schema_t s, char *errstr,
                     size_t errstr_size)
{
    rd_t r = {p, p + n};
    int rc = walk(&r, s, "(record)", 0, errstr, errstr_size);
    if (rc)
        return rc;
    if (rd_left(&r))
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "%zu trailing bytes after the record",
                        rd_left(&r));
    return HUB_OK;
}

/* ------------------------------------------------------------------------- */
/* Defaults (the JSON in the schema) as Avro bytes and as avro-c values      */
/* ------------------------------------------------------------------------- */

static int encode_default(hub_buf_t *b, avro_schema_t s, const json_t *d, int depth)
{
    s = deref(s);
    if (depth > MAX_DEPTH)
        return HUB_ESCHEMA;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return json_is_null(d) ? HUB_OK : HUB_ESCHEMA;
    case AVRO_BOOLEAN:
        if (!json_is_boolean(d) || buf_reserve(b, 1))
            return HUB_ESCHEMA;
        b->data[b->len++] = json_is_true(d) ? 1 : 0;
        return HUB_OK;
    case AVRO_INT32:
    case AVRO_INT64:
        return json_is_integer(d) ? buf_long(b, json_integer_value(d)) : HUB_ESCHEMA;
    case AVRO_FLOAT: {
        float f = (float)json_number_value(d);
        if (!json_is_number(d) || buf_reserve(b, 4))
            return HUB_ESCHEMA;
        memcpy(b->data + b->len, &f, 4); /* Avro floats are little-endian, like the host */
        b->len += 4;
        return HUB_OK;
    }
    case AVRO_DOUBLE: {
        double f = json_number_value(d);
        if (!json_is_number(d) || buf_reserve(b, 8))
            return HUB_ESCHEMA;
        memcpy(b->data + b->len, &f, 8);
        b->len += 8;
        return HUB_OK;
    }
    case AVRO_STRING:
        return json_is_string(d) ? buf_bytes(b, json_string_value(d), json_string_length(d))
                                 : HUB_ESCHEMA;
    case AVRO_ENUM: {
        int idx = json_is_string(d) ? avro_schema_enum_get_by_name(s, json_string_value(d)) : -1;
        return idx >= 0 ? buf_long(b, idx) : HUB_ESCHEMA;
    }
    case AVRO_ARRAY: {
        size_t n = json_array_size(d);
        if (!json_is_array(d))
            return HUB_ESCHEMA;
        if (n && buf_long(b, (int64_t)n))
            return HUB_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (encode_default(b, avro_schema_array_items(s), json_array_get(d, i), depth + 1))
                return HUB_ESCHEMA;
        return buf_long(b, 0);
    }
    case AVRO_MAP: {
        const char *k;
        const json_t *v;
        if (!json_is_object(d))
            return HUB_ESCHEMA;
        if (json_object_size(d) && buf_long(b, (int64_t)json_object_size(d)))
            return HUB_ENOMEM;
        json_object_foreach((json_t *)d, k, v)
        {
            if (buf_bytes(b, k, strlen(k)) ||
                encode_default(b, avro_schema_map_values(s), v, depth + 1))
                return HUB_ESCHEMA;
        }
        return buf_long(b, 0);
    }
    case AVRO_RECORD:
        if (!json_is_object(d))
            return HUB_ESCHEMA;
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            const json_t *v = json_object_get(d, avro_schema_record_field_name(s, (int)i));
            if (!v ||
                encode_default(b, avro_schema_record_field_get_by_index(s, (int)i), v, depth + 1))
                return HUB_ESCHEMA;
        }
        return HUB_OK;
    case AVRO_UNION:
        /* A union's default belongs to its first branch. */
        if (avro_schema_union_size(s) == 0 || buf_long(b, 0))
            return HUB_ESCHEMA;
        return encode_default(b, avro_schema_union_branch(s, 0), d, depth + 1);
    default:
        return HUB_ESCHEMA;
    }
}

static int value_set_default(avro_value_t *v, const json_t *d, int depth)
{
    avro_value_t child;
    const char *k;
    const json_t *jv;
    int rc = 0;

    if (depth > MAX_DEPTH)
        return EINVAL;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return avro_value_set_null(v);
    case AVRO_BOOLEAN:
        return avro_value_set_boolean(v, json_is_true(d));
    case AVRO_INT32:
        return avro_value_set_int(v, (int32_t)json_integer_value(d));
    case AVRO_INT64:
        return avro_value_set_long(v, json_integer_value(d));
    case AVRO_FLOAT:
        return avro_value_set_float(v, (float)json_number_value(d));
    case AVRO_DOUBLE:
        return avro_value_set_double(v, json_number_value(d));
    case AVRO_STRING:
        return json_is_string(d) ? avro_value_set_string(v, json_string_value(d)) : EINVAL;
    case AVRO_ENUM: {
        avro_schema_t s = avro_value_get_schema(v);
        int idx = json_is_string(d) ? avro_schema_enum_get_by_name(s, json_string_value(d)) : -1;
        return idx >= 0 ? avro_value_set_enum(v, idx) : EINVAL;
    }
    case AVRO_ARRAY:
        for (size_t i = 0; rc == 0 && i < json_array_size(d); i++) {
            rc = avro_value_append(v, &child, NULL);
            if (rc == 0)
                rc = value_set_default(&child, json_array_get(d, i), depth + 1);
        }
        return rc;
    case AVRO_MAP:
        json_object_foreach((json_t *)d, k, jv)
        {
            rc = avro_value_add(v, k, &child, NULL, NULL);
            if (rc == 0)
                rc = value_set_default(&child, jv, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    case AVRO_RECORD: {
        size_t n = 0;
        avro_value_get_size(v, &n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            const char *name = NULL;
            rc = avro_value_get_by_index(v, i, &child, &name);
            if (rc == 0)
                rc = value_set_default(&child, json_object_get(d, name), depth + 1);
        }
        return rc;
    }
    case AVRO_UNION:
        rc = avro_value_set_branch(v, 0, &child);
        return rc ? rc : value_set_default(&child, d, depth + 1);
    default:
        return EINVAL;
    }
}

/* ------------------------------------------------------------------------- */
/* Enum maps: Avro symbol index <-> C value, by symbol name                  */
/* ------------------------------------------------------------------------- */

typedef struct {
    int nsym;     /* symbols in the Avro enum */
    int *to_c;    /* [nsym]: C value, or -1 when the C enum has no such symbol */
    int nvalues;  /* values of the C enum */
    int *to_avro; /* [nvalues]: Avro index, or -1 when the schema lacks the symbol */
} enum_map_t;

static void enum_map_free(enum_map_t *m)
{
    free(m->to_c);
    free(m->to_avro);
    memset(m, 0, sizeof(*m));
}

static int enum_map_build(enum_map_t *m, avro_schema_t e, const field_desc_t *fd)
{
    m->nsym = avro_schema_enum_number_of_symbols(e);
    m->nvalues = fd->nvalues;
    m->to_c = malloc(sizeof(int) * (size_t)(m->nsym ? m->nsym : 1));
    m->to_avro = malloc(sizeof(int) * (size_t)m->nvalues);
    if (!m->to_c || !m->to_avro)
        return HUB_ENOMEM;
    for (int i = 0; i < m->nvalues; i++)
        m->to_avro[i] = -1;
    for (int i = 0; i < m->nsym; i++) {
        int c = fd->from_name(avro_schema_enum_get(e, i));
        m->to_c[i] = (c >= 0 && c < m->nvalues) ? c : -1;
        if (m->to_c[i] >= 0)
            m->to_avro[c] = i;
    }
    return HUB_OK;
}

/* ------------------------------------------------------------------------- */
/* The direct coder: one op per field of the catalogue's newest schema       */
/* ------------------------------------------------------------------------- */

typedef struct {
    const field_desc_t *fd; /* NULL: a field this build does not know, skipped or defaulted */
    const char *name;       /* the Avro field name */
    avro_schema_t schema;   /* the field's type (borrowed from the record) */
    int null_branch;        /* FK_OPT_*: the union index of null */
    enum_map_t map;         /* FK_ENUM* */
    const json_t *dflt;     /* unknown fields: the default (borrowed from the schema JSON) */
    unsigned char *dflt_bytes;
    size_t dflt_len;
} op_t;

typedef struct {
    op_t *ops;
    size_t nops;
} plan_t;

static void plan_free(plan_t *p)
{
    for (size_t i = 0; i < p->nops; i++) {
        enum_map_free(&p->ops[i].map);
        free(p->ops[i].dflt_bytes);
    }
    free(p->ops);
    memset(p, 0, sizeof(*p));
}

static const char *kind_expects(field_kind_t k)
{
    switch (k) {
    case FK_STR:
        return "string";
    case FK_OPT_STR:
        return "[\"null\", \"string\"]";
    case FK_LONG:
        return "long";
    case FK_INT:
        return "int";
    case FK_OPT_INT:
        return "[\"null\", \"int\"]";
    case FK_ENUM:
        return "an enum";
    case FK_ENUM_SET:
        return "an array of enum";
    }
    return "?";
}

/* For ["null", T] (either order): the index of null, or -1 if s is not that shape. */
static int optional_null_branch(avro_schema_t s, avro_type_t t)
{
    if (!is_avro_union(s) || avro_schema_union_size(s) != 2)
        return -1;
    avro_schema_t b0 = deref(avro_schema_union_branch(s, 0));
    avro_schema_t b1 = deref(avro_schema_union_branch(s, 1));
    if (is_avro_null(b0) && avro_typeof(b1) == t)
        return 0;
    if (is_avro_null(b1) && avro_typeof(b0) == t)
        return 1;
    return -1;
}

static int plan_compile(plan_t *p, hub_event_type_t type, avro_schema_t rec, const json_t *json,
                        const char *what, char *errstr, size_t errstr_size)
{
    const type_desc_t *td = &type_descs[type];
    const json_t *jfields = json_object_get(json, "fields");
    size_t n = avro_schema_record_size(rec);
    int rc;

    for (size_t i = 0; i < td->nfields; i++)
        if (avro_schema_record_field_get_index(rec, td->fields[i].name) < 0)
            return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "%s: lacks field %s the hub needs",
                            what, td->fields[i].name);
    p->ops = calloc(n ? n : 1, sizeof(op_t));
    if (!p->ops)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    p->nops = n;
    for (size_t i = 0; i < n; i++) {
        op_t *op = &p->ops[i];
        op->name = avro_schema_record_field_name(rec, (int)i);
        op->schema = deref(avro_schema_record_field_get_by_index(rec, (int)i));
        op->fd = type_field(type, op->name);
        if (!op->fd) {
            /* A field this build does not know: read past it, write its default. */
            hub_buf_t b = {0};
            const json_t *jf = json_array_get(jfields, i);
            op->dflt = json_object_get(jf, "default");
            if (!op->dflt || encode_default(&b, op->schema, op->dflt, 0)) {
                hub_buf_free(&b);
                return hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                                "%s: field %s is not known to this build and has no usable "
                                "default, so events cannot be written",
                                what, op->name);
            }
            op->dflt_bytes = b.data;
            op->dflt_len = b.len;
            continue;
        }
        int ok = 0;
        avro_schema_t s = op->schema;
        switch (op->fd->kind) {
        case FK_STR:
            ok = is_avro_string(s);
            break;
        case FK_LONG:
            ok = is_avro_int64(s);
            break;
        case FK_INT:
            ok = is_avro_int32(s);
            break;
        case FK_OPT_STR:
            op->null_branch = optional_null_branch(s, AVRO_STRING);
            ok = op->null_branch >= 0;
            break;
        case FK_OPT_INT:
            op->null_branch = optional_null_branch(s, AVRO_INT32);
            ok = op->null_branch >= 0;
            break;
        case FK_ENUM:
            ok = is_avro_enum(s);
            if (ok && (rc = enum_map_build(&op->map, s, op->fd)))
                return hub_errf(errstr, errstr_size, rc, "out of memory");
            break;
        case FK_ENUM_SET: {
            avro_schema_t items = is_avro_array(s) ? deref(avro_schema_array_items(s)) : NULL;
            ok = items && is_avro_enum(items);
            if (ok && (rc = enum_map_build(&op->map, items, op->fd)))
                return hub_errf(errstr, errstr_size, rc, "out of memory");
            break;
        }
        }
        if (!ok)
            return hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                            "%s: field %s has type %s, the hub expects %s", what, op->name,
                            avro_schema_type_name(s), kind_expects(op->fd->kind));
    }
    return HUB_OK;
}

/* Reads a string field into its buffer: length, UTF-8 and size checked. */
static int dec_string(rd_t *r, const op_t *op, hub_event_t *ev, char *errstr, size_t errstr_size)
{
    size_t len;
    int rc = rd_length(r, op->name, &len, errstr, errstr_size);
    if (rc)
        return rc;
    if (!utf8_valid(r->p, len))
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "field %s: string is not valid UTF-8",
                        op->name);
    if (len >= op->fd->size)
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "field %s: %zu bytes, more than the %zu this field allows", op->name, len,
                        op->fd->size - 1);
    if (memchr(r->p, '\0', len))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "field %s: contains a NUL character",
                        op->name);
    char *dst = (char *)ev + op->fd->off;
    memcpy(dst, r->p, len);
    dst[len] = '\0';
    r->p += len;
    return HUB_OK;
}

static int dec_enum_index(rd_t *r, const op_t *op, int *c, char *errstr, size_t errstr_size)
{
    int32_t idx;
    int rc = rd_int(r, &idx);
    if (rc)
        return rd_error(rc, op->name, errstr, errstr_size);
    if (idx < 0 || idx >= op->map.nsym)
        return hub_errf(errstr, errstr_size, HUB_EDECODE,
                        "field %s: enum index %" PRId32 " out of range (%d symbols)", op->name, idx,
                        op->map.nsym);
    *c = op->map.to_c[idx];
    if (*c < 0)
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "field %s: symbol %s is not supported by this build", op->name,
                        avro_schema_enum_get(is_avro_array(op->schema)
                                                 ? deref(avro_schema_array_items(op->schema))
                                                 : op->schema,
                                             idx));
    return HUB_OK;
}

static int dec_union_branch(rd_t *r, const op_t *op, int *is_null, char *errstr, size_t errstr_size)
{
    int64_t br;
    int rc = rd_long(r, &br);
    if (rc)
        return rd_error(rc, op->name, errstr, errstr_size);
    if (br != 0 && br != 1)
        return hub_errf(errstr, errstr_size, HUB_EDECODE,
                        "field %s: union branch %" PRId64 " out of range (2 branches)", op->name,
                        br);
    *is_null = br == op->null_branch;
    return HUB_OK;
}

static int plan_decode(const plan_t *p, const unsigned char *body, size_t n, hub_event_t *ev,
                       char *errstr, size_t errstr_size)
{
    rd_t r = {body, body + n};
    int rc, c = 0, is_null = 0;
    int64_t v;
    int32_t i32;

    for (size_t i = 0; i < p->nops; i++) {
        const op_t *op = &p->ops[i];
        if (!op->fd) {
            rc = walk(&r, op->schema, op->name, 1, errstr, errstr_size);
            if (rc)
                return rc;
            continue;
        }
        switch (op->fd->kind) {
        case FK_STR:
            rc = dec_string(&r, op, ev, errstr, errstr_size);
            if (rc)
                return rc;
            break;
        case FK_LONG:
            rc = rd_long(&r, &v);
            if (rc)
                return rd_error(rc, op->name, errstr, errstr_size);
            put_i64(ev, op->fd->off, v);
            break;
        case FK_INT:
            rc = rd_int(&r, &i32);
            if (rc)
                return rd_error(rc, op->name, errstr, errstr_size);
            put_i32(ev, op->fd->off, i32);
            break;
        case FK_OPT_STR:
        case FK_OPT_INT:
            rc = dec_union_branch(&r, op, &is_null, errstr, errstr_size);
            if (rc)
                return rc;
            put_i32(ev, op->fd->has_off, !is_null);
            if (is_null)
                break;
            if (op->fd->kind == FK_OPT_STR) {
                rc = dec_string(&r, op, ev, errstr, errstr_size);
                if (rc)
                    return rc;
            } else {
                rc = rd_int(&r, &i32);
                if (rc)
                    return rd_error(rc, op->name, errstr, errstr_size);
                put_i32(ev, op->fd->off, i32);
            }
            break;
        case FK_ENUM:
            rc = dec_enum_index(&r, op, &c, errstr, errstr_size);
            if (rc)
                return rc;
            put_i32(ev, op->fd->off, c);
            break;
        case FK_ENUM_SET: {
            uint32_t set = 0;
            int64_t count = 0;
            for (;;) {
                rc = rd_block(&r, op->name, &count, errstr, errstr_size);
                if (rc)
                    return rc;
                if (count == 0)
                    break;
                if ((uint64_t)count > rd_left(&r))
                    return hub_errf(errstr, errstr_size, HUB_EDECODE,
                                    "field %s: block of %" PRId64
                                    " items is more than the bytes left",
                                    op->name, count);
                for (int64_t k = 0; k < count; k++) {
                    rc = dec_enum_index(&r, op, &c, errstr, errstr_size);
                    if (rc)
                        return rc;
                    set |= 1u << c;
                }
            }
            put_u32(ev, op->fd->off, set);
            break;
        }
        }
    }
    if (rd_left(&r))
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "%zu trailing bytes after the record",
                        rd_left(&r));
    return HUB_OK;
}

/* The string in a struct buffer, checked for a terminator and UTF-8. */
static int enc_string_checked(const op_t *op, const hub_event_t *ev, const char **s, size_t *len,
                              char *errstr, size_t errstr_size)
{
    *s = (const char *)ev + op->fd->off;
    *len = strnlen(*s, op->fd->size);
    if (*len == op->fd->size)
        return hub_errf(errstr, errstr_size, HUB_EVALID, "field %s is not NUL-terminated",
                        op->name);
    if (!utf8_valid((const unsigned char *)*s, *len))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "field %s is not valid UTF-8", op->name);
    return HUB_OK;
}

static int enc_enum_index(const op_t *op, int c, int *idx, char *errstr, size_t errstr_size)
{
    *idx = (c >= 0 && c < op->map.nvalues) ? op->map.to_avro[c] : -1;
    if (*idx < 0)
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "field %s: value %d has no symbol in the schema", op->name, c);
    return HUB_OK;
}

static int plan_encode(const plan_t *p, const hub_event_t *ev, hub_buf_t *out, char *errstr,
                       size_t errstr_size)
{
    const char *s;
    size_t len;
    int rc, idx;

    for (size_t i = 0; i < p->nops; i++) {
        const op_t *op = &p->ops[i];
        if (!op->fd) {
            if (buf_reserve(out, op->dflt_len))
                return HUB_ENOMEM;
            memcpy(out->data + out->len, op->dflt_bytes, op->dflt_len);
            out->len += op->dflt_len;
            continue;
        }
        if (buf_reserve(out, 20))
            return HUB_ENOMEM;
        switch (op->fd->kind) {
        case FK_STR:
            rc = enc_string_checked(op, ev, &s, &len, errstr, errstr_size);
            if (rc)
                return rc;
            if (buf_bytes(out, s, len))
                return HUB_ENOMEM;
            break;
        case FK_LONG:
            buf_put_long(out, get_i64(ev, op->fd->off));
            break;
        case FK_INT:
            buf_put_long(out, get_i32(ev, op->fd->off));
            break;
        case FK_OPT_STR:
        case FK_OPT_INT:
            if (!get_i32(ev, op->fd->has_off)) {
                buf_put_long(out, op->null_branch);
                break;
            }
            buf_put_long(out, 1 - op->null_branch);
            if (op->fd->kind == FK_OPT_INT) {
                buf_put_long(out, get_i32(ev, op->fd->off));
                break;
            }
            rc = enc_string_checked(op, ev, &s, &len, errstr, errstr_size);
            if (rc)
                return rc;
            if (buf_bytes(out, s, len))
                return HUB_ENOMEM;
            break;
        case FK_ENUM:
            rc = enc_enum_index(op, get_i32(ev, op->fd->off), &idx, errstr, errstr_size);
            if (rc)
                return rc;
            buf_put_long(out, idx);
            break;
        case FK_ENUM_SET: {
            uint32_t set = get_u32(ev, op->fd->off);
            int count = __builtin_popcount(set);
            if (count && set >> op->map.nvalues)
                return hub_errf(errstr, errstr_size, HUB_EVALID,
                                "field %s holds values outside the enum", op->name);
            if (buf_reserve(out, 10 * (size_t)count + 20))
                return HUB_ENOMEM;
            if (count) {
                buf_put_long(out, count);
                for (int c = 0; c < op->map.nvalues; c++) {
                    if (!(set & (1u << c)))
                        continue;
                    rc = enc_enum_index(op, c, &idx, errstr, errstr_size);
                    if (rc)
                        return rc;
                    buf_put_long(out, idx);
                }
            }
            buf_put_long(out, 0);
            break;
        }
        }
    }
    return HUB_OK;
}

/* ------------------------------------------------------------------------- */
/* Reading avro-c values (generic or resolved) into the struct               */
/* ------------------------------------------------------------------------- */

typedef struct {
    const field_desc_t *fd;
    int index;          /* in the value's record; -1: apply dflt */
    const json_t *dflt; /* the reader's default, when the writer lacks the field */
    enum_map_t map;     /* writer symbol index -> C value */
    avro_schema_t wenum;
} vfield_t;

typedef struct {
    vfield_t *f;
    size_t n;
} vplan_t;

static void vplan_free(vplan_t *vp)
{
    for (size_t i = 0; i < vp->n; i++)
        enum_map_free(&vp->f[i].map);
    free(vp->f);
    memset(vp, 0, sizeof(*vp));
}

static const json_t *json_field(const json_t *rec_json, const char *name)
{
    const json_t *fields = json_object_get(rec_json, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const json_t *f = json_array_get(fields, i);
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && strcmp(n, name) == 0)
            return f;
    }
    return NULL;
}

/*
 * Builds the extraction for values of schema vs (the reader, or the reader
 * without fields the writer lacks), whose enums report indexes of the
 * writer schema ws (avro-c's resolved reader passes them through).
 */
static int vplan_build(vplan_t *vp, hub_event_type_t type, avro_schema_t vs, avro_schema_t ws,
                       const json_t *reader_json, const char *what, char *errstr,
                       size_t errstr_size)
{
    const type_desc_t *td = &type_descs[type];
    int rc;

    vp->f = calloc(td->nfields, sizeof(vfield_t));
    if (!vp->f)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    vp->n = td->nfields;
    for (size_t i = 0; i < td->nfields; i++) {
        vfield_t *vf = &vp->f[i];
        vf->fd = &td->fields[i];
        vf->index = avro_schema_record_field_get_index(vs, vf->fd->name);
        if (vf->index < 0) {
            vf->dflt = json_object_get(json_field(reader_json, vf->fd->name), "default");
            if (!vf->dflt)
                return hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                                "%s: field %s is missing and the reader has no default", what,
                                vf->fd->name);
            continue;
        }
        if (vf->fd->kind != FK_ENUM && vf->fd->kind != FK_ENUM_SET)
            continue;
        avro_schema_t we = deref(avro_schema_record_field_get(ws, vf->fd->name));
        if (we && vf->fd->kind == FK_ENUM_SET)
            we = is_avro_array(we) ? deref(avro_schema_array_items(we)) : NULL;
        if (!we || !is_avro_enum(we))
            return hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                            "%s: field %s is not an enum in the writer schema", what, vf->fd->name);
        vf->wenum = we;
        rc = enum_map_build(&vf->map, we, vf->fd);
        if (rc)
            return hub_errf(errstr, errstr_size, rc, "out of memory");
    }
    return HUB_OK;
}

static int copy_string(const field_desc_t *fd, hub_event_t *ev, const char *s, size_t len,
                       char *errstr, size_t errstr_size)
{
    if (!utf8_valid((const unsigned char *)s, len))
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "field %s: string is not valid UTF-8",
                        fd->name);
    if (len >= fd->size)
        return hub_errf(errstr, errstr_size, HUB_EVALID,
                        "field %s: %zu bytes, more than the %zu this field allows", fd->name, len,
                        fd->size - 1);
    if (memchr(s, '\0', len))
        return hub_errf(errstr, errstr_size, HUB_EVALID, "field %s: contains a NUL character",
                        fd->name);
    memcpy((char *)ev + fd->off, s, len);
    ((char *)ev + fd->off)[len] = '\0';
    return HUB_OK;
}

static int c_symbol(const vfield_t *vf, int idx, int *c, char *errstr, size_t errstr_size)
{
    if (idx < 0 || idx >= vf->map.nsym)
        return hub_errf(errstr, errstr_size, HUB_EDECODE,
                        "field %s: enum index %d out of range (%d symbols)", vf->fd->name, idx,
                        vf->map.nsym);
    *c = vf->map.to_c[idx];
    if (*c < 0)
        return hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                        "field %s: symbol %s is not known to the reader", vf->fd->name,
                        avro_schema_enum_get(vf->wenum, idx));
    return HUB_OK;
}

/* A reader default (from the schema JSON) into the struct. */
static int apply_default(const field_desc_t *fd, const json_t *d, hub_event_t *ev, char *errstr,
                         size_t errstr_size)
{
    int c;
    switch (fd->kind) {
    case FK_OPT_STR:
    case FK_OPT_INT:
        put_i32(ev, fd->has_off, !json_is_null(d));
        if (json_is_null(d))
            return HUB_OK;
        if (fd->kind == FK_OPT_INT)
            goto integer;
        /* fall through */
    case FK_STR:
        if (!json_is_string(d))
            break;
        return copy_string(fd, ev, json_string_value(d), json_string_length(d), errstr,
                           errstr_size);
    case FK_LONG:
        if (!json_is_integer(d))
            break;
        put_i64(ev, fd->off, json_integer_value(d));
        return HUB_OK;
    case FK_INT:
    integer:
        if (!json_is_integer(d))
            break;
        put_i32(ev, fd->off, (int32_t)json_integer_value(d));
        return HUB_OK;
    case FK_ENUM:
        c = json_is_string(d) ? fd->from_name(json_string_value(d)) : -1;
        if (c < 0)
            break;
        put_i32(ev, fd->off, c);
        return HUB_OK;
    case FK_ENUM_SET: {
        uint32_t set = 0;
        for (size_t i = 0; i < json_array_size(d); i++) {
            const json_t *sym = json_array_get(d, i);
            c = json_is_string(sym) ? fd->from_name(json_string_value(sym)) : -1;
            if (c < 0 || c >= fd->nvalues)
                goto bad;
            set |= 1u << c;
        }
        if (!json_is_array(d))
            break;
        put_u32(ev, fd->off, set);
        return HUB_OK;
    }
    }
bad:
    return hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                    "field %s: the reader's default does not fit the field", fd->name);
}

static int value_error(const char *field, char *errstr, size_t errstr_size)
{
    return hub_errf(errstr, errstr_size, HUB_EDECODE,
                    "field %s: value does not match the reader schema", field);
}

static int vplan_extract(const vplan_t *vp, avro_value_t *rec, hub_event_t *ev, char *errstr,
                         size_t errstr_size)
{
    avro_value_t child, item;
    const char *s;
    size_t size;
    int rc, c = 0;

    for (size_t i = 0; i < vp->n; i++) {
        const vfield_t *vf = &vp->f[i];
        const field_desc_t *fd = vf->fd;
        if (vf->index < 0) {
            rc = apply_default(fd, vf->dflt, ev, errstr, errstr_size);
            if (rc)
                return rc;
            continue;
        }
        if (avro_value_get_by_index(rec, (size_t)vf->index, &child, NULL))
            return value_error(fd->name, errstr, errstr_size);
        switch (fd->kind) {
        case FK_OPT_STR:
        case FK_OPT_INT:
            if (avro_value_get_current_branch(&child, &item))
                return value_error(fd->name, errstr, errstr_size);
            put_i32(ev, fd->has_off, avro_value_get_type(&item) != AVRO_NULL);
            if (avro_value_get_type(&item) == AVRO_NULL)
                break;
            child = item;
            if (fd->kind == FK_OPT_INT)
                goto integer;
            /* fall through */
        case FK_STR:
            /* avro-c counts the terminating NUL in size. */
            if (avro_value_get_string(&child, &s, &size) || size == 0)
                return value_error(fd->name, errstr, errstr_size);
            rc = copy_string(fd, ev, s, size - 1, errstr, errstr_size);
            if (rc)
                return rc;
            break;
        case FK_LONG: {
            int64_t v;
            if (avro_value_get_long(&child, &v))
                return value_error(fd->name, errstr, errstr_size);
            put_i64(ev, fd->off, v);
            break;
        }
        case FK_INT:
        integer : {
            int32_t v;
            if (avro_value_get_int(&child, &v))
                return value_error(fd->name, errstr, errstr_size);
            put_i32(ev, fd->off, v);
            break;
        }
        case FK_ENUM: {
            int idx;
            if (avro_value_get_enum(&child, &idx))
                return value_error(fd->name, errstr, errstr_size);
            rc = c_symbol(vf, idx, &c, errstr, errstr_size);
            if (rc)
                return rc;
            put_i32(ev, fd->off, c);
            break;
        }
        case FK_ENUM_SET: {
            uint32_t set = 0;
            size_t n;
            if (avro_value_get_size(&child, &n))
                return value_error(fd->name, errstr, errstr_size);
            for (size_t k = 0; k < n; k++) {
                int idx;
                if (avro_value_get_by_index(&child, k, &item, NULL) ||
                    avro_value_get_enum(&item, &idx))
                    return value_error(fd->name, errstr, errstr_size);
                rc = c_symbol(vf, idx, &c, errstr, errstr_size);
                if (rc)
                    return rc;
                set |= 1u << c;
            }
            put_u32(ev, fd->off, set);
            break;
        }
        }
    }
    return HUB_OK;
}

/* Fills a generic value of the writer schema from the struct (the reference encoder). */
static int plan_fill_value(const plan_t *p, const hub_event_t *ev, avro_value_t *rec, char *errstr,
                           size_t errstr_size)
{
    avro_value_t child, item;
    const char *s;
    size_t len;
    int rc, idx;

    for (size_t i = 0; i < p->nops; i++) {
        const op_t *op = &p->ops[i];
        if (avro_value_get_by_index(rec, i, &child, NULL))
            return hub_errf(errstr, errstr_size, HUB_ENOMEM, "field %s: %s", op->name,
                            avro_strerror());
        if (!op->fd) {
            if (value_set_default(&child, op->dflt, 0))
                return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "field %s: bad default",
                                op->name);
            continue;
        }
        rc = 0;
        switch (op->fd->kind) {
        case FK_OPT_STR:
        case FK_OPT_INT:
            if (!get_i32(ev, op->fd->has_off)) {
                rc = avro_value_set_branch(&child, op->null_branch, &item);
                rc = rc ? rc : avro_value_set_null(&item);
                break;
            }
            rc = avro_value_set_branch(&child, 1 - op->null_branch, &item);
            if (rc)
                break;
            child = item;
            if (op->fd->kind == FK_OPT_INT) {
                rc = avro_value_set_int(&child, get_i32(ev, op->fd->off));
                break;
            }
            /* fall through */
        case FK_STR:
            rc = enc_string_checked(op, ev, &s, &len, errstr, errstr_size);
            if (rc)
                return rc;
            rc = avro_value_set_string_len(&child, s, len + 1);
            break;
        case FK_LONG:
            rc = avro_value_set_long(&child, get_i64(ev, op->fd->off));
            break;
        case FK_INT:
            rc = avro_value_set_int(&child, get_i32(ev, op->fd->off));
            break;
        case FK_ENUM:
            rc = enc_enum_index(op, get_i32(ev, op->fd->off), &idx, errstr, errstr_size);
            if (rc)
                return rc;
            rc = avro_value_set_enum(&child, idx);
            break;
        case FK_ENUM_SET: {
            uint32_t set = get_u32(ev, op->fd->off);
            if (set >> op->map.nvalues)
                return hub_errf(errstr, errstr_size, HUB_EVALID,
                                "field %s holds values outside the enum", op->name);
            for (int c = 0; rc == 0 && c < op->map.nvalues; c++) {
                if (!(set & (1u << c)))
                    continue;
                rc = enc_enum_index(op, c, &idx, errstr, errstr_size);
                if (rc)
                    return rc;
                rc = avro_value_append(&child, &item, NULL);
                rc = rc ? rc : avro_value_set_enum(&item, idx);
            }
            break;
        }
        }
        if (rc)
            return hub_errf(errstr, errstr_size, HUB_ENOMEM, "field %s: %s", op->name,
                            avro_strerror());
    }
    return HUB_OK;
}

/* ------------------------------------------------------------------------- */
/* The codec                                                                 */
/* ------------------------------------------------------------------------- */

typedef struct {
    char *subject;
    hub_event_type_t type;
    int version;
    int32_t id; /* pinned, or the registry's once registered */
    char *path;
    char *text;
    json_t *json;
    avro_schema_t schema;
} entry_t;

typedef struct {
    entry_t *newest; /* reader and writer schema; NULL: not in the catalogue */
    plan_t plan;
    vplan_t vplan; /* for the generic value */
    avro_value_iface_t *iface;
    avro_value_t value;
    int has_value;
} evtype_t;

/* A writer schema other than the newest, met on read; resolved once, kept. */
typedef struct {
    int32_t id;
    hub_event_type_t type; /* HUB_EVENT_NONE when it failed to resolve */
    int fast;              /* the same schema as the reader: use the direct coder */
    char *error;           /* why it failed (remembered, so the registry is asked once) */
    avro_schema_t wschema, rschema;
    avro_value_iface_t *wiface, *riface;
    avro_value_t wvalue, rvalue;
    int has_values;
    vplan_t vplan;
} writer_t;

struct hub_codec_s {
    entry_t *entries;
    size_t nentries;
    evtype_t types[HUB_EVENT__COUNT];
    writer_t *writers;
    size_t nwriters, capwriters;
    hub_registry_t *registry;
    avro_reader_t reader;
    avro_writer_t writer;
    int generic;
};

static void writer_clear(writer_t *w)
{
    vplan_free(&w->vplan);
    if (w->has_values) {
        avro_value_decref(&w->rvalue);
        avro_value_decref(&w->wvalue);
    }
    if (w->riface)
        avro_value_iface_decref(w->riface);
    if (w->wiface)
        avro_value_iface_decref(w->wiface);
    if (w->rschema)
        avro_schema_decref(w->rschema);
    if (w->wschema)
        avro_schema_decref(w->wschema);
    free(w->error);
    memset(w, 0, sizeof(*w));
}

void hub_codec_destroy(hub_codec_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nwriters; i++)
        writer_clear(&c->writers[i]);
    free(c->writers);
    for (int t = 0; t < HUB_EVENT__COUNT; t++) {
        evtype_t *et = &c->types[t];
        plan_free(&et->plan);
        vplan_free(&et->vplan);
        if (et->has_value)
            avro_value_decref(&et->value);
        if (et->iface)
            avro_value_iface_decref(et->iface);
    }
    for (size_t i = 0; i < c->nentries; i++) {
        entry_t *e = &c->entries[i];
        if (e->schema)
            avro_schema_decref(e->schema);
        json_decref(e->json);
        free(e->text);
        free(e->path);
        free(e->subject);
    }
    free(c->entries);
    if (c->reader)
        avro_reader_free(c->reader);
    if (c->writer)
        avro_writer_free(c->writer);
    hub_registry_destroy(c->registry);
    free(c);
}

/* Reads, parses and checks one schema file of the catalogue. */
static int entry_load(entry_t *e, const char *dir, const char *file, const char *event,
                      char *errstr, size_t errstr_size)
{
    char name[512];
    json_error_t jerr;
    size_t len, plen = strlen(dir) + strlen(file) + 2;

    e->path = malloc(plen);
    if (!e->path)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    snprintf(e->path, plen, "%s/%s", dir, file);
    e->text = hub_read_file(e->path, &len, errstr, errstr_size);
    if (!e->text)
        return HUB_ECONFIG;
    e->json = json_loadb(e->text, len, 0, &jerr);
    if (!e->json)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s:%d: %s", e->path, jerr.line,
                        jerr.text);
    if (avro_schema_from_json_length(e->text, len, &e->schema) != 0) {
        e->schema = NULL;
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: not a valid Avro schema: %s",
                        e->path, avro_strerror());
    }
    if (!is_avro_record(e->schema))
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: not an Avro record", e->path);
    /* RecordNameStrategy: the subject is the record's full name. */
    if (strcmp(hub_schema_full_name(e->schema, name, sizeof(name)), e->subject) != 0)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: record %s does not match subject %s",
                        e->path, name, e->subject);
    if (strcmp(avro_schema_name(e->schema), event) != 0)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: record %s is not event %s", e->path,
                        avro_schema_name(e->schema), event);
    return HUB_OK;
}

static int catalogue_load(hub_codec_t *c, const char *dir, char *errstr, size_t errstr_size)
{
    char path[4200];
    json_error_t jerr;
    json_t *root = NULL;
    int rc = HUB_OK;

    snprintf(path, sizeof(path), "%s/catalogue.json", dir);
    root = json_load_file(path, 0, &jerr);
    if (!root && jerr.line < 1)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: %s", path, jerr.text);
    if (!root)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s:%d: %s", path, jerr.line, jerr.text);
    json_t *list = json_object_get(root, "schemas");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        rc = hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: no \"schemas\" array", path);
        goto out;
    }
    c->entries = calloc(json_array_size(list), sizeof(entry_t));
    if (!c->entries) {
        rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *je = json_array_get(list, i);
        const char *subject = json_string_value(json_object_get(je, "subject"));
        const char *event = json_string_value(json_object_get(je, "event"));
        const char *file = json_string_value(json_object_get(je, "file"));
        json_t *jv = json_object_get(je, "version"), *jid = json_object_get(je, "id");
        entry_t *e = &c->entries[c->nentries];

        if (!subject || !event || !file || !json_is_integer(jv) || !json_is_integer(jid) ||
            json_integer_value(jv) < 1 || json_integer_value(jid) < 0 ||
            json_integer_value(jid) > INT32_MAX) {
            rc = hub_errf(errstr, errstr_size, HUB_ECONFIG,
                          "%s: entry %zu needs subject, event, file (strings), version (>= 1) "
                          "and id (0 to 2147483647)",
                          path, i + 1);
            goto out;
        }
        c->nentries++;
        e->type = hub_event_type_from_name(event);
        e->version = (int)json_integer_value(jv);
        e->id = (int32_t)json_integer_value(jid);
        e->subject = strdup(subject);
        if (!e->subject) {
            rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
            goto out;
        }
        if (e->type == HUB_EVENT_NONE) {
            rc = hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: entry %zu: unknown event %s", path,
                          i + 1, event);
            goto out;
        }
        rc = entry_load(e, dir, file, event, errstr, errstr_size);
        if (rc)
            goto out;
        for (size_t k = 0; k + 1 < c->nentries; k++) {
            const entry_t *o = &c->entries[k];
            if (o->id == e->id || (o->type == e->type && o->version == e->version)) {
                rc = hub_errf(errstr, errstr_size, HUB_ECONFIG,
                              "%s: entry %zu repeats the id or the version of entry %zu", path,
                              i + 1, k + 1);
                goto out;
            }
        }
        evtype_t *et = &c->types[e->type];
        if (!et->newest || et->newest->version < e->version)
            et->newest = e;
    }

out:
    json_decref(root);
    return rc;
}

/* Registers every catalogue schema, oldest version first, as compatibility demands. */
static int catalogue_register(hub_codec_t *c, char *errstr, size_t errstr_size)
{
    int max_version = 0;
    for (size_t i = 0; i < c->nentries; i++)
        if (c->entries[i].version > max_version)
            max_version = c->entries[i].version;
    for (int v = 1; v <= max_version; v++) {
        for (size_t i = 0; i < c->nentries; i++) {
            entry_t *e = &c->entries[i];
            if (e->version != v)
                continue;
            int rc = hub_registry_register(c->registry, e->subject, e->text, &e->id, errstr,
                                           errstr_size);
            if (rc)
                return rc;
        }
    }
    return HUB_OK;
}

static int type_prepare(hub_codec_t *c, hub_event_type_t t, char *errstr, size_t errstr_size)
{
    evtype_t *et = &c->types[t];
    entry_t *e = et->newest;
    int rc;

    rc = plan_compile(&et->plan, t, e->schema, e->json, e->path, errstr, errstr_size);
    if (rc)
        return rc;
    rc = vplan_build(&et->vplan, t, e->schema, e->schema, e->json, e->path, errstr, errstr_size);
    if (rc)
        return rc;
    et->iface = avro_generic_class_from_schema(e->schema);
    if (!et->iface || avro_generic_value_new(et->iface, &et->value))
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "%s: %s", e->path, avro_strerror());
    et->has_value = 1;
    return HUB_OK;
}

/*
 * Resolves writer schema ws (id) against the reader of the event whose full
 * name it has. On failure the writer is kept with its error, so the same id
 * is not looked up again; the return value is then that error's code.
 */
static int writer_resolve(hub_codec_t *c, writer_t *w, char *errstr, size_t errstr_size)
{
    char name[512], what[64], why[512];
    evtype_t *et = NULL;
    int rc;

    snprintf(what, sizeof(what), "schema id %" PRId32, w->id);
    if (!is_avro_record(w->wschema))
        return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "%s is not an Avro record", what);
    hub_schema_full_name(w->wschema, name, sizeof(name));
    for (int t = 1; t < HUB_EVENT__COUNT; t++)
        if (c->types[t].newest && strcmp(c->types[t].newest->subject, name) == 0)
            et = &c->types[t];
    if (!et)
        return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "%s is record %.200s, not a hub event",
                        what, name);
    hub_event_type_t type = et->newest->type;
    if (avro_schema_equal(w->wschema, et->newest->schema)) {
        w->fast = 1;
        w->type = type;
        return HUB_OK;
    }
    rc = hub_schema_effective_reader(w->wschema, et->newest->schema, et->newest->json, &w->rschema,
                                     why, sizeof(why));
    if (rc)
        return hub_errf(errstr, errstr_size, rc, "%s cannot be read as %s: %s", what, name, why);
    w->riface = avro_resolved_reader_new(w->wschema, w->rschema);
    if (!w->riface)
        return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "%s cannot be read as %s: %s", what, name,
                        avro_strerror());
    w->wiface = avro_generic_class_from_schema(w->wschema);
    if (!w->wiface || avro_generic_value_new(w->wiface, &w->wvalue))
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "%s: %s", what, avro_strerror());
    if (avro_resolved_reader_new_value(w->riface, &w->rvalue)) {
        avro_value_decref(&w->wvalue);
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "%s: %s", what, avro_strerror());
    }
    w->has_values = 1;
    avro_resolved_reader_set_source(&w->rvalue, &w->wvalue);
    rc = vplan_build(&w->vplan, type, w->rschema, w->wschema, et->newest->json, what, errstr,
                     errstr_size);
    if (rc)
        return rc;
    w->type = type;
    return HUB_OK;
}

/*
 * Adds an empty writer entry for id. Entries move when the array grows, which
 * is safe: avro-c values are handles to heap memory, copied by value.
 */
static writer_t *writer_add(hub_codec_t *c, int32_t id)
{
    if (c->nwriters == c->capwriters) {
        size_t ncap = c->capwriters ? c->capwriters * 2 : 8;
        writer_t *nw = realloc(c->writers, ncap * sizeof(writer_t));
        if (!nw)
            return NULL;
        c->writers = nw;
        c->capwriters = ncap;
    }
    writer_t *w = &c->writers[c->nwriters++];
    memset(w, 0, sizeof(*w));
    w->id = id;
    return w;
}

/* Keeps only the id and why it failed, so the id is not looked up again. */
static void writer_remember_error(writer_t *w, const char *errstr)
{
    int32_t id = w->id;
    writer_clear(w);
    w->id = id;
    w->error = strdup(errstr && *errstr ? errstr : "cannot be resolved");
}

/* The writer for id, fetched from the registry and resolved on first use. */
static int writer_find(hub_codec_t *c, int32_t id, writer_t **out, char *errstr, size_t errstr_size)
{
    char *text = NULL;
    writer_t *w;
    int rc;

    for (size_t i = 0; i < c->nwriters; i++) {
        if (c->writers[i].id != id)
            continue;
        w = &c->writers[i];
        if (w->type == HUB_EVENT_NONE)
            return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "%s",
                            w->error ? w->error : "cannot be resolved");
        *out = w;
        return HUB_OK;
    }
    if (!c->registry)
        return hub_errf(errstr, errstr_size, HUB_ESCHEMA, "unknown schema id %" PRId32, id);
    rc = hub_registry_schema_by_id(c->registry, id, &text, errstr, errstr_size);
    if (rc == HUB_ENOTFOUND)
        rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                      "unknown schema id %" PRId32 " (not in the registry at %s)", id,
                      hub_registry_url(c->registry));
    else if (rc != HUB_OK && rc != HUB_ESCHEMA)
        return rc; /* the registry is unreachable: nothing is remembered, the caller may retry */
    if (c->nwriters >= MAX_WRITERS) {
        free(text);
        return rc ? rc
                  : hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                             "schema id %" PRId32 ": too many writer schemas", id);
    }
    w = writer_add(c, id);
    if (!w) {
        free(text);
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    }
    if (rc == HUB_OK) {
        if (avro_schema_from_json_length(text, strlen(text), &w->wschema) != 0) {
            w->wschema = NULL;
            rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                          "schema id %" PRId32 " from the registry is not valid Avro: %s", id,
                          avro_strerror());
        } else {
            rc = writer_resolve(c, w, errstr, errstr_size);
        }
    }
    free(text);
    if (rc) {
        writer_remember_error(w, errstr);
        return rc == HUB_ENOMEM ? rc : HUB_ESCHEMA;
    }
    *out = w;
    return HUB_OK;
}

hub_codec_t *hub_codec_new(const hub_codec_opts_t *opts, char *errstr, size_t errstr_size)
{
    hub_codec_t *c = NULL;
    char dir[4096];
    const char *url = opts ? opts->registry_url : NULL;

    if (opts && opts->schemas_dir && *opts->schemas_dir)
        snprintf(dir, sizeof(dir), "%s", opts->schemas_dir);
    else
        snprintf(dir, sizeof(dir), "%s/schemas", hub_data_dir());

    c = calloc(1, sizeof(*c));
    if (!c) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        return NULL;
    }
    c->reader = avro_reader_memory(NULL, 0);
    c->writer = avro_writer_memory(NULL, 0);
    if (!c->reader || !c->writer) {
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto fail;
    }
    if (catalogue_load(c, dir, errstr, errstr_size))
        goto fail;
    if (url && *url) {
        c->registry = hub_registry_new(url, opts->registry_timeout_ms, errstr, errstr_size);
        if (!c->registry || catalogue_register(c, errstr, errstr_size))
            goto fail;
    }
    for (int t = 1; t < HUB_EVENT__COUNT; t++)
        if (c->types[t].newest && type_prepare(c, (hub_event_type_t)t, errstr, errstr_size))
            goto fail;
    /* Older catalogue versions are writers too; resolve them now so mistakes show at start. */
    for (size_t i = 0; i < c->nentries; i++) {
        entry_t *e = &c->entries[i];
        if (e == c->types[e->type].newest)
            continue;
        writer_t *w = writer_add(c, e->id);
        if (!w) {
            hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
            goto fail;
        }
        w->wschema = avro_schema_incref(e->schema);
        if (writer_resolve(c, w, errstr, errstr_size)) {
            size_t n = strlen(errstr ? errstr : "");
            if (errstr && n + 1 < errstr_size)
                snprintf(errstr + n, errstr_size - n, " (%s)", e->path);
            goto fail;
        }
    }
    return c;

fail:
    hub_codec_destroy(c);
    return NULL;
}

void hub_codec_set_generic(hub_codec_t *c, int on)
{
    c->generic = on;
}

int32_t hub_codec_schema_id(const hub_codec_t *c, hub_event_type_t type)
{
    if (type <= HUB_EVENT_NONE || type >= HUB_EVENT__COUNT || !c->types[type].newest)
        return -1;
    return c->types[type].newest->id;
}

int hub_codec_frame_id(const void *data, size_t len, int32_t *id)
{
    const unsigned char *p = data;
    if (len < FRAME_HEADER)
        return HUB_EDECODE;
    if (p[0] != 0)
        return HUB_EDECODE;
    *id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) |
                    (uint32_t)p[4]);
    return HUB_OK;
}

static int encode_generic(hub_codec_t *c, evtype_t *et, const hub_event_t *ev, hub_buf_t *out,
                          char *errstr, size_t errstr_size)
{
    size_t size;
    int rc;

    avro_value_reset(&et->value);
    rc = plan_fill_value(&et->plan, ev, &et->value, errstr, errstr_size);
    if (rc)
        return rc;
    if (avro_value_sizeof(&et->value, &size) || buf_reserve(out, size))
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    avro_writer_memory_set_dest(c->writer, (const char *)out->data + out->len, (int64_t)size);
    if (avro_value_write(c->writer, &et->value))
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "avro-c: %s", avro_strerror());
    out->len += size;
    return HUB_OK;
}

int hub_codec_encode(hub_codec_t *c, const hub_event_t *ev, hub_buf_t *out, char *errstr,
                     size_t errstr_size)
{
    evtype_t *et;
    int rc;

    out->len = 0;
    if (ev->type <= HUB_EVENT_NONE || ev->type >= HUB_EVENT__COUNT)
        return hub_errf(errstr, errstr_size, HUB_EVALID, "unknown event type %d", (int)ev->type);
    et = &c->types[ev->type];
    if (!et->newest)
        return hub_errf(errstr, errstr_size, HUB_EVALID, "event %s has no schema in the catalogue",
                        hub_event_type_name(ev->type));
    rc = hub_event_validate(ev, NULL, errstr, errstr_size);
    if (rc)
        return rc;
    if (buf_reserve(out, FRAME_HEADER))
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    uint32_t id = (uint32_t)et->newest->id;
    out->data[0] = 0;
    out->data[1] = (unsigned char)(id >> 24);
    out->data[2] = (unsigned char)(id >> 16);
    out->data[3] = (unsigned char)(id >> 8);
    out->data[4] = (unsigned char)id;
    out->len = FRAME_HEADER;
    rc = c->generic ? encode_generic(c, et, ev, out, errstr, errstr_size)
                    : plan_encode(&et->plan, ev, out, errstr, errstr_size);
    if (rc == HUB_ENOMEM)
        hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    if (rc)
        out->len = 0;
    return rc;
}

/* Reads body with avro-c into value (of schema s) after the walker has vouched for the bytes. */
static int read_value(hub_codec_t *c, avro_schema_t s, avro_value_t *value,
                      const unsigned char *body, size_t n, char *errstr, size_t errstr_size)
{
    int rc = walk_body(body, n, s, errstr, errstr_size);
    if (rc)
        return rc;
    avro_reader_memory_set_source(c->reader, (const char *)body, (int64_t)n);
    avro_value_reset(value);
    if (avro_value_read(c->reader, value))
        return hub_errf(errstr, errstr_size, HUB_EDECODE, "body does not match its writer schema");
    return HUB_OK;
}

int hub_codec_decode(hub_codec_t *c, const void *data, size_t len, hub_event_t *ev, char *errstr,
                     size_t errstr_size)
{
    const unsigned char *body;
    size_t n;
    evtype_t *et = NULL;
    writer_t *w = NULL;
    int32_t id;
    int rc;

    ev->type = HUB_EVENT_NONE;
    if (len < FRAME_HEADER)
        return hub_errf(errstr, errstr_size, HUB_EDECODE,
                        "message of %zu bytes is shorter than the 5-byte frame header", len);
    if (hub_codec_frame_id(data, len, &id))
        return hub_errf(errstr, errstr_size, HUB_EDECODE,
                        "bad magic byte: not Confluent-framed Avro (the first byte must be 0)");
    body = (const unsigned char *)data + FRAME_HEADER;
    n = len - FRAME_HEADER;
    for (int t = 1; t < HUB_EVENT__COUNT; t++) {
        if (c->types[t].newest && c->types[t].newest->id == id) {
            et = &c->types[t];
            break;
        }
    }
    if (!et) {
        rc = writer_find(c, id, &w, errstr, errstr_size);
        if (rc)
            return rc;
        et = &c->types[w->type];
        if (w->fast)
            w = NULL;
    }
    hub_event_type_t type = et->newest->type;
    memset(ev, 0, type_descs[type].used);
    if (w) {
        rc = read_value(c, w->wschema, &w->wvalue, body, n, errstr, errstr_size);
        if (rc == 0)
            rc = vplan_extract(&w->vplan, &w->rvalue, ev, errstr, errstr_size);
    } else if (c->generic) {
        rc = read_value(c, et->newest->schema, &et->value, body, n, errstr, errstr_size);
        if (rc == 0)
            rc = vplan_extract(&et->vplan, &et->value, ev, errstr, errstr_size);
    } else {
        rc = plan_decode(&et->plan, body, n, ev, errstr, errstr_size);
    }
    if (rc == 0) {
        ev->type = type;
        rc = hub_event_validate(ev, NULL, errstr, errstr_size);
    }
    if (rc)
        ev->type = HUB_EVENT_NONE;
    return rc;
}
