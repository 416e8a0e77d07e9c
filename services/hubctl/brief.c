/*
 * brief.c: `hubctl brief <group> --title T --link URL`: asks the hub to brief
 * a named group (BriefingRequested on the group notifications topic); the
 * notifier e-mails the group and records BriefingSent, and the projector
 * shows when each group was last briefed.
 */
#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/events.h"
#include "hub/groups.h"
#include "hub/kafka.h"
#include "hubctl.h"

static const char usage[] =
    "Usage: hubctl [--config FILE] brief <group> --title TITLE --link URL [--agency CODE]\n"
    "\n"
    "Publishes a BriefingRequested event for one of the configured named groups\n"
    "(the `groups` list, or the built-in groups) to topics.group_notifications.\n"
    "hub-notifier then e-mails the group's addresses and records BriefingSent.\n"
    "The title and the link must not name anyone: a briefing is about the\n"
    "transitions work, not about a young person.\n"
    "\n"
    "Options:\n"
    "      --title TITLE   the briefing's title (plain text, up to 256 bytes)\n"
    "      --link URL      where the briefing document is (https://...)\n"
    "      --agency CODE   who asks (default HUB_COORDINATOR; a configured agency)\n"
    "  -h, --help          this help\n"
    "\n"
    "Exit status: 0 published; 1 the delivery failed; 2 bad usage, an unknown\n"
    "group or configuration.\n";

int hubctl_groups_load(hubctl_t *ctl, hub_groups_t *groups, char *errstr, size_t errstr_size)
{
    const char *path = ctl->svc->config_path;
    config_t cfg;
    int err;

    if (!path)
        return hub_groups_load_defaults(groups, errstr, errstr_size);
    config_init(&cfg);
    if (!config_read_file(&cfg, path)) {
        err = hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s:%d: %s",
                       config_error_file(&cfg) ? config_error_file(&cfg) : path,
                       config_error_line(&cfg), config_error_text(&cfg));
    } else {
        err = hub_groups_parse(config_lookup(&cfg, "groups"), groups, errstr, errstr_size);
        if (err == HUB_OK && groups->n == 0)
            err = hub_errf(errstr, errstr_size, HUB_ECONFIG, "%s: no groups are configured", path);
    }
    config_destroy(&cfg);
    return err;
}

int hubctl_brief(hubctl_t *ctl, int argc, char **argv)
{
    enum { OPT_TITLE = 256, OPT_LINK, OPT_AGENCY };
    static const struct option opts[] = {{"title", required_argument, NULL, OPT_TITLE},
                                         {"link", required_argument, NULL, OPT_LINK},
                                         {"agency", required_argument, NULL, OPT_AGENCY},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const hub_common_conf_t *common = &ctl->svc->common;
    hub_validation_t rules = {(const char *const *)common->agencies, common->nagencies, 0};
    const char *title = NULL, *link = NULL, *agency = "HUB_COORDINATOR", *group, *topic;
    hub_groups_t groups = {0};
    hub_codec_t *codec = NULL;
    hub_producer_t *producer = NULL;
    hub_buf_t buf = {0};
    hub_event_t ev;
    char errstr[1024] = "";
    int ch, status = HUB_EXIT_USAGE;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_TITLE:
            title = optarg;
            break;
        case OPT_LINK:
            link = optarg;
            break;
        case OPT_AGENCY:
            agency = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return HUB_EXIT_OK;
        default:
            fputs(usage, stderr);
            return HUB_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || !title || !link) {
        hubctl_err("brief", "a group, --title and --link are needed (see --help)");
        return HUB_EXIT_USAGE;
    }
    group = argv[optind];
    if (hubctl_groups_load(ctl, &groups, errstr, sizeof(errstr)) != HUB_OK) {
        hubctl_err("brief", "%s", errstr);
        goto out;
    }
    if (!hub_groups_find(&groups, group)) {
        hubctl_err("brief", "no group '%s' is configured; the groups are:", group);
        for (size_t i = 0; i < groups.n; i++)
            fprintf(stderr, "  %s (%s)\n", groups.items[i].id, groups.items[i].name);
        goto out;
    }

    memset(&ev, 0, sizeof(ev));
    ev.type = HUB_EVENT_BRIEFING_REQUESTED;
    ev.occurred_at = hub_now_ms();
    /* Asking twice is asking for two briefings, so the id is fresh, not derived. */
    if (hub_uuid_v4(ev.event_id) != HUB_OK) {
        hubctl_err("brief", "no randomness for an event id");
        status = HUB_EXIT_FAILURE;
        goto out;
    }
    if (hub_strlcpy(ev.source, agency, sizeof(ev.source)) >= sizeof(ev.source) ||
        hub_strlcpy(ev.u.briefing_requested.group_id, group,
                    sizeof(ev.u.briefing_requested.group_id)) >=
            sizeof(ev.u.briefing_requested.group_id) ||
        hub_strlcpy(ev.u.briefing_requested.title, title, sizeof(ev.u.briefing_requested.title)) >=
            sizeof(ev.u.briefing_requested.title) ||
        hub_strlcpy(ev.u.briefing_requested.link, link, sizeof(ev.u.briefing_requested.link)) >=
            sizeof(ev.u.briefing_requested.link)) {
        hubctl_err("brief", "the title (256 bytes), link (1024) or agency (64) is too long");
        goto out;
    }
    if (hub_event_validate(&ev, &rules, errstr, sizeof(errstr)) != HUB_OK) {
        hubctl_err("brief", "%s", errstr);
        goto out;
    }

    status = HUB_EXIT_FAILURE;
    topic = hub_service_topic(ctl->svc, hub_event_topic_setting(ev.type));
    if (!(codec = hubctl_codec_new(ctl, "brief")))
        goto out;
    if (hub_codec_encode(codec, &ev, &buf, errstr, sizeof(errstr)) != HUB_OK ||
        !(producer = hub_producer_new(&common->kafka, NULL, errstr, sizeof(errstr))) ||
        hub_producer_send(producer, topic, RD_KAFKA_PARTITION_UA, group, strlen(group), buf.data,
                          buf.len, NULL, errstr, sizeof(errstr)) != HUB_OK ||
        hub_producer_flush(producer, (int)ctl->flush_timeout_ms, errstr, sizeof(errstr)) !=
            HUB_OK) {
        hubctl_err("brief", "%s", errstr);
        goto out;
    }
    printf("briefing requested for %s: event %s on %s\n", group, ev.event_id, topic);
    status = HUB_EXIT_OK;
out:
    hub_producer_destroy(producer);
    hub_codec_destroy(codec);
    hub_buf_free(&buf);
    hub_groups_free(&groups);
    return status;
}
