/* Native fingerprints of a posting: the near-duplicate SimHash and the document winnowing fingerprints.
 *
 * Why native: both read every character of a posting. The Python references (pipelines/fingerprint.py,
 * pipelines/detection/documents.py) stay the definition; this module gives bit-identical values
 * (differential tests in tests/pipelines/test_pipelines_fingerprint_native.py) about a hundred times faster.
 *
 *   simhash(text) -> int | None
 *       Charikar's SimHash over 3-token shingles exactly as fingerprint.simhash computes it: tokens are the
 *       matches of [\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\W_]+ in the first 2,000,000 characters, at
 *       most 50,000 of them, each case-folded; a shingle is three tokens joined by U+001F, UTF-8, hashed by
 *       BLAKE2b with an 8-byte digest read big-endian. None below 12 tokens.
 *   winnow(folded, k, window, key) -> (keyed, raw)
 *       The distinct window minima of the k-gram hashes of the letters and digits of `folded` (already
 *       NFKC + case-folded), ascending by raw value, as two byte strings of native uint64: the stored
 *       fingerprint (keyed BLAKE2b of the raw value, 63 bits) and the raw value.
 *   first_lines(folded, k, raws) -> {raw: (first k-gram index, 1-based line)}
 *       Where each raw hash first occurs, and on which line of `folded` its first letter stands.
 *
 * Errors: MemoryError on allocation failure, ValueError on bad parameters; nothing is silently dropped.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ BLAKE2b */

static const uint64_t B2_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t B2_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr64(uint64_t x, unsigned n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64_le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void b2_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) m[i] = load64_le(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2_IV[i];
    }
    v[12] ^= t; /* messages here are far below 2**64 bytes: the high counter word stays 0 */
    if (last) v[14] = ~v[14];
#define B2_G(a, b, c, d, x, y)          \
    do {                                \
        a = a + b + (x);                \
        d = rotr64(d ^ a, 32);          \
        c = c + d;                      \
        b = rotr64(b ^ c, 24);          \
        a = a + b + (y);                \
        d = rotr64(d ^ a, 16);          \
        c = c + d;                      \
        b = rotr64(b ^ c, 63);          \
    } while (0)
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = B2_SIGMA[r];
        B2_G(v[0], v[4], v[8], v[12], m[s[0]], m[s[1]]);
        B2_G(v[1], v[5], v[9], v[13], m[s[2]], m[s[3]]);
        B2_G(v[2], v[6], v[10], v[14], m[s[4]], m[s[5]]);
        B2_G(v[3], v[7], v[11], v[15], m[s[6]], m[s[7]]);
        B2_G(v[0], v[5], v[10], v[15], m[s[8]], m[s[9]]);
        B2_G(v[1], v[6], v[11], v[12], m[s[10]], m[s[11]]);
        B2_G(v[2], v[7], v[8], v[13], m[s[12]], m[s[13]]);
        B2_G(v[3], v[4], v[9], v[14], m[s[14]], m[s[15]]);
    }
#undef B2_G
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* BLAKE2b with an 8-byte digest (key of at most 64 bytes, may be empty), returned as the big-endian
 * integer of the digest bytes: what int.from_bytes(hashlib.blake2b(msg, digest_size=8, key=key).digest(),
 * "big") gives. */
