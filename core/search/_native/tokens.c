/* core.search._tokens: core/search/cjk.py's token_string in one pass over the text.
 *
 * token_string(text) == " ".join(tokenize(text)) of cjk.py's Python path, for every str; fold(text) is
 * its folding alone, NFKC(text).casefold(): one round of core.canonical.fold (which repeats it until stable).
 *
 *
 *   folded = unicodedata.normalize("NFKC", text).casefold()
 *   tokens: maximal runs of CJK characters (cjk.CJK_RANGES) as overlapping bigrams (a run of one
 *           character is that character), maximal runs of word characters ([^\W_] of Python's re for
 *           str patterns: Py_UNICODE_ISALNUM, outside the CJK ranges) as words, words longer than 80
 *           code points dropped; everything else separates tokens.
 *
 * Folding without normalising the whole text. NFKC(x + y) == NFKC(x) + NFKC(y) whenever y starts with
 * a character c that is a "boundary" character:
 *   - ccc(c) == 0 and c is not the second character of any canonical two-character decomposition
 *     (so c never composes with what precedes it), and
 *   - the first character f of NFKD(c) has ccc(f) == 0 and is not such a second character either
 *     (the decomposition of c starts with a starter that composes with nothing before it).
 * Proof sketch: the compatibility decomposition is per character; canonical reordering only permutes
 * runs of non-starters, and D(c) starts with a starter, so nothing moves across the boundary; in the
 * composition every character after f has its last starter at or after f, and f itself is not the
 * second character of a primary composite, so nothing of y composes with x and x composes as alone.
 * Hangul is composed algorithmically (L+V, LV+T): the vowel and trailing jamo count as second
 * characters. casefold() maps each character on its own (CPython's do_casefold has no context).
 * So the text splits into pieces, each a boundary character followed by non-boundary characters; a
 * piece of one character folds by a per-code-point table (casefold(NFKC(c)), filled lazily per
 * 256-code-point block by asking unicodedata itself), longer pieces (combining marks, jamo, ...) are
 * folded by unicodedata.normalize + str.casefold, a region of them per call.
 *
 * The second characters of canonical pairs are a table of Unicode 14.0.0 (CPython 3.11's
 * unicodedata.unidata_version); the module refuses to import under another version and the tests
 * (tests/core/test_core_search_native_tokens.py) recompute the table from unicodedata.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_TOKEN_CHARS 80
#define UNIDATA_VERSION "14.0.0"
/* A region folded by unicodedata ends before this many consecutive boundary characters. */
#define REGION_END_RUN 16

enum { C_SEP = 0, C_WORD = 1, C_CJK = 2 };

#define F_CLASS 3u    /* class of the folded character (single-character folds) */
#define F_BOUNDARY 4u /* a piece starts here */
#define F_MULTI 8u    /* the fold is several characters: map is an offset into the pool */
#define F_STABLE 16u  /* every character of the fold is a boundary character that is its own NFKC */

typedef struct {
    uint8_t flags[256];
    uint32_t map[256];
} Block;

static Block *blocks[0x110000 >> 8];
/* Folds of more than one character: pool[off] = length, pool[off + 1 ...] = the characters. */
static Py_UCS4 *pool;
static Py_ssize_t pool_len, pool_cap;

static PyObject *normalize_fn, *combining_fn, *str_nfkc, *str_nfkd, *str_casefold;

static const uint32_t SECONDS[] = {
    0x0300,  0x0301,  0x0302,  0x0303,  0x0304,  0x0306,  0x0307,  0x0308,  0x0309,  0x030A,
    0x030B,  0x030C,  0x030F,  0x0311,  0x0313,  0x0314,  0x031B,  0x0323,  0x0324,  0x0325,
    0x0326,  0x0327,  0x0328,  0x032D,  0x032E,  0x0330,  0x0331,  0x0338,  0x0342,  0x0345,
    0x05B4,  0x05B7,  0x05B8,  0x05B9,  0x05BC,  0x05BF,  0x05C1,  0x05C2,  0x0653,  0x0654,
    0x0655,  0x093C,  0x09BC,  0x09BE,  0x09D7,  0x0A3C,  0x0B3C,  0x0B3E,  0x0B56,  0x0B57,
    0x0BBE,  0x0BD7,  0x0C56,  0x0CC2,  0x0CD5,  0x0CD6,  0x0D3E,  0x0D57,  0x0DCA,  0x0DCF,
    0x0DDF,  0x0F72,  0x0F74,  0x0F80,  0x0FB5,  0x0FB7,  0x102E,  0x1B35,  0x3099,  0x309A,
    0x110BA, 0x11127, 0x1133E, 0x11357, 0x114B0, 0x114BA, 0x114BD, 0x115AF, 0x11930, 0x1D165,
    0x1D16E, 0x1D16F, 0x1D170, 0x1D171, 0x1D172,
};

