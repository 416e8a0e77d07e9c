/* store.c: per-partition open-addressing hash maps of subject -> last alert facts, with undo. */
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "store.h"

typedef struct entry_s {
    char key[HUB_SUBJECT_KEY_SIZE];
    int used;
    store_value_t v;
} entry_t;

typedef struct map_s {
    entry_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t n;
    int restored;
} map_t;

typedef struct undo_s {
    int32_t partition;
    char key[HUB_SUBJECT_KEY_SIZE];
    int had;
    store_value_t prev;
} undo_t;

struct store_s {
    map_t *maps; /* indexed by partition */
    size_t nmaps;
    undo_t *undo;
    size_t nundo, capundo;
};

/*
 * FNV-1a, then a 64-bit finaliser: FNV alone leaves its low bits (which pick
 * the slot) poorly mixed by the last characters, and nothing forces a
 * producer's keys to differ anywhere but at the end.
 */
static size_t hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h;
}

store_t *store_new(void)
{
    return calloc(1, sizeof(store_t));
}

void store_destroy(store_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmaps; i++)
        free(s->maps[i].slots);
    free(s->maps);
    free(s->undo);
    free(s);
}

static map_t *map_for(const store_t *s, int32_t partition)
{
    if (partition < 0 || (size_t)partition >= s->nmaps)
        return NULL;
    return &s->maps[partition];
}

/* Grows the partition index so that partition exists. */
static map_t *map_make(store_t *s, int32_t partition)
{
    if (partition < 0)
        return NULL;
    if ((size_t)partition >= s->nmaps) {
        size_t n = (size_t)partition + 1;
        map_t *m = realloc(s->maps, n * sizeof(*m));
        if (!m)
            return NULL;
        memset(m + s->nmaps, 0, (n - s->nmaps) * sizeof(*m));
        s->maps = m;
        s->nmaps = n;
    }
    return &s->maps[partition];
}

static entry_t *lookup(const map_t *m, const char *key)
{
    if (!m || !m->cap)
        return NULL;
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        entry_t *e = &m->slots[i];
        if (!e->used)
            return NULL;
        if (strcmp(e->key, key) == 0)
            return e;
    }
}

static int grow(map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    entry_t *old = m->slots, *slots = calloc(ncap, sizeof(*slots));
    if (!slots)
        return HUB_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!old[i].used)
            continue;
        size_t j = hash(old[i].key) & (ncap - 1);
        while (slots[j].used)
            j = (j + 1) & (ncap - 1);
        slots[j] = old[i];
    }
    free(old);
    m->slots = slots;
    m->cap = ncap;
    return HUB_OK;
}

static int map_set(map_t *m, const char *key, const store_value_t *v)
{
    entry_t *e = lookup(m, key);
    if (e) {
        e->v = *v;
        return HUB_OK;
    }
    /* Keep the load factor under 1/2 so probe chains stay short. */
    if ((m->n + 1) * 2 > m->cap && grow(m) != HUB_OK)
        return HUB_ENOMEM;
    size_t i = hash(key) & (m->cap - 1);
    while (m->slots[i].used)
        i = (i + 1) & (m->cap - 1);
    hub_strlcpy(m->slots[i].key, key, sizeof(m->slots[i].key));
    m->slots[i].used = 1;
    m->slots[i].v = *v;
    m->n++;
    return HUB_OK;
}

/* Linear-probing delete by backward shift, so no tombstones accumulate. */
static void map_remove(map_t *m, const char *key)
{
    entry_t *e = lookup(m, key);
    if (!e)
        return;
    size_t i = (size_t)(e - m->slots), mask = m->cap - 1;
    m->slots[i].used = 0;
    m->n--;
    for (size_t j = (i + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
        size_t home = hash(m->slots[j].key) & mask;
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        m->slots[j].used = 0;
        i = j;
    }
}

const store_value_t *store_get(const store_t *s, int32_t partition, const char *subject)
{
    entry_t *e = lookup(map_for(s, partition), subject);
    return e ? &e->v : NULL;
}

int store_put(store_t *s, int32_t partition, const char *subject, const store_value_t *v,
              int undoable)
{
    map_t *m;
    if (strlen(subject) >= HUB_SUBJECT_KEY_SIZE)
        return HUB_EINVAL;
    if (!(m = map_make(s, partition)))
        return partition < 0 ? HUB_EINVAL : HUB_ENOMEM;
    if (undoable) {
        if (s->nundo == s->capundo) {
            size_t ncap = s->capundo ? s->capundo * 2 : 256;
            undo_t *u = realloc(s->undo, ncap * sizeof(*u));
            if (!u)
                return HUB_ENOMEM;
            s->undo = u;
            s->capundo = ncap;
        }
        undo_t *u = &s->undo[s->nundo];
        const entry_t *e = lookup(m, subject);
        u->partition = partition;
        hub_strlcpy(u->key, subject, sizeof(u->key));
        u->had = e != NULL;
        if (e)
            u->prev = e->v;
        if (map_set(m, subject, v) != HUB_OK)
            return HUB_ENOMEM;
        s->nundo++;
        return HUB_OK;
    }
    return map_set(m, subject, v);
}

void store_commit(store_t *s)
{
    s->nundo = 0;
}

void store_rollback(store_t *s)
{
    while (s->nundo > 0) {
        const undo_t *u = &s->undo[--s->nundo];
        map_t *m = map_for(s, u->partition);
        if (!m)
            continue;
        if (u->had)
            map_set(m, u->key, &u->prev); /* the slot exists, so this cannot fail */
        else
            map_remove(m, u->key);
    }
}

void store_drop_partition(store_t *s, int32_t partition)
{
    map_t *m = map_for(s, partition);
    if (!m)
        return;
    free(m->slots);
    memset(m, 0, sizeof(*m));
    /* Undo entries for a dropped partition would resurrect forgotten state. */
    size_t keep = 0;
    for (size_t i = 0; i < s->nundo; i++)
        if (s->undo[i].partition != partition)
            s->undo[keep++] = s->undo[i];
    s->nundo = keep;
}

int store_restored(const store_t *s, int32_t partition)
{
    const map_t *m = map_for(s, partition);
    return m && m->restored;
}

int store_set_restored(store_t *s, int32_t partition)
{
    map_t *m = map_make(s, partition);
    if (!m)
        return HUB_ENOMEM;
    m->restored = 1;
    return HUB_OK;
}

size_t store_count(const store_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nmaps; i++)
        n += s->maps[i].n;
    return n;
}
