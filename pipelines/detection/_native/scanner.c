/* Native candidate scanner: the same candidates as pipelines/detection/extract.py, keyed-hashed.
 *
 * Why: extraction plus one HMAC per candidate in Python runs near 1 MB/s; the detection target is 30.
 * This file is a line-for-line port of extract.py's per-line path (typed scan, delimited/SQL values,
 * labelled values, generic forms, the dob/email/iban/cn_id/ssn/card/ip rules of core/canonical.py) for
 * lines whose characters all lie in a small allowlist (ASCII printable, tab, CJK ideographs, a few CJK
 * punctuation marks, full-width ASCII forms and the NFKC spaces, the last two read as ASCII exactly as
 * extract.narrow_forms does; Latin-1, Cyrillic, kana and Hangul letters, see is_xletter) where NFKC, case
 * folding and the regex classes are known exactly. Any other
 * line is handed back ("deferred") and extract.py reads it, so the two can never disagree on it.
 * Phone numbers other than Chinese mobiles are parsed by libphonenumber through a Python callback,
 * exactly as extract.py does. Differential tests compare the two on generated and hostile lines.
 *
 * Output per scan: the distinct 16-byte digests, and (digest index, line index) pairs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

#include "sha256.h"
#include "util.h"

/* ------------------------------------------------------------------ constants (mirror extract.py) */
#define SEGMENT_CHARS 65536
#define SEGMENT_WORK 2048
#define DEFER_WORK 1024 /* a line using this much budget goes to Python (its budget rules apply there) */
#define MAX_PHONE_PARSES_PER_RUN 24
#define MAX_TOKENS_PER_FIELD 4
#define FIELD_MAX_CHARS 256
#define NAME_MAX_WORDS 6
#define TEXT_MAX_WORDS 8
#define MAX_FIELDS 900

enum { T_EMAIL, T_PHONE, T_CARD, T_IBAN, T_CN_ID, T_SSN, T_USERNAME, T_API_KEY, T_NAME, T_DOB, T_TEXT,
       T_PASSPORT, T_IP, T_COUNT };
static const char *TYPE_NAMES[T_COUNT] = {"email", "phone", "card", "iban", "cn_id", "ssn", "username",
                                          "api_key", "name", "dob", "text", "passport", "ip"};
static const char TYPE_NAMES16[T_COUNT][16] = {"email", "phone", "card", "iban", "cn_id", "ssn", "username",
                                                "api_key", "name", "dob", "text", "passport", "ip"};
#define ALL_TYPES ((1u << T_COUNT) - 1)
static const uint8_t TYPE_LEN[T_COUNT] = {6, 6, 5, 5, 6, 4, 9, 8, 5, 4, 5, 9, 3}; /* strlen + 1 (the NUL) */
static int is_typed(int t) {
    return t == T_EMAIL || t == T_PHONE || t == T_CARD || t == T_IBAN || t == T_CN_ID || t == T_SSN ||
           t == T_IP;
}

/* ------------------------------------------------------------------ character classes */
static inline int is_ideo(cp_t c) { return (c >= 0x4E00 && c <= 0x9FEF) || (c >= 0x3400 && c <= 0x4DB5); }
/* Letters of other scripts read natively: each is its own NFKC form, case-folds to one letter that is its own
 * NFKC form (Python's str.casefold, one character for one), is str.isalnum() and matched by `\w` but not by
 * `\d`, and no two of them (nor one with ASCII) compose under NFKC, so `core.canonical.fold` of a value made
 * of them is the value with each character folded (ß, which folds to "ss", is folded so by generic()).
 * Latin-1 letters, Latin Extended-A but for ı İ ſ (re.IGNORECASE matches them to ASCII i and s) and the
 * digraphs ĳ Ĳ ŀ Ŀ ŉ (NFKC changes them), Cyrillic but for the thousands sign and the combining marks
 * U+0482..U+0489, kana but for the (semi-)voiced sound marks and the digraphs ゟ ヿ (NFKC changes them),
 * Hangul syllables (not the compatibility jamo, NFKC changes them). A few punctuation
 * marks that are their own NFKC and fold and that no rule of extract.py names (« » – — ・ ゠) too.
 * test_pipelines_fastscan_scripts.py checks every one of these properties against unicodedata. */
/* generated from unicodedata 14.0.0 (see the class comment above): the case fold of each
 * letter of U+00C0..U+00FF (Latin-1), U+0100..U+017F (Latin Extended-A) and
 * U+0400..U+04FF (Cyrillic) that is its own NFKC form and folds to one such letter; 0: not in the class */
static const uint16_t XFOLD[0x440] = {
    0x00E0, 0x00E1, 0x00E2, 0x00E3, 0x00E4, 0x00E5, 0x00E6, 0x00E7, 0x00E8, 0x00E9, 0x00EA, 0x00EB,
    0x00EC, 0x00ED, 0x00EE, 0x00EF, 0x00F0, 0x00F1, 0x00F2, 0x00F3, 0x00F4, 0x00F5, 0x00F6, 0x0000,
    0x00F8, 0x00F9, 0x00FA, 0x00FB, 0x00FC, 0x00FD, 0x00FE, 0x0000, 0x00E0, 0x00E1, 0x00E2, 0x00E3,
    0x00E4, 0x00E5, 0x00E6, 0x00E7, 0x00E8, 0x00E9, 0x00EA, 0x00EB, 0x00EC, 0x00ED, 0x00EE, 0x00EF,
    0x00F0, 0x00F1, 0x00F2, 0x00F3, 0x00F4, 0x00F5, 0x00F6, 0x0000, 0x00F8, 0x00F9, 0x00FA, 0x00FB,
    0x00FC, 0x00FD, 0x00FE, 0x00FF, 0x0101, 0x0101, 0x0103, 0x0103, 0x0105, 0x0105, 0x0107, 0x0107,
    0x0109, 0x0109, 0x010B, 0x010B, 0x010D, 0x010D, 0x010F, 0x010F, 0x0111, 0x0111, 0x0113, 0x0113,
    0x0115, 0x0115, 0x0117, 0x0117, 0x0119, 0x0119, 0x011B, 0x011B, 0x011D, 0x011D, 0x011F, 0x011F,
    0x0121, 0x0121, 0x0123, 0x0123, 0x0125, 0x0125, 0x0127, 0x0127, 0x0129, 0x0129, 0x012B, 0x012B,
    0x012D, 0x012D, 0x012F, 0x012F, 0x0000, 0x0000, 0x0000, 0x0000, 0x0135, 0x0135, 0x0137, 0x0137,
    0x0138, 0x013A, 0x013A, 0x013C, 0x013C, 0x013E, 0x013E, 0x0000, 0x0000, 0x0142, 0x0142, 0x0144,
    0x0144, 0x0146, 0x0146, 0x0148, 0x0148, 0x0000, 0x014B, 0x014B, 0x014D, 0x014D, 0x014F, 0x014F,
    0x0151, 0x0151, 0x0153, 0x0153, 0x0155, 0x0155, 0x0157, 0x0157, 0x0159, 0x0159, 0x015B, 0x015B,
    0x015D, 0x015D, 0x015F, 0x015F, 0x0161, 0x0161, 0x0163, 0x0163, 0x0165, 0x0165, 0x0167, 0x0167,
    0x0169, 0x0169, 0x016B, 0x016B, 0x016D, 0x016D, 0x016F, 0x016F, 0x0171, 0x0171, 0x0173, 0x0173,
    0x0175, 0x0175, 0x0177, 0x0177, 0x00FF, 0x017A, 0x017A, 0x017C, 0x017C, 0x017E, 0x017E, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000,
    0x0000, 0x0000, 0x0000, 0x0000, 0x0450, 0x0451, 0x0452, 0x0453, 0x0454, 0x0455, 0x0456, 0x0457,
    0x0458, 0x0459, 0x045A, 0x045B, 0x045C, 0x045D, 0x045E, 0x045F, 0x0430, 0x0431, 0x0432, 0x0433,
    0x0434, 0x0435, 0x0436, 0x0437, 0x0438, 0x0439, 0x043A, 0x043B, 0x043C, 0x043D, 0x043E, 0x043F,
    0x0440, 0x0441, 0x0442, 0x0443, 0x0444, 0x0445, 0x0446, 0x0447, 0x0448, 0x0449, 0x044A, 0x044B,
    0x044C, 0x044D, 0x044E, 0x044F, 0x0430, 0x0431, 0x0432, 0x0433, 0x0434, 0x0435, 0x0436, 0x0437,
    0x0438, 0x0439, 0x043A, 0x043B, 0x043C, 0x043D, 0x043E, 0x043F, 0x0440, 0x0441, 0x0442, 0x0443,
    0x0444, 0x0445, 0x0446, 0x0447, 0x0448, 0x0449, 0x044A, 0x044B, 0x044C, 0x044D, 0x044E, 0x044F,
    0x0450, 0x0451, 0x0452, 0x0453, 0x0454, 0x0455, 0x0456, 0x0457, 0x0458, 0x0459, 0x045A, 0x045B,
    0x045C, 0x045D, 0x045E, 0x045F, 0x0461, 0x0461, 0x0463, 0x0463, 0x0465, 0x0465, 0x0467, 0x0467,
    0x0469, 0x0469, 0x046B, 0x046B, 0x046D, 0x046D, 0x046F, 0x046F, 0x0471, 0x0471, 0x0473, 0x0473,
    0x0475, 0x0475, 0x0477, 0x0477, 0x0479, 0x0479, 0x047B, 0x047B, 0x047D, 0x047D, 0x047F, 0x047F,
    0x0481, 0x0481, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x048B, 0x048B,
    0x048D, 0x048D, 0x048F, 0x048F, 0x0491, 0x0491, 0x0493, 0x0493, 0x0495, 0x0495, 0x0497, 0x0497,
    0x0499, 0x0499, 0x049B, 0x049B, 0x049D, 0x049D, 0x049F, 0x049F, 0x04A1, 0x04A1, 0x04A3, 0x04A3,
    0x04A5, 0x04A5, 0x04A7, 0x04A7, 0x04A9, 0x04A9, 0x04AB, 0x04AB, 0x04AD, 0x04AD, 0x04AF, 0x04AF,
    0x04B1, 0x04B1, 0x04B3, 0x04B3, 0x04B5, 0x04B5, 0x04B7, 0x04B7, 0x04B9, 0x04B9, 0x04BB, 0x04BB,
    0x04BD, 0x04BD, 0x04BF, 0x04BF, 0x04CF, 0x04C2, 0x04C2, 0x04C4, 0x04C4, 0x04C6, 0x04C6, 0x04C8,
    0x04C8, 0x04CA, 0x04CA, 0x04CC, 0x04CC, 0x04CE, 0x04CE, 0x04CF, 0x04D1, 0x04D1, 0x04D3, 0x04D3,
    0x04D5, 0x04D5, 0x04D7, 0x04D7, 0x04D9, 0x04D9, 0x04DB, 0x04DB, 0x04DD, 0x04DD, 0x04DF, 0x04DF,
    0x04E1, 0x04E1, 0x04E3, 0x04E3, 0x04E5, 0x04E5, 0x04E7, 0x04E7, 0x04E9, 0x04E9, 0x04EB, 0x04EB,
    0x04ED, 0x04ED, 0x04EF, 0x04EF, 0x04F1, 0x04F1, 0x04F3, 0x04F3, 0x04F5, 0x04F5, 0x04F7, 0x04F7,
    0x04F9, 0x04F9, 0x04FB, 0x04FB, 0x04FD, 0x04FD, 0x04FF, 0x04FF,
};
/* U+3040..U+30FF: 1 a kana letter (its own NFKC and case fold), 2 punctuation (・ ゠), 0 not allowed */
static const uint8_t KANA[0xC0] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0,
    2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 0,
};

static inline cp_t xfold(cp_t c) { /* the fold of a letter of the classes above, 0 when c is none */
    if (c >= 0xC0 && c < 0x500) return XFOLD[c - 0xC0];
    if (c >= 0x3040 && c < 0x3100) return KANA[c - 0x3040] == 1 ? c : 0;
    return c >= 0xAC00 && c <= 0xD7A3 ? c : 0;
}
/* ß too: its own NFKC form, it folds to "ss" (generic() writes the two letters; to ASCII it is no letter) */
static inline int is_xletter(cp_t c) { return xfold(c) != 0 || c == 0xDF; }
static inline int is_xpunct(cp_t c) {
    return c == 0xAB || c == 0xBB || c == 0x2013 || c == 0x2014 || (c >= 0x3040 && c < 0x3100 && KANA[c - 0x3040] == 2);
}
/* extract.narrow_forms: full-width ASCII forms and the spaces NFKC makes " " read as ASCII (0: not one) */
static inline cp_t narrow_cp(cp_t c) {
    if (c >= 0xFF01) return c <= 0xFF5E ? c - 0xFEE0 : 0;
    if (c > 0x3000) return 0; /* CJK ideographs: one test */
    return c == 0x00A0 || c == 0x2007 || c == 0x202F || c == 0x3000 ? ' ' : 0;
}
static inline int allowed(cp_t c) {
    if (c < 0x80) return (c >= 0x20 && c != 0x7F) || c == '\t';
    if (is_ideo(c) || is_xletter(c) || is_xpunct(c)) return 1;
    switch (c) {
        case 0x3001: case 0x3002: case 0x3010: case 0x3011:
            return 1;
        default:
            return narrow_cp(c) != 0;
    }
}
/* str.isspace() among allowed characters, as written (before narrowing) */
static inline int is_wide_space(cp_t c) {
    return c == ' ' || c == '\t' || c == 0x00A0 || c == 0x2007 || c == 0x202F || c == 0x3000;
}
static inline int is_digit(cp_t c) { return c >= '0' && c <= '9'; }
static inline int is_upper(cp_t c) { return c >= 'A' && c <= 'Z'; }
static inline int is_lower(cp_t c) { return c >= 'a' && c <= 'z'; }
static inline int is_alpha_ascii(cp_t c) { return is_upper(c) || is_lower(c); }
static inline int is_alnum_ascii(cp_t c) { return is_alpha_ascii(c) || is_digit(c); }
static inline int is_word(cp_t c) { return is_alnum_ascii(c) || c == '_' || is_ideo(c) || is_xletter(c); }
static inline int is_space(cp_t c) { return c == ' ' || c == '\t'; }
static inline cp_t fold_cp(cp_t c) {
    if (is_upper(c)) return c + 32;
    if (c >= 0xC0) {
        cp_t x = xfold(c);
        if (x) return x;
    }
    switch (c) {
        case 0xFF01: return '!';
        case 0xFF0C: return ',';
        case 0xFF1A: return ':';
        case 0xFF1B: return ';';
        case 0xFF1F: return '?';
        default: return c;
    }
}
static inline int is_cjk_wide(cp_t c) { /* the classes of _LONG_CJK_* and _is_cjk, on allowed chars */
    return is_ideo(c) || (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7AF);
}
/* unicodedata.category(c)[0] == 'P' for allowed non-alnum chars (ASCII punctuation and CJK marks) */
static inline int is_punct(cp_t c) {
    if (c < 0x80)
        return strchr("!\"#%&'()*,-./:;?@[\\]_{}", (int)c) != NULL && c != 0;
    return c == 0x3001 || c == 0x3002 || c == 0x3010 || c == 0x3011 || is_xpunct(c);
}

/* ASCII classes used per character by the field rules (one table lookup instead of strchr) */
enum { A_NOTNAME = 1, A_TOKEN = 2, A_NAMESEP = 4, A_LETTER = 8, A_DIGIT = 16, A_ALNUM = 32, A_UPPER = 64, A_SPACE = 128 };
static uint8_t ASCII_CLASS[128];

/* per-line flags of ASCII characters (one lookup per character in the line pre-pass) */
enum { L_BAD = 1, L_AT = 2, L_DOT = 4, L_LABEL = 8, L_STRUCT = 16, L_QUOTE = 32, L_SPACE = 64, L_DELIM = 128 };
static uint8_t LINE_CLASS[128];

/* per-character classes of a line (narrowed), one byte each, written by scan_line's pre-pass: the scans
 * below skip from one character that can start their pattern to the next, 16 characters at a time */
enum { K_DIGIT = 1, K_UPPER = 2, K_AT = 4, K_DELIM = 8, K_SPACE = 16, K_NUMSTART = 32, K_LABEL = 64 };
static uint8_t KCLASS[128];
static uint16_t LINE_KCLASS[128]; /* LINE_CLASS | KCLASS << 8 (init_classes) */
static uint8_t LOCALCH[128]; /* an email's local part: ASCII letters, digits and . _ % + - (init_classes) */
#define CLS_PAD 64 /* zero bytes after a line's classes: the skips read whole blocks past its end */

