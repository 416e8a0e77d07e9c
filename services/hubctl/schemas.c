/*
 * schemas.c: `hubctl schemas list` shows the catalogue; `hubctl schemas
 * check <file.avsc>` says whether a new schema version is BACKWARD compatible
 * (a reader with the new schema reads everything written with the old one)
 * with the catalogue's newest version of the same record, the rule this
 * project enforces; when a registry is configured it asks the registry too.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/common.h"
#include "hub/registry.h"
#include "hubctl.h"

static const char usage[] =
    "Usage: hubctl [--config FILE] schemas list\n"
    "       hubctl [--config FILE] schemas check [--offline] <file.avsc>\n"
    "\n"
    "list   every schema of the catalogue (schemas_dir/catalogue.json): event\n"
    "       type, subject, version, pinned id, topic and file.\n"
    "check  whether <file.avsc> is BACKWARD compatible with the catalogue's newest\n"
    "       version of the same record (data written with the old schema must\n"
    "       be readable with the new one): decided offline by Avro schema\n"
    "       resolution, and also by the schema registry's compatibility check\n"
    "       when schema_registry.url is set (unless --offline). A relative path\n"
    "       not found from here is looked up under schemas_dir.\n"
    "\n"
    "Exit status: 0 compatible (or listed); 1 incompatible, or the registry\n"
    "could not answer; 2 bad usage, configuration or schema file.\n";

static json_t *load_catalogue(hubctl_t *ctl)
{
    char path[4096], errstr[1024] = "";
    json_error_t jerr;
    json_t *cat;
    char *text;

    snprintf(path, sizeof(path), "%s/catalogue.json", ctl->svc->common.schemas_dir);
    text = hub_read_file(path, NULL, errstr, sizeof(errstr));
    if (!text) {
        hubctl_err("schemas", "%s", errstr);
        return NULL;
    }
    cat = json_loads(text, 0, &jerr);
    free(text);
    if (!cat || !json_is_array(json_object_get(cat, "schemas"))) {
        hubctl_err("schemas", "%s:%d: %s", path, cat ? 1 : jerr.line,
                   cat ? "no \"schemas\" array" : jerr.text);
        json_decref(cat);
        return NULL;
    }
    return cat;
}

static const char *str_of(const json_t *entry, const char *key)
{
    const char *s = json_string_value(json_object_get(entry, key));
    return s ? s : "-";
}

static int schemas_list(hubctl_t *ctl)
{
    json_t *cat = load_catalogue(ctl), *e;
    size_t i;

    if (!cat)
        return HUB_EXIT_USAGE;
    printf("%-24s %-36s %7s %5s %-30s %s\n", "TYPE", "SUBJECT", "VERSION", "ID", "TOPIC", "FILE");
    json_array_foreach(json_object_get(cat, "schemas"), i, e)
    {
        const char *setting = str_of(e, "topic");
        const char *topic = hub_service_topic(ctl->svc, setting);
        printf("%-24s %-36s %7lld %5lld %-30s %s\n", str_of(e, "event"), str_of(e, "subject"),
               (long long)json_integer_value(json_object_get(e, "version")),
               (long long)json_integer_value(json_object_get(e, "id")), topic ? topic : setting,
               str_of(e, "file"));
    }
    json_decref(cat);
    return HUB_EXIT_OK;
}

/* The record's full name (the subject, by the RecordNameStrategy) into buf, or NULL. */
static const char *full_name(const json_t *schema, char *buf, size_t size)
{
    const char *name = json_string_value(json_object_get(schema, "name"));
    const char *ns = json_string_value(json_object_get(schema, "namespace"));
    if (!name)
        return NULL;
    if (strchr(name, '.') || !ns || !*ns)
        snprintf(buf, size, "%s", name);
    else
        snprintf(buf, size, "%s.%s", ns, name);
    return buf;
}

/* The catalogue entry with the highest version of subject, or NULL. Borrowed from cat. */
static const json_t *newest_entry(const json_t *cat, const char *subject)
{
    const json_t *best = NULL, *e;
    size_t i;
    json_array_foreach(json_object_get(cat, "schemas"), i, e)
    {
        if (strcmp(str_of(e, "subject"), subject) != 0)
            continue;
        if (!best || json_integer_value(json_object_get(e, "version")) >
                         json_integer_value(json_object_get(best, "version")))
            best = e;
    }
    return best;
}

/* Reads the schema file: as given, else (when relative and missing) under schemas_dir. */
static char *read_schema(hubctl_t *ctl, const char *path, char *used, size_t used_size)
{
    char errstr[1024] = "";
    snprintf(used, used_size, "%s", path);
    if (path[0] != '/' && access(path, F_OK) != 0)
        snprintf(used, used_size, "%s/%s", ctl->svc->common.schemas_dir, path);
    char *text = hub_read_file(used, NULL, errstr, sizeof(errstr));
    if (!text)
        hubctl_err("schemas", "%s", errstr);
    return text;
}

