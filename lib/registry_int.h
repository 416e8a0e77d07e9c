/*
 * registry_int.h: schema-resolution helpers shared by registry.c and codec.c
 * (not part of libhub's public interface).
 *
 * avro-c resolves a writer schema against a reader schema but cannot supply
 * reader defaults for fields the writer lacks, and maps enums by index rather
 * than by symbol. These helpers fill those two gaps.
 */
#ifndef HUB_REGISTRY_INT_H
#define HUB_REGISTRY_INT_H

#include <avro.h>
#include <jansson.h>
#include <stddef.h>

/*
 * hub_schema_effective_reader: the reader schema to hand to avro-c when
 * reading data written with `writer`: `reader` itself (a new reference) when
 * every top-level reader field exists in the writer, otherwise a schema
 * parsed from reader_json without those fields. Fields dropped this way must
 * have a default in reader_json (the caller applies it). Returns 0 with *out
 * set, or HUB_ESCHEMA naming the field that has no default.
 */
int hub_schema_effective_reader(avro_schema_t writer, avro_schema_t reader,
                                const json_t *reader_json, avro_schema_t *out, char *errstr,
                                size_t errstr_size);

/*
 * hub_schema_enums_compatible: 1 when every symbol of every enum in writer
 * (walked in step with reader: record fields by name, array items, map
 * values, union branches by type and name) exists in the matching reader
 * enum; 0 otherwise, with the enum and symbol named in reason.
 */
int hub_schema_enums_compatible(avro_schema_t writer, avro_schema_t reader, char *reason,
                                size_t reason_size);

/* hub_schema_full_name: "namespace.name" of a named schema into buf; returns buf. */
char *hub_schema_full_name(avro_schema_t schema, char *buf, size_t size);

#endif
