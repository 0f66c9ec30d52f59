/* train.c — training a byte-level BPE (GPT-2 style) on raw text.
 *
 * 1. Pre-tokenize every document with GPT-2's pattern (in parallel, at certain break points) and
 *    count distinct pieces ("words"); sort them by bytes so nothing depends on thread timing.
 * 2. Count adjacent symbol pairs over words (weighted by word count), remembering which words hold
 *    each pair; keep a max-heap of (count, left id, right id) with lazy deletion.
 * 3. Repeatedly take the most frequent pair (ties: lower left id, then lower right id), make it a
 *    new token, rewrite only the words that hold it, and update the counts of the pairs around it.
 * Ids: 0..255 are the bytes in GPT-2's order, then one id per new token in merge order, then
 * <|endoftext|> last — the layout of GPT-2's own vocab.json.
 */
#include "fileio.h"
#include "tok_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tok_train_opts tok_train_defaults(void)
{
    tok_train_opts o = {0};
    o.vocab_size = 8192;
    o.nthreads = 0;
    o.min_frequency = 2;
    return o;
}


/* ---- word counting ----------------------------------------------------------------------------- */

typedef struct {
    uint64_t h;
    size_t koff;
    uint32_t klen;
    uint64_t count;
} wslot;

typedef struct {
    wslot *slots;
    size_t mask, n;
    uint8_t *keys;
    size_t keys_n, keys_cap;
    int oom;
} wmap;

static int wmap_init(wmap *m, size_t cap)
{
    memset(m, 0, sizeof *m);
    m->mask = cap - 1;
    m->slots = calloc(cap, sizeof *m->slots);
    m->keys_cap = 1 << 20;
    m->keys = malloc(m->keys_cap);
    return m->slots && m->keys ? 0 : -1;
}

static void wmap_free(wmap *m)
{
    free(m->slots);
    free(m->keys);
}

static int wmap_grow(wmap *m)
{
    size_t ncap = (m->mask + 1) * 2;
    wslot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (!m->slots[i].h) continue;
        size_t j = (size_t)m->slots[i].h & (ncap - 1);
        while (ns[j].h) j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->mask = ncap - 1;
    return 0;
}

static void wmap_add(wmap *m, const uint8_t *p, size_t n, uint64_t h, uint64_t count)
{
    if (m->oom) return;
    size_t i = (size_t)h & m->mask;
    while (m->slots[i].h) {
        wslot *s = &m->slots[i];
        if (s->h == h && s->klen == n && memcmp(m->keys + s->koff, p, n) == 0) {
            s->count += count;
            return;
        }
        i = (i + 1) & m->mask;
    }
    if (m->keys_n + n > m->keys_cap) {
        size_t nc = m->keys_cap * 2;
        while (nc < m->keys_n + n) nc *= 2;
        uint8_t *nk = realloc(m->keys, nc);
        if (!nk) {
            m->oom = 1;
            return;
        }
        m->keys = nk;
        m->keys_cap = nc;
    }
    memcpy(m->keys + m->keys_n, p, n);
    m->slots[i] = (wslot){h, m->keys_n, (uint32_t)n, count};
    m->keys_n += n;
    if (++m->n * 2 > m->mask + 1 && wmap_grow(m)) m->oom = 1;
}

typedef struct {
    const uint8_t *p;
    size_t n;
} span;

/* Split the documents into spans that can be pre-tokenized independently. */
static span *make_spans(const char *const *texts, const size_t *lens, size_t ntexts, size_t *nspans)
{
    const size_t target = 1u << 20;
    size_t cap = 64, ns = 0;
    span *sp = malloc(cap * sizeof *sp);
    if (!sp) return NULL;
    static const char eot[] = TOK_EOT_TEXT;
    for (size_t d = 0; d < ntexts; d++) {
        const uint8_t *s = (const uint8_t *)texts[d];
        size_t len = lens[d], i = 0;
        while (i < len) {
            const uint8_t *hit = memmem(s + i, len - i, eot, sizeof eot - 1);
            size_t end = hit ? (size_t)(hit - s) : len;
            size_t a = i;
            while (a < end) {
                size_t b = end - a > target ? pretok_safe_split(s, a + target, end) : end;
                if (ns == cap) {
                    cap *= 2;
                    span *n2 = realloc(sp, cap * sizeof *sp);
                    if (!n2) {
                        free(sp);
                        return NULL;
                    }
                    sp = n2;
                }
                sp[ns++] = (span){s + a, b - a};
                a = b;
            }
            i = hit ? end + sizeof eot - 1 : len;
        }
    }
    *nspans = ns;
    return sp;
}

