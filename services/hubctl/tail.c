/*
 * tail.c: `hubctl tail <topic>`: every message decoded to one JSON line with
 * its coordinates. It reads by assignment, so it joins no group and commits
 * nothing: tailing a topic never moves anyone's offsets.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/events.h"
#include "hub/signals.h"
#include "hubctl.h"

static const char usage[] =
    "Usage: hubctl [--config FILE] tail <topic> [--from-beginning] [--count N]\n"
    "                                   [--timeout-ms T] [--end]\n"
    "\n"
    "Prints each message of the topic as one JSON object per line:\n"
    "  {\"topic\",\"partition\",\"offset\",\"key\",\"schema_id\",\"type\",\"event\":{...}}\n"
    "A message that cannot be decoded is printed with \"error\" (the reason, never\n"
    "the bytes) instead of \"type\" and \"event\". <topic> is a topic name or a\n"
    "topics.<setting> name such as risk_flags. Reads from the end (new messages\n"
    "only) unless --from-beginning; stops on SIGINT or as the options say.\n"
    "\n"
    "Options:\n"
    "  -b, --from-beginning   start at the oldest message of every partition\n"
    "  -n, --count N          stop after N messages\n"
    "  -t, --timeout-ms T     stop after T milliseconds\n"
    "  -e, --end              stop at the end of every partition\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit status: 0 done; 1 --count not reached before the timeout or a Kafka\n"
    "error; 2 bad usage or configuration.\n";

static json_t *message_json(hub_codec_t *codec, const rd_kafka_message_t *m, hub_event_t *ev)
{
    char errstr[512] = "";
    int32_t id;
    json_t *obj = json_object();
    int framed = hub_codec_frame_id(m->payload, m->len, &id) == HUB_OK;

    if (!obj)
        return NULL;
    json_object_set_new(obj, "topic", json_string(rd_kafka_topic_name(m->rkt)));
    json_object_set_new(obj, "partition", json_integer(m->partition));
    json_object_set_new(obj, "offset", json_integer(m->offset));
    json_object_set_new(obj, "key", hubctl_bytes_json(m->key, m->key_len));
    json_object_set_new(obj, "schema_id", framed ? json_integer(id) : json_null());
    if (!m->payload) {
        json_object_set_new(obj, "error", json_string("no value (a tombstone)"));
    } else if (hub_codec_decode(codec, m->payload, m->len, ev, errstr, sizeof(errstr)) != HUB_OK) {
        json_object_set_new(obj, "error", hubctl_bytes_json(errstr, strlen(errstr)));
    } else {
        json_object_set_new(obj, "type", json_string(hub_event_type_name(ev->type)));
        json_object_set_new(obj, "event", hub_event_to_json(ev));
    }
    return obj;
}

int hubctl_tail(hubctl_t *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"from-beginning", no_argument, NULL, 'b'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"end", no_argument, NULL, 'e'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    hub_codec_t *codec = NULL;
    hubctl_reader_t *reader = NULL;
    hub_event_t *ev = NULL;
    long long count = -1, timeout_ms = -1, seen = 0;
    int from_beginning = 0, stop_at_end = 0, ch, status = HUB_EXIT_FAILURE;
    const char *topic;
    char errstr[1024] = "";
    int64_t deadline;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "bn:t:eh", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            from_beginning = 1;
            break;
        case 'n':
            if (hubctl_parse_count("tail", "--count", optarg, 1, INT64_MAX, &count))
                return HUB_EXIT_USAGE;
            break;
        case 't':
            if (hubctl_parse_count("tail", "--timeout-ms", optarg, 0, INT32_MAX, &timeout_ms))
                return HUB_EXIT_USAGE;
            break;
        case 'e':
            stop_at_end = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return HUB_EXIT_OK;
        default:
            fputs(usage, stderr);
            return HUB_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fputs(usage, stderr);
        return HUB_EXIT_USAGE;
    }
    topic = hubctl_topic(ctl, argv[optind]);

    /* hub_event_t is large; one is reused for every message. */
    ev = malloc(sizeof(*ev));
    codec = hubctl_codec_new(ctl, "tail");
    if (!ev || !codec)
        goto out;
    reader = hubctl_reader_new(ctl, topic, from_beginning, errstr, sizeof(errstr));
    if (!reader) {
        hubctl_err("tail", "%s", errstr);
        goto out;
    }
    deadline = timeout_ms >= 0 ? hub_monotonic_ms() + timeout_ms : INT64_MAX;
    while (!hub_stop_requested() && (count < 0 || seen < count)) {
        int64_t left = deadline - hub_monotonic_ms();
        int at_end = 0;
        if (left <= 0)
            break;
        rd_kafka_message_t *m = hubctl_reader_poll(reader, left < 200 ? (int)left : 200, &at_end);
        if (!m) {
            if (stop_at_end && at_end)
                break;
            continue;
        }
        json_t *obj = message_json(codec, m, ev);
        rd_kafka_message_destroy(m);
        if (hubctl_print_json(obj) != 0) {
            hubctl_err("tail", "cannot write the output");
            goto out;
        }
        seen++;
    }
    if (count >= 0 && seen < count && !hub_stop_requested() && !stop_at_end) {
        hubctl_err("tail", "%lld of %lld messages before the timeout", seen, count);
        goto out;
    }
    status = HUB_EXIT_OK;
out:
    hubctl_reader_destroy(reader);
    hub_codec_destroy(codec);
    free(ev);
    return status;
}
