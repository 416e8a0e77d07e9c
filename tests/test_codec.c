/*
 * test_codec.c: the Avro codec with pinned schema ids: every event type
 * round-trips through the real broker; the direct coder and avro-c's generic
 * values give the same bytes and events; every class of bad input is
 * rejected with the right code and a message that names the field without
 * repeating the payload; broken catalogues are refused with file and reason.
 */
#include <stdarg.h>
#include <sys/stat.h>

#include "codec_cases.h"
#include "hub/codec.h"
#include "hub/common.h"
#include "hub/kafka.h"
#include "test.h"

static hub_event_t cases[CODEC_CASES_MAX];
static int ncases;

static hub_codec_t *codec_offline(void)
{
    char errstr[512] = "";
    hub_codec_opts_t opts = {0};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("hub_codec_new: %s", errstr);
    return c;
}

static size_t used_size(hub_event_type_t t)
{
    switch (t) {
    case HUB_EVENT_YOUNG_PERSON_FLAGGED:
        return sizeof(hub_young_person_flagged_t);
    case HUB_EVENT_TRANSITION_PLAN_DUE:
        return sizeof(hub_transition_plan_due_t);
    case HUB_EVENT_TRANSITION_PLAN_COMPLETED:
        return sizeof(hub_transition_plan_completed_t);
    case HUB_EVENT_MEETING_ACTION_RECORDED:
        return sizeof(hub_meeting_action_recorded_t);
    case HUB_EVENT_MEETING_ACTION_COMPLETED:
        return sizeof(hub_meeting_action_completed_t);
    case HUB_EVENT_MEETING_ACTION_OVERDUE:
        return sizeof(hub_meeting_action_overdue_t);
    case HUB_EVENT_REMINDER_DUE:
        return sizeof(hub_reminder_due_t);
    case HUB_EVENT_BRIEFING_REQUESTED:
        return sizeof(hub_briefing_requested_t);
    case HUB_EVENT_BRIEFING_SENT:
        return sizeof(hub_briefing_sent_t);
    default:
        return 0;
    }
}

/* Fails unless a and b hold the same event, printing both as JSON. */
static void assert_event_eq(const hub_event_t *a, const hub_event_t *b, const char *what)
{
    if (a->type == b->type && strcmp(a->event_id, b->event_id) == 0 &&
        a->occurred_at == b->occurred_at && strcmp(a->source, b->source) == 0 &&
        memcmp(&a->u, &b->u, used_size(a->type)) == 0)
        return;
    json_t *ja = hub_event_to_json(a), *jb = hub_event_to_json(b);
    char *sa = ja ? json_dumps(ja, JSON_SORT_KEYS) : NULL;
    char *sb = jb ? json_dumps(jb, JSON_SORT_KEYS) : NULL;
    TEST_FAIL_("%s: events differ:\n  expected %s\n  got      %s", what, sa ? sa : "?",
               sb ? sb : "?");
}

