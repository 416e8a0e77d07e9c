/*
 * test_codec_registry.c: the codec against the real Schema Registry
 * (Apicurio's Confluent-compatible API), and schema evolution:
 *  - registry mode registers every catalogue schema (idempotently) and
 *    writes the registry's ids; the registry hands the schemas back equal
 *    when parsed;
 *  - a v2 YoungPersonFlagged (an optional field and a field with a default)
 *    is read by the v1 reader and v1 data by a v2 reader, through the
 *    registry and offline with pinned ids;
 *  - an incompatible v2 is refused by the registry (HTTP 409), and the
 *    offline BACKWARD check agrees with the registry on a table of changes.
 */
#include <avro.h>
#include <sys/stat.h>

#include "codec_cases.h"
#include "hub/codec.h"
#include "hub/common.h"
#include "hub/registry.h"
#include "test.h"

#define YPF_SUBJECT "uk.llr.hub.YoungPersonFlagged"

static char *v1_text, *v2_text, *v2_bad_text;

static char *read_text(const char *rel)
{
    char path[1024], errstr[512];
    snprintf(path, sizeof(path), "%s/%s", hub_test_env("HUB_DATA_DIR"), rel);
    char *text = hub_read_file(path, NULL, errstr, sizeof(errstr));
    if (!text)
        TEST_FAIL_("%s", errstr);
    return text;
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at)
        TEST_FAIL_("'%s' not found in the schema text", from);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return out;
}

/* The schema text with field `name` removed (drop_default 0) or with its default removed. */
static char *edit_field(const char *text, const char *name, int drop_default)
{
    json_t *root = json_loads(text, 0, NULL);
    ASSERT_TRUE(root != NULL);
    json_t *fields = json_object_get(root, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        if (strcmp(json_string_value(json_object_get(f, "name")), name) != 0)
            continue;
        if (drop_default)
            json_object_del(f, "default");
        else
            json_array_remove(fields, i);
        break;
    }
    char *out = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return out;
}

/*
 * A schemas directory holding YoungPersonFlagged v1 (pinned id 1001) and, if
 * v2 is not NULL, a version 2 with pinned id 1101.
 */
static const char *make_catalogue(const char *v2)
{
    const char *dir = hub_test_tmpdir();
    char path[1024];
    snprintf(path, sizeof(path), "%s/events", dir);
    mkdir(path, 0755);
    hub_test_write_file(dir, "events/YoungPersonFlagged.v1.avsc", v1_text);
    if (v2)
        hub_test_write_file(dir, "events/YoungPersonFlagged.v2.avsc", v2);
    hub_test_write_file(
        dir, "catalogue.json",
        v2 ? "{\"schemas\": [\n"
             " {\"subject\": \"" YPF_SUBJECT
             "\", \"event\": \"YoungPersonFlagged\", \"version\": 2,"
             "  \"file\": \"events/YoungPersonFlagged.v2.avsc\", \"id\": 1101, \"topic\": "
             "\"risk_flags\"},\n"
             " {\"subject\": \"" YPF_SUBJECT
             "\", \"event\": \"YoungPersonFlagged\", \"version\": 1,"
             "  \"file\": \"events/YoungPersonFlagged.v1.avsc\", \"id\": 1001, \"topic\": "
             "\"risk_flags\"}\n]}\n"
           : "{\"schemas\": [\n"
             " {\"subject\": \"" YPF_SUBJECT
             "\", \"event\": \"YoungPersonFlagged\", \"version\": 1,"
             "  \"file\": \"events/YoungPersonFlagged.v1.avsc\", \"id\": 1001, \"topic\": "
             "\"risk_flags\"}\n]}\n");
    return dir;
}

static hub_codec_t *codec_at(const char *dir, const char *url)
{
    char errstr[1024] = "";
    hub_codec_opts_t opts = {.schemas_dir = dir, .registry_url = url, .registry_timeout_ms = 10000};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (!c)
        TEST_FAIL_("hub_codec_new(%s, %s): %s", dir ? dir : "(repo)", url ? url : "(offline)",
                   errstr);
    return c;
}

static void assert_same_event(const hub_event_t *a, const hub_event_t *b)
{
    json_t *ja = hub_event_to_json(a), *jb = hub_event_to_json(b);
    ASSERT_TRUE(ja && jb);
    if (!json_equal(ja, jb)) {
        char *sa = json_dumps(ja, JSON_SORT_KEYS), *sb = json_dumps(jb, JSON_SORT_KEYS);
        TEST_FAIL_("events differ:\n  expected %s\n  got      %s", sa, sb);
    }
    json_decref(ja);
    json_decref(jb);
}