/* c may compose with a character before it (NFC's second characters) */
static int is_second(Py_UCS4 c) {
    /* Hangul composition is algorithmic: L + V, LV + T (CPython's nfc_nfkc: V 1161..1175, T 11A8..11C2) */
    if ((c >= 0x1161 && c <= 0x1175) || (c >= 0x11A8 && c <= 0x11C2))
        return 1;
    size_t lo = 0, hi = sizeof(SECONDS) / sizeof(SECONDS[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (SECONDS[mid] == c)
            return 1;
        if (SECONDS[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static inline int is_cjk(Py_UCS4 c) {
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3134F);
}

/* ASCII: the class of a character and its fold (lower case). */
static uint8_t ascii_class[128];
static uint8_t ascii_lower[128];

static inline int class_of(Py_UCS4 c) {
    if (c < 128)
        return ascii_class[c];
    if (is_cjk(c))
        return C_CJK;
    return Py_UNICODE_ISALNUM(c) ? C_WORD : C_SEP; /* sre: \w is ISALNUM or '_' */
}

/* ------------------------------------------------------------------------------------------------ */

static PyObject *call2(PyObject *fn, PyObject *a, PyObject *b) {
    PyObject *args[2] = {a, b};
    return PyObject_Vectorcall(fn, args, 2, NULL);
}

static long combining_of(Py_UCS4 c) {
    PyObject *s = PyUnicode_FromOrdinal((int)c);
    if (s == NULL)
        return -1;
    PyObject *r = PyObject_CallOneArg(combining_fn, s);
    Py_DECREF(s);
    if (r == NULL)
        return -1;
    long v = PyLong_AsLong(r);
    Py_DECREF(r);
    return v;
}

/* casefold(NFKC(s)) */
static PyObject *fold_str(PyObject *s) {
    PyObject *n = call2(normalize_fn, str_nfkc, s);
    if (n == NULL)
        return NULL;
    PyObject *f = PyObject_CallMethodNoArgs(n, str_casefold);
    Py_DECREF(n);
    return f;
}

static int pool_append(PyObject *s, uint32_t *off) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (pool_len + n + 1 > pool_cap) {
        Py_ssize_t cap = pool_cap ? pool_cap : 1024;
        while (pool_len + n + 1 > cap)
            cap *= 2;
        if (cap > (Py_ssize_t)UINT32_MAX) {
            PyErr_NoMemory();
            return -1;
        }
        Py_UCS4 *p = PyMem_Realloc(pool, (size_t)cap * sizeof(Py_UCS4));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        pool = p;
        pool_cap = cap;
    }
    *off = (uint32_t)pool_len;
    pool[pool_len++] = (Py_UCS4)n;
    for (Py_ssize_t i = 0; i < n; i++)
        pool[pool_len++] = PyUnicode_READ_CHAR(s, i);
    return 0;
}

/* unicodedata.normalize(form, chr(c)), or NULL on error */
static PyObject *normalize_char(PyObject *form, Py_UCS4 c) {
    PyObject *s = PyUnicode_FromOrdinal((int)c);
    if (s == NULL)
        return NULL;
    PyObject *n = call2(normalize_fn, form, s);
    Py_DECREF(s);
    return n;
}

/* 1 when c is a boundary character (see the top of this file), 0 when not, -1 on error. */
static int boundary_of(Py_UCS4 c) {
    if (c < 128)
        return 1;
    long ccc = combining_of(c);
    if (ccc < 0)
        return -1;
    if (ccc != 0 || is_second(c))
        return 0;
    PyObject *d = normalize_char(str_nfkd, c);
    if (d == NULL)
        return -1;
    Py_UCS4 first = PyUnicode_GET_LENGTH(d) ? PyUnicode_READ_CHAR(d, 0) : c;
    Py_DECREF(d);
    if (first == c)
        return 1;
    long fccc = combining_of(first);
    if (fccc < 0)
        return -1;
    return fccc == 0 && !is_second(first);
}

/* 1 when every character of f is a boundary character that is its own NFKC: then NFKC of any text made
 * of such characters is the text itself (each starts a piece, and each piece is its own NFKC), so a fold
 * made only of them needs no unicodedata.is_normalized check. 0 when not, -1 on error. */
static int stable_fold(PyObject *f, Py_UCS4 boundary) {
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(f); i++) {
        Py_UCS4 ch = PyUnicode_READ_CHAR(f, i);
        if (ch < 128)
            continue;
        int b = ch == boundary ? 1 : boundary_of(ch); /* `boundary`: known to be one (most folds: itself) */
        if (b <= 0)
            return b;
        PyObject *n = normalize_char(str_nfkc, ch);
        if (n == NULL)
            return -1;
        int same = PyUnicode_GET_LENGTH(n) == 1 && PyUnicode_READ_CHAR(n, 0) == ch;
        Py_DECREF(n);
        if (!same)
            return 0;
    }
    return 1;
}

/* One code point's entry: boundary or not; for a boundary character its fold. */
static int fill_one(Py_UCS4 c, uint8_t *flags, uint32_t *map) {
    *flags = 0;
    *map = 0;
    int b = boundary_of(c);
    if (b <= 0)
        return b;
    PyObject *s = PyUnicode_FromOrdinal((int)c);
    if (s == NULL)
        return -1;
    PyObject *f = fold_str(s);
    Py_DECREF(s);
    if (f == NULL)
        return -1;
    int stable = stable_fold(f, c);
    if (stable < 0) {
        Py_DECREF(f);
        return -1;
    }
    if (PyUnicode_GET_LENGTH(f) == 1) {
        Py_UCS4 m = PyUnicode_READ_CHAR(f, 0);
        *map = m;
        *flags = (uint8_t)(F_BOUNDARY | (unsigned)class_of(m));
    } else {
        if (pool_append(f, map) < 0) {
            Py_DECREF(f);
            return -1;
        }
        *flags = F_BOUNDARY | F_MULTI;
    }
    if (stable)
        *flags |= F_STABLE;
    Py_DECREF(f);
    return 0;
}

/* Blocks of CJK Unified Ideographs U+4E00..U+9FFF and of Extension A U+3400..U+4CFF (U+4D00 on holds
 * Yijing symbols): every character is assigned (Unicode 14, Python 3.11, on), starts a piece and is its own
 * NFKC and case fold. They are filled without asking unicodedata five times a character: about 0.4 ms a
 * block, which a fresh process spent on each block its first Chinese postings met.
 * test_fold_table_of_every_code_point checks these entries against unicodedata like every other. */
static inline int ideograph_block(Py_UCS4 hi) { return (hi >= 0x34 && hi <= 0x4C) || (hi >= 0x4E && hi <= 0x9F); }

static Block *fill_block(Py_UCS4 hi) {
    Block *b = PyMem_Calloc(1, sizeof(Block));
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_UCS4 lo = 0; lo < 256; lo++) {
        Py_UCS4 c = (hi << 8) | lo;
        if (ideograph_block(hi)) {
            b->map[lo] = c;
            b->flags[lo] = (uint8_t)(F_BOUNDARY | F_STABLE | (unsigned)class_of(c));
        } else if (fill_one(c, &b->flags[lo], &b->map[lo]) < 0) {
            PyMem_Free(b);
            return NULL;
        }
    }
    /* The calls above may have run other Python code (a finalizer, another thread) that filled
     * the same block: keep the first one published. */
    if (blocks[hi] != NULL) {
        PyMem_Free(b);
        return blocks[hi];
    }
    blocks[hi] = b;
    return b;
}

/* flags and map of a non-ASCII code point (c >= 128); -1 on error */
static inline int lookup(Py_UCS4 c, uint8_t *flags, uint32_t *map) {
    Block *b = blocks[c >> 8];
    if (b == NULL && (b = fill_block(c >> 8)) == NULL)
        return -1;
    *flags = b->flags[c & 255];
    *map = b->map[c & 255];
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Output: the token string (or, with fold_only, the folded text) in a UCS4 buffer. */

typedef struct {
    Py_UCS4 *buf;
    Py_ssize_t len, cap;
    int fold_only;
    int state;           /* C_SEP (between tokens), C_WORD, C_CJK */
    Py_ssize_t word_at;  /* where the current word (with its leading space) begins */
    Py_ssize_t word_len; /* characters of the current word, also past MAX_TOKEN_CHARS */
    Py_ssize_t run_len;  /* characters of the current CJK run (1, or 2 = "bigrams from now on") */
    Py_UCS4 prev;        /* the last CJK character */
} Out;

static int out_grow(Out *o, Py_ssize_t need) {
    Py_ssize_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + need) {
        if (cap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(Py_UCS4)) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    Py_UCS4 *p = PyMem_Realloc(o->buf, (size_t)cap * sizeof(Py_UCS4));
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->buf = p;
    o->cap = cap;
    return 0;
}

static inline void end_word(Out *o) {
    if (o->state == C_WORD && o->word_len > MAX_TOKEN_CHARS)
        o->len = o->word_at; /* dropped, with its separator */
}

/* One folded character. */
static inline int emit(Out *o, Py_UCS4 ch, int cls) {
    if (o->len + 3 > o->cap && out_grow(o, 3) < 0)
        return -1;
    if (o->fold_only) {
        o->buf[o->len++] = ch;
        return 0;
    }
    switch (cls) {
    case C_WORD:
        if (o->state != C_WORD) {
            o->state = C_WORD;
            o->word_at = o->len;
            o->word_len = 0;
            if (o->len)
                o->buf[o->len++] = ' ';
        }
        if (++o->word_len <= MAX_TOKEN_CHARS)
            o->buf[o->len++] = ch;
        break;
    case C_CJK:
        if (o->state != C_CJK) {
            end_word(o);
            o->state = C_CJK;
            if (o->len)
                o->buf[o->len++] = ' ';
            o->buf[o->len++] = ch;
            o->run_len = 1;
        } else if (o->run_len == 1) {
            o->buf[o->len++] = ch;
            o->run_len = 2;
        } else {
            o->buf[o->len++] = ' ';
            o->buf[o->len++] = o->prev;
            o->buf[o->len++] = ch;
        }
        o->prev = ch;
        break;
    default:
        end_word(o);
        o->state = C_SEP;
    }
    return 0;
}

/* The fold of a boundary character. */
static inline int emit_folded(Out *o, uint8_t flags, uint32_t map) {
    if (!(flags & F_MULTI))
        return emit(o, map, flags & F_CLASS);
    Py_ssize_t off = map, n = pool[off];
    for (Py_ssize_t k = 1; k <= n; k++) {
        Py_UCS4 ch = pool[off + k]; /* emit calls no Python code: the pool stays put */
        if (emit(o, ch, class_of(ch)) < 0)
            return -1;
    }
    return 0;
}

/* text[start:end] folded by unicodedata and str.casefold */
static int emit_region(Out *o, PyObject *text, Py_ssize_t start, Py_ssize_t end) {
    PyObject *sub = PyUnicode_Substring(text, start, end);
    if (sub == NULL)
        return -1;
    PyObject *f = fold_str(sub);
    Py_DECREF(sub);
    if (f == NULL)
        return -1;
    int kind = PyUnicode_KIND(f);
    const void *data = PyUnicode_DATA(f);
    Py_ssize_t n = PyUnicode_GET_LENGTH(f);
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, k);
        if (emit(o, ch, class_of(ch)) < 0) {
            Py_DECREF(f);
            return -1;
        }
    }
    Py_DECREF(f);
    return 0;
}

