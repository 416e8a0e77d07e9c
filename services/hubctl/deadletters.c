/*
 * deadletters.c: `hubctl dead-letters list` shows what was rejected and why
 * (headers only, never the payload); `hubctl dead-letters replay` sends the
 * original bytes back to their original topic.
 *
 * Replay is bounded twice over: each replayed copy carries
 * hub.errors.replay.count = previous + 1, which a failing consumer copies into
 * the next dead letter, so a message that keeps failing is refused once it
 * reaches --max-replays; and replay reads in a consumer group that commits
 * only after the copies are delivered, so a second run does not send again
 * what the first already sent.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/deadletter.h"
#include "hub/kafka.h"
#include "hub/signals.h"
#include "hubctl.h"

static const char usage[] =
    "Usage: hubctl [--config FILE] dead-letters list [--count N]\n"
    "       hubctl [--config FILE] dead-letters replay [--class C] [--source-topic T]\n"
    "                  [--max-replays N] [--group G] [--timeout-ms T] [--dry-run]\n"
    "\n"
    "list    reads topics.dead_letters from the beginning to its end and prints\n"
    "        one JSON object per dead letter: its coordinates and the reason\n"
    "        headers (class, message, source topic/partition/offset, service,\n"
    "        timestamp, replay count). Never the payload.\n"
    "replay  re-publishes each dead letter not yet replayed by the replay group\n"
    "        (hubctl.replay_group) to its source topic, with its original key\n"
    "        and bytes and hub.errors.replay.count = previous + 1. A dead letter\n"
    "        already replayed --max-replays times is refused (reported, not\n"
    "        sent). Dead letters that do not match --class / --source-topic are\n"
    "        passed over, and the group does not offer them again: use another\n"
    "        --group to replay them later. Offsets are committed only after\n"
    "        every copy is delivered. Prints one JSON line per dead letter\n"
    "        replayed or refused, and a summary on stderr.\n"
    "\n"
    "Options:\n"
    "  -n, --count N          list: stop after N dead letters\n"
    "      --class C          replay: only dead letters of this class (decode, schema,\n"
    "                         validation, database, delivery, processing)\n"
    "      --source-topic T   replay: only dead letters from topic T\n"
    "      --max-replays N    replay: refuse what was replayed N times already (3)\n"
    "      --group G          replay: the consumer group (default hubctl.replay_group)\n"
    "  -t, --timeout-ms T     give up reading after T ms (30000)\n"
    "      --dry-run          replay: report what would be done; send and commit nothing\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit status: 0 done; 1 a Kafka error, a failed delivery or a timeout (nothing\n"
    "committed: the next run tries again); 2 bad usage or configuration.\n";

typedef struct {
    long long count, max_replays, timeout_ms;
    const char *cls, *source_topic, *group;
    int dry_run;
} dl_opts_t;

/* A header's value as a JSON string (null when absent), or as an integer when it is one. */
static json_t *header_json(const rd_kafka_message_t *m, const char *name, int integer)
{
    char *v = hubctl_header(m, name), *end = NULL;
    json_t *j;
    if (!v)
        return json_null();
    if (integer) {
        long long n = strtoll(v, &end, 10);
        j = *v && !*end ? json_integer(n) : hubctl_bytes_json(v, strlen(v));
    } else {
        j = hubctl_bytes_json(v, strlen(v));
    }
    free(v);
    return j;
}

static json_t *dead_letter_json(const rd_kafka_message_t *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "partition", json_integer(m->partition));
    json_object_set_new(o, "offset", json_integer(m->offset));
    json_object_set_new(o, "class", header_json(m, HUB_DLQ_HEADER_CLASS, 0));
    json_object_set_new(o, "message", header_json(m, HUB_DLQ_HEADER_MESSAGE, 0));
    json_object_set_new(o, "source_topic", header_json(m, HUB_DLQ_HEADER_TOPIC, 0));
    json_object_set_new(o, "source_partition", header_json(m, HUB_DLQ_HEADER_PARTITION, 1));
    json_object_set_new(o, "source_offset", header_json(m, HUB_DLQ_HEADER_OFFSET, 1));
    json_object_set_new(o, "service", header_json(m, HUB_DLQ_HEADER_SERVICE, 0));
    json_object_set_new(o, "timestamp", header_json(m, HUB_DLQ_HEADER_TIMESTAMP, 0));
    json_object_set_new(o, "replay_count", json_integer(hub_deadletter_replays(m)));
    json_object_set_new(o, "bytes", json_integer((json_int_t)m->len));
    return o;
}

