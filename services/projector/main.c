/*
 * hub-projector: projects every hub topic into the PostgreSQL read model
 * (tables, transitions_view) exactly once. Rows and consumed offsets commit in
 * one PostgreSQL transaction; see docs/projector.md.
 */
#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/config.h"
#include "hub/log.h"
#include "hub/memory.h"
#include "hub/pg.h"
#include "hub/service.h"
#include "hub/signals.h"
#include "projector.h"

/* projector.topics = [ "a", "b" ]: non-empty topic names. Absent: every hub topic. */
static int parse_topics(const config_setting_t *s, void *var, char *errstr, size_t errstr_size)
{
    projector_conf_t *c = var;
    char where[512];
    int n;

    if (!s)
        return HUB_OK;
    if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                        "%s: 'projector.topics' must be a list of topic names",
                        hub_cfg_where(s, where, sizeof(where)));
    n = config_setting_length(s);
    if (n == 0)
        return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                        "%s: 'projector.topics' must name at least one topic",
                        hub_cfg_where(s, where, sizeof(where)));
    c->topics = calloc((size_t)n + 1, sizeof(char *));
    if (!c->topics)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v =
            config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
        if (!v || !*v)
            return hub_errf(errstr, errstr_size, HUB_ECONFIG,
                            "%s: 'projector.topics' entry %d must be a non-empty string",
                            hub_cfg_where(e, where, sizeof(where)), i + 1);
        if (!(c->topics[i] = strdup(v)))
            return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        c->ntopics = (size_t)i + 1;
    }
    return HUB_OK;
}

static void free_topics(void *var)
{
    projector_conf_t *c = var;
    for (size_t i = 0; c->topics && i < c->ntopics; i++)
        free(c->topics[i]);
    free(c->topics);
    c->topics = NULL;
    c->ntopics = 0;
}

static projector_conf_t conf;
static int migrate_only;

#define INT_ITEM(path, var, def, min, max, help)                                                   \
    {                                                                                              \
        path, HUB_CFG_INT, var, 0, def, help, min, max, NULL, NULL                                 \
    }

static const hub_cfg_item_t own_items[] = {
    {"projector.group_id", HUB_CFG_STRING, &conf.group_id, 0, "hub-projector",
     "Kafka consumer group, and the key of the offsets kept in PostgreSQL", 0, 0, NULL, NULL},
    {"projector.topics", HUB_CFG_CUSTOM, &conf, 0, NULL,
     "topics to project (default: every topics.* setting, dead letters included)", 0, 0,
     parse_topics, free_topics},
    INT_ITEM("projector.batch_max_events", &conf.batch_max_events, "5000", 1, 20000,
             "most events committed in one transaction"),
    INT_ITEM("projector.batch_max_ms", &conf.batch_max_ms, "50", 1, 60000,
             "longest a batch gathers while messages keep arriving, in ms"),
    INT_ITEM("projector.event_log_retention_days", &conf.retention_days, "2555", 1, 365000,
             "event-log rows older than this (by received_at) are pruned"),
    INT_ITEM("projector.event_log_prune_interval_s", &conf.prune_interval_s, "3600", 1, 86400,
             "how often the event log is pruned, in seconds"),
    INT_ITEM("projector.retry_max_ms", &conf.retry_max_ms, "5000", 100, 600000,
             "cap of the back-off while PostgreSQL is unreachable, in ms"),
    INT_ITEM("projector.startup_wait_ms", &conf.startup_wait_ms, "60000", 0, 3600000,
             "how long to wait for PostgreSQL at start before giving up, in ms"),
    INT_ITEM("projector.connections", &conf.connections, "3", 1, PROJECTOR_MAX_LANES,
             "PostgreSQL connections, each applying the batches of its share of the partitions"),
    INT_ITEM("projector.memory_reserve_mb", &conf.memory_reserve_mb, "-1", -1, 65536,
             "working memory claimed and written at start, in MB (-1: sized from connections "
             "and batch_max_events; 0: grow as needed)"),
    {"projector.migrations_dir", HUB_CFG_STRING, &conf.migrations_dir, 0, "",
     "directory of NNNN_name.sql migrations (default: <data dir>/sql/migrations)", 0, 0, NULL,
     NULL},
    {"projector.migrate", HUB_CFG_BOOL, &conf.migrate, 0, "true",
     "apply pending migrations at start", 0, 0, NULL, NULL},
    {"projector.migrate_conninfo", HUB_CFG_STRING, &conf.migrate_conninfo, 0, "",
     "libpq conninfo of the owner role that applies migrations (default: postgres.conninfo)", 0, 0,
     NULL, NULL},
    {"projector.migrate_password", HUB_CFG_SECRET, &conf.migrate_password, 0, NULL,
     "password of the migrating role (prefer migrate_password_file or _env)", 0, 0, NULL, NULL},
    {"projector.commit_kafka", HUB_CFG_BOOL, &conf.commit_kafka, 0, "true",
     "also commit offsets to Kafka after PostgreSQL commits, for lag tools", 0, 0, NULL, NULL},
    HUB_HTTP_CFG_ITEMS("projector", &conf.http, HUB_HTTP_PORT_PROJECTOR),
};