static uint64_t blake2b_8(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len) {
    uint64_t h[8];
    uint8_t block[128];
    memcpy(h, B2_IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ 8ULL;
    uint64_t t = 0;
    if (keylen) {
        memset(block, 0, sizeof block);
        memcpy(block, key, keylen);
        t = 128;
        b2_compress(h, block, t, len == 0);
    }
    if (len || !keylen) {
        while (len > 128) {
            t += 128;
            b2_compress(h, msg, t, 0);
            msg += 128;
            len -= 128;
        }
        memset(block, 0, sizeof block);
        if (len) memcpy(block, msg, len);
        t += len;
        b2_compress(h, block, t, 1);
    }
    /* digest bytes are h[0] little-endian; read big-endian that is the byte swap of h[0] */
    return __builtin_bswap64(h[0]);
}

/* BLAKE2b-8 of an 8-byte message under a fixed key: the key block is compressed once (b2_keyed_init),
 * each message then costs one compression instead of two. */
static void b2_keyed_init(uint64_t h[8], const uint8_t *key, size_t keylen) {
    uint8_t block[128];
    memcpy(h, B2_IV, 8 * sizeof(uint64_t));
    h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ 8ULL;
    memset(block, 0, sizeof block);
    memcpy(block, key, keylen);
    b2_compress(h, block, 128, 0);
}

static uint64_t b2_keyed_u64(const uint64_t keyed_state[8], uint64_t value) {
    uint64_t h[8];
    uint8_t block[128];
    memcpy(h, keyed_state, sizeof h);
    memset(block, 0, sizeof block);
    for (int b = 0; b < 8; b++) block[b] = (uint8_t)(value >> (56 - 8 * b)); /* to_bytes(8, "big") */
    b2_compress(h, block, 136, 1);
    return __builtin_bswap64(h[0]);
}

/* Four independent one-block messages at once (one per 64-bit lane): what fingerprints need, since a
 * shingle almost always fits one block and a keyed fingerprint is one block after the key's. Each lane
 * starts from the same state `h0`, compresses its final block `m` (word w of lane j in m[j][w]) with
 * its byte count `t[j]`, and gets the big-endian digest integer in out[j]. Compiled for AVX2 and for the
 * baseline, chosen when the module loads (GCC on x86-64); elsewhere the plain vector code. */
typedef uint64_t v4u64 __attribute__((vector_size(32)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 11
/* x86-64-v4 (AVX-512VL): 256-bit rotates in one instruction */
#define LS_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LS_CLONES
#endif

/* macros, not functions: a 32-byte vector passed by value warns of an ABI change without AVX */
#define v4_splat(x) ((v4u64){(x), (x), (x), (x)})
#define v4_rotr(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

LS_CLONES static void b2_final4(const uint64_t h0[8], const uint64_t m[4][16], const uint64_t t[4],
                                uint64_t out[4]) {
    v4u64 w[16], v[16];
    for (int i = 0; i < 16; i++) w[i] = (v4u64){m[0][i], m[1][i], m[2][i], m[3][i]};
    for (int i = 0; i < 8; i++) {
        v[i] = v4_splat(h0[i]);
        v[i + 8] = v4_splat(B2_IV[i]);
    }
    v4u64 tv;
    memcpy(&tv, t, sizeof tv);
    v[12] ^= tv;
    v[14] = ~v[14];
#define B2_G4(a, b, c, d, x, y)         \
    do {                                \
        a = a + b + (x);                \
        d = v4_rotr(d ^ a, 32);         \
        c = c + d;                      \
        b = v4_rotr(b ^ c, 24);         \
        a = a + b + (y);                \
        d = v4_rotr(d ^ a, 16);         \
        c = c + d;                      \
        b = v4_rotr(b ^ c, 63);         \
    } while (0)
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = B2_SIGMA[r];
        B2_G4(v[0], v[4], v[8], v[12], w[s[0]], w[s[1]]);
        B2_G4(v[1], v[5], v[9], v[13], w[s[2]], w[s[3]]);
        B2_G4(v[2], v[6], v[10], v[14], w[s[4]], w[s[5]]);
        B2_G4(v[3], v[7], v[11], v[15], w[s[6]], w[s[7]]);
        B2_G4(v[0], v[5], v[10], v[15], w[s[8]], w[s[9]]);
        B2_G4(v[1], v[6], v[11], v[12], w[s[10]], w[s[11]]);
        B2_G4(v[2], v[7], v[8], v[13], w[s[12]], w[s[13]]);
        B2_G4(v[3], v[4], v[9], v[14], w[s[14]], w[s[15]]);
    }
#undef B2_G4
    v4u64 r = v4_splat(h0[0]) ^ v[0] ^ v[8];
    uint64_t lanes[4];
    memcpy(lanes, &r, sizeof lanes);
    for (int j = 0; j < 4; j++) out[j] = __builtin_bswap64(lanes[j]);
}

/* Lane j's block: `len` (at most 128) bytes of `msg`, zero-padded, as little-endian words. */
static inline void b2_lane(uint64_t m[4][16], int j, const uint8_t *msg, size_t len) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memset(m[j], 0, sizeof m[j]); /* a little-endian word is its bytes in order: copy, no byte loop */
    if (len) memcpy(m[j], msg, len);
#else
    uint8_t block[128];
    memset(block, 0, sizeof block);
    if (len) memcpy(block, msg, len);
    for (int i = 0; i < 16; i++) m[j][i] = load64_le(block + 8 * i);
#endif
}

/* LSD radix sort of n uint64 (8 passes of a byte), `tmp` of n elements. */
static void radix_sort_u64(uint64_t *a, uint64_t *tmp, size_t n) {
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) count[((a[i] >> shift) & 0xFF) + 1]++;
        if (count[((a[0] >> shift) & 0xFF) + 1] == n) continue; /* every value has this byte */
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) tmp[count[(a[i] >> shift) & 0xFF]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

/* ------------------------------------------------------------------------------------------ helpers */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} fbuf;

