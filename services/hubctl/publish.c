/*
 * publish.c: `hubctl publish <Event> [file|-]`: JSON lines in, validated,
 * encoded and produced. Every line is checked before anything is sent, so a
 * file with one bad line publishes nothing rather than half of itself.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hubctl.h"

static const char usage[] =
    "Usage: hubctl [--config FILE] publish [--dry-run] <Event> [file|-]\n"
    "\n"
    "Reads one JSON object per line (blank lines and lines starting with # are\n"
    "skipped), checks each against the event's schema and the hub's validation\n"
    "rules (agencies from the configuration), and only when every line is good\n"
    "produces them, Avro-encoded, to the topic configured for the event type,\n"
    "keyed as the hub keys it. event_id and occurred_at may be left out.\n"
    "\n"
    "Events: YoungPersonFlagged TransitionPlanDue TransitionPlanCompleted\n"
    "        MeetingActionRecorded MeetingActionCompleted MeetingActionOverdue\n"
    "        ReminderDue BriefingRequested BriefingSent\n"
    "\n"
    "Options:\n"
    "      --dry-run   check every line, send nothing\n"
    "  -h, --help      this help\n"
    "\n"
    "Exit status: 0 all published; 1 a line was rejected (nothing sent) or a\n"
    "delivery failed; 2 bad usage or configuration.\n";

/* One checked event, ready to send. */
typedef struct {
    char key[HUB_SUBJECT_KEY_SIZE];
    unsigned char *bytes;
    size_t len;
} encoded_t;

typedef struct {
    encoded_t *items;
    size_t n, cap;
} batch_t;

static void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].bytes);
    free(b->items);
    memset(b, 0, sizeof(*b));
}

static int batch_add(batch_t *b, const char *key, const hub_buf_t *buf)
{
    encoded_t *e;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        encoded_t *items = realloc(b->items, cap * sizeof(*items));
        if (!items)
            return -1;
        b->items = items;
        b->cap = cap;
    }
    e = &b->items[b->n];
    e->bytes = malloc(buf->len ? buf->len : 1);
    if (!e->bytes)
        return -1;
    memcpy(e->bytes, buf->data, buf->len);
    e->len = buf->len;
    hub_strlcpy(e->key, key, sizeof(e->key));
    b->n++;
    return 0;
}

/*
 * jansson's messages may quote the text around a syntax error ("... near
 * 'x'"), which could be a value; keep only the part before the quote.
 */
static void json_problem(const json_error_t *jerr, char *buf, size_t size)
{
    const char *near = strstr(jerr->text, " near ");
    int len = near ? (int)(near - jerr->text) : (int)strlen(jerr->text);
    snprintf(buf, size, "invalid JSON at column %d: %.*s", jerr->column, len, jerr->text);
}

/* Whether a line holds nothing to publish: blank, or a # comment. */
static int skip_line(const char *line)
{
    line += strspn(line, " \t\r\n");
    return *line == '\0' || *line == '#';
}

/* Reads and checks every line; *rejected counts bad ones (each reported on stderr). */
static int read_events(hubctl_t *ctl, hub_codec_t *codec, hub_event_type_t type, FILE *in,
                       const char *name, batch_t *batch, long *rejected)
{
    const hub_common_conf_t *common = &ctl->svc->common;
    hub_validation_t rules = {(const char *const *)common->agencies, common->nagencies, 0};
    hub_buf_t buf = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;

    while ((len = getline(&line, &cap, in)) >= 0) {
        char errstr[512] = "";
        json_error_t jerr;
        hub_event_t ev;
        json_t *obj;

        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            fprintf(stderr, "%s:%ld: invalid JSON: a NUL byte in the line\n", name, lineno);
            (*rejected)++;
            continue;
        }
        if (skip_line(line))
            continue;
        obj = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj) {
            json_problem(&jerr, errstr, sizeof(errstr));
            fprintf(stderr, "%s:%ld: %s\n", name, lineno, errstr);
            (*rejected)++;
            continue;
        }
        if (hub_event_from_json(type, obj, &ev, errstr, sizeof(errstr)) != HUB_OK ||
            hub_event_validate(&ev, &rules, errstr, sizeof(errstr)) != HUB_OK ||
            hub_codec_encode(codec, &ev, &buf, errstr, sizeof(errstr)) != HUB_OK) {
            fprintf(stderr, "%s:%ld: %s\n", name, lineno, errstr);
            (*rejected)++;
        } else if (batch_add(batch, hub_event_key(&ev), &buf) != 0) {
            fprintf(stderr, "hubctl publish: out of memory\n");
            rc = -1;
        }
        json_decref(obj);
        if (rc)
            break;
    }
    if (!rc && ferror(in)) {
        hubctl_err("publish", "cannot read %s", name);
        rc = -1;
    }
    free(line);
    hub_buf_free(&buf);
    return rc;
}

