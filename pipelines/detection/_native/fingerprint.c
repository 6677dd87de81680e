/* Native fingerprints of a posting: the near-duplicate SimHash and the document winnowing fingerprints.
 *
 * Why native: both read every character of a posting. The Python references (pipelines/fingerprint.py,
 * pipelines/detection/documents.py) stay the definition; this module gives bit-identical values
 * (differential tests in tests/pipelines/test_pipelines_fingerprint_native.py) a few hundred times faster.
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
 *   content_fold, host_hash / host_spans, clean_text, lower, unicode_host_lines: one-pass helpers of
 *       fingerprint.content_hash,
 *       the look-alike hosts (lookalikes.py), normalize_text (normalize.py) and str.lower (the detector's
 *       lowered posting); each described below.
 *
 * Speed (issue 12; every value unchanged, the hashes are stored): each loop over a str is compiled once
 * per PyUnicode kind (LS_INLINE functions instantiated by a switch), with branch-free paths for ASCII;
 * winnowing runs in passes over steps of 4096 characters (letters, k-gram hashes, finaliser, window
 * minima by doubling); BLAKE2b of one-block messages runs eight at a time, in 512-bit vectors where the
 * CPU has AVX-512 (x86-64-v4, checked at import), else as twice four lanes (target_clones for AVX-512VL,
 * AVX2 and the baseline). blake2b8_lanes and vector_width expose the batching to the tests, and
 * LEAKSENTINEL_FINGERPRINT_LANES=4 keeps the four-lane kernels.
 *
 * Errors: MemoryError on allocation failure, ValueError on bad parameters; nothing is silently dropped.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h> /* lower and unicode_host_lines read a 2-byte text 8 characters at a time */
#endif

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

/* The state after a key's block: BLAKE2b-8 of one-block messages under a fixed key then costs one
 * compression each instead of two (b2_batch8 from this state, byte counts 128 + length). */
static void b2_keyed_init(uint64_t h[8], const uint8_t *key, size_t keylen) {
    uint8_t block[128];
    memcpy(h, B2_IV, 8 * sizeof(uint64_t));
    h[0] ^= 0x01010000ULL ^ ((uint64_t)keylen << 8) ^ 8ULL;
    memset(block, 0, sizeof block);
    memcpy(block, key, keylen);
    b2_compress(h, block, 128, 0);
}

/* The twelve rounds with the message schedule written out: each word index is a constant, so a kernel
 * whose message words past the first few are known to be zero drops their additions at compile time. */
#define B2_ROUND(G, W, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
    do {                                                                                      \
        G(v[0], v[4], v[8], v[12], W[s0], W[s1]);                                             \
        G(v[1], v[5], v[9], v[13], W[s2], W[s3]);                                             \
        G(v[2], v[6], v[10], v[14], W[s4], W[s5]);                                            \
        G(v[3], v[7], v[11], v[15], W[s6], W[s7]);                                            \
        G(v[0], v[5], v[10], v[15], W[s8], W[s9]);                                            \
        G(v[1], v[6], v[11], v[12], W[s10], W[s11]);                                          \
        G(v[2], v[7], v[8], v[13], W[s12], W[s13]);                                           \
        G(v[3], v[4], v[9], v[14], W[s14], W[s15]);                                           \
    } while (0)
#define B2_TWELVE_ROUNDS(G, W)                                                   \
    do {                                                                         \
        B2_ROUND(G, W, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);    \
        B2_ROUND(G, W, 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);    \
        B2_ROUND(G, W, 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4);    \
        B2_ROUND(G, W, 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8);    \
        B2_ROUND(G, W, 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13);    \
        B2_ROUND(G, W, 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9);    \
        B2_ROUND(G, W, 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11);    \
        B2_ROUND(G, W, 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10);    \
        B2_ROUND(G, W, 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5);    \
        B2_ROUND(G, W, 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0);    \
        B2_ROUND(G, W, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);    \
        B2_ROUND(G, W, 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);    \
    } while (0)
/* G on vectors of any width (the rotates are whole-vector shifts) */
#define B2_GV(a, b, c, d, x, y)         \
    do {                                \
        a = a + b + (x);                \
        d = v_rotr(d ^ a, 32);          \
        c = c + d;                      \
        b = v_rotr(b ^ c, 24);          \
        a = a + b + (y);                \
        d = v_rotr(d ^ a, 16);          \
        c = c + d;                      \
        b = v_rotr(b ^ c, 63);          \
    } while (0)
#define v_rotr(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

/* Eight independent one-block messages at once: what fingerprints need, since a shingle almost always
 * fits one block and a keyed fingerprint is one block after the key's. Every lane starts from the same
 * state `h0` and compresses its final block: word w of lane j is m[w][j] (word-major, so a vector of
 * word w is one load), its byte count t[j]; out[j] gets the big-endian digest integer. Words at or past
 * `nw` must be zero in every lane (the kernels for nw <= 1 and nw <= 4 skip them).
 *
 * Two implementations, chosen when the module loads: eight 64-bit lanes in one 512-bit vector
 * (x86-64-v4, AVX-512, GCC 12 or later), else twice four lanes in 256-bit vectors compiled for AVX-512VL,
 * AVX2 and the baseline (target_clones, GCC on x86-64), or plain vector code elsewhere. */
typedef uint64_t v4u64 __attribute__((vector_size(32)));

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 11
/* x86-64-v4 (AVX-512VL): 256-bit rotates in one instruction */
#define LS_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LS_CLONES
#endif

#define v4_splat(x) ((v4u64){(x), (x), (x), (x)})

/* Lanes off..off+3 of the batch (macros and pointers, not vector arguments: a 32-byte vector passed by
 * value warns of an ABI change without AVX). */
LS_CLONES static void b2_final4(const uint64_t h0[8], const uint64_t m[16][8], int off, const uint64_t t[8],
                                uint64_t out[8]) {
    v4u64 w[16], v[16];
    for (int i = 0; i < 16; i++) memcpy(&w[i], &m[i][off], sizeof w[i]);
    for (int i = 0; i < 8; i++) {
        v[i] = v4_splat(h0[i]);
        v[i + 8] = v4_splat(B2_IV[i]);
    }
    v4u64 tv;
    memcpy(&tv, t + off, sizeof tv);
    v[12] ^= tv;
    v[14] = ~v[14];
    B2_TWELVE_ROUNDS(B2_GV, w);
    v4u64 r = v4_splat(h0[0]) ^ v[0] ^ v[8];
    uint64_t lanes[4];
    memcpy(lanes, &r, sizeof lanes);
    for (int j = 0; j < 4; j++) out[off + j] = __builtin_bswap64(lanes[j]);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define LS_V8 1
typedef uint64_t v8u64 __attribute__((vector_size(64)));
#define v8_splat(x) ((v8u64){(x), (x), (x), (x), (x), (x), (x), (x)})

/* Inlined into the AVX-512 kernels below only (never compiled on its own); `nw` is a constant there. */
static inline __attribute__((always_inline)) void b2_final8_body(const uint64_t h0[8], const uint64_t m[16][8],
                                                                 const uint64_t t[8], uint64_t out[8],
                                                                 const int nw) {
    v8u64 w[16], v[16];
    for (int i = 0; i < 16; i++) {
        if (i < nw) memcpy(&w[i], m[i], sizeof w[i]);
        else w[i] = v8_splat(0);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = v8_splat(h0[i]);
        v[i + 8] = v8_splat(B2_IV[i]);
    }
    v8u64 tv;
    memcpy(&tv, t, sizeof tv);
    v[12] ^= tv;
    v[14] = ~v[14];
    B2_TWELVE_ROUNDS(B2_GV, w);
    v8u64 r = v8_splat(h0[0]) ^ v[0] ^ v[8];
    uint64_t lanes[8];
    memcpy(lanes, &r, sizeof lanes);
    for (int j = 0; j < 8; j++) out[j] = __builtin_bswap64(lanes[j]);
}

#define LS_V4 __attribute__((target("arch=x86-64-v4")))
LS_V4 static void b2_final8_w1(const uint64_t h0[8], const uint64_t m[16][8], const uint64_t t[8], uint64_t out[8]) {
    b2_final8_body(h0, m, t, out, 1);
}
LS_V4 static void b2_final8_w4(const uint64_t h0[8], const uint64_t m[16][8], const uint64_t t[8], uint64_t out[8]) {
    b2_final8_body(h0, m, t, out, 4);
}
LS_V4 static void b2_final8_w16(const uint64_t h0[8], const uint64_t m[16][8], const uint64_t t[8],
                                uint64_t out[8]) {
    b2_final8_body(h0, m, t, out, 16);
}
#endif

static int b2_have_v8; /* set at import: the CPU runs the 512-bit kernels */

/* LEAKSENTINEL_FINGERPRINT_LANES=4 keeps the four-lane kernels (what a CPU without AVX-512 runs), so the
 * tests compare both on one machine. */
static void b2_detect(void) {
#ifdef LS_V8
    __builtin_cpu_init();
    const char *lanes = getenv("LEAKSENTINEL_FINGERPRINT_LANES");
    b2_have_v8 = __builtin_cpu_supports("x86-64-v4") != 0 && !(lanes && strcmp(lanes, "4") == 0);
#endif
}

static inline void b2_batch8(const uint64_t h0[8], const uint64_t m[16][8], const uint64_t t[8], uint64_t out[8],
                             int nw) {
#ifdef LS_V8
    if (b2_have_v8) {
        if (nw <= 1) b2_final8_w1(h0, m, t, out);
        else if (nw <= 4) b2_final8_w4(h0, m, t, out);
        else b2_final8_w16(h0, m, t, out);
        return;
    }
#endif
    (void)nw;
    b2_final4(h0, m, 0, t, out);
    b2_final4(h0, m, 4, t, out);
}

/* 8 bytes at p as a little-endian word (unaligned). */
static inline uint64_t ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* LSD radix sort of n uint64 in six passes of 11 bits, `tmp` of n elements: the six histograms are
 * counted in one read, and a pass whose digit is the same in every value is skipped. */
#define RADIX_BITS 11
#define RADIX_PASSES 6
#define RADIX_SIZE (1u << RADIX_BITS)
static int radix_sort_u64(uint64_t *a, uint64_t *tmp, size_t n) {
    size_t *count = calloc((size_t)RADIX_PASSES * RADIX_SIZE, sizeof(size_t));
    if (!count) return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = a[i];
        for (int p = 0; p < RADIX_PASSES; p++) count[p * RADIX_SIZE + ((v >> (RADIX_BITS * p)) & (RADIX_SIZE - 1))]++;
    }
    uint64_t *src = a, *dst = tmp;
    for (int p = 0; p < RADIX_PASSES; p++) {
        size_t *c = count + p * RADIX_SIZE;
        const unsigned shift = RADIX_BITS * p;
        if (n && c[(src[0] >> shift) & (RADIX_SIZE - 1)] == n) continue; /* every value has this digit */
        size_t sum = 0;
        for (unsigned b = 0; b < RADIX_SIZE; b++) {
            size_t here = c[b];
            c[b] = sum;
            sum += here;
        }
        for (size_t i = 0; i < n; i++) dst[c[(src[i] >> shift) & (RADIX_SIZE - 1)]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
    free(count);
    return 0;
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

/* Per-kind code: every loop over the characters of a str is written once as an always-inline function
 * taking the PyUnicode kind, and instantiated for each kind (1, 2 or 4 bytes a character) by a switch,
 * so the loop reads its array directly instead of branching on the kind at every character. */
#define LS_INLINE static inline __attribute__((always_inline))

LS_INLINE Py_UCS4 rd(int kind, const void *data, Py_ssize_t i) {
    if (kind == PyUnicode_1BYTE_KIND) return ((const Py_UCS1 *)data)[i];
    if (kind == PyUnicode_2BYTE_KIND) return ((const Py_UCS2 *)data)[i];
    return ((const Py_UCS4 *)data)[i];
}

/* Python's re `[^\W_]` (and str.isalnum): alphabetic, decimal, digit or numeric. The Basic Multilingual
 * Plane is answered from a bitmap filled at import from the interpreter's own tables (so it follows the
 * running Python's Unicode version), the rest by asking the interpreter. Also from the interpreter: which
 * BMP characters case-fold to themselves alone (their UTF-8 is then written without a fold lookup). */
static uint8_t bmp_alnum[0x10000 / 8];
static uint8_t bmp_fold_self[0x10000 / 8];
static uint8_t latin1_alnum[256]; /* 0 or 1 */
static uint8_t ascii_lower[128];
static uint8_t ascii_token_byte[128]; /* a letter or digit lowered, anything else U+001F (a token's end) */
static uint8_t ascii_space[128];      /* 1 for what str.split() splits at: " \t\n\v\f\r" and \x1c-\x1f */
static uint8_t ascii_fold_byte[128];  /* a white-space character as " ", any other lowered */

static void fill_tables(void) {
    for (Py_UCS4 c = 0; c < 0x10000; c++) {
        if (Py_UNICODE_ISALNUM(c)) bmp_alnum[c >> 3] |= (uint8_t)(1u << (c & 7));
        Py_UCS4 folded[3];
        if (_PyUnicode_ToFoldedFull(c, folded) == 1 && folded[0] == c)
            bmp_fold_self[c >> 3] |= (uint8_t)(1u << (c & 7));
    }
    for (int c = 0; c < 256; c++) latin1_alnum[c] = (bmp_alnum[c >> 3] >> (c & 7)) & 1;
    for (int c = 0; c < 128; c++) {
        ascii_lower[c] = (uint8_t)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
        ascii_token_byte[c] = latin1_alnum[c] ? ascii_lower[c] : 0x1F;
        ascii_space[c] = (uint8_t)(c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F));
        ascii_fold_byte[c] = ascii_space[c] ? ' ' : ascii_lower[c];
    }
}

static inline int is_alnum(Py_UCS4 c) {
    if (c < 0x10000) return (bmp_alnum[c >> 3] >> (c & 7)) & 1;
    return Py_UNICODE_ISALNUM(c);
}

/* is_alnum for a character of a str of this kind */
LS_INLINE int alnum_k(int kind, Py_UCS4 c) {
    if (kind == PyUnicode_1BYTE_KIND) return latin1_alnum[c];
    if (kind == PyUnicode_4BYTE_KIND && c >= 0x10000) return Py_UNICODE_ISALNUM(c);
    return (bmp_alnum[c >> 3] >> (c & 7)) & 1;
}

static inline int is_cjk(Py_UCS4 c) {
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF);
}

/* Appends the UTF-8 of str.casefold() of one character (room for 12 bytes reserved by the caller). */
LS_INLINE void fold_put(fbuf *b, Py_UCS4 c) {
    if (c < 0x80) {
        b->p[b->len++] = ascii_lower[c];
        return;
    }
    if (c < 0x10000 && ((bmp_fold_self[c >> 3] >> (c & 7)) & 1)) {
        put_utf8(b, c);
        return;
    }
    Py_UCS4 folded[3];
    int n = _PyUnicode_ToFoldedFull(c, folded);
    for (int j = 0; j < n; j++) put_utf8(b, folded[j]);
}

/* 0 when `arg` is a str (made ready), else -1 with a TypeError naming the function: every function
 * below that takes one text starts so. */
static int need_str(PyObject *arg, const char *function) {
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a str, not %.100s", function, Py_TYPE(arg)->tp_name);
        return -1;
    }
    return PyUnicode_READY(arg);
}