enum { OPT_MIGRATE_ONLY = 256 };

static const struct option own_options[] = {
    {"migrate-only", no_argument, NULL, OPT_MIGRATE_ONLY},
    {NULL, 0, NULL, 0},
};

static int own_option(hub_service_t *svc, int val, const char *arg)
{
    if (val == OPT_MIGRATE_ONLY)
        migrate_only = 1;
    return -1;
}

/* Server notices ("already exists, skipping") belong in the log, not on stderr. */
static void notice_to_log(void *arg, const char *message)
{
    size_t n = strlen(message);
    while (n > 0 && message[n - 1] == '\n')
        n--;
    hub_log_debug("event=pg_notice msg=\"%.*s\"", (int)n, message);
}

/* Applies pending migrations with the owner role, then disconnects. */
static int run_migrations(projector_t *p, char *errstr, size_t errstr_size)
{
    const char *conninfo = conf.migrate_conninfo && *conf.migrate_conninfo
                               ? conf.migrate_conninfo
                               : p->svc->common.pg_conninfo;
    const char *password = conf.migrate_conninfo && *conf.migrate_conninfo
                               ? conf.migrate_password
                               : p->svc->common.pg_password;
    char dir[4096];
    int applied = 0, err;
    PGconn *conn;

    if (conf.migrations_dir && *conf.migrations_dir)
        hub_strlcpy(dir, conf.migrations_dir, sizeof(dir));
    else
        snprintf(dir, sizeof(dir), "%s/sql/migrations", hub_data_dir());
    conn = hub_pg_connect(conninfo, password, (int)conf.startup_wait_ms, errstr, errstr_size);
    if (!conn)
        return HUB_EPG;
    PQsetNoticeProcessor(conn, notice_to_log, NULL);
    err = hub_pg_migrate(conn, dir, &applied, errstr, errstr_size);
    PQfinish(conn);
    if (err == HUB_OK)
        hub_log_info("event=migrations_checked dir=%s applied=%d", dir, applied);
    return err;
}

/* The topics to subscribe to: the setting, or every hub topic. */
static size_t subscription(projector_t *p, const char **topics, size_t max)
{
    static const char *const settings[] = {"risk_flags",          "transition_alerts",
                                           "transition_plans",    "meeting_actions",
                                           "group_notifications", "dead_letters"};
    size_t n = 0;
    if (conf.topics) {
        for (size_t i = 0; i < conf.ntopics && n < max; i++)
            topics[n++] = conf.topics[i];
        return n;
    }
    for (size_t i = 0; i < HUB_ARRAY_LEN(settings) && n < max; i++) {
        const char *t = hub_service_topic(p->svc, settings[i]);
        if (t && *t)
            topics[n++] = t;
    }
    return n;
}

/* One line a minute, so operators can see it is alive without reading payloads. */
static void progress(projector_t *p, int force)
{
    int64_t now = hub_monotonic_ms();
    if (!force && now < p->next_progress_ms)
        return;
    p->next_progress_ms = now + 60000;
    hub_log_info("event=progress applied=%lld rejected=%lld dead_letters=%lld batches=%lld "
                 "retries=%lld partitions=%zu rss_kb=%ld",
                 p->applied, p->rejected, p->dead_letters, p->batches, p->retries, p->nparts,
                 hub_memory_rss_kb());
}

