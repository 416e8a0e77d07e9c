/*
 * recent.c: the event ids this projector committed lately. Duplicates come
 * close together (a producer's retry, a partner sending the same record
 * twice), so a batch's ids are first checked here: one found is in the event
 * log, and the batch can go to the log by COPY without asking PostgreSQL.
 * An id not found here may still be in the log; the log's primary key is the
 * authority (sets.c).
 *
 * Two generations of an open-addressing table of 128-bit ids: ids go into
 * the newer one; when it is half full it becomes the older one and the older
 * one is emptied. So between RECENT_SLOTS / 2 and RECENT_SLOTS ids are
 * remembered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/events.h"
#include "projector.h"

#define RECENT_SLOTS 131072 /* a power of two */

typedef struct {
    uint64_t hi, lo; /* 0, 0: empty */
} recent_id_t;

struct projector_recent_s {
    recent_id_t *gen[2];
    size_t used[2];
    int cur;
};

/* The UUID as two words; 0 for anything else (and for the nil UUID). */
static int parse(const char *s, recent_id_t *id)
{
    unsigned char u[16];
    if (hub_uuid_parse(s, u) != 0)
        return 0;
    id->hi = id->lo = 0;
    for (int k = 0; k < 8; k++) {
        id->hi = id->hi << 8 | u[k];
        id->lo = id->lo << 8 | u[k + 8];
    }
    return (id->hi | id->lo) != 0;
}

static size_t slot_of(const recent_id_t *id)
{
    uint64_t h = (id->hi ^ id->lo * 0x9e3779b97f4a7c15ULL) * 0xff51afd7ed558ccdULL;
    return (size_t)(h >> 32) & (RECENT_SLOTS - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static recent_id_t *find(recent_id_t *t, const recent_id_t *id)
{
    for (size_t i = slot_of(id);; i = (i + 1) & (RECENT_SLOTS - 1))
        if ((t[i].hi == id->hi && t[i].lo == id->lo) || (t[i].hi | t[i].lo) == 0)
            return &t[i];
}

static projector_recent_t *get(projector_t *p)
{
    projector_recent_t *r = p->recent;
    if (r)
        return r;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->gen[0] = calloc(RECENT_SLOTS, sizeof(recent_id_t));
    r->gen[1] = calloc(RECENT_SLOTS, sizeof(recent_id_t));
    if (!r->gen[0] || !r->gen[1]) {
        free(r->gen[0]);
        free(r->gen[1]);
        free(r);
        return NULL;
    }
    return p->recent = r;
}

void projector_recent_add(projector_t *p, const char *event_id)
{
    projector_recent_t *r = get(p);
    recent_id_t id, *slot;
    if (!r || !parse(event_id, &id))
        return; /* not remembered: PostgreSQL is asked instead */
    slot = find(r->gen[r->cur], &id);
    if ((slot->hi | slot->lo) != 0)
        return;
    *slot = id;
    if (++r->used[r->cur] >= RECENT_SLOTS / 2) {
        r->cur = !r->cur;
        memset(r->gen[r->cur], 0, RECENT_SLOTS * sizeof(recent_id_t));
        r->used[r->cur] = 0;
    }
}

int projector_recent_has(projector_t *p, const char *event_id)
{
    projector_recent_t *r = p->recent;
    recent_id_t id, *slot;
    if (!r || !parse(event_id, &id))
        return 0;
    for (int g = 0; g < 2; g++) {
        slot = find(r->gen[g], &id);
        if ((slot->hi | slot->lo) != 0)
            return 1;
    }
    return 0;
}

void projector_recent_clear(projector_t *p)
{
    projector_recent_t *r = p->recent;
    if (!r)
        return;
    for (int g = 0; g < 2; g++) {
        memset(r->gen[g], 0, RECENT_SLOTS * sizeof(recent_id_t));
        r->used[g] = 0;
    }
}

void projector_recent_free(projector_t *p)
{
    projector_recent_t *r = p->recent;
    if (!r)
        return;
    free(r->gen[0]);
    free(r->gen[1]);
    free(r);
    p->recent = NULL;
}
