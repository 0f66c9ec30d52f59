/* test_grpo.c — GRPO (rlhf/grpo.h) and the RL core's loss (rlhf/rl.h): group-normalised advantages
 * against values worked out by hand (group, batch and no scaling, zero-std groups); every loss
 * aggregation's value by hand and its gradient by finite differences (with clipping, importance
 * weights and the k3 KL); a synthetic known-optimum task (reward = count of a target token, the
 * stationary point of GRPO's gradient with the k3 KL worked out analytically) approached with fp32
 * rollouts and with bf16 rollouts under truncated importance sampling; `rlhf grpo` end to end:
 * TRL's metric names, β = 0 loads no reference, a crashing reward program stops the run with one
 * line and the last checkpoint intact, and --resume then finishes exactly as an uninterrupted run. */
#include "fileio.h"
#include "grpo.h"
#include "hf.h"
#include "rng.h"
#include "synth.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CLOSE(a, b, tol) \
    cr_assert(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a, (double)(a), (double)(b))

/* ---- advantages --------------------------------------------------------------------------------- */

Test(grpo, group_advantages_by_hand)
{
    /* two groups of 3: {1, 2, 6} (mean 3, unbiased std sqrt(7)) and {4, 4, 4} (std 0) */
    const float r[6] = {1, 2, 6, 4, 4, 4};
    float a[6];
    double z;
    grpo_advantages(r, 2, 3, GRPO_SCALE_GROUP, a, &z);
    const double s = sqrt(7.0);
    CLOSE(a[0], -2 / (s + 1e-4), 1e-6);
    CLOSE(a[1], -1 / (s + 1e-4), 1e-6);
    CLOSE(a[2], 3 / (s + 1e-4), 1e-6);
    for (int i = 3; i < 6; i++) CLOSE(a[i], 0, 0);
    CLOSE(z, 0.5, 0); /* half the rows sit in a group with nothing to learn */
    /* batch: the group means, the whole batch's std: mean 3.5, Σ(x - 3.5)^2 = 15.5, / 5 */
    grpo_advantages(r, 2, 3, GRPO_SCALE_BATCH, a, &z);
    const double sb = sqrt(15.5 / 5);
    CLOSE(a[0], -2 / (sb + 1e-4), 1e-6);
    CLOSE(a[2], 3 / (sb + 1e-4), 1e-6);
    CLOSE(a[4], 0, 0);
    CLOSE(z, 0, 0);
    /* none (Dr. GRPO): r - group mean; the zero-std share still by groups */
    grpo_advantages(r, 2, 3, GRPO_SCALE_NONE, a, &z);
    CLOSE(a[0], -2, 0);
    CLOSE(a[1], -1, 0);
    CLOSE(a[2], 3, 0);
    CLOSE(z, 0.5, 0);
}

/* ---- the loss: values by hand ------------------------------------------------------------------- */

/* Two rows, T = 3: row 0 has 3 loss tokens (A = 0.5), row 1 one (A = -1); π_θ = π_old, so every
 * ratio is 1 and l_t = -A: row 0 -0.5 x 3, row 1 +1. */
Test(grpo, loss_aggregations_by_hand)
{
    const float lp[6] = {-1, -2, -0.5f, -1, -3, -2};
    const float adv[6] = {0.5f, 0.5f, 0.5f, 0, -1, 0}, radv[2] = {0.5f, -1};
    const uint8_t m[6] = {1, 1, 1, 0, 1, 0};
    float d[6];
    rl_loss_stats st;
    struct {
        rl_agg agg;
        double want;
    } c[] = {{RL_AGG_BNPO, (-1.5 + 1) / 4},            /* Σ l / Σ m */
             {RL_AGG_GRPO, (-1.5 / 3 + 1.0 / 1) / 2},  /* mean of row means */
             {RL_AGG_DR_GRPO, (-1.5 + 1) / (2.0 * 4)}, /* / (rows x max_new_tokens 4) */
             {RL_AGG_DAPO, (-1.5 + 1) / 8},            /* / the step's 8 tokens */
             {RL_AGG_SEQUENCE, (-0.5 + 1) / 2}};       /* mean over rows of -A_b */
    for (int k = 0; k < 5; k++)
        for (int half = 0; half < 2; half++) { /* scale 1/accum: every aggregation but DAPO's */
            const float scale = half ? 0.5f : 1.0f;
            const rl_loss_opts o = {c[k].agg, 0.2f, 0.28f, 0, 4, 8, scale, 0, 0};
            const rl_loss_in in = {2, 3, lp, lp, c[k].agg == RL_AGG_SEQUENCE ? radv : adv, NULL, NULL, m};
            const double l = rl_policy_loss(&o, &in, d, &st);
            CLOSE(l, c[k].want * (c[k].agg == RL_AGG_DAPO ? 1 : scale), 1e-12);
            CLOSE(st.ratio, 1, 1e-12);
            CLOSE(st.clipfrac, 0, 0);
            CLOSE(d[3], 0, 0); /* nothing off the mask */
            CLOSE(d[5], 0, 0);
        }
}

