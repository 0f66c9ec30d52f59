/* tok.c — the byte-level BPE tokenizer: tables, loading (both layouts), saving, encode, decode.
 * See tok.h for the semantics (tiktoken's) and the error convention. */
#include "fileio.h"
#include "tok_internal.h"

#include <jansson.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>


void tok_ids_free(tok_ids *v)
{
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

static int ids_reserve(tok_ids *v, size_t extra)
{
    if (v->n + extra <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 256;
    while (cap < v->n + extra) cap *= 2;
    int32_t *p = realloc(v->ids, cap * sizeof *p);
    if (!p) return -1;
    v->ids = p;
    v->cap = cap;
    return 0;
}

int tok_ids_push(tok_ids *v, int32_t id)
{
    if (ids_reserve(v, 1)) return -1;
    v->ids[v->n++] = id;
    return 0;
}

void tok_bytes_free(tok_bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->n = b->cap = 0;
}

int tok_bytes_append(tok_bytes *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->n, p, n);
    b->n += n;
    return 0;
}

/* ---- tables ------------------------------------------------------------------------------------ */

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

int32_t tok_lookup(const tok_tokenizer *t, const uint8_t *p, size_t n)
{
    size_t i = (size_t)tok_hash_bytes(p, n) & t->vmask;
    for (;;) {
        int32_t id = t->vtab[i];
        if (id < 0) return -1;
        size_t l = t->off[id + 1] - t->off[id];
        if (l == n && memcmp(t->bytes + t->off[id], p, n) == 0) return id;
        i = (i + 1) & t->vmask;
    }
}

static inline int pair_find(const tok_tokenizer *t, int32_t a, int32_t b, int32_t *merged)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = (size_t)tok_hash_u64(key) & t->pmask;
    for (;;) {
        uint64_t k = t->pkey[i];
        if (k == key) {
            *merged = t->pid[i];
            return t->prank[i];
        }
        if (k == 0) return INT_MAX;
        i = (i + 1) & t->pmask;
    }
}

static void pair_insert(tok_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = (size_t)tok_hash_u64(key) & t->pmask;
    while (t->pkey[i] != 0 && t->pkey[i] != key) i = (i + 1) & t->pmask;
    if (t->pkey[i] == key) return; /* first (lowest-rank) entry wins */
    t->pkey[i] = key;
    t->prank[i] = rank;
    t->pid[i] = id;
}

void tok_free(tok_tokenizer *t)
{
    if (!t) return;
    free(t->bytes);
    free(t->off);
    free(t->rank);
    free(t->vtab);
    free(t->pkey);
    free(t->prank);
    free(t->pid);
    free(t->merges);
    free(t);
}

/* Stage 1: the vocabulary (token bytes, bytes -> id table, byte tokens). */
static int build_vocab(tok_tokenizer **out, size_t n, const uint8_t *const *tb, const size_t *tl,
                       int32_t eot, const char *what, char *err, size_t errlen)
{
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return fio_fail(err, errlen, "%s: out of memory", what);
    t->n_vocab = n;
    t->eot = eot;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += tl[i];
    t->bytes = malloc(total ? total : 1);
    t->off = malloc((n + 1) * sizeof *t->off);
    t->rank = malloc((n ? n : 1) * sizeof *t->rank);
    t->vmask = pow2_at_least(2 * n + 1) - 1;
    t->vtab = malloc((t->vmask + 1) * sizeof *t->vtab);
    if (!t->bytes || !t->off || !t->rank || !t->vtab) {
        tok_free(t);
        return fio_fail(err, errlen, "%s: out of memory", what);
    }
    memset(t->vtab, 0xff, (t->vmask + 1) * sizeof *t->vtab);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        t->off[i] = o;
        if (tl[i]) memcpy(t->bytes + o, tb[i], tl[i]);
        o += tl[i];
        t->rank[i] = -1;
    }
    t->off[n] = o;
    for (size_t i = 0; i < n; i++) {
        if ((int32_t)i == eot) continue;
        const uint8_t *p = t->bytes + t->off[i];
        size_t l = tl[i];
        if (l == 0) {
            tok_free(t);
            return fio_fail(err, errlen, "%s: token id %zu is empty", what, i);
        }
        int32_t other = tok_lookup(t, p, l);
        if (other >= 0) {
            tok_free(t);
            return fio_fail(err, errlen, "%s: ids %d and %zu spell the same bytes", what, other, i);
        }
        size_t h = (size_t)tok_hash_bytes(p, l) & t->vmask;
        while (t->vtab[h] >= 0) h = (h + 1) & t->vmask;
        t->vtab[h] = (int32_t)i;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_id[b] = tok_lookup(t, &c, 1);
        if (t->byte_id[b] < 0) {
            tok_free(t);
            return fio_fail(err, errlen, "%s: no token for byte 0x%02X (symbol U+%04X): not a byte-level vocabulary",
                        what, b, tok_byte_to_cp(c));
        }
    }
    *out = t;
    return 0;
}