/*
 * The memory a projector settles at under a backlog, measured with
 * bench/projector: about 80 MB whatever the settings (librdkafka's 16 MB
 * prefetch queue costs most of it), and per lane its two item arrays, its two
 * sets of statement arrays (one for the next batch, built while a batch is in
 * flight) and libpq's buffers, which grow with the batch size.
 */
static long long reserve_mb(void)
{
    long long per_lane = 16 + 2 * conf.batch_max_events *
                                  (long long)(sizeof(projector_item_t) + 1024) / (1024 * 1024);
    return 80 + conf.connections * per_lane;
}

/*
 * A batch's items, zeroed and resident from the start (every page written
 * once): the projector's memory does not grow when a batch first fills up, so
 * a shortage shows at start-up rather than under load.
 */
static projector_item_t *batch_array(size_t n)
{
    projector_item_t *items = calloc(n, sizeof(*items));
    if (items)
        for (size_t off = 0; off < n * sizeof(*items); off += 4096)
            ((volatile unsigned char *)items)[off] = 0;
    return items;
}

/* Commits the batch; on failure, resynchronises from PostgreSQL (nothing lost). */
static void flush(projector_t *p)
{
    char errstr[1024];
    if (p->ln->nitems == 0)
        return;
    /* The batch in flight first: if it failed, this one is read again after the resync. */
    if (projector_inflight_finish(p) != HUB_OK) {
        projector_batch_clear(p);
        return;
    }
    if (projector_apply_batch(p, errstr, sizeof(errstr)) != HUB_OK) {
        projector_one_line(errstr);
        hub_log_error("event=batch_failed messages=%zu error=\"%s\"", p->ln->nitems, errstr);
        p->need_resync = 1;
        projector_batch_clear(p);
    }
}

/* The partition of msg if we own it and msg is at or after the position PostgreSQL holds;
   otherwise NULL. */
static projector_part_t *wanted(projector_t *p, const rd_kafka_message_t *msg)
{
    projector_part_t *part = projector_part_find(p, rd_kafka_topic_name(msg->rkt), msg->partition);
    return part && part->synced && msg->offset >= part->expected ? part : NULL;
}

/* /readyz: ready while connected, positioned and owning partitions. */
static void update_ready(projector_t *p)
{
    int ready = !p->need_resync && p->nparts > 0;
    for (int k = 0; k < p->nlanes; k++)
        ready = ready && p->lanes[k].pg;
    if (ready == p->ready)
        return;
    p->ready = ready;
    hub_http_set_ready(p->http, ready,
                       ready            ? NULL
                       : p->nparts == 0 ? "waiting for partition assignment"
                                        : "resynchronising with PostgreSQL");
}

static void housekeeping(projector_t *p)
{
    int64_t now = hub_monotonic_ms();
    if (p->metrics && now >= p->next_lag_ms) {
        char errstr[256];
        if (hub_metrics_update_lag(p->metrics, hub_consumer_handle(p->consumer), errstr,
                                   sizeof(errstr)) != HUB_OK)
            hub_log_debug("event=lag_update_failed error=\"%s\"", errstr);
        p->next_lag_ms = now + 5000;
    }
    if (p->kafka_dirty && now >= p->next_kafka_commit_ms) {
        /* Asynchronous: lag tools may trail a second behind, PostgreSQL never does. */
        rd_kafka_commit(hub_consumer_handle(p->consumer), NULL, 1);
        p->kafka_dirty = 0;
        p->next_kafka_commit_ms = now + 1000;
    }
    if (now >= p->next_prune_ms) {
        long n;
        projector_lanes_finish(p);
        projector_lane_use(p, 0); /* every lane is idle now */
        n = projector_prune(p);
        /* A full chunk means more to delete: continue soon, between batches. */
        p->next_prune_ms = n >= 5000 ? now : now + conf.prune_interval_s * 1000;
    }
    progress(p, 0);
}

