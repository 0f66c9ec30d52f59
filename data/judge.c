/* judge.c — AFINN-style lexicon scoring and Bradley–Terry labels. The rules are documented in
 * judge.h; this file is the tokeniser, the lexicon's hash table and the longest-match scorer. */
#include "judge.h"

#include "corpus.h" /* corpus_hash: the data module's one string hash */
#include "fileio.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define WORD_MAX 48                                /* bytes of one lowercased word (longer: never matches) */
#define KEY_MAX (JUDGE_MAX_PHRASE * (WORD_MAX + 1)) /* bytes of a phrase: words joined by spaces */

/* ---- words ----------------------------------------------------------------------------------- */

typedef struct {
    char s[WORD_MAX];
    int len;
    int hyphen;   /* has a joining hyphen */
    int too_long; /* longer than WORD_MAX - 1 bytes: kept as a word, matches nothing */
    int gap;      /* something other than white space separates it from the word before */
} word;

static int is_word_cp(utf8proc_int32_t cp)
{
    if (cp < 128) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    utf8proc_category_t k = utf8proc_category(cp);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO; /* letters, marks, numbers */
}

static int is_apostrophe(utf8proc_int32_t cp) { return cp == '\'' || cp == 0x2018 || cp == 0x2019; }

static int is_white(utf8proc_int32_t cp)
{
    if (cp < 128) return cp == ' ' || (cp >= '\t' && cp <= '\r');
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

/* the code point at s[i] (-1 for a byte that is not UTF-8) and its length */
static utf8proc_int32_t cp_at(const char *s, size_t n, size_t i, size_t *l)
{
    if ((unsigned char)s[i] < 128) {
        *l = 1;
        return (unsigned char)s[i];
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
    *l = r > 0 ? (size_t)r : 1;
    return r > 0 ? cp : -1;
}

static void word_add(word *w, utf8proc_int32_t cp)
{
    if (w->too_long) return;
    if (cp < 128) {
        if (w->len + 1 >= WORD_MAX) {
            w->too_long = 1;
            return;
        }
        w->s[w->len++] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        return;
    }
    if (w->len + 4 >= WORD_MAX) {
        w->too_long = 1;
        return;
    }
    w->len += (int)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)w->s + w->len);
}

/* The next word of s[*pos..n) into w (see judge.h: Tokenisation); 0 at the end. */
static int next_word(const char *s, size_t n, size_t *pos, word *w)
{
    w->len = w->hyphen = w->too_long = w->gap = 0;
    size_t i = *pos;
    int in = 0;
    while (i < n) {
        size_t l;
        utf8proc_int32_t cp = cp_at(s, n, i, &l);
        if (cp >= 0 && is_word_cp(cp)) {
            word_add(w, cp);
            in = 1;
        } else if (cp >= 0 && is_apostrophe(cp)) {
            /* deleted: neither part of a word nor a break */
        } else if (cp == '-' && in && i + 1 < n) {
            size_t l2;
            utf8proc_int32_t nx = cp_at(s, n, i + 1, &l2);
            if (!(nx >= 0 && is_word_cp(nx))) break;
            word_add(w, '-');
            w->hyphen = 1;
        } else if (in) {
            break; /* the separator is seen again by the next call, as that word's gap */
        } else if (!is_white(cp)) {
            w->gap = 1;
        }
        i += l;
    }
    *pos = i;
    return in;
}

/* ---- the lexicon ----------------------------------------------------------------------------- */

typedef struct {
    uint32_t off;   /* key in arena (NUL-terminated) */
    uint16_t len;
    uint8_t is_term;/* 0: only the first word of longer terms */
    uint8_t maxp;   /* longest term (in words) starting with this word, when it is one word */
    int val;
} entry;

struct judge {
    char *arena;
    size_t arena_len, arena_cap;
    entry *e;
    size_t ne, nterms;
    uint32_t *slot; /* entry index + 1; 0 empty */
    size_t mask;
};

static size_t slot_of(const judge *j, const char *k, size_t n)
{
    uint64_t h = corpus_hash(k, n);
    return (size_t)rng_u64(&h) & j->mask; /* one splitmix step spreads FNV's low bits */
}

static entry *lookup(const judge *j, const char *k, size_t n)
{
    for (size_t i = slot_of(j, k, n);; i = (i + 1) & j->mask) {
        uint32_t s = j->slot[i];
        if (!s) return NULL;
        entry *e = &j->e[s - 1];
        if (e->len == n && memcmp(j->arena + e->off, k, n) == 0) return e;
    }
}