/* Stage 2: merges (already validated) -> ranks and the pair table. */
static int build_merges(tok_tokenizer *t, const int32_t (*merges)[2], size_t nm, char *err, size_t errlen)
{
    t->merges = malloc((nm ? nm : 1) * sizeof *t->merges);
    if (!t->merges) return fio_fail(err, errlen, "out of memory");
    memcpy(t->merges, merges, nm * sizeof *merges);
    t->n_merges = nm;
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    for (size_t r = 0; r < nm; r++) {
        int32_t a = merges[r][0], b = merges[r][1];
        size_t la = t->off[a + 1] - t->off[a], lb = t->off[b + 1] - t->off[b];
        if (la + lb > bufcap) {
            bufcap = 2 * (la + lb);
            uint8_t *nb = realloc(buf, bufcap);
            if (!nb) {
                free(buf);
                return fio_fail(err, errlen, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf, t->bytes + t->off[a], la);
        memcpy(buf + la, t->bytes + t->off[b], lb);
        int32_t z = tok_lookup(t, buf, la + lb);
        if (z < 0) {
            free(buf);
            return fio_fail(err, errlen, "merge %zu (ids %d %d): result is not in the vocabulary", r, a, b);
        }
        if (t->rank[z] < 0) t->rank[z] = (int32_t)r;
    }
    free(buf);
    /* every split of every ranked token into two reachable tokens */
    size_t bound = 1;
    for (size_t z = 0; z < t->n_vocab; z++)
        if (t->rank[z] >= 0) bound += t->off[z + 1] - t->off[z] - 1;
    t->pmask = pow2_at_least(2 * bound) - 1;
    t->pkey = calloc(t->pmask + 1, sizeof *t->pkey);
    t->prank = malloc((t->pmask + 1) * sizeof *t->prank);
    t->pid = malloc((t->pmask + 1) * sizeof *t->pid);
    if (!t->pkey || !t->prank || !t->pid) return fio_fail(err, errlen, "out of memory");
    for (size_t z = 0; z < t->n_vocab; z++) {
        if (t->rank[z] < 0) continue;
        const uint8_t *p = t->bytes + t->off[z];
        size_t l = t->off[z + 1] - t->off[z];
        for (size_t k = 1; k < l; k++) {
            int32_t a = tok_lookup(t, p, k), b = tok_lookup(t, p + k, l - k);
            if (a < 0 || b < 0) continue;
            if ((k > 1 && t->rank[a] < 0) || (l - k > 1 && t->rank[b] < 0)) continue;
            pair_insert(t, a, b, t->rank[z], (int32_t)z);
        }
    }
    return 0;
}

int tok_build(tok_tokenizer **out, size_t n, const uint8_t *const *tb, const size_t *tl,
              const int32_t (*merges)[2], size_t n_merges, int32_t eot, char *err, size_t errlen)
{
    tok_tokenizer *t;
    if (build_vocab(&t, n, tb, tl, eot, "tokenizer", err, errlen)) return -1;
    if (build_merges(t, merges, n_merges, err, errlen)) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

size_t tok_vocab_size(const tok_tokenizer *t) { return t->n_vocab; }
size_t tok_merge_count(const tok_tokenizer *t) { return t->n_merges; }
int32_t tok_eot_id(const tok_tokenizer *t) { return t->eot; }

int tok_merge(const tok_tokenizer *t, size_t r, int32_t *a, int32_t *b)
{
    if (r >= t->n_merges) return -1;
    *a = t->merges[r][0];
    *b = t->merges[r][1];
    return 0;
}

const uint8_t *tok_token_bytes(const tok_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->off[id + 1] - t->off[id];
    return t->bytes + t->off[id];
}

/* ---- loading ----------------------------------------------------------------------------------- */

/* Decode a byte-level symbol string (UTF-8 of byte-symbol code points) into bytes. Returns the
 * number of bytes, or -1 with *bad_at = byte offset of the offending character. */
static long symbol_to_bytes(const char *s, size_t n, uint8_t *out, size_t *bad_at, uint32_t *bad_cp)
{
    size_t i = 0, o = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        int b = l > 0 ? tok_cp_to_byte((uint32_t)cp) : -1;
        if (b < 0) {
            *bad_at = i;
            *bad_cp = l > 0 ? (uint32_t)cp : 0xFFFD;
            return -1;
        }
        out[o++] = (uint8_t)b;
        i += (size_t)l;
    }
    return (long)o;
}

static int load_vocab(const char *path, const char *buf, size_t len, tok_tokenizer **out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return fio_fail(err, errlen, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return fio_fail(err, errlen, "%s:1:1: expected a JSON object mapping tokens to ids", path);
    }
    size_t n = json_object_size(root);
    const uint8_t **tb = calloc(n ? n : 1, sizeof *tb);
    size_t *tl = calloc(n ? n : 1, sizeof *tl);
    const char **names = calloc(n ? n : 1, sizeof *names);
    uint8_t *arena = NULL;
    size_t total = 0;
    const char *key;
    json_t *val;
    char kb1[96], kb2[96];
    json_object_foreach(root, key, val) total += strlen(key);
    arena = malloc(total ? total : 1);
    int rc = -1;
    int32_t eot = -1;
    if (!tb || !tl || !names || !arena) {
        fio_fail(err, errlen, "%s: out of memory", path);
        goto done;
    }
    if (n == 0) {
        fio_fail(err, errlen, "%s: the vocabulary is empty", path);
        goto done;
    }
    size_t o = 0;
    json_object_foreach(root, key, val)
    {
        if (!json_is_integer(val)) {
            fio_fail(err, errlen, "%s: token \"%s\": id must be an integer", path, fio_show(key, kb1, sizeof kb1));
            goto done;
        }
        json_int_t id = json_integer_value(val);
        if (id < 0 || (size_t)id >= n) {
            fio_fail(err, errlen, "%s: token \"%s\": id %lld outside 0..%zu (ids must be 0..N-1 for N tokens)",
                 path, fio_show(key, kb1, sizeof kb1), (long long)id, n - 1);
            goto done;
        }
        if (names[id]) {
            fio_fail(err, errlen, "%s: id %lld is given to both \"%s\" and \"%s\"", path, (long long)id,
                 fio_show(names[id], kb1, sizeof kb1), fio_show(key, kb2, sizeof kb2));
            goto done;
        }
        names[id] = key;
        size_t kl = strlen(key);
        if (strcmp(key, TOK_EOT_TEXT) == 0) {
            eot = (int32_t)id;
            memcpy(arena + o, key, kl);
            tb[id] = arena + o;
            tl[id] = kl;
            o += kl;
            continue;
        }
        size_t bad_at = 0;
        uint32_t bad_cp = 0;
        long bl = symbol_to_bytes(key, kl, arena + o, &bad_at, &bad_cp);
        if (bl < 0) {
            fio_fail(err, errlen, "%s: token \"%s\" (id %lld): character %zu (U+%04X) is not a byte-level symbol",
                 path, fio_show(key, kb1, sizeof kb1), (long long)id, bad_at, bad_cp);
            goto done;
        }
        if (bl == 0) {
            fio_fail(err, errlen, "%s: token \"\" (id %lld): empty token", path, (long long)id);
            goto done;
        }
        tb[id] = arena + o;
        tl[id] = (size_t)bl;
        o += (size_t)bl;
    }
    if (build_vocab(out, n, tb, tl, eot, path, err, errlen) == 0) rc = 0;
done:
    free(tb);
    free(tl);
    free(names);
    free(arena);
    json_decref(root);
    return rc;
}

typedef struct {
    uint64_t *key;
    size_t *line;
    size_t mask;
} merge_seen;

static int load_merges(const char *path, const char *buf, size_t len, tok_tokenizer *t, char *err, size_t errlen)
{
    size_t nlines = 1;
    for (size_t i = 0; i < len; i++) nlines += buf[i] == '\n';
    int32_t(*merges)[2] = malloc(nlines * sizeof *merges);
    merge_seen seen = {0};
    seen.mask = pow2_at_least(2 * nlines) - 1;
    seen.key = calloc(seen.mask + 1, sizeof *seen.key);
    seen.line = calloc(seen.mask + 1, sizeof *seen.line);
    uint8_t *sym = malloc(len + 1);
    size_t nm = 0;
    int rc = -1;
    if (!merges || !seen.key || !seen.line || !sym) {
        fio_fail(err, errlen, "%s: out of memory", path);
        goto done;
    }
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        lineno++;
        size_t e = pos;
        while (e < len && buf[e] != '\n') e++;
        size_t le = e;
        if (le > pos && buf[le - 1] == '\r') le--;
        const char *s = buf + pos;
        size_t sl = le - pos;
        size_t next = e < len ? e + 1 : e;
        if (sl == 0 || (lineno == 1 && sl >= 8 && memcmp(s, "#version", 8) == 0)) {
            pos = next;
            continue;
        }
        const char *sp = memchr(s, ' ', sl);
        if (!sp || sp == s || sp == s + sl - 1 || memchr(sp + 1, ' ', (size_t)(s + sl - sp - 1))) {
            fio_fail(err, errlen, "%s:%zu:1: expected two symbols separated by one space", path, lineno);
            goto done;
        }
        int32_t ids[2];
        const char *part[2] = {s, sp + 1};
        size_t plen[2] = {(size_t)(sp - s), (size_t)(s + sl - sp - 1)};
        for (int k = 0; k < 2; k++) {
            size_t bad_at = 0;
            uint32_t bad_cp = 0;
            long bl = symbol_to_bytes(part[k], plen[k], sym, &bad_at, &bad_cp);
            size_t col = (size_t)(part[k] - s) + 1;
            if (bl < 0) {
                fio_fail(err, errlen, "%s:%zu:%zu: U+%04X is not a byte-level symbol", path, lineno,
                     col + bad_at, bad_cp);
                goto done;
            }
            ids[k] = tok_lookup(t, sym, (size_t)bl);
            if (ids[k] < 0) {
                fio_fail(err, errlen, "%s:%zu:%zu: unknown symbol '%.*s' (not in the vocabulary)", path,
                     lineno, col, (int)plen[k], part[k]);
                goto done;
            }
        }
        /* result must be a token */
        size_t la = t->off[ids[0] + 1] - t->off[ids[0]], lb = t->off[ids[1] + 1] - t->off[ids[1]];
        memcpy(sym, t->bytes + t->off[ids[0]], la);
        memcpy(sym + la, t->bytes + t->off[ids[1]], lb);
        if (tok_lookup(t, sym, la + lb) < 0) {
            fio_fail(err, errlen, "%s:%zu:1: merge result '%.*s%.*s' is not in the vocabulary", path, lineno,
                 (int)plen[0], part[0], (int)plen[1], part[1]);
            goto done;
        }
        uint64_t key = (((uint64_t)(uint32_t)ids[0] << 32) | (uint32_t)ids[1]) + 1;
        size_t h = (size_t)tok_hash_u64(key) & seen.mask;
        while (seen.key[h] && seen.key[h] != key) h = (h + 1) & seen.mask;
        if (seen.key[h] == key) {
            fio_fail(err, errlen, "%s:%zu:1: duplicate merge '%.*s' (first at line %zu)", path, lineno, (int)sl,
                 s, seen.line[h]);
            goto done;
        }
        seen.key[h] = key;
        seen.line[h] = lineno;
        merges[nm][0] = ids[0];
        merges[nm][1] = ids[1];
        nm++;
        pos = next;
    }
    if (build_merges(t, (const int32_t(*)[2])merges, nm, err, errlen) == 0) rc = 0;
done:
    free(merges);
    free(seen.key);
    free(seen.line);
    free(sym);
    return rc;
}

int tok_load_mem(const char *vocab, size_t vocab_len, const char *vocab_name, const char *merges,
                 size_t merges_len, const char *merges_name, tok_tokenizer **out, char *err, size_t errlen)
{
    tok_tokenizer *t;
    if (load_vocab(vocab_name, vocab, vocab_len, &t, err, errlen)) return -1;
    if (load_merges(merges_name, merges, merges_len, t, err, errlen)) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tok_load_files(const char *vocab_path, const char *merges_path, tok_tokenizer **out, char *err,
                   size_t errlen)
{
    size_t vl, ml;
    char *v = fio_read_all(vocab_path, &vl, err, errlen);
    if (!v) return -1;
    char *m = fio_read_all(merges_path, &ml, err, errlen);
    if (!m) {
        free(v);
        return -1;
    }
    int rc = tok_load_mem(v, vl, vocab_path, m, ml, merges_path, out, err, errlen);
    free(v);
    free(m);
    return rc;
}

int tok_files(const char *dir, char *vocab, char *merges, size_t n, char *err, size_t errlen)
{
    fio_join(vocab, n, dir, "vocab.json");
    fio_join(merges, n, dir, "merges.txt");
    if (fio_exists(vocab) || fio_exists(merges)) return 0;
    fio_join(vocab, n, dir, "encoder.json");
    fio_join(merges, n, dir, "vocab.bpe");
    if (fio_exists(vocab) || fio_exists(merges)) return 0;
    if (!fio_exists(dir)) return fio_fail(err, errlen, "%s: no such directory", dir);
    return fio_fail(err, errlen, "%s: no tokenizer here (expected vocab.json + merges.txt or encoder.json + vocab.bpe)",
                    dir);
}

int tok_load(const char *dir, tok_tokenizer **out, char *err, size_t errlen)
{
    char v[4096], m[4096];
    if (tok_files(dir, v, m, sizeof v, err, errlen)) return -1;
    return tok_load_files(v, m, out, err, errlen);
}

/* ---- saving ------------------------------------------------------------------------------------ */

/* Append the byte-level symbol spelling of bytes p[0..n) to b. */
static int spell(tok_bytes *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tok_byte_to_cp(p[i]);
        uint8_t u[2];
        if (cp < 0x80) {
            u[0] = (uint8_t)cp;
            if (tok_bytes_append(b, u, 1)) return -1;
        } else {
            u[0] = (uint8_t)(0xC0 | (cp >> 6));
            u[1] = (uint8_t)(0x80 | (cp & 0x3F));
            if (tok_bytes_append(b, u, 2)) return -1;
        }
    }
    return 0;
}

int tok_save(const tok_tokenizer *t, const char *dir, char *err, size_t errlen)
{
    if (fio_mkdirs(dir, err, errlen)) return -1;
    char path[4096];
    tok_bytes sb = {0};
    json_t *root = json_object();
    int rc = -1;
    if (!root) return fio_fail(err, errlen, "%s: out of memory", dir);
    for (size_t i = 0; i < t->n_vocab; i++) {
        sb.n = 0;
        const uint8_t *p = t->bytes + t->off[i];
        size_t l = t->off[i + 1] - t->off[i];
        int e = (int32_t)i == t->eot ? tok_bytes_append(&sb, p, l) : spell(&sb, p, l);
        uint8_t z = 0;
        if (e || tok_bytes_append(&sb, &z, 1) || json_object_set_new(root, (char *)sb.data, json_integer((json_int_t)i))) {
            fio_fail(err, errlen, "%s: out of memory", dir);
            goto done;
        }
    }
    char *js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!js) {
        fio_fail(err, errlen, "%s: cannot serialise vocab.json", dir);
        goto done;
    }
    int w = fio_write_atomic(fio_join(path, sizeof path, dir, "vocab.json"), js, strlen(js), err, errlen);
    free(js);
    if (w) goto done;
    sb.n = 0;
    static const char hdr[] = "#version: 0.2\n";
    if (tok_bytes_append(&sb, hdr, sizeof hdr - 1)) goto oom;
    for (size_t r = 0; r < t->n_merges; r++) {
        int32_t a = t->merges[r][0], b = t->merges[r][1];
        if (spell(&sb, t->bytes + t->off[a], t->off[a + 1] - t->off[a]) || tok_bytes_append(&sb, " ", 1) ||
            spell(&sb, t->bytes + t->off[b], t->off[b + 1] - t->off[b]) || tok_bytes_append(&sb, "\n", 1))
            goto oom;
    }
    if (fio_write_atomic(fio_join(path, sizeof path, dir, "merges.txt"), sb.data, sb.n, err, errlen)) goto done;
    rc = 0;
    goto done;
oom:
    fio_fail(err, errlen, "%s: out of memory", dir);
done:
    tok_bytes_free(&sb);
    json_decref(root);
    return rc;
}