static void test_round_trip_offline(void)
{
    hub_codec_t *c = codec_offline();
    hub_buf_t buf = {0}, gbuf = {0};
    hub_event_t out;
    char errstr[512] = "";

    for (int i = 0; i < ncases; i++) {
        int32_t id = -1;
        hub_codec_set_generic(c, 0);
        ASSERT_OK(hub_codec_encode(c, &cases[i], &buf, errstr, sizeof(errstr)), errstr);
        ASSERT_OK(hub_codec_frame_id(buf.data, buf.len, &id), "frame id");
        ASSERT_INT_EQ(id, hub_codec_schema_id(c, cases[i].type));
        /* Pinned ids from schemas/catalogue.json: 1001 + the type's position. */
        ASSERT_INT_EQ(id, 1000 + (int)cases[i].type);
        ASSERT_OK(hub_codec_decode(c, buf.data, buf.len, &out, errstr, sizeof(errstr)), errstr);
        assert_event_eq(&cases[i], &out, "direct coder");

        /* avro-c's generic values must agree byte for byte and value for value. */
        hub_codec_set_generic(c, 1);
        ASSERT_OK(hub_codec_encode(c, &cases[i], &gbuf, errstr, sizeof(errstr)), errstr);
        ASSERT_INT_EQ(gbuf.len, buf.len);
        ASSERT_TRUE(memcmp(gbuf.data, buf.data, buf.len) == 0);
        memset(&out, 0xa5, sizeof(out));
        ASSERT_OK(hub_codec_decode(c, buf.data, buf.len, &out, errstr, sizeof(errstr)), errstr);
        assert_event_eq(&cases[i], &out, "avro-c generic");
    }
    hub_codec_set_generic(c, 0);

    /* Decoding into a used struct leaves nothing of the previous event behind. */
    hub_event_t with = cases[0], without = cases[0];
    for (int i = 0; i < ncases; i++) {
        if (cases[i].type == HUB_EVENT_MEETING_ACTION_RECORDED) {
            if (cases[i].u.action_recorded.has_subject_key)
                with = cases[i];
            else
                without = cases[i];
        }
    }
    ASSERT_INT_EQ(with.type, HUB_EVENT_MEETING_ACTION_RECORDED);
    ASSERT_INT_EQ(without.type, HUB_EVENT_MEETING_ACTION_RECORDED);
    ASSERT_OK(hub_codec_encode(c, &with, &buf, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_codec_decode(c, buf.data, buf.len, &out, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_codec_encode(c, &without, &buf, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_codec_decode(c, buf.data, buf.len, &out, errstr, sizeof(errstr)), errstr);
    assert_event_eq(&without, &out, "reused struct");

    ASSERT_INT_EQ(hub_codec_schema_id(c, HUB_EVENT_NONE), -1);
    ASSERT_INT_EQ(hub_codec_schema_id(c, HUB_EVENT__COUNT), -1);
    hub_buf_free(&buf);
    hub_buf_free(&gbuf);
    hub_codec_destroy(c);
}

static void test_round_trip_broker(void)
{
    char topic[256], group[128], errstr[512] = "";
    hub_props_t props = {0};
    hub_codec_t *c = codec_offline();
    hub_buf_t buf = {0};
    hub_event_t out;

    hub_test_topic("codec", 1, topic, sizeof(topic));
    hub_test_kafka_props(&props);
    hub_producer_t *p = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(p != NULL);
    for (int i = 0; i < ncases; i++) {
        const char *key = hub_event_key(&cases[i]);
        ASSERT_OK(hub_codec_encode(c, &cases[i], &buf, errstr, sizeof(errstr)), errstr);
        ASSERT_OK(hub_producer_send(p, topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf.data,
                                    buf.len, NULL, errstr, sizeof(errstr)),
                  errstr);
    }
    ASSERT_OK(hub_producer_flush(p, 30000, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(hub_producer_delivered(p), ncases);
    hub_producer_destroy(p);

    const char *topics[1] = {topic};
    snprintf(group, sizeof(group), "codec-%s", hub_test_unique());
    hub_consumer_t *cons = hub_consumer_new(&props, group, topics, 1, NULL, errstr, sizeof(errstr));
    ASSERT_TRUE(cons != NULL);
    int got = 0;
    int64_t deadline = hub_monotonic_ms() + 60000;
    while (got < ncases && hub_monotonic_ms() < deadline) {
        rd_kafka_message_t *m = hub_consumer_poll(cons, 200);
        if (!m)
            continue;
        ASSERT_OK(hub_codec_decode(c, m->payload, m->len, &out, errstr, sizeof(errstr)), errstr);
        assert_event_eq(&cases[got], &out, "through the broker");
        const char *key = hub_event_key(&cases[got]);
        ASSERT_INT_EQ(m->key_len, strlen(key));
        ASSERT_TRUE(memcmp(m->key, key, m->key_len) == 0);
        ASSERT_OK(hub_consumer_store(cons, m), "store");
        rd_kafka_message_destroy(m);
        got++;
    }
    ASSERT_INT_EQ(got, ncases);
    hub_consumer_destroy(cons);
    hub_props_clear(&props);
    hub_buf_free(&buf);
    hub_codec_destroy(c);
}

/* ---- hand-made bodies ---------------------------------------------------------- */

typedef struct {
    unsigned char b[8192];
    size_t n;
} body_t;

static void b_raw(body_t *b, const void *p, size_t n)
{
    ASSERT_TRUE(b->n + n <= sizeof(b->b));
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void b_long(body_t *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    unsigned char tmp[10];
    size_t k = 0;
    do {
        tmp[k] = z & 0x7f;
        z >>= 7;
        if (z)
            tmp[k] |= 0x80;
        k++;
    } while (z);
    b_raw(b, tmp, k);
}

static void b_bytes(body_t *b, const void *p, size_t n)
{
    b_long(b, (int64_t)n);
    b_raw(b, p, n);
}

static void b_str(body_t *b, const char *s)
{
    b_bytes(b, s, strlen(s));
}

static void b_frame(body_t *b, int32_t id)
{
    unsigned char h[5] = {0, (unsigned char)(id >> 24), (unsigned char)(id >> 16),
                          (unsigned char)(id >> 8), (unsigned char)id};
    b->n = 0;
    b_raw(b, h, 5);
}

/* A YoungPersonFlagged written field by field, so each test can spoil one field. */
typedef struct {
    const char *event_id;
    int64_t occurred_at;
    const char *source;
    size_t source_len; /* 0: strlen(source) */
    const char *subject_key;
    int64_t la;
    int64_t dob;
    int nrisks;
    int64_t risks[4];
    int64_t flagged_on;
} ypf_t;

static char good_key[HUB_SUBJECT_KEY_SIZE];

static ypf_t ypf_default(void)
{
    ypf_t y = {0};
    y.event_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    y.occurred_at = INT64_C(1709285400123);
    y.source = "LEICESTER_CS";
    y.subject_key = good_key;
    y.la = 1;
    y.dob = cc_date(2008, 5, 17);
    y.nrisks = 2;
    y.risks[0] = 1;
    y.risks[1] = 6;
    y.flagged_on = cc_date(2024, 3, 1);
    return y;
}

static void ypf_build(const ypf_t *y, body_t *b)
{
    b_frame(b, 1001);
    b_str(b, y->event_id);
    b_long(b, y->occurred_at);
    b_bytes(b, y->source, y->source_len ? y->source_len : strlen(y->source));
    b_str(b, y->subject_key);
    b_long(b, y->la);
    b_long(b, y->dob);
    if (y->nrisks) {
        b_long(b, y->nrisks);
        for (int i = 0; i < y->nrisks; i++)
            b_long(b, y->risks[i]);
    }
    b_long(b, 0);
    b_long(b, y->flagged_on);
}

/* Decodes b expecting err, a message containing needle, and no event. */
static void expect_decode_error(hub_codec_t *c, const body_t *b, int err, const char *needle,
                                const char *what)
{
    char errstr[512] = "";
    hub_event_t out;
    memset(&out, 0, sizeof(out));
    out.type = HUB_EVENT_BRIEFING_SENT;
    int rc = hub_codec_decode(c, b->b, b->n, &out, errstr, sizeof(errstr));
    if (rc != err)
        TEST_FAIL_("%s: expected %s, got %d (%s): %s", what, hub_strerror(err), rc,
                   hub_strerror(rc), errstr);
    ASSERT_STR_CONTAINS(errstr, needle);
    ASSERT_INT_EQ(out.type, HUB_EVENT_NONE);
    fprintf(stderr, "   %-34s -> %s: %s\n", what, hub_strerror(rc), errstr);
}

static void test_bad_inputs(void)
{
    hub_codec_t *c = codec_offline();
    hub_buf_t buf = {0};
    body_t b;
    ypf_t y;
    char errstr[512] = "";
    hub_event_t out;

    /* The hand-made body is itself valid, so each spoilt field below is the only fault. */
    y = ypf_default();
    ypf_build(&y, &b);
    ASSERT_OK(hub_codec_decode(c, b.b, b.n, &out, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(out.u.flagged.risk_categories,
                  HUB_RISK_BIT(HUB_RISK_CHILD_IN_NEED) | HUB_RISK_BIT(HUB_RISK_COUNTY_LINES));

    b.b[0] = 1;
    expect_decode_error(c, &b, HUB_EDECODE, "magic byte", "wrong magic byte");
    b.b[0] = 0;
    b.b[4] = 0x42; /* id 1001 -> 0x03e9: now 0x0342 = 834 */
    expect_decode_error(c, &b, HUB_ESCHEMA, "unknown schema id 834", "unknown schema id");
    b.n = 3;
    expect_decode_error(c, &b, HUB_EDECODE, "shorter than the 5-byte frame header", "short frame");

    ypf_build(&y, &b);
    b_raw(&b, "\0", 1);
    expect_decode_error(c, &b, HUB_EDECODE, "1 trailing bytes", "trailing byte");

    b_frame(&b, 1001);
    b_long(&b, INT64_C(1) << 62);
    b_raw(&b, "0f8fad5b", 8);
    expect_decode_error(c, &b, HUB_EDECODE, "field event_id: length 4611686018427387904",
                        "huge length prefix");
    b_frame(&b, 1001);
    b_long(&b, -5);
    expect_decode_error(c, &b, HUB_EDECODE, "field event_id: negative length", "negative length");
    b_frame(&b, 1001);
    for (int i = 0; i < 11; i++)
        b_raw(&b, "\xff", 1);
    expect_decode_error(c, &b, HUB_EDECODE, "field event_id: integer encoding",
                        "varint over ten bytes");

    static const struct {
        const char *bytes;
        const char *what;
    } bad_utf8[] = {
        {"LEIC\xc3\x28", "invalid continuation byte"}, {"LEIC\xc0\xaf", "overlong encoding"},
        {"LEIC\xed\xa0\x80", "UTF-16 surrogate"},      {"LEIC\xf4\x90\x80\x80", "above U+10FFFF"},
        {"LEIC\xe2\x82", "sequence cut short"},        {"LEIC\xff", "byte 0xff"},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(bad_utf8); i++) {
        y = ypf_default();
        y.source = bad_utf8[i].bytes;
        ypf_build(&y, &b);
        expect_decode_error(c, &b, HUB_EDECODE, "field source_agency: string is not valid UTF-8",
                            bad_utf8[i].what);
    }

    y = ypf_default();
    y.la = 3;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EDECODE, "field local_authority: enum index 3 out of range",
                        "enum index past the end");
    y.la = -1;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EDECODE, "field local_authority: enum index -1 out of range",
                        "negative enum index");
    y = ypf_default();
    y.risks[1] = 12;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EDECODE, "field risk_categories: enum index 12 out of range",
                        "array item enum index");
    y = ypf_default();
    y.dob = INT64_C(1) << 40;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EDECODE, "field date_of_birth: integer encoding",
                        "int beyond 32 bits");

    /* A risk array claiming far more items than there are bytes. */
    y = ypf_default();
    b_frame(&b, 1001);
    b_str(&b, y.event_id);
    b_long(&b, y.occurred_at);
    b_str(&b, y.source);
    b_str(&b, y.subject_key);
    b_long(&b, 1);
    b_long(&b, y.dob);
    b_long(&b, INT64_C(1) << 40);
    b_long(&b, 2);
    expect_decode_error(c, &b, HUB_EDECODE, "field risk_categories: block of 1099511627776 items",
                        "huge array block count");
    b.n -= 7;
    b_long(&b, -1);
    b_long(&b, 1000);
    expect_decode_error(c, &b, HUB_EDECODE, "field risk_categories: length 1000",
                        "array block byte size");

    /* A union branch that does not exist: MeetingActionRecorded's optional subject_key. */
    for (int branch = -1; branch <= 2; branch += 3) {
        b_frame(&b, 1004);
        b_str(&b, "0f8fad5b-d9cb-469f-a165-70867728950e");
        b_long(&b, y.occurred_at);
        b_str(&b, "LLR_SAB");
        b_str(&b, "1b4e28ba-2fa1-41d2-883f-0016d3cca427");
        b_str(&b, "CTB-1");
        b_long(&b, cc_date(2024, 2, 20));
        b_long(&b, 0);
        b_str(&b, "LEICS_POLICE");
        b_str(&b, "city-transitions-board");
        b_long(&b, cc_date(2024, 3, 20));
        b_long(&b, branch);
        b_str(&b, good_key);
        expect_decode_error(c, &b, HUB_EDECODE, "field subject_key: union branch",
                            branch < 0 ? "union branch -1" : "union branch 2");
    }

    /* Values Avro accepts but the hub does not: the message names the field, not the value. */
    y = ypf_default();
    y.dob = cc_date(2100, 1, 1);
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EVALID, "date_of_birth", "date of birth in the future");
    y = ypf_default();
    y.flagged_on = y.dob - 1;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EVALID, "flagged_on", "flagged before birth");
    static const char *bad_keys[] = {
        "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "9434765919",
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(bad_keys); i++) {
        y = ypf_default();
        y.subject_key = bad_keys[i];
        ypf_build(&y, &b);
        expect_decode_error(c, &b, HUB_EVALID, "subject_key", "bad subject_key");
        hub_codec_decode(c, b.b, b.n, &out, errstr, sizeof(errstr));
        ASSERT_TRUE(strstr(errstr, bad_keys[i]) == NULL);
    }
    y = ypf_default();
    y.event_id = "not-a-uuid";
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EVALID, "event_id", "event_id not a UUID");
    y = ypf_default();
    y.nrisks = 0;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EVALID, "risk_categories", "no risk category");
    char longsrc[200];
    memset(longsrc, 'A', sizeof(longsrc) - 1);
    longsrc[sizeof(longsrc) - 1] = '\0';
    y = ypf_default();
    y.source = longsrc;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EVALID, "field source_agency: 199 bytes, more than the 64",
                        "string longer than its buffer");
    y = ypf_default();
    y.source = "LEIC\0ESTER";
    y.source_len = 10;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EVALID, "field source_agency: contains a NUL",
                        "NUL inside a string");

    /* Every proper prefix of every valid message fails cleanly as a decode error. */
    long prefixes = 0;
    for (int i = 0; i < ncases; i++) {
        ASSERT_OK(hub_codec_encode(c, &cases[i], &buf, errstr, sizeof(errstr)), errstr);
        for (size_t n = 0; n < buf.len; n++) {
            /* A copy of exactly n bytes, so ASan sees any read past the end. */
            unsigned char *copy = malloc(n ? n : 1);
            memcpy(copy, buf.data, n);
            int rc = hub_codec_decode(c, copy, n, &out, errstr, sizeof(errstr));
            if (rc != HUB_EDECODE)
                TEST_FAIL_("case %d prefix %zu/%zu: expected EDECODE, got %d: %s", i, n, buf.len,
                           rc, errstr);
            ASSERT_INT_EQ(out.type, HUB_EVENT_NONE);
            free(copy);
            prefixes++;
        }
    }
    fprintf(stderr, "   %ld truncated prefixes rejected\n", prefixes);

    /* The same inputs through avro-c's generic values give the same verdicts. */
    hub_codec_set_generic(c, 1);
    y = ypf_default();
    y.la = 3;
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EDECODE, "field local_authority: enum index 3 out of range",
                        "generic: enum index");
    y = ypf_default();
    y.source = "LEIC\xc3\x28";
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EDECODE, "field source_agency: string is not valid UTF-8",
                        "generic: invalid UTF-8");
    b_frame(&b, 1001);
    b_long(&b, INT64_C(1) << 62);
    expect_decode_error(c, &b, HUB_EDECODE, "field event_id: length", "generic: huge length");
    y = ypf_default();
    y.dob = cc_date(2100, 1, 1);
    ypf_build(&y, &b);
    expect_decode_error(c, &b, HUB_EVALID, "date_of_birth", "generic: future date of birth");
    hub_codec_set_generic(c, 0);

    hub_buf_free(&buf);
    hub_codec_destroy(c);
}