/* ---- the loss: gradients by finite differences --------------------------------------------------- */

enum { FN = 3, FT = 5 };

typedef struct {
    float lp[FN * FT], old[FN * FT], adv[FN * FT], w[FN * FT], ref[FN * FT], radv[FN], rw[FN];
    uint8_t m[FN * FT];
} fd_case;

static double u01(uint64_t *s) { return rng_unit(s); }

/* random log-probs, ratios within [0.6, 1.6] (many clipped at ε 0.2 / 0.28), advantages of both
 * signs, importance weights, a reference, holes in the mask */
static void fd_make(fd_case *f, uint64_t seed)
{
    uint64_t s = seed;
    for (int i = 0; i < FN * FT; i++) {
        f->lp[i] = (float)(-3 + 2.5 * u01(&s));
        f->old[i] = f->lp[i] + (float)(-0.45 + 0.9 * u01(&s));
        f->adv[i] = (float)(-1.5 + 3 * u01(&s));
        f->w[i] = (float)(0.5 + u01(&s));
        f->ref[i] = f->lp[i] + (float)(-0.5 + u01(&s));
        f->m[i] = i % FT != 0 && i != 7;
    }
    for (int b = 0; b < FN; b++) {
        f->radv[b] = (float)(-1 + 2 * u01(&s));
        f->rw[b] = (float)(0.5 + u01(&s));
        for (int t = 0; t < FT; t++) f->old[b * FT + t] = f->lp[b * FT + t] + (float)(-0.12 + 0.24 * u01(&s)) * (b == 1 ? 3 : 1);
    }
}

static double fd_loss(const rl_loss_opts *o, const fd_case *f, const float *lp, int weighted, float *d)
{
    const int seq = o->agg == RL_AGG_SEQUENCE;
    const rl_loss_in in = {FN, FT, lp, f->old, seq ? f->radv : f->adv, weighted ? (seq ? f->rw : f->w) : NULL, f->ref, f->m};
    rl_loss_stats st;
    return rl_policy_loss(o, &in, d, &st);
}

/* 1 when the ratio of token i (or its row) sits within 1e-3 of a clip boundary: no derivative there */
static int near_kink(const rl_loss_opts *o, const fd_case *f, int i)
{
    double lr = (double)f->lp[i] - f->old[i];
    if (o->agg == RL_AGG_SEQUENCE) {
        lr = 0;
        for (int t = 0; t < FT; t++)
            if (f->m[i / FT * FT + t]) lr += (double)f->lp[i / FT * FT + t] - f->old[i / FT * FT + t];
    }
    const double r = exp(lr);
    return fabs(r - (1 - o->eps_low)) < 1e-3 * FT || fabs(r - (1 + o->eps_high)) < 1e-3 * FT;
}