/* ---- encoding ---------------------------------------------------------------------------------- */

#define CACHE_SLOTS (1u << 17)
#define CACHE_MAX_ENTRIES (1u << 16)
#define CACHE_KEY_BYTES (4u << 20)
#define CACHE_IDS (1u << 20)
#define CACHE_MAX_PIECE 64

typedef struct {
    uint64_t h; /* 0 = empty */
    uint32_t koff, ioff;
    uint16_t klen, nids;
} cache_slot;

typedef struct {
    int32_t rank;
    int32_t pos;
} heap_item;

struct tok_encoder {
    const tok_tokenizer *t;
    cache_slot *slots;
    size_t nentries;
    uint8_t *keys;
    size_t keys_n;
    int32_t *cids;
    size_t cids_n;
    /* BPE scratch, grown to the longest piece seen */
    size_t cap;
    int32_t *id, *rk, *mid, *nxt, *prv, *ver;
    heap_item *heap;
    int32_t *hver;
};

tok_encoder *tok_encoder_create(const tok_tokenizer *t)
{
    tok_encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->t = t;
    e->slots = calloc(CACHE_SLOTS, sizeof *e->slots);
    e->keys = malloc(CACHE_KEY_BYTES);
    e->cids = malloc(CACHE_IDS * sizeof *e->cids);
    if (!e->slots || !e->keys || !e->cids) {
        tok_encoder_free(e);
        return NULL;
    }
    return e;
}

