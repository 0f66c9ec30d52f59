/* fuzz_common.h — what the libFuzzer targets share: property checks that abort() with a message,
 * and an independent reference encoder (GPT-2's pattern and tiktoken's merge loop written the
 * slow, obvious way) to compare tok_encode against.
 *
 * Why a reference: decode(encode(x)) == x holds for any split of x into byte tokens, so the round
 * trip alone cannot catch a wrong pre-token boundary or a wrong merge order; the reference can.
 * It shares no code with tokenizer/ except utf8proc (character categories) and the public API
 * (token bytes and the merge list). Header-only: each target is one translation unit.
 */
#ifndef RLHF_FUZZ_COMMON_H
#define RLHF_FUZZ_COMMON_H

#include "tok.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <utf8proc.h>

/* each target uses only some of these */
#define FZ_FN static __attribute__((unused))

/* ---- failing ------------------------------------------------------------------------------------- */

FZ_FN void fz_dump(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < n && i < 512; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7F) fputc(c, stderr);
        else fprintf(stderr, "\\x%02X\"\"", c);
    }
    fprintf(stderr, "%s\"\n", n > 512 ? "..." : "");
}

FZ_FN void fz_dump_ids(const char *what, const tok_ids *v)
{
    fprintf(stderr, "  %s (%zu ids):", what, v->n);
    for (size_t i = 0; i < v->n && i < 128; i++) fprintf(stderr, " %d", v->ids[i]);
    fprintf(stderr, "%s\n", v->n > 128 ? " ..." : "");
}

static void fz_cleanup(void);

#define FZ_FAIL(...)                                                                                  \
    do {                                                                                              \
        fprintf(stderr, "\nFUZZ PROPERTY VIOLATED at %s:%d: ", __FILE__, __LINE__);                   \
        fprintf(stderr, __VA_ARGS__);                                                                 \
        fprintf(stderr, "\n");                                                                        \
        fz_cleanup();                                                                                 \
        abort();                                                                                      \
    } while (0)

#define FZ_CHECK(cond, ...)                                                                           \
    do {                                                                                              \
        if (!(cond)) FZ_FAIL(__VA_ARGS__);                                                            \
    } while (0)

/* An error buffer is pre-filled with this byte so an error that was never written is caught. */
#define FZ_ERR_FILL 0xA5

FZ_FN void fz_err_reset(char *err) { memset(err, FZ_ERR_FILL, TOK_ERR_LEN); }

/* A failing call's err: NUL-terminated within TOK_ERR_LEN, non-empty, one line. */
FZ_FN void fz_check_err(const char *err, const char *call)
{
    const char *nul = memchr(err, 0, TOK_ERR_LEN);
    FZ_CHECK(nul, "%s failed and err is not NUL-terminated within TOK_ERR_LEN (%d)", call, TOK_ERR_LEN);
    FZ_CHECK(nul > err, "%s failed with an empty error message", call);
    /* one printable line: no control characters at all (a key with "\n" once broke this) */
    for (const char *p = err; p < nul; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) {
            fz_dump("error message", (const uint8_t *)err, (size_t)(nul - err));
            FZ_FAIL("%s failed with a control character (0x%02x) in its error message", call, (unsigned char)*p);
        }
}

/* ---- ids and bytes ------------------------------------------------------------------------------- */

FZ_FN int fz_ids_equal(const tok_ids *a, const tok_ids *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->ids, b->ids, a->n * sizeof *a->ids) == 0);
}

FZ_FN void fz_check_ids_equal(const tok_ids *want, const tok_ids *got, const char *want_name,
                               const char *got_name, const uint8_t *text, size_t len)
{
    if (fz_ids_equal(want, got)) return;
    size_t i = 0;
    while (i < want->n && i < got->n && want->ids[i] == got->ids[i]) i++;
    fz_dump("text", text, len);
    fz_dump_ids(want_name, want);
    fz_dump_ids(got_name, got);
    FZ_FAIL("%s != %s (first difference at index %zu)", got_name, want_name, i);
}

