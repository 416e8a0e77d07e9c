/*
 * registry.c: the Confluent-compatible Schema Registry client (libcurl +
 * jansson) and the offline BACKWARD-compatibility check (avro-c resolution
 * plus the two checks avro-c leaves out: defaults and enum symbols).
 */
#include <avro.h>
#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/registry.h"
#include "registry_int.h"

/* A registry never needs to send us more than this; a bigger answer is an error. */
#define REGISTRY_MAX_BODY (4u * 1024u * 1024u)
#define REGISTRY_CT       "application/vnd.schemaregistry.v1+json"

struct hub_registry_s {
    char *url; /* without a trailing slash */
    long timeout_ms;
    CURL *curl;
    struct curl_slist *headers;
    char *body; /* the last response body, NUL-terminated */
    size_t len, cap;
    int overflow;
};

static size_t registry_on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    hub_registry_t *r = opaque;
    size_t n = size * nmemb;

    if (r->len + n + 1 > REGISTRY_MAX_BODY) {
        r->overflow = 1;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        size_t ncap = r->cap ? r->cap : 4096;
        while (ncap < r->len + n + 1)
            ncap *= 2;
        char *nb = realloc(r->body, ncap);
        if (!nb)
            return 0;
        r->body = nb;
        r->cap = ncap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

hub_registry_t *hub_registry_new(const char *url, long timeout_ms, char *errstr, size_t errstr_size)
{
    hub_registry_t *r = NULL;
    size_t n;

    if (!url || !*url) {
        hub_errf(errstr, errstr_size, HUB_EINVAL, "schema registry URL is empty");
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        goto nomem;
    r->url = strdup(url);
    if (!r->url)
        goto nomem;
    for (n = strlen(r->url); n > 0 && r->url[n - 1] == '/'; n--)
        r->url[n - 1] = '\0';
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    r->curl = curl_easy_init();
    if (!r->curl) {
        hub_errf(errstr, errstr_size, HUB_EIO, "%s: cannot initialise libcurl", url);
        goto fail;
    }
    r->headers = curl_slist_append(NULL, "Content-Type: " REGISTRY_CT);
    if (!r->headers)
        goto nomem;
    struct curl_slist *h = curl_slist_append(r->headers, "Accept: " REGISTRY_CT);
    if (!h)
        goto nomem;
    r->headers = h;
    return r;

nomem:
    hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
fail:
    hub_registry_destroy(r);
    return NULL;
}

void hub_registry_destroy(hub_registry_t *r)
{
    if (!r)
        return;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->url);
    free(r);
}

const char *hub_registry_url(const hub_registry_t *r)
{
    return r->url;
}

/*
 * A short, printable summary of an error body: the registry's "message" when
 * it sent JSON, otherwise the first bytes with control characters replaced.
 */
static void registry_body_summary(const hub_registry_t *r, char *buf, size_t size)
{
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
    const char *src = msg ? msg : (r->body ? r->body : "");
    size_t i;

    for (i = 0; i + 1 < size && i < 200 && src[i]; i++)
        buf[i] = isprint((unsigned char)src[i]) ? src[i] : ' ';
    if (size)
        buf[i < size ? i : size - 1] = '\0';
    json_decref(j);
}

/*
 * One request: method and path (appended to the base URL), an optional JSON
 * body. *status gets the HTTP status; the body is in r->body. Transport
 * failures return HUB_EIO or HUB_ETIMEOUT naming the URL.
 */
static int registry_request(hub_registry_t *r, const char *method, const char *path,
                            const char *body, long *status, char *errstr, size_t errstr_size)
{
    char *url = NULL;
    size_t ulen = strlen(r->url) + strlen(path) + 1;
    CURLcode cc;
    int rc = HUB_OK;

    url = malloc(ulen);
    if (!url)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    snprintf(url, ulen, "%s%s", r->url, path);
    r->len = 0;
    r->overflow = 0;
    if (r->body)
        r->body[0] = '\0';

    /* Reset rather than re-create, so the connection is kept alive between calls. */
    curl_easy_reset(r->curl);
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, registry_on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body) {
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method);

    cc = curl_easy_perform(r->curl);
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = hub_errf(errstr, errstr_size, HUB_ETIMEOUT, "%s %s: no answer within %ld ms", method,
                      url, r->timeout_ms);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = hub_errf(errstr, errstr_size, HUB_EIO, "%s %s: %s", method, url,
                      r->overflow ? "answer too large" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);

out:
    free(url);
    return rc;
}

