/*
 * bench_planner.c: hub-planner's throughput (flags in, alerts out, Kafka
 * transactions on) side by side with kcat piping the same topic into
 * another topic, in the same run against the same broker.
 *
 *   bench-planner --planner PATH [--flags N] [--batch-max B] [--runs R]
 *
 * Needs HUB_KAFKA_BOOTSTRAP (bench/planner/run.sh starts a broker) and
 * HUB_DATA_DIR (for schemas/). HUB_BENCH_KAFKA may add libconfig settings to
 * the planner's kafka { } group, for experiments (e.g. "linger_ms = 0;").
 * Creates fresh topics on every run, so runs never see each other's data.
 * Prints one result line per measurement and a summary; exits 1 if anything
 * went wrong (a count that does not match).
 *
 * kcat's rate is its whole pipe, start to exit. The planner's is from its
 * first commit to the moment its group's committed offsets reach the end of
 * the flags topic (polled every 20 ms); the line "with start" adds the
 * planner's start-up (connecting, joining the group, reading its state
 * back).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/codec.h"
#include "hub/common.h"
#include "hub/date.h"
#include "hub/events.h"
#include "hub/kafka.h"
#include "hub/log.h"

/* kcat splits its input on these; long and improbable inside Avro binary. */
#define KCAT_DELIM     "\\x1e\\x1f\\x1e\\x1f\\x1e\\x1f\\x1e"
#define KCAT_KEY_DELIM "\\x1d\\x1c\\x1d\\x1c\\x1d\\x1c\\x1d"

static const char *bootstrap;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-planner: %s: %s\n", what, why);
    exit(1);
}

static double seconds_since(int64_t start_ms)
{
    return (double)(hub_monotonic_ms() - start_ms) / 1000.0;
}

/* CPU seconds (user + system) of every child waited for so far. */
static double children_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static hub_props_t props(void)
{
    hub_props_t p = {0};
    hub_props_set(&p, "bootstrap.servers", bootstrap);
    return p;
}

static void create_topic(const char *name, int partitions)
{
    hub_props_t pr = props();
    char errstr[512];
    rd_kafka_conf_t *conf = hub_kafka_conf_new(&pr, NULL, errstr, sizeof(errstr));
    rd_kafka_t *rk;
    hub_props_clear(&pr);
    if (!conf || !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))))
        die("admin client", errstr);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, errstr, sizeof(errstr));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr =
        ev ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt)
           : NULL;
    if (!ev || rd_kafka_event_error(ev) || cnt != 1 || rd_kafka_topic_result_error(tr[0]))
        die(name,
            ev ? (cnt ? rd_kafka_topic_result_error_string(tr[0]) : rd_kafka_event_error_string(ev))
               : "no answer to CreateTopics");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}

/* A handle for watermark and committed-offset queries (no subscription). */
static rd_kafka_t *query_handle(const char *group)
{
    hub_props_t pr = props();
    char errstr[512];
    hub_props_set(&pr, "group.id", group);
    rd_kafka_conf_t *conf = hub_kafka_conf_new(&pr, NULL, errstr, sizeof(errstr));
    hub_props_clear(&pr);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)) : NULL;
    if (!rk)
        die("query client", errstr);
    return rk;
}

/* Sum of high watermarks: the record count of a topic written without transactions. */
static long long high_watermarks(rd_kafka_t *rk, const char *topic, int partitions)
{
    long long sum = 0;
    for (int i = 0; i < partitions; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, 10000))
            die(topic, "watermarks unavailable");
        sum += hi;
    }
    return sum;
}

/* Sum of group's committed offsets on topic (-1 when none yet). */
static long long committed(rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    long long sum = 0;
    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(l, topic, i);
    if (rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < partitions; i++)
            sum += l->elems[i].offset > 0 ? l->elems[i].offset : 0;
    rd_kafka_topic_partition_list_destroy(l);
    return sum;
}

