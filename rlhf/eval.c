/* eval.c — held-out evaluation: samples, reward score, sequence KL to a reference, distinct-n, an
 * optional second scorer, and the samples file. See eval.h. */
#include "eval.h"

#include "fileio.h"
#include "rng.h"

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

/* ---- decoding ---------------------------------------------------------------------------------- */

static const uint8_t k_replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

/* Append the bytes of ids to out; an id beyond the tokenizer (a model whose vocabulary is padded past
 * it can sample one) becomes U+FFFD instead of an error. */
static int decode_lenient(const tok_tokenizer *t, const int32_t *ids, int n, tok_bytes *out, char *err, size_t errlen)
{
    const int32_t V = (int32_t)tok_vocab_size(t);
    for (int i = 0; i < n;) {
        int k = 0;
        while (i + k < n && ids[i + k] >= 0 && ids[i + k] < V) k++;
        if (k && tok_decode(t, ids + i, (size_t)k, out, err, errlen)) return -1;
        i += k;
        if (i < n) {
            if (tok_bytes_append(out, k_replacement, 3)) return fio_fail(err, errlen, "out of memory");
            i++;
        }
    }
    return 0;
}

/* ---- the gold judge as a scorer ---------------------------------------------------------------- */

/* tokens of row b's completion, a final stop token left out */
static int completion_of(const int32_t *tokens, const int *lengths, const int *prompt_lengths, int b, int T, int32_t stop,
                         const int32_t **out)
{
    const int32_t *row = tokens + (size_t)b * T;
    int n = lengths[b] - prompt_lengths[b];
    if (n > 0 && stop >= 0 && row[lengths[b] - 1] == stop) n--;
    *out = row + prompt_lengths[b];
    return n;
}

int eval_judge_scorer(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                      float *scores, char *err, size_t errlen)
{
    const eval_judge *g = ud;
    tok_bytes text = {0};
    int rc = 0;
    for (int b = 0; b < B && rc == 0; b++) {
        const int32_t *c;
        const int n = completion_of(tokens, lengths, prompt_lengths, b, T, g->stop_token, &c);
        text.n = 0;
        rc = decode_lenient(g->t, c, n, &text, err, errlen);
        judge_result jr;
        if (rc == 0) judge_score(g->j, (const char *)text.data, text.n, &jr);
        scores[b] = rc == 0 ? (float)jr.norm : 0.0f;
    }
    tok_bytes_free(&text);
    return rc;
}

/* ---- the run ----------------------------------------------------------------------------------- */

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
    int rc = decode_lenient(t, ids, n, &b, err, errlen);
    if (rc == 0 && !(*out = json_text(b.data, b.n))) rc = fio_fail(err, errlen, "out of memory");
    tok_bytes_free(&b);
    return rc;
}

