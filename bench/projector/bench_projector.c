/*
 * bench_projector.c: hub-projector's benchmarks (not tests; see
 * docs/performance.md, "Projector", and bench/projector/run.sh).
 *
 *   bench_projector throughput N   N mixed events already in Kafka: projection
 *                                  rate, the rate of COPY loading the same rows
 *                                  into the same tables (three rounds of each,
 *                                  taking turns; medians), and the projector's
 *                                  resident memory at start, 100k and N events
 *   bench_projector latency R S    produce-to-visible latency in transitions_view
 *                                  at R events/s for S seconds (p50, p99)
 *   bench_projector apply-modes N  the two ways of applying a batch, side by side
 *                                  without Kafka: libpq pipeline mode with
 *                                  prepared statements vs COPY into a staging
 *                                  table and set-based SQL
 *
 * Needs the same environment as the tests (HUB_KAFKA_BOOTSTRAP,
 * HUB_PG_CONNINFO, HUB_DATA_DIR) and a hub-projector built next to it.
 * BENCH_PROJECTOR_SETTINGS adds projector settings (e.g. batch sizes);
 * BENCH_PROJECTOR_INSTANCES (1 to 8) runs that many projectors in one group
 * for the throughput benchmark (memory is the first instance's).
 */
#define WL_SUBJECTS 20000
#define WL_ACTIONS  60000
#include <poll.h>
#include <pthread.h>

#include "../../tests/projector_harness.h"

static double now_s(void)
{
    return (double)hub_monotonic_ms() / 1000.0;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Messages of the five event topics committed by the projector so far. */
static long long committed(PGconn *c, ph_env_t *e)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(next_offset), 0) FROM hub_consumer_offsets"
             " WHERE group_id = '%s' AND topic <> '%s'",
             e->group, e->topics[5]);
    return ph_num(c, sql);
}

static long produce_mix(ph_env_t *e, long n, uint64_t seed)
{
    long sent = 0;
    for (long i = 0; i < n; i++) {
        hub_event_t ev;
        int kind = wl_event(seed, i, &ev);
        if (kind == 2) {
            char buf[64], key[32];
            size_t len;
            wl_poison(i, buf, sizeof(buf), &len);
            snprintf(key, sizeof(key), "poison-%ld", i);
            ph_send_raw(e, e->topics[0], key, buf, len);
        } else {
            ph_send(e, &ev);
        }
        sent++;
    }
    ph_flush(e);
    return sent;
}

/* Non-generated columns of table, comma-separated. */
static char *columns_of(PGconn *c, const char *table)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position)"
             " FROM information_schema.columns WHERE table_name = '%s'"
             " AND is_generated = 'NEVER'",
             table);
    char *s = ph_rows(c, sql);
    s[strcspn(s, "\n")] = '\0';
    return s;
}

static const char *const copy_tables[] = {
    "hub_event_log", "young_people", "young_person_flags", "transition_plans",    "meeting_actions",
    "group_state",   "reminders",    "dead_letters",       "hub_consumer_offsets"};

/* Dumps every projected table (binary COPY) into files under dir; returns rows. */
static long long dump_tables(PGconn *c, const char *dir)
{
    long long rows = 0;
    for (size_t t = 0; t < HUB_ARRAY_LEN(copy_tables); t++) {
        char sql[2048], path[2048], *cols = columns_of(c, copy_tables[t]), *buf;
        int n;
        snprintf(path, sizeof(path), "%s/%s.bin", dir, copy_tables[t]);
        FILE *f = fopen(path, "w");
        snprintf(sql, sizeof(sql), "COPY %s (%s) TO STDOUT (FORMAT binary)", copy_tables[t], cols);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COPY_OUT)
            TEST_FAIL_("%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
            fwrite(buf, 1, (size_t)n, f);
            PQfreemem(buf);
        }
        res = PQgetResult(c);
        rows += atoll(PQcmdTuples(res));
        PQclear(res);
        fclose(f);
        free(cols);
    }
    return rows;
}

