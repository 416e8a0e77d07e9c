/*
 * projector.h: the pieces of hub-projector, shared between its files.
 *
 *   main.c     settings, start-up (migrations, connections) and the loop
 *   batch.c    messages into batch items: decoded events, rejects, dead letters
 *   apply.c    a batch into PostgreSQL: one pipelined transaction with offsets
 *   sets.c     the batch collapsed per table and key: one statement per table
 *   offsets.c  partition positions kept in PostgreSQL; rebalances; resync
 *   recent.c   the event ids committed lately, to find duplicates without a query
 *   prune.c    event-log retention
 */
#ifndef HUB_PROJECTOR_H
#define HUB_PROJECTOR_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "hub/codec.h"
#include "hub/events.h"
#include "hub/http.h"
#include "hub/kafka.h"
#include "hub/metrics.h"
#include "hub/service.h"

#define PROJECTOR_SERVICE "hub-projector"

typedef struct projector_conf_s {
    char *group_id;
    char **topics; /* NULL-terminated; NULL: every topic of the common settings */
    size_t ntopics;
    long long batch_max_events;
    long long batch_max_ms;
    long long retention_days;
    long long prune_interval_s;
    long long retry_max_ms;
    long long startup_wait_ms;
    long long memory_reserve_mb;
    long long connections;
    char *migrations_dir;
    char *migrate_conninfo;
    char *migrate_password;
    int migrate;
    int commit_kafka;
    hub_http_conf_t http;
} projector_conf_t;

/* The dead-letter reason classes (hub.errors.class), for the per-class counters. */
#define PROJECTOR_DLQ_CLASSES  "decode", "schema", "validation", "database", "processing"
#define PROJECTOR_NDLQ_CLASSES 5

/* A partition we own, and the position PostgreSQL holds for it. */
typedef struct projector_part_s {
    char *topic;
    int32_t partition;
    int64_t expected; /* next offset stored in PostgreSQL; -1 none stored */
    int synced;       /* expected is known and the consumer is positioned there */
    int lane;         /* the lane (connection) its messages go through */
} projector_part_t;

typedef enum {
    ITEM_EVENT,       /* a decoded event to apply */
    ITEM_REJECT,      /* rejected here: dead-letter it and record it */
    ITEM_DEAD_LETTER, /* a message of the dead-letter topic: record it */
} projector_item_kind_t;

/* One consumed message of the batch, with the text of its SQL parameters. */
typedef struct projector_item_s {
    rd_kafka_message_t *msg;
    projector_item_kind_t kind;
    int dlq_sent; /* the reject was queued to the dead-letter topic already */
    int first;    /* sets.c: the first copy of its event id in the batch */
    int fresh;    /* sets.c: its event id was new to the event log */
    int later;    /* sets.c: prebuilt as logged by the batch in flight (not yet committed) */
    int texts;    /* the parameter text below is filled in (projector_item_texts) */
    hub_event_t ev;
    char *json; /* the event as JSON, for the event log */
    char reason_class[16];
    char reason[256];
    /* Dead-letter coordinates (ITEM_DEAD_LETTER: from the headers). */
    char dl_service[64];
    char dl_topic[256];
    char dl_partition[16];
    char dl_offset[24];
    char dl_time[40];
    /* Parameter text, for the per-event path and dead letters (the set-based path sends
       binary values). */
    char partition_s[16];
    char offset_s[24];
    char occurred_s[40];
    char date_a[16];
    char date_b[16];
    char int_s[16];
    char risks[320];
} projector_item_t;

/* The next offset of one partition of a batch. */
typedef struct {
    projector_part_t *part;
    int64_t next;
} projector_pos_t;

/* The first error of a pipeline: which command, and what (never the DETAIL, which holds values). */
typedef struct {
    size_t command;
    char sqlstate[8];
    char constraint[64];
    char message[256];
} projector_pipeline_error_t;

/*
 * A batch whose statements, offsets and COMMIT are on their way to
 * PostgreSQL while the next batch is read from Kafka. Nothing else uses the
 * connection until it is finished (projector_inflight_finish).
 */
typedef struct {
    projector_item_t *items; /* NULL: none in flight */
    size_t nitems;
    projector_pos_t *pos;
    size_t npos;
    int64_t started_ms;
    int logging;     /* the event log's COPY is on its way; the statements are not sent yet */
    size_t commands; /* result sets expected before the sync */
    size_t done;     /* result sets read */
    projector_pipeline_error_t error;
} projector_inflight_t;

