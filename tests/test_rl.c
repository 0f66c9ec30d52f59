/* test_rl.c — the RL core's rollout numerics (rlhf/rl.h, model/kv.h): the sampler's log-probs are
 * those of the distribution each token was drawn from (the tempered softmax, renormalised over the
 * top-k / top-p support), and the rollout carries them beside the trainer's recomputed ones. */
#include "gpt2.h"
#include "kv.h"
#include "rollout.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SV = 50 };

static gpt2 *peaky_model(void)
{
    gpt2_config c = {.n_layer = 2, .n_head = 2, .n_embd = 32, .vocab_size = SV, .n_positions = 40, .ln_eps = 1e-5f};
    gpt2 *m;
    char err[GPT2_ERR_LEN];
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, 99);
    float *p = gpt2_params(m);
    for (size_t i = 0; i < gpt2_num_params(m); i++) p[i] *= 4; /* peaky distributions: truncation matters */
    gpt2_set_threads(m, 1);
    return m;
}

static int by_desc(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* log-prob of token y under softmax(logits / temp) restricted to its top-k / top-p support */
static double truncated_logp(const float *lg, double temp, int top_k, double top_p, int y)
{
    double p[SV], s[SV], mx = lg[0], z = 0;
    for (int v = 1; v < SV; v++) mx = lg[v] > mx ? lg[v] : mx;
    for (int v = 0; v < SV; v++) z += p[v] = exp((lg[v] - mx) / temp);
    for (int v = 0; v < SV; v++) s[v] = p[v] /= z;
    qsort(s, SV, sizeof *s, by_desc);
    int n = top_k > 0 && top_k < SV ? top_k : SV;
    double kept = 0, acc = 0, tot = 0;
    for (int j = 0; j < n; j++) tot += s[j];
    for (int j = 0; j < n; j++)
        if ((acc += s[j]) >= top_p * tot) {
            n = j + 1;
            break;
        }
    for (int j = 0; j < n; j++) kept += s[j];
    cr_assert(p[y] >= s[n - 1], "token %d (p %.4g) is outside the support (smallest kept %.4g)", y, p[y], s[n - 1]);
    return log(p[y] / kept);
}

/* Sample with (temp, top_k, top_p); each sampled token's log-prob must be the truncated,
 * renormalised one a full forward gives (the sampler's fast exp: within 1e-4). */
static void check_sampler_logp(float temp, int top_k, float top_p)
{
    gpt2 *m = peaky_model();
    static const int32_t p0[] = {1, 2, 3}, p1[] = {7};
    const int32_t *prompts[] = {p0, p1};
    const int plen[] = {3, 1};
    enum { NEW = 12 };
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.temperature = temp, so.top_k = top_k, so.top_p = top_p, so.max_new_tokens = NEW, so.seed = 5;
    int32_t out[2 * NEW];
    int olen[2];
    float lp[2 * NEW];
    char err[GPT2_ERR_LEN];
    cr_assert(gpt2_sample(m, 2, prompts, plen, &so, out, olen, lp, err, sizeof err) == 0, "%s", err);
    double worst = 0;
    for (int b = 0; b < 2; b++) {
        int32_t seq[40];
        memcpy(seq, prompts[b], (size_t)plen[b] * sizeof *seq);
        memcpy(seq + plen[b], out + b * NEW, (size_t)olen[b] * sizeof *seq);
        float loss;
        cr_assert(gpt2_forward(m, seq, NULL, NULL, 1, plen[b] + olen[b], &loss, err, sizeof err) == 0, "%s", err);
        for (int j = 0; j < olen[b]; j++) {
            const float *lg = gpt2_logits(m) + (size_t)(plen[b] - 1 + j) * SV;
            const double want = truncated_logp(lg, temp, top_k, top_p, out[b * NEW + j]);
            worst = fmax(worst, fabs(lp[b * NEW + j] - want));
        }
    }
    cr_assert(worst < 1e-4, "T %.2f top-k %d top-p %.2f: worst log-prob error %.3g", (double)temp, top_k, (double)top_p, worst);
    gpt2_free(m);
}

Test(rl_sampler, logp_is_of_the_distribution_drawn_from)
{
    check_sampler_logp(1.0f, 0, 1.0f);  /* the whole softmax */
    check_sampler_logp(0.7f, 0, 1.0f);  /* tempered */
    check_sampler_logp(1.0f, 5, 1.0f);  /* top-k: renormalised over the 5 kept */
    check_sampler_logp(0.8f, 0, 0.6f);  /* top-p */
    check_sampler_logp(1.3f, 8, 0.9f);  /* both */
}

/* rollout_sample lays the sampler's log-probs out like the trainer's: position t holds token t+1's */
Test(rl_sampler, rollout_carries_the_sampler_logp_beside_the_recomputed_one)
{
    gpt2 *m = peaky_model();
    static const int32_t p0[] = {1, 2, 3}, p1[] = {7};
    const int32_t *prompts[] = {p0, p1};
    const int plen[] = {3, 1};
    rollout r;
    char err[GPT2_ERR_LEN];
    cr_assert(rollout_create(&r, 2, 3 + 10, 10, err, sizeof err) == 0, "%s", err);
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.max_new_tokens = 10, so.temperature = 0.9f, so.stop_token = 4;
    cr_assert(rollout_sample(&r, m, 2, prompts, plen, &so, err, sizeof err) == 0, "%s", err);
    cr_assert(rollout_logprobs(m, &r, 0.9f, r.logp, err, sizeof err) == 0, "%s", err);
    double worst = 0;
    int n = 0;
    for (int i = 0; i < r.B * r.T; i++) {
        if (!r.mask[i]) {
            cr_assert_eq(r.slogp[i], 0.0f);
            continue;
        }
        worst = fmax(worst, fabs(r.slogp[i] - r.logp[i]));
        n++;
    }
    cr_assert(n == r.len[0] - 3 + r.len[1] - 1);
    cr_assert(worst < 1e-4, "KV decode vs full forward: %.3g", worst);
    rollout_free(&r);
    gpt2_free(m);
}