/* every id in range, and decoding gives the text back byte for byte */
FZ_FN void fz_check_roundtrip(const tok_tokenizer *t, const tok_ids *ids, const uint8_t *text, size_t len,
                               const char *what)
{
    size_t nv = tok_vocab_size(t);
    for (size_t i = 0; i < ids->n; i++)
        FZ_CHECK(ids->ids[i] >= 0 && (size_t)ids->ids[i] < nv, "%s: id %d at index %zu outside 0..%zu", what,
                 ids->ids[i], i, nv - 1);
    tok_bytes out = {0};
    char err[TOK_ERR_LEN];
    fz_err_reset(err);
    if (tok_decode(t, ids->ids, ids->n, &out, err, sizeof err)) {
        fz_check_err(err, "tok_decode");
        FZ_FAIL("%s: tok_decode failed on ids from tok_encode: %s", what, err);
    }
    if (out.n != len || (len && memcmp(out.data, text, len))) {
        size_t i = 0;
        while (i < len && i < out.n && out.data[i] == text[i]) i++;
        fz_dump("text", text, len);
        fz_dump("decoded", out.data, out.n);
        fz_dump_ids("ids", ids);
        FZ_FAIL("%s: decode(encode(text)) != text (first difference at byte %zu)", what, i);
    }
    tok_bytes_free(&out);
}

/* ---- reference pre-tokenizer --------------------------------------------------------------------- *
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * tried alternative by alternative, as a backtracking regex engine does. A byte that does not start
 * a well-formed UTF-8 sequence is one character of class "other" (tok.h). */

enum { FZ_OTHER, FZ_LETTER, FZ_NUMBER, FZ_SPACE };

FZ_FN int fz_white_space(int32_t c)
{
    /* PropList.txt White_Space */
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* strict UTF-8 (Unicode table 3-7): length of the sequence at s[i], or 0 when ill-formed */
FZ_FN size_t fz_utf8(const uint8_t *s, size_t n, size_t i, int32_t *cp)
{
    uint8_t b = s[i];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t l;
    uint8_t lo = 0x80, hi = 0xBF;
    int32_t c;
    if (b >= 0xC2 && b <= 0xDF) l = 2, c = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) {
        l = 3, c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        l = 4, c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (i + l > n) return 0;
    for (size_t k = 1; k < l; k++) {
        uint8_t x = s[i + k];
        if (x < (k == 1 ? lo : 0x80) || x > (k == 1 ? hi : 0xBF)) return 0;
        c = (c << 6) | (x & 0x3F);
    }
    *cp = c;
    return l;
}

FZ_FN int fz_class(const uint8_t *s, size_t n, size_t i, size_t *len)
{
    int32_t c;
    size_t l = fz_utf8(s, n, i, &c);
    if (!l) {
        *len = 1;
        return FZ_OTHER;
    }
    *len = l;
    if (fz_white_space(c)) return FZ_SPACE;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return FZ_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return FZ_NUMBER;
    default: return FZ_OTHER;
    }
}

/* end of the match of " ?X+" at i for class X, or 0 when it does not match */
FZ_FN size_t fz_opt_space_run(const uint8_t *s, size_t n, size_t i, int cls)
{
    size_t l;
    for (int with_space = 1; with_space >= 0; with_space--) {
        size_t j = i;
        if (with_space) {
            if (s[j] != ' ') continue;
            j++;
        }
        if (j >= n || fz_class(s, n, j, &l) != cls) continue;
        j += l;
        while (j < n && fz_class(s, n, j, &l) == cls) j += l;
        return j;
    }
    return 0;
}