typedef struct projector_sets_s projector_sets_t;     /* sets.c */
typedef struct projector_recent_s projector_recent_t; /* recent.c */

/*
 * A lane: one PostgreSQL connection and the batches going through it. Each
 * owned partition goes through one lane, and a lane's transactions carry the
 * offsets of its own partitions only, so lanes commit independently and
 * PostgreSQL works on several batches at once (the merge rules do not depend
 * on arrival order, docs/projector.md).
 */
typedef struct projector_lane_s {
    PGconn *pg;
    int pg_prepared;
    projector_item_t *items;
    size_t nitems;
    int64_t batch_started_ms;
    projector_item_t *spare_items; /* the other batch's array while one is in flight */
    /* Messages read while the next batch was full, oldest first (stash[stash_first] on):
       they go into the batch after it, so reading goes on for the other lanes. */
    rd_kafka_message_t **stash;
    size_t stash_first, nstash;
    projector_inflight_t inflight;
    int sync_next;          /* an in-flight batch was refused: apply the next one synchronously */
    projector_sets_t *sets; /* the state statements being built */
    /* The next batch's COPY rows and statements, built while the batch before it was in
       flight (projector_sets_prebuild), for prebuilt_n items. prebuilt: 1 ready, -1 tried
       without success, 0 not tried (or the batch changed since). */
    projector_sets_t *next_sets;
    int prebuilt;
    size_t prebuilt_n;
    /* Batches still to look their ids up in the event log before the COPY (sets.c): after
       a COPY refused for an id logged already, duplicates are expected for a while. */
    int lookup_batches;
} projector_lane_t;

#define PROJECTOR_MAX_LANES 8

typedef struct projector_s {
    hub_service_t *svc;
    projector_conf_t conf;
    hub_validation_t rules;
    hub_codec_t *codec;
    hub_producer_t *dlq;
    hub_consumer_t *consumer;
    const char *dlq_topic;

    /* The lanes; ln is the one the batch functions work on (projector_lane_use). */
    projector_lane_t lanes[PROJECTOR_MAX_LANES];
    int nlanes;
    projector_lane_t *ln;

    projector_part_t *parts;
    size_t nparts, parts_cap;
    int need_resync;

    int64_t next_prune_ms;
    int64_t next_kafka_commit_ms;
    int kafka_dirty;

    /* Operations endpoints (docs/operations.md); counted at commit. */
    hub_metrics_t *metrics;
    hub_http_t *http;
    const char **in_topics; /* topics of m_in, parallel */
    hub_counter_t **m_in;
    size_t nin;
    hub_counter_t *m_dlq[PROJECTOR_NDLQ_CLASSES];
    hub_counter_t *m_failures;
    hub_histogram_t *m_latency;
    int ready; /* last state told to /readyz: -1 unknown */
    int64_t next_lag_ms;

    projector_recent_t *recent;

    /* Counters for the periodic progress line. */
    long long applied, rejected, dead_letters, batches, retries;
    int64_t next_progress_ms;
} projector_t;

/* ---- recent.c ---- */

/* projector_recent_add: remembers an id whose event the log holds (committed). */
void projector_recent_add(projector_t *p, const char *event_id);

/* projector_recent_has: 1 if the id was added lately (then the log holds it), else 0. */
int projector_recent_has(projector_t *p, const char *event_id);

/* projector_recent_clear: forgets every id (when event-log rows were deleted). */
void projector_recent_clear(projector_t *p);

/* projector_recent_free: releases the table. */
void projector_recent_free(projector_t *p);

/* ---- batch.c ---- */

/*
 * projector_batch_add: classifies msg (ownership moves to the batch): a
 * decoded and valid event, a reject (with its reason), or a message of the
 * dead-letter topic. Never fails: a message that cannot be decoded becomes a
 * reject.
 */
void projector_batch_add(projector_t *p, rd_kafka_message_t *msg);

/*
 * projector_dead_letter: queues a reject to the dead-letter topic (without
 * waiting for delivery) and marks it sent. 0 or HUB_EKAFKA (errstr says why).
 */
int projector_dead_letter(projector_t *p, projector_item_t *it, char *errstr, size_t errstr_size);

/* projector_items_release: destroys the messages (and event text) of n items. */
void projector_items_release(projector_item_t *items, size_t n);

/* projector_item_texts: fills in the item's parameter text, once. */
void projector_item_texts(projector_item_t *it);

