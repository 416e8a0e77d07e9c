/*
 * hub-reminder: on a schedule, reads the shared view as of a date and
 * produces ReminderDue (plan due soon, plan overdue, group not briefed) and
 * MeetingActionOverdue events with deterministic ids, so repeated scans and
 * restarts never double a reminder. The date is injectable (--now or
 * reminder.now) so every boundary can be tested. See docs/reminder.md.
 *
 * One scan: read (one snapshot) -> drop what reminder_emitted holds ->
 * produce with the idempotent producer -> flush -> record in reminder_emitted.
 * The scan counts as done only after the flush.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/config.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/groups.h"
#include "hub/http.h"
#include "hub/kafka.h"
#include "hub/log.h"
#include "hub/metrics.h"
#include "hub/pg.h"
#include "hub/service.h"
#include "hub/signals.h"
#include "scan.h"

#define SERVICE "hub-reminder"

/* Concurrent instances take turns: a scan runs under this advisory lock. */
#define SCAN_LOCK 0x4c4c524852454d31LL

/* After a failed scan, try again this soon (or at the interval, if shorter). */
#define RETRY_SECONDS 60

enum { OPT_ONCE = 256, OPT_NOW };

typedef struct reminder_s {
    hub_service_t svc;
    hub_groups_t groups;
    long long interval_seconds, due_soon_days, briefing_interval_days, startup_wait_ms;
    long long flush_timeout_ms;
    char *now_setting;
    const char *now_option; /* --now, wins over reminder.now */
    int once;
    hub_http_conf_t http_conf;
    hub_metrics_t *metrics;
    hub_http_t *http;
    hub_counter_t *m_out[2], *m_failures;
    hub_histogram_t *m_latency;
    hub_codec_t *codec;
    hub_producer_t *producer;
    PGconn *conn;
    hub_buf_t buf;
    reminder_batch_t batch;
} reminder_t;

static int on_option(hub_service_t *svc, int val, const char *arg)
{
    reminder_t *r = svc->opaque;
    hub_date_t d;
    switch (val) {
    case OPT_ONCE:
        r->once = 1;
        return -1;
    case OPT_NOW:
        if (hub_date_parse(arg, &d) != HUB_OK) {
            fprintf(stderr, "%s: --now wants a date YYYY-MM-DD that exists (got '%s')\n", SERVICE,
                    arg);
            return HUB_EXIT_USAGE;
        }
        r->now_option = arg;
        return -1;
    default:
        return HUB_EXIT_USAGE;
    }
}

/* The day to scan for: --now, else reminder.now, else today in Europe/London. */
static hub_date_t scan_date(const reminder_t *r)
{
    hub_date_t d;
    const char *fixed = r->now_option ? r->now_option : r->now_setting;
    if (fixed && *fixed && hub_date_parse(fixed, &d) == HUB_OK)
        return d;
    return hub_date_london(hub_now_ms());
}

/* Connects (or reconnects after a broken connection). 0 or HUB_EPG. */
static int ensure_pg(reminder_t *r, int wait_ms, char *errstr, size_t errstr_size)
{
    if (r->conn && !hub_pg_is_connection_error(r->conn))
        return HUB_OK;
    PQfinish(r->conn);
    r->conn = hub_pg_connect(r->svc.common.pg_conninfo, r->svc.common.pg_password, wait_ms, errstr,
                             errstr_size);
    return r->conn ? HUB_OK : HUB_EPG;
}