/* Loads the dumped files into the same tables of another database; returns seconds. */
static double load_tables(PGconn *c, const char *dir)
{
    double t0 = now_s();
    ph_exec(c, "BEGIN");
    for (size_t t = 0; t < HUB_ARRAY_LEN(copy_tables); t++) {
        char sql[2048], path[2048], *cols = columns_of(c, copy_tables[t]), buf[1 << 16];
        size_t n;
        snprintf(path, sizeof(path), "%s/%s.bin", dir, copy_tables[t]);
        FILE *f = fopen(path, "r");
        snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN (FORMAT binary)", copy_tables[t], cols);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COPY_IN)
            TEST_FAIL_("%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            if (PQputCopyData(c, buf, (int)n) != 1)
                TEST_FAIL_("copy data: %s", PQerrorMessage(c));
        if (PQputCopyEnd(c, NULL) != 1)
            TEST_FAIL_("copy end: %s", PQerrorMessage(c));
        res = PQgetResult(c);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            TEST_FAIL_("%s: %s", copy_tables[t], PQerrorMessage(c));
        PQclear(res);
        fclose(f);
        free(cols);
    }
    ph_exec(c, "COMMIT");
    return now_s() - t0;
}

/* Before a timed phase: no autovacuum worker still busy with an earlier phase's tables, and
   dirty pages written out, PostgreSQL's and then the kernel's (the test server runs with
   fsync off, so a checkpoint alone leaves gigabytes for the kernel to write back during the
   next phase); so neither phase pays for the other. */
static void quiesce(PGconn *c)
{
    for (int i = 0; i < 1200; i++) {
        if (ph_num(c, "SELECT count(*) FROM pg_stat_activity"
                      " WHERE backend_type = 'autovacuum worker'") == 0)
            break;
        if (i == 0)
            printf("  waiting for autovacuum to finish\n");
        usleep(100 * 1000);
    }
    ph_exec(c, "CHECKPOINT");
    sync();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static ph_env_t env;

/* Drops the database conninfo names (its last dbname=), through c. */
static void drop_db(PGconn *c, const char *conninfo)
{
    const char *name = conninfo, *q;
    char sql[512];
    while ((q = strstr(name, "dbname=")) != NULL)
        name = q + 7;
    snprintf(sql, sizeof(sql), "DROP DATABASE \"%.400s\"", name);
    ph_exec(c, sql);
}

/* One projection's measurements. */
typedef struct {
    double secs, rate;
    long long events;
    long rss_start, rss_100k, rss_end;
} projection_t;

/*
 * Projects the backlog (total messages) into env's database with
 * `instances` projectors in env's group; the rate is messages committed per
 * second from the first commit to the last. c: env's database as admin.
 */
static projection_t project(PGconn *c, long long total, int instances, const char *extra,
                            int print_rss)
{
    static ph_env_t more[7];
    projection_t r = {.rss_start = -1, .rss_100k = -1};
    long long at_first = 0, done = 0, next_sample = total / 10;
    double t_first = 0;

    quiesce(c);
    for (int i = 0; i < instances - 1; i++)
        ph_another_instance(&more[i], &env, i + 2, extra);
    ph_start(&env);
    for (int i = 0; i < instances - 1; i++)
        ph_start(&more[i]);
    while (done < total) {
        usleep(20 * 1000);
        ph_check_alive(&env);
        done = committed(c, &env);
        if (done > 0 && t_first == 0) {
            t_first = now_s();
            at_first = done;
            r.rss_start = rss_kb(env.pid);
        }
        if (r.rss_100k < 0 && done >= 100000)
            r.rss_100k = rss_kb(env.pid);
        if (print_rss && done >= next_sample) {
            printf("  rss after %lld: %ld kB\n", done, rss_kb(env.pid));
            next_sample += total / 10;
        }
    }
    r.secs = now_s() - t_first;
    r.rss_end = rss_kb(env.pid);
    r.events = total - at_first;
    r.rate = (double)r.events / r.secs;
    ph_stop(&env, SIGTERM);
    for (int i = 0; i < instances - 1; i++)
        ph_stop(&more[i], SIGTERM);
    return r;
}

/* A fresh database, migrated, into buf (its conninfo as the admin). */
static void migrated_db(const char *prefix, char *buf, size_t size)
{
    char sql[512], errstr[512];
    int applied;
    hub_test_pg_db(prefix, buf, size);
    PGconn *t = ph_connect(buf);
    snprintf(sql, sizeof(sql), "%s/sql/migrations", hub_data_dir());
    if (hub_pg_migrate(t, sql, &applied, errstr, sizeof(errstr)) != HUB_OK)
        TEST_FAIL_("migrate: %s", errstr);
    PQfinish(t);
}

/* COPY of the dumped tables into a fresh database; returns seconds. c: any admin connection. */
static double copy_load(PGconn *c, const char *dumpdir)
{
    char target[1024];
    migrated_db("benchcopy", target, sizeof(target));
    PGconn *t = ph_connect(target);
    quiesce(c);
    double secs = load_tables(t, dumpdir);
    PQfinish(t);
    drop_db(c, target); /* each load is 2 GB or so: not kept */
    return secs;
}

#define ROUNDS 3

static void throughput(long n)
{
    const char *extra = getenv("BENCH_PROJECTOR_SETTINGS");
    const char *inst = getenv("BENCH_PROJECTOR_INSTANCES");
    int instances = inst ? atoi(inst) : 1;
    double t_produce, rates[ROUNDS], copies[ROUNDS];
    long long total, rows = 0;
    char dumpdir[1024];
    PGconn *c;

    if (!extra)
        extra = "";
    /* More instances in the same group share the partitions, each with its own connection
       (BENCH_PROJECTOR_INSTANCES, 1 to 8). */
    if (instances < 1 || instances > 8)
        instances = 1;
    ph_setup(&env, "bench", 3, extra);
    t_produce = now_s();
    total = produce_mix(&env, n, 42);
    t_produce = now_s() - t_produce;
    printf("produced %lld messages in %.1f s (%.0f/s)\n", total, t_produce,
           (double)total / t_produce);
    snprintf(dumpdir, sizeof(dumpdir), "%s", hub_test_tmpdir());

    /* Projection and COPY take turns, three rounds, and the medians count: on a shared
       machine one COPY load moved by 30 % within the hour, and so did the ratio of one
       projection to the COPY loads after it. Each projection starts from the beginning of
       the topics, into a fresh database with a fresh group. */
    c = ph_connect(env.db_admin);
    for (int k = 0; k < ROUNDS; k++) {
        if (k > 0) {
            char old[1024];
            snprintf(old, sizeof(old), "%s", env.db_admin);
            migrated_db("bench", env.db_admin, sizeof(env.db_admin));
            snprintf(env.db_projector, sizeof(env.db_projector),
                     "%s user=hub_projector password=%s", env.db_admin, PH_PASSWORD);
            snprintf(env.group, sizeof(env.group), "projector-bench-%s", hub_test_unique());
            ph_write_config(&env, extra);
            PQfinish(c);
            c = ph_connect(env.db_admin);
            drop_db(c, old);
        }
        projection_t r = project(c, total, instances, extra, k == 0);
        rates[k] = r.rate;
        printf("projection %d: %lld messages in %.1f s, %.0f events/s (%d instance%s, batch %s);"
               " rss start %ld kB, after 100k %ld kB, after %lld %ld kB\n",
               k + 1, r.events, r.secs, r.rate, instances, instances > 1 ? "s" : "",
               *extra ? extra : "settings: the defaults", r.rss_start, r.rss_100k, total,
               r.rss_end);
        if (k == 0)
            rows = dump_tables(c, dumpdir);
        copies[k] = copy_load(c, dumpdir);
        printf("  COPY load %d: %.1f s, %.0f events/s\n", k + 1, copies[k],
               (double)total / copies[k]);
    }
    /* Hundreds of megabytes: not left behind in the temporary directory. */
    for (size_t i = 0; i < HUB_ARRAY_LEN(copy_tables); i++) {
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s.bin", dumpdir, copy_tables[i]);
        unlink(path);
    }
    qsort(rates, ROUNDS, sizeof(rates[0]), cmp_double);
    qsort(copies, ROUNDS, sizeof(copies[0]), cmp_double);
    double rate = rates[ROUNDS / 2], copy_rate = (double)total / copies[ROUNDS / 2];
    printf("projected %lld messages: %.0f events/s (median of %d)\n", total, rate, ROUNDS);
    printf("COPY loaded the same %lld rows into the same tables: %.0f events/s (median of %d)\n",
           rows, copy_rate, ROUNDS);
    printf("projection / COPY = %.0f%%\n", 100.0 * rate / copy_rate);
    PQfinish(c);
}

/* ---- latency ---- */

#define LAT_MAX 400000
/* Every LAT_SAMPLE-th event is watched, so polling the view stays light. */
#define LAT_SAMPLE 10
static int64_t sent_us[LAT_MAX];
static int64_t seen_us[LAT_MAX];
static volatile long nsent;
static volatile int lat_done;
static long lat_base;
/* The longest the poller waits for a commit notification before it queries anyway. */
static int poll_ms = 5;
static long lat_queries, lat_notified;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Watches transitions_view as hub_subgroup. It queries when PostgreSQL says a
 * transaction that wrote young_people committed (LISTEN; the notification is
 * delivered only after the commit), and at least every poll_ms otherwise, so
 * the time to notice a visible row is the query itself, not a polling
 * interval, and the reader does not keep a CPU busy. A row counts as seen at
 * the end of the first query that returns it.
 */
static void *poller(void *arg)
{
    char conninfo[1200];
    long first = 0;
    snprintf(conninfo, sizeof(conninfo), "%s user=hub_subgroup password=%s", env.db_admin,
             PH_PASSWORD);
    PGconn *c = ph_connect(conninfo);
    PGresult *res = PQprepare(c, "seen",
                              "SELECT subject_key FROM transitions_view"
                              " WHERE subject_key = ANY($1::text[])",
                              1, NULL);
    PQclear(res);
    res = PQexec(c, "LISTEN bench_visible");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        TEST_FAIL_("listen: %s", PQerrorMessage(c));
    PQclear(res);
    char *arr = malloc(1000 * 70 + 16);
    while (!lat_done || first < nsent) {
        long upto = nsent, n = 0;
        size_t len = 0;
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        PGnotify *note;
        int notified = 0;
        /* Wait for a commit (or the backstop interval), then drain the notifications. */
        poll(&pfd, 1, poll_ms);
        PQconsumeInput(c);
        while ((note = PQnotifies(c)) != NULL) {
            notified = 1;
            PQfreemem(note);
        }
        upto = nsent;
        while (first < upto && (seen_us[first] || first % LAT_SAMPLE))
            first++;
        if (first >= upto)
            continue;
        arr[len++] = '{';
        for (long i = first; i < upto && n < 200; i++) {
            if (seen_us[i] || i % LAT_SAMPLE)
                continue;
            len +=
                (size_t)sprintf(arr + len, "%s%064lx", n ? "," : "", (unsigned long)(lat_base + i));
            n++;
        }
        arr[len++] = '}';
        arr[len] = '\0';
        const char *params[1] = {arr};
        res = PQexecPrepared(c, "seen", 1, params, NULL, NULL, 0);
        int64_t t = now_us();
        lat_queries++;
        lat_notified += notified;
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            TEST_FAIL_("poll: %s", PQerrorMessage(c));
        for (int r = 0; r < PQntuples(res); r++) {
            /* The key is the event's number (plus lat_base) in hex. */
            long i = (long)strtoull(PQgetvalue(res, r, 0) + 48, NULL, 16) - lat_base;
            if (i >= 0 && i < upto && !seen_us[i])
                seen_us[i] = t;
        }
        PQclear(res);
    }
    free(arr);
    PQfinish(c);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void latency(int rate, int seconds)
{
    hub_props_t props = {0};
    char errstr[512];
    pthread_t th;
    long total = (long)rate * seconds;
    if (total > LAT_MAX)
        total = LAT_MAX;
    if (!env.producer)
        ph_setup(&env, "benchlat", 3, "");
    hub_test_kafka_props(&props);
    hub_props_set(&props, "linger.ms", "0");
    hub_producer_t *p = hub_producer_new(&props, NULL, errstr, sizeof(errstr));
    hub_props_clear(&props);
    if (!p)
        TEST_FAIL_("producer: %s", errstr);
    if (getenv("BENCH_KAFKA_EXTRA")) {
        env.kafka_extra = getenv("BENCH_KAFKA_EXTRA");
        ph_write_config(
            &env, getenv("BENCH_PROJECTOR_SETTINGS") ? getenv("BENCH_PROJECTOR_SETTINGS") : "");
    }
    /* Warm up: the producer's id and the projector's assignment. */
    ph_start(&env);
    ph_wait_caught_up(&env, 600);
    /* First sends wait for the producer's idempotence id and topic metadata, and the
       consumer's first fetches: warm every topic up before measuring. */
    for (int t = 0; t < PH_NTOPICS; t++)
        if (hub_producer_send(p, env.topics[t], RD_KAFKA_PARTITION_UA, "warm-up", 7, "x", 1, NULL,
                              errstr, sizeof(errstr)) != HUB_OK)
            TEST_FAIL_("warm-up: %s", errstr);
    if (hub_producer_flush(p, 30000, errstr, sizeof(errstr)) != HUB_OK)
        TEST_FAIL_("warm-up: %s", errstr);
    ph_wait_caught_up(&env, 60);
    usleep(2000 * 1000);
    if (getenv("BENCH_POLL_MS"))
        poll_ms = atoi(getenv("BENCH_POLL_MS"));
    {
        /* The benchmark's own database: a notification after each commit that wrote
           young_people, for the watcher (one per statement, so cheap for either apply path). */
        PGconn *a = ph_connect(env.db_admin);
        ph_exec(a, "CREATE OR REPLACE FUNCTION bench_visible() RETURNS trigger LANGUAGE plpgsql"
                   " AS $$ BEGIN PERFORM pg_notify('bench_visible', ''); RETURN NULL; END $$");
        ph_exec(a, "DROP TRIGGER IF EXISTS bench_visible ON young_people");
        ph_exec(a, "CREATE TRIGGER bench_visible AFTER INSERT OR UPDATE ON young_people"
                   " FOR EACH STATEMENT EXECUTE FUNCTION bench_visible()");
        /* The throughput phase's million rows are in this database: their checkpoint and
           autovacuum go first. */
        quiesce(a);
        PQfinish(a);
    }
    char since[64];
    hub_timestamp_format(hub_now_ms(), since, sizeof(since));
    lat_base = 5000000;
    pthread_create(&th, NULL, poller, NULL);
    hub_buf_t buf = {0};
    int64_t start = now_us();
    for (long i = 0; i < total; i++) {
        int64_t due = start + i * 1000000 / rate;
        while (now_us() < due) {
            hub_producer_poll(p, 0);
            usleep(100);
        }
        char id[HUB_UUID_SIZE];
        ph_id(id, "latency-%ld", i);
        hub_event_t ev = ph_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, id, hub_now_ms(), "UHL");
        snprintf(ev.u.flagged.subject_key, HUB_SUBJECT_KEY_SIZE, "%064lx",
                 (unsigned long)(lat_base + i));
        ev.u.flagged.local_authority = (hub_local_authority_t)(i % 3);
        ev.u.flagged.date_of_birth = ph_date(2008, 1 + i % 12, 1 + i % 28);
        ev.u.flagged.risk_categories = HUB_RISK_BIT(HUB_RISK_GANGS);
        ev.u.flagged.flagged_on = ph_date(2025, 1, 1);
        if (hub_codec_encode(env.codec, &ev, &buf, errstr, sizeof(errstr)) != HUB_OK)
            TEST_FAIL_("encode: %s", errstr);
        sent_us[i] = now_us();
        if (hub_producer_send(p, env.topics[0], RD_KAFKA_PARTITION_UA, ev.u.flagged.subject_key, 64,
                              buf.data, buf.len, NULL, errstr, sizeof(errstr)) != HUB_OK)
            TEST_FAIL_("produce: %s", errstr);
        nsent = i + 1;
    }
    hub_producer_flush(p, 30000, errstr, sizeof(errstr));
    lat_done = 1;
    pthread_join(th, NULL);
    long rss = rss_kb(env.pid);
    ph_stop(&env, SIGTERM);
    int64_t *lat = malloc((size_t)total * sizeof(*lat));
    const char *dump = getenv("BENCH_LATENCY_DUMP");
    FILE *df = dump ? fopen(dump, "w") : NULL;
    long nlat = 0;
    for (long i = 0; i < total; i += LAT_SAMPLE) {
        lat[nlat++] = seen_us[i] - sent_us[i];
        if (df)
            fprintf(df, "%.3f %.3f\n", (sent_us[i] - sent_us[0]) / 1e6, lat[nlat - 1] / 1000.0);
    }
    if (df)
        fclose(df);
    qsort(lat, (size_t)nlat, sizeof(*lat), cmp64);
    printf("latency produce -> visible in transitions_view at %d events/s for %d s (%ld events,"
           " every %dth watched): p50 %.1f ms, p99 %.1f ms, max %.1f ms; projector rss %ld kB\n",
           rate, seconds, total, LAT_SAMPLE, lat[nlat / 2] / 1000.0, lat[nlat * 99 / 100] / 1000.0,
           lat[nlat - 1] / 1000.0, rss);
    printf("  watcher: LISTEN for commits that wrote young_people, else a query every %d ms;"
           " %ld queries, %ld after a notification\n",
           poll_ms, lat_queries, lat_notified);
    /* The projector's part alone: produce call to the start of the committing transaction. */
    PGconn *c = ph_connect(env.db_admin);
    char q[1024];
    /* Only this phase's events: the throughput workload's have timestamps in the past. */
    snprintf(q, sizeof(q),
             "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),"
             " round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1), count(*)"
             " FROM (SELECT extract(epoch FROM received_at - occurred_at) * 1000 AS d"
             " FROM hub_event_log WHERE event_type = 'YoungPersonFlagged'"
             " AND occurred_at >= '%s') AS t",
             since);
    char *db = ph_rows(c, q);
    db[strcspn(db, "\n")] = '\0';
    printf("produce -> transaction in PostgreSQL (received_at - occurred_at), p50|p99 ms|events:"
           " %s\n",
           db);
    free(db);
    PQfinish(c);
    free(lat);
    hub_buf_free(&buf);
    hub_producer_destroy(p);
}

/* ---- apply modes ---- */

#define FLAG_SQL_LOGGED                                                                            \
    "WITH logged AS (INSERT INTO hub_event_log (event_id, event_type, topic, partition,"           \
    " kafka_offset, occurred_at, event) VALUES ($1::uuid, 'YoungPersonFlagged', 'bench', 0,"       \
    " $2::bigint, $3::timestamptz, $4::jsonb) ON CONFLICT (event_id) DO NOTHING RETURNING 1)"

/* The young_people merge of the apply modes: each mode's own copy of the rule as it stood
   when the modes were compared (the projector's is in services/projector/statements.h). */
#define MODE_MERGE_REST                                                                            \
    " first_flagged_on = LEAST(t.first_flagged_on, EXCLUDED.first_flagged_on),"                    \
    " last_flagged_on = GREATEST(t.last_flagged_on, EXCLUDED.last_flagged_on),"                    \
    " local_authority = CASE WHEN (EXCLUDED.last_flag_at, EXCLUDED.last_flag_event_id) >"          \
    "  (t.last_flag_at, t.last_flag_event_id) THEN EXCLUDED.local_authority"                       \
    "  ELSE t.local_authority END,"                                                                \
    " date_of_birth = CASE WHEN (EXCLUDED.last_flag_at, EXCLUDED.last_flag_event_id) >"            \
    "  (t.last_flag_at, t.last_flag_event_id) THEN EXCLUDED.date_of_birth"                         \
    "  ELSE t.date_of_birth END,"                                                                  \
    " last_flag_event_id = CASE WHEN (EXCLUDED.last_flag_at, EXCLUDED.last_flag_event_id) >"       \
    "  (t.last_flag_at, t.last_flag_event_id) THEN EXCLUDED.last_flag_event_id"                    \
    "  ELSE t.last_flag_event_id END,"                                                             \
    " last_flag_at = GREATEST(t.last_flag_at, EXCLUDED.last_flag_at), updated_at = now()"

#define MODE_MERGE_PERSON                                                                          \
    " ON CONFLICT (subject_key) DO UPDATE SET"                                                     \
    " risk_categories = hub_text_union(t.risk_categories, EXCLUDED.risk_categories),"              \
    " agencies = hub_text_union(t.agencies, EXCLUDED.agencies)," MODE_MERGE_REST

/* The same, skipping the union call when nothing is new. */
#define MODE_MERGE_PERSON_CONTAINED                                                                \
    " ON CONFLICT (subject_key) DO UPDATE SET"                                                     \
    " risk_categories = CASE WHEN EXCLUDED.risk_categories <@ t.risk_categories"                   \
    "  THEN t.risk_categories ELSE hub_text_union(t.risk_categories, EXCLUDED.risk_categories) "   \
    "END,"                                                                                         \
    " agencies = CASE WHEN EXCLUDED.agencies <@ t.agencies"                                        \
    "  THEN t.agencies ELSE hub_text_union(t.agencies, EXCLUDED.agencies) END," MODE_MERGE_REST

/* The projector's statement for YoungPersonFlagged (services/projector/apply.c). */
static const char pipeline_sql[] = FLAG_SQL_LOGGED
    ", flag AS (INSERT INTO young_person_flags (event_id, subject_key, source_agency,"
    " local_authority, flagged_on, risk_categories, occurred_at) SELECT $1::uuid, $5::text,"
    " $10::text, $6::text, $9::date, $8::text[], $3::timestamptz FROM"
    " logged) INSERT INTO young_people AS t (subject_key, local_authority, date_of_birth,"
    " risk_categories, agencies, first_flagged_on, last_flagged_on, last_flag_at,"
    " last_flag_event_id) SELECT $5::text, $6::text, $7::date, $8::text[],"
    " ARRAY[$10::text], $9::date, $9::date, $3::timestamptz, $1::uuid FROM "
    "logged" MODE_MERGE_PERSON;

/* The same effect, set-based, from a staging table filled by COPY. */
static const char staging_sql[] =
    "WITH new AS (INSERT INTO hub_event_log (event_id, event_type, topic, partition,"
    " kafka_offset, occurred_at, event) SELECT event_id, 'YoungPersonFlagged', 'bench', 0,"
    " kafka_offset, occurred_at, event FROM stage ON CONFLICT (event_id) DO NOTHING"
    " RETURNING event_id),"
    " s AS (SELECT st.* FROM stage st JOIN new USING (event_id)),"
    " f AS (INSERT INTO young_person_flags (event_id, subject_key, source_agency,"
    " local_authority, flagged_on, risk_categories, occurred_at) SELECT event_id, subject_key,"
    " agency, local_authority, flagged_on, risks, occurred_at FROM s),"
    " newest AS (SELECT DISTINCT ON (subject_key) subject_key, local_authority, date_of_birth,"
    " occurred_at, event_id FROM s ORDER BY subject_key, occurred_at DESC, event_id DESC),"
    " agg AS (SELECT subject_key, min(flagged_on) AS first_on, max(flagged_on) AS last_on,"
    " array_agg(DISTINCT agency ORDER BY agency) AS agencies FROM s GROUP BY subject_key),"
    " rk AS (SELECT subject_key, array_agg(DISTINCT r ORDER BY r) AS risks"
    " FROM s, unnest(s.risks) r GROUP BY subject_key)"
    " INSERT INTO young_people AS t (subject_key, local_authority, date_of_birth,"
    " risk_categories, agencies, first_flagged_on, last_flagged_on, last_flag_at,"
    " last_flag_event_id) SELECT a.subject_key, n.local_authority, n.date_of_birth, rk.risks,"
    " a.agencies, a.first_on, a.last_on, n.occurred_at, n.event_id FROM agg a JOIN newest n"
    " USING (subject_key) JOIN rk USING (subject_key)" MODE_MERGE_PERSON;

typedef struct {
    char id[HUB_UUID_SIZE], offset[24], at[40], *json, key[HUB_SUBJECT_KEY_SIZE], dob[16],
        risks[64], on[16];
    const char *la, *agency;
} flag_row_t;

static flag_row_t *make_flags(long n)
{
    flag_row_t *rows = calloc((size_t)n, sizeof(*rows));
    for (long i = 0; i < n; i++) {
        flag_row_t *r = &rows[i];
        hub_event_t ev;
        ph_id(r->id, "mode-%ld", i);
        ev = ph_event(HUB_EVENT_YOUNG_PERSON_FLAGGED, r->id,
                      1700000000000LL + (i * 7919 % 1000000) * 1000, wl_agencies[i % 5]);
        ph_subject(ev.u.flagged.subject_key, i * 31 % 20000);
        ev.u.flagged.local_authority = (hub_local_authority_t)(i % 3);
        ev.u.flagged.date_of_birth = ph_date(2008, 1 + i % 12, 1 + i % 28);
        ev.u.flagged.risk_categories = HUB_RISK_BIT(i % 12) | HUB_RISK_BIT((i / 12) % 12);
        ev.u.flagged.flagged_on = ph_date(2025, 1 + i % 12, 1);
        json_t *o = hub_event_to_json(&ev);
        r->json = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        snprintf(r->offset, sizeof(r->offset), "%ld", i);
        hub_timestamp_format(ev.occurred_at, r->at, sizeof(r->at));
        hub_strlcpy(r->key, ev.u.flagged.subject_key, sizeof(r->key));
        hub_date_format(ev.u.flagged.date_of_birth, r->dob, sizeof(r->dob));
        /* Sorted and distinct, as the projector sends them. */
        const char *r1 = hub_risk_category_name((hub_risk_category_t)(i % 12)),
                   *r2 = hub_risk_category_name((hub_risk_category_t)((i / 12) % 12));
        if (strcmp(r1, r2) > 0) {
            const char *tmp = r1;
            r1 = r2;
            r2 = tmp;
        }
        if (strcmp(r1, r2) == 0)
            snprintf(r->risks, sizeof(r->risks), "{%s}", r1);
        else
            snprintf(r->risks, sizeof(r->risks), "{%s,%s}", r1, r2);
        hub_date_format(ev.u.flagged.flagged_on, r->on, sizeof(r->on));
        r->la = hub_local_authority_name(ev.u.flagged.local_authority);
        r->agency = ev.source;
        r->agency = wl_agencies[i % 5];
    }
    return rows;
}

static PGconn *fresh_db(const char *prefix)
{
    char conninfo[1024];
    migrated_db(prefix, conninfo, sizeof(conninfo));
    PGconn *c = ph_connect(conninfo);
    PQsetNoticeProcessor(c, (PQnoticeProcessor)(void (*)(void))NULL, NULL);
    return c;
}

static double run_pipeline(PGconn *c, flag_row_t *rows, long n, int batch)
{
    PGresult *res = PQprepare(c, "flag", pipeline_sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        TEST_FAIL_("prepare: %s", PQerrorMessage(c));
    PQclear(res);
    double t0 = now_s();
    for (long b = 0; b < n; b += batch) {
        long end = b + batch < n ? b + batch : n, cmds = 0;
        PQenterPipelineMode(c);
        PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        cmds++;
        for (long i = b; i < end; i++) {
            flag_row_t *r = &rows[i];
            const char *v[10] = {r->id, r->offset, r->at,    r->json, r->key,
                                 r->la, r->dob,    r->risks, r->on,   r->agency};
            PQsendQueryPrepared(c, "flag", 10, v, NULL, NULL, 0);
            cmds++;
        }
        PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
        cmds++;
        PQpipelineSync(c);
        for (long k = 0; k < cmds; k++)
            while ((res = PQgetResult(c)) != NULL) {
                if (PQresultStatus(res) == PGRES_FATAL_ERROR)
                    TEST_FAIL_("pipeline: %s", PQresultErrorMessage(res));
                PQclear(res);
            }
        PQclear(PQgetResult(c));
        PQexitPipelineMode(c);
    }
    double t = now_s() - t0;
    if (getenv("BENCH_SHOW_PLANS")) {
        char *plans =
            ph_rows(c, "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements");
        printf("plans: %s", plans);
        free(plans);
    }
    return t;
}

/* Appends one COPY text field (escaping backslash, tab and newline). */
static size_t copy_field(char *out, const char *s, int last)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '\\' || *s == '\t' || *s == '\n')
            out[n++] = '\\';
        out[n++] = *s == '\t' ? 't' : *s == '\n' ? 'n' : *s;
    }
    out[n++] = last ? '\n' : '\t';
    return n;
}

