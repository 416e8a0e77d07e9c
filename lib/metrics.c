/* metrics.c: the Prometheus metrics registry and its text exposition (format 0.0.4). */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "hub/log.h"
#include "hub/metrics.h"

/* More buckets than this is a mistake, and the cap lets a scrape snapshot them on the stack. */
#define MAX_BOUNDS 64

#define LAG_NAME "hub_consumer_lag"

const double hub_metrics_latency_ms_bounds[10] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

typedef enum { FAM_COUNTER, FAM_GAUGE, FAM_HISTOGRAM } fam_type_t;

static const char *const fam_type_names[] = {"counter", "gauge", "histogram"};

/* What every series starts with; the typed handles below embed it first. */
typedef struct series_s {
    struct series_s *next;
    /* `a="x",b="y"` with values escaped, "" without labels: rendered as is
       and compared to find the series again. */
    char *labels;
} series_t;

struct hub_counter_s {
    series_t s;
    _Atomic uint64_t value;
};

/* A double kept as its bit pattern, because atomic operations on integers are lock-free everywhere.
 */
struct hub_gauge_s {
    series_t s;
    _Atomic uint64_t bits;
    atomic_bool present;
};

struct hub_histogram_s {
    series_t s;
    pthread_mutex_t lock;
    const double *bounds; /* the family's, immutable */
    size_t nbounds;
    uint64_t *counts; /* per bucket, not cumulative; [nbounds] is +Inf */
    double sum;
};

typedef struct family_s {
    struct family_s *next;
    fam_type_t type;
    char *name;
    char *help;
    char *label_names[HUB_METRICS_MAX_LABELS];
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    series_t *first;
    series_t **tail;
} family_t;

struct hub_metrics_s {
    pthread_mutex_t lock; /* guards the lists, never the values */
    family_t *first;
    family_t **tail;
};

/* A growing string for the exposition; a failed allocation sticks in oom. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} strbuf_t;

static void sb_reserve(strbuf_t *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sb_putn(strbuf_t *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(strbuf_t *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sb_putn(b, small, (size_t)n);
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/*
 * Escapes text for a HELP line (backslash and newline) or, when quote is
 * set, for a label value (also the double quote), as the format requires.
 */
static void sb_escaped(strbuf_t *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_puts(b, "\\\\");
        else if (*s == '\n')
            sb_puts(b, "\\n");
        else if (quote && *s == '"')
            sb_puts(b, "\\\"");
        else
            sb_putn(b, s, 1);
    }
}

/*
 * Numbers as Prometheus parses them: integers without an exponent (lags and
 * counts read better that way), otherwise the shortest text that reads back
 * as the same double.
 */
static void format_double(char *buf, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v);
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static double bits_to_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static uint64_t double_to_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

static int valid_name(const char *s, int colons)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || (colons && *s == ':')))
            return 0;
    return 1;
}

static void series_free(fam_type_t type, series_t *s)
{
    if (!s)
        return;
    if (type == FAM_HISTOGRAM) {
        hub_histogram_t *h = (hub_histogram_t *)s;
        pthread_mutex_destroy(&h->lock);
        free(h->counts);
    }
    free(s->labels);
    free(s);
}