/* Publishes n flags: nearly all aged 16 to 18 at the flag (so they raise an alert), a few
   under 16, and one in ten a re-flag of an earlier young person. Returns the payload bytes. */
static long long publish(const char *topic, int n)
{
    static const char *const agencies[] = {"LEICESTER_CS", "LEICESTERSHIRE_CS", "RUTLAND_CS",
                                           "LEICS_POLICE", "LLR_ICB"};
    hub_props_t pr = props();
    char errstr[512], dir[1024];
    hub_codec_opts_t copts = {0};
    hub_buf_t buf = {0};
    long long bytes = 0;
    unsigned long long x = 0x9e3779b97f4a7c15ULL;
    hub_date_t today = hub_date_london(hub_now_ms());

    snprintf(dir, sizeof(dir), "%s/schemas", hub_data_dir());
    copts.schemas_dir = dir;
    hub_codec_t *c = hub_codec_new(&copts, errstr, sizeof(errstr));
    if (!c)
        die("codec", errstr);
    hub_props_set(&pr, "linger.ms", "20");
    hub_props_set(&pr, "batch.num.messages", "10000");
    hub_producer_t *p = hub_producer_new(&pr, NULL, errstr, sizeof(errstr));
    hub_props_clear(&pr);
    if (!p)
        die("producer", errstr);
    for (int k = 0; k < n; k++) {
        hub_event_t ev;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int who = (x % 10 == 0 && k > 0) ? (int)(x / 10 % (unsigned)k) : k;
        memset(&ev, 0, sizeof(ev));
        ev.type = HUB_EVENT_YOUNG_PERSON_FLAGGED;
        hub_uuid_v4(ev.event_id);
        ev.occurred_at = hub_now_ms();
        hub_strlcpy(ev.source, agencies[x % HUB_ARRAY_LEN(agencies)], sizeof(ev.source));
        snprintf(ev.u.flagged.subject_key, sizeof(ev.u.flagged.subject_key), "%064x",
                 (unsigned)who * 2654435761u);
        ev.u.flagged.local_authority = (hub_local_authority_t)(who % HUB_LA__COUNT);
        /* The same young person keeps a date of birth: 15.5 to 18 years before today. */
        ev.u.flagged.date_of_birth = today - 5660 - (hub_date_t)((unsigned)who * 40503u % 913u);
        ev.u.flagged.flagged_on = today;
        ev.u.flagged.risk_categories = HUB_RISK_BIT(x % HUB_RISK__COUNT) |
                                       (x % 5 == 0 ? HUB_RISK_BIT(HUB_RISK_LOOKED_AFTER) : 0);
        if (hub_codec_encode(c, &ev, &buf, errstr, sizeof(errstr)) ||
            hub_producer_send(p, topic, RD_KAFKA_PARTITION_UA, ev.u.flagged.subject_key, 64,
                              buf.data, buf.len, NULL, errstr, sizeof(errstr)))
            die("publishing flags", errstr);
        bytes += (long long)buf.len;
    }
    if (hub_producer_flush(p, 120000, errstr, sizeof(errstr)))
        die("publishing flags", errstr);
    hub_producer_destroy(p);
    hub_buf_free(&buf);
    hub_codec_destroy(c);
    return bytes;
}

/* kcat consumes topic from the beginning to its end and pipes it into out; *cpu gets both
   kcats' CPU seconds. */
static double run_kcat(const char *in, const char *out, int partitions, long long expect,
                       double *cpu)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "kcat -b %s -C -t %s -o beginning -e -q -K '" KCAT_KEY_DELIM "' -D '" KCAT_DELIM
             "' | kcat -b %s -P -t %s -K '" KCAT_KEY_DELIM "' -D '" KCAT_DELIM "'",
             bootstrap, in, bootstrap, out);
    int64_t start = hub_monotonic_ms();
    double cpu0 = children_cpu();
    int rc = system(cmd);
    double secs = seconds_since(start);
    *cpu = children_cpu() - cpu0;
    if (rc != 0)
        die("kcat pipe", "exited non-zero");
    rd_kafka_t *rk = query_handle("bench-kcat-check");
    long long got = high_watermarks(rk, out, partitions);
    rd_kafka_destroy(rk);
    if (got != expect) {
        char why[128];
        snprintf(why, sizeof(why), "copied %lld records, expected %lld", got, expect);
        die("kcat pipe", why);
    }
    return secs;
}

