/*
 * store.c: per-partition hash maps of subject -> last alert facts, with undo.
 *
 * Layout for the cache: subject keys (64 hex characters) are kept as their
 * 32 bytes, each entry fills one 64-byte line in a dense array, and the
 * open-addressing table holds only 4-byte entry numbers. A look-up touches
 * the small table and one entry, so a hundred thousand young people cost a
 * few megabytes and a cache miss or two, not tens of megabytes.
 */
#include <stdlib.h>
#include <string.h>

#include "hub/common.h"
#include "store.h"

#define KEY_BYTES 32

typedef struct entry_s {
    unsigned char key[KEY_BYTES];
    store_value_t v;
} entry_t;

typedef struct map_s {
    uint32_t *slots; /* entry number + 1, or 0 for empty */
    size_t cap;      /* slots: a power of two, or 0 */
    entry_t *entries;
    size_t n, capentries;
    int restored;
} map_t;

typedef struct undo_s {
    int32_t partition;
    unsigned char key[KEY_BYTES];
    int had;
    store_value_t prev;
} undo_t;

struct store_s {
    map_t *maps; /* indexed by partition */
    size_t nmaps;
    undo_t *undo;
    size_t nundo, capundo;
};

/* The 32 bytes of a 64-hex-character subject key; -1 when it is not one. */
static int key_bytes(const char *hex, unsigned char out[KEY_BYTES])
{
    for (int i = 0; i < KEY_BYTES; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v << 4 | d;
        }
        out[i] = (unsigned char)v;
    }
    return hex[2 * KEY_BYTES] == '\0' ? 0 : -1;
}

/*
 * Real subject keys are HMAC output and already uniform, but nothing forces
 * a producer's keys to differ anywhere but at the end: mix all four words.
 */
static size_t hash(const unsigned char *key)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < KEY_BYTES; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, sizeof(w));
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 32;
    return (size_t)h;
}

store_t *store_new(void)
{
    return calloc(1, sizeof(store_t));
}

static void map_free(map_t *m)
{
    free(m->slots);
    free(m->entries);
    memset(m, 0, sizeof(*m));
}

void store_destroy(store_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmaps; i++)
        map_free(&s->maps[i]);
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

/* The slot holding key, or the empty slot where it would go; m->cap must be non-zero. */
static size_t probe(const map_t *m, const unsigned char *key)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask)
        if (!m->slots[i] || memcmp(m->entries[m->slots[i] - 1].key, key, KEY_BYTES) == 0)
            return i;
}

static entry_t *lookup(const map_t *m, const unsigned char *key)
{
    if (!m || !m->cap)
        return NULL;
    size_t i = probe(m, key);
    return m->slots[i] ? &m->entries[m->slots[i] - 1] : NULL;
}

/* Rebuilds the slot table at twice the size (keeping at most half of it in use). */
static int grow(map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    uint32_t *slots = calloc(ncap, sizeof(*slots));
    if (!slots)
        return HUB_ENOMEM;
    free(m->slots);
    m->slots = slots;
    m->cap = ncap;
    for (size_t e = 0; e < m->n; e++)
        m->slots[probe(m, m->entries[e].key)] = (uint32_t)(e + 1);
    return HUB_OK;
}

static int map_set(map_t *m, const unsigned char *key, const store_value_t *v)
{
    entry_t *e = lookup(m, key);
    if (e) {
        e->v = *v;
        return HUB_OK;
    }
    if (m->n >= UINT32_MAX - 1)
        return HUB_ENOMEM;
    if ((m->n + 1) * 2 > m->cap && grow(m) != HUB_OK)
        return HUB_ENOMEM;
    if (m->n == m->capentries) {
        size_t ncap = m->capentries ? m->capentries * 2 : 512;
        entry_t *entries = realloc(m->entries, ncap * sizeof(*entries));
        if (!entries)
            return HUB_ENOMEM;
        m->entries = entries;
        m->capentries = ncap;
    }
    memcpy(m->entries[m->n].key, key, KEY_BYTES);
    m->entries[m->n].v = *v;
    m->slots[probe(m, key)] = (uint32_t)(++m->n);
    return HUB_OK;
}

/*
 * Removes key: its slot by backward shift (no tombstones), its entry by
 * moving the last entry into its place.
 */
static void map_remove(map_t *m, const unsigned char *key)
{
    if (!m || !m->cap)
        return;
    size_t mask = m->cap - 1, i = probe(m, key);
    uint32_t gone = m->slots[i];
    if (!gone)
        return;
    m->slots[i] = 0;
    for (size_t j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
        size_t home = hash(m->entries[m->slots[j] - 1].key) & mask;
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        m->slots[j] = 0;
        i = j;
    }
    if (gone != m->n) {
        m->entries[gone - 1] = m->entries[m->n - 1];
        m->slots[probe(m, m->entries[gone - 1].key)] = gone;
    }
    m->n--;
}

const store_value_t *store_get(const store_t *s, int32_t partition, const char *subject)
{
    unsigned char key[KEY_BYTES];
    entry_t *e;
    if (key_bytes(subject, key) != 0)
        return NULL;
    e = lookup(map_for(s, partition), key);
    return e ? &e->v : NULL;
}

int store_put(store_t *s, int32_t partition, const char *subject, const store_value_t *v,
              int undoable)
{
    unsigned char key[KEY_BYTES];
    map_t *m;
    if (key_bytes(subject, key) != 0)
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
        const entry_t *e = lookup(m, key);
        u->partition = partition;
        memcpy(u->key, key, KEY_BYTES);
        u->had = e != NULL;
        if (e)
            u->prev = e->v;
        if (map_set(m, key, v) != HUB_OK)
            return HUB_ENOMEM;
        s->nundo++;
        return HUB_OK;
    }
    return map_set(m, key, v);
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
            map_set(m, u->key, &u->prev); /* the entry exists, so this cannot fail */
        else
            map_remove(m, u->key);
    }
}

void store_drop_partition(store_t *s, int32_t partition)
{
    map_t *m = map_for(s, partition);
    if (!m)
        return;
    map_free(m);
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