/* The error for an unexpected HTTP status: method, URL, status and body summary. */
static int registry_http_error(hub_registry_t *r, int err, const char *method, const char *path,
                               long status, char *errstr, size_t errstr_size)
{
    char summary[256];
    registry_body_summary(r, summary, sizeof(summary));
    return hub_errf(errstr, errstr_size, err, "%s %s%s: HTTP %ld: %s", method, r->url, path, status,
                    summary[0] ? summary : "(empty body)");
}

/* {"schema": schema_json} as a new string, or NULL when out of memory. */
static char *registry_schema_body(const char *schema_json)
{
    json_t *o = json_pack("{s:s}", "schema", schema_json);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* "/<prefix>/<escaped subject><suffix>" into a new string, or NULL. */
static char *registry_subject_path(hub_registry_t *r, const char *prefix, const char *subject,
                                   const char *suffix)
{
    char *esc = curl_easy_escape(r->curl, subject, 0);
    char *path = NULL;
    if (!esc)
        return NULL;
    size_t n = strlen(prefix) + strlen(esc) + strlen(suffix) + 1;
    path = malloc(n);
    if (path)
        snprintf(path, n, "%s%s%s", prefix, esc, suffix);
    curl_free(esc);
    return path;
}

int hub_registry_register(hub_registry_t *r, const char *subject, const char *schema_json,
                          int32_t *id, char *errstr, size_t errstr_size)
{
    char *path = NULL, *body = NULL;
    json_t *ans = NULL;
    long status = 0;
    int rc;

    path = registry_subject_path(r, "/subjects/", subject, "/versions");
    body = registry_schema_body(schema_json);
    if (!path || !body) {
        rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    rc = registry_request(r, "POST", path, body, &status, errstr, errstr_size);
    if (rc)
        goto out;
    if (status == 409 || status == 422) {
        rc = registry_http_error(r, HUB_ESCHEMA, "POST", path, status, errstr, errstr_size);
        goto out;
    }
    if (status != 200) {
        rc = registry_http_error(r, HUB_EIO, "POST", path, status, errstr, errstr_size);
        goto out;
    }
    ans = json_loads(r->body ? r->body : "", 0, NULL);
    json_t *jid = ans ? json_object_get(ans, "id") : NULL;
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > INT32_MAX) {
        rc = registry_http_error(r, HUB_EIO, "POST", path, status, errstr, errstr_size);
        goto out;
    }
    *id = (int32_t)json_integer_value(jid);

out:
    json_decref(ans);
    free(body);
    free(path);
    return rc;
}

int hub_registry_schema_by_id(hub_registry_t *r, int32_t id, char **schema_json, char *errstr,
                              size_t errstr_size)
{
    char path[64];
    json_t *ans = NULL;
    long status = 0;
    int rc;

    *schema_json = NULL;
    snprintf(path, sizeof(path), "/schemas/ids/%" PRId32, id);
    rc = registry_request(r, "GET", path, NULL, &status, errstr, errstr_size);
    if (rc)
        goto out;
    if (status == 404) {
        rc = hub_errf(errstr, errstr_size, HUB_ENOTFOUND, "schema id %" PRId32 " is not in %s", id,
                      r->url);
        goto out;
    }
    if (status != 200) {
        rc = registry_http_error(r, HUB_EIO, "GET", path, status, errstr, errstr_size);
        goto out;
    }
    ans = json_loads(r->body ? r->body : "", 0, NULL);
    const char *text = ans ? json_string_value(json_object_get(ans, "schema")) : NULL;
    const char *type = ans ? json_string_value(json_object_get(ans, "schemaType")) : NULL;
    if (!text) {
        rc = registry_http_error(r, HUB_EIO, "GET", path, status, errstr, errstr_size);
        goto out;
    }
    if (type && strcmp(type, "AVRO") != 0) {
        rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                      "schema id %" PRId32 " in %s is a %.32s schema, not Avro", id, r->url, type);
        goto out;
    }
    *schema_json = strdup(text);
    if (!*schema_json)
        rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");

out:
    json_decref(ans);
    return rc;
}