static int dl_list(hubctl_t *ctl, const dl_opts_t *o)
{
    const char *topic = ctl->svc->common.topics.dead_letters;
    char errstr[1024] = "";
    hubctl_reader_t *r = hubctl_reader_new(ctl, topic, 1, errstr, sizeof(errstr));
    int64_t deadline = hub_monotonic_ms() + o->timeout_ms;
    long long seen = 0;
    int at_end = 0;

    if (!r) {
        hubctl_err("dead-letters", "%s", errstr);
        return HUB_EXIT_FAILURE;
    }
    while (!hub_stop_requested() && (o->count < 0 || seen < o->count)) {
        if (hub_monotonic_ms() >= deadline) {
            hubctl_err("dead-letters", "the end of %s was not reached in %lld ms", topic,
                       o->timeout_ms);
            hubctl_reader_destroy(r);
            return HUB_EXIT_FAILURE;
        }
        rd_kafka_message_t *m = hubctl_reader_poll(r, 200, &at_end);
        if (!m) {
            if (at_end)
                break;
            continue;
        }
        int bad = hubctl_print_json(dead_letter_json(m));
        rd_kafka_message_destroy(m);
        if (bad) {
            hubctl_err("dead-letters", "cannot write the output");
            hubctl_reader_destroy(r);
            return HUB_EXIT_FAILURE;
        }
        seen++;
    }
    hubctl_reader_destroy(r);
    return HUB_EXIT_OK;
}

/* ---- replay ------------------------------------------------------------------ */

typedef struct {
    rd_kafka_message_t **v;
    size_t n, cap;
} msgs_t;

static int msgs_add(msgs_t *l, rd_kafka_message_t *m)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        rd_kafka_message_t **v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = m;
    return 0;
}