typedef struct {
    double total_s;  /* from the planner's start to the last commit */
    double steady_s; /* from the first commit to the last */
    long long steady_flags;
    double cpu_s; /* the planner's CPU seconds, start-up and shutdown included */
} planner_result_t;

static planner_result_t run_planner(const char *bin, const char *flags, const char *alerts,
                                    const char *dlq, int partitions, long long n, int batch_max,
                                    int run)
{
    char conf[512], text[2048], group[128], log[512];
    planner_result_t r = {0};
    FILE *f;

    snprintf(group, sizeof(group), "bench-planner-%d-%lld", run, (long long)hub_now_ms());
    snprintf(conf, sizeof(conf), "/tmp/bench-planner-%d.conf", (int)getpid());
    snprintf(log, sizeof(log), "/tmp/bench-planner-%d.log", (int)getpid());
    snprintf(text, sizeof(text),
             "kafka = { bootstrap_servers = \"%s\"; %s };\n"
             "topics = { risk_flags = \"%s\"; transition_alerts = \"%s\"; dead_letters = \"%s\"; "
             "};\n"
             "log = { level = \"warn\"; };\n"
             "planner = { group_id = \"%s\"; transactional_id = \"%s\"; batch_max = %d;\n"
             "            http_listen = \"\"; };\n",
             bootstrap, getenv("HUB_BENCH_KAFKA") ? getenv("HUB_BENCH_KAFKA") : "", flags, alerts,
             dlq, group, group, batch_max);
    if (!(f = fopen(conf, "w")) || fputs(text, f) < 0 || fclose(f) != 0)
        die(conf, "cannot write");

    rd_kafka_t *rk = query_handle(group);
    int64_t start = hub_monotonic_ms(), first = 0;
    long long at_first = 0;
    double cpu0 = children_cpu();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(127);
        execl(bin, "hub-planner", "--config", conf, (char *)NULL);
        _exit(127);
    }
    for (;;) {
        long long done = committed(rk, flags, partitions);
        if (done > 0 && !first) {
            first = hub_monotonic_ms();
            at_first = done;
        }
        if (done >= n)
            break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            die("hub-planner", "exited early (see /tmp/bench-planner-*.log)");
        usleep(20 * 1000);
    }
    r.total_s = seconds_since(start);
    r.steady_s = seconds_since(first);
    r.steady_flags = n - at_first;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    r.cpu_s = children_cpu() - cpu0;
    rd_kafka_destroy(rk);
    unlink(conf);
    return r;
}