#if defined(__SSE2__)
#include <emmintrin.h>
/* the first p >= i with cls[p] & mask, else n (cls[p] == 0 for n <= p < n + CLS_PAD) */
static inline size_t skip_to(const uint8_t *cls, size_t i, size_t n, uint8_t mask) {
    const __m128i m = _mm_set1_epi8((char)mask), z = _mm_setzero_si128();
    for (; i < n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(cls + i));
        unsigned hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(v, m), z)) ^ 0xFFFFu;
        if (hit) {
            size_t p = i + (size_t)__builtin_ctz(hit);
            return p < n ? p : n;
        }
    }
    return n;
}
/* the first p >= i holding a delimiter, or a space followed by a space (delimited()'s stops), else n */
static inline size_t skip_to_delim(const uint8_t *cls, size_t i, size_t n) {
    const __m128i d = _mm_set1_epi8((char)K_DELIM), sp = _mm_set1_epi8((char)K_SPACE), z = _mm_setzero_si128();
    for (; i < n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(cls + i));
        __m128i w = _mm_loadu_si128((const __m128i *)(cls + i + 1));
        __m128i x = _mm_or_si128(_mm_and_si128(v, d), _mm_and_si128(_mm_and_si128(v, w), sp));
        unsigned hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, z)) ^ 0xFFFFu;
        if (hit) {
            size_t p = i + (size_t)__builtin_ctz(hit);
            return p < n ? p : n;
        }
    }
    return n;
}
/* the first p >= i where two upper-case letters and two digits start (an IBAN's first four), else n */
static inline size_t skip_to_iban(const uint8_t *cls, size_t i, size_t n) {
    const __m128i u = _mm_set1_epi8((char)K_UPPER), d = _mm_set1_epi8((char)K_DIGIT);
    for (; i < n; i += 16) {
        __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(cls + i)), u);
        __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(cls + i + 1)), u);
        __m128i c = _mm_and_si128(_mm_loadu_si128((const __m128i *)(cls + i + 2)), d);
        __m128i e = _mm_and_si128(_mm_loadu_si128((const __m128i *)(cls + i + 3)), d);
        __m128i all = _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(a, u), _mm_cmpeq_epi8(b, u)),
                                    _mm_and_si128(_mm_cmpeq_epi8(c, d), _mm_cmpeq_epi8(e, d)));
        unsigned hit = (unsigned)_mm_movemask_epi8(all);
        if (hit) {
            size_t p = i + (size_t)__builtin_ctz(hit);
            return p < n ? p : n;
        }
    }
    return n;
}
/* the first p >= i with d[p] == '\n', else n: eight characters at a time (a Chinese posting's lines) */
static inline Py_ssize_t newline_ucs2(const Py_UCS2 *d, Py_ssize_t i, Py_ssize_t n) {
    const __m128i nl = _mm_set1_epi16('\n');
    for (; i + 8 <= n; i += 8) {
        unsigned hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(d + i)), nl));
        if (hit) return i + (Py_ssize_t)(__builtin_ctz(hit) / 2);
    }
    while (i < n && d[i] != '\n') i++;
    return i;
}
#else
static inline Py_ssize_t newline_ucs2(const Py_UCS2 *d, Py_ssize_t i, Py_ssize_t n) {
    while (i < n && d[i] != '\n') i++;
    return i;
}
static inline size_t skip_to(const uint8_t *cls, size_t i, size_t n, uint8_t mask) {
    while (i < n && !(cls[i] & mask)) i++;
    return i;
}
static inline size_t skip_to_delim(const uint8_t *cls, size_t i, size_t n) {
    while (i < n && !(cls[i] & K_DELIM) && !(cls[i] & cls[i + 1] & K_SPACE)) i++;
    return i;
}
static inline size_t skip_to_iban(const uint8_t *cls, size_t i, size_t n) {
    while (i < n && !((cls[i] & K_UPPER) && (cls[i + 1] & K_UPPER) && (cls[i + 2] & K_DIGIT) && (cls[i + 3] & K_DIGIT)))
        i++;
    return i;
}
#endif

static void init_classes(void) {
    for (int c = 0; c < 128; c++) {
        uint8_t k = 0;
        if (c >= '0' && c <= '9') k |= K_DIGIT | K_NUMSTART;
        if (c >= 'A' && c <= 'Z') k |= K_UPPER;
        if (c == '@') k |= K_AT;
        if (c == ':' || c == ';' || c == '|' || c == ',' || c == '\t') k |= K_DELIM;
        if (c == ' ') k |= K_SPACE;
        if (c == '+' || c == '(') k |= K_NUMSTART;
        if (c == '=' || c == ':') k |= K_LABEL;
        KCLASS[c] = k;
    }
    for (int c = 0; c < 128; c++) {
        uint8_t f = 0;
        if ((c < 0x20 && c != '\t') || c == 0x7F) f |= L_BAD;
        if (c == '@') f |= L_AT | L_STRUCT;
        if (c == '.') f |= L_DOT;
        if (c == '=' || c == ':') f |= L_LABEL | L_STRUCT;
        if (c == ';' || c == '|' || c == ',' || c == '\t' || (c >= '0' && c <= '9')) f |= L_STRUCT;
        if (c == '\'') f |= L_QUOTE;
        if (c == ' ') f |= L_SPACE;
        if (c == ':' || c == ';' || c == '|' || c == ',' || c == '\t') f |= L_DELIM;
        LINE_CLASS[c] = f;
    }
    for (int c = 0; c < 128; c++) LINE_KCLASS[c] = (uint16_t)(LINE_CLASS[c] | KCLASS[c] << 8);
    for (int c = 0; c < 128; c++)
        LOCALCH[c] = is_alnum_ascii((cp_t)c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
    for (int c = 0; c < 128; c++) {
        uint8_t f = 0;
        if (strchr("@_/\\=<>#$%&*+~^|[]{}", c) && c) f |= A_NOTNAME;
        if (is_alnum_ascii((cp_t)c) || (strchr("_-.+/=~", c) && c)) f |= A_TOKEN;
        /* name rule: ASCII punctuation (category P) not in the reject set, and whitespace -> space */
        if ((strchr("!\"'(),-.:;?", c) && c) || c == ' ' || c == '\t') f |= A_NAMESEP;
        if (is_alpha_ascii((cp_t)c)) f |= A_LETTER;
        if (is_digit((cp_t)c)) f |= A_DIGIT;
        if (is_alnum_ascii((cp_t)c)) f |= A_ALNUM;
        if (is_upper((cp_t)c)) f |= A_UPPER;
        if (is_space((cp_t)c)) f |= A_SPACE;
        ASCII_CLASS[c] = f;
    }
}

#define SMALL_MAX 24

typedef struct {
    cp_t *chars;
    size_t used, cap;
    uint32_t off[SMALL_MAX], len[SMALL_MAX];
    int n, spilled;
    strset big;
} lineset;

static int lineset_add(lineset *l, const cp_t *v, size_t n);

/* ------------------------------------------------------------------ the scanner object */
typedef struct {
    const uint32_t *next; /* rows of 10; state 0 dead, 1 start */
    const uint8_t *accept;
    size_t states;
} dfa_t;

/* phone_dfa.RegionAutomata: rules numbers out without libphonenumber (see phone_dfa.py) */
#define NSN_MIN 2  /* core.phone_national.MIN_NSN, MAX_NSN: a national significant number's length */
#define NSN_MAX 17
typedef struct {
    int present;
    dfa_t types, npfp, idd;
    int has_npfp, has_idd;
    char cc[4];
    /* phone_dfa.National: the exact test of a plain national number (a region with its own code) */
    int has_national;
    const uint8_t *masks; /* per state of `types`, a little-endian uint16: the patterns matching there */
    uint16_t lenmask[NSN_MAX + 1], general_bit, type_bits;
    PyObject *keep; /* the bytes objects the tables live in */
} automata_t;

typedef struct {
    char code[3];
    uint32_t lengths; /* bit n: a national number of n digits is possible */
    automata_t a;
} region_t;

typedef struct {
    PyObject_HEAD
    ls_hmac_key key;
    region_t regions[32];
    int nregions;
    int dob_mdy[2];
    int ndob;
    uint8_t cn_mobile[10000]; /* "1abcd": 1 valid mobile prefix, 0 not, 2 ask Python */
    PyObject *phone_cb;       /* (raw, region|None) -> str|None, libphonenumber (cached in Python) */
    uint8_t valid_cc[1000];   /* calling codes libphonenumber knows */
    int have_cc;
    uint8_t min_nsn[1000]; /* per calling code: fewest digits of a valid national number (0: unknown) */
    long ruled_out, asked;    /* statistics: numbers ruled out by the automata, numbers asked to Python */
    long decided;             /* statistics: plain national numbers the automata answered exactly */
    PyObject *email_cb;       /* raw -> str|None, for addresses with non-ASCII domains */
    /* per scan: type+canonical -> entry (its index is its digest's); v3 = last line it stood on */
    strset digests;
    /* per scan: the types whose candidates are hashed (bit 1 << T_*); a listing takes every type */
    uint32_t types;
    /* per scan: candidates of the typed types not hashed, kept only so that their raws keep the generic
       types off a value once per (type, canonical) on a line, exactly as when they are hashed */
    strset skipped;
    strset phones;      /* region+raw -> libphonenumber's answer (vals: offset+1 in phone_store, v2: length) */
    lsbuf phone_store;
    /* per scan */
    lsbuf digest_out;   /* 16 bytes per distinct candidate */
    lsbuf pairs;        /* (uint32 digest index, uint32 line index) */
    /* per line */
    lineset seen_fields, typed_raws;
    uint32_t line_index;
    long work;
    int fields;
    lsbuf tmp, msg, msg2, msg3;
    lsbuf ekey;              /* emit's key (kept between emits: the canonical text of the last one) */
    uint64_t prev_hash;      /* hash_bytes of ekey's body */
    int prev_ok;             /* ekey and prev_hash hold the last emit's */
    lsbuf starts; /* where each line of the scanned text starts (uint32 code point offsets) */
    uint32_t digest_base; /* digests of earlier chunks of this scan */
    PyObject *collect; /* when set, candidates are listed here as (type, canonical, raw, line) */
    long fail_emits;   /* tests: when > 0, the emit that brings it to 0 fails as if out of memory */
    cp_t json[SEGMENT_CHARS + 2];
    uint8_t cls[SEGMENT_CHARS + 2 + CLS_PAD]; /* the line's KCLASS bits (scan_line) */
    int error;
} Scanner;

static PyObject *py_str(const cp_t *v, size_t n) {
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, v, (Py_ssize_t)n);
}

#define PHONE_CACHE_MAX 100000

/* A set key: a tag byte (bit 7: code points stored as 4 bytes, else as 1 byte each), then the text.
 * Most values are ASCII: one byte per character keeps hashing, comparing and the arenas small. */
static int make_key(lsbuf *b, int tag, const cp_t *v, size_t n) {
    cp_t max = 0;
    b->len = 0;
    if (buf_reserve(b, 1 + 4 * n)) return -1;
    uint8_t *o = b->p;
    for (size_t i = 0; i < n; i++) { /* as ASCII, in one pass; redone below when it is not */
        max |= v[i];
        o[1 + i] = (uint8_t)v[i];
    }
    if (max < 0x80) {
        o[0] = (uint8_t)tag;
        b->len = 1 + n;
    } else {
        o[0] = (uint8_t)(tag | 0x80);
        memcpy(o + 1, v, n * sizeof(cp_t));
        b->len = 1 + 4 * n;
    }
    return 0;
}

/* Does the key in b (make_key's) hold the text v? Compared in the key's own form (one byte a character
 * for ASCII): the text of the last emit is not kept a second time. */
static inline int key_is(const lsbuf *b, const cp_t *v, size_t n) {
    if (b->p[0] & 0x80) return b->len == 1 + 4 * n && memcmp(b->p + 1, v, n * sizeof(cp_t)) == 0;
    if (b->len != 1 + n) return 0;
    const uint8_t *k = b->p + 1;
    for (size_t i = 0; i < n; i++)
        if (k[i] != v[i]) return 0;
    return 1;
}

/* Records one candidate. On failure (no memory, or a Python error while listing) it sets sc->error and
 * returns -1: every caller checks and stops, and the entry point raises (MemoryError when no Python
 * exception is set), as CPython's Modules/_json.c bails out on a failed PyList_Append. */
static int emit_candidate(Scanner *sc, int type, const cp_t *canon, size_t n, const cp_t *raw, size_t rn);

#define MUST_CHECK __attribute__((warn_unused_result))

static MUST_CHECK int emit(Scanner *sc, int type, const cp_t *canon, size_t n, const cp_t *raw, size_t rn) {
    if (sc->fail_emits > 0 && --sc->fail_emits == 0) { /* test hook: an allocation failure here */
        sc->error = 1;
        return -1;
    }
    if (emit_candidate(sc, type, canon, n, raw, rn) < 0) {
        sc->error = 1;
        return -1;
    }
    return 0;
}

static int emit_candidate(Scanner *sc, int type, const cp_t *canon, size_t n, const cp_t *raw, size_t rn) {
    const int hashed = (sc->types >> type) & 1;
    if (!hashed && !is_typed(type)) return 0; /* not hashed, and no other candidate depends on it */
    /* The same canonical text often comes as text, username and name in a row: its key body and hash
       are reused, only the tag differs (the hash mixes the tag in afterwards). */
    uint64_t body;
    if (sc->prev_ok && key_is(&sc->ekey, canon, n)) {
        sc->ekey.p[0] = (uint8_t)((sc->ekey.p[0] & 0x80) | type);
        body = sc->prev_hash;
    } else {
        sc->prev_ok = 0;
        if (make_key(&sc->ekey, type, canon, n)) return -1;
        body = hash_bytes(sc->ekey.p + 1, sc->ekey.len - 1);
        sc->prev_ok = 1;
        sc->prev_hash = body;
    }
    uint64_t h = body ^ ((uint64_t)(type + 1) * 0x9E3779B97F4A7C15ULL);
    int added;
    strset *set = hashed ? &sc->digests : &sc->skipped;
    long e = set_add_h(set, sc->ekey.p, sc->ekey.len, h, &added);
    if (e < 0) return -1;
    entry_t *en = &set->entries[e];
    if (added) {
        en->v3 = UINT32_MAX; /* its keyed hash is computed at the end of the scan (two at a time) */
    } else if (en->v3 == sc->line_index) {
        return 0; /* once per (type, canonical) on a line */
    }
    en->v3 = sc->line_index;
    if (!hashed) {
        /* typed (the test above): its raw is recorded below, nothing is hashed */
    } else if (sc->collect) {
        const char *name = TYPE_NAMES[type];
        uint8_t digest[32];
        sc->msg.len = 0;
        if (buf_put(&sc->msg, name, strlen(name) + 1) || buf_utf8(&sc->msg, canon, n)) return -1;
        ls_hmac(&sc->key, sc->msg.p, sc->msg.len, digest);
        PyObject *item = Py_BuildValue("(sNNIy#)", name, py_str(canon, n), py_str(raw, rn),
                                       (unsigned)sc->line_index + 1, (const char *)digest, (Py_ssize_t)16);
        if (!item || PyList_Append(sc->collect, item)) {
            Py_XDECREF(item);
            return -1;
        }
        Py_DECREF(item);
    } else {
        uint32_t pair[2] = {sc->digest_base + (uint32_t)e, sc->line_index + 1}; /* lines are 1-based */
        if (buf_put(&sc->pairs, pair, sizeof pair)) return -1;
    }
    if (is_typed(type)) {
        if (lineset_add(&sc->typed_raws, raw, rn) < 0) return -1;
    }
    return 0;
}

/* The scheme's message for entry e of the digest set: type name, NUL, canonical as UTF-8. */
static int message_of(Scanner *sc, size_t e, lsbuf *out) {
    const entry_t *en = &sc->digests.entries[e];
    const uint8_t *key = sc->digests.arena.p + en->off;
    const char *name = TYPE_NAMES[key[0] & 0x7F];
    out->len = 0;
    if (buf_put(out, name, strlen(name) + 1)) return -1;
    if (key[0] & 0x80) {
        cp_t tmp[FIELD_MAX_CHARS * 4 + 8];
        size_t n = (en->len - 1) / sizeof(cp_t);
        if (n > sizeof tmp / sizeof *tmp) return -1;
        memcpy(tmp, key + 1, n * sizeof(cp_t));
        return buf_utf8(out, tmp, n);
    }
    return buf_put(out, key + 1, en->len - 1); /* ASCII is its own UTF-8 */
}

/* 16-byte keyed hash of every entry of the digest set, appended to digest_out in entry order; then the
 * set is emptied. Done every DIGEST_CHUNK distinct candidates (at a line's end), so the set stays small
 * enough for the caches; a value recurring after that is hashed again (sort16 merges the copies). */
#define DIGEST_CHUNK 8192