FZ_FN size_t fz_ref_pretok_next(const uint8_t *s, size_t n, size_t i)
{
    static const char *const contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t k = 0; k < sizeof contr / sizeof *contr; k++) {
        size_t cl = strlen(contr[k]);
        if (i + cl <= n && memcmp(s + i, contr[k], cl) == 0) return i + cl;
    }
    static const int classes[] = {FZ_LETTER, FZ_NUMBER, FZ_OTHER};
    for (size_t k = 0; k < 3; k++) {
        size_t e = fz_opt_space_run(s, n, i, classes[k]);
        if (e) return e;
    }
    /* \s+(?!\S): the greedy run, then give characters back until the look-ahead holds. The run is
     * maximal, so its full length holds only at the end of the text; one character shorter holds
     * whenever it is non-empty (the character given back is white space). Else \s+: the run. */
    size_t j = i, prev = i, nchars = 0, l;
    while (j < n && fz_class(s, n, j, &l) == FZ_SPACE) {
        prev = j;
        j += l;
        nchars++;
    }
    FZ_CHECK(nchars > 0, "reference pre-tokenizer: no alternative matches at byte %zu", i);
    if (j == n) return j;
    if (nchars >= 2) return prev;
    return j;
}

/* ---- reference BPE -------------------------------------------------------------------------------- */

typedef struct {
    const tok_tokenizer *t;
    int32_t *tab; /* bytes -> id, open addressing, -1 empty; the special token is not in it */
    size_t mask;
    int32_t *rank; /* per id: index of the first merge giving it, or INT_MAX */
    int32_t eot;
} fz_ref;

FZ_FN uint64_t fz_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

FZ_FN int32_t fz_ref_lookup(const fz_ref *r, const uint8_t *p, size_t n)
{
    for (size_t i = (size_t)fz_hash(p, n) & r->mask;; i = (i + 1) & r->mask) {
        int32_t id = r->tab[i];
        if (id < 0) return -1;
        size_t l;
        const uint8_t *q = tok_token_bytes(r->t, id, &l);
        if (l == n && memcmp(q, p, n) == 0) return id;
    }
}

FZ_FN void fz_ref_init(fz_ref *r, const tok_tokenizer *t)
{
    size_t nv = tok_vocab_size(t);
    r->t = t;
    r->eot = tok_eot_id(t);
    r->mask = 16;
    while (r->mask < 2 * nv + 1) r->mask <<= 1;
    r->tab = malloc(r->mask * sizeof *r->tab);
    r->rank = malloc((nv ? nv : 1) * sizeof *r->rank);
    FZ_CHECK(r->tab && r->rank, "out of memory");
    r->mask--;
    memset(r->tab, 0xff, (r->mask + 1) * sizeof *r->tab);
    for (size_t id = 0; id < nv; id++) {
        r->rank[id] = INT_MAX;
        if ((int32_t)id == r->eot) continue;
        size_t l;
        const uint8_t *p = tok_token_bytes(t, (int32_t)id, &l);
        FZ_CHECK(p && l > 0, "token %zu has no bytes", id);
        FZ_CHECK(fz_ref_lookup(r, p, l) < 0, "two ids spell the same bytes (second: %zu)", id);
        size_t i = (size_t)fz_hash(p, l) & r->mask;
        while (r->tab[i] >= 0) i = (i + 1) & r->mask;
        r->tab[i] = (int32_t)id;
    }
    size_t nm = tok_merge_count(t);
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (size_t m = 0; m < nm; m++) {
        int32_t a, b;
        FZ_CHECK(tok_merge(t, m, &a, &b) == 0, "tok_merge(%zu) failed below tok_merge_count %zu", m, nm);
        size_t la, lb;
        const uint8_t *pa = tok_token_bytes(t, a, &la), *pb = tok_token_bytes(t, b, &lb);
        FZ_CHECK(pa && pb, "merge %zu names ids out of range (%d %d)", m, a, b);
        if (la + lb > cap) {
            cap = 2 * (la + lb);
            buf = realloc(buf, cap);
            FZ_CHECK(buf, "out of memory");
        }
        memcpy(buf, pa, la);
        memcpy(buf + la, pb, lb);
        int32_t z = fz_ref_lookup(r, buf, la + lb);
        FZ_CHECK(z >= 0, "merge %zu: result is not a token, yet the tokenizer loaded", m);
        if (r->rank[z] == INT_MAX) r->rank[z] = (int32_t)m;
    }
    free(buf);
    FZ_CHECK(tok_merge(t, nm, &(int32_t){0}, &(int32_t){0}) == -1, "tok_merge(count) did not fail");
}

