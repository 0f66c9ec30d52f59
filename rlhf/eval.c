/* eval.c — held-out evaluation: samples, reward score, sequence KL to a reference, distinct-n, an
 * optional second scorer, and the samples file. See eval.h. */
#include "eval.h"

#include "fileio.h"
#include "rng.h"
#include "rollout.h"
#include "stats.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

eval_opts eval_defaults(void)
{
    eval_opts o = {0};
    o.n = 64;
    o.batch = 8;
    o.max_new_tokens = 32;
    o.temperature = 1.0f;
    o.stop_token = -1;
    o.seed = 1234;
    o.weights = GPT2_W_AUTO;
    return o;
}

/* ---- distinct-n -------------------------------------------------------------------------------- */

/* an open-addressing set of 64-bit keys (key + 1 stored, 0 = empty) */
typedef struct {
    uint64_t *k;
    size_t cap, n;
} keyset;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static void keyset_add(keyset *s, uint64_t key)
{
    const uint64_t v = key + 1;
    for (size_t i = mix(key) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->k[i] == v) return;
        if (s->k[i] == 0) {
            s->k[i] = v;
            s->n++;
            return;
        }
    }
}

int eval_distinct(const int32_t *const *ids, const int *len, int n, double *d1, double *d2, char *err, size_t errlen)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) total += len[i] > 0 ? (size_t)len[i] : 0;
    size_t cap = 16;
    while (cap < 2 * total + 2) cap <<= 1;
    keyset u = {calloc(cap, sizeof(uint64_t)), cap, 0}, b = {calloc(cap, sizeof(uint64_t)), cap, 0};
    if (!u.k || !b.k) {
        free(u.k);
        free(b.k);
        return fio_fail(err, errlen, "distinct-n: out of memory");
    }
    size_t nb = 0;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < len[i]; t++) {
            keyset_add(&u, (uint32_t)ids[i][t]);
            if (t > 0) {
                keyset_add(&b, (uint64_t)(uint32_t)ids[i][t - 1] << 32 | (uint32_t)ids[i][t]);
                nb++;
            }
        }
    *d1 = total ? (double)u.n / (double)total : 0.0;
    *d2 = nb ? (double)b.n / (double)nb : 0.0;
    free(u.k);
    free(b.k);
    return 0;
}

/* ---- the run ----------------------------------------------------------------------------------- */

static const uint8_t k_replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

/* bytes as a JSON string, invalid UTF-8 replaced by U+FFFD (a cut through a multi-byte character
 * is common in sampled text) */
static json_t *json_text(const uint8_t *s, size_t n)
{
    tok_bytes o = {0};
    size_t i = 0;
    int ok = 1;
    while (i < n && ok) {
        utf8proc_int32_t cp;
        const utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        ok = k > 0 ? !tok_bytes_append(&o, s + i, (size_t)k) : !tok_bytes_append(&o, k_replacement, 3);
        i += k > 0 ? (size_t)k : 1;
    }
    json_t *j = ok ? json_stringn(o.n ? (const char *)o.data : "", o.n) : NULL;
    tok_bytes_free(&o);
    return j;
}

static int decode_json(const tok_tokenizer *t, const int32_t *ids, int n, json_t **out, char *err, size_t errlen)
{
    tok_bytes b = {0};
    int rc = tok_decode_lenient(t, ids, (size_t)n, &b, err, errlen);
    if (rc == 0 && !(*out = json_text(b.data, b.n))) rc = fio_fail(err, errlen, "out of memory");
    tok_bytes_free(&b);
    return rc;
}