static inline __attribute__((always_inline)) int is_boundary(int kind, const void *data, Py_ssize_t i, int *err) {
    Py_UCS4 c = PyUnicode_READ(kind, data, i);
    if (c < 128)
        return 1;
    uint8_t flags;
    uint32_t map;
    if (lookup(c, &flags, &map) < 0) {
        *err = 1;
        return 0;
    }
    return (flags & F_BOUNDARY) != 0;
}

static inline __attribute__((always_inline)) int run(Out *o, PyObject *text, int kind, const void *data,
                                                     Py_ssize_t n) {
    int have = 0; /* a boundary character waits at i - 1: it folds alone unless a non-boundary follows */
    uint8_t pflags = 0;
    uint32_t pmap = 0;
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        uint8_t flags;
        uint32_t map;
        if (c < 128) {
            flags = F_BOUNDARY | ascii_class[c];
            map = ascii_lower[c];
        } else if (lookup(c, &flags, &map) < 0) {
            return -1;
        }
        if (flags & F_BOUNDARY) {
            if (have && emit_folded(o, pflags, pmap) < 0)
                return -1;
            have = 1;
            pflags = flags;
            pmap = map;
            i++;
            continue;
        }
        /* A non-boundary character: the region from the waiting boundary character (or the start)
         * up to a run of REGION_END_RUN boundary characters (or the end) is folded by unicodedata. */
        Py_ssize_t start = have ? i - 1 : i, j = i + 1, streak = 0;
        int err = 0;
        while (j < n) {
            if (is_boundary(kind, data, j, &err)) {
                if (++streak == REGION_END_RUN) {
                    j -= REGION_END_RUN - 1;
                    break;
                }
            } else {
                if (err)
                    return -1;
                streak = 0;
            }
            j++;
        }
        if (j >= n)
            j = n;
        if (emit_region(o, text, start, j) < 0)
            return -1;
        have = 0;
        i = j;
    }
    if (have && emit_folded(o, pflags, pmap) < 0)
        return -1;
    return 0;
}