static int send_all(hubctl_t *ctl, const char *topic, const batch_t *batch)
{
    char errstr[1024] = "";
    hub_producer_t *p = hub_producer_new(&ctl->svc->common.kafka, NULL, errstr, sizeof(errstr));
    int status = HUB_EXIT_FAILURE;
    int err;

    if (!p) {
        hubctl_err("publish", "%s", errstr);
        return HUB_EXIT_FAILURE;
    }
    for (size_t i = 0; i < batch->n; i++) {
        const encoded_t *e = &batch->items[i];
        if (hub_producer_send(p, topic, RD_KAFKA_PARTITION_UA, e->key, strlen(e->key), e->bytes,
                              e->len, NULL, errstr, sizeof(errstr)) != HUB_OK) {
            hubctl_err("publish", "%s", errstr);
            goto out;
        }
    }
    err = hub_producer_flush(p, (int)ctl->flush_timeout_ms, errstr, sizeof(errstr));
    if (err) {
        hubctl_err("publish", "%ld of %zu events delivered to %s: %s", hub_producer_delivered(p),
                   batch->n, topic, errstr);
        goto out;
    }
    printf("published %ld events to %s\n", hub_producer_delivered(p), topic);
    status = HUB_EXIT_OK;
out:
    hub_producer_destroy(p);
    return status;
}

int hubctl_publish(hubctl_t *ctl, int argc, char **argv)
{
    enum { OPT_DRY_RUN = 256 };
    static const struct option opts[] = {{"dry-run", no_argument, NULL, OPT_DRY_RUN},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    hub_codec_t *codec = NULL;
    batch_t batch = {0};
    FILE *in = NULL;
    const char *path = "-", *name, *topic, *setting;
    hub_event_type_t type;
    int dry_run = 0, ch, status = HUB_EXIT_USAGE;
    long rejected = 0;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_DRY_RUN:
            dry_run = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return HUB_EXIT_OK;
        default:
            fputs(usage, stderr);
            return HUB_EXIT_USAGE;
        }
    }
    if (argc - optind < 1 || argc - optind > 2) {
        fputs(usage, stderr);
        return HUB_EXIT_USAGE;
    }
    type = hub_event_type_from_name(argv[optind]);
    if (type == HUB_EVENT_NONE) {
        hubctl_err("publish", "'%s' is not an event type (see 'hubctl publish --help')",
                   argv[optind]);
        return HUB_EXIT_USAGE;
    }
    if (argc - optind == 2)
        path = argv[optind + 1];
    setting = hub_event_topic_setting(type);
    topic = hub_service_topic(ctl->svc, setting);
    if (!topic || !*topic) {
        hubctl_err("publish", "no topic configured in topics.%s", setting);
        return HUB_EXIT_USAGE;
    }

    if (strcmp(path, "-") == 0) {
        in = stdin;
        name = "<stdin>";
    } else {
        in = fopen(path, "r");
        name = path;
        if (!in) {
            hubctl_err("publish", "cannot open %s: %s", path, strerror(errno));
            return HUB_EXIT_USAGE;
        }
    }
    status = HUB_EXIT_FAILURE;
    codec = hubctl_codec_new(ctl, "publish");
    if (!codec)
        goto out;
    if (read_events(ctl, codec, type, in, name, &batch, &rejected) != 0)
        goto out;
    if (rejected) {
        hubctl_err("publish", "%ld line(s) rejected; nothing was published", rejected);
        goto out;
    }
    if (dry_run) {
        printf("%zu events valid; nothing published (dry run)\n", batch.n);
        status = HUB_EXIT_OK;
        goto out;
    }
    status = send_all(ctl, topic, &batch);
out:
    if (in && in != stdin)
        fclose(in);
    batch_free(&batch);
    hub_codec_destroy(codec);
    return status;
}