/* the entry for k, created (not a term yet) when missing; NULL when out of memory */
static entry *insert(judge *j, const char *k, size_t n)
{
    size_t i = slot_of(j, k, n);
    for (;; i = (i + 1) & j->mask) {
        uint32_t s = j->slot[i];
        if (!s) break;
        entry *e = &j->e[s - 1];
        if (e->len == n && memcmp(j->arena + e->off, k, n) == 0) return e;
    }
    if (j->arena_len + n + 1 > j->arena_cap) {
        size_t cap = j->arena_cap ? 2 * j->arena_cap : 1 << 16;
        while (cap < j->arena_len + n + 1) cap *= 2;
        char *a = realloc(j->arena, cap);
        if (!a) return NULL;
        j->arena = a;
        j->arena_cap = cap;
    }
    memcpy(j->arena + j->arena_len, k, n);
    j->arena[j->arena_len + n] = 0;
    entry *e = &j->e[j->ne];
    *e = (entry){.off = (uint32_t)j->arena_len, .len = (uint16_t)n};
    j->arena_len += n + 1;
    j->slot[i] = (uint32_t)++j->ne;
    return e;
}

/* A term as the lexicon stores it: its words joined by single spaces. -1 when it has no word, too
 * many words or a word that is too long. */
static int canonical(const char *s, size_t n, char *key, size_t *klen, int *nwords, word *first)
{
    size_t pos = 0, k = 0;
    int nw = 0;
    word w;
    while (next_word(s, n, &pos, &w)) {
        if (w.too_long || nw == JUDGE_MAX_PHRASE) return -1;
        if (nw == 0) *first = w;
        if (nw++) key[k++] = ' ';
        memcpy(key + k, w.s, (size_t)w.len);
        k += (size_t)w.len;
    }
    *klen = k;
    *nwords = nw;
    return nw ? 0 : -1;
}

static int parse_valence(const char *s, size_t n, int *v)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == n) return -1;
    long x = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        x = 10 * x + (s[i] - '0');
        if (x > 1000) return -1;
    }
    *v = (int)(neg ? -x : x);
    return 0;
}

int judge_create_mem(judge **out, const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    *out = NULL;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    judge *j = calloc(1, sizeof *j);
    if (!j) return fio_fail(err, errlen, "out of memory");
    size_t cap = 16;
    while (cap < 4 * lines) cap *= 2; /* each line adds at most two entries: load <= 1/2 */
    j->mask = cap - 1;
    j->slot = calloc(cap, sizeof *j->slot);
    j->e = malloc(2 * lines * sizeof *j->e);
    if (!j->slot || !j->e) {
        judge_free(j);
        return fio_fail(err, errlen, "out of memory");
    }
    char sbuf[256];
    size_t ls = 0;
    long line = 0;
    while (ls < len) {
        line++;
        const char *nl = memchr(text + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - text) : len, end = le;
        if (end > ls && text[end - 1] == '\r') end--;
        const char *l = text + ls;
        size_t ln = end - ls;
        ls = le + 1;
        if (ln == 0) continue; /* blank line */
        const char *tab = memchr(l, '\t', ln);
        int v;
        if (!tab) {
            judge_free(j);
            return fio_fail(err, errlen, "%s:%ld: expected \"term<TAB>valence\"", name, line);
        }
        if (parse_valence(tab + 1, ln - (size_t)(tab + 1 - l), &v)) {
            judge_free(j);
            return fio_fail(err, errlen, "%s:%ld: the valence must be an integer in [-1000, 1000]", name, line);
        }
        char key[KEY_MAX], shown[64];
        size_t kl;
        int nw;
        word first;
        if (canonical(l, (size_t)(tab - l), key, &kl, &nw, &first)) {
            judge_free(j);
            snprintf(sbuf, sizeof sbuf, "%.*s", (int)(tab - l < 200 ? tab - l : 200), l);
            return fio_fail(err, errlen, "%s:%ld: term \"%s\" has no word, more than %d words, or a word over %d bytes",
                            name, line, fio_show(sbuf, shown, sizeof shown), JUDGE_MAX_PHRASE, WORD_MAX - 1);
        }
        entry *e = insert(j, key, kl);
        entry *f = e && nw > 1 ? insert(j, first.s, (size_t)first.len) : NULL;
        if (!e || (nw > 1 && !f)) {
            judge_free(j);
            return fio_fail(err, errlen, "out of memory");
        }
        if (e->is_term) {
            judge_free(j);
            snprintf(sbuf, sizeof sbuf, "%.*s", (int)kl, key);
            return fio_fail(err, errlen, "%s:%ld: term \"%s\" is already in the lexicon (terms are compared lowercased, without apostrophes)",
                            name, line, fio_show(sbuf, shown, sizeof shown));
        }
        e->is_term = 1;
        e->val = v;
        if (nw == 1 && e->maxp < 1) e->maxp = 1;
        if (f && f->maxp < nw) f->maxp = (uint8_t)nw;
        j->nterms++;
    }
    if (j->nterms == 0) {
        judge_free(j);
        return fio_fail(err, errlen, "%s: no terms", name);
    }
    *out = j;
    return 0;
}

int judge_create(judge **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    size_t len;
    char *text = fio_read_all(path, &len, err, errlen);
    if (!text) return -1;
    int rc = judge_create_mem(out, text, len, path, err, errlen);
    free(text);
    return rc;
}

void judge_free(judge *j)
{
    if (!j) return;
    free(j->arena);
    free(j->e);
    free(j->slot);
    free(j);
}

size_t judge_size(const judge *j) { return j->nterms; }