static int run_ascii(Out *o, const Py_UCS1 *data, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS1 c = data[i];
        if (emit(o, ascii_lower[c], ascii_class[c]) < 0)
            return -1;
    }
    return 0;
}

static PyObject *transform(PyObject *text, int fold_only) {
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "expected str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Out o = {0};
    o.fold_only = fold_only;
    o.state = C_SEP;
    Py_ssize_t guess = n + n / 4 + 16; /* grows as needed (CJK bigrams triple a run) */
    if (out_grow(&o, guess) < 0)
        return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    int rc;
    if (PyUnicode_IS_ASCII(text))
        rc = run_ascii(&o, data, n);
    else if (kind == PyUnicode_1BYTE_KIND)
        rc = run(&o, text, PyUnicode_1BYTE_KIND, data, n);
    else if (kind == PyUnicode_2BYTE_KIND)
        rc = run(&o, text, PyUnicode_2BYTE_KIND, data, n);
    else
        rc = run(&o, text, PyUnicode_4BYTE_KIND, data, n);
    if (rc == 0)
        end_word(&o);
    PyObject *res = rc < 0 ? NULL : PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, o.buf, o.len);
    PyMem_Free(o.buf);
    return res;
}

/* ------------------------------------------------------------------------------------------------ */

PyDoc_STRVAR(token_string_doc, "token_string(text, /)\n--\n\n"
                               "cjk.token_string: \" \".join(tokenize(text)), in one pass.");