static int fbuf_reserve(fbuf *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->len) return -1;
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline void put_utf8(fbuf *b, Py_UCS4 c) { /* room for 4 bytes reserved by the caller */
    uint8_t *o = b->p + b->len;
    if (c < 0x80) {
        o[0] = (uint8_t)c;
        b->len += 1;
    } else if (c < 0x800) {
        o[0] = (uint8_t)(0xC0 | (c >> 6));
        o[1] = (uint8_t)(0x80 | (c & 0x3F));
        b->len += 2;
    } else if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (c >> 12));
        o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        b->len += 3;
    } else {
        o[0] = (uint8_t)(0xF0 | (c >> 18));
        o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        o[3] = (uint8_t)(0x80 | (c & 0x3F));
        b->len += 4;
    }
}

/* Python's re `[^\W_]` (and str.isalnum): alphabetic, decimal, digit or numeric. The Basic Multilingual
 * Plane is answered from a bitmap filled at import from the interpreter's own tables (so it follows the
 * running Python's Unicode version), the rest by asking the interpreter. */
static uint8_t bmp_alnum[0x10000 / 8];

static void fill_bmp_alnum(void) {
    for (Py_UCS4 c = 0; c < 0x10000; c++)
        if (Py_UNICODE_ISALNUM(c)) bmp_alnum[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static inline int is_alnum(Py_UCS4 c) {
    if (c < 0x10000) return (bmp_alnum[c >> 3] >> (c & 7)) & 1;
    return Py_UNICODE_ISALNUM(c);
}

static inline int is_cjk(Py_UCS4 c) {
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF);
}

/* ------------------------------------------------------------------------------------------ SimHash */

#define SIM_MAX_CHARS 2000000
#define SIM_MAX_TOKENS 50000
#define SIM_MIN_TOKENS 12
#define SIM_SHINGLE 3

/* Appends the case-folded UTF-8 of text[start:end] to b (str.casefold, character by character). */
static int fold_utf8(fbuf *b, int kind, const void *data, Py_ssize_t start, Py_ssize_t end) {
    if (fbuf_reserve(b, (size_t)(end - start) * 12)) return -1; /* a fold gives at most 3 code points */
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z') c |= 0x20;
            b->p[b->len++] = (uint8_t)c;
            continue;
        }
        Py_UCS4 folded[3];
        int n = _PyUnicode_ToFoldedFull(c, folded);
        for (int j = 0; j < n; j++) put_utf8(b, folded[j]);
    }
    return 0;
}

/* SimHash bit counts, eight bits at a time: byte j of acc[b] counts bit 8j + b of the hashes added since
 * the last flush (at most 255 of them, so no byte overflows); ones[bit] holds the flushed counts. */
typedef struct {
    uint64_t acc[8];
    int64_t ones[64];
    unsigned pending;
    int64_t total;
} bitcount;

static inline void bitcount_flush(bitcount *bc) {
    for (int b = 0; b < 8; b++) {
        for (int j = 0; j < 8; j++) bc->ones[8 * j + b] += (int64_t)((bc->acc[b] >> (8 * j)) & 0xFF);
        bc->acc[b] = 0;
    }
    bc->pending = 0;
}

static inline void bitcount_add(bitcount *bc, uint64_t h) {
    for (int b = 0; b < 8; b++) bc->acc[b] += (h >> b) & 0x0101010101010101ULL;
    bc->total++;
    if (++bc->pending == 255) bitcount_flush(bc);
}