/* ------------------------------------------------------------------------------------------ SimHash */

#define SIM_MAX_CHARS 2000000
#define SIM_MAX_TOKENS 50000
#define SIM_MIN_TOKENS 12
#define SIM_SHINGLE 3

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

/* The case-folded UTF-8 of the tokens, each followed by U+001F: token t is b[starts[t]:starts[t+1]-1], and
 * shingle t (tokens t, t+1, t+2 joined by U+001F) is the contiguous b[starts[t]:starts[t+3]-1]. Returns
 * the token count, -1 when out of memory.
 *
 * Character by character with one state, `run`: inside a token of letters and digits (a CJK character
 * inside it stays in it; one that starts a token is a token alone). Blocks of 32 characters all ASCII
 * (most, even in Chinese dumps) take the branch-free steps of sim_tokens_ascii below, unless the token
 * limit is near (then the exact steps). `starts` holds SIM_MAX_TOKENS + 258 entries. */
#define SIM_BLOCK 32
LS_INLINE Py_ssize_t sim_tokens(int kind, const void *data, Py_ssize_t n, fbuf *b, uint32_t *starts) {
    size_t tokens = 0;
    unsigned run = 0;
    for (Py_ssize_t from = 0; from < n; from += SIM_BLOCK) {
        Py_ssize_t to = n - from > SIM_BLOCK ? from + SIM_BLOCK : n;
        if (fbuf_reserve(b, 13 * SIM_BLOCK + 1)) return -1; /* 12 bytes of a fold and a U+001F a character */
        uint8_t *out = b->p;
        unsigned wide = 0;
        for (Py_ssize_t i = from; i < to; i++) wide |= rd(kind, data, i) >= 0x80;
        if (!wide && tokens + SIM_BLOCK <= SIM_MAX_TOKENS) {
            size_t o = b->len;
            for (Py_ssize_t i = from; i < to; i++) {
                Py_UCS4 c = rd(kind, data, i);
                unsigned a = latin1_alnum[c];
                starts[tokens] = (uint32_t)o; /* kept only where a token starts */
                tokens += a & !run;
                out[o] = ascii_token_byte[c];
                o += a | run;
                run = a;
            }
            b->len = o;
            continue;
        }
        for (Py_ssize_t i = from; i < to; i++) {
            Py_UCS4 c = rd(kind, data, i);
            int alnum = alnum_k(kind, c);
            if (run && alnum) {
                fold_put(b, c);
                continue;
            }
            if (run) { /* the run ends before c */
                b->p[b->len++] = 0x1F;
                run = 0;
            }
            int cjk = kind != PyUnicode_1BYTE_KIND && is_cjk(c);
            if (!cjk && !alnum) continue;
            if (tokens == SIM_MAX_TOKENS) return (Py_ssize_t)tokens; /* the limit: this token is not read */
            starts[tokens++] = (uint32_t)b->len;
            fold_put(b, c);
            if (cjk) b->p[b->len++] = 0x1F; /* a CJK character starting a token is a token alone */
            else run = 1;
        }
    }
    if (run) b->p[b->len++] = 0x1F; /* the text ends inside a token */
    return (Py_ssize_t)tokens;
}

/* sim_tokens for an ASCII str, without a branch per character: every character writes its byte (lowered,
 * or U+001F past a letter or digit) and the output advances inside a token and at its end; a token's start
 * is recorded where a letter or digit follows something else. 256 characters at a time until the token
 * after the last one wanted has started. `b` holds n + 1 bytes, starts SIM_MAX_TOKENS + 258 entries. */
static Py_ssize_t sim_tokens_ascii(const uint8_t *text, Py_ssize_t n, fbuf *b, uint32_t *starts) {
    uint8_t *out = b->p;
    size_t o = 0, t = 0;
    unsigned prev = 0; /* the previous character is a letter or digit */
    for (Py_ssize_t from = 0; from < n && t <= SIM_MAX_TOKENS; from += 256) {
        Py_ssize_t to = n - from > 256 ? from + 256 : n;
        for (Py_ssize_t i = from; i < to; i++) {
            uint8_t c = text[i];
            unsigned a = latin1_alnum[c];
            starts[t] = (uint32_t)o; /* kept only where a token starts: t moves past it */
            t += a & !prev;
            out[o] = ascii_token_byte[c];
            o += a | prev;
            prev = a;
        }
    }
    if (t > SIM_MAX_TOKENS) { /* the first token past the limit has started: cut before it */
        t = SIM_MAX_TOKENS;
        o = starts[t];
    } else if (prev) {
        out[o++] = 0x1F; /* the text ends inside a token */
    }
    b->len = o;
    return (Py_ssize_t)t;
}