/* The message of entry e written into blk when it fits one block (at most 55 bytes): its length, else -1. */
static long block_of(Scanner *sc, size_t e, uint8_t blk[64]) {
    const entry_t *en = &sc->digests.entries[e];
    const uint8_t *key = sc->digests.arena.p + en->off;
    int type = key[0] & 0x7F;
    size_t nl = TYPE_LEN[type], len = en->len - 1;
    memset(blk, 0, 64); /* the padding's zeros (ls_hmac4_16 writes its other bytes) */
    memcpy(blk, TYPE_NAMES16[type], 16); /* the name, its NUL, zeros */
    if (!(key[0] & 0x80)) {
        if (nl + len > 55) return -1;
        memcpy(blk + nl, key + 1, len); /* ASCII is its own UTF-8 */
        return (long)(nl + len);
    }
    size_t m = nl;
    for (size_t i = 0; i < len / 4; i++) {
        cp_t c;
        memcpy(&c, key + 1 + 4 * i, 4);
        if (m + (c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4) > 55) return -1; /* more than a block */
        if (c < 0x80) {
            blk[m++] = (uint8_t)c;
        } else if (c < 0x800) {
            blk[m++] = (uint8_t)(0xC0 | (c >> 6));
            blk[m++] = (uint8_t)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            blk[m++] = (uint8_t)(0xE0 | (c >> 12));
            blk[m++] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            blk[m++] = (uint8_t)(0x80 | (c & 0x3F));
        } else {
            blk[m++] = (uint8_t)(0xF0 | (c >> 18));
            blk[m++] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
            blk[m++] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            blk[m++] = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    return (long)m;
}

static int flush_entries(Scanner *sc) {
    size_t count = sc->digests.count, base = sc->digest_out.len / 16;
    if (!sc->collect) {
        if (buf_reserve(&sc->digest_out, 16 * count + 32)) return -1;
        uint8_t *out = sc->digest_out.p + 16 * base;
        /* one-block messages go four at a time (interleaved SHA-NI), written straight into their blocks;
           longer ones one by one */
        uint8_t blk[4][64], d[32];
        size_t lens[4];
        uint8_t *dst[4];
        int nw = 0;
        for (size_t e = 0; e < count; e++) {
            long l = block_of(sc, e, blk[nw]);
            if (l < 0) {
                if (message_of(sc, e, &sc->msg)) return -1;
                ls_hmac(&sc->key, sc->msg.p, sc->msg.len, d);
                memcpy(out + 16 * e, d, 16);
                continue;
            }
            lens[nw] = (size_t)l;
            dst[nw++] = out + 16 * e;
            if (nw == 4) {
                ls_hmac4_16(&sc->key, blk, lens, dst);
                nw = 0;
            }
        }
        for (int j = 0; j < nw; j++) {
            ls_hmac(&sc->key, blk[j], lens[j], d);
            memcpy(dst[j], d, 16);
        }
        sc->digest_out.len = 16 * (base + count);
    }
    sc->digest_base = (uint32_t)(base + count);
    set_clear(&sc->digests);
    set_clear(&sc->skipped); /* at a line's end: its once-per-line rule holds across the clear */
    return 0;
}

static lsbuf set_key; /* scratch for in_set/add_new (the scanner holds the GIL: one at a time) */

static int in_set(strset *s, const cp_t *v, size_t n) {
    if (make_key(&set_key, 0, v, n)) return -1;
    return set_contains(s, set_key.p, set_key.len);
}

/* 1 when v was added, 0 when it was there, -1 on memory error */
static int add_new(strset *s, const cp_t *v, size_t n) {
    int added;
    if (make_key(&set_key, 0, v, n)) return -1;
    return set_add(s, set_key.p, set_key.len, &added) < 0 ? -1 : added;
}

/* Per-line sets (field values seen, typed raws): a line holds a few dozen at most, so a short list
 * compared by length and content beats hashing; past SMALL_MAX entries they move to a hash set. */
static void lineset_clear(lineset *l) {
    l->n = 0;
    l->used = 0;
    if (l->spilled) set_clear(&l->big);
    l->spilled = 0;
}

static int lineset_find(const lineset *l, const cp_t *v, size_t n) {
    for (int i = 0; i < l->n; i++) {
        const cp_t *c = l->chars + l->off[i];
        if (l->len[i] == n &&
            (n == 0 || (c[0] == v[0] && c[n - 1] == v[n - 1] && memcmp(c, v, n * sizeof(cp_t)) == 0)))
            return 1;
    }
    return 0;
}

static int lineset_has(lineset *l, const cp_t *v, size_t n) {
    return l->spilled ? in_set(&l->big, v, n) : lineset_find(l, v, n);
}

/* 1 added, 0 already there, -1 memory error */
static int lineset_add(lineset *l, const cp_t *v, size_t n) {
    if (!l->spilled) {
        if (lineset_find(l, v, n)) return 0;
        if (l->n < SMALL_MAX) {
            if (l->used + n > l->cap) {
                size_t cap = l->cap ? l->cap : 1024;
                while (cap < l->used + n) cap *= 2;
                cp_t *c = realloc(l->chars, cap * sizeof *c);
                if (!c) return -1;
                l->chars = c;
                l->cap = cap;
            }
            memcpy(l->chars + l->used, v, n * sizeof(cp_t));
            l->off[l->n] = (uint32_t)l->used;
            l->len[l->n] = (uint32_t)n;
            l->used += n;
            l->n++;
            return 1;
        }
        for (int i = 0; i < l->n; i++) /* spill into the hash set */
            if (add_new(&l->big, l->chars + l->off[i], l->len[i]) < 0) return -1;
        l->spilled = 1;
    }
    return add_new(&l->big, v, n);
}

static int lineset_empty(const lineset *l) { return !l->spilled && l->n == 0; }

/* ------------------------------------------------------------------ canonical rules */
typedef struct {
    cp_t c[1100];
    size_t n;
} cbuf; /* canonical forms are built here (values are at most 1024 characters) */

static int valid_date(int y, int m, int d) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max = days[m - 1] + (m == 2 && leap);
    return d <= max;
}

static int put_date(cbuf *o, int y, int m, int d) {
    if (!valid_date(y, m, d)) return 0;
    const int v[3] = {y, m, d};
    cp_t *c = o->c;
    c[0] = '0' + v[0] / 1000; c[1] = '0' + v[0] / 100 % 10; c[2] = '0' + v[0] / 10 % 10; c[3] = '0' + v[0] % 10;
    c[4] = '-'; c[5] = '0' + v[1] / 10; c[6] = '0' + v[1] % 10;
    c[7] = '-'; c[8] = '0' + v[2] / 10; c[9] = '0' + v[2] % 10;
    o->n = 10;
    return 1;
}

/* dob tokens: digits, ASCII lower-case letters, anything else (gaps) */
typedef struct {
    int kind; /* 'D', 'A', 'G' */
    size_t s, e;
} tok_t;

static int number_of(const cp_t *t, size_t s, size_t e) {
    int v = 0;
    for (size_t i = s; i < e && i < s + 9; i++) v = v * 10 + (int)(t[i] - '0');
    return v;
}

/* gap in  \s* [set] \s*  (one char of set; a space in set may be one of the spaces) */
static int gap_ok(const cp_t *t, size_t s, size_t e, const char *set) {
    size_t other = 0, pos = 0;
    int has_space = 0;
    for (size_t i = s; i < e; i++) {
        if (is_space(t[i])) {
            if (t[i] == ' ') has_space = 1;
        } else {
            other++;
            pos = i;
        }
    }
    if (other > 1) return 0;
    if (other == 1) return t[pos] < 0x80 && strchr(set, (int)t[pos]) != NULL;
    return has_space && strchr(set, ' ') != NULL;
}
/* gap in \.? \s* [set] \s* */
static int gap_dot_ok(const cp_t *t, size_t s, size_t e, const char *set) {
    if (gap_ok(t, s, e, set)) return 1;
    return e > s && t[s] == '.' && gap_ok(t, s + 1, e, set);
}
/* gap in \s* X \s* for one specific character X */
static int gap_char(const cp_t *t, size_t s, size_t e, cp_t x) {
    int seen = 0;
    for (size_t i = s; i < e; i++) {
        if (is_space(t[i])) continue;
        if (t[i] == x && !seen) seen = 1;
        else return 0;
    }
    return seen;
}

static int month_of(const cp_t *t, size_t s, size_t e) {
    static const char *names[] = {"jan", "january", "feb", "february", "mar", "march", "apr", "april",
                                  "may", "jun", "june", "jul", "july", "aug", "august", "sep", "sept",
                                  "september", "oct", "october", "nov", "november", "dec", "december"};
    static const int months[] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10, 11, 11, 12, 12};
    size_t n = e - s;
    for (size_t k = 0; k < sizeof months / sizeof *months; k++) {
        if (strlen(names[k]) != n) continue;
        size_t i = 0;
        while (i < n && t[s + i] == (cp_t)names[k][i]) i++;
        if (i == n) return months[k];
    }
    return 0;
}

static int day_month_year(cbuf *o, int first, int second, int year, int mdy) {
    if (first > 12 || (second <= 12 && !mdy)) return put_date(o, year, second, first);
    return put_date(o, year, first, second);
}

/* core.canonical._dob on an allowed-character value */
static int canon_dob(const cp_t *v, size_t n, int mdy, cbuf *o) {
    while (n && is_space(v[0])) v++, n--;
    while (n && is_space(v[n - 1])) n--;
    if (n > 40) return 0;
    cp_t t[48];
    for (size_t i = 0; i < n; i++) t[i] = fold_cp(v[i]);
    tok_t k[48];
    int nk = 0;
    for (size_t i = 0; i < n;) {
        int kind = is_digit(t[i]) ? 'D' : is_lower(t[i]) ? 'A' : 'G';
        size_t j = i + 1;
        while (j < n && (is_digit(t[j]) ? 'D' : is_lower(t[j]) ? 'A' : 'G') == kind) j++;
        k[nk].kind = kind;
        k[nk].s = i;
        k[nk].e = j;
        nk++;
        i = j;
    }
#define KL(i) (k[i].e - k[i].s)
#define KIS(i, ch) (k[i].kind == (ch))
    /* _YMD, _XXY: D G D G D */
    if (nk == 5 && KIS(0, 'D') && KIS(1, 'G') && KIS(2, 'D') && KIS(3, 'G') && KIS(4, 'D') &&
        gap_ok(t, k[1].s, k[1].e, "-/.") && gap_ok(t, k[3].s, k[3].e, "-/.")) {
        if (KL(0) == 4 && KL(2) <= 2 && KL(4) <= 2)
            return put_date(o, number_of(t, k[0].s, k[0].e), number_of(t, k[2].s, k[2].e),
                            number_of(t, k[4].s, k[4].e));
    }
    /* _YMD_CJK: D G(年) D G(月) D [G(日|号)] */
    if ((nk == 5 || nk == 6) && KIS(0, 'D') && KIS(1, 'G') && KIS(2, 'D') && KIS(3, 'G') && KIS(4, 'D') &&
        KL(0) == 4 && KL(2) <= 2 && KL(4) <= 2 && gap_char(t, k[1].s, k[1].e, 0x5E74) &&
        gap_char(t, k[3].s, k[3].e, 0x6708) &&
        (nk == 5 || gap_char(t, k[5].s, k[5].e, 0x65E5) || gap_char(t, k[5].s, k[5].e, 0x53F7)))
        return put_date(o, number_of(t, k[0].s, k[0].e), number_of(t, k[2].s, k[2].e),
                        number_of(t, k[4].s, k[4].e));
    /* _COMPACT */
    if (nk == 1 && KIS(0, 'D') && KL(0) == 8)
        return put_date(o, number_of(t, 0, 4), number_of(t, 4, 6), number_of(t, 6, 8));
    /* _XXY */
    if (nk == 5 && KIS(0, 'D') && KIS(1, 'G') && KIS(2, 'D') && KIS(3, 'G') && KIS(4, 'D') &&
        gap_ok(t, k[1].s, k[1].e, "-/.") && gap_ok(t, k[3].s, k[3].e, "-/.") && KL(0) <= 2 && KL(2) <= 2 &&
        KL(4) == 4)
        return day_month_year(o, number_of(t, k[0].s, k[0].e), number_of(t, k[2].s, k[2].e),
                              number_of(t, k[4].s, k[4].e), mdy);
    /* _D_MON_Y: D G A G D */
    if (nk == 5 && KIS(0, 'D') && KIS(1, 'G') && KIS(2, 'A') && KIS(3, 'G') && KIS(4, 'D') && KL(0) <= 2 &&
        KL(2) >= 3 && KL(2) <= 9 && KL(4) == 4 && gap_ok(t, k[1].s, k[1].e, "-/. ") &&
        gap_dot_ok(t, k[3].s, k[3].e, "-/., ")) {
        int m = month_of(t, k[2].s, k[2].e);
        if (m) return put_date(o, number_of(t, k[4].s, k[4].e), m, number_of(t, k[0].s, k[0].e));
    }
    /* _MON_D_Y: A G D [A(st|nd|rd|th)] G D */
    if ((nk == 5 || nk == 6) && KIS(0, 'A') && KL(0) >= 3 && KL(0) <= 9 && KIS(1, 'G') && KIS(2, 'D') &&
        KL(2) <= 2 && gap_dot_ok(t, k[1].s, k[1].e, "-/. ")) {
        int g = 3;
        int ok = 1;
        if (nk == 6) {
            ok = KIS(3, 'A') && KL(3) == 2;
            if (ok) {
                cp_t a = t[k[3].s], b = t[k[3].s + 1];
                ok = (a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') ||
                     (a == 't' && b == 'h');
            }
            g = 4;
        }
        if (ok && KIS(g, 'G') && KIS(g + 1, 'D') && KL(g + 1) == 4 && gap_ok(t, k[g].s, k[g].e, "-/., ")) {
            int m = month_of(t, k[0].s, k[0].e);
            if (m) return put_date(o, number_of(t, k[g + 1].s, k[g + 1].e), m, number_of(t, k[2].s, k[2].e));
        }
    }
#undef KL
#undef KIS
    return 0;
}

static int luhn_ok(const cp_t *d, size_t n) {
    static const int dbl[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
    int sum = 0, k = 0;
    for (size_t i = n; i-- > 0; k++) sum += (k & 1) ? dbl[d[i] - '0'] : (int)(d[i] - '0');
    return sum % 10 == 0;
}

/* _ID_SEPARATORS.sub("", value): drop whitespace, '-' and '.' */
static size_t compact(const cp_t *v, size_t n, cp_t *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_space(v[i]) && v[i] != '-' && v[i] != '.') out[m++] = v[i];
    return m;
}

static int all_digits(const cp_t *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_digit(v[i])) return 0;
    return 1;
}

static int canon_card(const cp_t *v, size_t n, cbuf *o) {
    if (n > 1024) return 0;
    o->n = compact(v, n, o->c);
    return o->n >= 12 && o->n <= 19 && all_digits(o->c, o->n) && luhn_ok(o->c, o->n);
}

static int canon_ssn(const cp_t *v, size_t n, cbuf *o) {
    if (n > 1024) return 0;
    o->n = compact(v, n, o->c);
    if (o->n != 9 || !all_digits(o->c, 9)) return 0;
    const cp_t *s = o->c;
    if ((s[0] == '0' && s[1] == '0' && s[2] == '0') || (s[0] == '6' && s[1] == '6' && s[2] == '6') ||
        s[0] == '9')
        return 0;
    if (s[3] == '0' && s[4] == '0') return 0;
    if (s[5] == '0' && s[6] == '0' && s[7] == '0' && s[8] == '0') return 0;
    return 1;
}

