/*
 * codec.h: events to and from the wire: the Confluent framing (byte 0x00, a
 * 4-byte big-endian schema id, Avro binary).
 *
 * The codec loads schemas/catalogue.json once. Schema ids come from a
 * Confluent-compatible Schema Registry when a URL is given (each catalogue
 * schema is registered at start, which is idempotent; unknown ids met on read
 * are fetched and cached), or from the catalogue's pinned ids otherwise. Data
 * written with an older or newer compatible schema is read through avro-c's
 * resolved reader, cached per (writer id, reader schema).
 *
 * A codec is not thread-safe; use one per thread.
 */
#ifndef HUB_CODEC_H
#define HUB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "hub/events.h"

typedef struct hub_codec_s hub_codec_t;

/* A growable byte buffer, reused between calls so steady state does not allocate. */
typedef struct hub_buf_s {
    unsigned char *data;
    size_t len;
    size_t cap;
} hub_buf_t;

/* hub_buf_free: releases the buffer's memory; the struct may be reused. */
void hub_buf_free(hub_buf_t *b);

typedef struct hub_codec_opts_s {
    const char *schemas_dir;  /* holds catalogue.json; NULL: <data dir>/schemas */
    const char *registry_url; /* Confluent API base URL; NULL or "": pinned ids */
    long registry_timeout_ms; /* per HTTP request; 0: 10000 */
} hub_codec_opts_t;

/*
 * hub_codec_new: loads and parses every catalogue schema and, in registry
 * mode, registers them. NULL on error with the file or URL and the problem in
 * errstr.
 */
hub_codec_t *hub_codec_new(const hub_codec_opts_t *opts, char *errstr, size_t errstr_size);

/* hub_codec_destroy: frees everything. NULL is fine. */
void hub_codec_destroy(hub_codec_t *c);

/*
 * hub_codec_encode: validates ev (structure only, see hub_event_validate with
 * rules NULL) and writes its framed bytes into out (out->len is set; the
 * buffer grows as needed). Returns 0, HUB_EVALID or HUB_ENOMEM.
 */
int hub_codec_encode(hub_codec_t *c, const hub_event_t *ev, hub_buf_t *out, char *errstr,
                     size_t errstr_size);

/*
 * hub_codec_decode: parses framed bytes into *ev. Returns 0, HUB_EDECODE
 * (bad magic byte, truncated or trailing bytes, bad lengths, invalid UTF-8,
 * enum or union index out of range), HUB_ESCHEMA (unknown schema id, or a
 * writer schema that cannot be resolved to a known event) or HUB_EVALID
 * (values that fail hub_event_validate with rules NULL). errstr never
 * contains payload bytes. In registry mode an unknown id is looked up; when
 * the registry cannot be reached the result is HUB_EIO or HUB_ETIMEOUT, which
 * callers should retry rather than dead-letter. On any error ev->type is
 * HUB_EVENT_NONE.
 */
int hub_codec_decode(hub_codec_t *c, const void *data, size_t len, hub_event_t *ev, char *errstr,
                     size_t errstr_size);

/*
 * hub_codec_set_generic: when on is non-zero, events of the catalogue's own
 * schemas are encoded and decoded through avro-c generic values instead of
 * the codec's direct coder. The bytes and events are the same; it exists so
 * tests and benchmarks can compare the two.
 */
void hub_codec_set_generic(hub_codec_t *c, int on);

/* hub_codec_schema_id: the id the codec writes for type, or -1. */
int32_t hub_codec_schema_id(const hub_codec_t *c, hub_event_type_t type);

/*
 * hub_codec_frame_id: reads the schema id from framed bytes into *id. 0, or
 * HUB_EDECODE when the bytes are too short or the magic byte is not 0.
 */
int hub_codec_frame_id(const void *data, size_t len, int32_t *id);

#endif
