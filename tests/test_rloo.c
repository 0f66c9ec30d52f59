/* test_rloo.c — RLOO (rlhf/rloo.h): the KL folded into the sequence reward and the leave-one-out
 * baseline against values worked out by hand (with and without whitening), and a synthetic
 * known-optimum task (reward = count of a target token): with the KL as a reward RLOO follows the
 * exact gradient of E[r] - β KL(π || π_ref), so the target's probability approaches the
 * KL-regularised optimum π* ∝ π_ref e^{r/β}; `rlhf rloo` end to end with TRL's metric names. */
#include "fileio.h"
#include "hf.h"
#include "rloo.h"
#include "synth.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOSE(a, b, tol) \
    cr_assert(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a, (double)(a), (double)(b))

Test(rloo, leave_one_out_baseline_by_hand)
{
    /* groups of 3: {1, 2, 6}: A = 1 - (2+6)/2, 2 - (1+6)/2, 6 - (1+2)/2; {4, 4, 4}: 0 */
    const float R[6] = {1, 2, 6, 4, 4, 4};
    float a[6];
    double z;
    rloo_advantages(R, 2, 3, 0, a, &z);
    const double want[6] = {-3, -1.5, 4.5, 0, 0, 0};
    for (int i = 0; i < 6; i++) CLOSE(a[i], want[i], 1e-6);
    CLOSE(z, 0.5, 0);
    /* whitened over the batch: mean 0, unbiased std sqrt((9 + 2.25 + 20.25) / 5) */
    rloo_advantages(R, 2, 3, 1, a, &z);
    const double sd = sqrt(31.5 / 5);
    for (int i = 0; i < 6; i++) CLOSE(a[i], want[i] / (sd + 1e-4), 1e-6);
    /* k = 2: each completion against the other */
    const float R2[2] = {0.5f, -1.5f};
    rloo_advantages(R2, 1, 2, 0, a, NULL);
    CLOSE(a[0], 2, 1e-7);
    CLOSE(a[1], -2, 1e-7);
}

/* Two rows of T = 4 (prompt 1 token, completions 3 and 2 tokens): R = r - β Σ_t (logp - ref) over
 * the loss tokens; kl is the token mean of logp - ref */
Test(rloo, kl_folded_into_the_sequence_reward_by_hand)
{
    rollout r;
    char err[256];
    cr_assert(rollout_create(&r, 2, 4, 3, err, sizeof err) == 0, "%s", err);
    static const int32_t p0[] = {1}, p1[] = {2};
    const int32_t *pr[] = {p0, p1};
    const int pl[] = {1, 1}, cl[] = {3, 2};
    const int32_t comp[6] = {3, 4, 5, 6, 7, 0};
    cr_assert(rollout_set(&r, 2, pr, pl, comp, 3, cl, -1, 0, err, sizeof err) == 0, "%s", err);
    /* loss tokens: row 0 positions 0..2, row 1 positions 0..1 */
    const float lp[8] = {-1, -2, -0.5f, 0, -1.5f, -1, 0, 0}, rf[8] = {-1.5f, -1, -1, 0, -1, -2, 0, 0};
    memcpy(r.logp, lp, sizeof lp);
    memcpy(r.ref_logp, rf, sizeof rf);
    r.raw_scores[0] = 2, r.raw_scores[1] = -1;
    float R[2];
    double kl;
    rloo_kl_rewards(&r, r.mask, 1, 0.1, R, &kl);
    /* row 0: Σ (0.5, -1, 0.5) = 0; row 1: Σ (-0.5, 1) = 0.5 */
    CLOSE(R[0], 2 - 0.1 * 0, 1e-7);
    CLOSE(R[1], -1 - 0.1 * 0.5, 1e-7);
    CLOSE(kl, 0.5 / 5, 1e-7);
    /* a truncated row masked out of the loss drops out of its KL too */
    uint8_t m[8];
    memcpy(m, r.mask, sizeof m);
    m[4] = m[5] = 0;
    rloo_kl_rewards(&r, m, 1, 0.1, R, &kl);
    CLOSE(R[1], -1, 0);
    CLOSE(kl, 0, 1e-7);
    /* no reference: no KL */
    rloo_kl_rewards(&r, r.mask, 0, 0.1, R, &kl);
    CLOSE(R[1], -1, 0);
    cr_assert(isnan(kl));
    rollout_free(&r);
}

/* ---- the synthetic task ---------------------------------------------------------------------------- */

typedef struct {
    syn_counter c;
    double kl_last;
} syn_run;