void tok_encoder_free(tok_encoder *e)
{
    if (!e) return;
    free(e->slots);
    free(e->keys);
    free(e->cids);
    free(e->id);
    free(e->rk);
    free(e->mid);
    free(e->nxt);
    free(e->prv);
    free(e->ver);
    free(e->heap);
    free(e->hver);
    free(e);
}

static int scratch_reserve(tok_encoder *e, size_t n)
{
    if (n <= e->cap) return 0;
    size_t cap = e->cap ? e->cap : 64;
    while (cap < n) cap *= 2;
    int32_t **arrs[] = {&e->id, &e->rk, &e->mid, &e->nxt, &e->prv, &e->ver, &e->hver};
    for (size_t k = 0; k < sizeof arrs / sizeof *arrs; k++) {
        int32_t *p = realloc(*arrs[k], cap * sizeof(int32_t));
        if (!p) return -1;
        *arrs[k] = p;
    }
    heap_item *h = realloc(e->heap, 3 * cap * sizeof *h); /* n-1 initial + 2 per merge */
    if (!h) return -1;
    e->heap = h;
    e->cap = cap;
    return 0;
}

/* Short pieces: the array form of tiktoken's loop (scan for the lowest rank, merge, repeat). */
static size_t bpe_small(tok_encoder *e, const uint8_t *p, size_t n)
{
    const tok_tokenizer *t = e->t;
    int32_t *id = e->id, *rk = e->rk, *mid = e->mid;
    for (size_t k = 0; k < n; k++) id[k] = t->byte_id[p[k]];
    size_t m = n;
    for (size_t k = 0; k + 1 < m; k++) rk[k] = pair_find(t, id[k], id[k + 1], &mid[k]);
    while (m > 1) {
        int32_t best = INT_MAX;
        size_t bk = 0;
        for (size_t k = 0; k + 1 < m; k++)
            if (rk[k] < best) {
                best = rk[k];
                bk = k;
            }
        if (best == INT_MAX) break;
        id[bk] = mid[bk];
        memmove(id + bk + 1, id + bk + 2, (m - bk - 2) * sizeof *id);
        memmove(rk + bk + 1, rk + bk + 2, (m - bk - 2) * sizeof *rk);
        memmove(mid + bk + 1, mid + bk + 2, (m - bk - 2) * sizeof *mid);
        m--;
        if (bk + 1 < m) rk[bk] = pair_find(t, id[bk], id[bk + 1], &mid[bk]);
        if (bk > 0) rk[bk - 1] = pair_find(t, id[bk - 1], id[bk], &mid[bk - 1]);
    }
    return m;
}