/* The registry with every series at zero, and the endpoints if configured. */
static int setup_metrics(projector_t *p, const char **topics, size_t ntopics, char *errstr,
                         size_t errstr_size)
{
    static const char *const classes[] = {PROJECTOR_DLQ_CLASSES};
    p->ready = -1;
    p->metrics = hub_metrics_new(PROJECTOR_SERVICE);
    p->in_topics = calloc(ntopics, sizeof(*p->in_topics));
    p->m_in = calloc(ntopics, sizeof(*p->m_in));
    if (!p->metrics || !p->in_topics || !p->m_in)
        return hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
    for (size_t i = 0; i < ntopics; i++) {
        p->in_topics[i] = topics[i];
        p->m_in[i] = hub_metrics_events_in(p->metrics, topics[i]);
    }
    p->nin = ntopics;
    for (size_t c = 0; c < HUB_ARRAY_LEN(classes); c++)
        p->m_dlq[c] = hub_metrics_dead_letters(p->metrics, classes[c]);
    p->m_failures = hub_metrics_delivery_failures(p->metrics);
    p->m_latency = hub_metrics_batch_latency(p->metrics);
    if (conf.http.listen && *conf.http.listen) {
        p->http = hub_http_start(&conf.http, p->metrics, errstr, errstr_size);
        if (!p->http)
            return HUB_ECONFIG;
        hub_http_set_ready(p->http, 0, "starting");
    }
    return HUB_OK;
}

/*
 * The main loop, until SIGTERM (HUB_EXIT_OK) or a failure that a fresh
 * process must recover from (HUB_EXIT_FAILURE): a resync that gave up, or a
 * consumer librdkafka declared fatally failed.
 */
/* Under a backlog the batches in flight are looked at after this many messages (each look
   is a read from every connection), at least once a millisecond, and whenever none came. */
#define LANES_CHECK_EVERY 32

static int run(projector_t *p)
{
    int rc = HUB_EXIT_OK;
    int lane_busy[PROJECTOR_MAX_LANES] = {0};
    unsigned unchecked = LANES_CHECK_EVERY;
    int64_t checked_ms = 0;
    /* Readable when a message arrives: the loop waits for a message and for PostgreSQL's
       answers at once. */
    int wake = hub_consumer_wakeup_fd(p->consumer);
    if (wake < 0)
        hub_log_warn("event=consumer_wakeup_unavailable action=\"poll every millisecond\"");
    while (!hub_stop_requested()) {
        rd_kafka_message_t *msg;
        int busy, full, held, ready;
        size_t pending;
        int64_t now;
        hub_http_heartbeat(p->http);
        update_ready(p);
        if (p->need_resync) {
            if (projector_resync(p) != HUB_OK) {
                if (!hub_stop_requested())
                    rc = HUB_EXIT_FAILURE;
                break;
            }
            unchecked = LANES_CHECK_EVERY;
            continue;
        }
        if (hub_consumer_fatal(p->consumer)) {
            rc = HUB_EXIT_FAILURE;
            break;
        }
        /* While PostgreSQL works on a lane's batch in flight, its next batch fills up, then
           the stash behind it, so the other lanes' messages are still read. When a lane can
           take no more, nothing is read until its batch in flight is done; the other lanes
           are served meanwhile. */
        busy = full = held = 0;
        pending = 0;
        now = hub_monotonic_ms();
        if (unchecked >= LANES_CHECK_EVERY || now != checked_ms) {
            unchecked = 0;
            checked_ms = now;
        }
        for (int k = 0; k < p->nlanes; k++) {
            projector_lane_use(p, k);
            if (!unchecked)
                lane_busy[k] = projector_inflight_busy(p);
            busy |= lane_busy[k];
            /* A full batch waiting for its lane: made ready to go meanwhile. */
            if (lane_busy[k] && !p->ln->prebuilt && projector_batch_full(p))
                projector_sets_prebuild(p);
            if (projector_stash_full(p)) {
                full = 1;
                held |= lane_busy[k];
            }
            pending += p->ln->nitems + p->ln->nstash;
        }
        msg = NULL;
        if (held)
            projector_lanes_wait(p, -1, 100);
        else if (!full)
            msg = hub_consumer_poll(p->consumer, wake >= 0 ? 0 : busy ? 1 : pending ? 0 : 100);
        unchecked = msg ? unchecked + 1 : LANES_CHECK_EVERY;
        if (msg) {
            projector_part_t *part = wanted(p, msg);
            if (part) {
                projector_lane_use(p, part->lane);
                projector_batch_take(p, msg); /* room: no lane is full */
            } else {
                rd_kafka_message_destroy(msg);
            }
        }
        /* A lane that is free sends its batch when it is full, old enough, or nothing more
           is to be read now; or at once while another lane is held up. */
        pending = 0;
        ready = 0;
        for (int k = 0; k < p->nlanes && !p->need_resync; k++) {
            projector_lane_t *l = &p->lanes[k];
            projector_lane_use(p, k);
            if (l->nitems && !lane_busy[k] &&
                (!msg || held || projector_batch_full(p) ||
                 now - l->batch_started_ms >= conf.batch_max_ms)) {
                flush(p);
                projector_stash_drain(p);
                lane_busy[k] = l->inflight.items != NULL;
            }
            pending += l->nitems + l->nstash;
            ready |= l->nitems && !lane_busy[k];
        }
        if (!pending && !msg && !p->need_resync) {
            /* Nothing to read now: tidy up (the batches in flight go on). */
            housekeeping(p);
        }
        /* Nothing to read, and every lane with a batch has one in flight: wait for a message
           or an answer. */
        if (!msg && !full && !ready && !p->need_resync && wake >= 0)
            projector_lanes_wait(p, wake, 100);
    }
    /* Finish the batches in hand (rows and offsets commit together), then leave. */
    for (int k = 0; k < p->nlanes; k++) {
        projector_lane_use(p, k);
        flush(p);
    }
    projector_lanes_finish(p);
    progress(p, 1);
    return rc;
}

