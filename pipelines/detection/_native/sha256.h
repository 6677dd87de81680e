/* SHA-256 compression (portable, and SHA-NI when the CPU has it) and the scheme's HMAC.
 *
 * Why here and not hashlib: the matcher hashes ~100k candidates per MB of text; a Python call per hash
 * (~1.5 us) caps the scan near 1 MB/s. HMAC of a short message is two compressions from precomputed
 * inner/outer states; with SHA-NI that is ~0.1 us. Verified against hashlib by the tests.
 */
#ifndef LS_SHA256_H
#define LS_SHA256_H

#include <stdint.h>
#include <string.h>

static const uint32_t LS_K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t LS_IV256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define LS_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void ls_compress_portable(uint32_t st[8], const uint8_t *blk) {
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)blk[4 * i] << 24) | ((uint32_t)blk[4 * i + 1] << 16) |
               ((uint32_t)blk[4 * i + 2] << 8) | blk[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = LS_ROR(w[i - 15], 7) ^ LS_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = LS_ROR(w[i - 2], 17) ^ LS_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = st[0]; b = st[1]; c = st[2]; d = st[3]; e = st[4]; f = st[5]; g = st[6]; h = st[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = LS_ROR(e, 6) ^ LS_ROR(e, 11) ^ LS_ROR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + LS_K256[i] + w[i];
        uint32_t S0 = LS_ROR(a, 2) ^ LS_ROR(a, 13) ^ LS_ROR(a, 22);
        uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + mj;
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LS_HAVE_SHANI_CODE 1

__attribute__((target("sha,sse4.1,ssse3"))) static void ls_compress_shani(uint32_t st[8],
                                                                         const uint8_t *blk) {
    const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i TMP = _mm_loadu_si128((const __m128i *)&st[0]);
    __m128i STATE1 = _mm_loadu_si128((const __m128i *)&st[4]);
    TMP = _mm_shuffle_epi32(TMP, 0xB1);
    STATE1 = _mm_shuffle_epi32(STATE1, 0x1B);
    __m128i STATE0 = _mm_alignr_epi8(TMP, STATE1, 8);
    STATE1 = _mm_blend_epi16(STATE1, TMP, 0xF0);
    const __m128i ABEF = STATE0, CDGH = STATE1;
    __m128i M[4], MSG;
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
        if (g < 4) M[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk + 16 * g)), MASK);
        MSG = _mm_add_epi32(M[g & 3], _mm_loadu_si128((const __m128i *)&LS_K256[4 * g]));
        STATE1 = _mm_sha256rnds2_epu32(STATE1, STATE0, MSG);
        if (g >= 3 && g <= 14) {
            TMP = _mm_alignr_epi8(M[g & 3], M[(g - 1) & 3], 4);
            M[(g + 1) & 3] = _mm_add_epi32(M[(g + 1) & 3], TMP);
            M[(g + 1) & 3] = _mm_sha256msg2_epu32(M[(g + 1) & 3], M[g & 3]);
        }
        MSG = _mm_shuffle_epi32(MSG, 0x0E);
        STATE0 = _mm_sha256rnds2_epu32(STATE0, STATE1, MSG);
        if (g >= 1 && g <= 12) M[(g - 1) & 3] = _mm_sha256msg1_epu32(M[(g - 1) & 3], M[g & 3]);
    }
    STATE0 = _mm_add_epi32(STATE0, ABEF);
    STATE1 = _mm_add_epi32(STATE1, CDGH);
    TMP = _mm_shuffle_epi32(STATE0, 0x1B);
    STATE1 = _mm_shuffle_epi32(STATE1, 0xB1);
    STATE0 = _mm_blend_epi16(TMP, STATE1, 0xF0);
    STATE1 = _mm_alignr_epi8(STATE1, TMP, 8);
    _mm_storeu_si128((__m128i *)&st[0], STATE0);
    _mm_storeu_si128((__m128i *)&st[4], STATE1);
}

/* Four independent blocks at once: SHA-NI rounds are latency-bound, so interleaving four streams
 * raises the throughput of the many one-block HMACs the scanner computes. */