FZ_FN void fz_ref_free(fz_ref *r)
{
    free(r->tab);
    free(r->rank);
}

/* rank of the concatenation p[0..n) (INT_MAX when it is not a merged token) */
FZ_FN int32_t fz_ref_rank(const fz_ref *r, const uint8_t *p, size_t n, int32_t *id)
{
    *id = fz_ref_lookup(r, p, n);
    return *id < 0 ? INT_MAX : r->rank[*id];
}

FZ_FN void fz_push(tok_ids *v, int32_t id) { FZ_CHECK(tok_ids_push(v, id) == 0, "out of memory"); }

/* tiktoken's _byte_pair_merge: parts are byte ranges; merge the adjacent pair whose concatenation
 * has the lowest rank, leftmost first, until none has a rank */
FZ_FN void fz_ref_piece(const fz_ref *r, const uint8_t *p, size_t n, tok_ids *out)
{
    int32_t whole = fz_ref_lookup(r, p, n);
    if (whole >= 0) {
        fz_push(out, whole);
        return;
    }
    size_t *start = malloc((n + 1) * sizeof *start);
    FZ_CHECK(start, "out of memory");
    size_t m = n; /* parts: [start[k], start[k+1]) */
    for (size_t k = 0; k <= n; k++) start[k] = k;
    for (;;) {
        int32_t best = INT_MAX, id;
        size_t bk = 0;
        for (size_t k = 0; k + 1 < m; k++) {
            int32_t rk = fz_ref_rank(r, p + start[k], start[k + 2] - start[k], &id);
            if (rk < best) best = rk, bk = k;
        }
        if (best == INT_MAX) break;
        memmove(start + bk + 1, start + bk + 2, (m - bk - 1) * sizeof *start);
        m--;
    }
    for (size_t k = 0; k < m; k++) {
        int32_t id = fz_ref_lookup(r, p + start[k], start[k + 1] - start[k]);
        FZ_CHECK(id >= 0, "reference BPE: part is not a token");
        fz_push(out, id);
    }
    free(start);
}

/* Longest piece the reference will merge (its loop is quadratic); longer ones skip the compare. */
#define FZ_REF_MAX_PIECE 4096

/* Reference encoding of text; returns 0, or -1 when a piece was too long to check. */
FZ_FN int fz_ref_encode(const fz_ref *r, const uint8_t *s, size_t len, int flags, tok_ids *out)
{
    static const char eot[] = TOK_EOT_TEXT;
    size_t el = sizeof eot - 1, i = 0;
    while (i < len) {
        size_t end = len;
        if ((flags & TOK_ALLOW_SPECIAL) && r->eot >= 0) {
            const uint8_t *hit = memmem(s + i, len - i, eot, el);
            if (hit) end = (size_t)(hit - s);
        }
        for (size_t j = i; j < end;) {
            size_t e = fz_ref_pretok_next(s, end, j);
            FZ_CHECK(e > j && e <= end, "reference pre-tokenizer made no progress");
            if (e - j > FZ_REF_MAX_PIECE) return -1;
            fz_ref_piece(r, s + j, e - j, out);
            j = e;
        }
        if (end == len) break;
        fz_push(out, r->eot);
        i = end + el;
    }
    return 0;
}

/* ---- tok_pretokenize against the reference pre-tokenizer ------------------------------------------- */

typedef struct {
    const uint8_t *s;
    size_t n, pos;
} fz_pretok_walk;