/* min-heap on (rank, position): the leftmost lowest-rank pair first, as tiktoken */
static inline int heap_less(heap_item a, heap_item b)
{
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(heap_item *h, size_t *n, heap_item x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(x, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static heap_item heap_pop(heap_item *h, size_t *n)
{
    heap_item top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(h[c + 1], h[c])) c++;
        if (!heap_less(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
    return top;
}

/* Long pieces: the same merges in O(n log n) with a linked list and a heap of candidate pairs.
 * A heap entry is live while its position is alive and its rank is still that position's rank. */
static size_t bpe_large(tok_encoder *e, const uint8_t *p, size_t n)
{
    const tok_tokenizer *t = e->t;
    int32_t *id = e->id, *rk = e->rk, *mid = e->mid, *nxt = e->nxt, *prv = e->prv;
    heap_item *h = e->heap;
    size_t hn = 0;
    for (size_t k = 0; k < n; k++) {
        id[k] = t->byte_id[p[k]];
        nxt[k] = k + 1 < n ? (int32_t)k + 1 : -1;
        prv[k] = (int32_t)k - 1;
    }
    for (size_t k = 0; k + 1 < n; k++) {
        rk[k] = pair_find(t, id[k], id[k + 1], &mid[k]);
        if (rk[k] != INT_MAX) heap_push(h, &hn, (heap_item){rk[k], (int32_t)k});
    }
    rk[n - 1] = INT_MAX;
    while (hn > 0) {
        heap_item it = heap_pop(h, &hn);
        int32_t k = it.pos;
        if (id[k] < 0 || rk[k] != it.rank || nxt[k] < 0) continue; /* stale */
        int32_t r = nxt[k];
        id[k] = mid[k];
        id[r] = -1; /* dead */
        nxt[k] = nxt[r];
        if (nxt[r] >= 0) prv[nxt[r]] = k;
        if (nxt[k] >= 0) {
            rk[k] = pair_find(t, id[k], id[nxt[k]], &mid[k]);
            if (rk[k] != INT_MAX) heap_push(h, &hn, (heap_item){rk[k], k});
        } else {
            rk[k] = INT_MAX;
        }
        int32_t q = prv[k];
        if (q >= 0) {
            rk[q] = pair_find(t, id[q], id[k], &mid[q]);
            if (rk[q] != INT_MAX) heap_push(h, &hn, (heap_item){rk[q], q});
        }
    }
    size_t m = 0;
    for (int32_t k = 0; k >= 0; k = nxt[k]) id[m++] = id[k];
    return m;
}

static void cache_clear(tok_encoder *e)
{
    memset(e->slots, 0, CACHE_SLOTS * sizeof *e->slots);
    e->nentries = e->keys_n = e->cids_n = 0;
}

/* Encode one pre-token and append its ids. */
static int encode_piece(tok_encoder *e, const uint8_t *p, size_t n, tok_ids *out)
{
    const tok_tokenizer *t = e->t;
    cache_slot *slot = NULL;
    uint64_t hh = 0;
    if (n <= CACHE_MAX_PIECE) {
        hh = tok_hash_bytes(p, n) | 1;
        size_t i = (size_t)hh & (CACHE_SLOTS - 1);
        for (;;) {
            cache_slot *s = &e->slots[i];
            if (s->h == 0) {
                slot = s;
                break;
            }
            if (s->h == hh && s->klen == n && memcmp(e->keys + s->koff, p, n) == 0) {
                if (ids_reserve(out, s->nids)) return -1;
                memcpy(out->ids + out->n, e->cids + s->ioff, s->nids * sizeof(int32_t));
                out->n += s->nids;
                return 0;
            }
            i = (i + 1) & (CACHE_SLOTS - 1);
        }
    }
    const int32_t *res;
    size_t m;
    int32_t whole = tok_lookup(t, p, n);
    if (whole >= 0) {
        m = 1;
        if (scratch_reserve(e, 1)) return -1;
        e->id[0] = whole;
        res = e->id;
    } else {
        if (scratch_reserve(e, n)) return -1;
        m = n <= 128 ? bpe_small(e, p, n) : bpe_large(e, p, n);
        res = e->id;
    }
    if (ids_reserve(out, m)) return -1;
    memcpy(out->ids + out->n, res, m * sizeof *res);
    out->n += m;
    if (slot) {
        if (e->nentries >= CACHE_MAX_ENTRIES || e->keys_n + n > CACHE_KEY_BYTES || e->cids_n + m > CACHE_IDS) {
            cache_clear(e);
            size_t i = (size_t)hh & (CACHE_SLOTS - 1);
            slot = &e->slots[i];
        }
        slot->h = hh;
        slot->koff = (uint32_t)e->keys_n;
        slot->klen = (uint16_t)n;
        slot->ioff = (uint32_t)e->cids_n;
        slot->nids = (uint16_t)m;
        memcpy(e->keys + e->keys_n, p, n);
        memcpy(e->cids + e->cids_n, res, m * sizeof *res);
        e->keys_n += n;
        e->cids_n += m;
        e->nentries++;
    }
    return 0;
}

static int encode_ordinary(tok_encoder *e, const uint8_t *s, size_t len, tok_ids *out)
{
    size_t i = 0;
    while (i < len) {
        size_t end = pretok_next(s, len, i);
        if (encode_piece(e, s + i, end - i, out)) return -1;
        i = end;
    }
    return 0;
}

int tok_encode(tok_encoder *e, const char *text, size_t len, int flags, tok_ids *out)
{
    const uint8_t *s = (const uint8_t *)text;
    if (!(flags & TOK_ALLOW_SPECIAL) || e->t->eot < 0) return encode_ordinary(e, s, len, out);
    static const char eot[] = TOK_EOT_TEXT;
    const size_t el = sizeof eot - 1;
    size_t i = 0;
    while (i < len) {
        const uint8_t *hit = memmem(s + i, len - i, eot, el);
        size_t end = hit ? (size_t)(hit - s) : len;
        if (encode_ordinary(e, s + i, end - i, out)) return -1;
        if (!hit) break;
        if (tok_ids_push(out, e->t->eot)) return -1;
        i = end + el;
    }
    return 0;
}

int tok_encode_parallel(const tok_tokenizer *t, const char *text, size_t len, int flags, int nthreads,
                        tok_ids *out)
{
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    size_t nch = len / (256u << 10);
    if (nch > (size_t)nthreads * 16) nch = (size_t)nthreads * 16;
    if (nch < 1 || nthreads == 1) nch = 1;
    size_t *b = malloc((nch + 1) * sizeof *b);
    tok_ids *parts = calloc(nch, sizeof *parts);
    if (!b || !parts) {
        free(b);
        free(parts);
        return -1;
    }
    b[0] = 0;
    for (size_t i = 1; i < nch; i++) {
        size_t target = i * (len / nch);
        if (target < b[i - 1]) target = b[i - 1];
        b[i] = pretok_safe_split((const uint8_t *)text, target, len);
    }
    b[nch] = len;
    int bad = 0;
#pragma omp parallel num_threads(nthreads) if (nch > 1)
    {
        tok_encoder *e = tok_encoder_create(t);
        if (!e) {
#pragma omp atomic write
            bad = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < nch; i++) {
            if (e && tok_encode(e, text + b[i], b[i + 1] - b[i], flags, &parts[i])) {
#pragma omp atomic write
                bad = 1;
            }
        }
        tok_encoder_free(e);
    }
    size_t total = 0;
    for (size_t i = 0; i < nch; i++) total += parts[i].n;
    if (!bad && ids_reserve(out, total) == 0) {
        for (size_t i = 0; i < nch; i++) {
            if (parts[i].n) memcpy(out->ids + out->n, parts[i].ids, parts[i].n * sizeof(int32_t));
            out->n += parts[i].n;
        }
    } else {
        bad = 1;
    }
    for (size_t i = 0; i < nch; i++) tok_ids_free(&parts[i]);
    free(parts);
    free(b);
    return bad ? -1 : 0;
}

/* ---- decoding ---------------------------------------------------------------------------------- */

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, tok_bytes *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= t->n_vocab)
            return fio_fail(err, errlen, "token %zu: id %d is outside the vocabulary (0..%zu)", i, id, t->n_vocab - 1);
        if (tok_bytes_append(out, t->bytes + t->off[id], t->off[id + 1] - t->off[id]))
            return fio_fail(err, errlen, "out of memory");
    }
    return 0;
}

int tok_decode_lenient(const tok_tokenizer *t, const int32_t *ids, size_t n, tok_bytes *out, char *err, size_t errlen)
{
    static const uint8_t replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */
    const int32_t V = (int32_t)t->n_vocab;
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        while (i + k < n && ids[i + k] >= 0 && ids[i + k] < V) k++;
        if (k && tok_decode(t, ids + i, k, out, err, errlen)) return -1;
        i += k;
        if (i < n) {
            if (tok_bytes_append(out, replacement, 3)) return fio_fail(err, errlen, "out of memory");
            i++;
        }
    }
    return 0;
}