static void mean_std(const double *x, long n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (long i = 0; i < n; i++) s += x[i];
    const double m = n ? s / (double)n : NAN;
    for (long i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n ? sqrt(ss / (double)n) : NAN;
}

/* one line of the samples file appended to buf */
static int sample_line(const tok_tokenizer *t, const ppo_lm_rollout *r, int b, int32_t stop, double score, double kl,
                       double extra, tok_bytes *buf, char *err, size_t errlen)
{
    const int32_t *row = r->tokens + (size_t)b * r->T, *c;
    const int n = completion_of(r->tokens, r->len, r->plen, b, r->T, stop, &c);
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

int eval_run(gpt2 *policy, gpt2 *ref, const int32_t *const *prompts, const int *plen, int nprompts,
             ppo_lm_scorer score, void *score_ud, ppo_lm_scorer extra, void *extra_ud, const tok_tokenizer *t,
             const char *out_path, const eval_opts *o, eval_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    if (o->n < 1 || o->batch < 1 || o->max_new_tokens < 1 || nprompts < 1)
        return fio_fail(err, errlen, "eval: needs prompts, and positive n, batch and max new tokens");
    if (!(o->temperature > 0)) return fio_fail(err, errlen, "eval: temperature %g must be positive", (double)o->temperature);
    if (out_path && !t) return fio_fail(err, errlen, "eval: the samples file needs a tokenizer");
    int maxp = 0;
    for (int i = 0; i < nprompts; i++) {
        if (plen[i] < 1) return fio_fail(err, errlen, "eval: prompt %d is empty", i);
        maxp = plen[i] > maxp ? plen[i] : maxp;
    }
    const int B = o->batch < o->n ? o->batch : o->n, maxn = o->max_new_tokens, n = o->n;
    ppo_lm_rollout r;
    if (ppo_lm_rollout_create(&r, B, maxp + maxn, err, errlen)) return -1;
    int32_t *gen = malloc((size_t)B * maxn * sizeof *gen), *comp = malloc((size_t)n * maxn * sizeof *comp);
    int *olen = malloc((size_t)B * sizeof *olen), *clen = malloc((size_t)n * sizeof *clen);
    const int32_t **pp = malloc((size_t)B * sizeof *pp), **cp = malloc((size_t)n * sizeof *cp);
    int *pl = malloc((size_t)B * sizeof *pl);
    double *sc = malloc((size_t)n * sizeof *sc), *kl = malloc((size_t)n * sizeof *kl), *ex = malloc((size_t)n * sizeof *ex);
    float *fs = malloc((size_t)B * sizeof *fs);
    tok_bytes lines = {0};
    int rc = !gen || !comp || !olen || !clen || !pp || !cp || !pl || !sc || !kl || !ex || !fs
                 ? fio_fail(err, errlen, "eval: out of memory")
                 : 0;
    const int32_t pad = o->stop_token >= 0 ? o->stop_token : 0;
    long eos = 0, ntok = 0;
    for (int i0 = 0; rc == 0 && i0 < n; i0 += B) {
        const int k = n - i0 < B ? n - i0 : B;
        for (int j = 0; j < k; j++) {
            pp[j] = prompts[(i0 + j) % nprompts];
            pl[j] = plen[(i0 + j) % nprompts];
        }
        gpt2_sample_opts so = gpt2_sample_defaults();
        so.temperature = o->temperature;
        so.max_new_tokens = maxn;
        so.stop_token = o->stop_token;
        so.seed = rng_stream(o->seed, (uint64_t)i0);
        so.weights = o->weights;
        rc = gpt2_sample(policy, k, pp, pl, &so, gen, olen, NULL, err, errlen);
        if (rc == 0) rc = ppo_lm_rollout_set(&r, k, pp, pl, gen, maxn, olen, o->stop_token, pad, err, errlen);
        if (rc == 0 && ref) {
            rc = ppo_lm_rollout_logprobs(policy, &r, o->temperature, r.logp, err, errlen);
            if (rc == 0) rc = ppo_lm_rollout_logprobs(ref, &r, o->temperature, r.ref_logp, err, errlen);
            if (rc == 0) ppo_lm_seq_sum(&r, r.logp, r.ref_logp, kl + i0);
        }
        for (int j = 0; rc == 0 && j < k; j++) {
            if (!ref) kl[i0 + j] = NAN;
            sc[i0 + j] = ex[i0 + j] = NAN;
            /* distinct-n over the completion without its stop token */
            clen[i0 + j] = completion_of(r.tokens, r.len, r.plen, j, r.T, o->stop_token, &cp[i0 + j]);
            memcpy(comp + (size_t)(i0 + j) * maxn, cp[i0 + j], (size_t)clen[i0 + j] * sizeof *comp);
            cp[i0 + j] = comp + (size_t)(i0 + j) * maxn;
            eos += r.has_stop[j];
            ntok += r.len[j] - r.plen[j];
        }
        if (rc == 0 && score) rc = score(score_ud, r.tokens, r.len, r.plen, k, r.T, fs, err, errlen);
        for (int j = 0; rc == 0 && score && j < k; j++) sc[i0 + j] = fs[j];
        if (rc == 0 && extra) rc = extra(extra_ud, r.tokens, r.len, r.plen, k, r.T, fs, err, errlen);
        for (int j = 0; rc == 0 && extra && j < k; j++) ex[i0 + j] = fs[j];
        for (int j = 0; rc == 0 && out_path && j < k; j++)
            rc = sample_line(t, &r, j, o->stop_token, sc[i0 + j], kl[i0 + j], ex[i0 + j], &lines, err, errlen);
        if (rc == 0 && o->on_batch) o->on_batch(o->ud, i0 + k, n);
    }
    if (rc == 0) rc = eval_distinct(cp, clen, n, &res->distinct1, &res->distinct2, err, errlen);
    if (rc == 0) {
        res->n = n;
        mean_std(sc, n, &res->score, &res->score_std);
        mean_std(kl, n, &res->kl, &res->kl_std);
        mean_std(ex, n, &res->extra, &res->extra_std);
        res->completion_length = (double)ntok / n;
        res->eos_rate = (double)eos / n;
    }
    if (rc == 0 && out_path) rc = fio_write_atomic(out_path, lines.data ? (const void *)lines.data : "", lines.n, err, errlen);
    tok_bytes_free(&lines);
    ppo_lm_rollout_free(&r);
    free(gen);
    free(comp);
    free(olen);
    free(clen);
    free(pp);
    free(cp);
    free(pl);
    free(sc);
    free(kl);
    free(ex);
    free(fs);
    return rc;
}