static void family_free(family_t *f)
{
    if (!f)
        return;
    for (series_t *s = f->first, *next; s; s = next) {
        next = s->next;
        series_free(f->type, s);
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

static family_t *family_find(const hub_metrics_t *m, const char *name)
{
    for (family_t *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static family_t *family_new(fam_type_t type, const char *name, const char *help,
                            const char *const *pairs, size_t npairs, const double *bounds,
                            size_t nbounds)
{
    family_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->type = type;
    f->tail = &f->first;
    if (!(f->name = strdup(name)) || !(f->help = strdup(help ? help : "")))
        goto fail;
    for (size_t i = 0; i < npairs; i++) {
        if (!(f->label_names[i] = strdup(pairs[2 * i])))
            goto fail;
        f->nlabels = i + 1;
    }
    if (type == FAM_HISTOGRAM) {
        if (!(f->bounds = malloc(nbounds * sizeof(double))))
            goto fail;
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    return f;
fail:
    family_free(f);
    return NULL;
}

/* Why a family cannot take this look-up, or NULL if it can. */
static const char *family_mismatch(const family_t *f, fam_type_t type, const char *const *pairs,
                                   size_t npairs, const double *bounds, size_t nbounds)
{
    if (f->type != type)
        return "exists with another type";
    if (f->nlabels != npairs)
        return "exists with other label names";
    for (size_t i = 0; i < npairs; i++)
        if (strcmp(f->label_names[i], pairs[2 * i]) != 0)
            return "exists with other label names";
    if (type == FAM_HISTOGRAM &&
        (f->nbounds != nbounds || memcmp(f->bounds, bounds, nbounds * sizeof(double)) != 0))
        return "exists with other bucket bounds";
    return NULL;
}

/* Why these arguments cannot make a metric, or NULL if they can. */
static const char *check_args(fam_type_t type, const char *name, const char *const *pairs,
                              size_t npairs, const double *bounds, size_t nbounds)
{
    if (!valid_name(name, 1))
        return "is not a valid metric name";
    for (size_t i = 0; i < npairs; i++) {
        const char *ln = pairs[2 * i];
        if (!valid_name(ln, 0) || strncmp(ln, "__", 2) == 0)
            return "has an invalid label name";
        if (type == FAM_HISTOGRAM && strcmp(ln, "le") == 0)
            return "uses the label name le, which histograms reserve";
        for (size_t j = 0; j < i; j++)
            if (strcmp(ln, pairs[2 * j]) == 0)
                return "repeats a label name";
    }
    if (type == FAM_HISTOGRAM) {
        if (nbounds == 0 || nbounds > MAX_BOUNDS)
            return "needs between 1 and 64 bucket bounds";
        for (size_t i = 0; i < nbounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                return "needs finite, strictly increasing bucket bounds";
    }
    return NULL;
}

static series_t *series_new(const family_t *f, char *labels)
{
    series_t *s = NULL;

    switch (f->type) {
    case FAM_COUNTER:
        s = calloc(1, sizeof(hub_counter_t));
        break;
    case FAM_GAUGE: {
        hub_gauge_t *g = calloc(1, sizeof(*g));
        if (g) {
            atomic_init(&g->bits, double_to_bits(0.0));
            atomic_init(&g->present, true);
        }
        s = (series_t *)g;
        break;
    }
    case FAM_HISTOGRAM: {
        hub_histogram_t *h = calloc(1, sizeof(*h));
        if (!h)
            break;
        h->counts = calloc(f->nbounds + 1, sizeof(uint64_t));
        if (!h->counts || pthread_mutex_init(&h->lock, NULL) != 0) {
            free(h->counts);
            free(h);
            break;
        }
        h->bounds = f->bounds;
        h->nbounds = f->nbounds;
        s = (series_t *)h;
        break;
    }
    }
    if (s)
        s->labels = labels;
    return s;
}

/*
 * The get-or-create behind every look-up. pairs holds npairs (name, value)
 * pairs. Returns the series, or NULL after logging why.
 */
static series_t *lookup(hub_metrics_t *m, fam_type_t type, const char *name, const char *help,
                        const char *const *pairs, size_t npairs, const double *bounds,
                        size_t nbounds)
{
    strbuf_t key = {0};
    family_t *f = NULL, *created = NULL;
    series_t *s = NULL;
    const char *why;

    if (!m)
        return NULL;
    if ((why = check_args(type, name, pairs, npairs, bounds, nbounds)))
        goto invalid;
    for (size_t i = 0; i < npairs; i++) {
        sb_printf(&key, "%s%s=\"", i ? "," : "", pairs[2 * i]);
        sb_escaped(&key, pairs[2 * i + 1], 1);
        sb_puts(&key, "\"");
    }
    sb_puts(&key, "");
    if (key.oom)
        goto oom;

    pthread_mutex_lock(&m->lock);
    f = family_find(m, name);
    if (f && (why = family_mismatch(f, type, pairs, npairs, bounds, nbounds))) {
        pthread_mutex_unlock(&m->lock);
        goto invalid;
    }
    if (f)
        for (s = f->first; s; s = s->next)
            if (strcmp(s->labels, key.p) == 0)
                break;
    if (!s) {
        if (!f && !(f = created = family_new(type, name, help, pairs, npairs, bounds, nbounds))) {
            pthread_mutex_unlock(&m->lock);
            goto oom;
        }
        if (!(s = series_new(f, key.p))) {
            pthread_mutex_unlock(&m->lock);
            family_free(created);
            goto oom;
        }
        key.p = NULL; /* the series owns it now */
        *f->tail = s;
        f->tail = &s->next;
        if (created) {
            *m->tail = created;
            m->tail = &created->next;
        }
    }
    pthread_mutex_unlock(&m->lock);
    free(key.p);
    return s;

invalid:
    hub_log_error("event=metric_rejected metric=%s reason=\"%s\"", name ? name : "(null)", why);
    free(key.p);
    return NULL;
oom:
    hub_log_error("event=metric_rejected metric=%s reason=\"out of memory\"", name);
    free(key.p);
    return NULL;
}

/*
 * lookup() for the NULL-terminated name/value arguments in ap; NULL after
 * logging why when there are too many or a name has no value.
 */
static series_t *lookup_va(hub_metrics_t *m, fam_type_t type, const char *name, const char *help,
                           const double *bounds, size_t nbounds, va_list ap)
{
    const char *pairs[2 * HUB_METRICS_MAX_LABELS + 1];
    size_t n = 0;

    while (n <= 2 * HUB_METRICS_MAX_LABELS && (pairs[n] = va_arg(ap, const char *)))
        n++;
    if (n > 2 * HUB_METRICS_MAX_LABELS) {
        hub_log_error("event=metric_rejected metric=%s reason=\"more than %d labels\"",
                      name ? name : "(null)", HUB_METRICS_MAX_LABELS);
        return NULL;
    }
    if (n % 2) {
        hub_log_error("event=metric_rejected metric=%s reason=\"label %s has no value\"",
                      name ? name : "(null)", pairs[n - 1]);
        return NULL;
    }
    return lookup(m, type, name, help, pairs, n / 2, bounds, nbounds);
}

hub_counter_t *hub_metrics_counter(hub_metrics_t *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    series_t *s = lookup_va(m, FAM_COUNTER, name, help, NULL, 0, ap);
    va_end(ap);
    return (hub_counter_t *)s;
}

hub_gauge_t *hub_metrics_gauge(hub_metrics_t *m, const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    series_t *s = lookup_va(m, FAM_GAUGE, name, help, NULL, 0, ap);
    va_end(ap);
    return (hub_gauge_t *)s;
}

hub_histogram_t *hub_metrics_histogram(hub_metrics_t *m, const char *name, const char *help,
                                       const double *bounds, size_t nbounds, ...)
{
    va_list ap;
    if (!bounds) {
        bounds = hub_metrics_latency_ms_bounds;
        nbounds = HUB_ARRAY_LEN(hub_metrics_latency_ms_bounds);
    }
    va_start(ap, nbounds);
    series_t *s = lookup_va(m, FAM_HISTOGRAM, name, help, bounds, nbounds, ap);
    va_end(ap);
    return (hub_histogram_t *)s;
}

hub_metrics_t *hub_metrics_new(const char *service)
{
    hub_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->tail = &m->first;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    hub_gauge_t *up = hub_metrics_gauge(m, "hub_up", "1 while the service runs", "service",
                                        service ? service : "", "version", HUB_VERSION, NULL);
    if (!up)
        goto fail;
    hub_gauge_set(up, 1);
    return m;
fail:
    hub_metrics_destroy(m);
    return NULL;
}

void hub_metrics_destroy(hub_metrics_t *m)
{
    if (!m)
        return;
    for (family_t *f = m->first, *next; f; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void hub_counter_add(hub_counter_t *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t hub_counter_value(const hub_counter_t *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

void hub_gauge_set(hub_gauge_t *g, double v)
{
    if (!g)
        return;
    atomic_store_explicit(&g->bits, double_to_bits(v), memory_order_relaxed);
    atomic_store_explicit(&g->present, true, memory_order_release);
}

void hub_gauge_add(hub_gauge_t *g, double d)
{
    if (!g)
        return;
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old,
                                                  double_to_bits(bits_to_double(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    atomic_store_explicit(&g->present, true, memory_order_release);
}

void hub_gauge_clear(hub_gauge_t *g)
{
    if (g)
        atomic_store_explicit(&g->present, false, memory_order_release);
}

double hub_gauge_value(const hub_gauge_t *g)
{
    if (!g || !atomic_load_explicit(&g->present, memory_order_acquire))
        return 0;
    return bits_to_double(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

void hub_histogram_observe(hub_histogram_t *h, double v)
{
    size_t i = 0;
    if (!h)
        return;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    pthread_mutex_lock(&h->lock);
    h->counts[i]++;
    h->sum += v;
    pthread_mutex_unlock(&h->lock);
}

uint64_t hub_histogram_count(const hub_histogram_t *h)
{
    uint64_t n = 0;
    if (!h)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&h->lock);
    for (size_t i = 0; i <= h->nbounds; i++)
        n += h->counts[i];
    pthread_mutex_unlock((pthread_mutex_t *)&h->lock);
    return n;
}

/* name{labels} or name{labels,extra}, braces left out when both are empty. */
static void sb_series_name(strbuf_t *b, const char *name, const char *suffix, const char *labels,
                           const char *extra)
{
    sb_puts(b, name);
    sb_puts(b, suffix);
    if (!*labels && !extra)
        return;
    sb_puts(b, "{");
    sb_puts(b, labels);
    if (extra) {
        if (*labels)
            sb_puts(b, ",");
        sb_puts(b, extra);
    }
    sb_puts(b, "}");
}

static void render_histogram(strbuf_t *b, const family_t *f, hub_histogram_t *h)
{
    uint64_t counts[MAX_BOUNDS + 1], cum = 0;
    double sum;
    char num[64], le[80];

    /* One snapshot under the series lock, so +Inf, _count and _sum agree. */
    pthread_mutex_lock(&h->lock);
    memcpy(counts, h->counts, (h->nbounds + 1) * sizeof(uint64_t));
    sum = h->sum;
    pthread_mutex_unlock(&h->lock);

    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += counts[i];
        if (i < h->nbounds)
            format_double(num, sizeof(num), h->bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        snprintf(le, sizeof(le), "le=\"%s\"", num);
        sb_series_name(b, f->name, "_bucket", h->s.labels, le);
        sb_printf(b, " %" PRIu64 "\n", cum);
    }
    format_double(num, sizeof(num), sum);
    sb_series_name(b, f->name, "_sum", h->s.labels, NULL);
    sb_printf(b, " %s\n", num);
    sb_series_name(b, f->name, "_count", h->s.labels, NULL);
    sb_printf(b, " %" PRIu64 "\n", cum);
}

static void render_family(strbuf_t *b, const family_t *f)
{
    char num[64];
    int header = 0;

    for (series_t *s = f->first; s; s = s->next) {
        if (f->type == FAM_GAUGE &&
            !atomic_load_explicit(&((hub_gauge_t *)s)->present, memory_order_acquire))
            continue;
        if (!header) {
            sb_printf(b, "# HELP %s ", f->name);
            sb_escaped(b, f->help, 0);
            sb_printf(b, "\n# TYPE %s %s\n", f->name, fam_type_names[f->type]);
            header = 1;
        }
        switch (f->type) {
        case FAM_COUNTER:
            sb_series_name(b, f->name, "", s->labels, NULL);
            sb_printf(b, " %" PRIu64 "\n", hub_counter_value((hub_counter_t *)s));
            break;
        case FAM_GAUGE:
            format_double(num, sizeof(num),
                          bits_to_double(atomic_load_explicit(&((hub_gauge_t *)s)->bits,
                                                              memory_order_relaxed)));
            sb_series_name(b, f->name, "", s->labels, NULL);
            sb_printf(b, " %s\n", num);
            break;
        case FAM_HISTOGRAM:
            render_histogram(b, f, (hub_histogram_t *)s);
            break;
        }
    }
}

int hub_metrics_render(hub_metrics_t *m, char **out, size_t *len)
{
    strbuf_t b = {0};

    *out = NULL;
    if (len)
        *len = 0;
    sb_puts(&b, "");
    if (m) {
        pthread_mutex_lock(&m->lock);
        for (const family_t *f = m->first; f; f = f->next)
            render_family(&b, f);
        pthread_mutex_unlock(&m->lock);
    }
    if (b.oom) {
        free(b.p);
        return HUB_ENOMEM;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return HUB_OK;
}

hub_counter_t *hub_metrics_events_in(hub_metrics_t *m, const char *topic)
{
    return hub_metrics_counter(m, "hub_events_in_total", "Messages consumed, by source topic",
                               "topic", topic, NULL);
}

hub_counter_t *hub_metrics_events_out(hub_metrics_t *m, const char *topic)
{
    return hub_metrics_counter(m, "hub_events_out_total",
                               "Events produced and delivered, by destination topic", "topic",
                               topic, NULL);
}

hub_counter_t *hub_metrics_dead_letters(hub_metrics_t *m, const char *reason_class)
{
    return hub_metrics_counter(m, "hub_dead_letters_total",
                               "Messages sent to the dead-letter topic, by reason class", "class",
                               reason_class, NULL);
}

hub_counter_t *hub_metrics_delivery_failures(hub_metrics_t *m)
{
    return hub_metrics_counter(m, "hub_delivery_failures_total",
                               "Kafka deliveries or e-mails that failed after all retries", NULL);
}

hub_histogram_t *hub_metrics_batch_latency(hub_metrics_t *m)
{
    return hub_metrics_histogram(m, "hub_batch_latency_ms",
                                 "Time to process one batch, from first message to commit, in ms",
                                 NULL, 0, NULL);
}

static hub_gauge_t *lag_gauge(hub_metrics_t *m, const char *topic, int32_t partition)
{
    char p[16];
    snprintf(p, sizeof(p), "%" PRId32, partition);
    return hub_metrics_gauge(m, LAG_NAME,
                             "Messages in the partition not yet consumed by this instance", "topic",
                             topic, "partition", p, NULL);
}

int hub_metrics_update_lag(hub_metrics_t *m, rd_kafka_t *consumer, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    hub_gauge_t **current = NULL;
    size_t ncurrent = 0;
    rd_kafka_resp_err_t err;
    int ret = HUB_OK;

    if (!m)
        return HUB_OK;
    if ((err = rd_kafka_assignment(consumer, &parts))) {
        ret = hub_errf(errstr, errstr_size, HUB_EKAFKA, "assignment: %s", rd_kafka_err2str(err));
        goto out;
    }
    /* Per-partition errors leave the offset invalid, which the loop skips. */
    rd_kafka_position(consumer, parts);
    if (!(current = calloc((size_t)parts->cnt + 1, sizeof(*current)))) {
        ret = hub_errf(errstr, errstr_size, HUB_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t lo, hi;
        hub_gauge_t *g;

        if (tp->offset < 0 ||
            rd_kafka_get_watermark_offsets(consumer, tp->topic, tp->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        if (hi < 0 || !(g = lag_gauge(m, tp->topic, tp->partition)))
            continue;
        hub_gauge_set(g, hi > tp->offset ? (double)(hi - tp->offset) : 0.0);
        current[ncurrent++] = g;
    }

    /* Partitions this instance no longer reads: another instance reports them now. */
    pthread_mutex_lock(&m->lock);
    const family_t *f = family_find(m, LAG_NAME);
    for (series_t *s = f && f->type == FAM_GAUGE ? f->first : NULL; s; s = s->next) {
        size_t j = 0;
        while (j < ncurrent && (series_t *)current[j] != s)
            j++;
        if (j == ncurrent)
            hub_gauge_clear((hub_gauge_t *)s);
    }
    pthread_mutex_unlock(&m->lock);

out:
    free(current);
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    return ret;
}