/* byte order, then length: the deterministic order of the word list */
static int cmp_words(const wslot *a, const wslot *b, const uint8_t *k)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(k + a->koff, k + b->koff, n);
    if (c) return c;
    return (a->klen > b->klen) - (a->klen < b->klen);
}

/* ---- pair statistics --------------------------------------------------------------------------- */

typedef struct {
    int64_t count;
    int32_t a, b;
    int32_t *words;
    uint32_t nw, cw;
    int64_t before;  /* count at the start of the current merge, for deciding what to re-push */
    uint32_t stamp;  /* merge number that last touched this pair */
} pstat;

typedef struct {
    int64_t count;
    int32_t a, b;
} hentry;

typedef struct {
    /* pair key -> index into ps */
    uint64_t *keys;
    int32_t *idx;
    size_t mask, n;
    pstat *ps;
    size_t nps, cps;
    hentry *heap;
    size_t hn, hcap;
    int oom;
} pairs;

static inline int hbetter(hentry x, hentry y)
{
    if (x.count != y.count) return x.count > y.count;
    if (x.a != y.a) return x.a < y.a;
    return x.b < y.b;
}

static void hpush(pairs *P, hentry x)
{
    if (P->hn == P->hcap) {
        size_t nc = P->hcap ? P->hcap * 2 : 1024;
        hentry *nh = realloc(P->heap, nc * sizeof *nh);
        if (!nh) {
            P->oom = 1;
            return;
        }
        P->heap = nh;
        P->hcap = nc;
    }
    size_t i = P->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hbetter(x, P->heap[p])) break;
        P->heap[i] = P->heap[p];
        i = p;
    }
    P->heap[i] = x;
}

static hentry hpop(pairs *P)
{
    hentry top = P->heap[0], x = P->heap[--P->hn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= P->hn) break;
        if (c + 1 < P->hn && hbetter(P->heap[c + 1], P->heap[c])) c++;
        if (!hbetter(P->heap[c], x)) break;
        P->heap[i] = P->heap[c];
        i = c;
    }
    P->heap[i] = x;
    return top;
}

static int32_t pair_get(pairs *P, int32_t a, int32_t b, int create)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = (size_t)tok_hash_u64(key) & P->mask;
    while (P->keys[i]) {
        if (P->keys[i] == key) return P->idx[i];
        i = (i + 1) & P->mask;
    }
    if (!create) return -1;
    if (P->nps == P->cps) {
        size_t nc = P->cps ? P->cps * 2 : 4096;
        pstat *np = realloc(P->ps, nc * sizeof *np);
        if (!np) {
            P->oom = 1;
            return -1;
        }
        P->ps = np;
        P->cps = nc;
    }
    int32_t id = (int32_t)P->nps++;
    P->ps[id] = (pstat){0, a, b, NULL, 0, 0, 0, UINT32_MAX};
    P->keys[i] = key;
    P->idx[i] = id;
    if (++P->n * 2 > P->mask + 1) {
        size_t ncap = (P->mask + 1) * 2;
        uint64_t *nk = calloc(ncap, sizeof *nk);
        int32_t *ni = malloc(ncap * sizeof *ni);
        if (!nk || !ni) {
            free(nk);
            free(ni);
            P->oom = 1;
            return id;
        }
        for (size_t j = 0; j <= P->mask; j++) {
            if (!P->keys[j]) continue;
            size_t h = (size_t)tok_hash_u64(P->keys[j]) & (ncap - 1);
            while (nk[h]) h = (h + 1) & (ncap - 1);
            nk[h] = P->keys[j];
            ni[h] = P->idx[j];
        }
        free(P->keys);
        free(P->idx);
        P->keys = nk;
        P->idx = ni;
        P->mask = ncap - 1;
    }
    return id;
}

static void pair_add_word(pairs *P, pstat *s, int32_t w)
{
    if (s->nw && s->words[s->nw - 1] == w) return;
    if (s->nw == s->cw) {
        uint32_t nc = s->cw ? s->cw * 2 : 4;
        int32_t *nw = realloc(s->words, nc * sizeof *nw);
        if (!nw) {
            P->oom = 1;
            return;
        }
        s->words = nw;
        s->cw = nc;
    }
    s->words[s->nw++] = w;
}

/* ---- the trainer ------------------------------------------------------------------------------- */