/* one line of the samples file appended to buf */
static int sample_line(const tok_tokenizer *t, const rollout *r, int b, int32_t stop, double score, double kl,
                       double extra, tok_bytes *buf, char *err, size_t errlen)
{
    const int32_t *row = r->tokens + (size_t)b * r->T, *c;
    const int n = scorer_completion(r->tokens, r->len, r->plen, b, r->T, stop, &c);
    json_t *jp = NULL, *jc = NULL;
    if (decode_json(t, row, r->plen[b], &jp, err, errlen) || decode_json(t, c, n, &jc, err, errlen)) {
        json_decref(jp);
        return -1;
    }
    json_t *j = json_pack("{s:o, s:o}", "prompt", jp, "completion", jc);
    const struct {
        const char *k;
        double v;
    } num[] = {{"score", score}, {"kl", kl}, {"extra", extra}};
    for (int i = 0; j && i < 3; i++)
        if (!isnan(num[i].v)) json_object_set_new(j, num[i].k, json_real(num[i].v));
    if (j) {
        json_object_set_new(j, "tokens", json_integer(r->len[b] - r->plen[b]));
        json_object_set_new(j, "eos", json_boolean(r->has_stop[b]));
    }
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    const int rc = !s || tok_bytes_append(buf, s, strlen(s)) || tok_bytes_append(buf, "\n", 1);
    free(s);
    return rc ? fio_fail(err, errlen, "out of memory") : 0;
}

/* the scratch of a run: the rollout of one batch, every completion, per-sample values */
typedef struct {
    rollout r;
    const int32_t **pp;      /* (batch) the batch's prompts */
    int *pl;
    int32_t *comp;           /* (n, max_new) the completions without their stop token */
    int *clen;
    const int32_t **cp;
    double *sc, *kl, *ex;    /* (n) score, sequence KL, extra */
    float *fs;               /* (batch) one scorer's output */
    tok_bytes lines;         /* the samples file */
} eval_work;

static void work_free(eval_work *w)
{
    rollout_free(&w->r);
    free(w->pp);
    free(w->pl);
    free(w->comp);
    free(w->clen);
    free(w->cp);
    free(w->sc);
    free(w->kl);
    free(w->ex);
    free(w->fs);
    tok_bytes_free(&w->lines);
}

static int work_create(eval_work *w, int B, int n, int maxT, int maxn, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    if (rollout_create(&w->r, B, maxT, maxn, err, errlen)) return -1;
    w->pp = malloc((size_t)B * sizeof *w->pp);
    w->pl = malloc((size_t)B * sizeof *w->pl);
    w->comp = malloc((size_t)n * maxn * sizeof *w->comp);
    w->clen = malloc((size_t)n * sizeof *w->clen);
    w->cp = malloc((size_t)n * sizeof *w->cp);
    w->sc = malloc((size_t)n * sizeof *w->sc);
    w->kl = malloc((size_t)n * sizeof *w->kl);
    w->ex = malloc((size_t)n * sizeof *w->ex);
    w->fs = malloc((size_t)B * sizeof *w->fs);
    if (w->pp && w->pl && w->comp && w->clen && w->cp && w->sc && w->kl && w->ex && w->fs) return 0;
    work_free(w);
    return fio_fail(err, errlen, "eval: out of memory");
}