/* Invalid events are refused before a byte is written. */
static void test_encode_rejects(void)
{
    hub_codec_t *c = codec_offline();
    hub_buf_t buf = {0};
    char errstr[512] = "";
    hub_event_t ev;

    for (int generic = 0; generic <= 1; generic++) {
        hub_codec_set_generic(c, generic);
        cc_typical_flagged(&ev);
        memcpy(ev.u.flagged.subject_key, "XYZ", 3);
        buf.len = 99;
        ASSERT_INT_EQ(hub_codec_encode(c, &ev, &buf, errstr, sizeof(errstr)), HUB_EVALID);
        ASSERT_STR_CONTAINS(errstr, "subject_key");
        ASSERT_TRUE(strstr(errstr, "XYZ") == NULL);
        ASSERT_INT_EQ(buf.len, 0);

        cc_typical_flagged(&ev);
        ev.u.flagged.local_authority = (hub_local_authority_t)7;
        ASSERT_INT_EQ(hub_codec_encode(c, &ev, &buf, errstr, sizeof(errstr)), HUB_EVALID);
        ASSERT_STR_CONTAINS(errstr, "local_authority");
        ASSERT_INT_EQ(buf.len, 0);

        cc_typical_flagged(&ev);
        ev.u.flagged.risk_categories |= 1u << 20;
        ASSERT_INT_EQ(hub_codec_encode(c, &ev, &buf, errstr, sizeof(errstr)), HUB_EVALID);
        ASSERT_STR_CONTAINS(errstr, "risk_categories");

        cc_typical_flagged(&ev);
        ev.type = HUB_EVENT__COUNT;
        ASSERT_INT_EQ(hub_codec_encode(c, &ev, &buf, errstr, sizeof(errstr)), HUB_EVALID);
        ASSERT_INT_EQ(buf.len, 0);
    }
    hub_buf_free(&buf);
    hub_buf_free(&buf); /* freeing twice is harmless */
    hub_codec_destroy(c);
    hub_codec_destroy(NULL);
}