FZ_FN void fz_pretok_cb(const char *piece, size_t len, void *ud)
{
    fz_pretok_walk *w = ud;
    FZ_CHECK(len > 0, "tok_pretokenize gave an empty piece at byte %zu", w->pos);
    FZ_CHECK((const uint8_t *)piece == w->s + w->pos, "tok_pretokenize skipped or repeated bytes at %zu",
             w->pos);
    size_t want = fz_ref_pretok_next(w->s, w->n, w->pos);
    if (w->pos + len != want) {
        fz_dump("text", w->s, w->n);
        fz_dump("piece", (const uint8_t *)piece, len);
        fz_dump("reference piece", w->s + w->pos, want - w->pos);
        FZ_FAIL("tok_pretokenize: piece at byte %zu ends at %zu, the reference at %zu", w->pos, w->pos + len,
                want);
    }
    w->pos += len;
}

FZ_FN void fz_check_pretokenize(const uint8_t *s, size_t n)
{
    fz_pretok_walk w = {s, n, 0};
    tok_pretokenize((const char *)s, n, fz_pretok_cb, &w);
    FZ_CHECK(w.pos == n, "tok_pretokenize stopped at byte %zu of %zu", w.pos, n);
}

/* ---- exercising a freshly loaded tokenizer ---------------------------------------------------------- */

/* Encode a few fixed texts and extra[0..n) with a fresh encoder, in both modes: round trip,
 * reference, and a second (cached) encode must agree. */
FZ_FN void fz_exercise(const tok_tokenizer *t, const uint8_t *extra, size_t extra_len)
{
    static const char *const texts[] = {
        "the abc thing   abab, he said.\n\n<|endoftext|>abc'll Ġt",
        "  hello\tworld 123 \xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80\xFF\xC3 ab\r\n",
        /* pieces over 128 bytes take the heap-based merge loop */
        "abababababababababababababababababababababababababababababababababababababababababababab"
        "abababababababababababababababababababababababababababababab aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaa thethethethethethethethethethethethethethethethethethethethethethethethethethethethe"
        "thethethethethethethethethethethethethethethethethethethethethethethethe",
    };
    enum { NTEXTS = sizeof texts / sizeof *texts };
    fz_ref ref;
    fz_ref_init(&ref, t);
    tok_encoder *e = tok_encoder_create(t);
    FZ_CHECK(e, "tok_encoder_create failed");
    for (size_t k = 0; k <= NTEXTS; k++) {
        const uint8_t *s = k < NTEXTS ? (const uint8_t *)texts[k] : extra;
        size_t n = k < NTEXTS ? strlen(texts[k]) : extra_len;
        for (int flags = 0; flags <= TOK_ALLOW_SPECIAL; flags += TOK_ALLOW_SPECIAL) {
            tok_ids ids = {0}, again = {0}, want = {0};
            FZ_CHECK(tok_encode(e, (const char *)s, n, flags, &ids) == 0, "tok_encode failed");
            fz_check_roundtrip(t, &ids, s, n, flags ? "tok_encode(TOK_ALLOW_SPECIAL)" : "tok_encode");
            if (fz_ref_encode(&ref, s, n, flags, &want) == 0)
                fz_check_ids_equal(&want, &ids, "reference", "tok_encode", s, n);
            FZ_CHECK(tok_encode(e, (const char *)s, n, flags, &again) == 0, "tok_encode failed");
            fz_check_ids_equal(&ids, &again, "tok_encode", "second tok_encode (warm cache)", s, n);
            tok_ids_free(&ids);
            tok_ids_free(&again);
            tok_ids_free(&want);
        }
    }
    tok_encoder_free(e);
    fz_ref_free(&ref);
}

/* Remove every file in dir (tok_save's files and any temporaries it left), keep dir. */
FZ_FN void fz_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    FZ_CHECK(d, "cannot open %s", dir);
    struct dirent *de;
    char p[4096];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        FZ_CHECK(unlink(p) == 0, "cannot remove %s", p);
    }
    closedir(d);
}

/* A fresh folder $TMPDIR/rlhf-fuzz-<tag>-XXXXXX (TMPDIR defaults to /tmp), removed at exit. A crash
 * skips the removal, so tools/fuzz.sh points TMPDIR at its own scratch folder. */
static char fz_tmpdir[4096];