static void on_step(void *ud, const trainer_progress *p)
{
    syn_run *s = ud;
    static const char *const need[] = {"reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "loss",
                                       "clip_ratio/region_mean", "completions/mean_length",
                                       "sampling/sampling_logp_difference/mean"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        cr_assert(isfinite(trainer_progress_get(p, need[i])), "step %ld: %s missing", p->step, need[i]);
    s->kl_last = trainer_progress_get(p, "kl");
}

/* β = 0.25: π*(target) = e^4 / (e^4 + 7) = 0.8864 (GRPO's k3 stationary point would be 0.724);
 * seeds 7-9 end at 0.8860-0.8865 */
Test(rloo, synthetic_target_approaches_the_kl_regularised_optimum, .timeout = 120)
{
    omp_set_num_threads(1);
    const double beta = 0.25, pstar = syn_optimum_kl(beta);
    char dir[4300], out[4400], err[512], p[4500];
    syn_policy_dir(dir, sizeof dir, "rloo-synth");
    snprintf(out, sizeof out, "%s/../run", dir);
    ds_prompts ps;
    syn_prompts(&ps);
    syn_run s = {{0, 0}, 0};
    rloo_opts o = rloo_defaults();
    o.rl.policy = dir;
    o.rl.prompt_rows = &ps;
    o.rl.stop_at_eos = 0;
    o.rl.score = syn_scorer(&s.c);
    o.rl.max_new_tokens = SYN_NEW;
    o.rl.num_generations = 4;
    o.beta = beta;
    o.run.batch = SYN_PROMPTS;
    o.run.steps = 200;
    o.run.seed = 7;
    o.run.threads = 1;
    o.run.precision = TRAINER_PREC_FP32; /* the algorithm in fp32 (bf16: test_gpt2_bf16) */
    o.run.ckpt_every = 0;
    o.run.out = out;
    o.run.on_step = on_step;
    o.run.ud = &s;
    o.optim.lr = 3e-3f;
    o.optim.min_lr = 3e-4f;
    rl_result res;
    cr_assert(rloo_run(&o, &res, err, sizeof err) == 0, "%s", err);
    gpt2 *ref = syn_model(11), *pol;
    const double p0 = syn_target_prob(ref, 64, SYN_NEW);
    cr_assert(hf_load_gpt2(fio_join(p, sizeof p, out, "model"), &pol, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(pol, 1);
    const double p1 = syn_target_prob(pol, 64, SYN_NEW);
    CLOSE(p0, 1.0 / SYN_V, 1e-6); /* the uniform reference */
    cr_assert(fabs(p1 - pstar) < 0.01, "p(target) %.4f -> %.4f, optimum %.4f", p0, p1, pstar);
    /* the per-token KL of the optimum: p log(V p) + (1 - p) log(V (1 - p) / (V - 1)) = 1.50 */
    const double klstar = pstar * log(SYN_V * pstar) + (1 - pstar) * log(SYN_V * (1 - pstar) / (SYN_V - 1));
    cr_assert(fabs(s.kl_last - klstar) < 0.3, "kl %.4f, the optimum's %.4f", s.kl_last, klstar);
    cr_assert(res.last.reward > 0.8 * SYN_NEW, "reward %.3f", res.last.reward);
    gpt2_free(pol);
    gpt2_free(ref);
}

/* ---- `rlhf rloo` end to end ------------------------------------------------------------------------ */

Test(rloo_cli, metrics_with_trl_names_and_bad_settings_refused, .timeout = 60)
{
    static const char prompts[] = "{\"prompt\": \"the cat is\"}\n{\"prompt\": \"a dog is\"}\n{\"prompt\": \"the owl\"}\n";
    tu_fixture f;
    tu_fixture_make(&f, "rloo-cli", prompts, sizeof prompts - 1, prompts, sizeof prompts - 1);
    char args[40000], out[4300], *o, *e;
    snprintf(out, sizeof out, "%s/run", f.dir);
    const char *fmt = "rloo --policy '%s' --prompts '%s' --tokenizer '%s' --out '%s' --reward 'judge:%s' 'cmd:sh -c' "
                      "'while read l; do echo 1; done' --reward-weights 2 0.5 --steps 2 --batch 2 --max-new-tokens 6 "
                      "--threads 1 --num-iterations 2 --minibatch 2 %s";
    snprintf(args, sizeof args, fmt, f.model, f.train, f.tok, out, tu_data("judge/tiny.tsv"), "");
    cr_assert(tu_run(args, NULL, &o, &e) == 0, "%s", e);
    free(o);
    free(e);
    size_t n;
    char *m = tu_read(out, "metrics.jsonl", &n);
    cr_assert_eq(tu_lines(m), 2);
    json_error_t je;
    json_t *j = json_loads(strrchr(m, '{'), 0, &je);
    cr_assert(j, "%s", je.text);
    static const char *names[] = {"reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "loss",
                                  "clip_ratio/low_mean", "clip_ratio/high_max", "clip_ratio/region_mean",
                                  "completions/mean_length", "completions/max_terminated_length", "rewards/judge/mean",
                                  "rewards/cmd:sh/mean", "sampling/importance_sampling_ratio/mean", "learning_rate"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cr_assert(json_is_number(json_object_get(j, names[i])), "metric %s missing: %s", names[i], m);
    /* the weighted sum: 2 judge + 0.5 x 1 */
    CLOSE(json_real_value(json_object_get(j, "reward")),
          2 * json_real_value(json_object_get(j, "rewards/judge/mean")) + 0.5, 1e-5);
    json_decref(j);
    free(m);
    /* one completion per prompt leaves nothing to leave out: one line, nothing written */
    snprintf(out, sizeof out, "%s/run2", f.dir);
    snprintf(args, sizeof args, fmt, f.model, f.train, f.tok, out, tu_data("judge/tiny.tsv"), "--num-generations 1");
    cr_assert(tu_run(args, NULL, &o, &e) == 1);
    cr_assert(tu_lines(e) == 1 && strstr(e, "at least 2 completions"), "%s", e);
    cr_assert(!fio_exists(out));
    free(o);
    free(e);
}