/* projector_batch_clear: destroys every message of the batch and empties it. */
void projector_batch_clear(projector_t *p);

/* projector_stash_clear: destroys every message of the stash and empties it. */
void projector_stash_clear(projector_t *p);

/*
 * projector_batch_take: msg (ownership moves) into the batch, or behind it into
 * the stash when the batch is full or messages wait there already. 0, or -1
 * when the stash is full too (projector_stash_full: never read then).
 */
int projector_batch_take(projector_t *p, rd_kafka_message_t *msg);

/* projector_batch_full: 1 when the lane's batch holds batch_max_events messages. */
int projector_batch_full(const projector_t *p);

/* projector_stash_full: 1 when the lane can take no further message. */
int projector_stash_full(const projector_t *p);

/* projector_stash_drain: moves stashed messages into the batch while it has room. */
void projector_stash_drain(projector_t *p);

/*
 * projector_batch_drop_partitions: removes from the batch and the stash the messages of the
 * given partitions (revoked), so nothing is applied for partitions we no
 * longer own.
 */
void projector_batch_drop_partitions(projector_t *p, const rd_kafka_topic_partition_list_t *parts);

/*
 * projector_risks_literal: the risk set as a PostgreSQL text[] literal
 * ("{A,B}"), sorted by name, into buf.
 */
void projector_risks_literal(hub_risk_set_t set, char *buf, size_t size);

/* ---- apply.c ---- */

/* projector_one_line: turns newlines and tabs (libpq's messages have them) into spaces. */
void projector_one_line(char *s);

/*
 * projector_event_at_fault: SQLSTATE classes 22 (data exception) and 23
 * (integrity constraint): the event is at fault, not the projector.
 */
int projector_event_at_fault(const char *sqlstate);

/*
 * projector_pg_prepare: prepares every statement on p->pg. 0 or HUB_EPG.
 */
int projector_pg_prepare(projector_t *p, char *errstr, size_t errstr_size);

/*
 * projector_apply_batch: applies the batch and advances its partitions'
 * offsets in one transaction. An event that breaks a database constraint is
 * turned into a reject and the rest retried, so one bad event never holds up
 * the others. Rejects are dead-lettered (and the producer flushed) before the
 * commit. A batch in flight is finished first. A set-based batch goes in
 * flight itself: the usual one as soon as BEGIN and its event log's COPY are
 * sent (its state statements, offsets and COMMIT follow once the COPY is in,
 * projector_inflight_busy), one that needs the id lookup once its event-log
 * rows are in. The call returns, so the next batch is read from Kafka while
 * PostgreSQL works (projector_inflight_finish completes it).
 * Otherwise, on success the offsets are stored for Kafka too and the batch is
 * cleared. Returns 0, or HUB_EPG / HUB_EKAFKA when the batch could not be
 * committed: the caller then resynchronises (nothing was applied).
 */
int projector_apply_batch(projector_t *p, char *errstr, size_t errstr_size);

/*
 * projector_inflight_busy: 1 while the batch in flight awaits PostgreSQL's
 * answer; reads what has arrived without blocking and finishes the batch when
 * its answer is complete (then 0, as when nothing is in flight).
 */
int projector_inflight_busy(projector_t *p);

/*
 * projector_inflight_finish: waits for the batch in flight and finishes it:
 * on commit its offsets are recorded, counted and stored for Kafka; otherwise
 * the failure is logged and a resync requested (nothing of it was applied).
 * Returns 0 when nothing was in flight or it committed, else HUB_EPG.
 */
int projector_inflight_finish(projector_t *p);

/* projector_lane_use: makes lane k the one the batch functions work on. */
static inline void projector_lane_use(projector_t *p, int k)
{
    p->ln = &p->lanes[k];
}

/*
 * projector_lanes_finish: finishes every lane's batch in flight (before the
 * partitions or the connections change). HUB_OK, or HUB_EPG if any failed
 * (a resync is then requested). The current lane stays the same.
 */
int projector_lanes_finish(projector_t *p);

/*
 * projector_lanes_wait: waits until a connection with a batch in flight has
 * something to read or can take what libpq holds for it, or (wake_fd, from
 * hub_consumer_wakeup_fd, unless -1) a message arrived; at most timeout_ms.
 */
void projector_lanes_wait(projector_t *p, int wake_fd, int timeout_ms);