/* samples i0..i0+k: sample, KL, the completions, the scores and the samples file's lines */
static int eval_batch(gpt2 *policy, gpt2 *ref, const ds_prompts *p, const eval_opts *o, int i0, int k, eval_work *w,
                      long *eos, long *ntok, char *err, size_t errlen)
{
    for (int j = 0; j < k; j++) {
        w->pp[j] = p->rows[(i0 + j) % p->n];
        w->pl[j] = p->len[(i0 + j) % p->n];
    }
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.temperature = o->temperature;
    so.max_new_tokens = o->max_new_tokens;
    so.stop_token = o->stop_token;
    so.seed = rng_stream(o->seed, (uint64_t)i0);
    so.weights = o->weights;
    rollout *r = &w->r;
    int rc = rollout_sample(r, policy, k, w->pp, w->pl, &so, err, errlen);
    if (rc == 0 && ref) {
        rc = rollout_logprobs(policy, r, o->temperature, r->logp, err, errlen);
        if (rc == 0) rc = rollout_logprobs(ref, r, o->temperature, r->ref_logp, err, errlen);
        if (rc == 0) rollout_seq_sum(r, r->logp, r->ref_logp, w->kl + i0);
    }
    const int maxn = o->max_new_tokens;
    for (int j = 0; rc == 0 && j < k; j++) {
        const int i = i0 + j;
        if (!ref) w->kl[i] = NAN;
        w->sc[i] = w->ex[i] = NAN;
        /* distinct-n over the completion without its stop token */
        const int32_t *c;
        w->clen[i] = scorer_completion(r->tokens, r->len, r->plen, j, r->T, o->stop_token, &c);
        memcpy(w->comp + (size_t)i * maxn, c, (size_t)w->clen[i] * sizeof *w->comp);
        w->cp[i] = w->comp + (size_t)i * maxn;
        *eos += r->has_stop[j];
        *ntok += r->len[j] - r->plen[j];
    }
    if (rc == 0 && o->score.fn) rc = scorer_score(&o->score, r->tokens, r->len, r->plen, k, r->T, w->fs, err, errlen);
    for (int j = 0; rc == 0 && o->score.fn && j < k; j++) w->sc[i0 + j] = w->fs[j];
    if (rc == 0 && o->extra.fn) rc = scorer_score(&o->extra, r->tokens, r->len, r->plen, k, r->T, w->fs, err, errlen);
    for (int j = 0; rc == 0 && o->extra.fn && j < k; j++) w->ex[i0 + j] = w->fs[j];
    for (int j = 0; rc == 0 && o->samples_path && j < k; j++)
        rc = sample_line(o->tok, r, j, o->stop_token, w->sc[i0 + j], w->kl[i0 + j], w->ex[i0 + j], &w->lines, err, errlen);
    return rc;
}

int eval_run(gpt2 *policy, gpt2 *ref, const ds_prompts *p, const eval_opts *o, eval_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (o->n < 1 || o->batch < 1 || o->max_new_tokens < 1 || p->n < 1)
        return fio_fail(err, errlen, "eval: needs prompts, and positive n, batch and max new tokens");
    if (!(o->temperature > 0)) return fio_fail(err, errlen, "eval: temperature %g must be positive", (double)o->temperature);
    if (o->samples_path && !o->tok) return fio_fail(err, errlen, "eval: the samples file needs a tokenizer");
    for (int i = 0; i < p->n; i++)
        if (p->len[i] < 1) return fio_fail(err, errlen, "eval: prompt %d is empty", i);
    const int B = o->batch < o->n ? o->batch : o->n, n = o->n;
    eval_work w;
    if (work_create(&w, B, n, ds_prompts_max_len(p) + o->max_new_tokens, o->max_new_tokens, err, errlen)) return -1;
    long eos = 0, ntok = 0;
    int rc = 0;
    for (int i0 = 0; rc == 0 && i0 < n; i0 += B) {
        const int k = n - i0 < B ? n - i0 : B;
        rc = eval_batch(policy, ref, p, o, i0, k, &w, &eos, &ntok, err, errlen);
        if (rc == 0 && o->on_batch) o->on_batch(o->ud, i0 + k, n);
    }
    if (rc == 0) rc = eval_distinct(w.cp, w.clen, n, &res->distinct1, &res->distinct2, err, errlen);
    if (rc == 0) {
        res->n = n;
        res->score = stats_mean(w.sc, n);
        res->score_std = stats_sd(w.sc, n, 0);
        res->kl = stats_mean(w.kl, n);
        res->kl_std = stats_sd(w.kl, n, 0);
        res->extra = stats_mean(w.ex, n);
        res->extra_std = stats_sd(w.ex, n, 0);
        res->completion_length = (double)ntok / n;
        res->eos_rate = (double)eos / n;
    }
    if (rc == 0 && o->samples_path)
        rc = fio_write_atomic(o->samples_path, w.lines.data ? (const void *)w.lines.data : "", w.lines.n, err, errlen);
    work_free(&w);
    return rc;
}