static PyObject *py_token_string(PyObject *Py_UNUSED(m), PyObject *text) { return transform(text, 0); }

PyDoc_STRVAR(fold_doc, "fold(text, /)\n--\n\n"
                       "unicodedata.normalize(\"NFKC\", text).casefold(), folded piece by piece.");

static PyObject *py_fold(PyObject *Py_UNUSED(m), PyObject *text) { return transform(text, 1); }

/* Room for `need` characters of `kind` in *buf (of *cap): 0, or -1 with MemoryError set. */
static int fold_room(void **buf, Py_ssize_t *cap, Py_ssize_t need, int kind) {
    if (need <= *cap)
        return 0;
    Py_ssize_t grown = need * 2;
    void *p = PyMem_Realloc(*buf, (size_t)grown * (size_t)kind);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *cap = grown;
    return 0;
}

/* fold_checked's loop over one str kind, when every character is a boundary character: the folds written
 * into a buffer of the same kind. Returns 0 done, 1 when the text needs the general path (a non-boundary
 * character, or a fold that does not fit the kind), -1 on error; *stable is cleared by a fold that is not
 * F_STABLE. */
static inline __attribute__((always_inline)) int fold_k(int kind, const void *data, Py_ssize_t n, void **buf,
                                                         Py_ssize_t *len, Py_ssize_t *cap, int *stable) {
    const Py_UCS4 limit = kind == PyUnicode_1BYTE_KIND ? 0xFF : kind == PyUnicode_2BYTE_KIND ? 0xFFFF : 0x10FFFF;
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (fold_room(buf, cap, o + 4, kind) < 0)
            return -1;
        if (c < 128) {
            PyUnicode_WRITE(kind, *buf, o++, ascii_lower[c]);
            continue;
        }
        uint8_t flags;
        uint32_t map;
        if (lookup(c, &flags, &map) < 0)
            return -1;
        if (!(flags & F_BOUNDARY))
            return 1;
        /* a boundary character followed by a non-boundary one folds with it: the loop above returns at
           that one, so a character folded alone here is always followed by a boundary character */
        if (!(flags & F_STABLE))
            *stable = 0;
        if (!(flags & F_MULTI)) {
            if (map > limit)
                return 1;
            PyUnicode_WRITE(kind, *buf, o++, map);
            continue;
        }
        Py_ssize_t m = pool[map];
        if (fold_room(buf, cap, o + m + 4, kind) < 0)
            return -1;
        for (Py_ssize_t k = 1; k <= m; k++) {
            Py_UCS4 ch = pool[map + k];
            if (ch > limit)
                return 1;
            PyUnicode_WRITE(kind, *buf, o++, ch);
        }
    }
    *len = o;
    return 0;
}

