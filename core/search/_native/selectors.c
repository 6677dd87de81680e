/* Native selector scan of a posting (core.search._selectors), for core.search.base.extract_selectors.
 *
 *   scan(text, cooked=False) -> (emails, domains, ipv4, ipv6, hashes, btc_legacy, btc_bech32, cards,
 *                                phones_intl, phones_national, cn_mobiles)
 *   siphash(terms, key) -> bytes       (the selector index's keys: see "selector hashes" below)
 *   rare_split(tokens, key, min_chars) -> (str, bytes)   (long tokens with digits: see "rare tokens")
 *
 * Each element is the list `_<KIND>_SCAN.findall(text)` gives for the corresponding pattern of
 * core/search/base.py (the regexes stay the definition; tests/core/test_core_search_native_selectors.py
 * compares every scan with its regex): the same leftmost, non-overlapping matches, with the match the
 * regex engine's backtracking order picks at each start, and for the two phone scans group 1. Python's
 * `\d` is Py_UNICODE_ISDECIMAL and `\w` Py_UNICODE_ISALNUM or "_" (what _sre uses for str patterns), so
 * text in any script scans exactly as with `re`. cooked=True changes two elements into what
 * extract_selectors makes of them: emails become {host: [local part lower-cased, ...]} for the ASCII
 * local parts (others are dropped: base._email refuses them), cards the digits of the ASCII matches that
 * pass Luhn.
 *
 * Why the patterns reduce to these loops: every repeated part of them is delimited by a character it
 * cannot hold (a label by ".", a digit group by a non-digit...), so each quantifier's only viable count is
 * the whole run, and the remaining backtracking is over at most 8 label counts (domains), 48 paths
 * (national phones), or a memoised search over (position, repetitions) (international phones). Every
 * scan is linear in the text (a candidate start looks at most a bounded number of characters ahead, or is
 * skipped as a whole run); the matches are at most one per character.
 *
 * Speed: each loop is compiled once per PyUnicode kind (always-inline functions instantiated by a
 * switch); \d and \w of the BMP are bitmaps; the search for "@", "." and ":" is memchr / SSE2, and the
 * scans starting at digits, "(", "+" and "b" share one pass that visits only the trigger characters of
 * each SSE2 block.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#define SEL_SSE2 1
#endif

#define SEL_INLINE static inline __attribute__((always_inline))

/* ASCII classes */
enum {
    C_DIG = 1 << 0,   /* 0-9 */
    C_HEX = 1 << 1,   /* 0-9a-fA-F */
    C_AZ = 1 << 2,    /* a-zA-Z (+ the four non-ASCII letters, outside this table) */
    C_WORD = 1 << 3,  /* \w */
    C_LOCAL = 1 << 4, /* 0-9._%+ AZ - */
    C_B58 = 1 << 5,   /* base58 alphabet */
    C_BECH = 1 << 6,  /* 0 2-9 a c-h j-n p-z A C-H J-N P-Z (+ U+017F U+212A) */
    C_LABEL = 1 << 7, /* 0-9 AZ - */
};

static uint8_t CLS[128];

static void init_classes(void) {
    for (int c = 0; c < 128; c++) {
        uint8_t f = 0;
        int dig = c >= '0' && c <= '9';
        int lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        if (dig) f |= C_DIG;
        if (dig || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) f |= C_HEX;
        if (lower || upper) f |= C_AZ;
        if (dig || lower || upper || c == '_') f |= C_WORD;
        if (dig || lower || upper || c == '.' || c == '_' || c == '%' || c == '+' || c == '-') f |= C_LOCAL;
        if ((dig && c != '0') || (upper && c != 'I' && c != 'O') || (lower && c != 'l')) f |= C_B58;
        if ((dig && c != '1') || ((lower || upper) && c != 'b' && c != 'i' && c != 'o' && c != 'B' && c != 'I' &&
                                  c != 'O'))
            f |= C_BECH;
        if (dig || lower || upper || c == '-') f |= C_LABEL;
        CLS[c] = f;
    }
}

static inline int az_extra(Py_UCS4 c) { return c == 0x130 || c == 0x131 || c == 0x17f || c == 0x212a; }

/* \d and \w of the Basic Multilingual Plane, one bit a character (filled at import from the same
 * Py_UNICODE_* calls _sre makes): a lookup instead of a Unicode database call in CJK or Cyrillic text. */
static uint64_t BMP_DIGIT[65536 / 64], BMP_WORD[65536 / 64];

static void init_bmp(void) {
    for (Py_UCS4 c = 0; c < 65536; c++) {
        if (Py_UNICODE_ISDECIMAL(c)) BMP_DIGIT[c >> 6] |= (uint64_t)1 << (c & 63);
        if (Py_UNICODE_ISALNUM(c) || c == '_') BMP_WORD[c >> 6] |= (uint64_t)1 << (c & 63);
    }
}

/* \d */
static inline int is_d(Py_UCS4 c) {
    if (c < 128) return (CLS[c] & C_DIG) != 0;
    if (c < 65536) return (BMP_DIGIT[c >> 6] >> (c & 63)) & 1;
    return Py_UNICODE_ISDECIMAL(c);
}
/* \w */
static inline int is_w(Py_UCS4 c) {
    if (c < 128) return (CLS[c] & C_WORD) != 0;
    if (c < 65536) return (BMP_WORD[c >> 6] >> (c & 63)) & 1;
    return Py_UNICODE_ISALNUM(c);
}
static inline int is_hex(Py_UCS4 c) { return c < 128 && (CLS[c] & C_HEX); }
static inline int is_ascii_alnum(Py_UCS4 c) { return c < 128 && (CLS[c] & (C_DIG | C_AZ)); }
static inline int is_b58(Py_UCS4 c) { return c < 128 && (CLS[c] & C_B58); }
/* [AZ] */
static inline int is_az(Py_UCS4 c) { return c < 128 ? (CLS[c] & C_AZ) != 0 : az_extra(c); }
/* [0-9AZ] */
static inline int is_an(Py_UCS4 c) { return c < 128 ? (CLS[c] & (C_AZ | C_DIG)) != 0 : az_extra(c); }
/* [0-9AZ-] */
static inline int is_label(Py_UCS4 c) { return c < 128 ? (CLS[c] & C_LABEL) != 0 : az_extra(c); }
/* [0-9._%+AZ-] */
static inline int is_local(Py_UCS4 c) { return c < 128 ? (CLS[c] & C_LOCAL) != 0 : az_extra(c); }
static inline int is_bech(Py_UCS4 c) { return c < 128 ? (CLS[c] & C_BECH) != 0 : (c == 0x17f || c == 0x212a); }
static inline int is_sep(Py_UCS4 c) { return c == ' ' || c == '.' || c == '-'; }

