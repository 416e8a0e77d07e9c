/*
 * metrics.h: a small Prometheus metrics registry (text exposition format
 * 0.0.4) for the services' /metrics endpoint (see hub/http.h).
 *
 * A registry holds families (a name, a help text and a type: counter, gauge
 * or histogram) and, in each family, one series per set of label values.
 * Looking a series up creates it on first use and returns the same handle
 * afterwards; handles stay valid until hub_metrics_destroy(). Services look
 * their handles up once (or once per topic/partition) and keep them, because
 * a look-up takes the registry's lock while an update does not.
 *
 * Threads: updates are C11 atomics (histograms take a per-series lock so
 * that a scrape sees buckets, sum and count from the same instant), so the
 * service's loop may update while the HTTP thread renders.
 *
 * Label values name topics, partitions and reason classes: never a payload
 * or an identifier of a person.
 *
 * Update functions accept a NULL handle and do nothing: a look-up that
 * failed (a programming error, logged) never crashes the service.
 */
#ifndef HUB_METRICS_H
#define HUB_METRICS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hub_metrics_s hub_metrics_t;
typedef struct hub_counter_s hub_counter_t;
typedef struct hub_gauge_s hub_gauge_t;
typedef struct hub_histogram_s hub_histogram_t;

/* The most label pairs a series may have. */
#define HUB_METRICS_MAX_LABELS 8

/*
 * hub_metrics_new: an empty registry except for hub_up{service,version} = 1.
 * service is the program name (e.g. "hub-projector"), copied. NULL when out
 * of memory. Destroy with hub_metrics_destroy().
 */
hub_metrics_t *hub_metrics_new(const char *service);

/*
 * hub_metrics_destroy: frees the registry and every handle it gave out.
 * Stop the HTTP server that renders it first. NULL is fine.
 */
void hub_metrics_destroy(hub_metrics_t *m);

/*
 * hub_metrics_counter, hub_metrics_gauge: get-or-create the series of family
 * name with the label pairs that follow, as "name", "value", ..., ending
 * with NULL: hub_metrics_counter(m, "hub_events_in_total", "...", "topic",
 * topic, NULL). help is used when the family is created. Returns NULL (and
 * logs why) if the name or a label name is not valid Prometheus, the family
 * exists with another type or other label names, or memory ran out.
 */
hub_counter_t *hub_metrics_counter(hub_metrics_t *m, const char *name, const char *help, ...)
    __attribute__((sentinel));
hub_gauge_t *hub_metrics_gauge(hub_metrics_t *m, const char *name, const char *help, ...)
    __attribute__((sentinel));

/*
 * hub_metrics_histogram: as hub_metrics_counter for a histogram with the
 * given upper bounds (strictly increasing, finite; +Inf is implicit).
 * bounds NULL means hub_metrics_latency_ms_bounds. Every series of a family
 * must use the same bounds.
 */
hub_histogram_t *hub_metrics_histogram(hub_metrics_t *m, const char *name, const char *help,
                                       const double *bounds, size_t nbounds, ...)
    __attribute__((sentinel));

/* Bucket bounds for latencies in milliseconds: 1, 2, 5, ... 1000. */
extern const double hub_metrics_latency_ms_bounds[10];

/* hub_counter_add: adds n. Lock-free. */
void hub_counter_add(hub_counter_t *c, uint64_t n);

/* hub_counter_value: the current total (0 for NULL). */
uint64_t hub_counter_value(const hub_counter_t *c);

/* hub_gauge_set: sets the value and (again) exports the series. Lock-free. */
void hub_gauge_set(hub_gauge_t *g, double v);

/* hub_gauge_add: adds d (may be negative) and exports the series. Lock-free. */
void hub_gauge_add(hub_gauge_t *g, double d);

/*
 * hub_gauge_clear: stops exporting the series until the next set or add,
 * for values that no longer apply (e.g. the lag of a partition this
 * instance lost in a rebalance, which another instance now reports).
 */
void hub_gauge_clear(hub_gauge_t *g);

/* hub_gauge_value: the current value (0 for NULL or a cleared series). */
double hub_gauge_value(const hub_gauge_t *g);

/* hub_histogram_observe: counts v in its bucket and adds it to the sum. */
void hub_histogram_observe(hub_histogram_t *h, double v);

/* hub_histogram_count: observations so far (0 for NULL). */
uint64_t hub_histogram_count(const hub_histogram_t *h);

/*
 * hub_metrics_render: the whole registry in the Prometheus text format
 * 0.0.4 (families in creation order, series in creation order) into a new
 * NUL-terminated buffer *out the caller frees; *len gets its length.
 * 0 or HUB_ENOMEM.
 */
int hub_metrics_render(hub_metrics_t *m, char **out, size_t *len);

/*
 * The standard metrics every service exports (docs/operations.md says what
 * they mean). These look the series up with the shared name and help text,
 * so every service spells them the same way; call them once at start so the
 * series exist from zero.
 */

/* hub_events_in_total{topic}: messages consumed from topic. */
hub_counter_t *hub_metrics_events_in(hub_metrics_t *m, const char *topic);

/* hub_events_out_total{topic}: events produced to topic and delivered. */
hub_counter_t *hub_metrics_events_out(hub_metrics_t *m, const char *topic);

/* hub_dead_letters_total{class}: messages dead-lettered, by reason class. */
hub_counter_t *hub_metrics_dead_letters(hub_metrics_t *m, const char *reason_class);

/* hub_delivery_failures_total: Kafka deliveries or e-mails that failed. */
hub_counter_t *hub_metrics_delivery_failures(hub_metrics_t *m);

/* hub_batch_latency_ms: time to process one batch, in milliseconds. */
hub_histogram_t *hub_metrics_batch_latency(hub_metrics_t *m);

/*
 * hub_metrics_update_lag: sets hub_consumer_lag{topic,partition} for every
 * partition currently assigned to consumer: the high watermark minus the
 * consumer's position, both as librdkafka last saw them (no broker round
 * trip, so it is cheap enough to call every few seconds from the loop).
 * Partitions not yet fetched are left out; partitions no longer assigned
 * stop being exported. 0, or HUB_EKAFKA with the reason in errstr.
 */
int hub_metrics_update_lag(hub_metrics_t *m, rd_kafka_t *consumer, char *errstr,
                           size_t errstr_size);

#endif
