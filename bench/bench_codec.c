/*
 * bench_codec.c: single-core encode and decode rates of a typical
 * YoungPersonFlagged (tests/codec_cases.h), and heap allocations per event
 * after warm-up, for the codec's three paths: the direct coder (what services
 * use), avro-c generic values (hub_codec_set_generic), and avro-c's resolved
 * reader (v1 data read by a codec whose catalogue has v2). Also the rates of
 * the event's compact JSON text (what the projector stores) through jansson
 * and through hub_event_json_text.
 *
 * Allocations are counted by defining malloc, calloc and realloc in this
 * executable, which interposes them for libhub and avro-c as well.
 *
 * Usage: bench_codec [events per run] [runs]   (defaults 1000000 and 5)
 * Run with HUB_DATA_DIR pointing at the source tree (bench/run.sh does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec_cases.h"
#include "hub/codec.h"
#include "hub/common.h"
#include "hub/events.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static unsigned long allocations;

void *malloc(size_t size)
{
    allocations++;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    allocations++;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    allocations++;
    return __libc_realloc(p, size);
}

typedef struct {
    double per_sec;       /* best run */
    double allocs_per_ev; /* over every measured run */
} result_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static hub_codec_t *open_codec(const char *sub)
{
    char dir[4096], errstr[512] = "";
    snprintf(dir, sizeof(dir), "%s/%s", hub_data_dir(), sub);
    hub_codec_opts_t opts = {.schemas_dir = dir};
    hub_codec_t *c = hub_codec_new(&opts, errstr, sizeof(errstr));
    if (!c) {
        fprintf(stderr, "bench_codec: %s\n", errstr);
        exit(1);
    }
    return c;
}

static void die(const char *what, const char *errstr)
{
    fprintf(stderr, "bench_codec: %s: %s\n", what, errstr);
    exit(1);
}

static volatile int64_t sink;

static result_t bench_encode(hub_codec_t *c, const hub_event_t *ev, long n, int runs)
{
    hub_buf_t buf = {0};
    char errstr[512];
    result_t r = {0};
    unsigned long allocs = 0;

    for (long i = 0; i < 10000; i++)
        if (hub_codec_encode(c, ev, &buf, errstr, sizeof(errstr)))
            die("encode", errstr);
    for (int run = 0; run < runs; run++) {
        unsigned long a0 = allocations;
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            if (hub_codec_encode(c, ev, &buf, errstr, sizeof(errstr)))
                die("encode", errstr);
            sink += buf.data[buf.len - 1];
        }
        double rate = (double)n / (now_s() - t0);
        allocs += allocations - a0;
        if (rate > r.per_sec)
            r.per_sec = rate;
    }
    r.allocs_per_ev = (double)allocs / ((double)n * runs);
    hub_buf_free(&buf);
    return r;
}

static result_t bench_decode(hub_codec_t *c, const hub_buf_t *in, long n, int runs)
{
    hub_event_t ev;
    char errstr[512];
    result_t r = {0};
    unsigned long allocs = 0;

    for (long i = 0; i < 10000; i++)
        if (hub_codec_decode(c, in->data, in->len, &ev, errstr, sizeof(errstr)))
            die("decode", errstr);
    for (int run = 0; run < runs; run++) {
        unsigned long a0 = allocations;
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            if (hub_codec_decode(c, in->data, in->len, &ev, errstr, sizeof(errstr)))
                die("decode", errstr);
            sink += ev.occurred_at;
        }
        double rate = (double)n / (now_s() - t0);
        allocs += allocations - a0;
        if (rate > r.per_sec)
            r.per_sec = rate;
    }
    r.allocs_per_ev = (double)allocs / ((double)n * runs);
    return r;
}

/* ev's compact JSON text: jansson's tree and json_dumps, or hub_event_json_text into a buffer. */
static void json_text_once(const hub_event_t *ev, int direct)
{
    char text[4096];

    if (direct) {
        sink += (int64_t)hub_event_json_text(ev, text, sizeof(text));
        return;
    }
    json_t *obj = hub_event_to_json(ev);
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    if (!s)
        die("json_dumps", "out of memory");
    sink += s[0];
    free(s);
    json_decref(obj);
}

static result_t bench_json(const hub_event_t *ev, int direct, long n, int runs)
{
    result_t r = {0};
    unsigned long allocs = 0;

    for (long i = 0; i < 10000; i++)
        json_text_once(ev, direct);
    for (int run = 0; run < runs; run++) {
        unsigned long a0 = allocations;
        double t0 = now_s();
        for (long i = 0; i < n; i++)
            json_text_once(ev, direct);
        double rate = (double)n / (now_s() - t0);
        allocs += allocations - a0;
        if (rate > r.per_sec)
            r.per_sec = rate;
    }
    r.allocs_per_ev = (double)allocs / ((double)n * runs);
    return r;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    hub_event_t ev;
    hub_buf_t framed = {0};
    char errstr[512];

    if (n <= 0 || runs <= 0) {
        fprintf(stderr, "usage: bench_codec [events per run] [runs]\n");
        return 2;
    }
    cc_typical_flagged(&ev);
    hub_codec_t *v1 = open_codec("schemas"), *v2 = open_codec("tests/fixtures/schemas");
    if (hub_codec_encode(v1, &ev, &framed, errstr, sizeof(errstr)))
        die("encode", errstr);

    printf("YoungPersonFlagged, %zu bytes framed; best of %d runs of %ld events, one thread\n",
           framed.len, runs, n);
    printf("%-34s %14s %10s %14s %10s\n", "path", "encode/s", "allocs/ev", "decode/s", "allocs/ev");

    hub_codec_set_generic(v1, 0);
    result_t de = bench_encode(v1, &ev, n, runs), dd = bench_decode(v1, &framed, n, runs);
    printf("%-34s %14.0f %10.2f %14.0f %10.2f\n", "direct coder (default)", de.per_sec,
           de.allocs_per_ev, dd.per_sec, dd.allocs_per_ev);

    hub_codec_set_generic(v1, 1);
    result_t ge = bench_encode(v1, &ev, n, runs), gd = bench_decode(v1, &framed, n, runs);
    printf("%-34s %14.0f %10.2f %14.0f %10.2f\n", "avro-c generic values", ge.per_sec,
           ge.allocs_per_ev, gd.per_sec, gd.allocs_per_ev);
    hub_codec_set_generic(v1, 0);

    /* v1 bytes (pinned id 1001) read by the v2 reader go through avro-c's resolved reader. */
    result_t rd = bench_decode(v2, &framed, n, runs);
    printf("%-34s %14s %10s %14.0f %10.2f\n", "avro-c resolved reader (v1 -> v2)", "-", "-",
           rd.per_sec, rd.allocs_per_ev);

    printf("\n%-34s %14s %10s\n", "JSON text (projector)", "events/s", "allocs/ev");
    result_t jj = bench_json(&ev, 0, n, runs), jt = bench_json(&ev, 1, n, runs);
    printf("%-34s %14.0f %10.2f\n", "jansson tree + json_dumps", jj.per_sec, jj.allocs_per_ev);
    printf("%-34s %14.0f %10.2f\n", "hub_event_json_text", jt.per_sec, jt.allocs_per_ev);

    hub_buf_free(&framed);
    hub_codec_destroy(v1);
    hub_codec_destroy(v2);
    return 0;
}
