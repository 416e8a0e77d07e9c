/*
 * ledger.h: hub-notifier's PostgreSQL state (sql/migrations/0100_notifier_ledger.sql):
 * the delivery ledger, the per-address answers, the consumer offsets, and the
 * BriefingSent events still to be produced.
 *
 * Every function returns 0 or HUB_EPG with the reason in errstr; after a
 * failure notifier_db_ensure() reconnects when the connection broke.
 */
#ifndef NOTIFIER_LEDGER_H
#define NOTIFIER_LEDGER_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

typedef struct notifier_db_s notifier_db_t;

/*
 * notifier_db_open: connects (retrying for up to wait_ms). consumer_group
 * keys the offsets. NULL with the reason in errstr.
 */
notifier_db_t *notifier_db_open(const char *conninfo, const char *password,
                                const char *consumer_group, int wait_ms, char *errstr,
                                size_t errstr_size);

/* notifier_db_close: disconnects and frees. NULL is fine. */
void notifier_db_close(notifier_db_t *db);

/* notifier_db_conn: the connection (borrowed; NULL after a failed reconnect). */
PGconn *notifier_db_conn(notifier_db_t *db);

/* notifier_db_ensure: reconnects (one attempt) if the connection is broken. 0 or HUB_EPG. */
int notifier_db_ensure(notifier_db_t *db, char *errstr, size_t errstr_size);

/*
 * notifier_db_load_offsets: sets each partition of parts that has a stored
 * position to it, leaving the others untouched.
 */
int notifier_db_load_offsets(notifier_db_t *db, rd_kafka_topic_partition_list_t *parts,
                             char *errstr, size_t errstr_size);

/* notifier_db_save_offset: moves a partition's position forward to next_offset (never back). */
int notifier_db_save_offset(notifier_db_t *db, const char *topic, int32_t partition,
                            int64_t next_offset, char *errstr, size_t errstr_size);

/*
 * notifier_db_outcome: the ledger status of event_id ("DELIVERED", ...) into
 * status, or "" when the event is not in the ledger.
 */
int notifier_db_outcome(notifier_db_t *db, const char *event_id, char *status, size_t status_size,
                        char *errstr, size_t errstr_size);

typedef enum {
    NOTIFIER_ANSWER_NONE = 0,
    NOTIFIER_ANSWER_DELIVERED,
    NOTIFIER_ANSWER_REFUSED,
} notifier_answer_t;

/* notifier_db_answer: what the mail server last said for (event_id, recipient). */
int notifier_db_answer(notifier_db_t *db, const char *event_id, const char *recipient,
                       notifier_answer_t *answer, char *errstr, size_t errstr_size);

/* notifier_db_record_answer: records the server's final answer for one address. */
int notifier_db_record_answer(notifier_db_t *db, const char *event_id, const char *recipient,
                              const char *group_id, notifier_answer_t answer, long smtp_code,
                              const char *message_id, char *errstr, size_t errstr_size);

typedef struct notifier_outcome_s {
    const char *event_id;
    const char *event_type; /* ReminderDue, MeetingActionOverdue, BriefingRequested */
    const char *kind;       /* PLAN_DUE_SOON, ..., ACTION_OVERDUE, BRIEFING */
    const char *group_id;
    const char *status; /* DELIVERED, PARTIAL, REFUSED, NOT_SUBSCRIBED, UNKNOWN_GROUP */
    int recipients;     /* addresses accepted */
    int refused;        /* addresses refused for good */
    const char *message_id;
    const char *topic;
    int32_t partition;
    int64_t offset;
} notifier_outcome_t;

/*
 * notifier_db_finish: in one transaction, writes the event's ledger row
 * (replacing an earlier one, which only a dead-letter replay leads to) and
 * moves the partition's position past the event.
 */
int notifier_db_finish(notifier_db_t *db, const notifier_outcome_t *o, char *errstr,
                       size_t errstr_size);

/* One delivered briefing whose BriefingSent is still to be produced. */
typedef void (*notifier_unannounced_fn)(void *opaque, const char *event_id, const char *group_id,
                                        int recipients);

/* notifier_db_unannounced: calls fn for each delivered briefing not yet announced (oldest first).
 */
int notifier_db_unannounced(notifier_db_t *db, notifier_unannounced_fn fn, void *opaque,
                            char *errstr, size_t errstr_size);

/* notifier_db_mark_announced: records that BriefingSent sent_event_id was produced. */
int notifier_db_mark_announced(notifier_db_t *db, const char *event_id, const char *sent_event_id,
                               char *errstr, size_t errstr_size);

#endif