typedef struct {
    PyObject *text;
    const void *data;
    Py_ssize_t n;
} Src;

/* The character at i, or 0 outside the text (0 is in no class: a look-behind at the start or a
 * look-ahead at the end sees nothing it forbids). */
#define AT(i) (((i) >= 0 && (i) < n) ? PyUnicode_READ(KIND, data, (i)) : (Py_UCS4)0)

static int emit(const Src *src, PyObject *list, Py_ssize_t s, Py_ssize_t e) {
    PyObject *sub = PyUnicode_Substring(src->text, s, e);
    if (sub == NULL) return -1;
    int rc = PyList_Append(list, sub);
    Py_DECREF(sub);
    return rc;
}

/* Next position >= from holding ASCII character ch, or -1. */
SEL_INLINE Py_ssize_t find_char(const void *data, int KIND, Py_ssize_t n, Py_ssize_t from, Py_UCS4 ch) {
    if (from >= n) return -1;
    if (KIND == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        const void *hit = memchr(p + from, (int)ch, (size_t)(n - from));
        return hit ? (const Py_UCS1 *)hit - p : -1;
    }
    Py_ssize_t i = from;
#ifdef SEL_SSE2
    if (KIND == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *p = (const Py_UCS2 *)data;
        const __m128i needle = _mm_set1_epi16((short)ch);
        for (; i + 8 <= n; i += 8) {
            int m = _mm_movemask_epi8(_mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(p + i)), needle));
            if (m) return i + (__builtin_ctz((unsigned)m) >> 1);
        }
    }
#endif
    for (; i < n; i++)
        if (PyUnicode_READ(KIND, data, i) == ch) return i;
    return -1;
}

/* The labels `(?:LABEL\.){0,max}` from p: pos[k] is where the text after k labels starts; returns how
 * many consecutive labels there are (at most max). A label is the whole segment up to the next ".",
 * 1-63 characters of [0-9AZ-], first and last [0-9AZ]. */
SEL_INLINE int labels(const void *data, int KIND, Py_ssize_t n, Py_ssize_t p, int max, Py_ssize_t *pos) {
    int k = 0;
    pos[0] = p;
    while (k < max) {
        Py_ssize_t q = pos[k], j = q;
        while (j < n && j - q < 64 && is_label(AT(j))) j++;
        Py_ssize_t len = j - q;
        if (len < 1 || len > 63 || AT(j) != '.' || !is_an(AT(q)) || !is_an(AT(j - 1))) break;
        pos[++k] = j + 1;
    }
    return k;
}

/* Length of the run of [AZ] at p if it is a TLD `[AZ]{2,63}` followed by neither [0-9AZ-] (email, wide=0)
 * nor [\w-] (domain, wide=1); else 0. */
SEL_INLINE Py_ssize_t tld(const void *data, int KIND, Py_ssize_t n, Py_ssize_t p, int wide) {
    Py_ssize_t j = p;
    while (j < n && j - p < 64 && is_az(AT(j))) j++;
    Py_ssize_t r = j - p;
    if (r < 2 || r > 63) return 0;
    Py_UCS4 c = AT(j);
    if (c == '-' || (wide ? is_w(c) : is_an(c))) return 0;
    return r;
}

/* _EMAIL_SCAN: local part = the whole run of [0-9._%+AZ-] before an "@" (1-64 characters, starting the
 * run), then 1-8 labels (the most that still leave a TLD). */
/* Hosts already met by this scan (a posting names few mail hosts): their keys and lists in the cooked
 * dict (borrowed: the dict holds them), found by comparing characters instead of making a str. */
#define HOST_CACHE 16
typedef struct {
    int count;
    PyObject *host[HOST_CACHE], *locals[HOST_CACHE];
} Hosts;

/* The list of out[text[a:e]], created if missing; borrowed. */
static PyObject *host_locals(const Src *src, PyObject *out, Hosts *hosts, Py_ssize_t a, Py_ssize_t e) {
    int kind = PyUnicode_KIND(src->text);
    for (int h = 0; h < hosts->count; h++) {
        PyObject *host = hosts->host[h];
        if (PyUnicode_GET_LENGTH(host) != e - a) continue;
        int hkind = PyUnicode_KIND(host);
        const void *hdata = PyUnicode_DATA(host);
        Py_ssize_t k = 0;
        while (k < e - a && PyUnicode_READ(hkind, hdata, k) == PyUnicode_READ(kind, src->data, a + k)) k++;
        if (k == e - a) return hosts->locals[h];
    }
    PyObject *host = PyUnicode_Substring(src->text, a, e);
    if (host == NULL) return NULL;
    PyObject *locals = PyDict_GetItemWithError(out, host);
    if (locals == NULL) {
        if (PyErr_Occurred() || (locals = PyList_New(0)) == NULL) {
            Py_DECREF(host);
            return NULL;
        }
        int rc = PyDict_SetItem(out, host, locals);
        Py_DECREF(locals);
        if (rc < 0) {
            Py_DECREF(host);
            return NULL;
        }
        if (hosts->count < HOST_CACHE) { /* now the dict's key: lives as long as the dict */
            hosts->host[hosts->count] = host;
            hosts->locals[hosts->count++] = locals;
        }
    }
    Py_DECREF(host);
    return locals;
}

/* An email match as cooked: its local part lower-cased, if ASCII (else nothing: base._email refuses it),
 * appended to out[host]. */
static int emit_email_cooked(const Src *src, PyObject *out, Hosts *hosts, Py_ssize_t s, Py_ssize_t a,
                             Py_ssize_t e) {
    char buf[64];
    int kind = PyUnicode_KIND(src->text);
    for (Py_ssize_t i = s; i < a; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, src->data, i);
        if (c >= 128) return 0;
        buf[i - s] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    PyObject *locals = host_locals(src, out, hosts, a + 1, e);
    if (locals == NULL) return -1;
    PyObject *local = PyUnicode_FromStringAndSize(buf, a - s);
    if (local == NULL) return -1;
    int rc = PyList_Append(locals, local);
    Py_DECREF(local);
    return rc;
}