static PyObject *simhash(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "simhash() takes a str");
        return NULL;
    }
    if (PyUnicode_READY(arg) < 0) return NULL;
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    if (n > SIM_MAX_CHARS) n = SIM_MAX_CHARS;

    fbuf bytes = {0}, shingle = {0};
    size_t *ends = malloc(sizeof(size_t) * (SIM_MAX_TOKENS + 1)); /* ends[t]: end of token t in bytes */
    if (!ends) return PyErr_NoMemory();
    size_t tokens = 0;
    ends[0] = 0;
    Py_ssize_t i = 0;
    while (i < n && tokens < SIM_MAX_TOKENS) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        Py_ssize_t j;
        if (is_cjk(c)) {
            j = i + 1;
        } else if (is_alnum(c)) {
            j = i + 1;
            while (j < n && is_alnum(PyUnicode_READ(kind, data, j))) j++;
        } else {
            i++;
            continue;
        }
        if (fold_utf8(&bytes, kind, data, i, j)) goto nomem;
        ends[++tokens] = bytes.len;
        i = j;
    }
    if (tokens < SIM_MIN_TOKENS) {
        free(ends);
        free(bytes.p);
        Py_RETURN_NONE;
    }
    bitcount bc;
    memset(&bc, 0, sizeof bc);
    uint64_t h0[8], m[4][16], lens[4], hashes[4];
    memcpy(h0, B2_IV, sizeof h0);
    h0[0] ^= 0x01010000ULL ^ 8ULL; /* no key, 8-byte digest */
    int lanes = 0;
    size_t shingles = tokens - SIM_SHINGLE + 1;
    for (size_t t = 0; t <= shingles; t++) {
        if (t < shingles) {
            size_t from = ends[t], to = ends[t + SIM_SHINGLE];
            shingle.len = 0;
            if (fbuf_reserve(&shingle, to - from + SIM_SHINGLE)) goto nomem;
            for (size_t s = 0; s < SIM_SHINGLE; s++) {
                if (s) shingle.p[shingle.len++] = 0x1F;
                size_t a = ends[t + s], z = ends[t + s + 1];
                memcpy(shingle.p + shingle.len, bytes.p + a, z - a);
                shingle.len += z - a;
            }
            if (shingle.len > 128) { /* a long shingle: several blocks, one at a time */
                bitcount_add(&bc, blake2b_8(NULL, 0, shingle.p, shingle.len));
                continue;
            }
            b2_lane(m, lanes, shingle.p, shingle.len);
            lens[lanes++] = shingle.len;
            if (lanes < 4) continue;
        }
        if (!lanes) break;
        for (int j = lanes; j < 4; j++) { /* the last, partial batch: idle lanes hash nothing */
            b2_lane(m, j, NULL, 0);
            lens[j] = 0;
        }
        b2_final4(h0, m, lens, hashes);
        for (int j = 0; j < lanes; j++) bitcount_add(&bc, hashes[j]);
        lanes = 0;
    }
    bitcount_flush(&bc);
    uint64_t value = 0;
    for (int bit = 0; bit < 64; bit++) /* weight: +1 per hash with the bit set, -1 per hash without */
        if (2 * bc.ones[bit] - bc.total > 0) value |= 1ULL << bit;
    free(ends);
    free(bytes.p);
    free(shingle.p);
    return PyLong_FromLongLong((long long)(int64_t)value);
nomem:
    free(ends);
    free(bytes.p);
    free(shingle.p);
    return PyErr_NoMemory();
}

/* ------------------------------------------------------------------------------------------ winnowing */

#define W_BASE 0x100000001B3ULL
#define W_MASK63 0x7FFFFFFFFFFFFFFFULL

static inline uint64_t mix64(uint64_t h) {
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
    return h ^ (h >> 31);
}