static int canon_cn_id(const cp_t *v, size_t n, cbuf *o) {
    static const int W[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char CHECK[] = "10X98765432";
    static const int PROV[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44,
                               45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83};
    if (n > 1024) return 0;
    o->n = compact(v, n, o->c);
    if (o->n != 18) return 0;
    cp_t *s = o->c;
    if (s[17] == 'x') s[17] = 'X';
    if (!all_digits(s, 17)) return 0;
    int p = number_of(s, 0, 2), ok = 0;
    for (size_t i = 0; i < sizeof PROV / sizeof *PROV; i++) ok |= PROV[i] == p;
    if (!ok) return 0;
    if (!valid_date(number_of(s, 6, 10), number_of(s, 10, 12), number_of(s, 12, 14))) return 0;
    int total = 0;
    for (int i = 0; i < 17; i++) total += W[i] * (int)(s[i] - '0');
    return (cp_t)CHECK[total % 11] == s[17];
}

static const struct {
    char cc[3];
    int len;
} IBAN_LENGTHS[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
    {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HN", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28},
    {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22},
    {"MK", 19}, {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23},
    {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24},
    {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28},
    {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

static int iban_length(const cp_t *s, size_t n) {
    if (n < 2) return 0;
    for (size_t i = 0; i < sizeof IBAN_LENGTHS / sizeof *IBAN_LENGTHS; i++)
        if ((cp_t)IBAN_LENGTHS[i].cc[0] == s[0] && (cp_t)IBAN_LENGTHS[i].cc[1] == s[1]) return IBAN_LENGTHS[i].len;
    return 0;
}

/* core.canonical._iban on an already compact upper-case value */
static int canon_iban(const cp_t *v, size_t n, cbuf *o) {
    o->n = compact(v, n, o->c);
    cp_t *s = o->c;
    for (size_t i = 0; i < o->n; i++)
        if (is_lower(s[i])) s[i] -= 32;
    size_t m = o->n;
    if (m < 15 || m > 34 || !is_upper(s[0]) || !is_upper(s[1]) || !is_digit(s[2]) || !is_digit(s[3])) return 0;
    for (size_t i = 4; i < m; i++)
        if (!is_upper(s[i]) && !is_digit(s[i])) return 0;
    int expected = iban_length(s, m);
    if (expected && (size_t)expected != m) return 0;
    unsigned rem = 0;
    for (size_t k = 0; k < m; k++) {
        cp_t c = s[(k + 4) % m];
        if (is_digit(c)) rem = (rem * 10 + (c - '0')) % 97;
        else rem = (rem * 100 + (c - 'A' + 10)) % 97;
    }
    return rem == 1;
}

static int canon_ip(const cp_t *v, size_t n, cbuf *o) {
    /* caller checked the IPv4 shape: octets <= 255, no leading zeros */
    if (n > 15) return 0; /* longer than any dotted quad: the buffer's bound is checked here too */
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t s = i;
        while (i < n && is_digit(v[i])) i++;
        if (i - s > 1 && v[s] == '0') return 0;
        if (number_of(v, s, i) > 255) return 0;
        i++;
    }
    memcpy(o->c, v, n * sizeof(cp_t));
    o->n = n;
    return 1;
}

/* Python-side canonical form (callback result) into o; 1 when a str came back */
static int from_python(Scanner *sc, PyObject *res, cbuf *o) {
    if (res == NULL) {
        sc->error = 1;
        return 0;
    }
    if (res == Py_None || !PyUnicode_Check(res)) {
        Py_DECREF(res);
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(res);
    if (n > 1024) n = 1024;
    int kind = PyUnicode_KIND(res);
    const void *data = PyUnicode_DATA(res);
    for (Py_ssize_t i = 0; i < n; i++) o->c[i] = PyUnicode_READ(kind, data, i);
    o->n = (size_t)n;
    Py_DECREF(res);
    return 1;
}


static int canon_email(Scanner *sc, const cp_t *v, size_t n, cbuf *o) {
    /* v is a match of extract._EMAIL: ASCII local part, '@', labels, ASCII letters TLD */
    if (n > 1024) return 0; /* longer than any match (and than o): core.canonical's limit */
    size_t at = 0;
    cp_t any = 0;
    for (size_t i = 0; i < n; i++) { /* folded as ASCII on the way (fold_cp of ASCII: lower case) */
        cp_t c = v[i];
        if (c == '@') at = i;
        any |= c;
        o->c[i] = is_upper(c) ? c + 32 : c;
    }
    if (any >= 0x80) {
        PyObject *s = py_str(v, n);
        if (!s) {
            sc->error = 1;
            return 0;
        }
        PyObject *res = PyObject_CallOneArg(sc->email_cb, s);
        Py_DECREF(s);
        return from_python(sc, res, o);
    }
    if (at == 0 || at > 64) return 0;
    o->n = n;
    const cp_t *l = o->c;
    if (l[0] == '.' || l[at - 1] == '.') return 0;
    for (size_t i = 0; i + 1 < at; i++)
        if (l[i] == '.' && l[i + 1] == '.') return 0;
    size_t ds = at + 1;
    if (n - ds > 253) return 0;
    size_t labels = 0, s = ds;
    for (size_t i = ds; i <= n; i++) {
        if (i == n || l[i] == '.') {
            size_t len = i - s;
            if (len < 1 || len > 63) return 0;
            for (size_t j = s; j < i; j++)
                if (!(is_lower(l[j]) || is_digit(l[j]) || l[j] == '-')) return 0;
            if (l[s] == '-' || l[i - 1] == '-') return 0;
            labels++;
            s = i + 1;
        }
    }
    return labels >= 2; /* the TLD is letters only (the pattern's) */
}

/* ------------------------------------------------------------------ phones */
static int region_possible(const region_t *r, int digits) {
    return digits >= 0 && digits < 32 && (r->lengths >> digits) & 1;
}

/* extract._CN_MOBILE_RAW fullmatch; national (11 digits) into nat; *prefixed when +86/0086 */
static int cn_mobile_shape(const cp_t *v, size_t n, cp_t nat[11], int *prefixed) {
    size_t i = 0;
    *prefixed = 0;
    if (n >= 3 && v[0] == '+' && v[1] == '8' && v[2] == '6') {
        i = 3;
        *prefixed = 1;
    } else if (n >= 4 && v[0] == '0' && v[1] == '0' && v[2] == '8' && v[3] == '6') {
        i = 4;
        *prefixed = 1;
    }
    for (size_t sp = 0; *prefixed && sp < 5 && i < n && v[i] == ' '; sp++) i++; /* " {0,5}" */
    int k = 0;
    const int groups[3] = {3, 4, 4};
    for (int g = 0; g < 3; g++) {
        if (g > 0 && i < n && v[i] == '-') i++; /* "(?: {1,5}|-)?" */
        else
            for (size_t sp = 0; g > 0 && sp < 5 && i < n && v[i] == ' '; sp++) i++;
        for (int d = 0; d < groups[g]; d++) {
            if (i >= n || !is_digit(v[i])) return 0;
            nat[k++] = v[i++];
        }
    }
    return i == n && nat[0] == '1';
}

static int dfa_full(const dfa_t *d, const char *s, size_t n) {
    uint32_t st = 1;
    for (size_t i = 0; i < n && st; i++) {
        st = d->next[st * 10 + (uint32_t)(s[i] - '0')];
        if (st >= d->states) return 1; /* corrupt table: claim nothing */
    }
    return st != 0 && d->accept[st];
}

/* lengths >= 1 of the prefixes of s the automaton accepts */
static int dfa_prefixes(const dfa_t *d, const char *s, size_t n, int *out, int max) {
    uint32_t st = 1;
    int k = 0;
    for (size_t i = 0; i < n && st; i++) {
        st = d->next[st * 10 + (uint32_t)(s[i] - '0')];
        if (st >= d->states) return -1;
        if (st && d->accept[st] && k < max) out[k++] = (int)(i + 1);
    }
    return k;
}

/* could some national-prefix stripping of s (up to `levels` times) leave a number a type pattern matches? */
static int maybe_nsn(const automata_t *a, const char *s, size_t n, int levels) {
    if (dfa_full(&a->types, s, n)) return 1;
    if (!levels || !a->has_npfp) return 0;
    int lens[24];
    int k = dfa_prefixes(&a->npfp, s, n, lens, 24);
    if (k < 0 || k == 24) return 1;
    for (int i = 0; i < k; i++)
        if (maybe_nsn(a, s + lens[i], n - (size_t)lens[i], levels - 1)) return 1;
    return 0;
}

/* 0 when libphonenumber certainly finds raw invalid read in region (NULL: an international number) */
static int maybe_valid(Scanner *sc, const cp_t *raw, size_t n, const char *region) {
    char d[64];
    size_t m = 0;
    int letters = 0; /* libphonenumber reads letters as digits (1-800-FLOWERS): the digit count is then short */
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == 'X' || raw[i] == 'x') return 1; /* an extension marker to libphonenumber */
        letters |= is_alpha_ascii(raw[i]);
        if (is_digit(raw[i])) {
            if (m == sizeof d) return 1;
            d[m++] = (char)raw[i];
        }
    }
    if (region == NULL) {
        if (!sc->have_cc) return 1;
        size_t skip = raw[0] == '+' ? 0 : 2; /* "00": the international prefix */
        const char *s = d + skip;
        size_t len = m - skip;
        if (len == 0 || s[0] == '0') return 0; /* no calling code starts with 0 */
        int cc = -1;
        size_t cl = 0;
        for (size_t i = 1; i <= 3 && i <= len; i++) {
            int v = 0;
            for (size_t j = 0; j < i; j++) v = v * 10 + (s[j] - '0');
            if (sc->valid_cc[v]) {
                cc = v;
                cl = i;
                break;
            }
        }
        if (cc < 0) return 0;
        /* parse only strips digits from what follows the calling code (a national prefix); the codes
         * whose regions may rewrite a number longer have no length here (phone_lengths.py) */
        if (!letters && len - cl < sc->min_nsn[cc]) return 0;
        for (int k = 0; k < sc->nregions; k++) {
            const automata_t *a = &sc->regions[k].a;
            if (a->present && atoi(a->cc) == cc) return maybe_nsn(a, s + cl, len - cl, 2);
        }
        return 1;
    }
    for (int k = 0; k < sc->nregions; k++) {
        if (strcmp(sc->regions[k].code, region) != 0) continue;
        const automata_t *a = &sc->regions[k].a;
        if (!a->present) return 1;
        int lens[4];
        if (a->has_idd && dfa_prefixes(&a->idd, d, m, lens, 4) != 0) return 1;
        if (maybe_nsn(a, d, m, 2)) return 1;
        size_t cl = strlen(a->cc);
        if (m > cl && memcmp(d, a->cc, cl) == 0 && maybe_nsn(a, d + cl, m - cl, 2)) return 1;
        return 0;
    }
    return 1;
}

/* Does the automaton accept some prefix of s, the empty one included (Python's re.match)? A corrupt
 * table claims one (the caller then leaves the number to libphonenumber). */
static int dfa_any_prefix(const dfa_t *d, const char *s, size_t n) {
    uint32_t st = 1;
    if (d->accept[st]) return 1;
    for (size_t i = 0; i < n; i++) {
        st = d->next[st * 10 + (uint32_t)(s[i] - '0')];
        if (st >= d->states) return 1;
        if (!st) return 0;
        if (d->accept[st]) return 1;
    }
    return 0;
}

/* core.phone_national.national_e164 without the callback: 1 valid (its E.164 in o), 0 invalid, -1 when
 * it does not answer (parse decides). Only digit groups with one space, dot or hyphen between them, the
 * first digit not 0, 4..40 characters (canonical._phone's _PHONE_CHARS bound; nothing there rewrites
 * such a text), whose digits do not start with the country code, the IDD or the national prefix. */
static int national_exact(const automata_t *a, const cp_t *raw, size_t n, cbuf *o) {
    if (!a->present || !a->has_national || n < 4 || n > 40 || raw[0] < '1' || raw[0] > '9') return -1;
    char d[NSN_MAX];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        cp_t c = raw[i];
        if (is_digit(c)) {
            if (m == NSN_MAX) return -1;
            d[m++] = (char)c;
        } else if (!((c == ' ' || c == '.' || c == '-') && i + 1 < n && is_digit(raw[i + 1]))) {
            return -1; /* (a separator always follows a digit: the first is one, and one follows each) */
        }
    }
    size_t cl = strlen(a->cc);
    if (m < NSN_MIN || (m >= cl && memcmp(d, a->cc, cl) == 0)) return -1;
    if ((a->has_idd && dfa_any_prefix(&a->idd, d, m)) || (a->has_npfp && dfa_any_prefix(&a->npfp, d, m))) return -1;
    uint32_t st = 1;
    for (size_t i = 0; i < m && st; i++) {
        st = a->types.next[st * 10 + (uint32_t)(d[i] - '0')];
        if (st >= a->types.states) return -1;
    }
    unsigned mask = st ? (unsigned)a->masks[2 * (size_t)st] | (unsigned)a->masks[2 * (size_t)st + 1] << 8 : 0;
    mask &= a->lenmask[m];
    if (!(mask & a->general_bit) || !(mask & a->type_bits)) return 0;
    o->c[0] = '+';
    for (size_t i = 0; i < cl; i++) o->c[1 + i] = (cp_t)a->cc[i];
    for (size_t i = 0; i < m; i++) o->c[1 + cl + i] = (cp_t)d[i];
    o->n = 1 + cl + m;
    return 1;
}

/* extract._phone: Chinese mobiles by shape, plain national numbers by the automata, the rest through
 * libphonenumber (Python). `k`: the region's index, -1 for an international number. */
static int phone_of(Scanner *sc, const cp_t *raw, size_t n, int k, cbuf *o) {
    const char *region = k >= 0 ? sc->regions[k].code : NULL;
    if (region == NULL || strcmp(region, "CN") == 0) {
        cp_t nat[11];
        int prefixed;
        if (cn_mobile_shape(raw, n, nat, &prefixed) && (region != NULL || prefixed)) {
            int idx = number_of(nat, 1, 5);
            if (sc->cn_mobile[idx] == 1) {
                o->c[0] = '+';
                o->c[1] = '8';
                o->c[2] = '6';
                memcpy(o->c + 3, nat, sizeof nat);
                o->n = 14;
                return 1;
            }
        }
    }
    if (k >= 0) {
        int exact = national_exact(&sc->regions[k].a, raw, n, o);
        if (exact >= 0) {
            sc->decided++;
            return exact;
        }
    }
    sc->tmp.len = 0;
    if (buf_put(&sc->tmp, region ? region : "--", 2) || buf_utf8(&sc->tmp, raw, n)) {
        sc->error = 1;
        return 0;
    }
    int added;
    long e = set_add(&sc->phones, sc->tmp.p, sc->tmp.len, &added);
    if (e < 0) {
        sc->error = 1;
        return 0;
    }
    if (!added) {
        uint32_t off = sc->phones.entries[e].val;
        if (!off) return 0;
        o->n = sc->phones.entries[e].v2;
        memcpy(o->c, sc->phone_store.p + (off - 1), o->n * sizeof(cp_t));
        return 1;
    }
    if (!maybe_valid(sc, raw, n, region)) {
        sc->ruled_out++;
        return 0; /* cached as invalid */
    }
    sc->asked++;
    PyObject *s = py_str(raw, n);
    if (!s) {
        sc->error = 1;
        return 0;
    }
    PyObject *res = region ? PyObject_CallFunction(sc->phone_cb, "Os", s, region)
                           : PyObject_CallFunction(sc->phone_cb, "OO", s, Py_None);
    Py_DECREF(s);
    int ok = from_python(sc, res, o);
    if (sc->error) { /* the entry just added holds no answer: forget the cache */
        set_clear(&sc->phones);
        sc->phone_store.len = 0;
        return 0;
    }
    if (ok) {
        sc->phones.entries[e].val = (uint32_t)sc->phone_store.len + 1;
        sc->phones.entries[e].v2 = (uint32_t)o->n;
        if (buf_put(&sc->phone_store, o->c, o->n * sizeof(cp_t))) sc->error = 1;
    }
    return ok;
}

/* ------------------------------------------------------------------ digit runs (extract._number_run) */
typedef struct {
    size_t start, end;
    int digits;
} group_t;

static MUST_CHECK int add(Scanner *sc, int type, cbuf *c, const cp_t *raw, size_t rn) {
    return emit(sc, type, c->c, c->n, raw, rn);
}

static int ipv4_shape(const cp_t *r, size_t n) {
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t s = i;
        while (i < n && is_digit(r[i]) && i - s < 4) i++;
        if (i == s || i - s > 3) return 0;
        if (part < 3) {
            if (i >= n || r[i] != '.') return 0;
            i++;
        }
    }
    return i == n;
}

static size_t separator_is(const cp_t *r, const group_t *a, const group_t *b, cp_t *out) {
    /* run[a.end:b.start].strip() or " " -> 1 char expected; returns its length */
    size_t s = a->end, e = b->start;
    while (s < e && is_space(r[s])) s++;
    while (e > s && is_space(r[e - 1])) e--;
    if (s == e) {
        *out = ' ';
        return 1;
    }
    *out = r[s];
    return e - s;
}

static int first_phone(Scanner *sc, const cp_t *raw, size_t n, cbuf *o, int *tried) {
    int international = (n >= 1 && raw[0] == '+') || (n >= 2 && raw[0] == '0' && raw[1] == '0');
    int digits = 0;
    for (size_t i = 0; i < n; i++) digits += is_digit(raw[i]);
    *tried = 0;
    if (international) {
        (*tried)++;
        return phone_of(sc, raw, n, -1, o);
    }
    for (int k = 0; k < sc->nregions; k++) {
        if (!region_possible(&sc->regions[k], digits)) continue;
        (*tried)++;
        if (phone_of(sc, raw, n, k, o)) return 1;
        if (sc->error) return 0;
    }
    return 0;
}

static int number_run(Scanner *sc, const cp_t *r, size_t n) {
    group_t g[64];
    int ng = 0, total = 0;
    for (size_t i = 0; i < n && ng < 64;) {
        if (!is_digit(r[i])) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < n && is_digit(r[i])) i++;
        if (i < n && (r[i] == 'X' || r[i] == 'x')) i++;
        size_t start = s;
        while (start > 0 && (r[start - 1] == '+' || r[start - 1] == '(')) start--;
        g[ng].start = start;
        g[ng].end = i;
        g[ng].digits = (int)(i - s);
        total += g[ng].digits;
        ng++;
    }
    if (total < 7 && ng < 3) return 1;
    cbuf c;
    if (ipv4_shape(r, n)) {
        if (canon_ip(r, n, &c) && emit(sc, T_IP, c.c, c.n, r, n) < 0) return 1;
        return 1;
    }
    int found = 0;
    for (int i = 0; i + 2 < ng; i++) {
        group_t *a = &g[i], *b = &g[i + 1], *d = &g[i + 2];
        if ((a->digits == 4 && b->digits <= 2 && d->digits <= 2) ||
            (a->digits <= 2 && b->digits <= 2 && d->digits == 4)) {
            const cp_t *raw = r + a->start;
            size_t rn = d->end - a->start;
            for (int k = 0; k < sc->ndob; k++) {
                if (canon_dob(raw, rn, sc->dob_mdy[k], &c)) {
                    found = 1;
                    if (add(sc, T_DOB, &c, raw, rn) < 0) return 1;
                }
            }
        }
    }
    if (found && ng == 3) return 1;
    for (int i = 0; i < ng; i++)
        if (g[i].digits == 18 && canon_cn_id(r + g[i].start, g[i].end - g[i].start, &c))
            if (add(sc, T_CN_ID, &c, r + g[i].start, g[i].end - g[i].start) < 0) return 1;
    /* ssns: 3-2-4 joined by '-' exactly */
    for (int i = 0; i + 2 < ng; i++) {
        group_t *a = &g[i], *b = &g[i + 1], *d = &g[i + 2];
        if (a->digits == 3 && b->digits == 2 && d->digits == 4 && b->start - a->end == 1 &&
            r[a->end] == '-' && d->start - b->end == 1 && r[b->end] == '-') {
            if (canon_ssn(r + a->start, d->end - a->start, &c) &&
                add(sc, T_SSN, &c, r + a->start, d->end - a->start) < 0)
                return 1;
        }
    }
    /* cards */
    for (int i = 0; i < ng;) {
        int used = 0, tot = 0, j = i;
        int ends[64], ne = 0;
        while (j < ng && tot + g[j].digits <= 19) {
            if (j > i) {
                cp_t sep;
                size_t sl = separator_is(r, &g[j - 1], &g[j], &sep);
                if (sl != 1 || (sep != ' ' && sep != '-')) break;
            }
            tot += g[j].digits;
            if (tot >= 12) ends[ne++] = j;
            j++;
        }
        for (int e = ne - 1; e >= 0; e--) {
            size_t s = g[i].start, en = g[ends[e]].end;
            while (s < en && (r[s] == '+' || r[s] == '(')) s++;
            cp_t d[128];
            size_t m = 0;
            for (size_t q = s; q < en && m < 128; q++)
                if (r[q] != ' ' && r[q] != '-') d[m++] = r[q];
            if (m > 0 && all_digits(d, m) && luhn_ok(d, m)) {
                if (canon_card(r + s, en - s, &c) && add(sc, T_CARD, &c, r + s, en - s) < 0) return 1;
                used = ends[e] - i + 1;
                break;
            }
        }
        i += used ? used : 1;
    }
    /* phones */
    int parses = 0;
    for (int i = 0; i < ng && parses < MAX_PHONE_PARSES_PER_RUN;) {
        int used = 0, tot = 0;
        int ends[64], ne = 0;
        for (int j = i; j < ng; j++) {
            tot += g[j].digits;
            if (tot > 17) break;
            if (tot >= 7) ends[ne++] = j;
        }
        for (int e = ne - 1; e >= 0; e--) {
            const cp_t *raw = r + g[i].start;
            size_t rn = g[ends[e]].end - g[i].start;
            int tried;
            int ok = first_phone(sc, raw, rn, &c, &tried);
            if (sc->error) return 1;
            parses += tried;
            if (ok) {
                if (add(sc, T_PHONE, &c, raw, rn) < 0) return 1;
                used = ends[e] - i + 1;
                break;
            }
        }
        i += used ? used : 1;
    }
    return 1 + parses;
}

/* ------------------------------------------------------------------ typed scan (extract._typed) */
static inline int is_localch(cp_t c) { return c < 128 && LOCALCH[c]; }

static void scan_emails(Scanner *sc, const cp_t *s, const uint8_t *cls, size_t n) {
    size_t last = 0;
    cbuf c;
    for (size_t p = 0; p < n; p++) {
        p = skip_to(cls, p, n, K_AT);
        if (p >= n) break;
        if (p < last) continue;
        size_t st = p;
        while (st > 0 && is_localch(s[st - 1])) st--;
        if (st < last || p - st < 1 || p - st > 64) continue;
        size_t q = p + 1, ends[9];
        int k = 0;
        while (k < 8 && q < n && is_word(s[q]) && s[q] != '_') {
            size_t r = q + 1;
            while (r < n && (is_word(s[r]) || s[r] == '-')) r++;
            if (r - q - 1 > 62 || r >= n || s[r] != '.') break;
            q = r + 1;
            ends[++k] = q;
        }
        size_t end = 0;
        for (int kk = k; kk >= 1 && !end; kk--) {
            size_t t = ends[kk], m = 0;
            while (t + m < n && m < 24 && is_alpha_ascii(s[t + m])) m++;
            if (m >= 2) end = t + m;
        }
        if (!end) continue;
        sc->work--;
        if (canon_email(sc, s + st, end - st, &c) && add(sc, T_EMAIL, &c, s + st, end - st) < 0) return;
        if (sc->error) return;
        last = end;
        p = end - 1;
    }
}

static void scan_cjk_dates(Scanner *sc, const cp_t *s, size_t n) {
    cbuf c;
    for (size_t i = 0; i + 4 <= n; i++) {
        size_t p = i;
        int ok = 1;
        for (int d = 0; d < 4; d++, p++)
            if (p >= n || !is_digit(s[p])) ok = 0;
        if (!ok) continue;
        if (p < n && s[p] == ' ') p++;
        if (p >= n || s[p] != 0x5E74) continue; /* 年 */
        p++;
        if (p < n && s[p] == ' ') p++;
        size_t r = p;
        while (r < n && is_digit(s[r])) r++;
        if (r == p || r - p > 2) continue;
        p = r;
        if (p < n && s[p] == ' ') p++;
        if (p >= n || s[p] != 0x6708) continue; /* 月 */
        p++;
        if (p < n && s[p] == ' ') p++;
        r = p;
        while (r < n && is_digit(s[r]) && r - p < 2) r++;
        if (r == p) continue;
        p = r;
        if (p < n && s[p] == ' ') p++;
        if (p < n && (s[p] == 0x65E5 || s[p] == 0x53F7)) p++; /* 日 号 */
        if (canon_dob(s + i, p - i, 0, &c) && add(sc, T_DOB, &c, s + i, p - i) < 0) return;
        i = p - 1;
    }
}