static PyObject *simhash(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "simhash") < 0) return NULL;
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    if (n > SIM_MAX_CHARS) n = SIM_MAX_CHARS;

    fbuf bytes = {0};
    size_t maxtok = (size_t)(n < SIM_MAX_TOKENS ? n : SIM_MAX_TOKENS);
    uint32_t *starts = malloc(sizeof(uint32_t) * (maxtok + 258)); /* the ASCII path's slack: see there */
    if (!starts || fbuf_reserve(&bytes, (size_t)n + 64)) goto nomem;
    Py_ssize_t tokens;
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        if (PyUnicode_IS_ASCII(arg)) {
            tokens = sim_tokens_ascii((const uint8_t *)data, n, &bytes, starts);
            break;
        }
        tokens = sim_tokens(PyUnicode_1BYTE_KIND, data, n, &bytes, starts);
        break;
    case PyUnicode_2BYTE_KIND:
        tokens = sim_tokens(PyUnicode_2BYTE_KIND, data, n, &bytes, starts);
        break;
    default:
        tokens = sim_tokens(PyUnicode_4BYTE_KIND, data, n, &bytes, starts);
        break;
    }
    if (tokens < 0) goto nomem;
    if (tokens < SIM_MIN_TOKENS) {
        free(starts);
        free(bytes.p);
        Py_RETURN_NONE;
    }
    starts[tokens] = (uint32_t)bytes.len;
    if (fbuf_reserve(&bytes, 8)) goto nomem; /* the last word of a lane may read up to 7 bytes past a shingle */

    bitcount bc;
    memset(&bc, 0, sizeof bc);
    uint64_t h0[8], m[16][8] __attribute__((aligned(64))), lens[8], hashes[8];
    memcpy(h0, B2_IV, sizeof h0);
    h0[0] ^= 0x01010000ULL ^ 8ULL; /* no key, 8-byte digest */
    memset(m, 0, sizeof m);
    int lanes = 0, nwmax = 0;
    size_t shingles = (size_t)tokens - SIM_SHINGLE + 1;
    for (size_t t = 0; t < shingles; t++) {
        size_t from = starts[t], len = starts[t + SIM_SHINGLE] - 1 - from;
        const uint8_t *p = bytes.p + from;
        if (len > 128) { /* a long shingle: several blocks, one at a time */
            bitcount_add(&bc, blake2b_8(NULL, 0, p, len));
            continue;
        }
        int nw = (int)((len + 7) / 8); /* at least 5 bytes: three tokens and two separators */
        for (int i = 0; i < nw - 1; i++) m[i][lanes] = ld64(p + 8 * i);
        size_t tail = len - 8 * (size_t)(nw - 1); /* 1..8 bytes in the last word, zero-padded */
        uint64_t last = ld64(p + 8 * (nw - 1));
        if (tail < 8) last &= (1ULL << (8 * tail)) - 1;
        m[nw - 1][lanes] = last;
        lens[lanes] = len;
        if (nw > nwmax) nwmax = nw;
        if (++lanes < 8) continue;
        b2_batch8(h0, m, lens, hashes, nwmax);
        for (int j = 0; j < 8; j++) bitcount_add(&bc, hashes[j]);
        memset(m, 0, sizeof m[0] * (size_t)nwmax); /* words past a lane's message stay zero */
        lanes = 0;
        nwmax = 0;
    }
    if (lanes) { /* the last, partial batch: idle lanes hash nothing */
        for (int j = lanes; j < 8; j++) lens[j] = 0;
        b2_batch8(h0, m, lens, hashes, nwmax);
        for (int j = 0; j < lanes; j++) bitcount_add(&bc, hashes[j]);
    }
    bitcount_flush(&bc);
    uint64_t value = 0;
    for (int bit = 0; bit < 64; bit++) /* weight: +1 per hash with the bit set, -1 per hash without */
        if (2 * bc.ones[bit] - bc.total > 0) value |= 1ULL << bit;
    free(starts);
    free(bytes.p);
    return PyLong_FromLongLong((long long)(int64_t)value);
nomem:
    free(starts);
    free(bytes.p);
    return PyErr_NoMemory();
}

/* ------------------------------------------------------------------------------------------ winnowing */

#define W_BASE 0x100000001B3ULL
#define W_MASK63 0x7FFFFFFFFFFFFFFFULL
#define W_CHUNK 4096       /* characters read per step: at most as many letters and k-gram hashes */
#define W_SMALL_WINDOW 256  /* windows up to this size: minima by doubling, larger by a monotonic deque */

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

/* Winnowing in steps of W_CHUNK characters, each step a few simple passes instead of one loop full of
 * unpredictable branches: the letters and digits appended to a ring (branch-free: every character is
 * written, the count advances by is_alnum), their k-gram polynomial hashes, the splitmix finaliser over
 * those (vectorised), then the window minima. */

/* Appends the letters and digits of data[from:to] to `ring` (a power of two `mask + 1` long) from the
 * letter count `cnt`; returns the new count. Writes one slot past the last letter. */
LS_INLINE size_t w_letters(int kind, const void *data, Py_ssize_t from, Py_ssize_t to, uint32_t *ring, size_t mask,
                           size_t cnt) {
    for (Py_ssize_t i = from; i < to; i++) {
        Py_UCS4 c = rd(kind, data, i);
        ring[cnt & mask] = c;
        cnt += (size_t)alnum_k(kind, c);
    }
    return cnt;
}

static size_t w_letters_1(const void *d, Py_ssize_t a, Py_ssize_t b, uint32_t *r, size_t m, size_t c) {
    return w_letters(PyUnicode_1BYTE_KIND, d, a, b, r, m, c);
}
static size_t w_letters_2(const void *d, Py_ssize_t a, Py_ssize_t b, uint32_t *r, size_t m, size_t c) {
    return w_letters(PyUnicode_2BYTE_KIND, d, a, b, r, m, c);
}
static size_t w_letters_4(const void *d, Py_ssize_t a, Py_ssize_t b, uint32_t *r, size_t m, size_t c) {
    return w_letters(PyUnicode_4BYTE_KIND, d, a, b, r, m, c);
}

/* The polynomial hashes (not yet mixed) of the k-grams ending at letters from..to-1, into out; *h carries
 * the hash of the last k letters from call to call. Returns how many were written. */
static size_t w_roll(const uint32_t *ring, size_t mask, size_t k, uint64_t base_k, size_t from, size_t to,
                     uint64_t *h_io, uint64_t *out) {
    uint64_t h = *h_io;
    size_t o = 0, j = from;
    for (; j < to && j < k; j++) { /* the first k letters: no letter leaves yet */
        h = h * W_BASE + ring[j & mask];
        if (j + 1 == k) out[o++] = h;
    }
    /* (h - oldest * B^(k-1)) * B + c = h * B + d with d = c - oldest * B^k off the chain; two letters a
     * step, h * B^2 + (d1 * B + d2), so the chain is one multiply-add per two letters */
    const uint64_t base2 = W_BASE * W_BASE;
    for (; j + 1 < to; j += 2) {
        uint64_t d1 = (uint64_t)ring[j & mask] - (uint64_t)ring[(j - k) & mask] * base_k;
        uint64_t d2 = (uint64_t)ring[(j + 1) & mask] - (uint64_t)ring[(j + 1 - k) & mask] * base_k;
        out[o] = h * W_BASE + d1;
        h = h * base2 + (d1 * W_BASE + d2);
        out[o + 1] = h;
        o += 2;
    }
    for (; j < to; j++) {
        h = h * W_BASE + ((uint64_t)ring[j & mask] - (uint64_t)ring[(j - k) & mask] * base_k);
        out[o++] = h;
    }
    *h_io = h;
    return o;
}

LS_CLONES static void w_mix(uint64_t *h, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = mix64(h[i]);
}

#define W_MIN(x, y) ((x) < (y) ? (x) : (y))

static inline void w_min_pass(uint64_t *restrict dst, const uint64_t *restrict src, size_t count, size_t s) {
    for (size_t i = 0; i < count; i++) dst[i] = W_MIN(src[i], src[i + s]);
}

/* dst[i] = min(src[i + 4j] for j < terms): `terms` a constant where inlined (the caller's switch). */
static inline __attribute__((always_inline)) void w_min_terms(uint64_t *restrict dst, const uint64_t *restrict src,
                                                              size_t count, const int terms) {
    for (size_t i = 0; i < count; i++) {
        uint64_t v = src[i];
        for (int j = 1; j < terms; j++) v = W_MIN(v, src[i + 4 * (size_t)j]);
        dst[i] = v;
    }
}

/* p[s] = min(h[s:s+w]) for every s <= len - w (len >= w); a and b are scratch of len elements.
 * Windows of 4 to 32 (the default is 20) in two or three passes: minima of four, then of the w / 4
 * whole fours from s and the four ending at s + w when 4 does not divide w; others by doubling spans pass by pass, as
 * documents._window_minima_np does. */
LS_CLONES static const uint64_t *w_minima(const uint64_t *h, size_t len, size_t w, uint64_t *a, uint64_t *b) {
    if (w >= 4 && w <= 32) {
        size_t c4 = len - 3; /* a[i] = min(h[i:i+4]) */
        for (size_t i = 0; i < c4; i++) a[i] = W_MIN(W_MIN(h[i], h[i + 1]), W_MIN(h[i + 2], h[i + 3]));
        size_t count = len - w + 1;
        switch (w / 4) { /* the whole fours from i */
        case 1: w_min_terms(b, a, count, 1); break;
        case 2: w_min_terms(b, a, count, 2); break;
        case 3: w_min_terms(b, a, count, 3); break;
        case 4: w_min_terms(b, a, count, 4); break;
        case 5: w_min_terms(b, a, count, 5); break;
        case 6: w_min_terms(b, a, count, 6); break;
        case 7: w_min_terms(b, a, count, 7); break;
        default: w_min_terms(b, a, count, 8); break;
        }
        if (w % 4) /* and the four ending at i + w, overlapping the last whole one */
            for (size_t i = 0; i < count; i++) b[i] = W_MIN(b[i], a[i + w - 4]);
        return b;
    }
    const uint64_t *src = h;
    uint64_t *dst = a;
    size_t span = 1, count = len;
    while (span < w) {
        size_t s = span * 2 <= w ? span : w - span;
        count -= s;
        w_min_pass(dst, src, count, s);
        src = dst;
        dst = dst == a ? b : a;
        span += s;
    }
    return src;
}

typedef struct { /* a monotonic deque of (index, hash), increasing hashes, for windows past W_SMALL_WINDOW */
    size_t *qi;
    uint64_t *qh;
    size_t mask, head, len, last_picked;
} wdeque;

static int w_deque_add(wdeque *q, const uint64_t *hashes, size_t nh, size_t base, size_t window, fbuf *picked) {
    for (size_t i = 0; i < nh; i++) {
        uint64_t h = hashes[i];
        size_t at = base + i;
        while (q->len && q->qh[(q->head + q->len - 1) & q->mask] >= h) q->len--; /* the rightmost equal survives */
        q->qi[(q->head + q->len) & q->mask] = at;
        q->qh[(q->head + q->len) & q->mask] = h;
        q->len++;
        if (q->qi[q->head] + window <= at) {
            q->head = (q->head + 1) & q->mask;
            q->len--;
        }
        if (at + 1 >= window && q->qi[q->head] != q->last_picked) {
            q->last_picked = q->qi[q->head];
            if (fbuf_reserve(picked, 8)) return -1;
            memcpy(picked->p + picked->len, &q->qh[q->head], 8);
            picked->len += 8;
        }
    }
    return 0;
}

/* The window minima of a folded str into *picked as uint64 (a minimum repeats when the text does). 0, or
 * -1 out of memory (no exception set). */