/* ---- broken catalogues ----------------------------------------------------------- */

static char *read_repo_schema(const char *event)
{
    char path[1024], errstr[512];
    snprintf(path, sizeof(path), "%s/schemas/events/%s.v1.avsc", hub_test_env("HUB_DATA_DIR"),
             event);
    char *text = hub_read_file(path, NULL, errstr, sizeof(errstr));
    if (!text)
        TEST_FAIL_("%s", errstr);
    return text;
}

static void write_catalogue(const char *dir, const char *entries)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/events", dir);
    mkdir(path, 0755);
    char *text = NULL;
    size_t n = strlen(entries) + 64;
    text = malloc(n);
    snprintf(text, n, "{\"schemas\": [%s]}\n", entries);
    hub_test_write_file(dir, "catalogue.json", text);
    free(text);
}

static void expect_codec_error(const char *dir, const char *needle)
{
    char errstr[512] = "";
    hub_codec_opts_t opts = {.schemas_dir = dir};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (c)
        TEST_FAIL_("hub_codec_new accepted a catalogue that should fail with '%s'", needle);
    ASSERT_STR_CONTAINS(errstr, needle);
    fprintf(stderr, "   refused: %s\n", errstr);
}

#define YPF_ENTRY(file, id)                                                                        \
    "{\"subject\": \"uk.llr.hub.YoungPersonFlagged\", \"event\": \"YoungPersonFlagged\", "         \
    "\"version\": 1, \"file\": \"" file "\", \"id\": " #id ", \"topic\": \"risk_flags\"}"

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    ASSERT_TRUE(at != NULL);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return out;
}