/* (?: ?[A-Za-z0-9]{1,4}){3,9} from pos: the end the regex engine reaches, or 0 */
static size_t iban_reps(const cp_t *s, size_t n, size_t pos, int count) {
    if (count < 9) {
        for (int space = 1; space >= 0; space--) {
            size_t q = pos;
            if (space) {
                if (q < n && s[q] == ' ') q++;
                else continue;
            }
            size_t run = 0;
            while (q + run < n && run < 4 && is_alnum_ascii(s[q + run])) run++;
            for (size_t len = run; len >= 1; len--) {
                size_t end = iban_reps(s, n, q + len, count + 1);
                if (end) return end;
            }
        }
    }
    return count >= 3 ? pos : 0;
}

static void scan_ibans(Scanner *sc, const cp_t *s, const uint8_t *cls, size_t n) {
    cbuf c;
    for (size_t i = 0; i + 4 < n; i++) {
        i = skip_to_iban(cls, i, n);
        if (i + 4 >= n) break;
        if (!is_upper(s[i]) || (i > 0 && is_alnum_ascii(s[i - 1])) || !is_upper(s[i + 1]) || !is_digit(s[i + 2]) ||
            !is_digit(s[i + 3]))
            continue;
        size_t end = iban_reps(s, n, i + 4, 0);
        if (!end) continue;
        sc->work--;
        /* extract._iban: compact upper, cut to the registered length */
        cp_t comp[64];
        size_t m = 0;
        for (size_t q = i; q < end && m < 64; q++)
            if (!is_space(s[q])) comp[m++] = is_lower(s[q]) ? s[q] - 32 : s[q];
        int length = iban_length(comp, m);
        size_t rawn = end - i;
        if (length) {
            if ((size_t)length < m) m = (size_t)length;
            size_t seen = 0;
            for (size_t q = i; q < end; q++) {
                if (!is_space(s[q]) && ++seen == (size_t)length) {
                    rawn = q + 1 - i;
                    break;
                }
            }
        }
        if (canon_iban(comp, m, &c) && add(sc, T_IBAN, &c, s + i, rawn) < 0) return;
        i = end - 1;
    }
}

/* next separator+digit of _NUM's repetition, or 0 */
static size_t num_sep(const cp_t *s, size_t n, size_t p) {
    const cp_t alts[3][3] = {{'-', '.', '/'}, {'(', 0, 0}, {')', 0, 0}};
    for (int a = 0; a < 3; a++) {
        size_t q = p;
        if (q < n && s[q] == ' ') q++;
        if (q < n && (s[q] == alts[a][0] || (alts[a][1] && s[q] == alts[a][1]) || (alts[a][2] && s[q] == alts[a][2]))) {
            q++;
            if (q + 1 < n && s[q] == ' ' && is_digit(s[q + 1])) return q + 1;
            if (q < n && is_digit(s[q])) return q;
        }
    }
    size_t q = p; /* " {1,5}" */
    while (q < n && q - p < 5 && s[q] == ' ') q++;
    if (q > p && q < n && is_digit(s[q])) return q;
    return 0;
}

static void scan_numbers(Scanner *sc, const cp_t *s, const uint8_t *cls, size_t n) {
    for (size_t i = 0; i < n; i++) {
        i = skip_to(cls, i, n, K_NUMSTART);
        if (i >= n) break;
        cp_t ch = s[i];
        size_t p;
        if (ch == '+') {
            if (i + 2 < n && s[i + 1] == '(' && is_digit(s[i + 2])) p = i + 2;
            else if (i + 1 < n && is_digit(s[i + 1])) p = i + 1;
            else continue;
        } else if (ch == '(') {
            if (i + 1 < n && is_digit(s[i + 1])) p = i + 1;
            else continue;
        } else if (is_digit(ch)) {
            p = i;
        } else {
            continue;
        }
        while (p < n && is_digit(s[p])) p++;
        if (p < n && (s[p] == 'X' || s[p] == 'x')) p++;
        for (int reps = 0; reps < 11; reps++) {
            size_t q = num_sep(s, n, p);
            if (!q) break;
            p = q;
            while (p < n && is_digit(s[p])) p++;
            if (p < n && (s[p] == 'X' || s[p] == 'x')) p++;
        }
        if (p < n && s[p] == ')') p++;
        if (sc->work <= 0) return;
        sc->work -= number_run(sc, s + i, p - i);
        if (sc->error) return;
        i = p - 1;
    }
}

/* ------------------------------------------------------------------ grouped identifiers (extract._grouped) */
#define GROUP_LIMIT 9
#define WRAP_WINDOW 80   /* extract.WRAP_WINDOW */
#define WRAP_GROUP_MAX 8 /* extract._WRAP_GROUP_MAX */

typedef struct {
    size_t s, e;
} span_t;

static inline int is_sep_char(cp_t c) { return c == ' ' || c == '-' || c == '.'; }

/* extract._group_run: the groups from p joined by the first separator; the separator in (sep_s, sep_n) */
static int group_run(const cp_t *s, size_t n, size_t p, span_t *g, size_t *sep_s, size_t *sep_n) {
    size_t e = p;
    while (e < n && is_alnum_ascii(s[e])) e++;
    g[0].s = p;
    g[0].e = e;
    int k = 1;
    *sep_n = 0;
    while (k < GROUP_LIMIT) {
        size_t q = e;
        int other = 0;
        while (q < n && q - e < 6 && is_sep_char(s[q])) other += s[q++] != ' ';
        size_t len = q - e;
        if (len == 0 || len > 5 || other > 1) break;
        if (*sep_n && (len != *sep_n || memcmp(s + e, s + *sep_s, len * sizeof(cp_t)) != 0)) break;
        if (q >= n || !is_alnum_ascii(s[q])) break;
        *sep_s = e;
        *sep_n = len;
        size_t r = q;
        while (r < n && is_alnum_ascii(s[r])) r++;
        g[k].s = q;
        g[k].e = r;
        k++;
        e = r;
    }
    return k;
}

static int group_digits(const cp_t *s, span_t g) { return all_digits(s + g.s, g.e - g.s); }
#define GLEN(i) ((int)(g[i].e - g[i].s))

static int grouped_cn_id(const cp_t *s, const span_t *g, int ng) {
    static const int shapes[2][4] = {{6, 8, 4, 0}, {6, 4, 4, 4}};
    for (int t = 0; t < 2; t++) {
        int k = shapes[t][3] ? 4 : 3, ok = ng >= k;
        for (int i = 0; ok && i < k; i++) ok = GLEN(i) == shapes[t][i];
        for (int i = 0; ok && i < k - 1; i++) ok = group_digits(s, g[i]);
        if (!ok) continue;
        const cp_t *l = s + g[k - 1].s;
        if (all_digits(l, 3) && (is_digit(l[3]) || l[3] == 'X' || l[3] == 'x')) return k;
    }
    return 0;
}

static int grouped_card(const cp_t *s, const span_t *g, int ng) {
    for (int k = ng < 5 ? ng : 5; k > 2; k--) {
        int fits = 1, total = 0;
        if (k == 3) {
            fits = GLEN(0) == 4 && GLEN(1) == 6 && (GLEN(2) == 5 || GLEN(2) == 4);
        } else {
            for (int i = 0; i < k - 1; i++) fits &= GLEN(i) == 4;
            fits &= GLEN(k - 1) >= 1 && GLEN(k - 1) <= 4;
        }
        for (int i = 0; fits && i < k; i++) fits = group_digits(s, g[i]);
        if (!fits) continue;
        cp_t d[32];
        for (int i = 0; i < k; i++) {
            if (total + GLEN(i) > 32) return 0; /* not reached: the shapes hold at most 20 digits */
            memcpy(d + total, s + g[i].s, (size_t)GLEN(i) * sizeof(cp_t));
            total += GLEN(i);
        }
        if (luhn_ok(d, (size_t)total)) return k;
    }
    return 0;
}

static int grouped_ssn(const cp_t *s, const span_t *g, int ng, size_t sep_n) {
    if (ng < 3 || GLEN(0) != 3 || GLEN(1) != 2 || GLEN(2) != 4) return 0;
    for (int i = 0; i < 3; i++)
        if (!group_digits(s, g[i])) return 0;
    if (ng > 3 && is_digit(s[g[3].s])) return 0; /* the start of something longer */
    size_t st = g[0].s;
    if (st >= sep_n + 1 && is_digit(s[st - sep_n - 1])) {
        size_t sep_s = g[0].e; /* the separator of the run, as written after the first group */
        if (memcmp(s + st - sep_n, s + sep_s, sep_n * sizeof(cp_t)) == 0) return 0; /* the end of one */
    }
    return 3;
}

static int grouped_iban(const cp_t *s, const span_t *g, int ng) {
    cp_t cc[2] = {s[g[0].s] & ~(cp_t)0x20, s[g[0].s + 1] & ~(cp_t)0x20}; /* ASCII letters: upper case */
    int length = iban_length(cc, 2);
    if (!length) return 0;
    if (GLEN(0) == length) return 1;
    if (GLEN(0) != 4) return 0;
    int total = 4;
    for (int k = 2; k <= ng; k++) {
        int len = GLEN(k - 1);
        if (len > 4) return 0;
        total += len;
        if (total == length) return k;
        if (len < 4 || total > length) return 0;
    }
    return 0;
}

/* With j > 0 (scan_wrapped): s is a window of two lines joined by a separator in [a, j); only the cn_ids, IBANs
   and cards that start before a and end after j are candidates, their raw text the two pieces joined by '\n' */
static void scan_grouped(Scanner *sc, const cp_t *s, const uint8_t *cls, size_t n, size_t a, size_t j) {
    span_t g[GROUP_LIMIT];
    cbuf c;
    size_t i = 0;
    while (i < n) {
        /* extract._GROUP_START: a group starting with three digits, or with two letters and two digits (an
           IBAN). Every start holds a digit at its first or third character: the loop runs from digit to
           digit, the start of its group decided from the characters before it. */
        size_t p = i;
        if (cls) p = skip_to(cls, p, n, K_DIGIT); /* cls: the line's classes (NULL: a window of two lines) */
        else
            while (p < n && !is_digit(s[p])) p++;
        if (p >= n) break;
        if (p == 0 || !is_alnum_ascii(s[p - 1])) {
            i = p; /* a group starting with a digit */
        } else if (p >= i + 2 && is_alpha_ascii(s[p - 1]) && is_alpha_ascii(s[p - 2]) &&
                   (p == 2 || !is_alnum_ascii(s[p - 3]))) {
            i = p - 2; /* two letters, then this digit */
        } else {
            i = p;
            while (i < n && is_alnum_ascii(s[i])) i++;
            continue;
        }
        /* cheap refusals first (the same outcome as the checks below): a group of digits and letters, a
           numeric group of another length than 3, 4, 6, or a group with no separator after it cannot begin
           a grouped value (only an unbroken IBAN can stand alone) */
        size_t e0 = i;
        while (e0 < n && is_digit(s[e0])) e0++;
        int numeric = e0 > i;
        if (numeric) {
            if (e0 < n && is_alpha_ascii(s[e0])) { /* digits then letters: no start */
                while (e0 < n && is_alnum_ascii(s[e0])) e0++;
                i = e0;
                continue;
            }
        } else {
            if (!(i + 3 < n && is_digit(s[i + 3]))) { /* two letters and one digit only */
                while (e0 < n && is_alnum_ascii(s[e0])) e0++;
                i = e0;
                continue;
            }
            while (e0 < n && is_alnum_ascii(s[e0])) e0++;
        }
        size_t len0 = e0 - i;
        int joined = e0 < n && is_sep_char(s[e0]);
        if (numeric ? !joined || (len0 != 3 && len0 != 4 && len0 != 6) : !joined && (len0 < 15 || len0 > 34)) {
            i = e0;
            continue;
        }
        size_t sep_s = 0, sep_n = 0;
        int ng = group_run(s, n, i, g, &sep_s, &sep_n);
        int type = -1, count = 0;
        if (numeric) {
            if (len0 == 6) count = grouped_cn_id(s, g, ng), type = T_CN_ID;
            else if (len0 == 4) count = grouped_card(s, g, ng), type = T_CARD;
            else if (len0 == 3) count = grouped_ssn(s, g, ng, sep_n), type = T_SSN;
        } else { /* two letters and two digits (checked above): an IBAN's start */
            count = grouped_iban(s, g, ng), type = T_IBAN;
        }
        if (!count) {
            i = g[0].e;
            continue;
        }
        cp_t comp[GROUP_LIMIT * 40];
        size_t m = 0;
        for (int k = 0; k < count; k++) {
            size_t len = g[k].e - g[k].s;
            if (m + len > sizeof comp / sizeof *comp) break;
            memcpy(comp + m, s + g[k].s, len * sizeof(cp_t));
            m += len;
        }
        int ok = type == T_CN_ID ? canon_cn_id(comp, m, &c)
                 : type == T_CARD ? canon_card(comp, m, &c)
                 : type == T_SSN  ? canon_ssn(comp, m, &c)
                                  : canon_iban(comp, m, &c);
        if (j) {
            size_t en = g[count - 1].e;
            if (ok && type != T_SSN && i < a && en > j) {
                cp_t raw[2 * WRAP_WINDOW + 8];
                size_t rn = a - i;
                memcpy(raw, s + i, rn * sizeof(cp_t));
                raw[rn++] = '\n';
                memcpy(raw + rn, s + j, (en - j) * sizeof(cp_t));
                rn += en - j;
                if (add(sc, type, &c, raw, rn) < 0) return;
            }
        } else if (ok && add(sc, type, &c, s + i, g[count - 1].e - i) < 0) {
            return;
        }
        i = g[count - 1].e;
    }
}
#undef GLEN

/* ------------------------------------------------------------------ values wrapped over two lines (extract._wrapped) */
static inline cp_t text_cp(int kind, const void *data, Py_ssize_t i) { /* narrowed as extract.narrow_forms */
    cp_t c = (cp_t)PyUnicode_READ(kind, data, i);
    if (c >= 0x80) {
        cp_t w = narrow_cp(c);
        if (w) c = w;
    }
    return c;
}

static int valid_separator(const cp_t *s, size_t n) {
    int other = 0;
    for (size_t i = 0; i < n; i++) other += s[i] != ' ';
    return n >= 1 && n <= 5 && other <= 1;
}

/* the line [a0, a1) of text (a1: its '\n' or the end), and the start of the next line */
static void scan_wrapped(Scanner *sc, int kind, const void *data, Py_ssize_t a0, Py_ssize_t a1, Py_ssize_t n) {
    if (a1 >= n) return; /* the last line */
    Py_ssize_t e = a1;
    while (e > a0) {
        cp_t c = text_cp(kind, data, e - 1);
        if (c != ' ' && c != '\t' && c != '\r') break;
        e--;
    }
    if (e == a0 || !is_alnum_ascii(text_cp(kind, data, e - 1))) return;
    Py_ssize_t b0 = a1 + 1;
    while (b0 < n) {
        cp_t c = text_cp(kind, data, b0);
        if (c != ' ' && c != '\t') break;
        b0++;
    }
    if (b0 >= n || !is_alnum_ascii(text_cp(kind, data, b0))) return;
    /* cheap refusals, where the reading below would find nothing: the runs at the break are too long for a
       group and their join too short or too long for an unbroken value, or no separator is written next
       to them (a grouped value crossing the break has groups on both lines, so one of them shows it) */
    size_t run1 = 0, run2 = 0;
    while (run1 < 35 && e - (Py_ssize_t)run1 > a0 && is_alnum_ascii(text_cp(kind, data, e - 1 - (Py_ssize_t)run1))) run1++;
    while (run2 < 35 && b0 + (Py_ssize_t)run2 < n && is_alnum_ascii(text_cp(kind, data, b0 + (Py_ssize_t)run2))) run2++;
    int unbroken = run1 + run2 >= 15 && run1 + run2 <= 34;
    /* a grouped value crossing the break has the run before it as a whole group that is not its last: 4
       or 6 characters (a card's), 6 or 8 (a cn_id's), 4 (an IBAN's); else no grouped reading finds one */
    int grouped = run1 <= WRAP_GROUP_MAX && run2 <= WRAP_GROUP_MAX && (run1 == 4 || run1 == 6 || run1 == 8);
    if (!grouped && !unbroken) return;
    if (!grouped) {
        /* only an 18-character cn_id (17 digits first) or an IBAN (two letters and two digits first) can
           stand on the two runs, read below; else nothing */
        Py_ssize_t v0 = e - (Py_ssize_t)run1;
        int maybe = 0;
        if (run1 + run2 == 18) {
            maybe = 1;
            for (Py_ssize_t k = 0; maybe && k < 17; k++) {
                Py_ssize_t at = k < (Py_ssize_t)run1 ? v0 + k : b0 + (k - (Py_ssize_t)run1);
                maybe = is_digit(text_cp(kind, data, at));
            }
        }
        if (!maybe && run1 >= 4)
            maybe = is_alpha_ascii(text_cp(kind, data, v0)) && is_alpha_ascii(text_cp(kind, data, v0 + 1)) &&
                    is_digit(text_cp(kind, data, v0 + 2)) && is_digit(text_cp(kind, data, v0 + 3));
        if (!maybe) return;
    }
    if (!unbroken) {
        if (run1 > WRAP_GROUP_MAX || run2 > WRAP_GROUP_MAX) return;
        Py_ssize_t p = e - (Py_ssize_t)run1, q = b0 + (Py_ssize_t)run2;
        while (p > a0 && e - (Py_ssize_t)run1 - p < 6 && is_sep_char(text_cp(kind, data, p - 1))) p--;
        while (q < n && q - b0 - (Py_ssize_t)run2 < 6 && is_sep_char(text_cp(kind, data, q))) q++;
        int before = p < e - (Py_ssize_t)run1 && p > a0 && is_alnum_ascii(text_cp(kind, data, p - 1));
        int after = q > b0 + (Py_ssize_t)run2 && q < n && is_alnum_ascii(text_cp(kind, data, q));
        if (!before && !after) return;
    }
    /* the windows (extract._wrap_windows) */
    Py_ssize_t ws = e - a0 > WRAP_WINDOW ? e - WRAP_WINDOW : a0;
    if (ws > a0 && is_alnum_ascii(text_cp(kind, data, ws - 1)) && is_alnum_ascii(text_cp(kind, data, ws))) {
        while (ws < e && is_alnum_ascii(text_cp(kind, data, ws))) ws++;
        if (ws >= e) return;
        ws++; /* after the first other character */
    }
    cp_t J[2 * WRAP_WINDOW + 8], B[WRAP_WINDOW + 1];
    size_t an = 0, bn = 0;
    for (Py_ssize_t i = ws; i < e; i++) J[an++] = text_cp(kind, data, i);
    Py_ssize_t be = b0;
    while (be < n && be - b0 < WRAP_WINDOW) {
        cp_t c = text_cp(kind, data, be);
        if (c == '\n') break;
        B[bn++] = c;
        be++;
    }
    if (bn == WRAP_WINDOW && be < n && is_alnum_ascii(B[bn - 1]) && is_alnum_ascii(text_cp(kind, data, be))) {
        size_t k = bn;
        while (k > 0 && is_alnum_ascii(B[k - 1])) k--;
        if (k == 0) return;
        bn = k - 1; /* before the last other character */
    }
    size_t ls = an; /* the last run of the first window, the first run of the second */
    while (ls > 0 && is_alnum_ascii(J[ls - 1])) ls--;
    size_t fe = 0;
    while (fe < bn && is_alnum_ascii(B[fe])) fe++;
    if (ls == an || fe == 0) return;
    if (an - ls <= WRAP_GROUP_MAX && fe <= WRAP_GROUP_MAX) {
        size_t s1 = 0, s1n = 0, s2 = 0, s2n = 0; /* the separators before the last group, after the first */
        size_t p = ls;
        while (p > 0 && is_sep_char(J[p - 1])) p--;
        if (p < ls && p > 0 && is_alnum_ascii(J[p - 1]) && valid_separator(J + p, ls - p)) s1 = p, s1n = ls - p;
        size_t q = fe;
        while (q < bn && is_sep_char(B[q])) q++;
        if (q > fe && q < bn && is_alnum_ascii(B[q]) && valid_separator(B + fe, q - fe)) s2 = fe, s2n = q - fe;
        cp_t seps[2][5];
        size_t sepn[2];
        int ns = 0;
        if (s1n) {
            memcpy(seps[ns], J + s1, s1n * sizeof(cp_t));
            sepn[ns++] = s1n;
        }
        if (s2n && !(ns && s1n == s2n && memcmp(seps[0], B + s2, s2n * sizeof(cp_t)) == 0)) {
            memcpy(seps[ns], B + s2, s2n * sizeof(cp_t));
            sepn[ns++] = s2n;
        }
        for (int k = 0; k < ns && !sc->error; k++) {
            memcpy(J + an, seps[k], sepn[k] * sizeof(cp_t));
            memcpy(J + an + sepn[k], B, bn * sizeof(cp_t));
            scan_grouped(sc, J, NULL, an + sepn[k] + bn, an, an + sepn[k]);
        }
        if (sc->error) return;
    }
    /* unbroken: an 18-character cn_id, or an IBAN with its country and check digits on the first line */
    size_t r1 = an - ls, len = r1 + fe;
    cp_t v[WRAP_WINDOW * 2], raw[WRAP_WINDOW * 2 + 1];
    memcpy(v, J + ls, r1 * sizeof(cp_t));
    memcpy(v + r1, B, fe * sizeof(cp_t));
    memcpy(raw, J + ls, r1 * sizeof(cp_t));
    raw[r1] = '\n';
    memcpy(raw + r1 + 1, B, fe * sizeof(cp_t));
    cbuf c;
    if (len == 18 && all_digits(v, r1) && all_digits(v, 17) && (is_digit(v[17]) || v[17] == 'X' || v[17] == 'x')) {
        if (canon_cn_id(v, len, &c) && add(sc, T_CN_ID, &c, raw, len + 1) < 0) return;
    } else if (r1 >= 4 && is_alpha_ascii(v[0]) && is_alpha_ascii(v[1]) && is_digit(v[2]) && is_digit(v[3])) {
        cp_t cc[2] = {v[0] & ~(cp_t)0x20, v[1] & ~(cp_t)0x20};
        if ((size_t)iban_length(cc, 2) == len && canon_iban(v, len, &c) && add(sc, T_IBAN, &c, raw, len + 1) < 0)
            return;
    }
}