static int winnow_picked(int kind, const void *data, Py_ssize_t n, unsigned long k, unsigned long window,
                         fbuf *picked) {
    size_t (*letters_of)(const void *, Py_ssize_t, Py_ssize_t, uint32_t *, size_t, size_t) =
        kind == PyUnicode_1BYTE_KIND ? w_letters_1 : kind == PyUnicode_2BYTE_KIND ? w_letters_2 : w_letters_4;
    const int small = window <= W_SMALL_WINDOW;
    size_t lcap = 1, hcap = W_CHUNK + (small ? window : 0);
    while (lcap < W_CHUNK + (size_t)k + 1) lcap *= 2; /* this step's letters and the k before them */
    int rc = -1;
    uint32_t *ring = malloc(sizeof(uint32_t) * lcap);
    uint64_t *hb = malloc(sizeof(uint64_t) * hcap);
    uint64_t *ma = small ? malloc(sizeof(uint64_t) * hcap) : NULL, *mb = small ? malloc(sizeof(uint64_t) * hcap) : NULL;
    wdeque q = {NULL, NULL, 0, 0, 0, SIZE_MAX};
    if (!ring || !hb || (small && (!ma || !mb))) goto done;
    if (!small) {
        size_t qcap = 1;
        while (qcap < (size_t)window + 1) qcap *= 2;
        q.mask = qcap - 1;
        q.qi = malloc(sizeof(size_t) * qcap);
        q.qh = malloc(sizeof(uint64_t) * qcap);
        if (!q.qi || !q.qh) goto done;
    }
    const uint64_t base_k = upow(W_BASE, k);
    size_t letters = 0, hlen = 0, hashes = 0;
    uint64_t h = 0, overall = UINT64_MAX, last = 0;
    for (Py_ssize_t pos = 0; pos < n; pos += W_CHUNK) {
        Py_ssize_t end = n - pos > W_CHUNK ? pos + W_CHUNK : n;
        size_t before = letters;
        letters = letters_of(data, pos, end, ring, lcap - 1, letters);
        size_t nh = w_roll(ring, lcap - 1, k, base_k, before, letters, &h, hb + hlen);
        if (!nh) continue;
        w_mix(hb + hlen, nh);
        if (!small) {
            for (size_t i = 0; i < nh; i++) overall = hb[i] < overall ? hb[i] : overall;
            if (w_deque_add(&q, hb, nh, hashes, window, picked)) goto done;
            hashes += nh;
            continue;
        }
        size_t was = hashes;
        hashes += nh;
        hlen += nh;
        if (hlen < window) continue;
        size_t nwin = hlen - window + 1;
        const uint64_t *mins = w_minima(hb, hlen, window, ma, mb);
        if (fbuf_reserve(picked, 8 * nwin)) goto done;
        uint64_t *out = (uint64_t *)(picked->p + picked->len);
        size_t np = 0;
        if (was < window) last = ~mins[0]; /* the first window: always a new minimum */
        for (size_t s = 0; s < nwin; s++) { /* a run of windows with one minimum gives it once */
            uint64_t v = mins[s];
            out[np] = v;
            np += v != last;
            last = v;
        }
        picked->len += 8 * np;
        memmove(hb, hb + nwin, sizeof(uint64_t) * (window - 1)); /* the next window starts here */
        hlen = window - 1;
    }
    if (hashes && hashes < window) { /* shorter than one window: its minimum */
        if (small)
            for (size_t i = 0; i < hlen; i++) overall = hb[i] < overall ? hb[i] : overall;
        if (fbuf_reserve(picked, 8)) goto done;
        memcpy(picked->p + picked->len, &overall, 8);
        picked->len += 8;
    }
    rc = 0;
done:
    free(ring);
    free(hb);
    free(ma);
    free(mb);
    free(q.qi);
    free(q.qh);
    return rc;
}

/* The key argument: bytes of at most 64 (*key NULL for None). 0, or -1 with an exception. */
static int winnow_key(PyObject *keyobj, const uint8_t **key, Py_ssize_t *keylen) {
    *key = NULL;
    *keylen = 0;
    if (keyobj == Py_None) return 0;
    if (!PyBytes_Check(keyobj)) {
        PyErr_SetString(PyExc_TypeError, "key must be bytes or None");
        return -1;
    }
    *key = (const uint8_t *)PyBytes_AS_STRING(keyobj);
    *keylen = PyBytes_GET_SIZE(keyobj);
    if (*keylen > 64) {
        PyErr_SetString(PyExc_ValueError, "maximum key length is 64 bytes");
        return -1;
    }
    return 0;
}

/* The stored fingerprints of raw[0..m) into keyed[0..m): keyed BLAKE2b-8 of each big-endian value, eight
 * lanes at a time; plain BLAKE2b-8 under an empty key; the value itself without a key. 63 bits each. */
static void winnow_keyed(const uint64_t *raw, size_t m, const uint8_t *key, Py_ssize_t keylen, uint64_t *keyed) {
    if (key && keylen) {
        uint64_t state[8], mw[16][8] __attribute__((aligned(64))), t136[8], out8[8];
        b2_keyed_init(state, key, (size_t)keylen);
        memset(mw, 0, sizeof mw); /* words 1..15 of each lane's block stay zero: 8-byte messages */
        for (int l = 0; l < 8; l++) t136[l] = 136;
        for (size_t j = 0; j < m; j += 8) {
            size_t lanes = m - j < 8 ? m - j : 8;
            for (size_t l = 0; l < 8; l++) mw[0][l] = l < lanes ? __builtin_bswap64(raw[j + l]) : 0; /* to_bytes(8, "big") */
            b2_batch8(state, mw, t136, out8, 1);
            for (size_t l = 0; l < lanes; l++) keyed[j + l] = out8[l] & W_MASK63;
        }
    } else if (key) { /* an empty key: plain BLAKE2b */
        for (size_t j = 0; j < m; j++) {
            uint8_t be[8];
            for (int b = 0; b < 8; b++) be[b] = (uint8_t)(raw[j] >> (56 - 8 * b));
            keyed[j] = blake2b_8(NULL, 0, be, 8) & W_MASK63;
        }
    } else {
        for (size_t j = 0; j < m; j++) keyed[j] = raw[j] & W_MASK63;
    }
}

static PyObject *winnow(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *folded, *keyobj;
    unsigned long k, window;
    const uint8_t *key;
    Py_ssize_t keylen;
    if (!PyArg_ParseTuple(args, "OkkO", &folded, &k, &window, &keyobj)) return NULL;
    if (parse_kw(folded, k, window) < 0 || winnow_key(keyobj, &key, &keylen) < 0) return NULL;
    fbuf picked = {0}; /* uint64 minima, possibly repeated */
    if (winnow_picked(PyUnicode_KIND(folded), PyUnicode_DATA(folded), PyUnicode_GET_LENGTH(folded), k, window,
                      &picked) < 0)
        goto nomem;
    size_t m = picked.len / 8, distinct = 0;
    uint64_t *raw = (uint64_t *)picked.p;
    if (m) {
        uint64_t *tmp = malloc(m * sizeof(uint64_t));
        if (!tmp) goto nomem;
        int sorted = radix_sort_u64(raw, tmp, m);
        free(tmp);
        if (sorted < 0) goto nomem;
        for (size_t j = 0; j < m; j++)
            if (!distinct || raw[distinct - 1] != raw[j]) raw[distinct++] = raw[j];
    }
    PyObject *keyed_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(distinct * 8));
    PyObject *raw_b = PyBytes_FromStringAndSize(m ? (const char *)raw : NULL, (Py_ssize_t)(distinct * 8));
    if (!keyed_b || !raw_b) {
        Py_XDECREF(keyed_b);
        Py_XDECREF(raw_b);
        free(picked.p);
        return NULL;
    }
    winnow_keyed(raw, distinct, key, keylen, (uint64_t *)PyBytes_AS_STRING(keyed_b));
    free(picked.p);
    return Py_BuildValue("(NN)", keyed_b, raw_b);
nomem:
    free(picked.p);
    return PyErr_NoMemory();
}

/* raw[0..m) without repeats, in place, in first-seen order; returns how many are left (SIZE_MAX out of
 * memory). An open-addressing set of the values (window minima of mixed hashes: their low bits are
 * random), which a posting's tens of thousands of minima fill in one pass where a sort takes six. */
static size_t distinct_in_place(uint64_t *raw, size_t m) {
    size_t cap = 16;
    while (cap < 2 * m) cap *= 2;
    uint64_t *slots = calloc(cap, sizeof(uint64_t)); /* 0 is an empty slot; the value 0 is kept apart */
    if (!slots) return SIZE_MAX;
    size_t mask = cap - 1, out = 0;
    int zero_seen = 0;
    for (size_t j = 0; j < m; j++) {
        uint64_t v = raw[j];
        if (v == 0) {
            if (!zero_seen) raw[out++] = 0;
            zero_seen = 1;
            continue;
        }
        size_t i = (size_t)(v ^ (v >> 32)) & mask;
        while (slots[i] && slots[i] != v) i = (i + 1) & mask;
        if (slots[i]) continue;
        slots[i] = v;
        raw[out++] = v;
    }
    free(slots);
    return out;
}

/* winnow_present(folded, k, window, key, known, flags) -> [(fingerprint, raw minimum)], the posting's
 * fingerprints found in `known` (the registered ones, sorted native uint64), each once. `flags` (a power
 * of two of bytes) is nonzero at index fp & (len - 1) for every known fp: most posting fingerprints are
 * ruled out by that one load, the rest take a binary search. What a scan needs of `winnow` without the
 * two arrays of every fingerprint, which a posting of tens of thousands would copy for a few matches. */
static PyObject *winnow_present(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *folded, *keyobj;
    unsigned long k, window;
    Py_buffer known = {0}, flags = {0};
    const uint8_t *key;
    Py_ssize_t keylen;
    if (!PyArg_ParseTuple(args, "OkkOy*y*", &folded, &k, &window, &keyobj, &known, &flags)) return NULL;
    PyObject *out = NULL;
    fbuf picked = {0};
    uint64_t *keyed = NULL;
    if (parse_kw(folded, k, window) < 0 || winnow_key(keyobj, &key, &keylen) < 0) goto done;
    size_t nflags = (size_t)flags.len, nknown = (size_t)known.len / 8;
    if (known.len % 8 || nflags == 0 || (nflags & (nflags - 1))) {
        PyErr_SetString(PyExc_ValueError, "known: uint64 values; flags: a power of two of bytes");
        goto done;
    }
    if (winnow_picked(PyUnicode_KIND(folded), PyUnicode_DATA(folded), PyUnicode_GET_LENGTH(folded), k, window,
                      &picked) < 0)
        goto nomem;
    uint64_t *raw = (uint64_t *)picked.p;
    size_t m = picked.len / 8 ? distinct_in_place(raw, picked.len / 8) : 0;
    if (m == SIZE_MAX) goto nomem;
    keyed = malloc((m ? m : 1) * sizeof(uint64_t));
    if (!keyed) goto nomem;
    winnow_keyed(raw, m, key, keylen, keyed);
    out = PyList_New(0);
    if (!out) goto done;
    const uint8_t *flag = flags.buf;
    const uint64_t *kn = known.buf;
    for (size_t j = 0; j < m; j++) {
        uint64_t fp = keyed[j];
        if (!flag[fp & (nflags - 1)]) continue;
        size_t lo = 0, hi = nknown; /* the first known value >= fp */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (kn[mid] < fp) lo = mid + 1;
            else hi = mid;
        }
        if (lo == nknown || kn[lo] != fp) continue;
        PyObject *pair = Py_BuildValue("(KK)", (unsigned long long)fp, (unsigned long long)raw[j]);
        if (!pair || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(pair);
    }
    goto done;
nomem:
    PyErr_NoMemory();
done:
    free(picked.p);
    free(keyed);
    PyBuffer_Release(&known);
    PyBuffer_Release(&flags);
    return out;
}

