/* rollout.c — sampled completions laid out for the RL core and evaluation. See rollout.h. */
#include "rollout.h"

#include "fileio.h"

#include <stdlib.h>
#include <string.h>

int rollout_create(rollout *r, int max_rows, int max_T, int max_new, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (max_rows < 1 || max_T < 2 || max_new < 1)
        return fio_fail(err, errlen, "rollout: %d rows x %d tokens (%d new) is too small", max_rows, max_T, max_new);
    const size_t n = (size_t)max_rows * (size_t)max_T, R = (size_t)max_rows;
    r->max_rows = max_rows;
    r->max_T = max_T;
    r->max_new = max_new;
    r->gen = malloc(R * (size_t)max_new * sizeof *r->gen);
    r->glogp = malloc(R * (size_t)max_new * sizeof *r->glogp);
    r->glen = malloc(R * sizeof *r->glen);
    r->tokens = calloc(n, sizeof *r->tokens); /* zeros: a valid batch to size activations with */
    r->targets = malloc(n * sizeof *r->targets);
    r->mask = malloc(n);
    r->fmask = malloc(n * sizeof *r->fmask);
    r->plen = malloc(R * sizeof *r->plen);
    r->len = malloc(R * sizeof *r->len);
    r->has_stop = malloc(R);
    r->logp = calloc(n, sizeof *r->logp);
    r->ref_logp = calloc(n, sizeof *r->ref_logp);
    r->slogp = calloc(n, sizeof *r->slogp);
    r->values = calloc(n, sizeof *r->values);
    r->rewards = calloc(n, sizeof *r->rewards);
    r->adv = calloc(n, sizeof *r->adv);
    r->ret = calloc(n, sizeof *r->ret);
    r->scores = calloc(R, sizeof *r->scores);
    r->raw_scores = calloc(R, sizeof *r->raw_scores);
    if (r->gen && r->glogp && r->slogp && r->glen && r->tokens && r->targets && r->mask && r->fmask && r->plen && r->len && r->has_stop && r->logp && r->ref_logp &&
        r->values && r->rewards && r->adv && r->ret && r->scores && r->raw_scores)
        return 0;
    rollout_free(r);
    return fio_fail(err, errlen, "rollout: out of memory");
}

void rollout_free(rollout *r)
{
    free(r->gen);
    free(r->glogp);
    free(r->slogp);
    free(r->glen);
    free(r->tokens);
    free(r->targets);
    free(r->mask);
    free(r->fmask);
    free(r->plen);
    free(r->len);
    free(r->has_stop);
    free(r->logp);
    free(r->ref_logp);
    free(r->values);
    free(r->rewards);
    free(r->adv);
    free(r->ret);
    free(r->scores);
    free(r->raw_scores);
    memset(r, 0, sizeof *r);
}

int rollout_set(rollout *r, int B, const int32_t *const *prompts, const int *plen, const int32_t *comp,
                       int comp_stride, const int *clen, int32_t stop, int32_t pad, char *err, size_t errlen)
{
    if (B < 1 || B > r->max_rows) return fio_fail(err, errlen, "rollout: %d rows (room for %d)", B, r->max_rows);
    int T = 2;
    for (int b = 0; b < B; b++) {
        const int32_t *c = comp + (size_t)b * comp_stride;
        int n = 0;
        while (n < clen[b] && !(n > 0 && stop >= 0 && c[n - 1] == stop)) n++; /* up to the first stop, kept */
        if (plen[b] < 1 || n < 1)
            return fio_fail(err, errlen, "rollout: row %d has %s", b, plen[b] < 1 ? "an empty prompt" : "an empty completion");
        r->plen[b] = plen[b];
        r->len[b] = plen[b] + n;
        r->has_stop[b] = stop >= 0 && c[n - 1] == stop;
        if (r->len[b] > r->max_T)
            return fio_fail(err, errlen, "rollout: row %d has %d tokens (room for %d)", b, r->len[b], r->max_T);
        T = r->len[b] > T ? r->len[b] : T;
    }
    r->B = B;
    r->T = T;
    const size_t n = (size_t)B * (size_t)T;
    for (int b = 0; b < B; b++) {
        int32_t *row = r->tokens + (size_t)b * T;
        memcpy(row, prompts[b], (size_t)plen[b] * sizeof *row);
        memcpy(row + plen[b], comp + (size_t)b * comp_stride, (size_t)(r->len[b] - plen[b]) * sizeof *row);
        for (int t = r->len[b]; t < T; t++) row[t] = pad;
        for (int t = 0; t < T; t++) {
            const size_t i = (size_t)b * T + t;
            r->targets[i] = t + 1 < r->len[b] ? row[t + 1] : pad;
            r->mask[i] = t >= plen[b] - 1 && t <= r->len[b] - 2;
            r->fmask[i] = r->mask[i];
        }
    }
    memset(r->logp, 0, n * sizeof *r->logp);
    memset(r->ref_logp, 0, n * sizeof *r->ref_logp);
    memset(r->slogp, 0, n * sizeof *r->slogp);
    memset(r->values, 0, n * sizeof *r->values);
    memset(r->rewards, 0, n * sizeof *r->rewards);
    memset(r->adv, 0, n * sizeof *r->adv);
    memset(r->ret, 0, n * sizeof *r->ret);
    return 0;
}