static void test_catalogue_errors(void)
{
    char *ypf = read_repo_schema("YoungPersonFlagged");
    const char *dir;

    dir = hub_test_tmpdir();
    expect_codec_error(dir, "catalogue.json");

    dir = hub_test_tmpdir();
    hub_test_write_file(dir, "catalogue.json", "{\"schemas\": [\n  {\"subject\": }\n]}\n");
    expect_codec_error(dir, "catalogue.json:2:");

    dir = hub_test_tmpdir();
    write_catalogue(dir, YPF_ENTRY("events/missing.avsc", 1001));
    expect_codec_error(dir, "missing.avsc");

    dir = hub_test_tmpdir();
    write_catalogue(dir, YPF_ENTRY("events/y.avsc", 1001));
    hub_test_write_file(dir, "events/y.avsc", "{\"type\": \"record\", \"name\": ");
    expect_codec_error(dir, "y.avsc");

    /* A field the hub needs is missing, or has the wrong type. */
    dir = hub_test_tmpdir();
    write_catalogue(dir, YPF_ENTRY("events/y.avsc", 1001));
    char *s = replace(ypf, "\"flagged_on\"", "\"flagged_at\"");
    hub_test_write_file(dir, "events/y.avsc", s);
    free(s);
    expect_codec_error(dir, "lacks field flagged_on");

    dir = hub_test_tmpdir();
    write_catalogue(dir, YPF_ENTRY("events/y.avsc", 1001));
    s = replace(ypf, "\"type\": {\n        \"type\": \"int\",\n        \"logicalType\": \"date\"\n",
                "\"type\": {\n        \"type\": \"string\",\n        \"logicalType\": \"date\"\n");
    hub_test_write_file(dir, "events/y.avsc", s);
    free(s);
    expect_codec_error(dir, "field date_of_birth has type string");

    /* A field unknown to this build without a default cannot be written. */
    dir = hub_test_tmpdir();
    write_catalogue(dir, YPF_ENTRY("events/y.avsc", 1001));
    s = replace(ypf, "\"fields\": [", "\"fields\": [{\"name\": \"extra\", \"type\": \"string\"},");
    hub_test_write_file(dir, "events/y.avsc", s);
    free(s);
    expect_codec_error(dir, "field extra is not known to this build");

    dir = hub_test_tmpdir();
    write_catalogue(dir, YPF_ENTRY("events/y.avsc", 1001) "," YPF_ENTRY("events/y.avsc", 1002));
    hub_test_write_file(dir, "events/y.avsc", ypf);
    expect_codec_error(dir, "repeats the id or the version");

    dir = hub_test_tmpdir();
    write_catalogue(dir, "{\"subject\": \"uk.llr.hub.Nope\", \"event\": \"Nope\", \"version\": 1, "
                         "\"file\": \"events/y.avsc\", \"id\": 5}");
    hub_test_write_file(dir, "events/y.avsc", ypf);
    expect_codec_error(dir, "unknown event Nope");

    dir = hub_test_tmpdir();
    write_catalogue(dir, "{\"subject\": \"uk.llr.hub.Other\", \"event\": \"YoungPersonFlagged\", "
                         "\"version\": 1, \"file\": \"events/y.avsc\", \"id\": 5}");
    hub_test_write_file(dir, "events/y.avsc", ypf);
    expect_codec_error(dir, "does not match subject uk.llr.hub.Other");

    dir = hub_test_tmpdir();
    write_catalogue(dir, "{\"subject\": \"uk.llr.hub.YoungPersonFlagged\", \"event\": "
                         "\"YoungPersonFlagged\", \"version\": 1, \"file\": \"events/y.avsc\", "
                         "\"id\": -4}");
    hub_test_write_file(dir, "events/y.avsc", ypf);
    expect_codec_error(dir, "entry 1 needs");

    /* A catalogue with only some events: the others cannot be encoded. */
    dir = hub_test_tmpdir();
    write_catalogue(dir, YPF_ENTRY("events/y.avsc", 1001));
    hub_test_write_file(dir, "events/y.avsc", ypf);
    char errstr[512] = "";
    hub_codec_opts_t opts = {.schemas_dir = dir};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    ASSERT_TRUE(c != NULL);
    hub_buf_t buf = {0};
    ASSERT_INT_EQ(hub_codec_encode(c, &cases[ncases - 1], &buf, errstr, sizeof(errstr)),
                  HUB_EVALID);
    ASSERT_STR_CONTAINS(errstr, "no schema in the catalogue");
    ASSERT_INT_EQ(hub_codec_schema_id(c, HUB_EVENT_BRIEFING_SENT), -1);
    hub_buf_free(&buf);
    hub_codec_destroy(c);
    free(ypf);
}

int main(void)
{
    hub_test_env("HUB_KAFKA_BOOTSTRAP");
    cc_subject_key(99, good_key);
    ncases = codec_cases(cases);
    RUN_TEST(test_round_trip_offline);
    RUN_TEST(test_round_trip_broker);
    RUN_TEST(test_bad_inputs);
    RUN_TEST(test_encode_rejects);
    RUN_TEST(test_catalogue_errors);
    return 0;
}