/* Where each wanted raw hash first occurs: per kind (the caller's switch). A 4096-bit filter of the top
 * bits of the wanted values answers most k-grams without the binary search. 0, or -1 with an exception. */
LS_INLINE int first_lines_scan(int kind, const void *data, Py_ssize_t n, roller *r, size_t *lines_ring,
                               const uint64_t *vals, Py_ssize_t nw, const uint64_t filter[64], PyObject *out) {
    Py_ssize_t left = nw;
    size_t line = 1;
    for (Py_ssize_t i = 0; i < n && left > 0; i++) {
        Py_UCS4 c = rd(kind, data, i);
        if (c == '\n') {
            line++;
            continue;
        }
        if (!alnum_k(kind, c)) continue;
        lines_ring[r->slot] = line; /* the line of letter number r.letters */
        uint64_t h;
        size_t at;
        if (!roller_push(r, c, &h, &at)) continue;
        if (!((filter[h >> 58] >> ((h >> 52) & 63)) & 1)) continue;
        size_t first_line = lines_ring[r->slot]; /* the k-gram's first letter: the oldest in the ring */
        /* binary search in the sorted wanted values */
        size_t lo = 0, hi = (size_t)nw;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (vals[mid] < h) lo = mid + 1;
            else hi = mid;
        }
        if (lo < (size_t)nw && vals[lo] == h) {
            PyObject *keyo = PyLong_FromUnsignedLongLong(h);
            if (!keyo) return -1;
            int has = PyDict_Contains(out, keyo);
            if (has == 0) {
                PyObject *v = Py_BuildValue("(nn)", (Py_ssize_t)at, (Py_ssize_t)first_line);
                if (!v || PyDict_SetItem(out, keyo, v) < 0) {
                    Py_XDECREF(v);
                    Py_DECREF(keyo);
                    return -1;
                }
                Py_DECREF(v);
                left--;
            }
            Py_DECREF(keyo);
            if (has < 0) return -1;
        }
    }
    return 0;
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
    uint64_t filter[64] = {0};
    roller r = {0};
    if (!out) goto done;
    if (!vals || !lines_ring || roller_init(&r, k)) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t j = 0; j < nw; j++) {
        vals[j] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(wanted, j));
        if (vals[j] == (uint64_t)-1 && PyErr_Occurred()) goto fail;
        filter[vals[j] >> 58] |= 1ULL << ((vals[j] >> 52) & 63);
    }
    qsort(vals, (size_t)nw, 8, cmp_u64);
    const void *data = PyUnicode_DATA(folded);
    Py_ssize_t n = PyUnicode_GET_LENGTH(folded);
    int rc;
    switch (PyUnicode_KIND(folded)) {
    case PyUnicode_1BYTE_KIND:
        rc = first_lines_scan(PyUnicode_1BYTE_KIND, data, n, &r, lines_ring, vals, nw, filter, out);
        break;
    case PyUnicode_2BYTE_KIND:
        rc = first_lines_scan(PyUnicode_2BYTE_KIND, data, n, &r, lines_ring, vals, nw, filter, out);
        break;
    default:
        rc = first_lines_scan(PyUnicode_4BYTE_KIND, data, n, &r, lines_ring, vals, nw, filter, out);
        break;
    }
    if (rc < 0) goto fail;
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

/* blake2b8_lanes(messages, key=b'') -> [int]: every message through the batched kernels (the eight-lane
 * one where the CPU has it), one-block messages eight at a time, longer ones alone. For the differential
 * tests: the batching and the lanes left idle in a last, partial batch. */
static PyObject *blake2b8_lanes(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *msgs;
    Py_buffer key = {0};
    if (!PyArg_ParseTuple(args, "O|y*", &msgs, &key)) return NULL;
    PyObject *seq = NULL, *out = NULL;
    if (key.buf && key.len > 64) {
        PyErr_SetString(PyExc_ValueError, "maximum key length is 64 bytes");
        goto done;
    }
    seq = PySequence_Fast(msgs, "messages must be a sequence of bytes");
    if (!seq) goto done;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < count; i++)
        if (!PyBytes_Check(PySequence_Fast_GET_ITEM(seq, i))) {
            PyErr_SetString(PyExc_TypeError, "messages must be bytes");
            goto done;
        }
    out = PyList_New(count);
    if (!out) goto done;
    size_t keylen = key.buf ? (size_t)key.len : 0;
    uint64_t h0[8], m[16][8] __attribute__((aligned(64))), lens[8], hashes[8];
    Py_ssize_t at[8];
    if (keylen) {
        b2_keyed_init(h0, key.buf, keylen);
    } else {
        memcpy(h0, B2_IV, sizeof h0);
        h0[0] ^= 0x01010000ULL ^ 8ULL;
    }
    memset(m, 0, sizeof m);
    int lanes = 0, nwmax = 0;
    for (Py_ssize_t i = 0; i <= count; i++) {
        if (i < count) {
            PyObject *b = PySequence_Fast_GET_ITEM(seq, i);
            const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(b);
            size_t len = (size_t)PyBytes_GET_SIZE(b);
            if (len > 128 || (!len && keylen)) { /* several blocks (or only the key's): alone */
                PyObject *v = PyLong_FromUnsignedLongLong(blake2b_8(key.buf, keylen, p, len));
                if (!v) goto fail;
                PyList_SET_ITEM(out, i, v);
                continue;
            }
            uint8_t block[128] = {0};
            if (len) memcpy(block, p, len);
            int nw = (int)((len + 7) / 8);
            for (int w = 0; w < nw; w++) m[w][lanes] = ld64(block + 8 * w);
            lens[lanes] = len + (keylen ? 128 : 0);
            at[lanes] = i;
            if (nw > nwmax) nwmax = nw;
            if (++lanes < 8) continue;
        }
        if (!lanes) break;
        for (int j = lanes; j < 8; j++) lens[j] = 0;
        b2_batch8(h0, m, lens, hashes, nwmax);
        for (int j = 0; j < lanes; j++) {
            PyObject *v = PyLong_FromUnsignedLongLong(hashes[j]);
            if (!v) goto fail;
            PyList_SET_ITEM(out, at[j], v);
        }
        memset(m, 0, sizeof m);
        lanes = 0;
        nwmax = 0;
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    Py_XDECREF(seq);
    if (key.buf) PyBuffer_Release(&key);
    return out;
}

static PyObject *vector_width(PyObject *self, PyObject *noargs) {
    (void)self;
    (void)noargs;
    return PyLong_FromLong(b2_have_v8 ? 8 : 4);
}

/* " ".join(text.split()).casefold() as UTF-8 bytes, in one pass (what fingerprint.content_hash hashes).
 * A white-space character writes a space, which stays only after something else (`prev`: the last
 * character was white space, or none came yet); a trailing space is dropped at the end. Blocks of 32
 * characters all ASCII (most, even in Chinese dumps) take a branch-free loop, the others one character at
 * a time. 1 when the text holds a lone surrogate (the caller's encode then raises as before), -1 out of
 * memory. */
#define FOLD_BLOCK 32
LS_INLINE int content_fold_k(int kind, const void *data, Py_ssize_t n, int ascii, fbuf *out) {
    unsigned prev = 1;
    for (Py_ssize_t from = 0; from < n; from += FOLD_BLOCK) {
        Py_ssize_t to = n - from > FOLD_BLOCK ? from + FOLD_BLOCK : n;
        if (fbuf_reserve(out, 13 * FOLD_BLOCK)) return -1; /* 12 bytes of a fold and a space a character */
        uint8_t *o = out->p;
        size_t len = out->len;
        unsigned wide = 0;
        if (!ascii)
            for (Py_ssize_t i = from; i < to; i++) wide |= rd(kind, data, i) >= 0x80;
        if (!wide) {
            for (Py_ssize_t i = from; i < to; i++) {
                Py_UCS4 c = rd(kind, data, i);
                unsigned sp = ascii_space[c];
                o[len] = ascii_fold_byte[c];
                len += !(sp & prev);
                prev = sp;
            }
            out->len = len;
            continue;
        }
        for (Py_ssize_t i = from; i < to; i++) {
            Py_UCS4 c = rd(kind, data, i);
            if (c < 0x80) {
                unsigned sp = ascii_space[c];
                o[out->len] = ascii_fold_byte[c];
                out->len += !(sp & prev);
                prev = sp;
                continue;
            }
            if (Py_UNICODE_ISSPACE(c)) {
                o[out->len] = ' ';
                out->len += !prev;
                prev = 1;
                continue;
            }
            if (kind != PyUnicode_1BYTE_KIND && c >= 0xD800 && c <= 0xDFFF) return 1;
            fold_put(out, c);
            prev = 0;
        }
    }
    if (out->len && out->p[out->len - 1] == ' ') out->len--;
    return 0;
}

static PyObject *content_fold(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "content_fold") < 0) return NULL;
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    fbuf out = {0};
    if (fbuf_reserve(&out, (size_t)n + 16)) return PyErr_NoMemory();
    int rc;
    switch (PyUnicode_KIND(arg)) {
    case PyUnicode_1BYTE_KIND:
        if (PyUnicode_IS_ASCII(arg)) { /* every block ASCII: no test per block */
            rc = content_fold_k(PyUnicode_1BYTE_KIND, data, n, 1, &out);
            break;
        }
        rc = content_fold_k(PyUnicode_1BYTE_KIND, data, n, 0, &out);
        break;
    case PyUnicode_2BYTE_KIND:
        rc = content_fold_k(PyUnicode_2BYTE_KIND, data, n, 0, &out);
        break;
    default:
        rc = content_fold_k(PyUnicode_4BYTE_KIND, data, n, 0, &out);
        break;
    }
    if (rc) {
        free(out.p);
        if (rc < 0) return PyErr_NoMemory();
        Py_RETURN_NONE;
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)out.p, (Py_ssize_t)out.len);
    free(out.p);
    return result;
}

/* ------------------------------------------------------------------------------------------ look-alike hosts */

/* What lookalikes._whole_host calls a host character: str.isalnum(), '-' or '_'. */
static inline int host_char(Py_UCS4 c) { return c == '-' || c == '_' || is_alnum(c); }

/* Characters a look-alike needle may hold (the caller checks every needle is made of them). */
static inline int needle_char(Py_UCS4 c) { return c == '.' || host_char(c); }

/* Both as bits of one class: HOST_BIT for a host character, NEEDLE_BIT for a needle character. */
#define HOST_BIT 1
#define NEEDLE_BIT 2
static uint8_t latin1_host_class[256];