__attribute__((target("sha,sse4.1,ssse3"))) static void ls_compress4_shani(uint32_t *const st[4], const uint8_t *const blk[4]) {
    const __m128i MASK = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i S0[4], S1[4], AB[4], CD[4], M[4][4], MSG[4], TMP[4];
    for (int k = 0; k < 4; k++) {
        TMP[k] = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[k][0]), 0xB1);
        S1[k] = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[k][4]), 0x1B);
        S0[k] = _mm_alignr_epi8(TMP[k], S1[k], 8);
        S1[k] = _mm_blend_epi16(S1[k], TMP[k], 0xF0);
        AB[k] = S0[k];
        CD[k] = S1[k];
    }
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
        const __m128i K = _mm_loadu_si128((const __m128i *)&LS_K256[4 * g]);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            if (g < 4) M[k][g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[k] + 16 * g)), MASK);
            MSG[k] = _mm_add_epi32(M[k][g & 3], K);
            S1[k] = _mm_sha256rnds2_epu32(S1[k], S0[k], MSG[k]);
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            if (g >= 3 && g <= 14) {
                TMP[k] = _mm_alignr_epi8(M[k][g & 3], M[k][(g - 1) & 3], 4);
                M[k][(g + 1) & 3] = _mm_add_epi32(M[k][(g + 1) & 3], TMP[k]);
                M[k][(g + 1) & 3] = _mm_sha256msg2_epu32(M[k][(g + 1) & 3], M[k][g & 3]);
            }
            MSG[k] = _mm_shuffle_epi32(MSG[k], 0x0E);
            S0[k] = _mm_sha256rnds2_epu32(S0[k], S1[k], MSG[k]);
            if (g >= 1 && g <= 12) M[k][(g - 1) & 3] = _mm_sha256msg1_epu32(M[k][(g - 1) & 3], M[k][g & 3]);
        }
    }
    for (int k = 0; k < 4; k++) {
        S0[k] = _mm_add_epi32(S0[k], AB[k]);
        S1[k] = _mm_add_epi32(S1[k], CD[k]);
        TMP[k] = _mm_shuffle_epi32(S0[k], 0x1B);
        S1[k] = _mm_shuffle_epi32(S1[k], 0xB1);
        S0[k] = _mm_blend_epi16(TMP[k], S1[k], 0xF0);
        S1[k] = _mm_alignr_epi8(S1[k], TMP[k], 8);
        _mm_storeu_si128((__m128i *)&st[k][0], S0[k]);
        _mm_storeu_si128((__m128i *)&st[k][4], S1[k]);
    }
}

#endif

static void ls_compress4_portable(uint32_t *const st[4], const uint8_t *const blk[4]) {
    for (int k = 0; k < 4; k++) ls_compress_portable(st[k], blk[k]);
}

typedef void (*ls_compress4_fn)(uint32_t *const[4], const uint8_t *const[4]);
static ls_compress4_fn ls_compress4 = ls_compress4_portable;

typedef void (*ls_compress_fn)(uint32_t *, const uint8_t *);
static ls_compress_fn ls_compress = ls_compress_portable;
static const char *ls_sha_impl = "portable";

static void ls_sha_select(int allow_shani) {
    ls_compress = ls_compress_portable;
    ls_compress4 = ls_compress4_portable;
    ls_sha_impl = "portable";
#ifdef LS_HAVE_SHANI_CODE
    __builtin_cpu_init();
    if (allow_shani && __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1")) {
        ls_compress = ls_compress_shani;
        ls_compress4 = ls_compress4_shani;
        ls_sha_impl = "sha-ni";
    }
#else
    (void)allow_shani;

#endif
}

/* Continue a hash whose state has absorbed `done` bytes (a multiple of 64) with msg; big-endian out. */
static void ls_sha_finish(const uint32_t start[8], uint64_t done, const uint8_t *msg, size_t len,
                          uint8_t out[32]) {
    uint32_t st[8];
    uint8_t blk[64];
    memcpy(st, start, sizeof st);
    size_t off = 0;
    while (len - off >= 64) {
        ls_compress(st, msg + off);
        off += 64;
    }
    size_t rest = len - off;
    memcpy(blk, msg + off, rest);
    blk[rest] = 0x80;
    uint64_t bits = (done + len) * 8;
    if (rest + 1 > 56) {
        memset(blk + rest + 1, 0, 64 - rest - 1);
        ls_compress(st, blk);
        memset(blk, 0, 56);
    } else {
        memset(blk + rest + 1, 0, 56 - rest - 1);
    }
    for (int i = 0; i < 8; i++) blk[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    ls_compress(st, blk);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(st[i] >> 24);
        out[4 * i + 1] = (uint8_t)(st[i] >> 16);
        out[4 * i + 2] = (uint8_t)(st[i] >> 8);
        out[4 * i + 3] = (uint8_t)st[i];
    }
}