int judge_valence(const judge *j, const char *term, int *found)
{
    char key[KEY_MAX];
    size_t kl;
    int nw;
    word first;
    entry *e = canonical(term, strlen(term), key, &kl, &nw, &first) ? NULL : lookup(j, key, kl);
    int ok = e && e->is_term;
    if (found) *found = ok;
    return ok ? e->val : 0;
}

/* ---- scoring ----------------------------------------------------------------------------------- */

static int is_negator(const word *w)
{
    static const char *const neg[] = {"cant",  "dont",  "doesnt", "not",    "non",     "wont",     "isnt",
                                      "arent", "wasnt", "werent", "didnt",  "hasnt",   "havent",   "hadnt",
                                      "couldnt", "wouldnt", "shouldnt", "aint", "cannot", "never"};
    if (w->too_long || w->len > 8) return 0;
    for (size_t i = 0; i < sizeof neg / sizeof *neg; i++)
        if ((size_t)w->len == strlen(neg[i]) && memcmp(w->s, neg[i], (size_t)w->len) == 0) return 1;
    return 0;
}

static void count_hit(const judge *j, const entry *e, int negated, judge_result *r, judge_hit_fn hit, void *ud)
{
    int v = negated ? -e->val : e->val;
    r->score += v;
    r->pos += v > 0;
    r->neg += v < 0;
    if (hit) hit(ud, j->arena + e->off, v, negated);
}

void judge_score_explain(const judge *j, const char *text, size_t len, judge_result *r, judge_hit_fn hit, void *ud)
{
    memset(r, 0, sizeof *r);
    word win[JUDGE_MAX_PHRASE], prev = {0};
    int h = 0, k = 0, have_prev = 0, more = 1;
    size_t pos = 0;
    char key[KEY_MAX];
    for (;;) {
        while (more && k < JUDGE_MAX_PHRASE) { /* fill the look-ahead window */
            if (!next_word(text, len, &pos, &win[(h + k) % JUDGE_MAX_PHRASE])) {
                more = 0;
                break;
            }
            k++;
            r->words++;
        }
        if (k == 0) break;
        const word *w0 = &win[h];
        const entry *e = w0->too_long ? NULL : lookup(j, w0->s, (size_t)w0->len), *m = NULL;
        int used = 1;
        /* longest phrase first */
        for (int p = e ? (e->maxp < k ? e->maxp : k) : 0; p >= 2 && !m; p--) {
            size_t kl = 0;
            int ok = 1;
            for (int i = 0; i < p && ok; i++) {
                const word *w = &win[(h + i) % JUDGE_MAX_PHRASE];
                ok = !w->too_long && (i == 0 || !w->gap);
                if (i) key[kl++] = ' ';
                memcpy(key + kl, w->s, (size_t)w->len);
                kl += (size_t)w->len;
            }
            const entry *pe = ok ? lookup(j, key, kl) : NULL;
            if (pe && pe->is_term) {
                m = pe;
                used = p;
            }
        }
        if (!m && e && e->is_term) m = e;
        /* checked only when something matched: most words match nothing */
        int negated = (m || w0->hyphen) && have_prev && !w0->gap && is_negator(&prev);
        if (m) {
            count_hit(j, m, negated, r, hit, ud);
        } else if (w0->hyphen && !w0->too_long) { /* an unknown compound: its parts */
            for (int a = 0; a < w0->len;) {
                int b = a;
                while (b < w0->len && w0->s[b] != '-') b++;
                const entry *pe = lookup(j, w0->s + a, (size_t)(b - a));
                if (pe && pe->is_term) count_hit(j, pe, negated, r, hit, ud);
                a = b + 1;
            }
        }
        prev = win[(h + used - 1) % JUDGE_MAX_PHRASE];
        have_prev = 1;
        h = (h + used) % JUDGE_MAX_PHRASE;
        k -= used;
    }
    r->norm = judge_norm(r->score, r->words);
}

void judge_score(const judge *j, const char *text, size_t len, judge_result *r)
{
    judge_score_explain(j, text, len, r, NULL, NULL);
}

double judge_norm(int score, int words)
{
    return (double)score / (double)(words > JUDGE_NORM_MIN_WORDS ? words : JUDGE_NORM_MIN_WORDS);
}

/* ---- Bradley–Terry labels ------------------------------------------------------------------- */

double judge_bt_prob(double s_a, double s_b, double tau)
{
    if (!(tau > 0)) return s_a > s_b ? 1.0 : s_a < s_b ? 0.0 : 0.5;
    return 1.0 / (1.0 + exp(-(s_a - s_b) / tau));
}

int judge_bt_label(double s_a, double s_b, double tau, uint64_t *rng)
{
    return rng_unit(rng) < judge_bt_prob(s_a, s_b, tau);
}

const char *judge_default_lexicon(char *buf, size_t n)
{
    const char *c = getenv("RLHF_CACHE");
    if (c && *c)
        snprintf(buf, n, "%s/afinn/afinn-165.tsv", c);
    else
        snprintf(buf, n, "%s/.cache/rlhf.c/afinn/afinn-165.tsv", getenv("HOME") ? getenv("HOME") : "");
    return buf;
}