/* projector_lanes_clear: empties every lane's batch and stash. The current lane stays the same. */
void projector_lanes_clear(projector_t *p);

/* ---- sets.c ---- */

/*
 * projector_pg_flush: sends what libpq still holds for the server, on a
 * non-blocking connection. block: until everything is sent, reading
 * meanwhile so the server never waits on us. 0 all sent, 1 more to send, -1
 * the connection broke.
 */
int projector_pg_flush(PGconn *c, int block);

/* projector_sets_free: frees what the set-based statements keep between batches. */
void projector_sets_free(projector_t *p);

/* projector_sets_prepare: prepares the set-based statements on p->pg. 0 or HUB_EPG. */
int projector_sets_prepare(projector_t *p, char *errstr, size_t errstr_size);

/*
 * projector_sets_usable: 0 when the batch holds an event the database may
 * refuse depending on what precedes it (an action due before its meeting):
 * such a batch goes through the per-event path, which isolates it exactly.
 */
int projector_sets_usable(const projector_t *p);

/*
 * projector_sets_log: opens the batch's transaction, finds which of its
 * event ids are new (fresh) and COPYs those events into the event log; while
 * the server reads the rows, builds the state statements projector_sets_send
 * sends. Leaves the transaction open on success (0). Otherwise the
 * transaction is rolled back and errstr says why: 1 the database refused an
 * event (SQLSTATE class 22 or 23: apply the batch per event instead), -1
 * another database error, -2 the connection broke.
 */
int projector_sets_log(projector_t *p, char *errstr, size_t errstr_size);

/*
 * projector_sets_log_start: projector_sets_log without waiting, for the
 * usual batch (some event new, no id lookup due): sends BEGIN and the event
 * log's COPY on the non-blocking connection, builds the state statements and
 * returns 0; projector_sets_log_step moves it on. 1: not for this batch (use
 * projector_sets_log); -1 the connection broke.
 */
int projector_sets_log_start(projector_t *p);

/*
 * projector_sets_prebuild: while the lane's batch in flight keeps its
 * connection busy, builds the next batch (full, so final) ready to go: its
 * COPY rows and state statements. projector_sets_log_start then sends it
 * at once, unless the batch changed or an id it counted as new was committed
 * meanwhile (then it is built again).
 */
void projector_sets_prebuild(projector_t *p);

/*
 * projector_sets_log_step: reads what has arrived of a started log, hands
 * the server the rows when it asks for them, and sends what libpq holds.
 * block: until it is done. 0 not done yet; 1 logged (the transaction open,
 * the connection free for the state statements); -1 the database refused it
 * (sqlstate and msg say why; the transaction is to be rolled back); -2 the
 * connection broke.
 */
int projector_sets_log_step(projector_t *p, int block, char *sqlstate, char *msg, size_t msg_size);

/*
 * projector_sets_duplicate_refused: after the event log refused a COPY for
 * an id it holds: this and the next few batches look their ids up first.
 */
void projector_sets_duplicate_refused(projector_t *p);

/*
 * projector_sets_send: queues on p->pg (in pipeline mode, inside the
 * transaction projector_sets_log opened) the statements it built, one per
 * table, for the fresh events: the flag and reminder rows, and each state
 * table's rows collapsed per key. Adds the statements sent to *commands. 0, or -1 when a
 * statement could not be queued (no memory, connection broken).
 */
int projector_sets_send(projector_t *p, size_t *commands);

/* ---- offsets.c ---- */

/* Rebalance hooks for hub_consumer_new. */
void projector_on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts);
void projector_on_revoke(void *opaque, const rd_kafka_topic_partition_list_t *parts);

/* projector_part_find: the state of an owned partition, or NULL. */
projector_part_t *projector_part_find(projector_t *p, const char *topic, int32_t partition);

/*
 * projector_resync: after a failed commit or a lost connection: pauses the
 * assignment, drops the batch, reconnects with capped back-off (serving the
 * consumer meanwhile), reads the offsets stored in PostgreSQL, seeks every
 * owned partition there and resumes. Returns 0, or HUB_ESTOPPED if a stop was
 * requested first.
 */
int projector_resync(projector_t *p);

/* projector_parts_free: forgets every partition. */
void projector_parts_free(projector_t *p);

/* ---- prune.c ---- */

/*
 * projector_prune: deletes one chunk of event-log rows older than the
 * retention. Returns the number deleted, or -1 on a database error (logged).
 */
long projector_prune(projector_t *p);

#endif