/* ------------------------------------------------------------------ fields (extract._field) */
static int dob_hint(const cp_t *v, size_t n) {
    size_t d = 0;
    while (d < n && is_digit(v[d])) d++;
    if (d >= 1 && d <= 4) {
        size_t q = d;
        while (q < n && is_space(v[q])) q++;
        if (q < n && (v[q] == '-' || v[q] == '/' || v[q] == '.' || v[q] == 0x5E74)) return 1;
    }
    if (d == 8 && n == 8) return 1;
    if (d >= 1 && d <= 2) {
        size_t q = d;
        while (q < n && is_space(v[q])) q++;
        if (q < n && is_alpha_ascii(v[q])) return 1;
    }
    if (n >= 3) {
        static const char *m[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
        const cp_t f0 = fold_cp(v[0]), f1 = fold_cp(v[1]), f2 = fold_cp(v[2]);
        if (!is_lower(f0)) return 0; /* every month name starts with a letter */
        for (int k = 0; k < 12; k++)
            if (f0 == (cp_t)m[k][0] && f1 == (cp_t)m[k][1] && f2 == (cp_t)m[k][2]) return 1;
    }
    return 0;
}

/* core.canonical.name_from_folded on allowed characters */
static int canon_name(const cp_t *f, size_t n, cbuf *o) {
    if (n > 2 * FIELD_MAX_CHARS) return 0; /* a field folded (ß: two letters): tmp below holds no more */
    cp_t tmp[2 * FIELD_MAX_CHARS + 8];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        cp_t c = f[i];
        if (c == '\'' || c == '`') continue;
        if (is_lower(c) || is_ideo(c) || is_xletter(c)) tmp[m++] = c;
        else if (is_upper(c)) tmp[m++] = c; /* not reached: folded */
        else if (c < 0x80 ? (ASCII_CLASS[c] & A_NAMESEP) != 0 : is_punct(c)) tmp[m++] = ' ';
        else return 0;
    }
    o->n = 0;
    size_t i = 0;
    while (i < m) {
        while (i < m && tmp[i] == ' ') i++;
        if (i >= m) break;
        size_t s = i;
        while (i < m && tmp[i] != ' ') i++;
        if (o->n && !(is_cjk_wide(o->c[o->n - 1]) && is_cjk_wide(tmp[s]))) o->c[o->n++] = ' ';
        memcpy(o->c + o->n, tmp + s, (i - s) * sizeof(cp_t));
        o->n += i - s;
    }
    return o->n >= 2 && o->n <= 128;
}

static int canon_text(const cp_t *f, size_t n, cbuf *o) {
    if (n > 1024) return 0; /* o holds 1100 */
    o->n = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_space(f[i])) i++;
        if (i >= n) break;
        size_t s = i;
        while (i < n && !is_space(f[i])) i++;
        if (o->n) o->c[o->n++] = ' ';
        memcpy(o->c + o->n, f + s, (i - s) * sizeof(cp_t));
        o->n += i - s;
    }
    return o->n > 0;
}

static int canon_username(const cp_t *f, size_t n, cbuf *o) {
    while (n && is_space(f[0])) f++, n--;
    while (n && is_space(f[n - 1])) n--;
    if (n < 3 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (is_space(f[i])) return 0; /* ' ' or '\t' (not printable) */
    memcpy(o->c, f, n * sizeof(cp_t));
    o->n = n;
    return 1;
}

/* Returns the ASCII_CLASS bits of an ASCII value's characters, OR-ed (every bit for other values): tells
 * field() which of its own readings can find something. */
static unsigned generic(Scanner *sc, const cp_t *v, size_t n, int whole) {
    if (n > FIELD_MAX_CHARS) return 0xFF; /* field() never passes more: folded below holds no more */
    cp_t folded[2 * FIELD_MAX_CHARS + 8]; /* core.canonical.fold(v): ß makes two letters */
    size_t nf = 0;
    int ascii = 1, digit = 0, notname = 0, token = 1, letter = 0, alnum = 1;
    size_t spaces = 0, words = 0, run = 0, maxrun = 0;
    cp_t any = 0;
    unsigned orf = 0xFF, tabs_or_runs = 0, has_space = 0, prev_sp = 0;
    for (size_t i = 0; i < n; i++) any |= v[i];
    if (any < 0x80) { /* ASCII (the usual value): the same flags from one table lookup a character */
        unsigned andf = 0xFF, prevf = 0;
        orf = 0;
        for (size_t i = 0; i < n; i++) {
            cp_t c = v[i];
            unsigned f = ASCII_CLASS[c];
            orf |= f;
            andf &= f;
            folded[i] = c + ((f & A_UPPER) ? 32 : 0);
            spaces += c == ' ';
            tabs_or_runs |= c == '\t' || (f & prevf & A_SPACE);
            prevf = f;
        }
        nf = n;
        digit = (orf & A_DIGIT) != 0;
        notname = (orf & A_NOTNAME) != 0;
        token = (andf & A_TOKEN) != 0;
        letter = (orf & A_LETTER) != 0;
        alnum = (andf & A_ALNUM) != 0;
        has_space = (orf & A_SPACE) != 0;
    }
    for (size_t i = 0; i < n && any >= 0x80; i++) {
        cp_t c = v[i];
        unsigned sp = is_space(c);
        tabs_or_runs |= c == '\t' || (sp & prev_sp);
        has_space |= sp;
        prev_sp = sp;
        if (c < 0x80) {
            uint8_t f = ASCII_CLASS[c];
            folded[nf++] = is_upper(c) ? c + 32 : c;
            digit |= f & A_DIGIT;
            notname |= f & A_NOTNAME;
            token &= (f & A_TOKEN) != 0;
            letter |= f & A_LETTER;
            alnum &= (f & (A_LETTER | A_DIGIT)) != 0;
            spaces += c == ' ';
            if (!is_space(c) && (i == 0 || is_space(v[i - 1]))) words++;
            run = 0;
        } else {
            ascii = 0;
            token = alnum = 0;
            if (c == 0xDF) folded[nf++] = 's', c = 's';
            folded[nf++] = fold_cp(c);
            if (i == 0 || is_space(v[i - 1])) words++;
            run = is_cjk_wide(c) ? run + 1 : 0;
            if (run > maxrun) maxrun = run;
        }
    }
    if (ascii) words = spaces + 1; /* extract.py counts spaces for ASCII values */
    /* a value already found as an email, phone, card... is not also a username or text; every such raw
       holds a digit or an '@' (a not-a-name character), so the others need no lookup */
    if (!lineset_empty(&sc->typed_raws) && (digit || notname)) {
        int r = lineset_has(&sc->typed_raws, v, n);
        if (r) {
            if (r < 0) sc->error = 1;
            return orf;
        }
    }
    cbuf c;
    /* a value without spaces is its own text and username form (folded): no copy; one whose spaces stand
       alone (and not at its ends: field() strips those) its own text form */
    int plain = !has_space;
    int single = !tabs_or_runs && n && v[0] != ' ' && v[n - 1] != ' ';
    const uint32_t want = sc->types;
    if (whole && (want & (1u << T_TEXT)) && (digit || (words <= TEXT_MAX_WORDS && maxrun < 25))) {
        if (plain || single) {
            if (emit(sc, T_TEXT, folded, nf, v, n) < 0) return orf;
        } else if (canon_text(folded, nf, &c) && add(sc, T_TEXT, &c, v, n) < 0) {
            return orf;
        }
    }
    if (n >= 3 && n <= 64 && (want & (1u << T_USERNAME))) {
        if (plain) {
            if (nf >= 3 && nf <= 64 && emit(sc, T_USERNAME, folded, nf, v, n) < 0) return orf;
        } else if (canon_username(folded, nf, &c) && add(sc, T_USERNAME, &c, v, n) < 0) {
            return orf;
        }
    }
    if (!digit && words <= NAME_MAX_WORDS && maxrun < 9 && !notname) {
        if ((want & (1u << T_NAME)) && canon_name(folded, nf, &c) && add(sc, T_NAME, &c, v, n) < 0) return orf;
    } else {
        if (n >= 16 && n <= 512 && token && letter && digit && (want & (1u << T_API_KEY))) {
            memcpy(c.c, v, n * sizeof(cp_t));
            c.n = n;
            if (add(sc, T_API_KEY, &c, v, n) < 0) return orf;
        }
        if (n >= 6 && n <= 12 && digit && alnum && (want & (1u << T_PASSPORT))) {
            for (size_t i = 0; i < n; i++) c.c[i] = is_lower(v[i]) ? v[i] - 32 : v[i];
            c.n = n;
            if (add(sc, T_PASSPORT, &c, v, n) < 0) return orf;
        }
    }
    if (n >= 6 && n <= 40 && (want & (1u << T_DOB)) && dob_hint(v, n))
        for (int k = 0; k < sc->ndob; k++)
            if (canon_dob(v, n, sc->dob_mdy[k], &c) && add(sc, T_DOB, &c, v, n) < 0) return orf;
    return orf;
}

static int is_quote(cp_t c) { return c == '"' || c == '\'' || c == '`'; }

static void field(Scanner *sc, const cp_t *v, size_t n) {
    sc->work--;
    sc->fields++;
    while (n && is_space(v[0])) v++, n--;
    while (n && is_space(v[n - 1])) n--;
    while (n && is_quote(v[0])) v++, n--;
    while (n && is_quote(v[n - 1])) n--;
    while (n && is_space(v[0])) v++, n--;
    while (n && is_space(v[n - 1])) n--;
    if (!n || n > FIELD_MAX_CHARS) return;
    int r = lineset_add(&sc->seen_fields, v, n);
    if (r <= 0) {
        if (r < 0) sc->error = 1;
        return;
    }
    unsigned classes = generic(sc, v, n, 1); /* '=' is a not-a-name character, ' ' and '\t' spaces */
    if (sc->error) return;
    /* key=value: the value as a field of its own */
    size_t eq = classes & A_NOTNAME ? 0 : n;
    while (eq < n && v[eq] != '=') eq++;
    if (eq < n) {
        size_t ks = 0, ke = eq;
        while (ks < ke && is_space(v[ks])) ks++;
        while (ke > ks && is_space(v[ke - 1])) ke--;
        int key_ok = ke > ks && ke - ks <= 40;
        for (size_t i = ks; key_ok && i < ke; i++) key_ok = is_word(v[i]) || v[i] == '.' || v[i] == '-';
        if (key_ok) field(sc, v + eq + 1, n - eq - 1);
        if (sc->error) return;
    }
    /* the words of a short value */
    size_t words = 0;
    if (classes & A_SPACE) { /* else one word */
        int before = 1;
        for (size_t i = 0; i < n && words <= MAX_TOKENS_PER_FIELD; i++) {
            int sp = is_space(v[i]);
            words += (size_t)(!sp && before);
            before = sp;
        }
    }
    if (words > 1 && words <= MAX_TOKENS_PER_FIELD) {
        size_t i = 0;
        while (i < n) {
            while (i < n && is_space(v[i])) i++;
            if (i >= n) break;
            size_t s = i;
            while (i < n && !is_space(v[i])) i++;
            const cp_t *w = v + s;
            size_t wn = i - s;
            while (wn && is_quote(w[0])) w++, wn--;
            while (wn && is_quote(w[wn - 1])) wn--;
            if (!wn) continue;
            r = lineset_add(&sc->seen_fields, w, wn);
            if (r < 0) {
                sc->error = 1;
                return;
            }
            if (!r) continue;
            generic(sc, w, wn, 0);
            if (sc->error) return;
        }
    }
}

static inline int is_delim(cp_t c) {
    if (c < 0x80) return (LINE_CLASS[c] & L_DELIM) != 0;
    return c == 0xFF1A || c == 0xFF1B || c == 0xFF0C || c == 0x3001;
}

static void delimited(Scanner *sc, const cp_t *s, const uint8_t *cls, size_t n) {
    size_t start = 0, i = 0;
    while (i < n) {
        i = skip_to_delim(cls, i, n); /* the characters before it are no stop */
        if (i >= n) break;
        if (is_delim(s[i])) {
            if (sc->work <= 0) return;
            field(sc, s + start, i - start);
            i++;
            start = i;
        } else if (s[i] == ' ' && i + 1 < n && s[i + 1] == ' ') {
            if (sc->work <= 0) return;
            field(sc, s + start, i - start);
            while (i < n && s[i] == ' ') i++;
            start = i;
        } else {
            i++;
        }
        if (sc->error) return;
    }
    if (sc->work <= 0) return;
    field(sc, s + start, n - start);
}

static void sql_values(Scanner *sc, const cp_t *s, size_t n) {
    cp_t buf[SEGMENT_CHARS / 4];
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] != '\'') i++;
        if (i >= n) return;
        size_t q = i, j = q + 1, last_pair = 0, close = 0;
        int have_pair = 0, closed = 0;
        while (j < n) {
            cp_t c = s[j];
            if (c == '\\') {
                if (j + 1 < n) {
                    j += 2;
                    continue;
                }
                break;
            }
            if (c == '\'') {
                if (j + 1 < n && s[j + 1] == '\'') {
                    have_pair = 1;
                    last_pair = j;
                    j += 2;
                    continue;
                }
                closed = 1;
                close = j;
                break;
            }
            j++;
        }
        if (!closed) {
            if (!have_pair) {
                i = q + 1;
                continue;
            }
            close = last_pair;
        }
        /* group(1).replace("\\'", "'").replace("''", "'") */
        const cp_t *v = s + q + 1;
        size_t vn = close - q - 1, m = 0;
        cp_t *out = vn <= sizeof buf / sizeof *buf ? buf : NULL;
        if (out == NULL) {
            i = close + 1;
            sc->error = 2; /* too long for the port: defer the line */
            return;
        }
        for (size_t k = 0; k < vn; k++) {
            if (v[k] == '\\' && k + 1 < vn && v[k + 1] == '\'') {
                out[m++] = '\'';
                k++;
            } else {
                out[m++] = v[k];
            }
        }
        size_t m2 = 0;
        for (size_t k = 0; k < m; k++) {
            if (out[k] == '\'' && k + 1 < m && out[k + 1] == '\'') {
                out[m2++] = '\'';
                k++;
            } else {
                out[m2++] = out[k];
            }
        }
        if (sc->work <= 0) return;
        field(sc, out, m2);
        if (sc->error) return;
        i = close + 1;
    }
}

static inline int is_keych(cp_t c) { return is_word(c) || c == '.' || c == '-'; }
static inline int labelled_value_char(cp_t c) {
    return !(is_space(c) || c == '"' || c == '\'' || c == ',' || c == ';' || c == '|' || c == '&' || c == 0xFF1A ||
             c == ':' || c == '=');
}

