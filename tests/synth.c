/* synth.c — see synth.h. */
#include "synth.h"

#include "hf.h"
#include "kv.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const int32_t P0[] = {1, 2}, P1[] = {4}, P2[] = {5, 6, 7}, P3[] = {2, 0};
static const int32_t *PROMPTS[SYN_PROMPTS] = {P0, P1, P2, P3};
static int PLEN[SYN_PROMPTS] = {2, 1, 3, 2};

gpt2 *syn_model(uint64_t seed)
{
    gpt2_config c = {2, 2, 32, SYN_V, 32, 1e-5f};
    gpt2 *m;
    char err[256];
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, seed);
    /* the final LayerNorm's weight and bias 0: the hidden state is 0, every logit 0, and the model
     * exactly uniform in every context (the tied LM head is wte · h) */
    const gpt2_tensor *tb = gpt2_param_table(m);
    float *p = gpt2_params(m);
    for (int k = GPT2_LNFW; k <= GPT2_LNFB; k++) memset(p + tb[k].offset, 0, tb[k].numel * sizeof *p);
    gpt2_set_threads(m, 1);
    return m;
}

void syn_policy_dir(char *dir, size_t n, const char *tag)
{
    snprintf(dir, n, "%s/policy", tu_tmpdir(tag));
    gpt2 *m = syn_model(11);
    char err[256];
    cr_assert(hf_save_gpt2(m, dir, err, sizeof err) == 0, "%s", err);
    gpt2_free(m);
}

void syn_prompts(ds_prompts *ps) { *ps = (ds_prompts){PROMPTS, PLEN, SYN_PROMPTS}; }

static int count_target(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                        float *scores, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    syn_counter *c = ud;
    for (int b = 0; b < B; b++) {
        int k = 0;
        for (int t = prompt_lengths[b]; t < lengths[b]; t++) k += tokens[(size_t)b * T + t] == SYN_TARGET;
        scores[b] = (float)k;
        c->hits += k;
        c->tokens += lengths[b] - prompt_lengths[b];
    }
    return 0;
}

scorer syn_scorer(syn_counter *c) { return (scorer){count_target, c}; }

/* the next-token distribution after prompt k, exactly (temperature 1) */
static void next_dist(gpt2 *m, int k, double *p)
{
    char err[256];
    float loss;
    cr_assert(gpt2_forward(m, PROMPTS[k], NULL, NULL, 1, PLEN[k], &loss, err, sizeof err) == 0, "%s", err);
    const float *lg = gpt2_logits(m) + (size_t)(PLEN[k] - 1) * SYN_V;
    double mx = lg[0], z = 0;
    for (int v = 1; v < SYN_V; v++) mx = lg[v] > mx ? lg[v] : mx;
    for (int v = 0; v < SYN_V; v++) z += p[v] = exp(lg[v] - mx);
    for (int v = 0; v < SYN_V; v++) p[v] /= z;
}

void syn_first_token(gpt2 *pol, gpt2 *ref, double *pt, double *kl)
{
    *pt = *kl = 0;
    for (int k = 0; k < SYN_PROMPTS; k++) {
        double p[SYN_V], q[SYN_V];
        next_dist(pol, k, p);
        next_dist(ref, k, q);
        *pt += p[SYN_TARGET] / SYN_PROMPTS;
        for (int v = 0; v < SYN_V; v++) *kl += p[v] * log(p[v] / q[v]) / SYN_PROMPTS;
    }
}

double syn_optimum_kl(double beta) { return exp(1 / beta) / (exp(1 / beta) + SYN_V - 1); }

double syn_optimum_grpo(double beta, int G)
{
    const double c = 1.0 - 1.0 / G, b = beta - c; /* c p^2 + (β - c) p - β/V = 0 */
    return (-b + sqrt(b * b + 4 * c * beta / SYN_V)) / (2 * c);
}

double syn_target_prob(gpt2 *pol, int n, int new_tokens)
{
    enum { MAXN = 64 };
    cr_assert(n <= MAXN);
    const int32_t *pr[MAXN];
    int pl[MAXN], ol[MAXN];
    int32_t out[MAXN * SYN_NEW], row[16];
    for (int i = 0; i < n; i++) pr[i] = PROMPTS[i % SYN_PROMPTS], pl[i] = PLEN[i % SYN_PROMPTS];
    gpt2_sample_opts so = gpt2_sample_defaults();
    cr_assert(new_tokens >= 1 && new_tokens <= SYN_NEW);
    so.max_new_tokens = new_tokens;
    so.seed = 99;
    char err[256];
    cr_assert(gpt2_sample(pol, n, pr, pl, &so, out, ol, NULL, err, sizeof err) == 0, "%s", err);
    double s = 0, k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(row, pr[i], (size_t)pl[i] * sizeof *row);
        memcpy(row + pl[i], out + i * new_tokens, (size_t)new_tokens * sizeof *row);
        float loss;
        cr_assert(gpt2_forward(pol, row, NULL, NULL, 1, pl[i] + new_tokens, &loss, err, sizeof err) == 0, "%s", err);
        for (int t = pl[i] - 1; t < pl[i] + new_tokens - 1; t++) {
            const float *lg = gpt2_logits(pol) + (size_t)t * SYN_V;
            double mx = lg[0], z = 0;
            for (int v = 1; v < SYN_V; v++) mx = lg[v] > mx ? lg[v] : mx;
            for (int v = 0; v < SYN_V; v++) z += exp(lg[v] - mx);
            s += exp(lg[SYN_TARGET] - mx) / z, k += 1;
        }
    }
    return s / k;
}