static void fd_check(rl_agg agg, double beta, int weighted, uint64_t seed)
{
    fd_case f;
    fd_make(&f, seed);
    const rl_loss_opts o = {agg, 0.2f, 0.28f, beta, FT + 1, 11, 0.5f, 0, 0};
    float d[FN * FT], dd[FN * FT], x[FN * FT];
    fd_loss(&o, &f, f.lp, weighted, d);
    int checked = 0, clipped = 0;
    for (int i = 0; i < FN * FT; i++) {
        if (!f.m[i]) {
            CLOSE(d[i], 0, 0);
            continue;
        }
        if (near_kink(&o, &f, i)) continue;
        memcpy(x, f.lp, sizeof x);
        const float h = 1e-3f, xp = x[i] + h, xm = x[i] - h;
        x[i] = xp;
        const double lpv = fd_loss(&o, &f, x, weighted, dd);
        x[i] = xm;
        const double lmv = fd_loss(&o, &f, x, weighted, dd);
        const double num = (lpv - lmv) / ((double)xp - xm);
        cr_assert(fabs(num - d[i]) <= 2e-5 + 1e-3 * fabs(num), "agg %d β %g w %d token %d: analytic %.8g, numeric %.8g", agg,
                  beta, weighted, i, (double)d[i], num);
        checked++;
        clipped += d[i] == 0 && beta == 0;
    }
    cr_assert(checked >= 8, "only %d tokens checked", checked);
    (void)clipped;
}

Test(grpo, every_loss_type_gradient_by_finite_differences)
{
    const rl_agg aggs[] = {RL_AGG_BNPO, RL_AGG_GRPO, RL_AGG_DR_GRPO, RL_AGG_DAPO, RL_AGG_SEQUENCE};
    for (int k = 0; k < 5; k++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            fd_check(aggs[k], 0, 0, seed);
            fd_check(aggs[k], 0, 1, seed);   /* importance weights */
            fd_check(aggs[k], 0.3, 1, seed); /* and GRPO's k3 KL */
        }
}

/* the clipped tokens really are flat (no gradient but the KL's), on the side their advantage pushes */
Test(grpo, clipped_tokens_have_no_policy_gradient)
{
    const float lp[4] = {-1, -1, -1, -1}, old[4] = {-1.5f, -1.5f, -0.5f, -0.5f}; /* r = e^0.5, e^0.5, e^-0.5, e^-0.5 */
    const float adv[4] = {1, -1, -1, 1};
    const uint8_t m[4] = {1, 1, 1, 1};
    const rl_loss_opts o = {RL_AGG_BNPO, 0.2f, 0.28f, 0, 4, 4, 1, 0, 0};
    const rl_loss_in in = {1, 4, lp, old, adv, NULL, NULL, m};
    float d[4];
    rl_loss_stats st;
    rl_policy_loss(&o, &in, d, &st);
    CLOSE(d[0], 0, 0);                           /* r > 1 + ε_high, A > 0: clipped */
    CLOSE(d[1], -(-1) * exp(0.5) / 4, 1e-7);     /* r high, A < 0: the unclipped term counts */
    CLOSE(d[2], 0, 0);                           /* r < 1 - ε, A < 0: clipped */
    CLOSE(d[3], -1 * exp(-0.5) / 4, 1e-7);
    CLOSE(st.high, 1, 0);
    CLOSE(st.low, 1, 0);
    CLOSE(st.clipfrac, 1, 0);
    CLOSE(st.low_min, 0.25, 0);
    CLOSE(st.high_max, 0.25, 0);
}

/* ---- the synthetic task ---------------------------------------------------------------------------- */

typedef struct {
    syn_counter c, late;
    int steps;
    double freq0, diff_mean, diff_max, is_min, is_max;
    int saw_clip;
} syn_run;