static void labelled(Scanner *sc, const cp_t *s, const uint8_t *cls, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* only the key right before the next '=' or ':' (a space between them at most) can match: the runs
           of key characters before it are passed over without effect, as is a key that began before i */
        size_t q = skip_to(cls, i, n, K_LABEL);
        if (q >= n) return;
        size_t b;
        if (q > 0 && is_keych(s[q - 1])) b = q;
        else if (q > 1 && s[q - 1] == ' ' && is_keych(s[q - 2])) b = q - 1;
        else {
            i = q + 1;
            continue;
        }
        size_t a = b;
        while (a > i && is_keych(s[a - 1])) a--;
        if (a > 0 && is_keych(s[a - 1])) { /* the key began before i */
            i = q + 1;
            continue;
        }
        i = a;
        if (!is_keych(s[i]) || (i > 0 && is_keych(s[i - 1]))) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && is_keych(s[j])) j++;
        size_t end = 0, v = 0;
        if (j - i <= 40) {
            size_t k = j;
            if (k < n && s[k] == ' ') k++;
            if (k < n && (s[k] == '=' || s[k] == ':' || s[k] == 0xFF1A)) {
                k++;
                if (k < n && s[k] == ' ') k++;
                v = k;
                if (v < n && (s[v] == '"' || s[v] == '\'')) {
                    for (size_t q = v + 1; q < n && q <= v + 257; q++)
                        if (s[q] == s[v]) {
                            end = q + 1;
                            break;
                        }
                } else {
                    size_t q = v;
                    while (q < n && q - v < 256 && labelled_value_char(s[q])) q++;
                    if (q > v) end = q;
                }
            }
        }
        if (!end) {
            i = j;
            continue;
        }
        if (sc->work <= 0) return;
        field(sc, s + v, end - v);
        if (sc->error) return;
        i = end;
    }
}

/* ------------------------------------------------------------------ JSON lines */
/* The values of a flat JSON object line, tab-joined, as extract._json_values gives them (json.loads,
 * strings with "\n" made spaces, ints as str(int), true/false/null skipped). Anything else (arrays,
 * nesting, floats, duplicate or escaped keys, bad JSON) returns -1: extract.py reads that line. */
static inline int json_ws(cp_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int hexval(cp_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* a JSON string at s[*i] == '"'; unescaped into out (if not NULL); returns its length or -1 */
static long json_string(const cp_t *s, size_t n, size_t *i, cp_t *out, int *escaped) {
    size_t p = *i + 1;
    long m = 0;
    *escaped = 0;
    while (p < n) {
        cp_t c = s[p];
        if (c == '"') {
            *i = p + 1;
            return m;
        }
        if (c < 0x20) return -1;
        if (c == '\\') {
            *escaped = 1;
            if (p + 1 >= n) return -1;
            cp_t e = s[p + 1], v;
            p += 2;
            switch (e) {
                case '"': v = '"'; break;
                case '\\': v = '\\'; break;
                case '/': v = '/'; break;
                case 'b': v = 8; break;
                case 'f': v = 12; break;
                case 'n': v = '\n'; break;
                case 'r': v = '\r'; break;
                case 't': v = '\t'; break;
                case 'u': {
                    if (p + 4 > n) return -1;
                    int x = 0;
                    for (int k = 0; k < 4; k++) {
                        int h = hexval(s[p + k]);
                        if (h < 0) return -1;
                        x = x * 16 + h;
                    }
                    p += 4;
                    if (x >= 0xD800 && x <= 0xDFFF) return -1; /* surrogates: extract.py decides */
                    v = (cp_t)x;
                    break;
                }
                default: return -1;
            }
            if (out) out[m] = v == '\n' ? ' ' : v;
            m++;
            continue;
        }
        if (out) out[m] = c;
        m++;
        p++;
    }
    return -1;
}

static long json_flat(const cp_t *s, size_t n, cp_t *out) {
    size_t i = 0, keys[64][2];
    int nkeys = 0;
    long m = 0;
    while (i < n && json_ws(s[i])) i++;
    if (i >= n || s[i] != '{') return -1;
    i++;
    while (i < n && json_ws(s[i])) i++;
    if (i < n && s[i] == '}') {
        i++;
    } else {
        for (;;) {
            if (i >= n || s[i] != '"' || nkeys == 64) return -1;
            size_t ks = i;
            int esc;
            if (json_string(s, n, &i, NULL, &esc) < 0 || esc) return -1;
            for (int k = 0; k < nkeys; k++)
                if (keys[k][1] - keys[k][0] == i - ks && memcmp(s + keys[k][0], s + ks, (i - ks) * sizeof(cp_t)) == 0)
                    return -1;
            keys[nkeys][0] = ks;
            keys[nkeys][1] = i;
            nkeys++;
            while (i < n && json_ws(s[i])) i++;
            if (i >= n || s[i] != ':') return -1;
            i++;
            while (i < n && json_ws(s[i])) i++;
            if (i >= n) return -1;
            cp_t c = s[i];
            if (c == '"') {
                if (m) out[m++] = '\t';
                long len = json_string(s, n, &i, out + m, &esc);
                if (len < 0) return -1;
                m += len;
            } else if (c == '-' || is_digit(c)) {
                size_t st = i;
                if (c == '-') i++;
                if (i >= n || !is_digit(s[i])) return -1;
                if (s[i] == '0' && (i + 1 < n && is_digit(s[i + 1]))) return -1;
                while (i < n && is_digit(s[i])) i++;
                if (i - st > 4000) return -1; /* json.loads refuses ints past sys.get_int_max_str_digits() */
                if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) return -1; /* a float */
                if (i - st == 2 && s[st] == '-' && s[st + 1] == '0') return -1;     /* -0 */
                if (m) out[m++] = '\t';
                memcpy(out + m, s + st, (i - st) * sizeof(cp_t));
                m += (long)(i - st);
            } else if (c == 't' && i + 4 <= n && s[i + 1] == 'r' && s[i + 2] == 'u' && s[i + 3] == 'e') {
                i += 4;
            } else if (c == 'f' && i + 5 <= n && s[i + 1] == 'a' && s[i + 2] == 'l' && s[i + 3] == 's' &&
                       s[i + 4] == 'e') {
                i += 5;
            } else if (c == 'n' && i + 4 <= n && s[i + 1] == 'u' && s[i + 2] == 'l' && s[i + 3] == 'l') {
                i += 4;
            } else {
                return -1; /* nested, NaN/Infinity, junk */
            }
            while (i < n && json_ws(s[i])) i++;
            if (i < n && s[i] == ',') {
                i++;
                while (i < n && json_ws(s[i])) i++;
                continue;
            }
            if (i < n && s[i] == '}') {
                i++;
                break;
            }
            return -1;
        }
    }
    while (i < n && json_ws(s[i])) i++;
    return i == n ? m : -1;
}

/* ------------------------------------------------------------------ one line */
static int sql_hint(const cp_t *s, size_t n) {
    static const char *w1 = "insert", *w2 = "into";
    if (n > 512) n = 512;
    for (size_t i = 0; i + 6 <= n; i++) {
        if (i > 0 && is_word(s[i - 1])) continue;
        size_t k = 0;
        while (k < 6 && fold_cp(s[i + k]) == (cp_t)w1[k]) k++;
        if (k < 6) continue;
        size_t p = i + 6;
        size_t sp = p;
        while (p < n && is_space(s[p])) p++;
        if (p == sp || p + 4 > n) continue;
        k = 0;
        while (k < 4 && fold_cp(s[p + k]) == (cp_t)w2[k]) k++;
        if (k < 4) continue;
        if (p + 4 < n && is_word(s[p + 4])) continue;
        return 1;
    }
    return 0;
}

/* 0 done, 1 defer (Python reads it), -1 error. Full-width forms in s are narrowed in place. */
static int scan_line(Scanner *sc, cp_t *s, size_t n, int prepared) {
    if (!prepared)
        while (n && s[n - 1] == '\r') n--;
    if (n > SEGMENT_CHARS) return 1;
    int has_year = 0, wide_struct = 0, wide = 0;
    unsigned acc = 0, prev = 0;
    unsigned pair = 0;
    uint8_t *cls = sc->cls;
    for (size_t i = 0; i < n; i++) {
        cp_t c = s[i];
        if (c >= 0x80) {
            if (!allowed(c)) return 1;
            cp_t w = narrow_cp(c);
            if (!w) {
                has_year |= c == 0x5E74;
                wide_struct |= c == 0x3001;
                cls[i] = c == 0x3001 ? K_DELIM : 0;
                prev = 0;
                continue;
            }
            wide = 1;
            c = w; /* classified as the ASCII character it reads as */
        }
        unsigned f = LINE_KCLASS[c]; /* LINE_CLASS, and KCLASS in the high byte */
        cls[i] = (uint8_t)(f >> 8);
        acc |= f;
        pair |= f & prev;
        prev = f;
    }
    if (pair & L_SPACE) acc |= L_STRUCT; /* two spaces in a row are a delimiter */
    if (acc & L_BAD) return 1;
    memset(cls + n, 0, CLS_PAD);
    int has_at = (acc & L_AT) != 0, has_dot = (acc & L_DOT) != 0, quote = (acc & L_QUOTE) != 0;
    int has_label = (acc & L_LABEL) != 0, structure = (acc & L_STRUCT) != 0 || wide_struct;
    int sql = 0;
    if (!prepared) {
        if (!structure) return 0;
        size_t k = 0;
        while (k < n && is_wide_space(s[k])) k++;
        if (k < n && (s[k] == '{' || s[k] == '[')) {
            /* JSON (read as written): the values of a flat object here, anything else in Python */
            long m = s[k] == '{' ? json_flat(s + k, n - k, sc->json) : -1;
            return m < 0 ? 1 : scan_line(sc, sc->json, (size_t)m, 1);
        }
    }
    if (wide)
        for (size_t i = 0; i < n; i++)
            if (s[i] >= 0x80 && narrow_cp(s[i])) s[i] = narrow_cp(s[i]);
    if (!prepared) {
        size_t k = 0;
        while (k < n && is_space(s[k])) k++;
        sql = quote && (sql_hint(s, n) || (k < n && s[k] == '('));
    }
    lineset_clear(&sc->seen_fields);
    lineset_clear(&sc->typed_raws);
    sc->work = SEGMENT_WORK;
    sc->fields = 0;
    size_t pairs_before = sc->pairs.len;
    Py_ssize_t collected_before = sc->collect ? PyList_GET_SIZE(sc->collect) : 0;
    if (has_at && has_dot) scan_emails(sc, s, cls, n);
    if (!sc->error && has_year) scan_cjk_dates(sc, s, n);
    if (!sc->error) scan_ibans(sc, s, cls, n);
    if (!sc->error) scan_numbers(sc, s, cls, n);
    if (!sc->error) scan_grouped(sc, s, cls, n, 0, 0);
    if (!sc->error) {
        if (sql) sql_values(sc, s, n);
        else delimited(sc, s, cls, n);
    }
    if (!sc->error && has_label) labelled(sc, s, cls, n);
    if (sc->error == 1) return -1;
    if (sc->error == 2 || SEGMENT_WORK - sc->work >= DEFER_WORK || sc->fields > MAX_FIELDS) {
        sc->error = 0;
        sc->pairs.len = pairs_before; /* the digests stay: they are candidates of this line all the same */
        if (sc->collect && PyList_SetSlice(sc->collect, collected_before, PyList_GET_SIZE(sc->collect), NULL))
            return -1;
        return 1;
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ Python interface */
static PyObject *Scanner_scan(Scanner *sc, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"text", "prepared", "deadline", "lines", "starts", "types", NULL};
    PyObject *text, *wanted = NULL;
    Py_buffer starts = {0};
    int prepared = 0;
    double deadline = 0;
    unsigned int types = ALL_TYPES;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "U|pdOy*I", kwlist, &text, &prepared, &deadline, &wanted, &starts,
                                     &types))
        return NULL;
    if (types & ~ALL_TYPES) {
        if (starts.buf) PyBuffer_Release(&starts);
        PyErr_SetString(PyExc_ValueError, "types: a mask of bits 1 << i, i an index in TYPES");
        return NULL;
    }
    /* `starts` (from an earlier scan of the same text) lets a listing jump to its lines */
    const uint32_t *line_starts = starts.buf;
    size_t nstarts = starts.buf ? (size_t)starts.len / 4 : 0;
    /* with `lines` (sorted 0-based indexes): list those lines' candidates instead of hashing */
    PyObject *wseq = NULL;
    Py_ssize_t wpos = 0, wlen = 0;
    if (wanted && wanted != Py_None) {
        wseq = PySequence_Fast(wanted, "lines: a sequence of line indexes");
        if (!wseq) {
            if (starts.buf) PyBuffer_Release(&starts);
            return NULL;
        }
        wlen = PySequence_Fast_GET_SIZE(wseq);
        types = ALL_TYPES; /* a listing reads every type */
        sc->collect = PyList_New(0);
        if (!sc->collect) {
            Py_DECREF(wseq);
            if (starts.buf) PyBuffer_Release(&starts);
            return NULL;
        }
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    set_clear(&sc->digests);
    set_clear(&sc->skipped);
    sc->types = types;
    sc->digest_base = 0;
    sc->prev_ok = 0;
    if (sc->phones.count > PHONE_CACHE_MAX) {
        set_clear(&sc->phones);
        sc->phone_store.len = 0;
    }
    sc->digest_out.len = 0;
    sc->pairs.len = 0;
    sc->starts.len = 0;
    sc->error = 0;
    PyObject *deferred = PyList_New(0);
    if (!deferred) return NULL;
    cp_t *line = malloc((SEGMENT_CHARS + 2) * sizeof(cp_t));
    if (!line) {
        Py_DECREF(deferred);
        return PyErr_NoMemory();
    }
    int partial = 0;
    Py_ssize_t start = 0;
    uint32_t index = 0;
    while (start <= n) {
        if (wseq && nstarts) { /* jump to the next wanted line */
            while (wpos < wlen && PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(wseq, wpos)) < (Py_ssize_t)index) wpos++;
            if (wpos >= wlen) break;
            Py_ssize_t target = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(wseq, wpos));
            if (target > (Py_ssize_t)index && (size_t)target < nstarts && line_starts[target] <= (uint64_t)n) {
                index = (uint32_t)target;
                start = line_starts[target];
            }
        }
        if (!wseq) {
            uint32_t s32 = (uint32_t)start;
            if (buf_put(&sc->starts, &s32, sizeof s32)) {
                sc->error = 1;
                break;
            }
        }
        Py_ssize_t end;
        if (kind == PyUnicode_1BYTE_KIND) {
            const Py_UCS1 *d = (const Py_UCS1 *)data;
            const void *nl = memchr(d + start, '\n', (size_t)(n - start));
            end = nl ? (const Py_UCS1 *)nl - d : n;
        } else if (kind == PyUnicode_2BYTE_KIND) {
            end = newline_ucs2((const Py_UCS2 *)data, start, n);
        } else {
            const Py_UCS4 *d = (const Py_UCS4 *)data;
            end = start;
            while (end < n && d[end] != '\n') end++;
        }
        if ((index & 63) == 0 && deadline > 0 && now_s() > deadline) {
            partial = 1;
            break;
        }
        Py_ssize_t len = end - start;
        int r;
        if (wseq) {
            while (wpos < wlen && PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(wseq, wpos)) < (Py_ssize_t)index) wpos++;
            if (wpos >= wlen) break;
            if (PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(wseq, wpos)) != (Py_ssize_t)index) {
                start = end + 1;
                index++;
                continue;
            }
        }
        if (!prepared) { /* a value wrapped onto the next line stands on this one, before its own values */
            sc->line_index = index;
            scan_wrapped(sc, kind, data, start, end, n);
            if (sc->error) break;
        }
        if (len > SEGMENT_CHARS + 1) {
            r = 1;
        } else {
            if (kind == PyUnicode_1BYTE_KIND) {
                const Py_UCS1 *d = (const Py_UCS1 *)data + start;
                for (Py_ssize_t i = 0; i < len; i++) line[i] = d[i];
            } else if (kind == PyUnicode_2BYTE_KIND) {
                const Py_UCS2 *d = (const Py_UCS2 *)data + start;
                for (Py_ssize_t i = 0; i < len; i++) line[i] = d[i];
            } else {
                memcpy(line, (const Py_UCS4 *)data + start, (size_t)len * sizeof(cp_t));
            }
            sc->line_index = index;
            r = scan_line(sc, line, (size_t)len, prepared);
        }
        if (r < 0) break;
        if (sc->digests.count >= DIGEST_CHUNK && flush_entries(sc)) {
            sc->error = 1;
            break;
        }
        if (sc->skipped.count >= DIGEST_CHUNK) set_clear(&sc->skipped); /* between lines: as flush_entries */
        if (r == 1) {
            PyObject *k = PyLong_FromUnsignedLong(index);
            if (!k || PyList_Append(deferred, k)) {
                Py_XDECREF(k);
                sc->error = 1;
                break;
            }
            Py_DECREF(k);
        }
        start = end + 1;
        index++;
    }
    free(line);
    if (starts.buf) PyBuffer_Release(&starts);
    PyObject *collected = sc->collect;
    sc->collect = NULL;
    if (!collected && !sc->error && !PyErr_Occurred() && flush_entries(sc)) sc->error = 1;
    Py_XDECREF(wseq);
    if (sc->error || PyErr_Occurred()) {
        Py_DECREF(deferred);
        Py_XDECREF(collected);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return NULL;
    }
    if (collected) return Py_BuildValue("(NNi)", collected, deferred, partial);
    return Py_BuildValue("(y#y#Niy#)", sc->digest_out.p ? (const char *)sc->digest_out.p : "",
                         (Py_ssize_t)sc->digest_out.len, sc->pairs.p ? (const char *)sc->pairs.p : "",
                         (Py_ssize_t)sc->pairs.len, deferred, partial,
                         sc->starts.p ? (const char *)sc->starts.p : "", (Py_ssize_t)sc->starts.len);
}

