/*
 * registry.h: a client for a Confluent-compatible Schema Registry (the hub is
 * tested against Apicurio Registry's /apis/ccompat/v7 API), and the offline
 * BACKWARD-compatibility check used when no registry is configured.
 *
 * Registries return schemas as compact JSON, so callers compare schemas
 * parsed, never as strings. Error messages name the URL and the HTTP status
 * with a short summary of the body.
 *
 * A registry handle is not thread-safe; use one per thread.
 */
#ifndef HUB_REGISTRY_H
#define HUB_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct hub_registry_s hub_registry_t;

/*
 * hub_registry_new: a client for the registry at url (the Confluent API base,
 * e.g. http://host:8080/apis/ccompat/v7), with timeout_ms per request (0:
 * 10000). No request is made yet. NULL on error.
 */
hub_registry_t *hub_registry_new(const char *url, long timeout_ms, char *errstr,
                                 size_t errstr_size);

/* hub_registry_destroy: frees the client. NULL is fine. */
void hub_registry_destroy(hub_registry_t *r);

/* hub_registry_url: the base URL the client was made with. Borrowed. */
const char *hub_registry_url(const hub_registry_t *r);

/*
 * hub_registry_register: registers schema_json under subject (POST
 * /subjects/{subject}/versions) and sets *id. Registering a schema the subject
 * already has returns its existing id. Returns 0, HUB_ESCHEMA when the
 * registry rejects the schema (HTTP 409: incompatible, 422: invalid), or
 * HUB_EIO / HUB_ETIMEOUT when it cannot be reached or answers otherwise.
 */
int hub_registry_register(hub_registry_t *r, const char *subject, const char *schema_json,
                          int32_t *id, char *errstr, size_t errstr_size);

/*
 * hub_registry_schema_by_id: fetches the schema with the given id (GET
 * /schemas/ids/{id}) into *schema_json, a new string the caller frees.
 * Returns 0, HUB_ENOTFOUND (no such id), HUB_ESCHEMA (not an Avro schema), or
 * HUB_EIO / HUB_ETIMEOUT.
 */
int hub_registry_schema_by_id(hub_registry_t *r, int32_t id, char **schema_json, char *errstr,
                              size_t errstr_size);

/*
 * hub_registry_check_compatible: asks the registry whether schema_json may be
 * registered as the next version of subject under the compatibility level in
 * force (POST /compatibility/subjects/{subject}/versions/latest) and sets
 * *compatible to 1 or 0. Returns 0, HUB_ENOTFOUND when the registry reports
 * that the subject has no version yet (Confluent's does; Apicurio answers
 * "compatible" instead; either way anything may be registered), or HUB_EIO /
 * HUB_ETIMEOUT.
 */
int hub_registry_check_compatible(hub_registry_t *r, const char *subject, const char *schema_json,
                                  int *compatible, char *errstr, size_t errstr_size);

/*
 * hub_registry_set_compatibility: sets the compatibility level ("BACKWARD",
 * "NONE", ...) of subject (PUT /config/{subject}), or the global default when
 * subject is NULL (PUT /config). 0, HUB_EIO or HUB_ETIMEOUT.
 */
int hub_registry_set_compatibility(hub_registry_t *r, const char *subject, const char *level,
                                   char *errstr, size_t errstr_size);

/*
 * hub_registry_check_offline: decides without a registry whether new_json is
 * BACKWARD compatible with old_json, i.e. whether a reader using the new
 * schema can read everything written with the old one: the records must have
 * the same full name; fields only in the new schema need a default; fields in
 * both must resolve (avro-c's schema resolution, which allows the Avro
 * promotions); every symbol of an old enum must still exist in the new one.
 * Sets *compatible, and when it is 0 writes the first reason into reason.
 * Returns 0, or HUB_ESCHEMA when either text is not a valid Avro schema.
 *
 * It is deliberately stricter than the Avro specification in two corners
 * avro-c cannot resolve: new fields inside nested records and enum defaults
 * are reported as incompatible.
 */
int hub_registry_check_offline(const char *old_json, const char *new_json, int *compatible,
                               char *reason, size_t reason_size, char *errstr, size_t errstr_size);

#endif