static void fill_host_class(void) {
    for (int c = 0; c < 256; c++)
        latin1_host_class[c] = (uint8_t)((host_char((Py_UCS4)c) ? HOST_BIT : 0) | (needle_char((Py_UCS4)c) ? NEEDLE_BIT : 0));
}

LS_INLINE int host_class(int kind, Py_UCS4 c) {
    if (kind == PyUnicode_1BYTE_KIND || c < 256) return latin1_host_class[c];
    return alnum_k(kind, c) ? HOST_BIT | NEEDLE_BIT : 0; /* '-', '_' and '.' are below 256 */
}

/* The hash of a needle, computed the same way forwards (host_hash) and backwards (host_spans). */
static PyObject *host_hash(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "host_hash") < 0) return NULL;
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    uint64_t h = 0;
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(arg); i++) h = h * W_BASE + PyUnicode_READ(kind, data, i);
    return PyLong_FromUnsignedLongLong(mix64(h));
}

typedef struct {
    const uint64_t *table;
    size_t mask;
    int has_zero;
    const uint64_t *powers; /* W_BASE**j for j < maxlen */
    Py_ssize_t maxlen;
    int need_dot;
} host_needles;

static inline int host_lookup(const host_needles *hn, uint64_t h) {
    uint64_t v = mix64(h);
    if (!v) return hn->has_zero;
    size_t at = (size_t)(v ^ (v >> 29)) & hn->mask;
    while (hn->table[at] && hn->table[at] != v) at = (at + 1) & hn->mask;
    return hn->table[at] == v;
}

/* The spans ending at e (text[e-1] a needle character, e a whole host's end), longest first, appended
 * to out: the walk back over at most maxlen needle characters. 0, or -1 with an exception. */
LS_INLINE int host_spans_at(int kind, const void *data, Py_ssize_t e, const host_needles *hn, PyObject *out) {
    Py_ssize_t first = PyList_GET_SIZE(out), s = e, len = 0;
    uint64_t h = 0;
    int dot = 0;
    while (s > 0 && len < hn->maxlen) {
        Py_UCS4 c = rd(kind, data, s - 1);
        if (!(host_class(kind, c) & NEEDLE_BIT)) break;
        h += (uint64_t)c * hn->powers[len];
        len++;
        dot |= c == '.';
        s--;
        if ((!dot && hn->need_dot) || (s > 0 && (host_class(kind, rd(kind, data, s - 1)) & HOST_BIT))) continue;
        if (!host_lookup(hn, h)) continue;
        PyObject *span = Py_BuildValue("(nn)", s, e);
        if (!span || PyList_Append(out, span) < 0) {
            Py_XDECREF(span);
            return -1;
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
    return 0;
}

/* Every whole-host end in the run of needle characters text[rs:re] (text[rs-1] and text[re] are not
 * needle characters), in order: re itself, and each '.' not followed by a host character. */
LS_INLINE int host_spans_run(int kind, const void *data, Py_ssize_t n, Py_ssize_t rs, Py_ssize_t re,
                             const host_needles *hn, PyObject *out) {
    for (Py_ssize_t e = rs + 1; e <= re; e++) {
        if (e < re) {
            if (rd(kind, data, e) != '.') continue; /* a host character follows: not an end */
            if (e + 1 < n && (host_class(kind, rd(kind, data, e + 1)) & HOST_BIT)) continue;
        }
        if (host_spans_at(kind, data, e, hn, out) < 0) return -1;
    }
    return 0;
}

/* The first '.' at or after i (n when none). */
LS_INLINE Py_ssize_t find_dot(int kind, const void *data, Py_ssize_t i, Py_ssize_t n) {
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        const Py_UCS1 *at = i < n ? memchr(p + i, '.', (size_t)(n - i)) : NULL;
        return at ? at - p : n;
    }
    while (i < n) { /* 64 characters at a time: is there a dot at all (a branch-free reduction)? */
        Py_ssize_t end = n - i > 64 ? i + 64 : n;
        int any = 0;
        for (Py_ssize_t j = i; j < end; j++) any |= rd(kind, data, j) == '.';
        if (any)
            for (Py_ssize_t j = i; j < end; j++)
                if (rd(kind, data, j) == '.') return j;
        i = end;
    }
    return n;
}

/* host_spans over one str kind: the runs of needle characters, each as a whole (the ends a run holds are
 * the only ones its spans can have). When every needle holds a '.', only the runs holding one can match:
 * they are found from the dots (memchr on Latin-1), the rest of the text is never walked. 0, or -1. */
LS_INLINE int host_spans_k(int kind, const void *data, Py_ssize_t n, const host_needles *hn, PyObject *out) {
    Py_ssize_t i = 0;
    if (hn->need_dot) {
        while (i < n) {
            Py_ssize_t d = find_dot(kind, data, i, n);
            if (d >= n) break;
            Py_ssize_t rs = d, re = d + 1; /* the run around the dot (it starts at or after i) */
            while (rs > i && (host_class(kind, rd(kind, data, rs - 1)) & NEEDLE_BIT)) rs--;
            while (re < n && (host_class(kind, rd(kind, data, re)) & NEEDLE_BIT)) re++;
            if (host_spans_run(kind, data, n, rs, re, hn, out) < 0) return -1;
            i = re;
        }
        return 0;
    }
    while (i < n) {
        while (i < n && !(host_class(kind, rd(kind, data, i)) & NEEDLE_BIT)) i++;
        Py_ssize_t rs = i;
        while (i < n && (host_class(kind, rd(kind, data, i)) & NEEDLE_BIT)) i++;
        if (i > rs && host_spans_run(kind, data, n, rs, i, hn, out) < 0) return -1;
    }
    return 0;
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
    uint64_t *table = NULL, *powers = NULL;
    size_t nh = (size_t)hashes.len / 8, cap = 16;
    while (cap < nh * 4) cap *= 2;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (maxlen > n) maxlen = n; /* no span is longer than the text */
    if (maxlen < 0) maxlen = 0;
    table = calloc(cap, sizeof(uint64_t));
    powers = malloc(sizeof(uint64_t) * ((size_t)maxlen + 1));
    if (!table || !powers) {
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
    powers[0] = 1;
    for (Py_ssize_t j = 1; j <= maxlen; j++) powers[j] = powers[j - 1] * W_BASE;
    host_needles hn = {table, cap - 1, has_zero, powers, maxlen, need_dot};
    out = PyList_New(0);
    if (!out) goto done;
    const void *data = PyUnicode_DATA(text);
    int rc;
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        rc = host_spans_k(PyUnicode_1BYTE_KIND, data, n, &hn, out);
        break;
    case PyUnicode_2BYTE_KIND:
        rc = host_spans_k(PyUnicode_2BYTE_KIND, data, n, &hn, out);
        break;
    default:
        rc = host_spans_k(PyUnicode_4BYTE_KIND, data, n, &hn, out);
        break;
    }
    if (rc < 0) Py_CLEAR(out);
done:
    free(table);
    free(powers);
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

/* Where the first block of 256 characters holding a control character other than "\n" and "\t" starts
 * (n when none): a branch-free test per block, vectorised for the CPU (the usual answer: none). */
#define CLEAN_BLOCK(T, NAME)                                                                          \
    LS_CLONES static Py_ssize_t NAME(const T *p, Py_ssize_t n) {                                      \
        for (Py_ssize_t from = 0; from < n; from += 256) {                                            \
            Py_ssize_t to = n - from > 256 ? from + 256 : n;                                          \
            unsigned any = 0;                                                                         \
            for (Py_ssize_t i = from; i < to; i++) {                                                  \
                uint32_t c = p[i];                                                                    \
                any |= ((unsigned)(c < 0x20) & (unsigned)(c != '\n') & (unsigned)(c != '\t')) |       \
                       (unsigned)(c == 0x7F);                                                         \
            }                                                                                         \
            if (any) return from;                                                                     \
        }                                                                                             \
        return n;                                                                                     \
    }
CLEAN_BLOCK(Py_UCS1, clean_block_1)
CLEAN_BLOCK(Py_UCS2, clean_block_2)
CLEAN_BLOCK(Py_UCS4, clean_block_4)

/* The first character to change (n when none) and how many "\r\n" lose their "\r", from the first block
 * clean_block_* found on. */
LS_INLINE Py_ssize_t clean_scan(int kind, const void *data, Py_ssize_t n, Py_ssize_t *dropped) {
    Py_ssize_t from = kind == PyUnicode_1BYTE_KIND   ? clean_block_1((const Py_UCS1 *)data, n)
                      : kind == PyUnicode_2BYTE_KIND ? clean_block_2((const Py_UCS2 *)data, n)
                                                     : clean_block_4((const Py_UCS4 *)data, n);
    Py_ssize_t first = n;
    for (Py_ssize_t i = from; i < n; i++) {
        Py_UCS4 c = rd(kind, data, i);
        if (c == '\r' || is_stray_control(c)) {
            if (first == n) first = i;
            if (c == '\r' && i + 1 < n && rd(kind, data, i + 1) == '\n') ++*dropped;
        }
    }
    return first;
}

LS_INLINE void clean_copy(int kind, const void *data, Py_ssize_t n, int okind, void *odata) {
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = rd(kind, data, i);
        if (c == '\r') {
            if (i + 1 < n && rd(kind, data, i + 1) == '\n') continue; /* "\r\n": its "\n" */
            c = '\n';
        } else if (is_stray_control(c)) {
            c = ' ';
        }
        PyUnicode_WRITE(okind, odata, o++, c);
    }
}

static PyObject *clean_text(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "clean_text") < 0) return NULL;
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg), first, dropped = 0;
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        first = clean_scan(PyUnicode_1BYTE_KIND, data, n, &dropped);
        break;
    case PyUnicode_2BYTE_KIND:
        first = clean_scan(PyUnicode_2BYTE_KIND, data, n, &dropped);
        break;
    default:
        first = clean_scan(PyUnicode_4BYTE_KIND, data, n, &dropped);
        break;
    }
    if (first == n) {
        Py_INCREF(arg);
        return arg;
    }
    PyObject *out = PyUnicode_New(n - dropped, PyUnicode_MAX_CHAR_VALUE(arg));
    if (!out) return NULL;
    int okind = PyUnicode_KIND(out);
    void *odata = PyUnicode_DATA(out);
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        clean_copy(PyUnicode_1BYTE_KIND, data, n, okind, odata);
        break;
    case PyUnicode_2BYTE_KIND:
        clean_copy(PyUnicode_2BYTE_KIND, data, n, okind, odata);
        break;
    default:
        clean_copy(PyUnicode_4BYTE_KIND, data, n, okind, odata);
        break;
    }
    return out;
}

/* ------------------------------------------------------------------------------------------ lower */