static inline uint64_t upow(uint64_t b, unsigned long e) {
    uint64_t r = 1;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

/* The k-gram rolling hash over the letters and digits of a str: call next() per character; it returns
 * 1 when a k-gram ends at this letter (its hash in *out, its index in *index). */
typedef struct {
    unsigned long k;
    uint64_t top, h;
    Py_UCS4 *ring; /* the last k letters */
    size_t letters;
    size_t slot; /* where the next letter goes in ring (letters % k, kept without dividing) */
} roller;

static int roller_init(roller *r, unsigned long k) {
    r->k = k;
    r->top = upow(W_BASE, k - 1);
    r->h = 0;
    r->letters = 0;
    r->slot = 0;
    r->ring = malloc(sizeof(Py_UCS4) * k);
    return r->ring ? 0 : -1;
}

static inline int roller_push(roller *r, Py_UCS4 c, uint64_t *out, size_t *index) {
    size_t slot = r->slot;
    if (r->letters >= r->k) r->h -= (uint64_t)r->ring[slot] * r->top;
    r->h = r->h * W_BASE + c;
    r->ring[slot] = c;
    r->slot = slot + 1 == r->k ? 0 : slot + 1;
    r->letters++;
    if (r->letters < r->k) return 0;
    *out = mix64(r->h);
    *index = r->letters - r->k;
    return 1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int parse_kw(PyObject *folded, unsigned long k, unsigned long window) {
    if (!PyUnicode_Check(folded)) {
        PyErr_SetString(PyExc_TypeError, "folded text must be a str");
        return -1;
    }
    if (k < 1 || window < 1 || k > 1000000 || window > 1000000) {
        PyErr_SetString(PyExc_ValueError, "fingerprint k and window must be between 1 and 1000000");
        return -1;
    }
    return PyUnicode_READY(folded);
}

static PyObject *winnow(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *folded, *keyobj;
    unsigned long k, window;
    if (!PyArg_ParseTuple(args, "OkkO", &folded, &k, &window, &keyobj)) return NULL;
    if (parse_kw(folded, k, window) < 0) return NULL;
    const uint8_t *key = NULL;
    Py_ssize_t keylen = 0;
    if (keyobj != Py_None) {
        if (!PyBytes_Check(keyobj)) {
            PyErr_SetString(PyExc_TypeError, "key must be bytes or None");
            return NULL;
        }
        key = (const uint8_t *)PyBytes_AS_STRING(keyobj);
        keylen = PyBytes_GET_SIZE(keyobj);
        if (keylen > 64) {
            PyErr_SetString(PyExc_ValueError, "maximum key length is 64 bytes");
            return NULL;
        }
    }
    int kind = PyUnicode_KIND(folded);
    const void *data = PyUnicode_DATA(folded);
    Py_ssize_t n = PyUnicode_GET_LENGTH(folded);

    roller r;
    if (roller_init(&r, k)) return PyErr_NoMemory();
    /* monotonic deque of (index, hash), increasing hashes; at most window + 1 entries in a ring of a
     * power-of-two size (positions by mask, not division) */
    size_t qcap = 1, qhead = 0, qlen = 0;
    while (qcap < (size_t)window + 1) qcap *= 2;
    const size_t qmask = qcap - 1;
    size_t *qi = malloc(sizeof(size_t) * qcap);
    uint64_t *qh = malloc(sizeof(uint64_t) * qcap);
    fbuf picked = {0}; /* uint64 minima, possibly repeated */
    size_t last_picked = SIZE_MAX, count = 0;
    uint64_t overall = UINT64_MAX;
    if (!qi || !qh) goto nomem;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (!is_alnum(c)) continue;
        uint64_t h;
        size_t at;
        if (!roller_push(&r, c, &h, &at)) continue;
        count++;
        if (h < overall) overall = h;
        while (qlen && qh[(qhead + qlen - 1) & qmask] >= h) qlen--; /* >=: the rightmost equal survives */
        qi[(qhead + qlen) & qmask] = at;
        qh[(qhead + qlen) & qmask] = h;
        qlen++;
        if (qi[qhead] + window <= at) {
            qhead = (qhead + 1) & qmask;
            qlen--;
        }
        if (at + 1 >= window && qi[qhead] != last_picked) {
            last_picked = qi[qhead];
            if (fbuf_reserve(&picked, 8)) goto nomem;
            memcpy(picked.p + picked.len, &qh[qhead], 8);
            picked.len += 8;
        }
    }
    if (count && count < window) { /* shorter than one window: its minimum */
        if (fbuf_reserve(&picked, 8)) goto nomem;
        memcpy(picked.p + picked.len, &overall, 8);
        picked.len += 8;
    }
    size_t m = picked.len / 8, distinct = 0;
    uint64_t *raw = (uint64_t *)picked.p;
    if (m) {
        uint64_t *tmp = malloc(m * sizeof(uint64_t));
        if (!tmp) goto nomem;
        radix_sort_u64(raw, tmp, m);
        free(tmp);
        for (size_t j = 0; j < m; j++)
            if (!distinct || raw[distinct - 1] != raw[j]) raw[distinct++] = raw[j];
    }
    PyObject *keyed_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(distinct * 8));
    PyObject *raw_b = PyBytes_FromStringAndSize(m ? (const char *)raw : NULL, (Py_ssize_t)(distinct * 8));
    if (!keyed_b || !raw_b) {
        Py_XDECREF(keyed_b);
        Py_XDECREF(raw_b);
        goto fail;
    }
    uint64_t *keyed = (uint64_t *)PyBytes_AS_STRING(keyed_b);
    if (key && keylen) {
        uint64_t state[8], mw[4][16], t136[4] = {136, 136, 136, 136}, out4[4];
        b2_keyed_init(state, key, (size_t)keylen);
        memset(mw, 0, sizeof mw); /* words 1..15 of each lane's block stay zero: 8-byte messages */
        size_t j = 0;
        for (; j + 4 <= distinct; j += 4) {
            for (int l = 0; l < 4; l++) mw[l][0] = __builtin_bswap64(raw[j + l]); /* to_bytes(8, "big") */
            b2_final4(state, mw, t136, out4);
            for (int l = 0; l < 4; l++) keyed[j + l] = out4[l] & W_MASK63;
        }
        for (; j < distinct; j++) keyed[j] = b2_keyed_u64(state, raw[j]) & W_MASK63;
    } else if (key) { /* an empty key: plain BLAKE2b */
        for (size_t j = 0; j < distinct; j++) {
            uint8_t be[8];
            for (int b = 0; b < 8; b++) be[b] = (uint8_t)(raw[j] >> (56 - 8 * b));
            keyed[j] = blake2b_8(NULL, 0, be, 8) & W_MASK63;
        }
    } else {
        for (size_t j = 0; j < distinct; j++) keyed[j] = raw[j] & W_MASK63;
    }
    free(r.ring);
    free(qi);
    free(qh);
    free(picked.p);
    return Py_BuildValue("(NN)", keyed_b, raw_b);
nomem:
    PyErr_NoMemory();
fail:
    free(r.ring);
    free(qi);
    free(qh);
    free(picked.p);
    return NULL;
}

