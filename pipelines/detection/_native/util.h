/* Small containers for the native scanner: growable byte buffers and an exact string set. */
#ifndef LS_UTIL_H
#define LS_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef uint32_t cp_t; /* one code point */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} lsbuf;

static __attribute__((noinline)) int buf_reserve(lsbuf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_put(lsbuf *b, const void *data, size_t n) {
    if (b->len + n > b->cap && buf_reserve(b, n)) return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static void buf_free(lsbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* UTF-8 of code points, appended to b. */
static int buf_utf8(lsbuf *b, const cp_t *s, size_t n) {
    if (buf_reserve(b, n * 4)) return -1;
    uint8_t *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        cp_t c = s[i];
        if (c < 0x80) {
            *o++ = (uint8_t)c;
        } else if (c < 0x800) {
            *o++ = (uint8_t)(0xC0 | (c >> 6));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *o++ = (uint8_t)(0xE0 | (c >> 12));
            *o++ = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        } else {
            *o++ = (uint8_t)(0xF0 | (c >> 18));
            *o++ = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
            *o++ = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            *o++ = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

static inline uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t a = 0x9E3779B97F4A7C15ULL ^ n, b = 0xC2B2AE3D27D4EB4FULL;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) { /* two independent lanes: half the dependency chain */
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a = (a ^ x) * 0xff51afd7ed558ccdULL;
        b = (b ^ y) * 0xc4ceb9fe1a85ec53ULL;
        a ^= a >> 32;
        b ^= b >> 29;
    }
    if (i + 8 <= n) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        a = (a ^ x) * 0xff51afd7ed558ccdULL;
        a ^= a >> 32;
        i += 8;
    }
    /* the last 0..7 bytes: an (overlapping) 8-byte load when there are 8 in all, else 4+4, or three bytes
       (the hash is the sets' own: only its spread matters) */
    uint64_t t = 0;
    if (i < n) {
        if (n >= 8) {
            memcpy(&t, p + n - 8, 8);
        } else if (n >= 4) {
            uint32_t x, y;
            memcpy(&x, p, 4);
            memcpy(&y, p + n - 4, 4);
            t = (uint64_t)x << 32 | y;
        } else {
            t = (uint64_t)p[0] << 16 | (uint64_t)p[n >> 1] << 8 | p[n - 1];
        }
    }
    b = (b ^ t) * 0xc4ceb9fe1a85ec53ULL;
    uint64_t h = a ^ (b >> 31) ^ (b << 17);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* An exact set of byte strings with three uint32 values each; cleared in O(1) by generation.
 * Slots carry 16 bits of the hash next to their generation, so a probe reads the entry (another cache
 * line) only when those match: almost only for the key itself. */
typedef struct {
    uint32_t entry; /* index + 1 */
    uint32_t meta;  /* generation << 16 | SLOT_TAG(hash) */
} slot_t;

#define SLOT_TAG(h) ((uint32_t)((h) >> 48))
#define SLOT_GEN_MAX 0xFFFFu

typedef struct {
    uint64_t hash;
    uint32_t off, len;
    uint32_t val, v2, v3, pad;
} entry_t;

typedef struct {
    slot_t *slots;
    size_t nslots, count;
    uint32_t generation;
    entry_t *entries;
    size_t ecap;
    lsbuf arena;
} strset;

static int set_init(strset *s, size_t nslots) {
    memset(s, 0, sizeof *s);
    s->nslots = nslots;
    s->slots = calloc(nslots, sizeof *s->slots);
    s->generation = 1;
    return s->slots ? 0 : -1;
}

static void set_free(strset *s) {
    free(s->slots);
    free(s->entries);
    buf_free(&s->arena);
    memset(s, 0, sizeof *s);
}

static void set_clear(strset *s) {
    s->count = 0;
    s->arena.len = 0;
    s->generation++;
    if (s->generation > SLOT_GEN_MAX) { /* the 16 bits of the slots wrap: clear them once */
        memset(s->slots, 0, s->nslots * sizeof *s->slots);
        s->generation = 1;
    }
}

static int set_grow(strset *s) {
    size_t n = s->nslots * 2;
    slot_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < s->nslots; i++) {
        if ((s->slots[i].meta >> 16) != s->generation) continue;
        size_t j = (size_t)s->entries[s->slots[i].entry - 1].hash & (n - 1);
        while ((slots[j].meta >> 16) == s->generation) j = (j + 1) & (n - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = n;
    return 0;
}

/* Returns the entry index (found or added); *added tells which; -1 on memory error. */
static long set_add_h(strset *s, const uint8_t *key, size_t n, uint64_t h, int *added) {
    if ((s->count + 1) * 10 > s->nslots * 7 && set_grow(s)) return -1;
    size_t mask = s->nslots - 1, i = (size_t)h & mask;
    const uint32_t want = s->generation << 16 | SLOT_TAG(h);
    for (;;) {
        slot_t *sl = &s->slots[i];
        if ((sl->meta >> 16) != s->generation) break;
        if (sl->meta == want) {
            entry_t *e = &s->entries[sl->entry - 1];
            if (e->hash == h && e->len == n && memcmp(s->arena.p + e->off, key, n) == 0) {
                *added = 0;
                return (long)(sl->entry - 1);
            }
        }
        i = (i + 1) & mask;
    }
    if (s->count == s->ecap) {
        size_t cap = s->ecap ? s->ecap * 2 : 256;
        entry_t *es = realloc(s->entries, cap * sizeof *es);
        if (!es) return -1;
        s->entries = es;
        s->ecap = cap;
    }
    size_t e = s->count++;
    entry_t *en = &s->entries[e];
    en->hash = h;
    en->off = (uint32_t)s->arena.len;
    en->len = (uint32_t)n;
    en->val = en->v2 = en->v3 = 0;
    if (buf_put(&s->arena, key, n)) return -1;
    s->slots[i].entry = (uint32_t)(e + 1);
    s->slots[i].meta = want;
    *added = 1;
    return (long)e;
}

static inline long set_add(strset *s, const uint8_t *key, size_t n, int *added) {
    return set_add_h(s, key, n, hash_bytes(key, n), added);
}

static int set_contains(strset *s, const uint8_t *key, size_t n) {
    uint64_t h = hash_bytes(key, n);
    size_t mask = s->nslots - 1, i = (size_t)h & mask;
    const uint32_t want = s->generation << 16 | SLOT_TAG(h);
    for (;;) {
        slot_t *sl = &s->slots[i];
        if ((sl->meta >> 16) != s->generation) return 0;
        if (sl->meta == want) {
            entry_t *e = &s->entries[sl->entry - 1];
            if (e->hash == h && e->len == n && memcmp(s->arena.p + e->off, key, n) == 0) return 1;
        }
        i = (i + 1) & mask;
    }
}

#endif