static void encode_decode(hub_codec_t *writer, hub_codec_t *reader, const hub_event_t *ev,
                          int32_t expect_id)
{
    hub_buf_t buf = {0};
    hub_event_t out;
    char errstr[1024] = "";
    int32_t id = -1;

    ASSERT_OK(hub_codec_encode(writer, ev, &buf, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_codec_frame_id(buf.data, buf.len, &id), "frame");
    ASSERT_INT_EQ(id, expect_id);
    for (int generic = 0; generic <= 1; generic++) {
        hub_codec_set_generic(reader, generic);
        ASSERT_OK(hub_codec_decode(reader, buf.data, buf.len, &out, errstr, sizeof(errstr)),
                  errstr);
        assert_same_event(ev, &out);
    }
    hub_codec_set_generic(reader, 0);
    hub_buf_free(&buf);
}

static void test_registry_mode(void)
{
    const char *url = hub_test_env("HUB_REGISTRY_URL");
    char errstr[1024] = "";
    hub_event_t cases[CODEC_CASES_MAX];
    int n = codec_cases(cases);

    hub_codec_t *a = codec_at(NULL, url);
    hub_codec_t *b = codec_at(NULL, url); /* registering again changes nothing */
    hub_registry_t *reg = hub_registry_new(url, 5000, errstr, sizeof(errstr));
    ASSERT_TRUE(reg != NULL);
    for (int t = 1; t < HUB_EVENT__COUNT; t++) {
        int32_t id = hub_codec_schema_id(a, (hub_event_type_t)t);
        ASSERT_INT_OP(id, >=, 0);
        ASSERT_INT_EQ(hub_codec_schema_id(b, (hub_event_type_t)t), id);

        /* The registry gives the schema back (compact); parsed, it is the catalogue's. */
        char *text = NULL, path[256];
        ASSERT_OK(hub_registry_schema_by_id(reg, id, &text, errstr, sizeof(errstr)), errstr);
        snprintf(path, sizeof(path), "schemas/events/%s.v1.avsc",
                 hub_event_type_name((hub_event_type_t)t));
        char *file = read_text(path);
        avro_schema_t s1, s2;
        ASSERT_INT_EQ(avro_schema_from_json_length(text, strlen(text), &s1), 0);
        ASSERT_INT_EQ(avro_schema_from_json_length(file, strlen(file), &s2), 0);
        ASSERT_TRUE(avro_schema_equal(s1, s2));
        avro_schema_decref(s1);
        avro_schema_decref(s2);
        free(text);
        free(file);
    }
    for (int i = 0; i < n; i++)
        encode_decode(a, b, &cases[i], hub_codec_schema_id(a, cases[i].type));

    /* An id the registry does not know, and a registry-id message read offline. */
    unsigned char frame[64] = {0, 0x3a, 0xde, 0x68, 0xb1};
    hub_event_t out;
    ASSERT_INT_EQ(hub_codec_decode(a, frame, sizeof(frame), &out, errstr, sizeof(errstr)),
                  HUB_ESCHEMA);
    ASSERT_STR_CONTAINS(errstr, "unknown schema id 987654321 (not in the registry at ");
    ASSERT_INT_EQ(hub_codec_decode(a, frame, sizeof(frame), &out, errstr, sizeof(errstr)),
                  HUB_ESCHEMA); /* remembered, same answer */
    char *none = NULL;
    ASSERT_INT_EQ(hub_registry_schema_by_id(reg, 987654321, &none, errstr, sizeof(errstr)),
                  HUB_ENOTFOUND);
    ASSERT_TRUE(none == NULL);

    /*
     * Schemas the registry has but the hub cannot read as one of its events:
     * a foreign record, and a YoungPersonFlagged without a field the reader
     * needs. Both are schema errors, remembered after the first look-up.
     */
    static const struct {
        const char *schema;
        const char *error;
    } foreign[] = {
        {"{\"type\": \"record\", \"name\": \"Other\", \"namespace\": \"uk.llr.test\", "
         "\"fields\": [{\"name\": \"x\", \"type\": \"int\"}]}",
         "is record uk.llr.test.Other, not a hub event"},
        {NULL, "reader field flagged_on is missing from the writer schema and has no default"},
    };
    char *ypf_text = read_text("schemas/events/YoungPersonFlagged.v1.avsc");
    char *no_flagged_on = edit_field(ypf_text, "flagged_on", 0);
    for (size_t i = 0; i < HUB_ARRAY_LEN(foreign); i++) {
        char subject[160];
        int32_t fid = -1;
        snprintf(subject, sizeof(subject), "test.foreign.%s", hub_test_unique());
        ASSERT_OK(hub_registry_register(reg, subject,
                                        foreign[i].schema ? foreign[i].schema : no_flagged_on, &fid,
                                        errstr, sizeof(errstr)),
                  errstr);
        unsigned char msg[16] = {0,
                                 (unsigned char)(fid >> 24),
                                 (unsigned char)(fid >> 16),
                                 (unsigned char)(fid >> 8),
                                 (unsigned char)fid,
                                 2};
        for (int again = 0; again < 2; again++) {
            ASSERT_INT_EQ(hub_codec_decode(a, msg, sizeof(msg), &out, errstr, sizeof(errstr)),
                          HUB_ESCHEMA);
            ASSERT_STR_CONTAINS(errstr, foreign[i].error);
        }
        fprintf(stderr, "   refused: %s\n", errstr);
    }
    free(no_flagged_on);
    free(ypf_text);

    /* An unreachable registry is named in the error, at start and not later. */
    hub_codec_opts_t opts = {.registry_url = "http://127.0.0.1:9/apis/ccompat/v7",
                             .registry_timeout_ms = 2000};
    ASSERT_TRUE(hub_codec_new(&opts, errstr, sizeof(errstr)) == NULL);
    ASSERT_STR_CONTAINS(errstr, "http://127.0.0.1:9/apis/ccompat/v7/subjects/");
    fprintf(stderr, "   unreachable: %s\n", errstr);

    hub_registry_destroy(reg);
    hub_codec_destroy(a);
    hub_codec_destroy(b);
}

/* The typical event, and the v2 body it becomes: v1's fields, then null and 12 (zig-zag 24). */
static void test_evolution_registry(void)
{
    const char *url = hub_test_env("HUB_REGISTRY_URL");
    char errstr[1024] = "";
    hub_event_t ev;
    int compatible = -1;

    cc_typical_flagged(&ev);
    hub_registry_t *reg = hub_registry_new(url, 5000, errstr, sizeof(errstr));
    ASSERT_TRUE(reg != NULL);
    ASSERT_OK(hub_registry_set_compatibility(reg, YPF_SUBJECT, "BACKWARD", errstr, sizeof(errstr)),
              errstr);

    hub_codec_t *v1 = codec_at(NULL, url);
    hub_codec_t *v2 = codec_at(make_catalogue(v2_text), url);
    int32_t id1 = hub_codec_schema_id(v1, HUB_EVENT_YOUNG_PERSON_FLAGGED);
    int32_t id2 = hub_codec_schema_id(v2, HUB_EVENT_YOUNG_PERSON_FLAGGED);
    ASSERT_TRUE(id1 != id2);
    fprintf(stderr, "   registry ids: v1 %d, v2 %d\n", (int)id1, (int)id2);

    /* v2 writer -> v1 reader: the v1 codec has never seen id2 and asks the registry. */
    encode_decode(v2, v1, &ev, id2);
    /* v1 writer -> v2 reader: id1 is v2's catalogue's older version, read with v2's defaults. */
    encode_decode(v1, v2, &ev, id1);
    /* And each reads its own. */
    encode_decode(v2, v2, &ev, id2);

    /* The registry refuses an incompatible v2, and so does a codec that would register it. */
    int32_t id = 0;
    ASSERT_INT_EQ(hub_registry_register(reg, YPF_SUBJECT, v2_bad_text, &id, errstr, sizeof(errstr)),
                  HUB_ESCHEMA);
    ASSERT_STR_CONTAINS(errstr, "HTTP 409");
    ASSERT_STR_CONTAINS(errstr, url);
    fprintf(stderr, "   refused: %s\n", errstr);
    ASSERT_OK(hub_registry_check_compatible(reg, YPF_SUBJECT, v2_bad_text, &compatible, errstr,
                                            sizeof(errstr)),
              errstr);
    ASSERT_INT_EQ(compatible, 0);
    ASSERT_OK(hub_registry_check_compatible(reg, YPF_SUBJECT, v2_text, &compatible, errstr,
                                            sizeof(errstr)),
              errstr);
    ASSERT_INT_EQ(compatible, 1);
    hub_codec_opts_t opts = {.schemas_dir = make_catalogue(v2_bad_text), .registry_url = url};
    ASSERT_TRUE(hub_codec_new(&opts, errstr, sizeof(errstr)) == NULL);
    ASSERT_STR_CONTAINS(errstr, "HTTP 409");

    /*
     * A subject the registry has never seen has nothing to be incompatible with:
     * Confluent's registry answers 404 (HUB_ENOTFOUND), Apicurio "compatible".
     */
    char subject[128];
    snprintf(subject, sizeof(subject), "test.unseen.%s", hub_test_unique());
    int rc =
        hub_registry_check_compatible(reg, subject, v2_text, &compatible, errstr, sizeof(errstr));
    ASSERT_TRUE(rc == HUB_ENOTFOUND || (rc == 0 && compatible == 1));

    hub_codec_destroy(v1);
    hub_codec_destroy(v2);
    hub_registry_destroy(reg);
}

static void test_evolution_offline(void)
{
    char errstr[1024] = "";
    hub_event_t ev, out;
    hub_buf_t b1 = {0}, b2 = {0};

    cc_typical_flagged(&ev);
    hub_codec_t *v1 = codec_at(NULL, NULL);
    hub_codec_t *v2 = codec_at(make_catalogue(v2_text), NULL);
    ASSERT_INT_EQ(hub_codec_schema_id(v2, HUB_EVENT_YOUNG_PERSON_FLAGGED), 1101);

    encode_decode(v1, v2, &ev, 1001); /* v1 writer -> v2 reader (pinned older version) */
    encode_decode(v2, v2, &ev, 1101);

    /* v2 bytes are v1's plus the two defaults. */
    ASSERT_OK(hub_codec_encode(v1, &ev, &b1, errstr, sizeof(errstr)), errstr);
    ASSERT_OK(hub_codec_encode(v2, &ev, &b2, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(b2.len, b1.len + 2);
    ASSERT_TRUE(memcmp(b2.data + 5, b1.data + 5, b1.len - 5) == 0);
    ASSERT_INT_EQ(b2.data[b1.len], 0x00);
    ASSERT_INT_EQ(b2.data[b1.len + 1], 0x18);

    /* A partner's v2 event with the new fields set: the v2 reader skips what the build lacks. */
    b2.len = b1.len;
    memcpy(b2.data + 5, b1.data + 5, b1.len - 5);
    static const unsigned char extra[] = {0x02, 0x0a, 'R', 'E', 'F', '-', '1', 0x0c};
    memcpy(b2.data + b2.len, extra, sizeof(extra));
    b2.len += sizeof(extra);
    ASSERT_OK(hub_codec_decode(v2, b2.data, b2.len, &out, errstr, sizeof(errstr)), errstr);
    assert_same_event(&ev, &out);
    /* ... and the walker still checks the skipped fields. */
    b2.data[b1.len + 1] = 0x7e; /* string length 63 > bytes left */
    ASSERT_INT_EQ(hub_codec_decode(v2, b2.data, b2.len, &out, errstr, sizeof(errstr)), HUB_EDECODE);
    ASSERT_STR_CONTAINS(errstr, "field referral_reference: length");

    /* Offline, ids are the shared catalogue's: a reader without v2 cannot know 1101. */
    ASSERT_OK(hub_codec_encode(v2, &ev, &b2, errstr, sizeof(errstr)), errstr);
    ASSERT_INT_EQ(hub_codec_decode(v1, b2.data, b2.len, &out, errstr, sizeof(errstr)), HUB_ESCHEMA);
    ASSERT_STR_CONTAINS(errstr, "unknown schema id 1101");

    /* A catalogue whose older version cannot be read by its newest is refused at start. */
    /* An enum renamed in v2 cannot read v1's enum (avro-c matches enums by name). */
    char *v2_renamed = replace(v2_text, "\"name\": \"LocalAuthority\"", "\"name\": \"Council\"");
    hub_codec_opts_t ropts = {.schemas_dir = make_catalogue(v2_renamed)};
    ASSERT_TRUE(hub_codec_new(&ropts, errstr, sizeof(errstr)) == NULL);
    ASSERT_STR_CONTAINS(errstr, "schema id 1001 cannot be read as uk.llr.hub.YoungPersonFlagged");
    ASSERT_STR_CONTAINS(errstr, "YoungPersonFlagged.v1.avsc");
    fprintf(stderr, "   refused: %s\n", errstr);
    free(v2_renamed);
    char *v2_no_default = edit_field(v2_text, "review_weeks", 1);
    hub_codec_opts_t opts = {.schemas_dir = make_catalogue(v2_no_default)};
    ASSERT_TRUE(hub_codec_new(&opts, errstr, sizeof(errstr)) == NULL);
    ASSERT_STR_CONTAINS(errstr, "review_weeks");
    fprintf(stderr, "   refused: %s\n", errstr);
    free(v2_no_default);

    hub_buf_free(&b1);
    hub_buf_free(&b2);
    hub_codec_destroy(v1);
    hub_codec_destroy(v2);
}

/* Offline BACKWARD check, and the registry's verdict on the same change. */
static void test_compatibility_checks(void)
{
    const char *url = hub_test_env("HUB_REGISTRY_URL");
    char errstr[1024] = "", reason[512] = "";
    hub_registry_t *reg = hub_registry_new(url, 5000, errstr, sizeof(errstr));
    ASSERT_TRUE(reg != NULL);

    struct {
        const char *what;
        char *new_text;
        int expect;
        const char *reason;
    } cases[] = {
        {"v2: optional field and field with default", strdup(v2_text), 1, NULL},
        {"new field without a default", strdup(v2_bad_text), 0, "school_name"},
        {"field renamed, no default",
         replace(v1_text, "\"name\": \"flagged_on\"", "\"name\": \"flagged_at\""), 0, "flagged_at"},
        {"field removed", edit_field(v1_text, "flagged_on", 0), 1, NULL},
        {"default removed from a v2 field", edit_field(v2_text, "review_weeks", 1), 0,
         "review_weeks"},
        {"enum symbol added at the end",
         replace(v1_text, "\"RUTLAND\"\n", "\"RUTLAND\",\n          \"OUT_OF_AREA\"\n"), 1, NULL},
        {"enum symbol removed", replace(v1_text, ",\n          \"RUTLAND\"\n", "\n"), 0,
         "symbol RUTLAND"},
        {"int promoted to long",
         replace(v1_text, "\"type\": \"int\",\n        \"logicalType\": \"date\"",
                 "\"type\": \"long\""),
         1, NULL},
        {"long narrowed to int",
         replace(v1_text, "\"type\": \"long\",\n        \"logicalType\": \"timestamp-millis\"",
                 "\"type\": \"int\""),
         0, "occurred_at"},
        {"record renamed",
         replace(v1_text, "\"name\": \"YoungPersonFlagged\"", "\"name\": \"YoungPersonMarked\""), 0,
         "name changed"},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(cases); i++) {
        int compatible = -1, reg_compatible = -1;
        ASSERT_OK(hub_registry_check_offline(v1_text, cases[i].new_text, &compatible, reason,
                                             sizeof(reason), errstr, sizeof(errstr)),
                  errstr);
        /* The registry judges the same change against v1 under a fresh subject. */
        char subject[160];
        int32_t id;
        snprintf(subject, sizeof(subject), "test.compat.%s.%zu", hub_test_unique(), i);
        ASSERT_OK(hub_registry_set_compatibility(reg, subject, "BACKWARD", errstr, sizeof(errstr)),
                  errstr);
        ASSERT_OK(hub_registry_register(reg, subject, v1_text, &id, errstr, sizeof(errstr)),
                  errstr);
        ASSERT_OK(hub_registry_check_compatible(reg, subject, cases[i].new_text, &reg_compatible,
                                                errstr, sizeof(errstr)),
                  errstr);
        fprintf(stderr, "   %-44s offline %d registry %d %s\n", cases[i].what, compatible,
                reg_compatible, compatible ? "" : reason);
        ASSERT_INT_EQ(compatible, cases[i].expect);
        ASSERT_INT_EQ(reg_compatible, cases[i].expect);
        if (cases[i].reason)
            ASSERT_STR_CONTAINS(reason, cases[i].reason);
        free(cases[i].new_text);
    }
    int compatible;
    ASSERT_INT_EQ(hub_registry_check_offline(v1_text, "{\"type\": \"recor", &compatible, reason,
                                             sizeof(reason), errstr, sizeof(errstr)),
                  HUB_ESCHEMA);
    ASSERT_STR_CONTAINS(errstr, "new schema");
    hub_registry_destroy(reg);
}

int main(void)
{
    hub_test_env("HUB_REGISTRY_URL");
    v1_text = read_text("schemas/events/YoungPersonFlagged.v1.avsc");
    v2_text = read_text("tests/fixtures/schemas/YoungPersonFlagged.v2.avsc");
    v2_bad_text = read_text("tests/fixtures/schemas/YoungPersonFlagged.v2-incompatible.avsc");
    RUN_TEST(test_registry_mode);
    RUN_TEST(test_evolution_offline);
    RUN_TEST(test_evolution_registry);
    RUN_TEST(test_compatibility_checks);
    free(v1_text);
    free(v2_text);
    free(v2_bad_text);
    return 0;
}