static PyObject *first_lines(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *folded, *raws;
    unsigned long k;
    if (!PyArg_ParseTuple(args, "OkO", &folded, &k, &raws)) return NULL;
    if (parse_kw(folded, k, 1) < 0) return NULL;
    PyObject *wanted = PySequence_Fast(raws, "raws must be a sequence of int");
    if (!wanted) return NULL;
    Py_ssize_t nw = PySequence_Fast_GET_SIZE(wanted);
    PyObject *out = PyDict_New();
    uint64_t *vals = malloc(sizeof(uint64_t) * (size_t)(nw ? nw : 1));
    size_t *lines_ring = malloc(sizeof(size_t) * k);
    roller r = {0};
    if (!out) goto done;
    if (!vals || !lines_ring || roller_init(&r, k)) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t j = 0; j < nw; j++) {
        vals[j] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(wanted, j));
        if (vals[j] == (uint64_t)-1 && PyErr_Occurred()) goto fail;
    }
    qsort(vals, (size_t)nw, 8, cmp_u64);
    int kind = PyUnicode_KIND(folded);
    const void *data = PyUnicode_DATA(folded);
    Py_ssize_t n = PyUnicode_GET_LENGTH(folded), left = nw;
    size_t line = 1;
    for (Py_ssize_t i = 0; i < n && left > 0; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\n') {
            line++;
            continue;
        }
        if (!is_alnum(c)) continue;
        lines_ring[r.slot] = line; /* the line of letter number r.letters */
        uint64_t h;
        size_t at;
        if (!roller_push(&r, c, &h, &at)) continue;
        size_t first_line = lines_ring[r.slot]; /* the k-gram's first letter: the oldest in the ring */
        /* binary search in the sorted wanted values */
        size_t lo = 0, hi = (size_t)nw;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (vals[mid] < h) lo = mid + 1;
            else hi = mid;
        }
        if (lo < (size_t)nw && vals[lo] == h) {
            PyObject *keyo = PyLong_FromUnsignedLongLong(h);
            if (!keyo) goto fail;
            int has = PyDict_Contains(out, keyo);
            if (has == 0) {
                PyObject *v = Py_BuildValue("(nn)", (Py_ssize_t)at, (Py_ssize_t)first_line);
                if (!v || PyDict_SetItem(out, keyo, v) < 0) {
                    Py_XDECREF(v);
                    Py_DECREF(keyo);
                    goto fail;
                }
                Py_DECREF(v);
                left--;
            }
            Py_DECREF(keyo);
            if (has < 0) goto fail;
        }
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    free(vals);
    free(lines_ring);
    free(r.ring);
    Py_DECREF(wanted);
    return out;
}

static PyObject *blake2b8(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer msg, key = {0};
    if (!PyArg_ParseTuple(args, "y*|y*", &msg, &key)) return NULL;
    PyObject *out = NULL;
    if (key.buf && key.len > 64) {
        PyErr_SetString(PyExc_ValueError, "maximum key length is 64 bytes");
    } else {
        uint64_t h = blake2b_8(key.buf, key.buf ? (size_t)key.len : 0, msg.buf, (size_t)msg.len);
        out = PyLong_FromUnsignedLongLong(h);
    }
    PyBuffer_Release(&msg);
    if (key.buf) PyBuffer_Release(&key);
    return out;
}