/*
 * The consumer's settings where the kafka group of the configuration sets none.
 * librdkafka prefetches up to 64 MB by default; a batch needs a fraction of that, and a
 * bounded queue keeps the projector's memory flat through a backlog. At a steady rate the
 * broker answers each fetch as soon as one message is there: thousands of round trips a
 * second, whose CPU lengthened the latency tail; waiting up to 5 ms for 64 kB costs at most
 * that much latency. 0, or -1 when out of memory.
 */
static int consumer_defaults(hub_props_t *props)
{
    static const char *const defaults[][2] = {
        {"queued.max.messages.kbytes", "16384"},
        {"fetch.max.bytes", "4194304"},
        {"fetch.min.bytes", "65536"},
        {"fetch.wait.max.ms", "5"},
    };
    for (size_t i = 0; i < HUB_ARRAY_LEN(defaults); i++)
        if (!hub_props_get(props, defaults[i][0]) &&
            hub_props_set(props, defaults[i][0], defaults[i][1]) != 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    hub_service_t svc = {
        .name = PROJECTOR_SERVICE,
        .own_group = "projector",
        .usage = "Projects every hub topic into the PostgreSQL read model (tables and "
                 "transitions_view), exactly once: rows and consumed offsets commit in one "
                 "transaction. Applies pending migrations at start.",
        .own = own_items,
        .nown = HUB_ARRAY_LEN(own_items),
        .options = own_options,
        .option = own_option,
        .options_help = "      --migrate-only   apply pending migrations and exit\n",
    };
    projector_t p = {0};
    const char *topics[64];
    size_t ntopics;
    hub_consumer_hooks_t hooks = {projector_on_assign, projector_on_revoke, &p};
    hub_codec_opts_t copts = {0};
    hub_props_t consumer_props = {0};
    char errstr[1024];
    int rc = hub_service_init(&svc, argc, argv);

    if (rc >= 0) {
        hub_service_fini(&svc);
        return rc;
    }
    rc = HUB_EXIT_FAILURE;
    p.svc = &svc;
    p.conf = conf;
    p.rules.agencies = (const char *const *)svc.common.agencies;
    p.rules.nagencies = svc.common.nagencies;
    p.dlq_topic = hub_service_topic(&svc, "dead_letters");

    if (conf.migrate || migrate_only) {
        if (run_migrations(&p, errstr, sizeof(errstr)) != HUB_OK) {
            hub_log_error("event=migrations_failed error=\"%s\"", errstr);
            fprintf(stderr, "%s: migrations: %s\n", svc.name, errstr);
            goto out;
        }
    }
    if (migrate_only) {
        rc = HUB_EXIT_OK;
        goto out;
    }
    /* Before the HTTP server's and librdkafka's threads start: they allocate from the
       reserve too. */
    if (conf.memory_reserve_mb < 0)
        conf.memory_reserve_mb = reserve_mb();
    p.conf.memory_reserve_mb = conf.memory_reserve_mb;
    if (hub_memory_reserve((size_t)conf.memory_reserve_mb << 20) != HUB_OK) {
        fprintf(stderr, "%s: cannot reserve memory_reserve_mb = %lld MB\n", svc.name,
                conf.memory_reserve_mb);
        goto out;
    }
    ntopics = subscription(&p, topics, HUB_ARRAY_LEN(topics));
    if (ntopics == 0) {
        fprintf(stderr, "%s: no topics to consume\n", svc.name);
        rc = HUB_EXIT_USAGE;
        goto out;
    }
    if (setup_metrics(&p, topics, ntopics, errstr, sizeof(errstr)) != HUB_OK) {
        fprintf(stderr, "%s: %s\n", svc.name, errstr);
        goto out;
    }
    /* Per lane, two batches: one being read while the other is in flight. */
    p.nlanes = (int)conf.connections;
    for (int k = 0; k < p.nlanes; k++) {
        projector_lane_t *l = &p.lanes[k];
        l->items = batch_array((size_t)conf.batch_max_events);
        l->spare_items = batch_array((size_t)conf.batch_max_events);
        l->stash = calloc((size_t)conf.batch_max_events, sizeof(*l->stash));
        if (!l->items || !l->spare_items || !l->stash) {
            fprintf(stderr, "%s: out of memory\n", svc.name);
            goto out;
        }
        l->pg = hub_pg_connect(svc.common.pg_conninfo, svc.common.pg_password,
                               (int)conf.startup_wait_ms, errstr, sizeof(errstr));
        projector_lane_use(&p, k);
        if (!l->pg || projector_pg_prepare(&p, errstr, sizeof(errstr)) != HUB_OK) {
            hub_log_error("event=startup_failed error=\"%s\"", errstr);
            fprintf(stderr, "%s: %s\n", svc.name, errstr);
            goto out;
        }
    }
    projector_lane_use(&p, 0);
    copts.schemas_dir = svc.common.schemas_dir;
    copts.registry_url = svc.common.registry_url;
    p.codec = hub_codec_new(&copts, errstr, sizeof(errstr));
    if (!p.codec) {
        fprintf(stderr, "%s: %s\n", svc.name, errstr);
        goto out;
    }
    p.dlq = hub_producer_new(&svc.common.kafka, NULL, errstr, sizeof(errstr));
    if (!p.dlq) {
        fprintf(stderr, "%s: %s\n", svc.name, errstr);
        goto out;
    }
    if (hub_props_copy(&consumer_props, &svc.common.kafka) != 0 ||
        consumer_defaults(&consumer_props) != 0) {
        fprintf(stderr, "%s: out of memory\n", svc.name);
        goto out;
    }
    p.consumer = hub_consumer_new(&consumer_props, conf.group_id, topics, ntopics, &hooks, errstr,
                                  sizeof(errstr));
    if (!p.consumer) {
        fprintf(stderr, "%s: %s\n", svc.name, errstr);
        goto out;
    }
    hub_log_info("event=started group=%s topics=%zu batch_max_events=%lld batch_max_ms=%lld "
                 "connections=%lld memory_reserve_mb=%lld",
                 conf.group_id, ntopics, conf.batch_max_events, conf.batch_max_ms, conf.connections,
                 conf.memory_reserve_mb);
    rc = run(&p);
    hub_log_info("event=stopping status=%d", rc);

out:
    projector_lanes_finish(&p);
    /* Closing the consumer commits the offsets stored after the last PostgreSQL commit. */
    hub_consumer_destroy(p.consumer);
    for (int k = 0; k < p.nlanes; k++) {
        projector_lane_use(&p, k);
        projector_batch_clear(&p);
        projector_stash_clear(&p);
        projector_sets_free(&p);
        PQfinish(p.ln->pg);
        free(p.ln->items);
        free(p.ln->spare_items);
        free(p.ln->stash);
    }
    projector_recent_free(&p);
    projector_parts_free(&p);
    hub_producer_destroy(p.dlq);
    hub_codec_destroy(p.codec);
    hub_http_stop(p.http);
    hub_metrics_destroy(p.metrics);
    free(p.m_in);
    free(p.in_topics);
    hub_props_clear(&consumer_props);
    hub_service_fini(&svc);
    return rc;
}