static void on_step(void *ud, const trainer_progress *p)
{
    syn_run *s = ud;
    static const char *const need[] = {"reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "loss",
                                       "clip_ratio/region_mean", "completions/mean_length",
                                       "sampling/sampling_logp_difference/mean", "sampling/importance_sampling_ratio/max"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        cr_assert(isfinite(trainer_progress_get(p, need[i])), "step %ld: %s missing", p->step, need[i]);
    if (p->step == 1) s->freq0 = s->c.hits / s->c.tokens;
    if (p->step > s->steps - 10) s->late.hits += s->c.hits, s->late.tokens += s->c.tokens;
    s->diff_mean = fmax(s->diff_mean, trainer_progress_get(p, "sampling/sampling_logp_difference/mean"));
    s->diff_max = fmax(s->diff_max, trainer_progress_get(p, "sampling/sampling_logp_difference/max"));
    s->is_min = fmin(s->is_min, trainer_progress_get(p, "sampling/importance_sampling_ratio/min"));
    s->is_max = fmax(s->is_max, trainer_progress_get(p, "sampling/importance_sampling_ratio/max"));
    s->saw_clip |= trainer_progress_get(p, "clip_ratio/region_mean") > 0;
    s->c = (syn_counter){0, 0};
}

/* GRPO on the synthetic task: 4 prompts x 4 completions per step, unscaled advantages, DAPO loss,
 * k3 KL with β; returns p(target) before and after, exact at every completion position along the
 * policy's own samples (syn_target_prob) */
static void synthetic(double beta, int new_tokens, gpt2_weights weights, rl_is_mode is, syn_run *s, double *p0, double *p1)
{
    omp_set_num_threads(1);
    char dir[4300], out[4400], err[512], p[4500];
    syn_policy_dir(dir, sizeof dir, "grpo-synth");
    snprintf(out, sizeof out, "%s/../run", dir);
    ds_prompts ps;
    syn_prompts(&ps);
    grpo_opts o = grpo_defaults();
    o.rl.policy = dir;
    o.rl.prompt_rows = &ps;
    o.rl.stop_at_eos = 0;
    o.rl.score = syn_scorer(&s->c);
    o.rl.max_new_tokens = new_tokens;
    o.rl.num_generations = 4;
    o.rl.rollout_weights = weights;
    o.rl.is_correction = is;
    o.scale_rewards = GRPO_SCALE_NONE;
    o.beta = beta;
    o.run.batch = SYN_PROMPTS;
    o.run.steps = s->steps;
    o.run.seed = 7;
    o.run.threads = 1;
    o.run.precision = TRAINER_PREC_FP32; /* the algorithm in fp32 (bf16: test_gpt2_bf16) */
    o.run.ckpt_every = 0;
    o.run.out = out;
    o.run.on_step = on_step;
    o.run.ud = s;
    o.optim.lr = 3e-3f;
    o.optim.min_lr = 3e-4f; /* decaying: the end sits at the stationary point, not jittering around it */
    s->is_min = INFINITY, s->is_max = -INFINITY;
    cr_assert(grpo_run(&o, NULL, err, sizeof err) == 0, "%s", err);
    gpt2 *ref = syn_model(11), *pol;
    *p0 = syn_target_prob(ref, 64, new_tokens);
    cr_assert(hf_load_gpt2(fio_join(p, sizeof p, out, "model"), &pol, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(pol, 1);
    *p1 = syn_target_prob(pol, 64, new_tokens);
    gpt2_free(pol);
    gpt2_free(ref);
}

/* β = 0.25, G = 4, one-token completions: GRPO's stationary point p* = 0.7242 (tests/synth.h), far
 * below the optimum e^4 / (e^4 + 7) = 0.886 of E[r] - β KL(π || π_ref) that RLOO reaches: the k3
 * term's gradient is that of KL(π_ref || π). Over seeds 7-11 the run ends at 0.719-0.731 (mean
 * 0.7247). */
Test(grpo, synthetic_target_approaches_the_analytic_optimum, .timeout = 120)
{
    const double beta = 0.25, pstar = syn_optimum_grpo(beta, 4);
    CLOSE(pstar, (0.5 + sqrt(0.25 + 0.09375)) / 1.5, 1e-12);
    syn_run s = {.steps = 400};
    double p0, p1;
    synthetic(beta, 1, GPT2_W_F32, RL_IS_NONE, &s, &p0, &p1);
    CLOSE(p0, 1.0 / SYN_V, 1e-6); /* the uniform reference */
    cr_assert(fabs(p1 - pstar) < 0.02, "p(target) %.4f -> %.4f, optimum %.4f", p0, p1, pstar);
    cr_assert(p1 < syn_optimum_kl(beta) - 0.1, "p(target) %.3f: the forward-KL optimum is %.3f", p1, syn_optimum_kl(beta));
    const double f1 = s.late.hits / s.late.tokens;
    cr_assert(f1 > p0 + 0.4, "sampled frequency %.3f -> %.3f", s.freq0, f1);
    /* fp32 rollouts: the sampler and the full forward agree to float rounding */
    cr_assert(s.diff_max < 1e-4 && s.is_min > 0.9999 && s.is_max < 1.0001, "fp32 mismatch %.3g (ratios %.6f..%.6f)",
              s.diff_max, s.is_min, s.is_max);
}

/* bf16 decode weights over 8-token completions (the first token comes from the fp32 prompt pass;
 * the decode steps read bf16): the sampler drifts from the fp32 policy (~2e-3 in log-prob); with
 * truncated importance sampling the run ends where the fp32 run does, at the stationary point
 * (over 8 tokens the later contexts lift it by ~0.012: tests/synth.h) */
Test(grpo, bf16_rollouts_with_tis_reach_the_same_optimum, .timeout = 120)
{
    const double beta = 0.25, pstar = syn_optimum_grpo(beta, 4);
    syn_run a = {.steps = 200}, b = {.steps = 200};
    double p0, p32, p16;
    synthetic(beta, SYN_NEW, GPT2_W_F32, RL_IS_NONE, &a, &p0, &p32);
    synthetic(beta, SYN_NEW, GPT2_W_BF16, RL_IS_TIS, &b, &p0, &p16);
    cr_assert(fabs(p16 - pstar) < 0.03 && fabs(p16 - p32) < 0.02, "bf16 + TIS: p(target) %.4f, fp32 %.4f, optimum %.4f", p16,
              p32, pstar);
    cr_assert(b.diff_max > 1e-4 && b.diff_max > 10 * a.diff_max, "bf16 mismatch %.3g, fp32 %.3g", b.diff_max, a.diff_max);
    cr_assert(b.is_max <= 3.0 + 1e-6 && b.is_min < 1, "TIS weights %.4f..%.4f", b.is_min, b.is_max);
}

/* ---- `rlhf grpo` end to end ------------------------------------------------------------------------ */

static tu_fixture fx;
static char scorer_sh[4300], flag[4300];

/* prompts (the BPE is trained on them), a tiny policy, and a reward program: the length of the
 * completion's JSON text; it exits with status 1 at record K+1 while FLAG exists */
static void cli_fixture(void)
{
    static const char prompts[] = "{\"prompt\": \"the cat says\"}\n{\"prompt\": \"a dog\"}\n{\"prompt\": \"the owl sees\"}\n"
                                  "{\"prompt\": \"a cow\"}\n";
    tu_fixture_make(&fx, "grpo-cli", prompts, sizeof prompts - 1, prompts, sizeof prompts - 1);
    snprintf(scorer_sh, sizeof scorer_sh, "%s/score.sh", fx.dir);
    snprintf(flag, sizeof flag, "%s/crash", fx.dir);
    static const char sh[] = "#!/bin/sh\nn=0\nwhile IFS= read -r line; do\n  n=$((n+1))\n"
                             "  if [ -e \"$1\" ] && [ $n -gt $2 ]; then echo \"boom at record $n\" >&2; exit 1; fi\n"
                             "  c=${line##*\\\"completion\\\": \\\"}\n  echo ${#c}\ndone\n";
    tu_write(scorer_sh, sh, sizeof sh - 1);
    chmod(scorer_sh, 0755);
}

static int run_grpo(const char *out, const char *extra, char **errtext)
{
    char args[40000], *o = NULL, *e = NULL;
    snprintf(args, sizeof args,
             "grpo --policy '%s' --prompts '%s' --tokenizer '%s' --out '%s' --reward 'cmd:%s %s 16' --steps 4 --batch 2 "
             "--num-generations 4 --max-new-tokens 6 --lr 1e-3 --ckpt-every 1 --keep 5 --threads 1 %s",
             fx.model, fx.train, fx.tok, out, scorer_sh, flag, extra);
    const int rc = tu_run(args, NULL, &o, &e);
    free(o);
    if (errtext) *errtext = e;
    else free(e);
    return rc;
}

static json_t *last_line(const char *dir, size_t *lines)
{
    size_t n;
    char *m = tu_read(dir, "metrics.jsonl", &n);
    *lines = tu_lines(m);
    json_error_t je;
    json_t *j = json_loads(strrchr(m, '{'), 0, &je);
    cr_assert(j, "%s", je.text);
    free(m);
    return j;
}

Test(grpo_cli, a_crashing_reward_program_stops_the_run_and_resume_finishes_it, .timeout = 120)
{
    cli_fixture();
    char a[4300], b[4300], *e;
    snprintf(a, sizeof a, "%s/a", fx.dir);
    snprintf(b, sizeof b, "%s/b", fx.dir);
    cr_assert(run_grpo(a, "", &e) == 0, "%s", e);
    free(e);
    /* TRL's names; no kl without β */
    size_t lines;
    json_t *j = last_line(a, &lines);
    cr_assert_eq(lines, 4);
    static const char *names[] = {"reward", "reward_std", "frac_reward_zero_std", "entropy", "loss", "clip_ratio/low_mean",
                                  "clip_ratio/high_mean", "clip_ratio/region_mean", "completions/mean_length",
                                  "completions/clipped_ratio", "sampling/sampling_logp_difference/mean",
                                  "sampling/importance_sampling_ratio/max", "rewards/cmd:score.sh/mean", "learning_rate",
                                  "grad_norm", "num_tokens"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cr_assert(json_is_number(json_object_get(j, names[i])), "metric %s missing", names[i]);
    cr_assert_null(json_object_get(j, "kl"));
    json_decref(j);
    /* the program dies at record 17, the first of step 3: one line naming it and the record */
    tu_write(flag, "", 0);
    cr_assert(run_grpo(b, "", &e) == 1);
    const char *l = e + strlen(e) - 1; /* the last line, after the progress lines of steps 1-2 */
    while (l > e && l[-1] != '\n') l--;
    cr_assert(!strncmp(l, "rlhf grpo: reward program '", 27) && strstr(l, "score.sh") && strstr(l, "exited with status 1") &&
                  strstr(l, "record 17 (row 0 of batch 3") && strstr(l, "boom at record 17"),
              "%s", e);
    free(e);
    /* the last checkpoint (step 2) is intact and nothing was written for step 3 */
    char *latest = tu_read(b, "latest", NULL);
    cr_assert(strstr(latest, "step-00000002"), "latest: %s", latest);
    free(latest);
    j = last_line(b, &lines);
    cr_assert_eq(lines, 2);
    json_decref(j);
    char s3[4400];
    snprintf(s3, sizeof s3, "%s/step-00000003", b);
    cr_assert(!fio_exists(s3));
    /* the program mended, --resume finishes the run exactly as the uninterrupted one */
    remove(flag);
    cr_assert(run_grpo(b, "--resume", &e) == 0, "%s", e);
    free(e);
    char ma[4400], mb[4400];
    snprintf(ma, sizeof ma, "%s/model", a);
    snprintf(mb, sizeof mb, "%s/model", b);
    tu_same_file(ma, mb, "model.safetensors");
    j = last_line(b, &lines);
    cr_assert_eq(lines, 4);
    json_decref(j);
}

Test(grpo_cli, beta_zero_loads_no_reference, .timeout = 60)
{
    cli_fixture();
    char out[4300], *e;
    snprintf(out, sizeof out, "%s/run", fx.dir);
    cr_assert(run_grpo(out, "--steps 1 --ref /nonexistent/ref", &e) == 0, "%s", e);
    free(e);
    snprintf(out, sizeof out, "%s/run2", fx.dir);
    cr_assert(run_grpo(out, "--steps 1 --ref /nonexistent/ref --beta 0.1", &e) == 1);
    cr_assert(tu_lines(e) == 1 && strstr(e, "/nonexistent/ref"), "%s", e);
    cr_assert(!fio_exists(out), "%s was created", out);
    free(e);
    /* with a reference: the k3 KL is logged */
    cr_assert(run_grpo(out, "--steps 1 --beta 0.1 --loss-type grpo --scale-rewards batch", &e) == 0, "%s", e);
    free(e);
    size_t lines;
    json_t *j = last_line(out, &lines);
    cr_assert(json_is_number(json_object_get(j, "kl")) && json_real_value(json_object_get(j, "kl")) >= 0);
    json_decref(j);
}