int tok_train(const char *const *texts, const size_t *lens, size_t ntexts, const tok_train_opts *o,
              tok_tokenizer **out, char *err, size_t errlen)
{
    if (o->vocab_size < 257) return fio_fail(err, errlen, "vocab size %zu is too small (at least 257: 256 bytes + <|endoftext|>)", o->vocab_size);
    if (o->vocab_size > (1u << 24)) return fio_fail(err, errlen, "vocab size %zu is too large", o->vocab_size);
    int nt = o->nthreads > 0 ? o->nthreads : omp_get_max_threads();
    size_t nspans;
    span *sp = make_spans(texts, lens, ntexts, &nspans);
    if (!sp) return fio_fail(err, errlen, "out of memory");
    size_t total_bytes = 0;
    for (size_t i = 0; i < ntexts; i++) total_bytes += lens[i];

    /* 1. count words, one map per thread, then merged */
    wmap *maps = calloc((size_t)nt, sizeof *maps);
    int bad = maps == NULL;
    for (int k = 0; !bad && k < nt; k++) bad |= wmap_init(&maps[k], 1 << 16);
    size_t done_bytes = 0;
    if (!bad) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (size_t i = 0; i < nspans; i++) {
            wmap *m = &maps[omp_get_thread_num()];
            const uint8_t *s = sp[i].p;
            size_t n = sp[i].n, j = 0;
            while (j < n) {
                size_t e = pretok_next(s, n, j);
                wmap_add(m, s + j, e - j, tok_hash_bytes(s + j, e - j) | 1, 1);
                j = e;
            }
            if (o->progress) {
#pragma omp critical(tok_train_progress)
                {
                    done_bytes += n;
                    o->progress(o->progress_ud, (double)done_bytes, (double)total_bytes, "counting");
                }
            }
        }
    }
    free(sp);
    for (int k = 1; !bad && k < nt; k++) {
        for (size_t i = 0; i <= maps[k].mask; i++) {
            wslot *s = &maps[k].slots[i];
            if (s->h) wmap_add(&maps[0], maps[k].keys + s->koff, s->klen, s->h, s->count);
        }
        bad |= maps[k].oom;
    }
    if (!bad) bad |= maps[0].oom;
    for (int k = 1; maps && k < nt; k++) wmap_free(&maps[k]);
    if (bad) {
        if (maps) wmap_free(&maps[0]);
        free(maps);
        return fio_fail(err, errlen, "out of memory while counting words");
    }
    wmap words = maps[0];
    free(maps);

    /* sorted, deterministic word list */
    size_t nw = words.n;
    wslot *wl = malloc((nw ? nw : 1) * sizeof *wl);
    size_t total_syms = 0;
    if (!wl) {
        wmap_free(&words);
        return fio_fail(err, errlen, "out of memory");
    }
    for (size_t i = 0, k = 0; i <= words.mask; i++)
        if (words.slots[i].h) {
            wl[k++] = words.slots[i];
            total_syms += words.slots[i].klen;
        }
    /* a bottom-up merge sort (qsort has no context argument in C11) */
    {
        wslot *tmp = malloc((nw ? nw : 1) * sizeof *tmp);
        if (!tmp) {
            free(wl);
            wmap_free(&words);
            return fio_fail(err, errlen, "out of memory");
        }
        for (size_t width = 1; width < nw; width *= 2) {
            for (size_t lo = 0; lo < nw; lo += 2 * width) {
                size_t mid = lo + width < nw ? lo + width : nw, hi = lo + 2 * width < nw ? lo + 2 * width : nw;
                size_t a = lo, b = mid, k = lo;
                while (a < mid && b < hi) tmp[k++] = cmp_words(&wl[b], &wl[a], words.keys) < 0 ? wl[b++] : wl[a++];
                while (a < mid) tmp[k++] = wl[a++];
                while (b < hi) tmp[k++] = wl[b++];
            }
            wslot *sw = wl;
            wl = tmp;
            tmp = sw;
        }
        free(tmp);
    }

    /* token table: bytes of every token, ids 0..255 the bytes in GPT-2's order */
    size_t maxtok = o->vocab_size;
    uint8_t **tb = calloc(maxtok, sizeof *tb);
    size_t *tl = calloc(maxtok, sizeof *tl);
    int32_t(*merges)[2] = malloc(maxtok * 2 * sizeof *merges); /* merges may repeat a token's bytes */
    size_t maxmerges = maxtok * 2, nm = 0;
    int32_t *syms = malloc((total_syms ? total_syms : 1) * sizeof *syms);
    size_t *wstart = malloc((nw ? nw : 1) * sizeof *wstart);
    uint32_t *wlen = malloc((nw ? nw : 1) * sizeof *wlen);
    uint64_t *wc = malloc((nw ? nw : 1) * sizeof *wc);
    uint32_t *wstamp = malloc((nw ? nw : 1) * sizeof *wstamp);
    pairs P = {0};
    P.mask = (1u << 16) - 1;
    P.keys = calloc(P.mask + 1, sizeof *P.keys);
    P.idx = malloc((P.mask + 1) * sizeof *P.idx);
    /* bytes -> token id for the trainer's own tokens (to notice a merge that spells an existing token) */
    wmap tokmap = {0};
    int rc = -1;
    int32_t *touched = NULL, *wbuf = NULL;
    size_t ntouched = 0, ctouched = 0;
    if (!tb || !tl || !merges || !syms || !wstart || !wlen || !wc || !wstamp || !P.keys || !P.idx ||
        wmap_init(&tokmap, 1 << 16)) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    size_t ntok = 256;
    for (int b = 0; b < 256; b++) {
        int r = tok_byte_rank((uint8_t)b);
        tb[r] = malloc(1);
        if (!tb[r]) {
            fio_fail(err, errlen, "out of memory");
            goto done;
        }
        tb[r][0] = (uint8_t)b;
        tl[r] = 1;
        uint8_t c = (uint8_t)b;
        wmap_add(&tokmap, &c, 1, tok_hash_bytes(&c, 1) | 1, (uint64_t)r);
    }
    size_t so = 0;
    size_t maxwlen = 1;
    for (size_t w = 0; w < nw; w++) {
        wstart[w] = so;
        wlen[w] = wl[w].klen;
        wc[w] = wl[w].count;
        wstamp[w] = UINT32_MAX;
        if (wl[w].klen > maxwlen) maxwlen = wl[w].klen;
        const uint8_t *k = words.keys + wl[w].koff;
        for (uint32_t j = 0; j < wl[w].klen; j++) syms[so++] = tok_byte_rank(k[j]);
    }
    wbuf = malloc(maxwlen * sizeof *wbuf);
    if (!wbuf) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    /* 2. initial pair counts */
    for (size_t w = 0; w < nw; w++) {
        int32_t *s = syms + wstart[w];
        for (uint32_t j = 0; j + 1 < wlen[w]; j++) {
            int32_t p = pair_get(&P, s[j], s[j + 1], 1);
            if (p < 0) break;
            P.ps[p].count += (int64_t)wc[w];
            pair_add_word(&P, &P.ps[p], (int32_t)w);
        }
    }
    for (size_t p = 0; p < P.nps; p++)
        if (P.ps[p].count >= (int64_t)o->min_frequency) hpush(&P, (hentry){P.ps[p].count, P.ps[p].a, P.ps[p].b});
    if (P.oom) {
        fio_fail(err, errlen, "out of memory while counting pairs");
        goto done;
    }

    /* 3. merges */
    const size_t target = o->vocab_size - 1; /* last id is <|endoftext|> */
    uint32_t iter = 0;
    while (ntok < target && P.hn > 0 && nm < maxmerges) {
        hentry top = hpop(&P);
        int32_t pi = pair_get(&P, top.a, top.b, 0);
        pstat *ps = &P.ps[pi];
        if (top.count != ps->count) {
            if (top.count > ps->count && ps->count >= (int64_t)o->min_frequency)
                hpush(&P, (hentry){ps->count, ps->a, ps->b});
            continue;
        }
        int32_t a = top.a, b = top.b;
        /* the new token's bytes */
        size_t la = tl[a], lb = tl[b];
        uint8_t *nb = malloc(la + lb);
        if (!nb) {
            fio_fail(err, errlen, "out of memory");
            goto done;
        }
        memcpy(nb, tb[a], la);
        memcpy(nb + la, tb[b], lb);
        uint64_t hh = tok_hash_bytes(nb, la + lb) | 1;
        int32_t z = -1;
        for (size_t i = (size_t)hh & tokmap.mask; tokmap.slots[i].h; i = (i + 1) & tokmap.mask) {
            wslot *s = &tokmap.slots[i];
            if (s->h == hh && s->klen == la + lb && memcmp(tokmap.keys + s->koff, nb, la + lb) == 0) {
                z = (int32_t)s->count;
                break;
            }
        }
        if (z < 0) {
            z = (int32_t)ntok++;
            tb[z] = nb;
            tl[z] = la + lb;
            wmap_add(&tokmap, nb, la + lb, hh, (uint64_t)z);
        } else {
            free(nb);
        }
        merges[nm][0] = a;
        merges[nm][1] = b;
        nm++;
        iter++;
        ntouched = 0;
        /* rewrite the words that hold (a, b) */
        uint32_t nwl = ps->nw;
        int32_t *wlist = ps->words;
        ps->words = NULL;
        ps->nw = ps->cw = 0;
        for (uint32_t q = 0; q < nwl; q++) {
            int32_t w = wlist[q];
            if (wstamp[w] == iter) continue;
            wstamp[w] = iter;
            int32_t *s = syms + wstart[w];
            uint32_t n = wlen[w];
            int has = 0;
            for (uint32_t j = 0; j + 1 < n; j++)
                if (s[j] == a && s[j + 1] == b) {
                    has = 1;
                    break;
                }
            if (!has) continue;
            int64_t c = (int64_t)wc[w];
            for (int pass = 0; pass < 2; pass++) {
                /* pass 0: remove the word's pairs; then rewrite; pass 1: add them back */
                if (pass == 1) {
                    uint32_t m = 0;
                    for (uint32_t j = 0; j < n; j++) {
                        if (j + 1 < n && s[j] == a && s[j + 1] == b) {
                            wbuf[m++] = z;
                            j++;
                        } else {
                            wbuf[m++] = s[j];
                        }
                    }
                    memcpy(s, wbuf, m * sizeof *s);
                    n = wlen[w] = m;
                }
                for (uint32_t j = 0; j + 1 < n; j++) {
                    int32_t p = pair_get(&P, s[j], s[j + 1], pass == 1);
                    if (p < 0) {
                        if (P.oom) break;
                        continue;
                    }
                    pstat *t = &P.ps[p];
                    if (t->stamp != iter) {
                        t->stamp = iter;
                        t->before = t->count;
                        if (ntouched == ctouched) {
                            ctouched = ctouched ? ctouched * 2 : 1024;
                            int32_t *nt2 = realloc(touched, ctouched * sizeof *nt2);
                            if (!nt2) {
                                P.oom = 1;
                                break;
                            }
                            touched = nt2;
                        }
                        touched[ntouched++] = p;
                    }
                    t->count += pass == 0 ? -c : c;
                    if (pass == 1) pair_add_word(&P, t, w);
                }
            }
        }
        free(wlist);
        ps = &P.ps[pi]; /* ps may have moved */
        for (size_t k = 0; k < ntouched; k++) {
            pstat *t = &P.ps[touched[k]];
            if (t->count > t->before && t->count >= (int64_t)o->min_frequency)
                hpush(&P, (hentry){t->count, t->a, t->b});
        }
        if (P.oom || tokmap.oom) {
            fio_fail(err, errlen, "out of memory while merging");
            goto done;
        }
        if (o->progress && (ntok % 64 == 0 || ntok == target))
            o->progress(o->progress_ud, (double)(ntok - 256), (double)(target - 256), "merging");
    }
    /* <|endoftext|> last */
    {
        static const char eot[] = TOK_EOT_TEXT;
        tb[ntok] = malloc(sizeof eot - 1);
        if (!tb[ntok]) {
            fio_fail(err, errlen, "out of memory");
            goto done;
        }
        memcpy(tb[ntok], eot, sizeof eot - 1);
        tl[ntok] = sizeof eot - 1;
        ntok++;
    }
    if (o->progress) o->progress(o->progress_ud, 1, 1, "merging");
    rc = tok_build(out, ntok, (const uint8_t *const *)tb, tl, (const int32_t(*)[2])merges, nm,
                   (int32_t)ntok - 1, err, errlen);
done:
    if (tb)
        for (size_t i = 0; i < maxtok; i++) free(tb[i]);
    free(tb);
    free(tl);
    free(merges);
    free(syms);
    free(wstart);
    free(wlen);
    free(wc);
    free(wstamp);
    free(wbuf);
    free(touched);
    for (size_t p = 0; p < P.nps; p++) free(P.ps[p].words);
    free(P.ps);
    free(P.keys);
    free(P.idx);
    free(P.heap);
    wmap_free(&tokmap);
    free(wl);
    wmap_free(&words);
    return rc;
}