/* " ".join(text.split()).casefold() as UTF-8 bytes, in one pass (what fingerprint.content_hash hashes);
 * None when the text holds a lone surrogate (the caller's encode then raises as before). */
static PyObject *content_fold(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "content_fold() takes a str");
        return NULL;
    }
    if (PyUnicode_READY(arg) < 0) return NULL;
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    fbuf out = {0};
    if (fbuf_reserve(&out, (size_t)n + 16)) return PyErr_NoMemory();
    int space = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x80) {
            if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) {
                space = 1;
                continue;
            }
            if (out.len + 2 > out.cap && fbuf_reserve(&out, 2)) goto nomem;
            if (space && out.len) out.p[out.len++] = ' ';
            space = 0;
            out.p[out.len++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
            continue;
        }
        if (Py_UNICODE_ISSPACE(c)) {
            space = 1;
            continue;
        }
        if (c >= 0xD800 && c <= 0xDFFF) {
            free(out.p);
            Py_RETURN_NONE;
        }
        if (fbuf_reserve(&out, 1 + 12)) goto nomem;
        if (space && out.len) out.p[out.len++] = ' ';
        space = 0;
        Py_UCS4 folded[3];
        int k = _PyUnicode_ToFoldedFull(c, folded);
        for (int j = 0; j < k; j++) put_utf8(&out, folded[j]);
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)out.p, (Py_ssize_t)out.len);
    free(out.p);
    return result;
nomem:
    free(out.p);
    return PyErr_NoMemory();
}

/* ------------------------------------------------------------------------------------------ look-alike hosts */

/* What lookalikes._whole_host calls a host character: str.isalnum(), '-' or '_'. */
static inline int host_char(Py_UCS4 c) { return c == '-' || c == '_' || is_alnum(c); }

/* Characters a look-alike needle may hold (the caller checks every needle is made of them). */
static inline int needle_char(Py_UCS4 c) { return c == '.' || host_char(c); }

/* The hash of a needle, computed the same way forwards (host_hash) and backwards (host_spans). */
static PyObject *host_hash(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "host_hash() takes a str");
        return NULL;
    }
    if (PyUnicode_READY(arg) < 0) return NULL;
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    uint64_t h = 0;
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(arg); i++) h = h * W_BASE + PyUnicode_READ(kind, data, i);
    return PyLong_FromUnsignedLongLong(mix64(h));
}

/* host_spans(text, hashes, maxlen, need_dot) -> [(start, end), ...]
 *
 * Every span text[start:end] that is a whole host as lookalikes._whole_host decides (no host character
 * before it; after it neither a host character nor a '.' followed by one), made of at most `maxlen`
 * needle characters (holding a '.' when `need_dot`), whose host_hash is one of `hashes` (native uint64
 * bytes). In order of `end`, the longer span first at one end (the order of an Aho-Corasick pass). The
 * caller checks each span's text against its needles (a hash can collide). */
static PyObject *host_spans(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text;
    Py_buffer hashes;
    Py_ssize_t maxlen;
    int need_dot;
    if (!PyArg_ParseTuple(args, "Uy*np", &text, &hashes, &maxlen, &need_dot)) return NULL;
    PyObject *out = NULL;
    uint64_t *table = NULL;
    size_t nh = (size_t)hashes.len / 8, cap = 16;
    while (cap < nh * 4) cap *= 2;
    table = calloc(cap, sizeof(uint64_t));
    if (!table) {
        PyErr_NoMemory();
        goto done;
    }
    int has_zero = 0;
    for (size_t j = 0; j < nh; j++) {
        uint64_t v;
        memcpy(&v, (const uint8_t *)hashes.buf + 8 * j, 8);
        if (!v) {
            has_zero = 1;
            continue;
        }
        size_t at = (size_t)(v ^ (v >> 29)) & (cap - 1);
        while (table[at] && table[at] != v) at = (at + 1) & (cap - 1);
        table[at] = v;
    }
    out = PyList_New(0);
    if (!out) goto done;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t e = 1; e <= n; e++) {
        if (!needle_char(PyUnicode_READ(kind, data, e - 1))) continue;
        if (e < n) {
            Py_UCS4 after = PyUnicode_READ(kind, data, e);
            if (host_char(after)) continue;
            if (after == '.' && e + 1 < n && host_char(PyUnicode_READ(kind, data, e + 1))) continue;
        }
        Py_ssize_t first = PyList_GET_SIZE(out), s = e;
        uint64_t h = 0, power = 1;
        int dot = 0;
        while (s > 0 && e - s < maxlen) {
            Py_UCS4 c = PyUnicode_READ(kind, data, s - 1);
            if (!needle_char(c)) break;
            h += (uint64_t)c * power;
            power *= W_BASE;
            dot |= c == '.';
            s--;
            if ((!dot && need_dot) || (s > 0 && host_char(PyUnicode_READ(kind, data, s - 1)))) continue;
            uint64_t v = mix64(h);
            int hit = 0;
            if (!v) {
                hit = has_zero;
            } else {
                size_t at = (size_t)(v ^ (v >> 29)) & (cap - 1);
                while (table[at] && table[at] != v) at = (at + 1) & (cap - 1);
                hit = table[at] == v;
            }
            if (!hit) continue;
            PyObject *span = Py_BuildValue("(nn)", s, e);
            if (!span || PyList_Append(out, span) < 0) {
                Py_XDECREF(span);
                Py_CLEAR(out);
                goto done;
            }
            Py_DECREF(span);
        }
        /* the spans of this end were found shortest first: longest first, as Aho-Corasick reports them */
        Py_ssize_t last = PyList_GET_SIZE(out) - 1;
        while (first < last) {
            PyObject *a = PyList_GET_ITEM(out, first), *b = PyList_GET_ITEM(out, last);
            PyList_SET_ITEM(out, first, b);
            PyList_SET_ITEM(out, last, a);
            first++;
            last--;
        }
    }
