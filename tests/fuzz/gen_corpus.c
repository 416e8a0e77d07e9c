/*
 * gen_corpus.c: writes the fuzz target's seed corpus into a directory: a
 * valid message of every test case (tests/codec_cases.h), a v2
 * YoungPersonFlagged, and a few broken ones of each class the codec rejects.
 * Usage: gen_corpus DIR (with HUB_DATA_DIR pointing at the source tree).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_cases.h"
#include "hub/codec.h"
#include "hub/common.h"

static const char *outdir;

static void put(const char *name, const unsigned char *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "gen_corpus: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static hub_codec_t *open_codec(const char *sub)
{
    char dir[4096], errstr[512] = "";
    snprintf(dir, sizeof(dir), "%s/%s", hub_data_dir(), sub);
    hub_codec_opts_t opts = {.schemas_dir = dir};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (!c) {
        fprintf(stderr, "gen_corpus: %s\n", errstr);
        exit(1);
    }
    return c;
}

int main(int argc, char **argv)
{
    static hub_event_t cases[CODEC_CASES_MAX];
    unsigned char tmp[4096];
    char name[256], errstr[512] = "";
    hub_buf_t b = {0};

    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    outdir = argv[1];
    hub_codec_t *v1 = open_codec("schemas"), *v2 = open_codec("tests/fixtures/schemas");
    int n = codec_cases(cases);
    for (int i = 0; i < n; i++) {
        if (hub_codec_encode(v1, &cases[i], &b, errstr, sizeof(errstr))) {
            fprintf(stderr, "gen_corpus: case %d: %s\n", i, errstr);
            return 1;
        }
        snprintf(name, sizeof(name), "valid_%02d_%s", i, hub_event_type_name(cases[i].type));
        put(name, b.data, b.len);
    }
    if (hub_codec_encode(v2, &cases[0], &b, errstr, sizeof(errstr))) {
        fprintf(stderr, "gen_corpus: v2: %s\n", errstr);
        return 1;
    }
    put("valid_v2_YoungPersonFlagged", b.data, b.len);

    hub_codec_encode(v1, &cases[0], &b, errstr, sizeof(errstr));
    memcpy(tmp, b.data, b.len);
    tmp[0] = 1;
    put("bad_magic", tmp, b.len);
    tmp[0] = 0;
    tmp[4] ^= 0x40;
    put("bad_unknown_id", tmp, b.len);
    tmp[4] ^= 0x40;
    put("bad_truncated", tmp, b.len / 2);
    tmp[b.len] = 0;
    put("bad_trailing", tmp, b.len + 1);
    tmp[5] = 0xfe; /* event_id length: a 9-byte varint, about 2^62 */
    memset(tmp + 6, 0xff, 7);
    tmp[13] = 0x7f;
    put("bad_huge_length", tmp, b.len);
    memcpy(tmp, b.data, b.len);
    tmp[5] = 0x09; /* event_id length -5 */
    put("bad_negative_length", tmp, b.len);
    memcpy(tmp, b.data, b.len);
    tmp[6 + 36 + 6 + 1] = 0xc0; /* inside source_agency: an overlong UTF-8 lead byte */
    put("bad_utf8", tmp, b.len);
    /* local_authority follows subject_key: the index 3 (zig-zag 6) is past the end. */
    memcpy(tmp, b.data, b.len);
    size_t la = 5 + 1 + 36 + 6 + 1 + 12 + 2 + 64;
    tmp[la] = 6;
    put("bad_enum_index", tmp, b.len);
    for (int i = 0; i < n; i++) {
        if (cases[i].type != HUB_EVENT_MEETING_ACTION_RECORDED ||
            !cases[i].u.action_recorded.has_subject_key)
            continue;
        hub_codec_encode(v1, &cases[i], &b, errstr, sizeof(errstr));
        memcpy(tmp, b.data, b.len);
        /* The union branch before the key (2-byte length, 64 characters) becomes 2. */
        tmp[b.len - 67] = 4;
        put("bad_union_branch", tmp, b.len);
        break;
    }
    hub_buf_free(&b);
    hub_codec_destroy(v1);
    hub_codec_destroy(v2);
    return 0;
}