SEL_INLINE int scan_email(const Src *src, const void *data, int KIND, Py_ssize_t n, PyObject *out, int cooked) {
    Py_ssize_t last = 0, p = 0, a;
    Py_ssize_t pos[9];
    Hosts hosts = {.count = 0};
    while ((a = find_char(data, KIND, n, p, '@')) >= 0) {
        p = a + 1;
        Py_ssize_t s = a;
        while (s > 0 && a - s < 65 && is_local(AT(s - 1))) s--;
        if (s == a || a - s > 64 || s < last) continue;
        int K = labels(data, KIND, n, a + 1, 8, pos);
        for (int k = K; k >= 1; k--) {
            Py_ssize_t r = tld(data, KIND, n, pos[k], 0);
            if (r) {
                Py_ssize_t e = pos[k] + r;
                if ((cooked ? emit_email_cooked(src, out, &hosts, s, a, e) : emit(src, out, s, e)) < 0) return -1;
                last = p = e;
                break;
            }
        }
    }
    return 0;
}

/* _DOMAIN_SCAN: the first label is the whole run of [0-9AZ-] before a "." (1-63 characters, not
 * starting or ending with "-", after none of [\w.@-]), then 0-7 more labels and a TLD. */
SEL_INLINE int scan_domain(const Src *src, const void *data, int KIND, Py_ssize_t n, PyObject *out) {
    Py_ssize_t last = 0, p = 0, d;
    Py_ssize_t pos[8];
    while ((d = find_char(data, KIND, n, p, '.')) >= 0) {
        p = d + 1;
        Py_ssize_t s = d;
        while (s > 0 && d - s < 64 && is_label(AT(s - 1))) s--;
        if (s == d || d - s > 63 || s < last) continue;
        Py_UCS4 prev = AT(s - 1);
        if (!is_an(AT(s)) || AT(d - 1) == '-' || is_w(prev) || prev == '.' || prev == '@' || prev == '-') continue;
        int K = labels(data, KIND, n, d + 1, 7, pos);
        for (int k = K; k >= 0; k--) {
            Py_ssize_t r = tld(data, KIND, n, pos[k], 1);
            if (r) {
                Py_ssize_t e = pos[k] + r;
                if (emit(src, out, s, e) < 0) return -1;
                last = p = e;
                break;
            }
        }
    }
    return 0;
}

/* Length of the run of \d at p, counting at most cap + 1. */
SEL_INLINE Py_ssize_t digits(const void *data, int KIND, Py_ssize_t n, Py_ssize_t p, Py_ssize_t cap) {
    Py_ssize_t j = p;
    while (j < n && j - p <= cap && is_d(AT(j))) j++;
    return j - p;
}

/* _IPV4_SCAN: four whole digit runs of 1-3 joined by single dots, the first after neither a digit nor
 * ".", the last followed by neither a digit nor "." and a digit. */
SEL_INLINE int scan_ipv4(const Src *src, const void *data, int KIND, Py_ssize_t n, PyObject *out) {
    Py_ssize_t last = 0, p = 0, d;
    while ((d = find_char(data, KIND, n, p, '.')) >= 0) {
        p = d + 1;
        Py_ssize_t s = d;
        while (s > 0 && d - s < 4 && is_d(AT(s - 1))) s--;
        if (s == d || d - s > 3 || s < last || AT(s - 1) == '.') continue;
        Py_ssize_t q = d + 1;
        int ok = 1;
        for (int g = 0; g < 2 && ok; g++) {
            Py_ssize_t r = digits(data, KIND, n, q, 3);
            if (r < 1 || r > 3 || AT(q + r) != '.') ok = 0;
            else q += r + 1;
        }
        if (!ok) continue;
        Py_ssize_t r = digits(data, KIND, n, q, 3);
        if (r < 1 || r > 3) continue;
        Py_ssize_t e = q + r;
        if (AT(e) == '.' && is_d(AT(e + 1))) continue;
        if (emit(src, out, s, e) < 0) return -1;
        last = p = e;
    }
    return 0;
}

/* _IPV6_SCAN: a whole run of [0-9a-fA-F:] (not after ".") with 2-7 colons and at most 4 hex digits
 * between them. */
SEL_INLINE int scan_ipv6(const Src *src, const void *data, int KIND, Py_ssize_t n, PyObject *out) {
    Py_ssize_t p = 0, c;
    while ((c = find_char(data, KIND, n, p, ':')) >= 0) {
        Py_ssize_t s = c, e = c;
        while (s > p && (is_hex(AT(s - 1)) || AT(s - 1) == ':')) s--;
        while (e < n && (is_hex(AT(e)) || AT(e) == ':')) e++;
        p = e;
        if (AT(s - 1) == '.') continue;
        int colons = 0, group = 0, ok = 1;
        for (Py_ssize_t i = s; i < e && ok; i++) {
            if (AT(i) == ':') {
                group = 0;
                if (++colons > 7) ok = 0;
            } else if (++group > 4) {
                ok = 0;
            }
        }
        if (ok && colons >= 2 && emit(src, out, s, e) < 0) return -1;
    }
    return 0;
}

/* _HASH_SCAN: a whole run of 32, 40 or 64 hex digits, after and before none of [0-9AZ]. Runs of 32 or
 * more are found by looking at every 32nd character. */
SEL_INLINE int scan_hash(const Src *src, const void *data, int KIND, Py_ssize_t n, PyObject *out) {
    Py_ssize_t i = 0;
    while (i + 32 <= n) {
        if (!is_hex(AT(i + 31))) {
            i += 32;
            continue;
        }
        Py_ssize_t s = i + 31, e = i + 32;
        while (s > i && is_hex(AT(s - 1))) s--;
        while (e < n && is_hex(AT(e))) e++;
        Py_ssize_t len = e - s;
        if ((len == 32 || len == 40 || len == 64) && !is_an(AT(s - 1)) && !is_an(AT(e)))
            if (emit(src, out, s, e) < 0) return -1;
        i = e + 1;
    }
    return 0;
}

/* _CARD_SCAN at a digit i after neither a digit nor "-": steps of a digit or a space/hyphen and a digit;
 * a match is 12-18 steps where no further step follows, not followed by "-". The end, or -1. */
SEL_INLINE Py_ssize_t card_at(const void *data, int KIND, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t p = i + 1;
    int steps = 0;
    while (steps < 19) {
        Py_UCS4 x = AT(p);
        if ((x == ' ' || x == '-') && is_d(AT(p + 1))) p += 2;
        else if (is_d(x)) p++;
        else break;
        steps++;
    }
    return steps >= 12 && steps <= 18 && AT(p) != '-' ? p : -1;
}