done:
    free(table);
    PyBuffer_Release(&hashes);
    return out;
}

/* ------------------------------------------------------------------------------------------ line ends */

/* What normalize_text does before NFC, in one pass: text.replace("\r\n", "\n").replace("\r", "\n"), then
 * every character of [\x00-\x08\x0b\x0c\x0e-\x1f\x7f] replaced by a space. The same object back when
 * nothing changes (the usual case). */
static inline int is_stray_control(Py_UCS4 c) {
    return c <= 0x08 || c == 0x0B || c == 0x0C || (c >= 0x0E && c <= 0x1F) || c == 0x7F;
}

static PyObject *clean_text(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "clean_text() takes a str");
        return NULL;
    }
    if (PyUnicode_READY(arg) < 0) return NULL;
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg), first = -1, dropped = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\r' || is_stray_control(c)) {
            if (first < 0) first = i;
            if (c == '\r' && i + 1 < n && PyUnicode_READ(kind, data, i + 1) == '\n') dropped++;
        }
    }
    if (first < 0) {
        Py_INCREF(arg);
        return arg;
    }
    PyObject *out = PyUnicode_New(n - dropped, PyUnicode_MAX_CHAR_VALUE(arg));
    if (!out) return NULL;
    int okind = PyUnicode_KIND(out);
    void *odata = PyUnicode_DATA(out);
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\r') {
            if (i + 1 < n && PyUnicode_READ(kind, data, i + 1) == '\n') continue; /* "\r\n": its "\n" */
            c = '\n';
        } else if (is_stray_control(c)) {
            c = ' ';
        }
        PyUnicode_WRITE(okind, odata, o++, c);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"content_fold", content_fold, METH_O,
     "content_fold(text) -> UTF-8 of ' '.join(text.split()).casefold(), or None on a lone surrogate"},
    {"simhash", simhash, METH_O, "simhash(text) -> the signed 64-bit SimHash, or None below 12 tokens"},
    {"winnow", winnow, METH_VARARGS,
     "winnow(folded, k, window, key) -> (keyed, raw): distinct window minima as native uint64 bytes"},
    {"first_lines", first_lines, METH_VARARGS,
     "first_lines(folded, k, raws) -> {raw: (first k-gram index, line)}"},
    {"blake2b8", blake2b8, METH_VARARGS, "blake2b8(msg, key=b'') -> the 8-byte BLAKE2b digest, big-endian int"},
    {"clean_text", clean_text, METH_O,
     "clean_text(text) -> line ends unified and stray control characters as spaces (normalize_text before NFC)"},
    {"host_hash", host_hash, METH_O, "host_hash(needle) -> the hash host_spans looks needles up by"},
    {"host_spans", host_spans, METH_VARARGS,
     "host_spans(text, hashes, maxlen, need_dot) -> [(start, end)] of whole hosts whose hash is in hashes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fingerprint", "Native posting fingerprints.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fingerprint(void) {
    fill_bmp_alnum();
    return PyModule_Create(&module);
}