PyDoc_STRVAR(fold_checked_doc, "fold_checked(text, /)\n--\n\n"
                               "(fold(text), stable): stable is True when the fold is certainly its own NFKC\n"
                               "(every character of it a boundary character that is its own NFKC), so no\n"
                               "unicodedata.is_normalized check is needed; False means: not known.");

static PyObject *py_fold_checked(PyObject *Py_UNUSED(m), PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "expected str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t cap = n + n / 8 + 16, len = 0;
    void *buf = PyMem_Malloc((size_t)cap * (size_t)kind);
    if (buf == NULL)
        return PyErr_NoMemory();
    int stable = 1, rc;
    if (kind == PyUnicode_1BYTE_KIND)
        rc = fold_k(PyUnicode_1BYTE_KIND, data, n, &buf, &len, &cap, &stable);
    else if (kind == PyUnicode_2BYTE_KIND)
        rc = fold_k(PyUnicode_2BYTE_KIND, data, n, &buf, &len, &cap, &stable);
    else
        rc = fold_k(PyUnicode_4BYTE_KIND, data, n, &buf, &len, &cap, &stable);
    PyObject *folded;
    if (rc < 0) {
        folded = NULL;
    } else if (rc == 1) { /* the general path: pieces folded by unicodedata, stability not known */
        stable = 0;
        folded = transform(text, 1);
    } else { /* FromKindAndData picks the smallest kind that holds the fold */
        folded = PyUnicode_FromKindAndData(kind, buf, len);
    }
    PyMem_Free(buf);
    if (folded == NULL)
        return NULL;
    return Py_BuildValue("(NO)", folded, stable ? Py_True : Py_False);
}

PyDoc_STRVAR(classes_doc, "classes(text, /)\n--\n\n"
                          "bytes: the class of each character, 0 separator, 1 word, 2 CJK (no folding).");