/* Takes the scan lock without waiting: 1 taken, 0 another instance holds it, <0 error. */
static int lock_scan(reminder_t *r, int lock, char *errstr, size_t errstr_size)
{
    char key[32];
    const char *params[1] = {key};
    snprintf(key, sizeof(key), "%lld", SCAN_LOCK);
    PGresult *res = PQexecParams(r->conn,
                                 lock ? "SELECT pg_try_advisory_lock($1::bigint)"
                                      : "SELECT pg_advisory_unlock($1::bigint)",
                                 1, NULL, params, NULL, NULL, 0);
    int got =
        PQresultStatus(res) == PGRES_TUPLES_OK ? strcmp(PQgetvalue(res, 0, 0), "t") == 0 : HUB_EPG;
    if (got == HUB_EPG) {
        hub_strlcpy(errstr, PQerrorMessage(r->conn), errstr_size);
        errstr[strcspn(errstr, "\r\n")] = '\0';
    }
    PQclear(res);
    return got;
}

/*
 * SIGHUP: the groups as the file has them now, for the next scan (a scan in
 * progress has finished by the time this runs). A file that is not valid
 * changes nothing.
 */
static void reload_groups(reminder_t *r)
{
    char errstr[1024];

    if (hub_groups_reload(&r->svc, &r->groups, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_error("event=config_reload_failed error=\"%s\" kept=previous", errstr);
        return;
    }
    hub_log_info("event=config_reloaded reloaded=groups groups=%zu", r->groups.n);
}

/*
 * Sleeps ms in slices, heartbeating, so a long wait is not mistaken for a
 * hang, and taking up a reload between scans.
 */
static int sleep_alive(reminder_t *r, int64_t ms)
{
    int64_t end = hub_monotonic_ms() + ms;
    for (;;) {
        hub_http_heartbeat(r->http);
        if (hub_reload_requested())
            reload_groups(r);
        int64_t left = end - hub_monotonic_ms();
        if (left <= 0)
            return HUB_OK;
        if (hub_sleep_ms(left < 1000 ? left : 1000) != HUB_OK)
            return HUB_ESTOPPED;
    }
}

/* Waits (heartbeating) until the broker acknowledged everything queued, or the timeout. */
static int flush_alive(reminder_t *r, char *errstr, size_t errstr_size)
{
    int64_t end = hub_monotonic_ms() + r->flush_timeout_ms;
    for (;;) {
        int64_t left = end - hub_monotonic_ms();
        int err = hub_producer_flush(r->producer, left < 1000 ? (int)(left > 0 ? left : 0) : 1000,
                                     errstr, errstr_size);
        hub_http_heartbeat(r->http);
        if (err != HUB_ETIMEOUT || left <= 1000)
            return err;
    }
}

/* Produces every item of the batch and waits for the broker to have them all. */
static int produce_batch(reminder_t *r, char *errstr, size_t errstr_size)
{
    hub_producer_reset_failures(r->producer);
    for (size_t i = 0; i < r->batch.n;) {
        const reminder_item_t *it = &r->batch.items[i];
        const hub_event_t *ev = &it->ev;
        const char *topic = hub_service_topic(&r->svc, hub_event_topic_setting(ev->type));
        const char *key = hub_event_key(ev);
        int err = hub_codec_encode(r->codec, ev, &r->buf, errstr, errstr_size);
        if (err == HUB_EVALID) {
            /*
             * One bad row (say, a malformed owner group id) must not stop
             * every other reminder; it is left out, unrecorded, and named
             * again by the next scan until the row is fixed.
             */
            hub_log_warn("event=reminder_skipped event_id=%s kind=%s reason=\"%s\"", ev->event_id,
                         it->kind, errstr);
            r->batch.items[i] = r->batch.items[--r->batch.n];
            continue;
        }
        if (!err)
            err = hub_producer_send(r->producer, topic, RD_KAFKA_PARTITION_UA, key, strlen(key),
                                    r->buf.data, r->buf.len, NULL, errstr, errstr_size);
        if (err)
            return err;
        i++;
    }
    int err = flush_alive(r, errstr, errstr_size);
    hub_counter_add(r->m_failures, (uint64_t)hub_producer_failures(r->producer));
    return err;
}

/* One scan. 0 when every reminder due is on the broker and on record. */
static int scan_once(reminder_t *r, char *errstr, size_t errstr_size)
{
    reminder_rules_t rules = {scan_date(r), (int)r->due_soon_days, (int)r->briefing_interval_days,
                              &r->groups, hub_now_ms()};
    char as_of[16];
    int err, locked;

    hub_date_format(rules.as_of, as_of, sizeof(as_of));
    if ((err = ensure_pg(r, 0, errstr, errstr_size)) != HUB_OK)
        return err;
    if ((locked = lock_scan(r, 1, errstr, errstr_size)) < 0)
        return locked;
    if (!locked) {
        hub_log_info("event=scan_skipped as_of=%s reason=\"another instance is scanning\"", as_of);
        return HUB_OK;
    }
    int64_t started = hub_monotonic_ms();
    err = reminder_scan(r->conn, &rules, &r->batch, errstr, errstr_size);
    if (!err)
        err = produce_batch(r, errstr, errstr_size);
    if (!err)
        err = reminder_record(r->conn, &r->batch, rules.as_of, errstr, errstr_size);
    if (!err) {
        for (size_t i = 0; i < r->batch.n; i++)
            hub_counter_add(r->m_out[r->batch.items[i].ev.type == HUB_EVENT_REMINDER_DUE ? 0 : 1],
                            1);
        hub_histogram_observe(r->m_latency, (double)(hub_monotonic_ms() - started));
    }
    if (!err)
        hub_log_info("event=scan_done as_of=%s plan_due_soon=%zu plan_overdue=%zu "
                     "group_not_briefed=%zu action_overdue=%zu produced=%zu already_produced=%zu",
                     as_of, r->batch.found[HUB_GROUP_PLAN_DUE_SOON],
                     r->batch.found[HUB_GROUP_PLAN_OVERDUE], r->batch.found[HUB_GROUP_NOT_BRIEFED],
                     r->batch.found[HUB_GROUP_ACTION_OVERDUE], r->batch.n, r->batch.known);
    if (!hub_pg_is_connection_error(r->conn)) {
        char ignored[256];
        lock_scan(r, 0, ignored, sizeof(ignored));
    }
    return err;
}

static int run(reminder_t *r)
{
    char errstr[1024];
    hub_codec_opts_t copts = {r->svc.common.schemas_dir, r->svc.common.registry_url, 0};
    hub_date_t d;

    if (r->now_setting && *r->now_setting && hub_date_parse(r->now_setting, &d) != HUB_OK) {
        fprintf(stderr, "%s: reminder.now must be a date YYYY-MM-DD that exists, or empty\n",
                SERVICE);
        return HUB_EXIT_USAGE;
    }
    /* A one-off scan leaves the port to the running service. */
    if (!r->once && r->http_conf.listen && *r->http_conf.listen) {
        if (!(r->metrics = hub_metrics_new(SERVICE)) ||
            !(r->http = hub_http_start(&r->http_conf, r->metrics, errstr, sizeof(errstr)))) {
            hub_log_error("event=start_failed error=\"%s\"", r->metrics ? errstr : "out of memory");
            return HUB_EXIT_FAILURE;
        }
        hub_http_set_ready(r->http, 0, "connecting to PostgreSQL");
        r->m_out[0] = hub_metrics_events_out(r->metrics, r->svc.common.topics.group_notifications);
        r->m_out[1] = hub_metrics_events_out(r->metrics, r->svc.common.topics.meeting_actions);
        r->m_failures = hub_metrics_delivery_failures(r->metrics);
        r->m_latency = hub_metrics_batch_latency(r->metrics);
    }
    if (!(r->codec = hub_codec_new(&copts, errstr, sizeof(errstr))) ||
        !(r->producer = hub_producer_new(&r->svc.common.kafka, NULL, errstr, sizeof(errstr))) ||
        ensure_pg(r, (int)r->startup_wait_ms, errstr, sizeof(errstr)) != HUB_OK) {
        hub_log_error("event=start_failed error=\"%s\"", errstr);
        return HUB_EXIT_FAILURE;
    }
    hub_log_info("event=started groups=%zu interval_s=%lld once=%d", r->groups.n,
                 r->interval_seconds, r->once);
    for (;;) {
        hub_http_heartbeat(r->http);
        int err = scan_once(r, errstr, sizeof(errstr));
        if (err)
            hub_log_error("event=scan_failed error=\"%s\"", errstr);
        hub_http_set_ready(r->http, !err, err ? "the last scan failed (see the log)" : NULL);
        if (r->once)
            return err ? HUB_EXIT_FAILURE : HUB_EXIT_OK;
        long long wait = r->interval_seconds;
        if (err && wait > RETRY_SECONDS)
            wait = RETRY_SECONDS;
        if (sleep_alive(r, wait * 1000) != HUB_OK)
            break;
    }
    hub_log_info("event=stopping");
    return HUB_EXIT_OK;
}

#define OWN(path, type, var, def, help, min, max)                                                  \
    {                                                                                              \
        path, type, var, 0, def, help, min, max, NULL, NULL                                        \
    }

int main(int argc, char **argv)
{
    static reminder_t r;
    static const struct option options[] = {
        {"once", no_argument, NULL, OPT_ONCE},
        {"now", required_argument, NULL, OPT_NOW},
        {NULL, 0, NULL, 0},
    };
    const hub_cfg_item_t own[] = {
        OWN("reminder.interval_seconds", HUB_CFG_INT, &r.interval_seconds, "86400",
            "seconds between scans", 1, 31LL * 86400),
        OWN("reminder.now", HUB_CFG_STRING, &r.now_setting, "",
            "scan as of this date (YYYY-MM-DD); empty: today in Europe/London", 0, 0),
        OWN("reminder.due_soon_days", HUB_CFG_INT, &r.due_soon_days, "28",
            "a plan due within this many days gets PLAN_DUE_SOON", 0, 366),
        OWN("reminder.briefing_interval_days", HUB_CFG_INT, &r.briefing_interval_days, "90",
            "a group last briefed longer ago than this gets GROUP_NOT_BRIEFED", 1, 3660),
        OWN("reminder.flush_timeout_ms", HUB_CFG_INT, &r.flush_timeout_ms, "60000",
            "how long a scan waits for the broker to acknowledge its events", 1000, 3600000),
        OWN("reminder.startup_wait_ms", HUB_CFG_INT, &r.startup_wait_ms, "60000",
            "how long to keep trying PostgreSQL at start", 0, 3600000),
        HUB_GROUPS_CFG_ITEM(&r.groups),
        HUB_HTTP_CFG_ITEMS("reminder", &r.http_conf, HUB_HTTP_PORT_REMINDER),
    };
    int rc;

    r.svc.name = SERVICE;
    r.svc.own_group = "reminder";
    r.svc.usage = "Scans the shared view on a schedule and produces ReminderDue and "
                  "MeetingActionOverdue events with deterministic ids.";
    r.svc.own = own;
    r.svc.nown = HUB_ARRAY_LEN(own);
    r.svc.options = options;
    r.svc.option = on_option;
    r.svc.options_help = "      --once           run one scan and exit (status 1 if it failed)\n"
                         "      --now YYYY-MM-DD scan as of this date (overrides reminder.now)\n";
    r.svc.opaque = &r;
    rc = hub_service_init(&r.svc, argc, argv);
    if (rc >= 0)
        goto out;
    if (r.svc.argc > 0) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", SERVICE, r.svc.argv[0]);
        rc = HUB_EXIT_USAGE;
        goto out;
    }
    rc = run(&r);
out:
    hub_producer_destroy(r.producer);
    PQfinish(r.conn);
    hub_codec_destroy(r.codec);
    hub_http_stop(r.http);
    hub_metrics_destroy(r.metrics);
    hub_buf_free(&r.buf);
    reminder_batch_free(&r.batch);
    hub_service_fini(&r.svc);
    return rc;
}