/* Alerts committed to topic (read_committed, to the end). */
static long long count_committed(const char *topic, int partitions)
{
    hub_props_t pr = props();
    char errstr[512];
    hub_props_set(&pr, "group.id", "bench-count");
    hub_props_set(&pr, "enable.partition.eof", "true");
    hub_props_set(&pr, "isolation.level", "read_committed");
    rd_kafka_conf_t *conf = hub_kafka_conf_new(&pr, NULL, errstr, sizeof(errstr));
    hub_props_clear(&pr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    long long n = 0;
    int eofs = 0;
    rd_kafka_poll_set_consumer(rk);
    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (eofs < partitions) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eofs++;
        else if (!m->err)
            n++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"planner", required_argument, NULL, 'p'},
                                         {"flags", required_argument, NULL, 'n'},
                                         {"batch-max", required_argument, NULL, 'b'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    const char *planner = NULL;
    int n = 200000, batch_max = 10000, runs = 3, ch;
    const int partitions = 3;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            planner = optarg;
            break;
        case 'n':
            n = atoi(optarg);
            break;
        case 'b':
            batch_max = atoi(optarg);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: bench-planner --planner PATH [--flags N] [--batch-max B] "
                            "[--runs R]\n");
            return 2;
        }
    }
    bootstrap = getenv("HUB_KAFKA_BOOTSTRAP");
    if (!planner || !bootstrap || n <= 0 || runs <= 0 || batch_max <= 0) {
        fprintf(stderr, "bench-planner: --planner and HUB_KAFKA_BOOTSTRAP are required\n");
        return 2;
    }
    hub_log_init("bench-planner", HUB_LOG_WARN);

    double best_kcat = 0, best_planner = 0, *ratios = calloc((size_t)runs, sizeof(double));
    if (!ratios)
        die("bench-planner", "out of memory");
    for (int run = 1; run <= runs; run++) {
        char flags[128], alerts[128], dlq[128], copy[128];
        long long stamp = hub_now_ms();
        snprintf(flags, sizeof(flags), "bench.flags.%lld", stamp);
        snprintf(alerts, sizeof(alerts), "bench.alerts.%lld", stamp);
        snprintf(dlq, sizeof(dlq), "bench.dlq.%lld", stamp);
        snprintf(copy, sizeof(copy), "bench.kcat.%lld", stamp);
        create_topic(flags, partitions);
        create_topic(alerts, partitions);
        create_topic(dlq, partitions);
        create_topic(copy, partitions);

        long long bytes = publish(flags, n);
        double kcat_cpu;
        double kcat_s = run_kcat(flags, copy, partitions, n, &kcat_cpu);
        planner_result_t pr =
            run_planner(planner, flags, alerts, dlq, partitions, n, batch_max, run);
        long long nalerts = count_committed(alerts, partitions);
        double kcat_rate = n / kcat_s, planner_rate = pr.steady_flags / pr.steady_s;

        printf("run %d: %d flags (%.0f bytes each)\n", run, n, (double)bytes / n);
        printf("  kcat -C | kcat -P       %7.2f s  %9.0f msgs/s   cpu %5.2f s = %5.1f us/msg\n",
               kcat_s, kcat_rate, kcat_cpu, 1e6 * kcat_cpu / n);
        printf("  hub-planner (steady)    %7.2f s  %9.0f flags/s  cpu %5.2f s = %5.1f us/flag "
               "(%lld alerts committed)\n",
               pr.steady_s, planner_rate, pr.cpu_s, 1e6 * pr.cpu_s / n, nalerts);
        printf("  hub-planner (with start)%7.2f s  %9.0f flags/s\n", pr.total_s, n / pr.total_s);
        printf("  planner / kcat          %7.0f %%\n", 100.0 * planner_rate / kcat_rate);
        fflush(stdout);
        if (nalerts <= 0) {
            fprintf(stderr, "bench-planner: no alerts were committed\n");
            return 1;
        }
        ratios[run - 1] = planner_rate / kcat_rate;
        if (kcat_rate > best_kcat)
            best_kcat = kcat_rate;
        if (planner_rate > best_planner)
            best_planner = planner_rate;
    }
    /* The machine may be shared: the ratio within each run, where both met the same load,
       says more than the best of each. */
    for (int i = 1; i < runs; i++)
        for (int j = i; j > 0 && ratios[j - 1] > ratios[j]; j--) {
            double t = ratios[j];
            ratios[j] = ratios[j - 1];
            ratios[j - 1] = t;
        }
    printf("best of %d: kcat %.0f msgs/s, hub-planner %.0f flags/s: %.0f %% of kcat\n", runs,
           best_kcat, best_planner, 100.0 * best_planner / best_kcat);
    printf("planner / kcat within a run: median %.0f %%, lowest %.0f %%, highest %.0f %%\n",
           100.0 * (runs % 2 ? ratios[runs / 2] : (ratios[runs / 2 - 1] + ratios[runs / 2]) / 2),
           100.0 * ratios[0], 100.0 * ratios[runs - 1]);
    free(ratios);
    return 0;
}
