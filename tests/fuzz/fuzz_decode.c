/*
 * fuzz_decode.c: libFuzzer target for hub_codec_decode.
 *
 * Every input is decoded four ways: by the direct coder and by avro-c's
 * generic values (the catalogue of schemas/), and by a codec whose
 * catalogue also has YoungPersonFlagged v2, so v1 data goes through avro-c's
 * resolved reader. Besides crashes and sanitizer reports, the target traps
 * when the paths disagree on whether the input is an event or on its values,
 * and when a decoded event does not survive encode + decode unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hub_codec_t *codec_v1, *codec_v2;
static hub_buf_t buf;

static hub_codec_t *open_codec(const char *schemas_dir)
{
    char errstr[512] = "";
    hub_codec_opts_t opts = {.schemas_dir = schemas_dir};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (!c) {
        fprintf(stderr, "fuzz_decode: %s\n", errstr);
        abort();
    }
    return c;
}

/*
 * avro-c packs values without aligning them, so LeakSanitizer cannot see
 * pointers inside live values at exit; freeing everything first keeps its
 * report about real leaks only.
 */
static void teardown(void)
{
    hub_codec_destroy(codec_v1);
    hub_codec_destroy(codec_v2);
    hub_buf_free(&buf);
}

static void setup(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/schemas", hub_data_dir());
    codec_v1 = open_codec(dir);
    snprintf(dir, sizeof(dir), "%s/tests/fixtures/schemas", hub_data_dir());
    codec_v2 = open_codec(dir);
    atexit(teardown);
}

/* Same event: every byte of the part of the struct the type uses (decode zeroes it first). */
static int same_event(const hub_event_t *a, const hub_event_t *b)
{
    return a->type == b->type && memcmp(a, b, sizeof(*a)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hub_event_t direct, generic, resolved, again;
    char errstr[512];

    if (!codec_v1)
        setup();
    memset(&direct, 0, sizeof(direct));
    memset(&generic, 0, sizeof(generic));
    hub_codec_set_generic(codec_v1, 0);
    int rc = hub_codec_decode(codec_v1, data, size, &direct, errstr, sizeof(errstr));
    hub_codec_set_generic(codec_v1, 1);
    int rc_generic = hub_codec_decode(codec_v1, data, size, &generic, errstr, sizeof(errstr));
    hub_codec_set_generic(codec_v1, 0);
    if ((rc == 0) != (rc_generic == 0))
        __builtin_trap();
    if (rc == 0 && !same_event(&direct, &generic))
        __builtin_trap();

    memset(&resolved, 0, sizeof(resolved));
    int rc_resolved = hub_codec_decode(codec_v2, data, size, &resolved, errstr, sizeof(errstr));
    /* v1 YoungPersonFlagged read by the v2 reader must agree with the v1 reader. */
    if (rc == 0 && direct.type == HUB_EVENT_YOUNG_PERSON_FLAGGED && rc_resolved != 0)
        __builtin_trap();
    if (rc == 0 && rc_resolved == 0 && direct.type == HUB_EVENT_YOUNG_PERSON_FLAGGED &&
        !same_event(&direct, &resolved))
        __builtin_trap();

    if (rc == 0) {
        memset(&again, 0, sizeof(again));
        if (hub_codec_encode(codec_v1, &direct, &buf, errstr, sizeof(errstr)) != 0)
            __builtin_trap();
        if (hub_codec_decode(codec_v1, buf.data, buf.len, &again, errstr, sizeof(errstr)) != 0)
            __builtin_trap();
        if (!same_event(&direct, &again))
            __builtin_trap();
    }
    return 0;
}