int hub_registry_check_compatible(hub_registry_t *r, const char *subject, const char *schema_json,
                                  int *compatible, char *errstr, size_t errstr_size)
{
    char *path = NULL, *body = NULL;
    json_t *ans = NULL;
    long status = 0;
    int rc;

    *compatible = 0;
    path = registry_subject_path(r, "/compatibility/subjects/", subject, "/versions/latest");
    body = registry_schema_body(schema_json);
    if (!path || !body) {
        rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    rc = registry_request(r, "POST", path, body, &status, errstr, errstr_size);
    if (rc)
        goto out;
    if (status == 404) {
        rc = registry_http_error(r, HUB_ENOTFOUND, "POST", path, status, errstr, errstr_size);
        goto out;
    }
    ans = status == 200 ? json_loads(r->body ? r->body : "", 0, NULL) : NULL;
    json_t *jc = ans ? json_object_get(ans, "is_compatible") : NULL;
    if (!json_is_boolean(jc)) {
        rc = registry_http_error(r, HUB_EIO, "POST", path, status, errstr, errstr_size);
        goto out;
    }
    *compatible = json_is_true(jc);

out:
    json_decref(ans);
    free(body);
    free(path);
    return rc;
}

int hub_registry_set_compatibility(hub_registry_t *r, const char *subject, const char *level,
                                   char *errstr, size_t errstr_size)
{
    char *path = NULL, *body = NULL;
    json_t *o = NULL;
    long status = 0;
    int rc;

    path = subject ? registry_subject_path(r, "/config/", subject, "") : strdup("/config");
    o = json_pack("{s:s}", "compatibility", level);
    body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!path || !body) {
        rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    rc = registry_request(r, "PUT", path, body, &status, errstr, errstr_size);
    if (rc == 0 && status != 200)
        rc = registry_http_error(r, HUB_EIO, "PUT", path, status, errstr, errstr_size);

out:
    free(body);
    json_decref(o);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Schema resolution helpers                                                 */
/* ------------------------------------------------------------------------- */

char *hub_schema_full_name(avro_schema_t schema, char *buf, size_t size)
{
    const char *ns = avro_schema_namespace(schema);
    const char *name = avro_schema_name(schema);
    if (ns && *ns)
        snprintf(buf, size, "%s.%s", ns, name ? name : "");
    else
        snprintf(buf, size, "%s", name ? name : "");
    return buf;
}

int hub_schema_effective_reader(avro_schema_t writer, avro_schema_t reader,
                                const json_t *reader_json, avro_schema_t *out, char *errstr,
                                size_t errstr_size)
{
    json_t *copy = NULL, *kept = NULL;
    char *text = NULL;
    size_t dropped = 0;
    int rc = HUB_OK;

    *out = NULL;
    if (!is_avro_record(writer) || !is_avro_record(reader)) {
        *out = avro_schema_incref(reader);
        return HUB_OK;
    }
    const json_t *fields = json_object_get(reader_json, "fields");
    copy = json_deep_copy(reader_json);
    kept = json_array();
    if (!copy || !kept) {
        rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        if (name && avro_schema_record_field_get_index(writer, name) >= 0) {
            json_array_append_new(kept, json_deep_copy(f));
            continue;
        }
        if (!json_object_get(f, "default")) {
            rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                          "reader field %s is missing from the writer schema and has no default",
                          name ? name : "(unnamed)");
            goto out;
        }
        dropped++;
    }
    if (!dropped) {
        *out = avro_schema_incref(reader);
        goto out;
    }
    json_object_set(copy, "fields", kept);
    text = json_dumps(copy, JSON_COMPACT);
    if (!text) {
        rc = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    if (avro_schema_from_json_length(text, strlen(text), out) != 0) {
        *out = NULL;
        rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA,
                      "reader schema without the writer's missing fields is invalid: %s",
                      avro_strerror());
    }

out:
    free(text);
    json_decref(kept);
    json_decref(copy);
    return rc;
}

static avro_schema_t schema_deref(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

/* The branch of union u that a value of schema s would resolve to, or NULL. */
static avro_schema_t union_match(avro_schema_t u, avro_schema_t s)
{
    char a[512], b[512];
    s = schema_deref(s);
    for (size_t i = 0; i < avro_schema_union_size(u); i++) {
        avro_schema_t br = schema_deref(avro_schema_union_branch(u, (int)i));
        if (avro_typeof(br) != avro_typeof(s))
            continue;
        if (!is_avro_named_type(s) || strcmp(hub_schema_full_name(br, a, sizeof(a)),
                                             hub_schema_full_name(s, b, sizeof(b))) == 0)
            return br;
    }
    return NULL;
}

static int enums_walk(avro_schema_t w, avro_schema_t r, int depth, char *reason, size_t size)
{
    w = schema_deref(w);
    r = schema_deref(r);
    /* Recursive schemas: by this depth every enum has been visited already. */
    if (depth > 32)
        return 1;
    if (is_avro_union(w)) {
        for (size_t i = 0; i < avro_schema_union_size(w); i++) {
            avro_schema_t wb = avro_schema_union_branch(w, (int)i);
            avro_schema_t rb = is_avro_union(r) ? union_match(r, wb) : r;
            if (rb && !enums_walk(wb, rb, depth + 1, reason, size))
                return 0;
        }
        return 1;
    }
    if (is_avro_union(r)) {
        avro_schema_t rb = union_match(r, w);
        return rb ? enums_walk(w, rb, depth + 1, reason, size) : 1;
    }
    if (is_avro_record(w) && is_avro_record(r)) {
        for (size_t i = 0; i < avro_schema_record_size(r); i++) {
            const char *name = avro_schema_record_field_name(r, (int)i);
            avro_schema_t wf = avro_schema_record_field_get(w, name);
            if (wf && !enums_walk(wf, avro_schema_record_field_get_by_index(r, (int)i), depth + 1,
                                  reason, size))
                return 0;
        }
        return 1;
    }
    if (is_avro_array(w) && is_avro_array(r))
        return enums_walk(avro_schema_array_items(w), avro_schema_array_items(r), depth + 1, reason,
                          size);
    if (is_avro_map(w) && is_avro_map(r))
        return enums_walk(avro_schema_map_values(w), avro_schema_map_values(r), depth + 1, reason,
                          size);
    if (is_avro_enum(w) && is_avro_enum(r)) {
        for (int i = 0; i < avro_schema_enum_number_of_symbols(w); i++) {
            const char *sym = avro_schema_enum_get(w, i);
            if (avro_schema_enum_get_by_name(r, sym) < 0) {
                char name[512];
                snprintf(reason, size, "enum %s: symbol %s was removed",
                         hub_schema_full_name(r, name, sizeof(name)), sym);
                return 0;
            }
        }
    }
    return 1;
}

int hub_schema_enums_compatible(avro_schema_t writer, avro_schema_t reader, char *reason,
                                size_t reason_size)
{
    return enums_walk(writer, reader, 0, reason, reason_size);
}

int hub_registry_check_offline(const char *old_json, const char *new_json, int *compatible,
                               char *reason, size_t reason_size, char *errstr, size_t errstr_size)
{
    avro_schema_t old_s = NULL, new_s = NULL, eff = NULL;
    avro_value_iface_t *resolver = NULL;
    json_t *new_j = NULL;
    json_error_t jerr;
    char a[512], b[512], why[512];
    int rc = HUB_OK;

    *compatible = 0;
    if (reason_size)
        reason[0] = '\0';
    if (avro_schema_from_json_length(old_json, strlen(old_json), &old_s) != 0) {
        old_s = NULL;
        rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA, "old schema: %s", avro_strerror());
        goto out;
    }
    if (avro_schema_from_json_length(new_json, strlen(new_json), &new_s) != 0) {
        new_s = NULL;
        rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA, "new schema: %s", avro_strerror());
        goto out;
    }
    new_j = json_loads(new_json, 0, &jerr);
    if (!new_j) {
        rc = hub_errf(errstr, errstr_size, HUB_ESCHEMA, "new schema: line %d: %s", jerr.line,
                      jerr.text);
        goto out;
    }
    if (is_avro_named_type(old_s) && is_avro_named_type(new_s) &&
        strcmp(hub_schema_full_name(old_s, a, sizeof(a)),
               hub_schema_full_name(new_s, b, sizeof(b))) != 0) {
        snprintf(reason, reason_size, "the name changed from %s to %s", a, b);
        goto out;
    }
    if (hub_schema_effective_reader(old_s, new_s, new_j, &eff, why, sizeof(why)) != 0) {
        snprintf(reason, reason_size, "%s", why);
        goto out;
    }
    resolver = avro_resolved_reader_new(old_s, eff);
    if (!resolver) {
        snprintf(reason, reason_size, "%s", avro_strerror());
        goto out;
    }
    if (!hub_schema_enums_compatible(old_s, eff, reason, reason_size))
        goto out;
    *compatible = 1;

out:
    if (resolver)
        avro_value_iface_decref(resolver);
    if (eff)
        avro_schema_decref(eff);
    if (new_s)
        avro_schema_decref(new_s);
    if (old_s)
        avro_schema_decref(old_s);
    json_decref(new_j);
    return rc;
}