typedef struct {
    uint32_t inner[8];
    uint32_t outer[8];
} ls_hmac_key;

/* Keys up to 64 bytes (the deployment key is 32). */
static void ls_hmac_init(ls_hmac_key *k, const uint8_t *key, size_t len) {
    uint8_t pad[64];
    memcpy(k->inner, LS_IV256, sizeof k->inner);
    memcpy(k->outer, LS_IV256, sizeof k->outer);
    for (size_t i = 0; i < 64; i++) pad[i] = (uint8_t)((i < len ? key[i] : 0) ^ 0x36);
    ls_compress(k->inner, pad);
    for (size_t i = 0; i < 64; i++) pad[i] = (uint8_t)((i < len ? key[i] : 0) ^ 0x5c);
    ls_compress(k->outer, pad);
}

static void ls_hmac(const ls_hmac_key *k, const uint8_t *msg, size_t len, uint8_t out[32]) {
    uint8_t inner[32];
    if (len <= 55) { /* one block: the usual case, without the general path's copies */
        uint32_t st[8];
        uint8_t blk[64];
        memcpy(st, k->inner, sizeof st);
        memcpy(blk, msg, len);
        blk[len] = 0x80;
        memset(blk + len + 1, 0, 63 - len);
        uint64_t bits = (64 + len) * 8;
        blk[62] = (uint8_t)(bits >> 8);
        blk[63] = (uint8_t)bits;
        ls_compress(st, blk);
        uint32_t ob[16];
        for (int i = 0; i < 8; i++) ob[i] = __builtin_bswap32(st[i]);
        ob[8] = __builtin_bswap32(0x80000000u);
        for (int i = 9; i < 15; i++) ob[i] = 0;
        ob[15] = __builtin_bswap32((64 + 32) * 8);
        memcpy(st, k->outer, sizeof st);
        ls_compress(st, (const uint8_t *)ob);
        for (int i = 0; i < 8; i++) {
            uint32_t v = __builtin_bswap32(st[i]);
            memcpy(out + 4 * i, &v, 4);
        }
        return;
    }
    ls_sha_finish(k->inner, 64, msg, len, inner);
    ls_sha_finish(k->outer, 64, inner, 32, out);
}


/* Four HMACs of messages written at the start of blk[j] (l[j] <= 55 bytes: one block, padded here in
 * place; its bytes after the message must be zero), interleaved; the first 16 bytes of each (the
 * scheme's truncation) into out[j]. */
static void ls_hmac4_16(const ls_hmac_key *k, uint8_t blk[4][64], const size_t l[4], uint8_t *const out[4]) {
    uint32_t st[4][8];
    uint32_t ob[4][16];
    uint32_t *const sp[4] = {st[0], st[1], st[2], st[3]};
    const uint8_t *const bp[4] = {blk[0], blk[1], blk[2], blk[3]};
    const uint8_t *const op[4] = {(const uint8_t *)ob[0], (const uint8_t *)ob[1], (const uint8_t *)ob[2],
                                  (const uint8_t *)ob[3]};
    for (int j = 0; j < 4; j++) {
        memcpy(st[j], k->inner, sizeof st[j]);
        blk[j][l[j]] = 0x80;
        uint64_t bits = (64 + l[j]) * 8;
        blk[j][62] = (uint8_t)(bits >> 8);
        blk[j][63] = (uint8_t)bits;
    }
    ls_compress4(sp, bp);
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 8; i++) ob[j][i] = __builtin_bswap32(st[j][i]);
        ob[j][8] = __builtin_bswap32(0x80000000u);
        for (int i = 9; i < 15; i++) ob[j][i] = 0;
        ob[j][15] = __builtin_bswap32((64 + 32) * 8);
        memcpy(st[j], k->outer, sizeof st[j]);
    }
    ls_compress4(sp, op);
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++) {
            uint32_t v = __builtin_bswap32(st[j][i]);
            memcpy(out[j] + 4 * i, &v, 4);
        }
}

#endif