/* A card match as its term (cooked): its digits without spaces and hyphens if they are ASCII and pass
 * Luhn (base._card); else nothing. */
static int emit_card_term(const Src *src, PyObject *list, Py_ssize_t s, Py_ssize_t e) {
    char buf[32];
    int len = 0;
    for (Py_ssize_t i = s; i < e; i++) {
        Py_UCS4 c = PyUnicode_READ(PyUnicode_KIND(src->text), src->data, i);
        if (c == ' ' || c == '-') continue;
        if (c < '0' || c > '9' || len >= 19) return 0;
        buf[len++] = (char)c;
    }
    int sum = 0;
    for (int k = 0; k < len; k++) {
        int d = buf[len - 1 - k] - '0';
        if (k & 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
    }
    if (sum % 10) return 0;
    PyObject *term = PyUnicode_FromStringAndSize(buf, len);
    if (term == NULL) return -1;
    int rc = PyList_Append(list, term);
    Py_DECREF(term);
    return rc;
}

/* _BTC_LEGACY_SCAN at "1"/"3" after no [A-Za-z0-9]: a whole run of base58 of 25-34 characters, not
 * followed by [A-Za-z0-9]. The end, or -1. */
SEL_INLINE Py_ssize_t legacy_at(const void *data, int KIND, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t j = i + 1;
    while (j < n && j - i <= 35 && is_b58(AT(j))) j++;
    Py_ssize_t r = j - i - 1;
    return r >= 25 && r <= 34 && !is_ascii_alnum(AT(j)) ? j : -1;
}

/* _BTC_BECH32_SCAN at "b"/"B" after no [0-9AZ]: "c"/"C", "1", a whole run of the bech32 class of 11-71
 * characters, not followed by [0-9AZ]. The end, or -1. */
SEL_INLINE Py_ssize_t bech32_at(const void *data, int KIND, Py_ssize_t n, Py_ssize_t i) {
    Py_UCS4 c1 = AT(i + 1);
    if ((c1 != 'c' && c1 != 'C') || AT(i + 2) != '1') return -1;
    Py_ssize_t j = i + 3;
    while (j < n && j - i - 3 <= 71 && is_bech(AT(j))) j++;
    Py_ssize_t r = j - i - 3;
    return r >= 11 && r <= 71 && !is_an(AT(j)) ? j : -1;
}

/* _PHONE_INTL_SCAN group 1 from g: \d{1,4}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?!\w), searched in the order of the
 * regex engine (greedy: the most digits first, an optional character taken before it is left out, another
 * repetition before stopping) with failed (position, repetitions) states remembered, so the first path
 * found is the engine's and each state is explored once. A match spans at most 4 + 6 * 8 characters, and
 * the recursion is at most 7 deep. Run only at "+" / "00" candidates, so not specialised per kind. */
#define INTL_SPAN 53

typedef struct {
    const void *data;
    int kind;
    Py_ssize_t n, g;
    uint8_t failed[INTL_SPAN][7];
} Intl;

static inline Py_UCS4 intl_at(const Intl *st, Py_ssize_t i) {
    return (i >= 0 && i < st->n) ? PyUnicode_READ(st->kind, st->data, i) : (Py_UCS4)0;
}

static Py_ssize_t intl_reps(Intl *st, Py_ssize_t p, int count);

static Py_ssize_t intl_next(Intl *st, Py_ssize_t q, int count) {
    Py_ssize_t off = q - st->g;
    if (st->failed[off][count]) return -1;
    Py_ssize_t r = intl_reps(st, q, count);
    if (r < 0) st->failed[off][count] = 1;
    return r;
}

/* After `count` repetitions at p: another repetition (each of its paths in the engine's order), else the
 * end if count >= 1 and no \w follows. Returns the end of the match or -1. */
static Py_ssize_t intl_reps(Intl *st, Py_ssize_t p, int count) {
    if (count < 6) {
        Py_ssize_t seps[2], nseps = 0;
        if (is_sep(intl_at(st, p))) seps[nseps++] = p + 1;
        seps[nseps++] = p;
        for (int a = 0; a < nseps; a++) {
            Py_ssize_t opens[2], nopens = 0, q0 = seps[a];
            if (intl_at(st, q0) == '(') opens[nopens++] = q0 + 1;
            opens[nopens++] = q0;
            for (int b = 0; b < nopens; b++) {
                Py_ssize_t q1 = opens[b], run = 0;
                while (run < 5 && is_d(intl_at(st, q1 + run))) run++;
                for (Py_ssize_t k = run; k >= 1; k--) {
                    Py_ssize_t q2 = q1 + k, r;
                    if (intl_at(st, q2) == ')' && (r = intl_next(st, q2 + 1, count + 1)) >= 0) return r;
                    if ((r = intl_next(st, q2, count + 1)) >= 0) return r;
                }
            }
        }
    }
    if (count >= 1 && !is_w(intl_at(st, p))) return p;
    return -1;
}

/* _PHONE_INTL_SCAN's group from g (after "+" / "00"): the end, or -1. */
static Py_ssize_t intl_match(Intl *st, Py_ssize_t g) {
    Py_ssize_t run = 0, e = -1;
    while (run < 4 && is_d(intl_at(st, g + run))) run++;
    if (!run) return -1;
    memset(st->failed, 0, sizeof st->failed);
    st->g = g;
    for (Py_ssize_t k = run; k >= 1 && e < 0; k--) e = intl_next(st, g + k, 0);
    return e;
}

/* _PHONE_NATIONAL_SCAN: at "(" or a digit after none of [\w+(.] nor a digit and one of " .-": the
 * regex's at most 3 * 2 * 2 * 2 * 2 paths in its order. */
SEL_INLINE Py_ssize_t national_at(const void *data, int KIND, Py_ssize_t n, Py_ssize_t s) {
    Py_UCS4 c = AT(s);
    Py_ssize_t p0 = s + 1, rd = digits(data, KIND, n, p0, 4), kmin, kmax;
    if (c == '(') {
        kmin = 2;
        kmax = rd < 4 ? rd : 4;
    } else {
        kmin = 1;
        kmax = rd < 3 ? rd : 3;
    }
    for (Py_ssize_t k1 = kmax; k1 >= kmin; k1--) {
        Py_ssize_t p1 = p0 + k1, closes[2], nc = 0;
        if (AT(p1) == ')') closes[nc++] = p1 + 1;
        closes[nc++] = p1;
        for (int a = 0; a < nc; a++) {
            Py_ssize_t p2 = closes[a], seps[2], ns = 0;
            if (is_sep(AT(p2))) seps[ns++] = p2 + 1;
            seps[ns++] = p2;
            for (int b = 0; b < ns; b++) {
                Py_ssize_t p3 = seps[b], r3 = digits(data, KIND, n, p3, 4);
                for (Py_ssize_t k2 = r3 < 4 ? r3 : 4; k2 >= 3; k2--) {
                    Py_ssize_t p4 = p3 + k2;
                    if (!is_sep(AT(p4))) continue;
                    Py_ssize_t p5 = p4 + 1, r5 = digits(data, KIND, n, p5, 4);
                    for (Py_ssize_t k3 = r5 < 4 ? r5 : 4; k3 >= 3; k3--) {
                        Py_ssize_t p6 = p5 + k3;
                        Py_UCS4 x = AT(p6);
                        if (is_w(x) || x == '.' || ((x == ' ' || x == '-') && is_d(AT(p6 + 1)))) continue;
                        return p6;
                    }
                }
            }
        }
    }
    return -1;
}

/* ASCII characters at which a scan of the digit loop may start. */
enum { T_DIGIT = 1, T_PAREN = 2, T_PLUS = 4, T_B = 8 };
static uint8_t TRIG[128];

static void init_triggers(void) {
    for (int c = '0'; c <= '9'; c++) TRIG[c] = T_DIGIT;
    TRIG['('] = T_PAREN;
    TRIG['+'] = T_PLUS;
    TRIG['b'] = TRIG['B'] = T_B;
}

enum { K_EMAIL, K_DOMAIN, K_IPV4, K_IPV6, K_HASH, K_LEGACY, K_BECH32, K_CARD, K_INTL, K_NATIONAL, K_CN, NKINDS };

/* Non-ASCII characters of a UCS-2 text the digit loop skips in bulk: [GAP_LO, GAP_LO + gap_len) holds no
 * decimal digit (CJK, kana, Hangul syllables are outside it... checked at import on this Python's Unicode
 * database; gap_len 0 if it does not hold). A Latin-1 character is never a decimal digit (also checked:
 * latin1_digits). */
#define GAP_LO 0x3000
static int gap_len, latin1_digits;

static void init_gap(void) {
    gap_len = 0xA620 - GAP_LO;
    for (Py_UCS4 c = GAP_LO; c < GAP_LO + (Py_UCS4)gap_len; c++)
        if (is_d(c)) gap_len = 0;
    latin1_digits = 0;
    for (Py_UCS4 c = 128; c < 256; c++)
        if (is_d(c)) latin1_digits = 1;
}

typedef struct {
    const Src *src;
    PyObject **lists;
    int cooked;
    Py_ssize_t last_card, last_legacy, last_intl, last_national, last_cn;
    Intl st;
} Digits;

/* The scans that start at a digit, "(", "+" or "b" (cards, both phones, Chinese mobiles, both BTC forms)
 * at i: each keeps its own end of last match (findall goes on from there), and a start after an ASCII
 * digit is none of theirs (each look-behind forbids it). */
SEL_INLINE int digit_step(Digits *g, const void *data, int KIND, Py_ssize_t n, Py_ssize_t i) {
    Py_UCS4 c = PyUnicode_READ(KIND, data, i);
    int t;
    if (c < 128) {
        if (!(t = TRIG[c])) return 0;
    } else {
        if (!is_d(c)) return 0;
        t = T_DIGIT;
    }
    const Src *src = g->src;
    PyObject **lists = g->lists;
    Py_UCS4 prev = AT(i - 1);
    Py_ssize_t e;
    if (t == T_DIGIT) {
        if (prev < 128 && (CLS[prev] & C_DIG)) return 0;
        int pd = is_d(prev);
        if (i >= g->last_card && !pd && prev != '-' && (e = card_at(data, KIND, n, i)) >= 0) {
            if ((g->cooked ? emit_card_term(src, lists[K_CARD], i, e) : emit(src, lists[K_CARD], i, e)) < 0)
                return -1;
            g->last_card = e;
        }
        if (i >= g->last_national && !is_w(prev) && prev != '+' && prev != '(' && prev != '.' &&
            !(is_sep(prev) && is_d(AT(i - 2))) && (e = national_at(data, KIND, n, i)) >= 0) {
            if (emit(src, lists[K_NATIONAL], i, e) < 0) return -1;
            g->last_national = e;
        }
        if ((c == '1' || c == '3') && i >= g->last_legacy && !is_ascii_alnum(prev) &&
            (e = legacy_at(data, KIND, n, i)) >= 0) {
            if (emit(src, lists[K_LEGACY], i, e) < 0) return -1;
            g->last_legacy = e;
        }
        if (c == '1' && i >= g->last_cn && !pd && prev != '.' && prev != '+' && prev != '-') {
            /* _CN_MOBILE_SCAN: "1", [3-9], nine \d, before none of [\d.-]. */
            Py_UCS4 c1 = AT(i + 1), x = AT(i + 11);
            if (c1 >= '3' && c1 <= '9' && digits(data, KIND, n, i + 2, 9) == 9 && x != '.' && x != '-') {
                if (emit(src, lists[K_CN], i, i + 11) < 0) return -1;
                g->last_cn = i + 11;
            }
        }
        if (c == '0' && i >= g->last_intl && AT(i + 1) == '0' && prev != '+' && !is_w(prev) &&
            (e = intl_match(&g->st, i + 2)) >= 0) {
            if (emit(src, lists[K_INTL], i + 2, e) < 0) return -1;
            g->last_intl = e;
        }
    } else if (t == T_PAREN) {
        if (i >= g->last_national && !is_w(prev) && prev != '+' && prev != '(' && prev != '.' &&
            !(is_sep(prev) && is_d(AT(i - 2))) && (e = national_at(data, KIND, n, i)) >= 0) {
            if (emit(src, lists[K_NATIONAL], i, e) < 0) return -1;
            g->last_national = e;
        }
    } else if (t == T_PLUS) {
        if (i >= g->last_intl && prev != '+' && !is_w(prev) && (e = intl_match(&g->st, i + 1)) >= 0) {
            if (emit(src, lists[K_INTL], i + 1, e) < 0) return -1;
            g->last_intl = e;
        }
    } else if (!is_an(prev) && (e = bech32_at(data, KIND, n, i)) >= 0) {
        /* no bech32 match starts inside another (all [0-9AZ]) */
        if (emit(src, lists[K_BECH32], i, e) < 0) return -1;
    }
    return 0;
}

/* digit_step at every position, or (SSE2) only at the positions of each block of 16 bytes / 8 UCS-2
 * characters that hold a trigger character: an ASCII digit, "(", "+", "b", "B", or a non-ASCII character
 * that may be a digit. */
SEL_INLINE int scan_digits(const Src *src, const void *data, int KIND, Py_ssize_t n, PyObject **lists, int cooked) {
    Digits g = {.src = src, .lists = lists, .cooked = cooked};
    g.st.data = data;
    g.st.kind = KIND;
    g.st.n = n;
    Py_ssize_t i = 0;
#ifdef SEL_SSE2
    if (KIND == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        const __m128i zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9), paren = _mm_set1_epi8('('),
                      plus = _mm_set1_epi8('+'), b = _mm_set1_epi8('b'), lower = _mm_set1_epi8(0x20);
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
            __m128i d = _mm_sub_epi8(v, zero);
            __m128i hit = _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d);
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, paren));
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, plus));
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_or_si128(v, lower), b));
            unsigned m = (unsigned)_mm_movemask_epi8(hit);
            if (latin1_digits) m |= (unsigned)_mm_movemask_epi8(v);
            while (m) {
                if (digit_step(&g, data, KIND, n, i + __builtin_ctz(m)) < 0) return -1;
                m &= m - 1;
            }
        }
    } else if (KIND == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *p = (const Py_UCS2 *)data;
        const __m128i zero = _mm_set1_epi16('0'), nine = _mm_set1_epi16(9), paren = _mm_set1_epi16('('),
                      plus = _mm_set1_epi16('+'), b = _mm_set1_epi16('b'), lower = _mm_set1_epi16(0x20),
                      ascii_max = _mm_set1_epi16(127), gap_lo = _mm_set1_epi16((short)GAP_LO),
                      gap_max = _mm_set1_epi16((short)(gap_len ? gap_len - 1 : 0)), nil = _mm_setzero_si128();
        for (; i + 8 <= n; i += 8) {
            __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
            __m128i d = _mm_sub_epi16(v, zero);
            __m128i hit = _mm_cmpeq_epi16(_mm_subs_epu16(d, nine), nil); /* 0 <= c - '0' <= 9 */
            hit = _mm_or_si128(hit, _mm_cmpeq_epi16(v, paren));
            hit = _mm_or_si128(hit, _mm_cmpeq_epi16(v, plus));
            hit = _mm_or_si128(hit, _mm_cmpeq_epi16(_mm_or_si128(v, lower), b));
            __m128i ascii = _mm_cmpeq_epi16(_mm_subs_epu16(v, ascii_max), nil);
            __m128i in_gap = _mm_cmpeq_epi16(_mm_subs_epu16(_mm_sub_epi16(v, gap_lo), gap_max), nil);
            if (!gap_len) in_gap = nil;
            hit = _mm_or_si128(hit, _mm_andnot_si128(_mm_or_si128(ascii, in_gap), _mm_cmpeq_epi16(nil, nil)));
            unsigned m = (unsigned)_mm_movemask_epi8(hit) & 0x5555u;
            while (m) {
                if (digit_step(&g, data, KIND, n, i + (__builtin_ctz(m) >> 1)) < 0) return -1;
                m &= m - 1;
            }
        }
    }