static void fz_remove_tmpdir(void)
{
    if (!fz_tmpdir[0]) return;
    char dir[sizeof fz_tmpdir];
    memcpy(dir, fz_tmpdir, sizeof dir);
    fz_tmpdir[0] = 0; /* once, even if emptying it fails (FZ_FAIL comes back here) */
    fz_empty_dir(dir);
    rmdir(dir);
}

static void fz_cleanup(void) { fz_remove_tmpdir(); }

FZ_FN const char *fz_make_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(fz_tmpdir, sizeof fz_tmpdir, "%s/rlhf-fuzz-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(fz_tmpdir)) {
        fprintf(stderr, "fuzz: cannot create %s: ", fz_tmpdir);
        perror("mkdtemp");
        abort();
    }
    atexit(fz_remove_tmpdir);
    return fz_tmpdir;
}

/* tok_save into dir, tok_load it back: the same ids, bytes, special token and merges. */
FZ_FN void fz_save_reload(const tok_tokenizer *t, const char *dir)
{
    char err[TOK_ERR_LEN];
    fz_err_reset(err);
    if (tok_save(t, dir, err, sizeof err)) {
        fz_check_err(err, "tok_save");
        FZ_FAIL("tok_save of a tokenizer that loaded failed: %s", err);
    }
    tok_tokenizer *u = NULL;
    fz_err_reset(err);
    if (tok_load(dir, &u, err, sizeof err)) {
        fz_check_err(err, "tok_load");
        FZ_FAIL("tok_load of what tok_save wrote failed: %s", err);
    }
    FZ_CHECK(tok_vocab_size(u) == tok_vocab_size(t), "reloaded vocab size %zu != %zu", tok_vocab_size(u),
             tok_vocab_size(t));
    FZ_CHECK(tok_eot_id(u) == tok_eot_id(t), "reloaded <|endoftext|> id %d != %d", tok_eot_id(u), tok_eot_id(t));
    FZ_CHECK(tok_merge_count(u) == tok_merge_count(t), "reloaded merge count %zu != %zu", tok_merge_count(u),
             tok_merge_count(t));
    for (size_t id = 0; id < tok_vocab_size(t); id++) {
        size_t la, lb;
        const uint8_t *a = tok_token_bytes(t, (int32_t)id, &la), *b = tok_token_bytes(u, (int32_t)id, &lb);
        if (la != lb || memcmp(a, b, la)) {
            fz_dump("loaded", a, la);
            fz_dump("reloaded", b, lb);
            FZ_FAIL("token %zu differs after tok_save + tok_load", id);
        }
    }
    for (size_t r = 0; r < tok_merge_count(t); r++) {
        int32_t a0, b0, a1, b1;
        tok_merge(t, r, &a0, &b0);
        tok_merge(u, r, &a1, &b1);
        FZ_CHECK(a0 == a1 && b0 == b1, "merge %zu differs after tok_save + tok_load: (%d %d) vs (%d %d)", r, a0,
                 b0, a1, b1);
    }
    tok_free(u);
    fz_empty_dir(dir);
}

/* ---- misc ------------------------------------------------------------------------------------------ */

FZ_FN uint64_t fz_input_hash(const uint8_t *p, size_t n) { return fz_hash(p, n) * 0x9E3779B97F4A7C15ull; }

/* Load a tokenizer from memory; on failure check the error line, on success run the encode checks
 * and the save/reload round trip. Returns 1 when it loaded. */
FZ_FN int fz_load_and_exercise(const char *vocab, size_t vl, const char *merges, size_t ml, const uint8_t *data,
                               size_t size, const char *dir)
{
    char err[TOK_ERR_LEN];
    tok_tokenizer *t = NULL;
    fz_err_reset(err);
    if (tok_load_mem(vocab, vl, "vocab.json", merges, ml, "merges.txt", &t, err, sizeof err)) {
        fz_check_err(err, "tok_load_mem");
        return 0;
    }
    FZ_CHECK(t, "tok_load_mem succeeded without a tokenizer");
    fz_exercise(t, data, size);
    fz_save_reload(t, dir);
    tok_free(t);
    return 1;
}

#endif