/* lower(text) -> text.lower(), equal for every str (tests/pipelines/test_pipelines_lower_native.py checks
 * every code point), in one pass. Why: str.lower of a text holding any character past Latin-1 (a Chinese
 * posting) maps each character through CPython's full case mapping into a UCS4 buffer, about 6 ns a
 * character; the watched domains, look-alikes and secret owners read the lowered posting. Here ASCII
 * goes through a table, CJK ideographs and Hangul syllables (caseless) stay, and any other character
 * through Py_UNICODE_TOLOWER, the simple mapping: the full one for every character but U+0130 (two
 * characters). A text holding U+0130, or U+03A3 (whose lower case depends on its neighbours), or a
 * character whose lower case would not fit the text's kind, is left to str.lower. */
static Py_UCS1 LOWER_ASCII[128];

LS_INLINE int lower_k(int kind, const void *src, void *dst, Py_ssize_t n) {
    const Py_UCS4 limit = kind == PyUnicode_1BYTE_KIND ? 0xFF : kind == PyUnicode_2BYTE_KIND ? 0xFFFF : 0x10FFFF;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, src, i), l;
        if (c < 128) {
            l = LOWER_ASCII[c];
        } else if ((c >= 0x3400 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7A3)) {
            l = c;
        } else {
            if (c == 0x130 || c == 0x3A3) return 1;
            l = Py_UNICODE_TOLOWER(c);
            if (l > limit) return 1;
        }
        PyUnicode_WRITE(kind, dst, i, l);
    }
    return 0;
}

/* lower_k over a 2-byte text, 8 characters at a time where all 8 are ASCII (the upper-case letters get
 * 32 added) or CJK ideographs U+3400..U+9FFF (kept): a Chinese posting is mostly such blocks. */
static int lower_ucs2(const Py_UCS2 *s, Py_UCS2 *d, Py_ssize_t n) {
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    const __m128i not_ascii = _mm_set1_epi16((short)0xFF80), zero = _mm_setzero_si128();
    const __m128i below_a = _mm_set1_epi16('A' - 1), above_z = _mm_set1_epi16('Z' + 1), k32 = _mm_set1_epi16(32);
    const __m128i cjk_first = _mm_set1_epi16(0x3400), cjk_span = _mm_set1_epi16(0x9FFF - 0x3400);
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i ascii = _mm_cmpeq_epi16(_mm_and_si128(v, not_ascii), zero);
        /* v - 0x3400, read unsigned, at most the span: saturating subtraction leaves 0 */
        __m128i cjk = _mm_cmpeq_epi16(_mm_subs_epu16(_mm_sub_epi16(v, cjk_first), cjk_span), zero);
        if (_mm_movemask_epi8(_mm_or_si128(ascii, cjk)) != 0xFFFF) {
            if (lower_k(PyUnicode_2BYTE_KIND, s + i, d + i, 8)) return 1;
            continue;
        }
        __m128i upper = _mm_and_si128(_mm_and_si128(_mm_cmpgt_epi16(v, below_a), _mm_cmplt_epi16(v, above_z)), ascii);
        _mm_storeu_si128((__m128i *)(d + i), _mm_add_epi16(v, _mm_and_si128(upper, k32)));
    }
#endif
    return lower_k(PyUnicode_2BYTE_KIND, s + i, d + i, n - i);
}

static PyObject *lower(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "lower") < 0) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int kind = PyUnicode_KIND(arg);
    if (PyUnicode_IS_ASCII(arg) || n == 0) return PyObject_CallMethod(arg, "lower", NULL); /* its own fast path */
    void *buf = PyMem_Malloc((size_t)n * (size_t)kind);
    if (!buf) return PyErr_NoMemory();
    const void *data = PyUnicode_DATA(arg);
    int other;
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        other = lower_k(PyUnicode_1BYTE_KIND, data, buf, n);
        break;
    case PyUnicode_2BYTE_KIND:
        other = lower_ucs2(data, buf, n);
        break;
    default:
        other = lower_k(PyUnicode_4BYTE_KIND, data, buf, n);
        break;
    }
    /* FromKindAndData picks the smallest kind that holds the result (lower case can narrow it) */
    PyObject *out = other ? PyObject_CallMethod(arg, "lower", NULL) : PyUnicode_FromKindAndData(kind, buf, n);
    PyMem_Free(buf);
    return out;
}

/* ------------------------------------------------------------------------------ nfc_stable */

/* nfc_stable(text) -> True when every character is one NFC keeps as it is and never composes with the
 * one before it (NFC_Quick_Check Yes, canonical combining class 0): the text is then its own NFC, and
 * normalize_text skips unicodedata's check (about 1 ns a character on a Chinese posting). False means
 * "not known": the caller normalises. The ranges are conservative; a test checks every code point in
 * them against unicodedata. A 1-byte text is always stable (U+0000..U+00FF are); a 4-byte one is left
 * to unicodedata. */
static inline int nfc_stable_cp(unsigned c) {
    return c <= 0x2FF || (c >= 0x2E00 && c <= 0x3029) || (c >= 0x309B && c <= 0xA66E) ||
           (c >= 0xABEE && c <= 0xD7FF) || c >= 0xFE30;
}

static int nfc_stable_ucs2(const Py_UCS2 *t, Py_ssize_t n) {
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    /* v - lo, read unsigned, at most hi - lo: saturating subtraction leaves 0 */
#define NFC_IN(v, lo, hi) \
    _mm_cmpeq_epi16(_mm_subs_epu16(_mm_sub_epi16((v), _mm_set1_epi16((short)(lo))), _mm_set1_epi16((short)((hi) - (lo)))), zero)
    const __m128i zero = _mm_setzero_si128();
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(t + i));
        __m128i ok = _mm_or_si128(_mm_or_si128(NFC_IN(v, 0, 0x2FF), NFC_IN(v, 0x2E00, 0x3029)),
                                  _mm_or_si128(_mm_or_si128(NFC_IN(v, 0x309B, 0xA66E), NFC_IN(v, 0xABEE, 0xD7FF)),
                                               NFC_IN(v, 0xFE30, 0xFFFF)));
        if (_mm_movemask_epi8(ok) != 0xFFFF) return 0;
    }
#undef NFC_IN
#endif
    for (; i < n; i++)
        if (!nfc_stable_cp(t[i])) return 0;
    return 1;
}

static PyObject *nfc_stable(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "nfc_stable") < 0) return NULL;
    switch (PyUnicode_KIND(arg)) {
    case PyUnicode_1BYTE_KIND:
        Py_RETURN_TRUE;
    case PyUnicode_2BYTE_KIND:
        return PyBool_FromLong(nfc_stable_ucs2(PyUnicode_2BYTE_DATA(arg), PyUnicode_GET_LENGTH(arg)));
    default:
        Py_RETURN_FALSE;
    }
}

/* ------------------------------------------------------------------------------ utf8_size */

/* utf8_size(text) -> len(text.encode("utf-8")), or -1 when the text holds a lone surrogate (which UTF-8
 * cannot encode). Why: the scanner bounds a posting by its UTF-8 size and replaces such surrogates first;
 * encoding a Chinese posting only to learn its size cost about 0.6 ms a MB. Plain loops: -O3 vectorises
 * them. */
static long long utf8_size_ucs2(const Py_UCS2 *t, Py_ssize_t n, int *surrogate) {
    long long extra = 0;
    unsigned bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned c = t[i];
        extra += (c >= 0x80) + (c >= 0x800);
        bad |= (c & 0xF800u) == 0xD800u;
    }
    *surrogate = bad != 0;
    return (long long)n + extra;
}

static long long utf8_size_ucs4(const Py_UCS4 *t, Py_ssize_t n, int *surrogate) {
    long long extra = 0;
    unsigned bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = t[i];
        extra += (c >= 0x80) + (c >= 0x800) + (c >= 0x10000);
        bad |= (c & 0xFFFFF800u) == 0xD800u;
    }
    *surrogate = bad != 0;
    return (long long)n + extra;
}

static PyObject *utf8_size(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "utf8_size") < 0) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int surrogate = 0;
    long long size;
    if (PyUnicode_IS_ASCII(arg)) {
        size = n;
    } else if (PyUnicode_KIND(arg) == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *t = PyUnicode_1BYTE_DATA(arg);
        long long extra = 0;
        for (Py_ssize_t i = 0; i < n; i++) extra += t[i] >> 7;
        size = n + extra;
    } else if (PyUnicode_KIND(arg) == PyUnicode_2BYTE_KIND) {
        size = utf8_size_ucs2(PyUnicode_2BYTE_DATA(arg), n, &surrogate);
    } else {
        size = utf8_size_ucs4(PyUnicode_4BYTE_DATA(arg), n, &surrogate);
    }
    return PyLong_FromLongLong(surrogate ? -1 : size);
}

/* ------------------------------------------------------------------------------ find */

/* find(text, needle, start) -> text.find(needle, start), for a 1- or 2-byte text and a needle of at least
 * two characters: the needle's first and last characters are compared with 16 bytes of the text at once
 * (Muła's SIMD substring search), the rest only where both match. Why: the watches look for each domain
 * and keyword in every posting and mostly find none, a full read of the text; CPython's search had
 * switched to its two-way algorithm on such texts, about 1-2 GB/s. Candidates that fail are counted: past
 * a text-sized budget (a hostile text made of the needle's first and last characters) the rest of the
 * search goes to CPython's, whose time is linear. Anything else (a 4-byte text, a one-character needle,
 * a needle the text's kind cannot hold) is CPython's search too. */
#define FIND_MISS_BUDGET(n) ((n) / 16 + 1024)

/* The search over a text of `w`-byte characters (1 or 2), from i; -2 with *stopped set when the budget
 * of failed candidates ran out. Inlined into each call with a constant `w`: one copy a kind. */
LS_INLINE Py_ssize_t find_kind(const char *t, int w, Py_ssize_t n, const char *p, Py_ssize_t m, Py_ssize_t i,
                               Py_ssize_t *stopped) {
    Py_ssize_t misses = 0, budget = FIND_MISS_BUDGET(n - i);
    const size_t middle = (size_t)(m - 2) * (size_t)w; /* the characters between the first and the last */
#if defined(__SSE2__)
    const Py_ssize_t step = 16 / w;
    const Py_UCS2 *p2 = (const Py_UCS2 *)p;
    const __m128i first = w == 1 ? _mm_set1_epi8(p[0]) : _mm_set1_epi16((short)p2[0]);
    const __m128i last = w == 1 ? _mm_set1_epi8(p[m - 1]) : _mm_set1_epi16((short)p2[m - 1]);
    for (; i + m - 1 + step <= n; i += step) {
        __m128i a = _mm_loadu_si128((const __m128i *)(t + i * w));
        __m128i b = _mm_loadu_si128((const __m128i *)(t + (i + m - 1) * w));
        __m128i eq = w == 1 ? _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last))
                            : _mm_and_si128(_mm_cmpeq_epi16(a, first), _mm_cmpeq_epi16(b, last));
        unsigned mask = (unsigned)_mm_movemask_epi8(eq) & (w == 1 ? 0xFFFFu : 0x5555u); /* a bit a character */
        while (mask) {
            Py_ssize_t at = i + __builtin_ctz(mask) / w;
            if (memcmp(t + (at + 1) * w, p + w, middle) == 0) return at;
            if (++misses > budget) {
                *stopped = i;
                return -2;
            }
            mask &= mask - 1;
        }
    }