static PyObject *Scanner_hmac(Scanner *sc, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE)) return NULL;
    uint8_t out[32];
    ls_hmac(&sc->key, b.buf, (size_t)b.len, out);
    PyBuffer_Release(&b);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static int Scanner_init(Scanner *sc, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"key", "regions", "dob_mdy", "cn_mobile", "phone_cb", "email_cb", NULL};
    Py_buffer key, table;
    PyObject *regions, *mdy, *phone_cb, *email_cb;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*OOy*OO", kwlist, &key, &regions, &mdy, &table, &phone_cb,
                                     &email_cb))
        return -1;
    int rc = -1;
    if (key.len > 64 || table.len != 10000) {
        PyErr_SetString(PyExc_ValueError, "key of at most 64 bytes and a 10000-byte mobile table expected");
        goto done;
    }
    ls_hmac_init(&sc->key, key.buf, (size_t)key.len);
    memcpy(sc->cn_mobile, table.buf, 10000);
    PyObject *seq = PySequence_Fast(regions, "regions: a sequence of (code, lengths) pairs");
    if (!seq) goto done;
    sc->nregions = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && sc->nregions < 32; i++) {
        const char *code;
        unsigned long lengths;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "sk", &code, &lengths) || strlen(code) != 2) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "region codes have two letters");
            goto done;
        }
        memcpy(sc->regions[sc->nregions].code, code, 3);
        Py_CLEAR(sc->regions[sc->nregions].a.keep);
        sc->regions[sc->nregions].a.present = 0;
        sc->regions[sc->nregions].lengths = (uint32_t)lengths;
        sc->nregions++;
    }
    Py_DECREF(seq);
    seq = PySequence_Fast(mdy, "dob_mdy: a sequence of booleans");
    if (!seq) goto done;
    sc->ndob = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && i < 2; i++)
        sc->dob_mdy[sc->ndob++] = PyObject_IsTrue(PySequence_Fast_GET_ITEM(seq, i));
    Py_DECREF(seq);
    Py_XSETREF(sc->phone_cb, Py_NewRef(phone_cb));
    Py_XSETREF(sc->email_cb, Py_NewRef(email_cb));
    if (!sc->digests.slots) {
        if (set_init(&sc->digests, 1 << 14) || set_init(&sc->skipped, 1 << 10) || set_init(&sc->phones, 1 << 12) ||
            set_init(&sc->seen_fields.big, 1 << 10) ||
            set_init(&sc->typed_raws.big, 1 << 8)) {
            PyErr_NoMemory();
            goto done;
        }
    }
    rc = 0;
done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&table);
    return rc;
}

static void Scanner_dealloc(Scanner *sc) {
    Py_XDECREF(sc->phone_cb);
    Py_XDECREF(sc->email_cb);
    for (int i = 0; i < 32; i++) Py_XDECREF(sc->regions[i].a.keep);
    set_free(&sc->digests);
    set_free(&sc->skipped);
    set_free(&sc->phones);
    buf_free(&sc->phone_store);
    set_free(&sc->seen_fields.big);
    set_free(&sc->typed_raws.big);
    free(sc->seen_fields.chars);
    free(sc->typed_raws.chars);
    buf_free(&sc->digest_out);
    buf_free(&sc->pairs);
    buf_free(&sc->tmp);
    buf_free(&sc->msg);
    buf_free(&sc->ekey);
    buf_free(&sc->starts);
    buf_free(&sc->msg2);
    buf_free(&sc->msg3);
    Py_TYPE(sc)->tp_free((PyObject *)sc);
}

static int dfa_from(PyObject *table, PyObject *accept, dfa_t *d) {
    if (!PyBytes_Check(table) || !PyBytes_Check(accept)) return -1;
    size_t states = (size_t)PyBytes_GET_SIZE(accept);
    if (states < 2 || (size_t)PyBytes_GET_SIZE(table) != states * 10 * 4) return -1;
    d->next = (const uint32_t *)PyBytes_AS_STRING(table);
    d->accept = (const uint8_t *)PyBytes_AS_STRING(accept);
    d->states = states;
    return 0;
}

static PyObject *Scanner_set_automata(Scanner *sc, PyObject *args) {
    PyObject *items;
    Py_buffer ccs, min_nsn = {0};
    if (!PyArg_ParseTuple(args, "Oy*|y*", &items, &ccs, &min_nsn)) return NULL;
    if (ccs.len != 1000 || (min_nsn.buf && min_nsn.len != 1000)) {
        PyBuffer_Release(&ccs);
        if (min_nsn.buf) PyBuffer_Release(&min_nsn);
        PyErr_SetString(PyExc_ValueError, "1000 calling-code flags (and lengths) expected");
        return NULL;
    }
    memcpy(sc->valid_cc, ccs.buf, 1000);
    memset(sc->min_nsn, 0, sizeof sc->min_nsn);
    if (min_nsn.buf) {
        memcpy(sc->min_nsn, min_nsn.buf, 1000);
        PyBuffer_Release(&min_nsn);
    }
    sc->have_cc = 1;
    PyBuffer_Release(&ccs);
    PyObject *seq = PySequence_Fast(items, "a sequence per region");
    if (!seq) return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && i < sc->nregions; i++) {
        automata_t *a = &sc->regions[i].a;
        Py_CLEAR(a->keep);
        a->present = 0;
        PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
        if (it == Py_None) continue;
        PyObject *tt, *ta, *nt, *na, *it_, *ia, *national = Py_None;
        int cc;
        if (!PyArg_ParseTuple(it, "iOOOOOO|O", &cc, &tt, &ta, &nt, &na, &it_, &ia, &national)) {
            Py_DECREF(seq);
            return NULL;
        }
        if (dfa_from(tt, ta, &a->types)) goto bad;
        a->has_npfp = nt != Py_None;
        if (a->has_npfp && dfa_from(nt, na, &a->npfp)) goto bad;
        a->has_idd = it_ != Py_None;
        if (a->has_idd && dfa_from(it_, ia, &a->idd)) goto bad;
        snprintf(a->cc, sizeof a->cc, "%u", (unsigned)cc % 1000u);
        a->has_national = national != Py_None;
        if (a->has_national) { /* (masks, length_masks, general_bit, type_bits) */
            PyObject *masks, *lengths;
            unsigned int general_bit, type_bits;
            if (!PyTuple_Check(national) ||
                !PyArg_ParseTuple(national, "OOII", &masks, &lengths, &general_bit, &type_bits)) {
                PyErr_Clear();
                goto bad;
            }
            if (!PyBytes_Check(masks) || (size_t)PyBytes_GET_SIZE(masks) != 2 * a->types.states ||
                !PyBytes_Check(lengths) || PyBytes_GET_SIZE(lengths) != 2 * (NSN_MAX + 1) || general_bit > 0xFFFF ||
                type_bits > 0xFFFF)
                goto bad;
            a->masks = (const uint8_t *)PyBytes_AS_STRING(masks);
            memcpy(a->lenmask, PyBytes_AS_STRING(lengths), sizeof a->lenmask);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            for (int j = 0; j <= NSN_MAX; j++) a->lenmask[j] = __builtin_bswap16(a->lenmask[j]);
#endif
            a->general_bit = (uint16_t)general_bit;
            a->type_bits = (uint16_t)type_bits;
        }
        a->keep = Py_NewRef(it);
        a->present = 1;
        continue;
    bad:
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "malformed automaton");
        return NULL;
    }
    Py_DECREF(seq);
    /* answers cached before this call were made without the automata: they stay valid (same results) */
    Py_RETURN_NONE;
}

static PyObject *Scanner_fail_emits(Scanner *sc, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    sc->fail_emits = n;
    Py_RETURN_NONE;
}

static PyObject *Scanner_stats(Scanner *sc, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("{slslsl}", "phones_ruled_out", sc->ruled_out, "phones_asked", sc->asked, "phones_decided",
                         sc->decided);
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Scanner_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(text, prepared=False, deadline=0.0, lines=None, starts=b'', types=all) -> (digests, pairs, deferred "
     "line indexes, partial, line starts); `types`, a mask of bits 1 << TYPES.index(name): only those types are "
     "hashed (a listing, with `lines`, lists every type)"},
    {"hmac", (PyCFunction)Scanner_hmac, METH_O, "hmac(message) -> the 32-byte HMAC-SHA256 with the key"},
    {"set_automata", (PyCFunction)Scanner_set_automata, METH_VARARGS,
     "set_automata([(cc, types, accept, npfp, accept, idd, accept[, (masks, length_masks, general_bit, type_bits)]) "
     "| None per region], valid_cc_flags, min_nsn_lengths=zeros)"},
    {"stats", (PyCFunction)Scanner_stats, METH_NOARGS, "counters of the phone shortcut"},
    {"_fail_emits", (PyCFunction)Scanner_fail_emits, METH_O,
     "_fail_emits(n): tests only, the n-th next candidate fails as an allocation would (MemoryError)"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pipelines.detection._scanner.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
    .tp_doc = "The native candidate scanner (see pipelines/detection/fastscan.py).",
};

/* Membership of 64-bit prefixes in a sorted array, with a directory on the top bits. */
/* Is x in the sorted array a (na values), searching only its bucket of the directory d (nd entries)? */
static inline int bucket_has(const uint64_t *a, size_t na, const uint32_t *d, size_t nd, int shift, uint64_t x) {
    size_t b = (size_t)(x >> shift);
    if (b + 1 >= nd) return 0;
    size_t lo = d[b], hi = d[b + 1];
    if (hi > na) hi = na;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo < na && a[lo] == x;
}

/* A blocked Bloom filter over the index (64-byte blocks, 4 bits per value, ~1 byte per value): most
 * candidates are not registered, and the filter, unlike the 8-bytes-per-value array, stays in the CPU
 * cache, so they are answered without a trip to memory. Values are uniform hash prefixes already. */
static inline size_t bloom_block(uint64_t x, size_t nblocks) {
    return (size_t)(((unsigned __int128)x * nblocks) >> 64);
}

static inline uint64_t bloom_bits(uint64_t x, int k) { return (x >> (9 * k)) & 511; }

static PyObject *bloom_build(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer arr;
    if (!PyArg_ParseTuple(args, "y*", &arr)) return NULL;
    size_t na = (size_t)arr.len / 8, nblocks = na / 64 + 1;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(nblocks * 64));
    if (out) {
        uint64_t *f = (uint64_t *)PyBytes_AS_STRING(out);
        memset(f, 0, nblocks * 64);
        const uint64_t *a = arr.buf;
        for (size_t i = 0; i < na; i++) {
            uint64_t *blk = f + 8 * bloom_block(a[i], nblocks);
            for (int k = 0; k < 4; k++) {
                uint64_t b = bloom_bits(a[i], k);
                blk[b >> 6] |= 1ULL << (b & 63);
            }
        }
    }
    PyBuffer_Release(&arr);
    return out;
}

static PyObject *contains_sorted(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer arr, dir, q, bl = {0};
    int shift;
    if (!PyArg_ParseTuple(args, "y*y*y*i|y*", &arr, &dir, &q, &shift, &bl)) return NULL;
    const uint64_t *filter = bl.buf;
    size_t nblocks = bl.buf ? (size_t)bl.len / 64 : 0;
    const uint64_t *a = arr.buf;
    const uint32_t *d = dir.buf;
    const uint64_t *qs = q.buf;
    size_t na = (size_t)arr.len / 8, nq = (size_t)q.len / 8, nd = (size_t)dir.len / 4;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)nq);
    if (out) {
        uint8_t *o = (uint8_t *)PyBytes_AS_STRING(out);
        enum { AHEAD = 32 };
        if (nblocks) { /* the filter first: only its positives are searched in the array */
            for (size_t i = 0; i < nq; i++) {
                if (i + 16 < nq) __builtin_prefetch(filter + 8 * bloom_block(qs[i + 16], nblocks));
                uint64_t x = qs[i];
                const uint64_t *blk = filter + 8 * bloom_block(x, nblocks);
                int maybe = 1;
                for (int k = 0; k < 4; k++) {
                    uint64_t b = bloom_bits(x, k);
                    maybe &= (int)((blk[b >> 6] >> (b & 63)) & 1);
                }
                o[i] = (uint8_t)maybe;
            }
            for (size_t i = 0; i < nq; i++)
                if (o[i]) o[i] = (uint8_t)bucket_has(a, na, d, nd, shift, qs[i]);
            nq = 0; /* done: skip the unfiltered loop below */
        }
        for (size_t i = 0; i < nq; i++) {
            /* memory latency bound: fetch a later query's directory entry, then its bucket (two
               lines: a bucket holds ~16 values), ahead of the search that needs them */
            if (i + AHEAD < nq) {
                size_t fb = (size_t)(qs[i + AHEAD] >> shift);
                if (fb + 1 < nd) __builtin_prefetch(&d[fb]);
            }
            if (i + AHEAD / 2 < nq) {
                size_t pb = (size_t)(qs[i + AHEAD / 2] >> shift);
                if (pb + 1 < nd && d[pb] < na) {
                    __builtin_prefetch(&a[d[pb]]);
                    if (d[pb] + 8 < na) __builtin_prefetch(&a[d[pb] + 8]);
                }
            }
            o[i] = (uint8_t)bucket_has(a, na, d, nd, shift, qs[i]);
        }
    }
    PyBuffer_Release(&arr);
    PyBuffer_Release(&dir);
    PyBuffer_Release(&q);
    if (bl.buf) PyBuffer_Release(&bl);
    return out;
}

typedef struct {
    uint64_t hi, lo;
} u128_t;

static uint64_t load_be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static int u128_cmp(const void *x, const void *y) {
    const u128_t *a = x, *b = y;
    if (a->hi != b->hi) return a->hi < b->hi ? -1 : 1;
    return a->lo < b->lo ? -1 : a->lo > b->lo;
}

/* Insertion sort of a short run (a bucket of about one record); qsort for a long one, which only a value
 * recurring many times makes (insertion would be quadratic in its copies). */
static void sort_run(u128_t *a, size_t n) {
    if (n > 32) {
        qsort(a, n, sizeof *a, u128_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        u128_t x = a[i];
        size_t j = i;
        while (j > 0 && (a[j - 1].hi > x.hi || (a[j - 1].hi == x.hi && a[j - 1].lo > x.lo))) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Sorted by (hi, lo). The his are uniform (keyed hashes): one counting pass on their top bits leaves
 * buckets of about one record, each then sorted on its own. */
static void sort_u128(u128_t *a, u128_t *tmp, size_t n) {
    int bits = 4; /* about one record per bucket */
    while (bits < 20 && ((size_t)1 << bits) < n) bits++;
    size_t buckets = (size_t)1 << bits;
    size_t *count = calloc(buckets + 1, sizeof *count);
    if (!count) { /* no memory for the buckets: still sorted */
        qsort(a, n, sizeof *a, u128_cmp);
        return;
    }
    const int shift = 64 - bits;
    for (size_t i = 0; i < n; i++) count[(a[i].hi >> shift) + 1]++;
    for (size_t b = 0; b < buckets; b++) count[b + 1] += count[b];
    for (size_t i = 0; i < n; i++) tmp[count[a[i].hi >> shift]++] = a[i];
    /* count[b] is now where bucket b ends */
    for (size_t b = 0, begin = 0; b < buckets; begin = count[b], b++) sort_run(tmp + begin, count[b] - begin);
    free(count);
    memcpy(a, tmp, n * sizeof *a);
}

/* The distinct digests, sorted. */
static PyObject *sort16(PyObject *Py_UNUSED(module), PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE)) return NULL;
    size_t n = (size_t)b.len / 16;
    u128_t *a = malloc((n + 1) * sizeof *a), *tmp = malloc((n + 1) * sizeof *tmp);
    if (!a || !tmp) {
        free(a);
        free(tmp);
        PyBuffer_Release(&b);
        return PyErr_NoMemory();
    }
    const uint8_t *p = b.buf;
    for (size_t i = 0; i < n; i++) {
        a[i].hi = load_be64(p + 16 * i);
        a[i].lo = load_be64(p + 16 * i + 8);
    }
    PyBuffer_Release(&b);
    sort_u128(a, tmp, n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || a[m - 1].hi != a[i].hi || a[m - 1].lo != a[i].lo) a[m++] = a[i];
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(16 * m));
    if (out) {
        uint8_t *o = (uint8_t *)PyBytes_AS_STRING(out);
        for (size_t i = 0; i < m; i++) {
            uint64_t hi = __builtin_bswap64(a[i].hi), lo = __builtin_bswap64(a[i].lo);
            memcpy(o + 16 * i, &hi, 8);
            memcpy(o + 16 * i + 8, &lo, 8);
        }
    }
    free(a);
    free(tmp);
    return out;
}

/* (key, posting) pairs of little-endian uint64s (core.pair_segments), sorted in place by key then
 * posting, copies kept: what numpy's lexsort of the two columns gives, in a fraction of its time and with
 * one scratch copy (a crawl's segment is tens of MB). */
static PyObject *sort_pairs(PyObject *Py_UNUSED(module), PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_WRITABLE)) return NULL;
    if (b.len % 16 || (uintptr_t)b.buf % _Alignof(u128_t)) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "sort_pairs: an aligned buffer of whole 16-byte pairs");
        return NULL;
    }
    size_t n = (size_t)b.len / 16;
    u128_t *a = b.buf, *tmp = malloc((n + 1) * sizeof *tmp);
    if (!tmp) {
        PyBuffer_Release(&b);
        return PyErr_NoMemory();
    }
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        a[i].hi = __builtin_bswap64(a[i].hi);
        a[i].lo = __builtin_bswap64(a[i].lo);
    }
#endif
    sort_u128(a, tmp, n); /* a pair is (hi, lo) = (key, posting) as the host reads it */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        a[i].hi = __builtin_bswap64(a[i].hi);
        a[i].lo = __builtin_bswap64(a[i].lo);
    }
#endif
    free(tmp);
    PyBuffer_Release(&b);
    Py_RETURN_NONE;
}

static PyObject *select_impl(PyObject *Py_UNUSED(module), PyObject *arg) {
    ls_sha_select(PyObject_IsTrue(arg));
    return PyUnicode_FromString(ls_sha_impl);
}

static PyMethodDef module_methods[] = {
    {"contains_sorted", contains_sorted, METH_VARARGS,
     "contains_sorted(array_u64, directory_u32, queries_u64, shift[, bloom]) -> bytes of 0/1"},
    {"bloom_build", bloom_build, METH_VARARGS, "bloom_build(array_u64) -> the blocked Bloom filter of the values"},
    {"sort16", sort16, METH_O, "sort16(digests) -> the distinct 16-byte records, sorted"},
    {"sort_pairs", sort_pairs, METH_O,
     "sort_pairs(pairs): the writable buffer of (key, posting) little-endian uint64 pairs sorted in place"},
    {"use_sha_ni", select_impl, METH_O, "use_sha_ni(allowed) -> the SHA-256 implementation in use"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_scanner",
    .m_doc = "Native candidate scanner.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__scanner(void) {
    ls_sha_select(1);
    init_classes();
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddStringConstant(m, "SCHEME", "hmac-sha256-v1");
    PyObject *names = PyTuple_New(T_COUNT); /* the order of scan()'s `types` bits */
    if (!names) {
        Py_DECREF(m);
        return NULL;
    }
    for (int t = 0; t < T_COUNT; t++) {
        PyObject *name = PyUnicode_FromString(TYPE_NAMES[t]);
        if (!name) {
            Py_DECREF(names);
            Py_DECREF(m);
            return NULL;
        }
        PyTuple_SET_ITEM(names, t, name);
    }
    if (PyModule_AddObject(m, "TYPES", names) < 0) {
        Py_DECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