#endif
    for (; i < n; i++)
        if (digit_step(&g, data, KIND, n, i) < 0) return -1;
    return 0;
}

SEL_INLINE int scan_kind(const Src *src, const void *data, int KIND, Py_ssize_t n, PyObject **lists, int cooked) {
    if (scan_email(src, data, KIND, n, lists[K_EMAIL], cooked) < 0) return -1;
    if (scan_domain(src, data, KIND, n, lists[K_DOMAIN]) < 0) return -1;
    if (scan_ipv4(src, data, KIND, n, lists[K_IPV4]) < 0) return -1;
    if (scan_ipv6(src, data, KIND, n, lists[K_IPV6]) < 0) return -1;
    if (scan_hash(src, data, KIND, n, lists[K_HASH]) < 0) return -1;
    return scan_digits(src, data, KIND, n, lists, cooked);
}

static int scan_1(const Src *s, PyObject **l, int cooked) {
    return scan_kind(s, s->data, PyUnicode_1BYTE_KIND, s->n, l, cooked);
}
static int scan_2(const Src *s, PyObject **l, int cooked) {
    return scan_kind(s, s->data, PyUnicode_2BYTE_KIND, s->n, l, cooked);
}
static int scan_4(const Src *s, PyObject **l, int cooked) {
    return scan_kind(s, s->data, PyUnicode_4BYTE_KIND, s->n, l, cooked);
}