static PyObject *py_classes(PyObject *Py_UNUSED(m), PyObject *text) {
    if (!PyUnicode_Check(text) || PyUnicode_READY(text) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "expected str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *res = PyBytes_FromStringAndSize(NULL, n);
    if (res == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(res);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = (char)class_of(PyUnicode_READ(kind, data, i));
    return res;
}

PyDoc_STRVAR(char_info_doc, "char_info(code_point, /)\n--\n\n"
                            "(boundary, fold): whether a piece starts at the character, and its table fold\n"
                            "(None for a non-boundary character).");

static PyObject *py_char_info(PyObject *Py_UNUSED(m), PyObject *arg) {
    long c = PyLong_AsLong(arg);
    if (c == -1 && PyErr_Occurred())
        return NULL;
    if (c < 0 || c > 0x10FFFF) {
        PyErr_SetString(PyExc_ValueError, "not a code point");
        return NULL;
    }
    uint8_t flags;
    uint32_t map;
    if (c < 128) {
        flags = F_BOUNDARY;
        map = ascii_lower[c];
    } else if (lookup((Py_UCS4)c, &flags, &map) < 0) {
        return NULL;
    }
    if (!(flags & F_BOUNDARY))
        return Py_BuildValue("(OO)", Py_False, Py_None);
    PyObject *fold;
    if (flags & F_MULTI)
        fold = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, pool + map + 1, pool[map]);
    else
        fold = PyUnicode_FromOrdinal((int)map);
    if (fold == NULL)
        return NULL;
    return Py_BuildValue("(ON)", Py_True, fold);
}

PyDoc_STRVAR(seconds_doc, "composition_seconds()\n--\n\n"
                          "The code points treated as second characters of canonical compositions.");

static PyObject *py_seconds(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(arg)) {
    PyObject *res = PyList_New(0);
    if (res == NULL)
        return NULL;
    for (long c = 0; c <= 0x10FFFF; c++) {
        if (!is_second((Py_UCS4)c))
            continue;
        PyObject *v = PyLong_FromLong(c);
        if (v == NULL || PyList_Append(res, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(res);
            return NULL;
        }
        Py_DECREF(v);
    }
    return res;
}

static PyMethodDef methods[] = {
    {"token_string", py_token_string, METH_O, token_string_doc},
    {"fold", py_fold, METH_O, fold_doc},
    {"fold_checked", py_fold_checked, METH_O, fold_checked_doc},
    {"classes", py_classes, METH_O, classes_doc},
    {"char_info", py_char_info, METH_O, char_info_doc},
    {"composition_seconds", py_seconds, METH_NOARGS, seconds_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tokens", "core/search/cjk.py's token_string in C (see tokens.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tokens(void) {
    for (int c = 0; c < 128; c++) {
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        ascii_class[c] = alnum ? C_WORD : C_SEP;
        ascii_lower[c] = (uint8_t)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    PyObject *ud = PyImport_ImportModule("unicodedata");
    if (ud == NULL)
        return NULL;
    PyObject *version = PyObject_GetAttrString(ud, "unidata_version");
    if (version == NULL) {
        Py_DECREF(ud);
        return NULL;
    }
    int same = PyUnicode_Check(version) && PyUnicode_CompareWithASCIIString(version, UNIDATA_VERSION) == 0;
    Py_DECREF(version);
    if (!same) {
        Py_DECREF(ud);
        PyErr_SetString(PyExc_ImportError, "core.search._tokens: its tables are of Unicode " UNIDATA_VERSION);
        return NULL;
    }
    if (normalize_fn == NULL) {
        normalize_fn = PyObject_GetAttrString(ud, "normalize");
        combining_fn = PyObject_GetAttrString(ud, "combining");
        str_nfkc = PyUnicode_InternFromString("NFKC");
        str_nfkd = PyUnicode_InternFromString("NFKD");
        str_casefold = PyUnicode_InternFromString("casefold");
    }
    Py_DECREF(ud);
    if (!normalize_fn || !combining_fn || !str_nfkc || !str_nfkd || !str_casefold)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "MAX_TOKEN_CHARS", MAX_TOKEN_CHARS) < 0 ||
        PyModule_AddStringConstant(m, "UNIDATA_VERSION", UNIDATA_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
