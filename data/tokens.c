/* tokens.c — tokenised corpus, split and deterministic batches. See tokens.h. */
#include "tokens.h"
#include "rng.h"

#include "fileio.h"

#include <stdlib.h>
#include <string.h>

int ds_tokens_load(ds_tokens *d, const tok_tokenizer *t, const char *const *files, size_t nfiles, int T,
                   double val_fraction, uint64_t seed, int nthreads, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (T < 1) return fio_fail(err, errlen, "sequence length must be positive");
    if (!(val_fraction >= 0 && val_fraction <= 0.5)) return fio_fail(err, errlen, "validation fraction must be in [0, 0.5]");
    tok_ids all = {0};
    for (size_t i = 0; i < nfiles; i++) {
        size_t len;
        char *text = fio_read_all(files[i], &len, err, errlen);
        if (!text) {
            tok_ids_free(&all);
            return -1;
        }
        if (i > 0 && tok_eot_id(t) >= 0 && tok_ids_push(&all, tok_eot_id(t))) {
            free(text);
            tok_ids_free(&all);
            return fio_fail(err, errlen, "out of memory");
        }
        /* a literal "<|endoftext|>" in a corpus separates documents (data/corpus.c writes it so) */
        int rc = tok_encode_parallel(t, text, len, TOK_ALLOW_SPECIAL, nthreads, &all);
        free(text);
        if (rc) {
            tok_ids_free(&all);
            return fio_fail(err, errlen, "%s: out of memory while tokenising", files[i]);
        }
    }
    size_t need = 2 * ((size_t)T + 1);
    if (all.n < need) {
        tok_ids_free(&all);
        return fio_fail(err, errlen, "the corpus has %zu tokens; sequences of %d need at least %zu", all.n, T, need);
    }
    d->tok = all.ids;
    d->n = all.n;
    d->T = T;
    d->seed = seed;
    size_t nval = (size_t)(val_fraction * (double)all.n);
    if (val_fraction > 0 && nval < (size_t)T + 1) nval = (size_t)T + 1;
    d->n_train = all.n - nval;
    d->nchunks = (d->n_train - 1) / (size_t)T;
    if (d->nchunks < 1) {
        ds_tokens_free(d);
        return fio_fail(err, errlen, "no training data left after the validation split");
    }
    d->perm = malloc(d->nchunks * sizeof *d->perm);
    if (!d->perm) {
        ds_tokens_free(d);
        return fio_fail(err, errlen, "out of memory");
    }
    d->perm_epoch = UINT64_MAX;
    return 0;
}

void ds_tokens_free(ds_tokens *d)
{
    free(d->tok);
    free(d->perm);
    memset(d, 0, sizeof *d);
}

/* a stateless hash: one splitmix64 step from x */
static uint64_t mix(uint64_t x) { return rng_u64(&x); }

static void make_perm(ds_tokens *d, uint64_t epoch)
{
    for (size_t i = 0; i < d->nchunks; i++) d->perm[i] = (uint32_t)i;
    uint64_t s = mix(d->seed ^ mix(epoch + 1));
    for (size_t i = d->nchunks; i > 1; i--) { /* Fisher-Yates */
        s = mix(s);
        size_t j = (size_t)(s % i);
        uint32_t t = d->perm[i - 1];
        d->perm[i - 1] = d->perm[j];
        d->perm[j] = t;
    }
    d->perm_epoch = epoch;
}

int ds_tokens_batch(ds_tokens *d, int B, uint64_t *cursor, int32_t *inp, int32_t *tgt)
{
    const int T = d->T;
    for (int b = 0; b < B; b++) {
        uint64_t c = (*cursor)++;
        uint64_t epoch = c / d->nchunks;
        if (epoch != d->perm_epoch) make_perm(d, epoch);
        const int32_t *src = d->tok + (size_t)d->perm[c % d->nchunks] * (size_t)T;
        memcpy(inp + (size_t)b * T, src, (size_t)T * sizeof *inp);
        memcpy(tgt + (size_t)b * T, src + 1, (size_t)T * sizeof *tgt);
    }
    return 0;
}

size_t ds_tokens_val_chunks(const ds_tokens *d)
{
    size_t nv = d->n - d->n_train;
    return nv > (size_t)d->T ? (nv - 1) / (size_t)d->T : 0;
}

int ds_tokens_val_batch(const ds_tokens *d, int B, size_t k, int32_t *inp, int32_t *tgt)
{
    const int T = d->T;
    size_t nv = ds_tokens_val_chunks(d);
    int filled = 0;
    for (int b = 0; b < B; b++) {
        size_t c = k * (size_t)B + (size_t)b;
        if (c >= nv) break;
        const int32_t *src = d->tok + d->n_train + c * (size_t)T;
        memcpy(inp + (size_t)b * T, src, (size_t)T * sizeof *inp);
        memcpy(tgt + (size_t)b * T, src + 1, (size_t)T * sizeof *tgt);
        filled++;
    }
    return filled;
}