static PyObject *sel_scan(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"text", "cooked", NULL};
    PyObject *text;
    int cooked = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|p:scan", keywords, &text, &cooked)) return NULL;
    if (PyUnicode_READY(text) < 0) return NULL;
    Src src = {text, PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)};
    PyObject *lists[NKINDS] = {NULL};
    PyObject *result = NULL;
    for (int k = 0; k < NKINDS; k++)
        if ((lists[k] = (cooked && k == K_EMAIL) ? PyDict_New() : PyList_New(0)) == NULL) goto done;
    int rc;
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND: rc = scan_1(&src, lists, cooked); break;
    case PyUnicode_2BYTE_KIND: rc = scan_2(&src, lists, cooked); break;
    default: rc = scan_4(&src, lists, cooked); break;
    }
    if (rc < 0) goto done;
    if ((result = PyTuple_New(NKINDS)) == NULL) goto done;
    for (int k = 0; k < NKINDS; k++) {
        PyTuple_SET_ITEM(result, k, lists[k]);
        lists[k] = NULL;
    }
done:
    for (int k = 0; k < NKINDS; k++) Py_XDECREF(lists[k]);
    return result;
}

/* ------------------------------------------------------------------ selector hashes
 *
 *   siphash(terms, key) -> bytes: SipHash-2-4 (Aumasson & Bernstein) of each term's UTF-8 under the
 *   16-byte key, as little-endian uint64, in the iteration order of `terms` (any iterable of str).
 *
 * The tantivy backend's selector index (core/search/selector_index.py) keys its pairs by these; the
 * Python reference there gives the same values (tests/core/test_core_search_selector_index.py). Why a
 * keyed hash: a posting cannot be written so that its selectors collide with someone else's without the
 * index's key. */