static double run_staging(PGconn *c, flag_row_t *rows, long n, int batch)
{
    char *buf = malloc((size_t)batch * 2048);
    ph_exec(c, "CREATE TEMP TABLE stage (event_id uuid, kafka_offset bigint,"
               " occurred_at timestamptz, event jsonb, subject_key text, local_authority text,"
               " date_of_birth date, risks text[], flagged_on date, agency text)"
               " ON COMMIT DELETE ROWS");
    PGresult *res = PQprepare(c, "apply", staging_sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        TEST_FAIL_("prepare: %s", PQerrorMessage(c));
    PQclear(res);
    double t0 = now_s();
    for (long b = 0; b < n; b += batch) {
        long end = b + batch < n ? b + batch : n;
        size_t len = 0;
        for (long i = b; i < end; i++) {
            flag_row_t *r = &rows[i];
            const char *v[10] = {r->id, r->offset, r->at,    r->json, r->key,
                                 r->la, r->dob,    r->risks, r->on,   r->agency};
            for (int f = 0; f < 10; f++)
                len += copy_field(buf + len, v[f], f == 9);
        }
        ph_exec(c, "BEGIN");
        res = PQexec(c, "COPY stage FROM STDIN");
        PQclear(res);
        PQputCopyData(c, buf, (int)len);
        PQputCopyEnd(c, NULL);
        res = PQgetResult(c);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            TEST_FAIL_("copy: %s", PQerrorMessage(c));
        PQclear(res);
        res = PQexecPrepared(c, "apply", 0, NULL, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            TEST_FAIL_("apply: %s", PQerrorMessage(c));
        PQclear(res);
        ph_exec(c, "COMMIT");
    }
    free(buf);
    return now_s() - t0;
}

/* (c) the inserts set-based from arrays, the upserts per event: two round trips a batch. */
static const char arrays_log_sql[] =
    "INSERT INTO hub_event_log (event_id, event_type, topic, partition, kafka_offset,"
    " occurred_at, event) SELECT e, 'YoungPersonFlagged', 'bench', 0, o, a, j"
    " FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::jsonb[]) AS u (e, o, a, j)"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id";
static const char arrays_flags_sql[] =
    "INSERT INTO young_person_flags (event_id, subject_key, source_agency, local_authority,"
    " flagged_on, risk_categories, occurred_at)"
    " SELECT e, k, g, l, f, r::text[], a FROM unnest($1::uuid[], $2::text[], $3::text[],"
    " $4::text[], $5::date[], $6::text[], $7::timestamptz[]) AS u (e, k, g, l, f, r, a)";
static const char arrays_people_sql[] =
    "INSERT INTO young_people AS t (subject_key, local_authority, date_of_birth,"
    " risk_categories, agencies, first_flagged_on, last_flagged_on, last_flag_at,"
    " last_flag_event_id) VALUES ($1::text, $2::text, $3::date, $4::text[], ARRAY[$5::text],"
    " $6::date, $6::date, $7::timestamptz, $8::uuid)" MODE_MERGE_PERSON_CONTAINED;

/* Appends s as one element of a text[] literal (always quoted). */
static size_t array_elem(char *out, const char *s, int first)
{
    size_t n = 0;
    if (!first)
        out[n++] = ',';
    out[n++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n++] = '"';
    return n;
}

static double run_arrays(PGconn *c, flag_row_t *rows, long n, int batch)
{
    const char *names[3] = {"alog", "aflags", "apeople"};
    const char *sqls[3] = {arrays_log_sql, arrays_flags_sql, arrays_people_sql};
    char *arr[7];
    for (int i = 0; i < 3; i++) {
        PGresult *res = PQprepare(c, names[i], sqls[i], 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            TEST_FAIL_("prepare: %s", PQerrorMessage(c));
        PQclear(res);
    }
    for (int i = 0; i < 7; i++)
        arr[i] = malloc((size_t)batch * 1200 + 16);
    double t0 = now_s();
    for (long b = 0; b < n; b += batch) {
        long end = b + batch < n ? b + batch : n;
        size_t len[7] = {0};
        PGresult *res;
        for (int i = 0; i < 7; i++)
            arr[i][len[i]++] = '{';
        for (long i = b; i < end; i++) {
            flag_row_t *r = &rows[i];
            int first = i == b;
            len[0] += array_elem(arr[0] + len[0], r->id, first);
            len[1] += array_elem(arr[1] + len[1], r->offset, first);
            len[2] += array_elem(arr[2] + len[2], r->at, first);
            len[3] += array_elem(arr[3] + len[3], r->json, first);
        }
        for (int i = 0; i < 4; i++) {
            arr[i][len[i]++] = '}';
            arr[i][len[i]] = '\0';
        }
        /* Round 1: the event log, learning which events are new. */
        PQenterPipelineMode(c);
        PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        const char *v1[4] = {arr[0], arr[1], arr[2], arr[3]};
        PQsendQueryPrepared(c, "alog", 4, v1, NULL, NULL, 0);
        PQpipelineSync(c);
        char *fresh = calloc((size_t)(end - b), 1);
        for (int k = 0; k < 2; k++)
            while ((res = PQgetResult(c)) != NULL) {
                if (PQresultStatus(res) == PGRES_FATAL_ERROR)
                    TEST_FAIL_("arrays: %s", PQresultErrorMessage(res));
                /* RETURNING ids come back in insertion order of distinct rows: match by id. */
                for (int r = 0; k == 1 && r < PQntuples(res); r++)
                    for (long i = b; i < end; i++)
                        if (!fresh[i - b] && strcmp(rows[i].id, PQgetvalue(res, r, 0)) == 0) {
                            fresh[i - b] = 1;
                            break;
                        }
                PQclear(res);
            }
        PQclear(PQgetResult(c)); /* sync */
        /* Round 2: the new events' rows and state, and COMMIT. */
        for (int i = 0; i < 7; i++)
            len[i] = 0, arr[i][len[i]++] = '{';
        int nf = 0;
        for (long i = b; i < end; i++) {
            flag_row_t *r = &rows[i];
            if (!fresh[i - b])
                continue;
            const char *f[7] = {r->id, r->key, r->agency, r->la, r->on, r->risks, r->at};
            for (int j = 0; j < 7; j++)
                len[j] += array_elem(arr[j] + len[j], f[j], nf == 0);
            nf++;
        }
        for (int i = 0; i < 7; i++) {
            arr[i][len[i]++] = '}';
            arr[i][len[i]] = '\0';
        }
        long cmds = 0;
        if (nf) {
            const char *v2[7] = {arr[0], arr[1], arr[2], arr[3], arr[4], arr[5], arr[6]};
            PQsendQueryPrepared(c, "aflags", 7, v2, NULL, NULL, 0);
            cmds++;
        }
        for (long i = b; i < end; i++) {
            flag_row_t *r = &rows[i];
            if (!fresh[i - b])
                continue;
            const char *v3[8] = {r->key, r->la, r->dob, r->risks, r->agency, r->on, r->at, r->id};
            PQsendQueryPrepared(c, "apeople", 8, v3, NULL, NULL, 0);
            cmds++;
        }
        PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
        cmds++;
        PQpipelineSync(c);
        for (long k = 0; k < cmds; k++)
            while ((res = PQgetResult(c)) != NULL) {
                if (PQresultStatus(res) == PGRES_FATAL_ERROR)
                    TEST_FAIL_("arrays: %s", PQresultErrorMessage(res));
                PQclear(res);
            }
        PQclear(PQgetResult(c));
        PQexitPipelineMode(c);
        free(fresh);
    }
    for (int i = 0; i < 7; i++)
        free(arr[i]);
    return now_s() - t0;
}

static void apply_modes(long n)
{
    flag_row_t *rows = make_flags(n);
    const char *q = "SELECT md5(string_agg(format('%s|%s|%s|%s|%s|%s|%s', subject_key,"
                    " local_authority, date_of_birth, risk_categories, agencies,"
                    " first_flagged_on, last_flagged_on), ',' ORDER BY subject_key))"
                    " FROM young_people";
    /* The machine is shared: alternate the modes and keep each one's best of three. */
    for (int batch = 500; batch <= 2000; batch *= 4) {
        double best_a = 1e9, best_b = 1e9, best_c = 1e9;
        int same = 1;
        for (int round = 0; round < 3; round++) {
            PGconn *a = fresh_db("modea"), *b = fresh_db("modeb"), *cc = fresh_db("modec");
            double ta = run_pipeline(a, rows, n, batch);
            double tb = run_staging(b, rows, n, batch);
            double tc = run_arrays(cc, rows, n, batch);
            char *ha = ph_rows(a, q), *hb = ph_rows(b, q), *hc = ph_rows(cc, q);
            same = same && strcmp(ha, hb) == 0 && strcmp(ha, hc) == 0;
            best_c = tc < best_c ? tc : best_c;
            free(hc);
            PQfinish(cc);
            best_a = ta < best_a ? ta : best_a;
            best_b = tb < best_b ? tb : best_b;
            free(ha);
            free(hb);
            PQfinish(a);
            PQfinish(b);
        }
        printf("apply %ld YoungPersonFlagged, batches of %d (best of 3): pipeline %.0f events/s,"
               " COPY staging %.0f events/s, array inserts + pipelined upserts %.0f events/s,"
               " same young_people: %s\n",
               n, batch, (double)n / best_a, (double)n / best_b, (double)n / best_c,
               same ? "yes" : "NO");
    }
    for (long i = 0; i < n; i++)
        free(rows[i].json);
    free(rows);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "throughput") == 0) {
        throughput(atol(argv[2]));
        if (argc >= 5)
            latency(atoi(argv[3]), atoi(argv[4]));
    } else if (argc >= 4 && strcmp(argv[1], "latency") == 0) {
        latency(atoi(argv[2]), atoi(argv[3]));
    } else if (argc >= 3 && strcmp(argv[1], "apply-modes") == 0) {
        apply_modes(atol(argv[2]));
    } else {
        fprintf(stderr,
                "usage: %s throughput N [RATE SECONDS] | latency RATE SECONDS |"
                " apply-modes N\n",
                argv[0]);
        return 2;
    }
    if (env.producer)
        ph_teardown(&env);
    return 0;
}