static void msgs_free(msgs_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        rd_kafka_message_destroy(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Whether every partition assigned to the group has been read to its end. */
static int all_at_end(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *eof)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    int done;
    if (rd_kafka_assignment(rk, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    done = assigned->cnt > 0;
    for (int i = 0; done && i < assigned->cnt; i++)
        done = rd_kafka_topic_partition_list_find(eof, assigned->elems[i].topic,
                                                  assigned->elems[i].partition) != NULL;
    rd_kafka_topic_partition_list_destroy(assigned);
    return done;
}

/*
 * Reads the group's uncommitted dead letters up to the end of every assigned
 * partition into *out. 0, or -1 after a timeout or error (message printed).
 */
static int read_pending(hub_consumer_t *c, const dl_opts_t *o, msgs_t *out)
{
    rd_kafka_t *rk = hub_consumer_handle(c);
    rd_kafka_topic_partition_list_t *eof = rd_kafka_topic_partition_list_new(8);
    int64_t deadline = hub_monotonic_ms() + o->timeout_ms;
    int rc = -1;

    while (!hub_stop_requested()) {
        if (hub_monotonic_ms() >= deadline) {
            hubctl_err("dead-letters",
                       "the end of the dead-letter topic was not reached in "
                       "%lld ms; nothing replayed",
                       o->timeout_ms);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (all_at_end(rk, eof)) {
                rc = 0;
                goto out;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!rd_kafka_topic_partition_list_find(eof, rd_kafka_topic_name(m->rkt), m->partition))
                rd_kafka_topic_partition_list_add(eof, rd_kafka_topic_name(m->rkt), m->partition);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            /* Transport errors are retried by librdkafka; anything else ends the run. */
            int fatal = m->err != RD_KAFKA_RESP_ERR__TRANSPORT;
            hubctl_err("dead-letters", "consume error: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (fatal)
                goto out;
            continue;
        }
        rd_kafka_topic_partition_list_del(eof, rd_kafka_topic_name(m->rkt), m->partition);
        if (msgs_add(out, m) != 0) {
            rd_kafka_message_destroy(m);
            hubctl_err("dead-letters", "out of memory");
            goto out;
        }
    }
    hubctl_err("dead-letters", "interrupted; nothing replayed");
out:
    rd_kafka_topic_partition_list_destroy(eof);
    return rc;
}

static int matches(const rd_kafka_message_t *m, const dl_opts_t *o)
{
    int ok = 1;
    if (o->cls) {
        char *v = hubctl_header(m, HUB_DLQ_HEADER_CLASS);
        ok = v && strcmp(v, o->cls) == 0;
        free(v);
    }
    if (ok && o->source_topic) {
        char *v = hubctl_header(m, HUB_DLQ_HEADER_TOPIC);
        ok = v && strcmp(v, o->source_topic) == 0;
        free(v);
    }
    return ok;
}

/* Prints one decision line: {"action", dead letter coordinates, source topic, ...}. */
static int report(const char *action, const rd_kafka_message_t *m, const char *source,
                  int replay_count, const char *reason)
{
    json_t *o = json_object();
    if (!o)
        return -1;
    json_object_set_new(o, "action", json_string(action));
    json_object_set_new(o, "partition", json_integer(m->partition));
    json_object_set_new(o, "offset", json_integer(m->offset));
    json_object_set_new(o, "source_topic",
                        source ? hubctl_bytes_json(source, strlen(source)) : json_null());
    json_object_set_new(o, "replay_count", json_integer(replay_count));
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    return hubctl_print_json(o);
}

/* Queues the copy of one dead letter to its source topic. 0 or -1 (message printed). */
static int send_copy(hub_producer_t *p, const rd_kafka_message_t *m, const char *source,
                     int next_count)
{
    char errstr[1024] = "", count[16];
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);

    snprintf(count, sizeof(count), "%d", next_count);
    if (!h || rd_kafka_header_add(h, HUB_DLQ_HEADER_REPLAYS, -1, count, -1)) {
        if (h)
            rd_kafka_headers_destroy(h);
        hubctl_err("dead-letters", "cannot build headers");
        return -1;
    }
    /* Ownership of h moves to the producer, whether or not the send succeeds. */
    if (hub_producer_send(p, source, RD_KAFKA_PARTITION_UA, m->key, m->key_len, m->payload, m->len,
                          h, errstr, sizeof(errstr)) != HUB_OK) {
        hubctl_err("dead-letters", "%s", errstr);
        return -1;
    }
    return 0;
}

static int dl_replay(hubctl_t *ctl, const dl_opts_t *o)
{
    const char *dlq = ctl->svc->common.topics.dead_letters;
    const char *topics[1] = {dlq};
    hub_props_t props = {0};
    hub_consumer_t *c = NULL;
    hub_producer_t *p = NULL;
    msgs_t pending = {0};
    char errstr[1024] = "";
    long replayed = 0, refused = 0, passed = 0;
    int status = HUB_EXIT_FAILURE;

    /* End-of-partition events tell when everything not yet replayed has been read. */
    if (hub_props_copy(&props, &ctl->svc->common.kafka) ||
        hub_props_set(&props, "enable.partition.eof", "true") ||
        hub_props_set(&props, "auto.offset.reset", "earliest")) {
        hubctl_err("dead-letters", "out of memory");
        goto out;
    }
    c = hub_consumer_new(&props, o->group, topics, 1, NULL, errstr, sizeof(errstr));
    if (!c) {
        hubctl_err("dead-letters", "%s", errstr);
        goto out;
    }
    if (!o->dry_run) {
        p = hub_producer_new(&ctl->svc->common.kafka, NULL, errstr, sizeof(errstr));
        if (!p) {
            hubctl_err("dead-letters", "%s", errstr);
            goto out;
        }
    }
    if (read_pending(c, o, &pending) != 0)
        goto out;

    for (size_t i = 0; i < pending.n; i++) {
        const rd_kafka_message_t *m = pending.v[i];
        char *source = NULL;
        int count = hub_deadletter_replays(m), bad = 0;

        if (!matches(m, o)) {
            passed++;
            continue;
        }
        source = hubctl_header(m, HUB_DLQ_HEADER_TOPIC);
        if (!source || !*source) {
            bad = report("refused", m, source, count, "no source topic header");
            refused++;
        } else if (count >= o->max_replays) {
            char why[128];
            snprintf(why, sizeof(why), "replayed %d time(s) already (--max-replays %lld)", count,
                     o->max_replays);
            bad = report("refused", m, source, count, why);
            refused++;
        } else if (o->dry_run) {
            bad = report("would-replay", m, source, count + 1, NULL);
            replayed++;
        } else if (send_copy(p, m, source, count + 1) == 0) {
            bad = report("replayed", m, source, count + 1, NULL);
            replayed++;
        } else {
            free(source);
            goto out;
        }
        free(source);
        if (bad) {
            hubctl_err("dead-letters", "cannot write the output");
            goto out;
        }
    }

    if (!o->dry_run) {
        /* Commit only once every copy is delivered; otherwise the next run sends them again. */
        if (hub_producer_flush(p, (int)ctl->flush_timeout_ms, errstr, sizeof(errstr)) != HUB_OK) {
            hubctl_err("dead-letters", "%s; nothing committed, the next run tries again", errstr);
            goto out;
        }
        for (size_t i = 0; i < pending.n; i++)
            hub_consumer_store(c, pending.v[i]);
        if (hub_consumer_commit(c, errstr, sizeof(errstr)) != HUB_OK) {
            hubctl_err("dead-letters", "%s", errstr);
            goto out;
        }
    }
    fprintf(stderr, "hubctl dead-letters: %s %ld, refused %ld, passed over %ld (not matching)%s\n",
            o->dry_run ? "would replay" : "replayed", replayed, refused, passed,
            o->dry_run ? "; dry run, nothing sent or committed" : "");
    status = HUB_EXIT_OK;
out:
    msgs_free(&pending);
    hub_producer_destroy(p);
    hub_consumer_destroy(c);
    hub_props_clear(&props);
    return status;
}

int hubctl_dead_letters(hubctl_t *ctl, int argc, char **argv)
{
    enum { OPT_CLASS = 256, OPT_SOURCE, OPT_MAX, OPT_GROUP, OPT_DRY_RUN };
    static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                         {"class", required_argument, NULL, OPT_CLASS},
                                         {"source-topic", required_argument, NULL, OPT_SOURCE},
                                         {"max-replays", required_argument, NULL, OPT_MAX},
                                         {"group", required_argument, NULL, OPT_GROUP},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    dl_opts_t o = {-1, 3, 30000, NULL, NULL, ctl->replay_group, 0};
    int ch, replay_opts = 0;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "n:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (hubctl_parse_count("dead-letters", "--count", optarg, 1, INT64_MAX, &o.count))
                return HUB_EXIT_USAGE;
            break;
        case 't':
            if (hubctl_parse_count("dead-letters", "--timeout-ms", optarg, 1, INT32_MAX,
                                   &o.timeout_ms))
                return HUB_EXIT_USAGE;
            break;
        case OPT_CLASS:
            o.cls = optarg;
            replay_opts = 1;
            break;
        case OPT_SOURCE:
            o.source_topic = hubctl_topic(ctl, optarg);
            replay_opts = 1;
            break;
        case OPT_MAX:
            if (hubctl_parse_count("dead-letters", "--max-replays", optarg, 0, 1000000,
                                   &o.max_replays))
                return HUB_EXIT_USAGE;
            replay_opts = 1;
            break;
        case OPT_GROUP:
            o.group = optarg;
            replay_opts = 1;
            break;
        case OPT_DRY_RUN:
            o.dry_run = 1;
            replay_opts = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return HUB_EXIT_OK;
        default:
            fputs(usage, stderr);
            return HUB_EXIT_USAGE;
        }
    }
    if (argc - optind == 1 && strcmp(argv[optind], "list") == 0 && !replay_opts)
        return dl_list(ctl, &o);
    if (argc - optind == 1 && strcmp(argv[optind], "replay") == 0 && o.count < 0)
        return dl_replay(ctl, &o);
    fputs(usage, stderr);
    return HUB_EXIT_USAGE;
}