/* Asks the registry; 0 compatible, 1 not, -1 no answer (message printed). */
static int registry_verdict(hubctl_t *ctl, const char *subject, const char *schema_text)
{
    char errstr[1024] = "";
    hub_registry_t *r = hub_registry_new(ctl->svc->common.registry_url, 0, errstr, sizeof(errstr));
    int compatible = 0, rc = -1, err;

    if (!r) {
        hubctl_err("schemas", "%s", errstr);
        return -1;
    }
    err =
        hub_registry_check_compatible(r, subject, schema_text, &compatible, errstr, sizeof(errstr));
    if (err == HUB_ENOTFOUND) {
        printf("registry: %s has no version yet, so any schema may be registered\n", subject);
        rc = 0;
    } else if (err) {
        hubctl_err("schemas", "registry check failed: %s", errstr);
    } else {
        printf("registry: %s with the latest version of %s at %s\n",
               compatible ? "compatible" : "INCOMPATIBLE", subject, hub_registry_url(r));
        rc = compatible ? 0 : 1;
    }
    hub_registry_destroy(r);
    return rc;
}

static int schemas_check(hubctl_t *ctl, const char *path, int offline)
{
    char used[4096], old_path[4096], subject[512], reason[1024] = "", errstr[1024] = "";
    json_t *cat = NULL, *schema = NULL;
    const json_t *entry;
    char *new_text = NULL, *old_text = NULL;
    json_error_t jerr;
    int status = HUB_EXIT_USAGE, compatible = 0;

    new_text = read_schema(ctl, path, used, sizeof(used));
    if (!new_text)
        goto out;
    schema = json_loads(new_text, 0, &jerr);
    if (!schema) {
        hubctl_err("schemas", "%s:%d: %s", used, jerr.line, jerr.text);
        goto out;
    }
    if (!full_name(schema, subject, sizeof(subject))) {
        hubctl_err("schemas", "%s: not a named Avro record (no \"name\")", used);
        goto out;
    }
    cat = load_catalogue(ctl);
    if (!cat)
        goto out;
    entry = newest_entry(cat, subject);
    if (!entry) {
        printf("offline: %s is not in the catalogue: a new subject, nothing to be compatible "
               "with\n",
               subject);
        status = HUB_EXIT_OK;
    } else {
        snprintf(old_path, sizeof(old_path), "%s/%s", ctl->svc->common.schemas_dir,
                 str_of(entry, "file"));
        old_text = hub_read_file(old_path, NULL, errstr, sizeof(errstr));
        if (!old_text) {
            hubctl_err("schemas", "%s", errstr);
            goto out;
        }
        if (hub_registry_check_offline(old_text, new_text, &compatible, reason, sizeof(reason),
                                       errstr, sizeof(errstr)) != HUB_OK) {
            hubctl_err("schemas", "%s: %s", used, errstr);
            goto out;
        }
        if (compatible)
            printf("offline: compatible: %s reads data written with %s v%lld (%s)\n", used, subject,
                   (long long)json_integer_value(json_object_get(entry, "version")),
                   str_of(entry, "file"));
        else
            printf("offline: INCOMPATIBLE with %s v%lld (%s): %s\n", subject,
                   (long long)json_integer_value(json_object_get(entry, "version")),
                   str_of(entry, "file"), reason);
        status = compatible ? HUB_EXIT_OK : HUB_EXIT_FAILURE;
    }
    if (!offline && ctl->svc->common.registry_url && *ctl->svc->common.registry_url) {
        int r = registry_verdict(ctl, subject, new_text);
        if (r != 0)
            status = HUB_EXIT_FAILURE;
    }
out:
    free(old_text);
    free(new_text);
    json_decref(schema);
    json_decref(cat);
    return status;
}

int hubctl_schemas(hubctl_t *ctl, int argc, char **argv)
{
    enum { OPT_OFFLINE = 256 };
    static const struct option opts[] = {{"offline", no_argument, NULL, OPT_OFFLINE},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int offline = 0, ch;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_OFFLINE:
            offline = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return HUB_EXIT_OK;
        default:
            fputs(usage, stderr);
            return HUB_EXIT_USAGE;
        }
    }
    if (argc - optind == 1 && strcmp(argv[optind], "list") == 0)
        return schemas_list(ctl);
    if (argc - optind == 2 && strcmp(argv[optind], "check") == 0)
        return schemas_check(ctl, argv[optind + 1], offline);
    fputs(usage, stderr);
    return HUB_EXIT_USAGE;
}