#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                                                                                              \
    do {                                                                                                       \
        v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32);                                      \
        v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2;                                                             \
        v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0;                                                             \
        v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32);                                      \
    } while (0)

static uint64_t sip_le64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *m, size_t n) {
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t w = sip_le64(m + i);
        v3 ^= w;
        SIP_ROUND;
        SIP_ROUND;
        v0 ^= w;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t i = 0; i < n % 8; i++) last |= (uint64_t)m[whole + i] << (8 * i);
    v3 ^= last;
    SIP_ROUND;
    SIP_ROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIP_ROUND;
    SIP_ROUND;
    SIP_ROUND;
    SIP_ROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* the 16-byte key as SipHash's two words; the buffer is released either way */
static int sip_key(Py_buffer *key, uint64_t *k0, uint64_t *k1) {
    int ok = key->len == 16;
    if (ok) {
        *k0 = sip_le64((const uint8_t *)key->buf);
        *k1 = sip_le64((const uint8_t *)key->buf + 8);
    }
    PyBuffer_Release(key);
    if (!ok) PyErr_SetString(PyExc_ValueError, "the key must be 16 bytes");
    return ok ? 0 : -1;
}

static PyObject *sel_siphash(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *terms;
    Py_buffer key;
    if (!PyArg_ParseTuple(args, "Oy*", &terms, &key)) return NULL;
    uint64_t k0, k1;
    if (sip_key(&key, &k0, &k1) < 0) return NULL;
    PyObject *seq = PySequence_Fast(terms, "terms: an iterable of str");
    if (!seq) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyBytes_FromStringAndSize(NULL, count * 8);
    if (!out) {
        Py_DECREF(seq);
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *term = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(term)) {
            PyErr_SetString(PyExc_TypeError, "terms: every term must be a str");
            goto fail;
        }
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(term, &len);
        uint64_t h;
        if (utf8) {
            h = siphash24(k0, k1, (const uint8_t *)utf8, (size_t)len);
        } else { /* a lone surrogate (hostile text): its "surrogatepass" bytes, as the reference */
            PyErr_Clear();
            PyObject *raw = PyUnicode_AsEncodedString(term, "utf-8", "surrogatepass");
            if (!raw) goto fail;
            h = siphash24(k0, k1, (const uint8_t *)PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw));
            Py_DECREF(raw);
        }
        for (int b = 0; b < 8; b++) dst[i * 8 + b] = (uint8_t)(h >> (8 * b));
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

/* ------------------------------------------------------------------ rare tokens
 *
 *   rare_split(tokens, key, min_chars) -> (indexed, keys): `tokens` is a token string (core.search.cjk:
 *   tokens joined by single spaces). Each token of at least `min_chars` characters, all of them ASCII
 *   lower-case letters or digits with at least one digit (a password, a card or phone number, an id), is
 *   written to `indexed` as its placeholder "#" + two hex digits (FNV-1a of the token, low byte), and its
 *   SipHash-2-4 under `key` of "\0" + the token goes to `keys` (little-endian uint64s, each once); every
 *   other token and every separator is copied as it is. core/search/rare_tokens.py holds the rule and the
 *   Python reference (tests/core/test_core_search_rare_tokens.py compares the two).
 *
 * Why: such tokens are nearly all seen in one posting only, and tantivy pays for every distinct term at
 * every commit (the term dictionary, a postings list): ~0.4 ms of CPU per 10 KB posting. The placeholder
 * keeps the token's position for phrases; the key finds the postings holding it (the selector index). */
#define RARE_MAX_KEYS_INITIAL 256

static inline int rare_char(Py_UCS4 c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

typedef struct {
    uint64_t *slots; /* open addressing; 0 marks an empty slot, a key of 0 is `zero` */
    size_t cap, used;
    int zero;
} keyset;

static int keyset_add(keyset *ks, uint64_t h) {
    if (h == 0) {
        ks->zero = 1;
        return 0;
    }
    uint64_t **slots = &ks->slots;
    size_t *cap = &ks->cap, *used = &ks->used;
    if ((*used + 1) * 2 > *cap) {
        size_t ncap = *cap ? *cap * 2 : RARE_MAX_KEYS_INITIAL;
        uint64_t *n = calloc(ncap, sizeof(uint64_t));
        if (!n) return -1;
        for (size_t i = 0; i < *cap; i++) {
            uint64_t v = (*slots)[i];
            if (!v) continue;
            size_t j = (size_t)(v * 0x9E3779B97F4A7C15ULL >> 17) & (ncap - 1);
            while (n[j]) j = (j + 1) & (ncap - 1);
            n[j] = v;
        }
        free(*slots);
        *slots = n;
        *cap = ncap;
    }
    size_t j = (size_t)(h * 0x9E3779B97F4A7C15ULL >> 17) & (*cap - 1);
    while ((*slots)[j]) {
        if ((*slots)[j] == h) return 0;
        j = (j + 1) & (*cap - 1);
    }
    (*slots)[j] = h;
    (*used)++;
    return 1;
}

static const char RARE_HEX[] = "0123456789abcdef";

/* the token s[0..len) (ASCII) is rare: its key into `ks`, its placeholder's 3 characters into `ph` */
static int rare_token(const uint8_t *tok, size_t len, uint64_t k0, uint64_t k1, keyset *ks, char ph[3]) {
    uint8_t buf[1 + 256]; /* "\0" + the token (at most 256 characters) */
    uint32_t fnv = 2166136261u;
    buf[0] = 0;
    for (size_t j = 0; j < len; j++) {
        buf[1 + j] = tok[j];
        fnv = (fnv ^ tok[j]) * 16777619u;
    }
    ph[0] = '#';
    ph[1] = RARE_HEX[(fnv >> 4) & 0xF];
    ph[2] = RARE_HEX[fnv & 0xF];
    return keyset_add(ks, siphash24(k0, k1, buf, len + 1)) < 0 ? -1 : 0;
}

static inline int rare_shape(int plain, int digit, Py_ssize_t len, Py_ssize_t min_chars) {
    return plain && digit && len >= min_chars && len >= 3 && len <= 256;
}

/* one-byte strings (the token strings of ASCII and Latin-1 postings): a table classifies each byte, and
 * the text between two rare tokens is copied in one piece */
enum { R_SEP = 1, R_PLAIN = 2, R_DIGIT = 4 };
static uint8_t RARE_CLS[256];

static void init_rare(void) {
    for (int c = 0; c < 256; c++)
        RARE_CLS[c] = (uint8_t)((c <= ' ' ? R_SEP : 0) | (rare_char((Py_UCS4)c) ? R_PLAIN : 0) |
                                (c >= '0' && c <= '9' ? R_DIGIT : 0));
}

static int rare_split_1(const Py_UCS1 *in, Py_ssize_t n, Py_UCS1 *out, Py_ssize_t *o, uint64_t k0, uint64_t k1,
                        Py_ssize_t min_chars, keyset *ks) {
    Py_ssize_t i = 0, w = 0, copied = 0; /* in[copied..) is not written yet */
    while (i < n) {
        if (RARE_CLS[in[i]] & R_SEP) {
            i++;
            continue;
        }
        Py_ssize_t s = i;
        unsigned all = R_PLAIN, any = 0;
        for (; i < n; i++) {
            unsigned f = RARE_CLS[in[i]];
            if (f & R_SEP) break;
            all &= f;
            any |= f;
        }
        if (rare_shape(all != 0, (any & R_DIGIT) != 0, i - s, min_chars)) {
            char ph[3];
            if (rare_token(in + s, (size_t)(i - s), k0, k1, ks, ph)) return -1;
            memcpy(out + w, in + copied, (size_t)(s - copied));
            w += s - copied;
            memcpy(out + w, ph, 3);
            w += 3;
            copied = i;
        }
    }
    memcpy(out + w, in + copied, (size_t)(n - copied));
    *o = w + (n - copied);
    return 0;
}

static int rare_split_any(int kind, const void *data, Py_ssize_t n, int okind, void *odata, Py_ssize_t *o,
                          uint64_t k0, uint64_t k1, Py_ssize_t min_chars, keyset *ks) {
    Py_ssize_t i = 0, w = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c <= ' ') {
            PyUnicode_WRITE(okind, odata, w++, c);
            i++;
            continue;
        }
        Py_ssize_t s = i;
        int plain = 1, digit = 0;
        for (; i < n && (c = PyUnicode_READ(kind, data, i)) > ' '; i++) {
            if (!rare_char(c)) plain = 0;
            else if (c <= '9') digit = 1;
        }
        if (rare_shape(plain, digit, i - s, min_chars)) {
            uint8_t tok[256];
            char ph[3];
            for (Py_ssize_t j = s; j < i; j++) tok[j - s] = (uint8_t)PyUnicode_READ(kind, data, j);
            if (rare_token(tok, (size_t)(i - s), k0, k1, ks, ph)) return -1;
            for (int j = 0; j < 3; j++) PyUnicode_WRITE(okind, odata, w++, (Py_UCS4)ph[j]);
        } else {
            for (Py_ssize_t j = s; j < i; j++) PyUnicode_WRITE(okind, odata, w++, PyUnicode_READ(kind, data, j));
        }
    }
    *o = w;
    return 0;
}