#endif
    for (; i + m <= n; i++) {
        if (memcmp(t + i * w, p, (size_t)w) || memcmp(t + (i + m - 1) * w, p + (m - 1) * w, (size_t)w)) continue;
        if (memcmp(t + (i + 1) * w, p + w, middle) == 0) return i;
        if (++misses > budget) {
            *stopped = i;
            return -2;
        }
    }
    return -1;
}

static PyObject *find(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text, *needle;
    Py_ssize_t start = 0;
    if (!PyArg_ParseTuple(args, "UU|n", &text, &needle, &start)) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), m = PyUnicode_GET_LENGTH(needle);
    int kind = PyUnicode_KIND(text), nkind = PyUnicode_KIND(needle);
    if (start < 0 || start > n || m < 2 || kind == PyUnicode_4BYTE_KIND)
        return PyLong_FromSsize_t(PyUnicode_Find(text, needle, start, PY_SSIZE_T_MAX, 1));
    if (nkind > kind || PyUnicode_MAX_CHAR_VALUE(needle) > PyUnicode_MAX_CHAR_VALUE(text))
        return PyLong_FromSsize_t(-1); /* a character the text cannot hold */
    Py_ssize_t at, stopped = start;
    if (kind == PyUnicode_1BYTE_KIND) {
        at = find_kind((const char *)PyUnicode_1BYTE_DATA(text), 1, n, (const char *)PyUnicode_1BYTE_DATA(needle), m,
                       start, &stopped);
    } else {
        Py_UCS2 small[64], *p = small;
        if (nkind == PyUnicode_1BYTE_KIND) { /* widened to the text's kind */
            if (m > 64 && !(p = PyMem_Malloc((size_t)m * sizeof(Py_UCS2)))) return PyErr_NoMemory();
            const Py_UCS1 *src = PyUnicode_1BYTE_DATA(needle);
            for (Py_ssize_t j = 0; j < m; j++) p[j] = src[j];
        } else {
            p = PyUnicode_2BYTE_DATA(needle);
        }
        at = find_kind((const char *)PyUnicode_2BYTE_DATA(text), 2, n, (const char *)p, m, start, &stopped);
        if (p != small && nkind == PyUnicode_1BYTE_KIND) PyMem_Free(p);
    }
    if (at == -2) /* past the budget: CPython's linear-time search from where this one stopped */
        at = PyUnicode_Find(text, needle, stopped, PY_SSIZE_T_MAX, 1);
    return PyLong_FromSsize_t(at);
}

/* ------------------------------------------------------------------------------ unicode host lines */

/* unicode_host_lines(text) -> [1-based line numbers], ascending: the lines engine._unicode_host_lines
 * yields (its reference, tests/pipelines/test_pipelines_speed_domain_lines.py), in one pass. A line is
 * listed when it holds an ASCII '@', a non-ASCII character, and either a backslash or an at sign
 * (@, U+FF20, U+FE6B) followed by host characters (ASCII letters, digits, '.', '-', '_', or any non-ASCII
 * character) of which one is non-ASCII. Why: the regex search it replaces tries every '@' of a dump's
 * addresses in Python's re engine, about 25 ms per 20 MB; this reads each character once. */
/* per character: the flags the pass reads (HL_*), for ASCII from a table, for the rest computed */
enum { HL_NL = 1, HL_AT = 2, HL_WIDE = 4, HL_HOST = 8, HL_RUN = 16, HL_BACKSLASH = 32 };
static uint8_t HOST_ASCII[128]; /* HL_* of each ASCII character; HL_RUN: an at sign starts a host run */

typedef struct {
    long line;
    unsigned at, wide, hit, in_host;
} host_lines_state;

/* One character of unicode_host_lines; at a line end, the line is listed when it qualifies. */
LS_INLINE int host_lines_step(host_lines_state *st, Py_UCS4 c, PyObject *out) {
    /* branch-free for the usual mix of ASCII and CJK: a non-ASCII character is a wide host character,
       and U+FF20 / U+FE6B also start a run */
    unsigned f = c < 0x80 ? HOST_ASCII[c & 0x7F] : HL_WIDE | HL_HOST | ((c == 0xFF20) | (c == 0xFE6B) ? HL_RUN : 0u);
    if (f & HL_NL) {
        if (st->at && st->wide && st->hit) {
            PyObject *v = PyLong_FromLong(st->line);
            if (v == NULL || PyList_Append(out, v) < 0) {
                Py_XDECREF(v);
                return -1;
            }
            Py_DECREF(v);
        }
        st->line++;
        st->at = st->wide = st->hit = st->in_host = 0;
        return 0;
    }
    st->wide |= f & HL_WIDE;
    st->at |= f & HL_AT;
    st->hit |= (st->in_host & (f >> 2)) | (f & HL_BACKSLASH); /* a wide host character in a run, a backslash */
    st->in_host = ((st->in_host & (f >> 3)) | (f >> 4)) & 1;  /* the run goes on through host characters */
    return 0;
}

LS_INLINE int host_lines_k(int kind, const void *data, Py_ssize_t n, PyObject *out) {
    host_lines_state st = {1, 0, 0, 0, 0};
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    if (kind == PyUnicode_2BYTE_KIND) {
        /* 8 characters at a time: outside a host run, a block with no line end, '@', backslash or wide at
           sign changes nothing but `wide` (whether it holds a non-ASCII character) */
        const Py_UCS2 *s = data;
        const __m128i nl = _mm_set1_epi16('\n'), at = _mm_set1_epi16('@'), bs = _mm_set1_epi16('\\');
        const __m128i wat1 = _mm_set1_epi16((short)0xFF20), wat2 = _mm_set1_epi16((short)0xFE6B);
        const __m128i not_ascii = _mm_set1_epi16((short)0xFF80), zero = _mm_setzero_si128();
        for (; i + 8 <= n; i += 8) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            if (!st.in_host) {
                __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi16(v, nl), _mm_cmpeq_epi16(v, at)),
                                               _mm_or_si128(_mm_cmpeq_epi16(v, bs),
                                                            _mm_or_si128(_mm_cmpeq_epi16(v, wat1),
                                                                         _mm_cmpeq_epi16(v, wat2))));
                if (_mm_movemask_epi8(special) == 0) {
                    st.wide |= _mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(v, not_ascii), zero)) != 0xFFFF;
                    continue;
                }
            }
            for (int j = 0; j < 8; j++)
                if (host_lines_step(&st, s[i + j], out) < 0) return -1;
        }
    }
#endif
    for (; i < n; i++)
        if (host_lines_step(&st, PyUnicode_READ(kind, data, i), out) < 0) return -1;
    return host_lines_step(&st, '\n', out); /* the last line (no "\n" after it) */
}

static PyObject *unicode_host_lines(PyObject *self, PyObject *arg) {
    (void)self;
    if (need_str(arg, "unicode_host_lines") < 0) return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    const void *data = PyUnicode_DATA(arg);
    int rc;
    switch (PyUnicode_KIND(arg)) {
    case PyUnicode_1BYTE_KIND:
        rc = host_lines_k(PyUnicode_1BYTE_KIND, data, n, out);
        break;
    case PyUnicode_2BYTE_KIND:
        rc = host_lines_k(PyUnicode_2BYTE_KIND, data, n, out);
        break;
    default:
        rc = host_lines_k(PyUnicode_4BYTE_KIND, data, n, out);
        break;
    }
    if (rc < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"content_fold", content_fold, METH_O,
     "content_fold(text) -> UTF-8 of ' '.join(text.split()).casefold(), or None on a lone surrogate"},
    {"simhash", simhash, METH_O, "simhash(text) -> the signed 64-bit SimHash, or None below 12 tokens"},
    {"winnow", winnow, METH_VARARGS,
     "winnow(folded, k, window, key) -> (keyed, raw): distinct window minima as native uint64 bytes"},
    {"winnow_present", winnow_present, METH_VARARGS,
     "winnow_present(folded, k, window, key, known, flags) -> [(fingerprint, raw)] of those in known"},
    {"first_lines", first_lines, METH_VARARGS,
     "first_lines(folded, k, raws) -> {raw: (first k-gram index, line)}"},
    {"blake2b8", blake2b8, METH_VARARGS, "blake2b8(msg, key=b'') -> the 8-byte BLAKE2b digest, big-endian int"},
    {"blake2b8_lanes", blake2b8_lanes, METH_VARARGS,
     "blake2b8_lanes(messages, key=b'') -> [blake2b8(m, key) for m in messages], through the batched kernels"},
    {"vector_width", vector_width, METH_NOARGS,
     "vector_width() -> 8 when the 512-bit BLAKE2b kernels run on this CPU, else 4"},
    {"clean_text", clean_text, METH_O,
     "clean_text(text) -> line ends unified and stray control characters as spaces (normalize_text before NFC)"},
    {"host_hash", host_hash, METH_O, "host_hash(needle) -> the hash host_spans looks needles up by"},
    {"unicode_host_lines", unicode_host_lines, METH_O,
     "unicode_host_lines(text) -> the 1-based lines an address with a non-ASCII domain may stand on"},
    {"lower", lower, METH_O, "lower(text) -> text.lower(), in one pass (see the comment above lower_k)"},
    {"nfc_stable", nfc_stable, METH_O, "nfc_stable(text) -> True when the text is known to be its own NFC"},
    {"utf8_size", utf8_size, METH_O, "utf8_size(text) -> its UTF-8 size, or -1 if it holds a lone surrogate"},
    {"find", find, METH_VARARGS, "find(text, needle, start=0) -> text.find(needle, start) (see the comment above)"},
    {"host_spans", host_spans, METH_VARARGS,
     "host_spans(text, hashes, maxlen, need_dot) -> [(start, end)] of whole hosts whose hash is in hashes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fingerprint", "Native posting fingerprints.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fingerprint(void) {
    fill_tables();
    fill_host_class();
    for (int c = 0; c < 128; c++) LOWER_ASCII[c] = (Py_UCS1)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    for (int c = 0; c < 128; c++) {
        int host = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == '-' || c == '_';
        HOST_ASCII[c] = (uint8_t)((host ? HL_HOST : 0) | (c == '\n' ? HL_NL : 0) | (c == '@' ? HL_AT | HL_RUN : 0) |
                                  (c == '\\' ? HL_BACKSLASH : 0));
    }
    b2_detect();
    return PyModule_Create(&module);
}
