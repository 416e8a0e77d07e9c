/*
 * hubctl.h: what hubctl's commands share. Each command lives in its own file
 * and returns an exit status (HUB_EXIT_OK, HUB_EXIT_FAILURE, HUB_EXIT_USAGE).
 */
#ifndef HUBCTL_H
#define HUBCTL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "hub/codec.h"
#include "hub/groups.h"
#include "hub/service.h"

typedef struct hubctl_s {
    hub_service_t *svc;
    long long flush_timeout_ms; /* hubctl.flush_timeout_ms */
    char *replay_group;         /* hubctl.replay_group */
} hubctl_t;

/* A command: argv[0] is the command's name, options may follow in any order. */
typedef int (*hubctl_cmd_fn)(hubctl_t *ctl, int argc, char **argv);

int hubctl_publish(hubctl_t *ctl, int argc, char **argv);
int hubctl_tail(hubctl_t *ctl, int argc, char **argv);
int hubctl_schemas(hubctl_t *ctl, int argc, char **argv);
int hubctl_dead_letters(hubctl_t *ctl, int argc, char **argv);
int hubctl_pseudonymise(hubctl_t *ctl, int argc, char **argv);
int hubctl_simulate(hubctl_t *ctl, int argc, char **argv);
int hubctl_brief(hubctl_t *ctl, int argc, char **argv);

/*
 * hubctl_groups_load (brief.c): the named groups of the configuration file
 * (its `groups` list, or the built-in groups when it has none or there is no
 * file) into *groups (free with hub_groups_free). 0 or HUB_ECONFIG.
 */
int hubctl_groups_load(hubctl_t *ctl, hub_groups_t *groups, char *errstr, size_t errstr_size);

/* ---- util.c ---------------------------------------------------------------- */

/* hubctl_err: prints "hubctl <command>: <message>" on stderr. */
void hubctl_err(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * hubctl_parse_count: a decimal in [min, max] into *out. 0, or -1 (with a
 * message naming the option on stderr) when it is not one.
 */
int hubctl_parse_count(const char *command, const char *option, const char *text, long long min,
                       long long max, long long *out);

/* hubctl_codec_new: a codec for the configured schemas and registry, or NULL (message printed). */
hub_codec_t *hubctl_codec_new(hubctl_t *ctl, const char *command);

/*
 * hubctl_topic: the topic named by arg: a topics.<setting> name such as
 * "risk_flags" means the configured topic, anything else is a topic name.
 */
const char *hubctl_topic(const hubctl_t *ctl, const char *arg);

/* hubctl_print_json: writes obj as one compact line on stdout and releases it. 0 or -1. */
int hubctl_print_json(json_t *obj);

/* hubctl_bytes_json: bytes as a JSON string when they are UTF-8, else null. A new reference. */
json_t *hubctl_bytes_json(const void *data, size_t len);

/*
 * An assign-based reader: every partition of one topic, from the start or the
 * end, no consumer group and no commits, with end-of-partition events so a
 * caller can stop at the end.
 */
typedef struct hubctl_reader_s hubctl_reader_t;

hubctl_reader_t *hubctl_reader_new(hubctl_t *ctl, const char *topic, int from_beginning,
                                   char *errstr, size_t errstr_size);

/*
 * hubctl_reader_poll: the next message (the caller destroys it), or NULL when
 * none arrived within timeout_ms. Sets *at_end once every partition has been
 * read to its end (and no message arrived since). Errors other than
 * end-of-partition are printed on stderr.
 */
rd_kafka_message_t *hubctl_reader_poll(hubctl_reader_t *r, int timeout_ms, int *at_end);

/* hubctl_reader_destroy: closes and frees. Every message must have been destroyed. NULL is fine. */
void hubctl_reader_destroy(hubctl_reader_t *r);

/* hubctl_header: the last value of header name as a new NUL-terminated string, or NULL. */
char *hubctl_header(const rd_kafka_message_t *m, const char *name);

#endif