static PyObject *sel_rare_split(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *tokens;
    Py_buffer key;
    Py_ssize_t min_chars;
    if (!PyArg_ParseTuple(args, "Uy*n", &tokens, &key, &min_chars)) return NULL;
    uint64_t k0, k1;
    if (sip_key(&key, &k0, &k1) < 0) return NULL;
    if (min_chars < 1 || min_chars > 1000) {
        PyErr_SetString(PyExc_ValueError, "min_chars must be between 1 and 1000");
        return NULL;
    }
    int kind = PyUnicode_KIND(tokens);
    const void *data = PyUnicode_DATA(tokens);
    Py_ssize_t n = PyUnicode_GET_LENGTH(tokens);
    /* the output is never longer than the input: only tokens of at least 3 characters become placeholders */
    Py_UCS4 maxchar = PyUnicode_MAX_CHAR_VALUE(tokens);
    PyObject *out = PyUnicode_New(n, maxchar < '#' ? '#' : maxchar);
    if (!out) return NULL;
    int okind = PyUnicode_KIND(out);
    void *odata = PyUnicode_DATA(out);
    keyset ks = {NULL, 0, 0, 0};
    Py_ssize_t o = 0;
    int failed = kind == PyUnicode_1BYTE_KIND
                     ? rare_split_1((const Py_UCS1 *)data, n, (Py_UCS1 *)odata, &o, k0, k1, min_chars, &ks)
                     : rare_split_any(kind, data, n, okind, odata, &o, k0, k1, min_chars, &ks);
    if (failed) {
        free(ks.slots);
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    PyObject *keys = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((ks.used + (size_t)ks.zero) * 8));
    if (!keys) {
        free(ks.slots);
        Py_DECREF(out);
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(keys);
    size_t k = 0;
    if (ks.zero) memset(dst + 8 * k++, 0, 8);
    for (size_t j = 0; j < ks.cap; j++) {
        uint64_t h = ks.slots[j];
        if (!h) continue;
        for (int b = 0; b < 8; b++) dst[k * 8 + b] = (uint8_t)(h >> (8 * b));
        k++;
    }
    free(ks.slots);
    PyObject *shrunk = PyUnicode_Substring(out, 0, o);
    Py_DECREF(out);
    if (!shrunk) {
        Py_DECREF(keys);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, shrunk, keys);
    Py_DECREF(shrunk);
    Py_DECREF(keys);
    return result;
}

static PyMethodDef sel_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))sel_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(text, cooked=False) -> (emails, domains, ipv4, ipv6, hashes, btc_legacy, btc_bech32, cards,\n"
     "phones_intl, phones_national, cn_mobiles): each `_<KIND>_SCAN.findall(text)` of core.search.base.\n"
     "cooked: emails as {host: [lower-cased ASCII local part, ...]}, cards as their Luhn-valid ASCII digits."},
    {"siphash", (PyCFunction)sel_siphash, METH_VARARGS,
     "siphash(terms, key) -> bytes: SipHash-2-4 of each str's UTF-8 under the 16-byte key, little-endian uint64s."},
    {"rare_split", (PyCFunction)sel_rare_split, METH_VARARGS,
     "rare_split(tokens, key, min_chars) -> (indexed, keys): long tokens with digits as placeholders, and\n"
     "the SipHash-2-4 of each distinct one ('\\0' + token) as little-endian uint64s (rare_tokens.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sel_module = {
    PyModuleDef_HEAD_INIT, "_selectors", "Native selector scan (core/search/_native/selectors.c).", -1, sel_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__selectors(void) {
    init_classes();
    init_bmp();
    init_triggers();
    init_gap();
    init_rare();
    return PyModule_Create(&sel_module);
}