int rollout_sample(rollout *r, gpt2 *m, int B, const int32_t *const *prompts, const int *plen, const gpt2_sample_opts *so,
                   char *err, size_t errlen)
{
    if (B > r->max_rows || so->max_new_tokens > r->max_new)
        return fio_fail(err, errlen, "rollout: %d rows of %d new tokens (room for %d of %d)", B, so->max_new_tokens,
                        r->max_rows, r->max_new);
    if (gpt2_sample(m, B, prompts, plen, so, r->gen, r->glen, r->glogp, err, errlen)) return -1;
    return rollout_layout(r, B, prompts, plen, so, err, errlen);
}

int rollout_layout(rollout *r, int B, const int32_t *const *prompts, const int *plen, const gpt2_sample_opts *so,
                   char *err, size_t errlen)
{
    const int32_t pad = so->stop_token >= 0 ? so->stop_token : 0;
    if (rollout_set(r, B, prompts, plen, r->gen, so->max_new_tokens, r->glen, so->stop_token, pad, err, errlen)) return -1;
    /* completion token j of row b is the action at position plen[b] - 1 + j */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < r->len[b] - r->plen[b]; j++)
            r->slogp[(size_t)b * r->T + r->plen[b] - 1 + j] = r->glogp[(size_t)b * so->max_new_tokens + j];
    return 0;
}

int rollout_logprobs(gpt2 *m, const rollout *r, float temperature, float *out, char *err, size_t errlen)
{
    float loss;
    if (gpt2_forward_temp(m, r->tokens, r->targets, r->fmask, r->B, r->T, temperature, &loss, err, errlen)) return -1;
    const float *lp = gpt2_logp(m);
    const size_t n = (size_t)r->B * (size_t)r->T;
    for (size_t i = 0; i < n; i++) out[i] = r->mask[i] ? lp[i] : 0.0f;
    return 0;
}

void rollout_seq_sum(const rollout *r, const float *a, const float *b_, double *out)
{
    for (int b = 0; b < r->B; b++) {
        double s = 0;
        for (int t = 0; t < r->T; t++) {
            const size_t i = (size_t)b * r->T + t;
            if (r->mask[i]) s += (double)a[i] - (b_ ? (double)b_[i] : 0.0);
        }
        out[b] = s;
    }
}

rollout rollout_rows(const rollout *r, int lo, int hi)
{
    rollout v = *r;
    const size_t o = (size_t)lo * (size_t)r->T;
    v.B = hi - lo;
    v.tokens += o, v.targets += o, v.mask += o, v.fmask += o;
    v.logp += o, v.ref_logp += o, v.values += o, v.slogp += o, v.rewards += o, v.adv += o, v.ret += o;
    v.plen += lo, v.len += lo, v.has_stop += lo, v.scores += lo, v.raw_scores += lo;
    return v;
}
