/* test_ppo.c — the GAE/PPO core (rlhf/ppo.h) against values worked out by hand in the comments:
 * GAE with terminations, truncations (bootstrapped from the final observation's value), both at
 * once, and masked language-model padding; whitening; the clipped policy and value losses and their
 * gradients (also by finite differences); KL estimators; explained variance; the categorical and
 * Gaussian heads (gradients by finite differences); sampling and permutations. */
#include "ppo.h"
#include "rng.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

Test(ppo, gae_terminated_truncated_time_major)
{
    /* two envs, four steps, time-major [t][env] as the control trainer stores them; gamma 0.9, lambda 0.5
     * env 0: r = 1 2 3 4, V = .5 1 1.5 2, terminated at t=1, truncated at t=2 (V(final obs) = 10),
     *        V after the rollout = 3
     *   t3: 4 + .9*3 - 2 = 4.7                       A = 4.7
     *   t2: truncated: 3 + .9*10 - 1.5 = 10.5          A = 10.5 (no chaining into t3's new episode)
     *   t1: terminated: 2 + 0 - 1 = 1                 A = 1
     *   t0: 1 + .9*1 - .5 = 1.4; + .45 * 1             A = 1.85
     * env 1: r = 0 0 0 1, V = 0, both flags at t=3 (terminated wins: the 100 is ignored), last V 2
     *   t3: 1  t2: .45  t1: .2025  t0: .091125 */
    const float rew[8] = {1, 0, 2, 0, 3, 0, 4, 1}, val[8] = {.5f, 0, 1, 0, 1.5f, 0, 2, 0};
    const uint8_t term[8] = {0, 0, 1, 0, 0, 0, 0, 1}, trunc[8] = {0, 0, 0, 0, 1, 0, 0, 1};
    const float tv[8] = {0, 0, 0, 0, 10, 0, 0, 100}, last[2] = {3, 2};
    float adv[8], ret[8];
    const ppo_layout lay = {2, 4, 1, 2};
    ppo_gae(adv, ret, rew, val, term, trunc, tv, last, NULL, &lay, 0.9f, 0.5f);
    const double want0[4] = {1.85, 1, 10.5, 4.7}, want1[4] = {0.091125, 0.2025, 0.45, 1};
    for (int t = 0; t < 4; t++) {
        NEAR(adv[2 * t], want0[t], 1e-6);
        NEAR(adv[2 * t + 1], want1[t], 1e-6);
        NEAR(ret[2 * t], want0[t] + val[2 * t], 1e-6);
        NEAR(ret[2 * t + 1], want1[t] + val[2 * t + 1], 1e-6);
    }
    /* lambda = 1 without flags: A_t + V_t = the discounted return bootstrapped from last */
    const float r3[3] = {1, 2, 3}, v3[3] = {7, -1, 4}, l3 = 5;
    float a3[3], g3[3];
    const ppo_layout one = {1, 3, 3, 1};
    ppo_gae(a3, g3, r3, v3, NULL, NULL, NULL, &l3, NULL, &one, 0.5f, 1.0f);
    NEAR(g3[0], 1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 5, 1e-6);
    NEAR(g3[2], 3 + 0.5 * 5, 1e-6);
}

Test(ppo, gae_masked_tokens)
{
    /* a language-model row [B=1][T=5]: three real tokens then padding (garbage rewards/values there),
     * gamma 1, lambda .95, nothing beyond the sequence (last_values NULL):
     *   t2: 1 - .6 = .4                      A = .4    ret 1
     *   t1: 0 + .6 - .4 = .2 ; + .95*.4      A = .58   ret .98
     *   t0: 0 + .4 - .2 = .2 ; + .95*.58     A = .751  ret .951 */
    const float rew[5] = {0, 0, 1, 9, 9}, val[5] = {.2f, .4f, .6f, 7, 7};
    const uint8_t mask[5] = {1, 1, 1, 0, 0};
    float adv[5], ret[5];
    const ppo_layout lay = {1, 5, 5, 1};
    ppo_gae(adv, ret, rew, val, NULL, NULL, NULL, NULL, mask, &lay, 1.0f, 0.95f);
    NEAR(adv[0], 0.751, 1e-6);
    NEAR(adv[1], 0.58, 1e-6);
    NEAR(adv[2], 0.4, 1e-6);
    NEAR(ret[0], 0.951, 1e-6);
    NEAR(ret[2], 1.0, 1e-6);
    cr_expect(adv[3] == 0 && adv[4] == 0 && ret[3] == 0 && ret[4] == 0);
}

Test(ppo, whiten)
{
    /* real: 1 2 3 4 (mean 2.5, unbiased std sqrt(5/3)); the masked 100 is left alone */
    float x[5] = {1, 2, 3, 4, 100}, y[5] = {1, 2, 3, 4, 100};
    const uint8_t mask[5] = {1, 1, 1, 1, 0};
    ppo_whiten(x, mask, 5, 1e-8f, 1);
    const double sd = sqrt(5.0 / 3.0);
    for (int i = 0; i < 4; i++) NEAR(x[i], (i + 1 - 2.5) / sd, 1e-6);
    cr_expect(x[4] == 100);
    ppo_whiten(y, mask, 5, 1e-8f, 0); /* mean kept */
    for (int i = 0; i < 4; i++) NEAR(y[i], (i + 1 - 2.5) / sd + 2.5, 1e-6);
    double m, s;
    ppo_mean_std(x, mask, 5, &m, &s);
    NEAR(m, 0, 1e-6);
    NEAR(s, 1, 1e-6);
}

Test(ppo, policy_loss_by_hand)
{
    /* clip .2; log ratios and advantages:
     *  0: ratio 1,   A  1: -1 vs -1          -> -1,  grad -A*ratio = -1
     *  1: ratio 1.5, A  2: -3 vs -2.4        -> -2.4 (clipped term larger: flat), clipped
     *  2: ratio .5,  A -1: .5 vs .8          -> .8   (flat), clipped
     *  3: masked
     *  4: ratio 1.5, A -1: 1.5 vs 1.2        -> 1.5, grad 1.5, counted in clipfrac
     * loss = (-1 - 2.4 + .8 + 1.5) / 4 = -.275 */
    const float old[5] = {-1, -1, -1, -1, -1};
    const float lr[5] = {0, (float)log(1.5), (float)log(0.5), 3, (float)log(1.5)};
    float logp[5];
    for (int i = 0; i < 5; i++) logp[i] = old[i] + lr[i];
    const float adv[5] = {1, 2, -1, 7, -1};
    const uint8_t mask[5] = {1, 1, 1, 0, 1};
    float g[5];
    ppo_pg_stats st;
    double loss = ppo_policy_loss(logp, old, adv, mask, 5, 0.2f, 2.0f, g, &st);
    NEAR(loss, -0.275, 1e-6);
    NEAR(st.loss, -0.275, 1e-6);
    NEAR(g[0], 2 * -1 / 4.0, 1e-6);
    NEAR(g[1], 0, 0);
    NEAR(g[2], 0, 0);
    NEAR(g[3], 0, 0);
    NEAR(g[4], 2 * 1.5 / 4.0, 1e-6);
    NEAR(st.clipfrac, 0.75, 1e-12);
    NEAR(st.approx_kl, -(log(1.5) + log(0.5) + log(1.5)) / 4, 1e-6);
    NEAR(st.approx_kl_k3, ((0.5 - log(1.5)) * 2 + (-0.5 - log(0.5))) / 4, 1e-6);
    NEAR(st.ratio, (1 + 1.5 + 0.5 + 1.5) / 4, 1e-6);
}

/* central differences of a loss in one input, in double around a float point */
typedef double (*loss_fn)(const float *x, void *ud);

static void expect_fd(const float *x0, int n, const float *grad, loss_fn f, void *ud, double h, double tol)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int i = 0; i < n; i++) x[i] = x0[i];
    for (int i = 0; i < n; i++) {
        const float keep = x[i];
        x[i] = (float)(keep + h);
        const double fp = f(x, ud);
        x[i] = (float)(keep - h);
        const double fm = f(x, ud);
        x[i] = keep;
        const double fd = (fp - fm) / (2 * h);
        cr_expect(fabs(fd - grad[i]) <= tol * (1 + fabs(fd)), "element %d: gradient %.8g, finite difference %.8g", i,
                  (double)grad[i], fd);
    }
    free(x);
}

typedef struct {
    const float *old, *adv, *ret;
    float clip;
} pg_case;

static double pg_loss_of(const float *logp, void *ud)
{
    const pg_case *c = ud;
    return ppo_policy_loss(logp, c->old, c->adv, NULL, 16, c->clip, 1.0f, NULL, NULL);
}

static double v_loss_of(const float *v, void *ud)
{
    const pg_case *c = ud;
    return ppo_value_loss(v, c->old, c->ret, NULL, 16, c->clip, 1.0f, NULL, NULL);
}

Test(ppo, losses_match_finite_differences)
{
    uint64_t rng = 7;
    float logp[16], old[16], adv[16], ret[16], g[16];
    for (int i = 0; i < 16; i++) {
        old[i] = (float)rng_uniform(&rng, -3, -0.1);
        /* log ratios well away from the clip edges +-log(1.2)/log(.8), so differences stay on one side */
        double lr;
        do lr = rng_uniform(&rng, -0.6, 0.6);
        while (fabs(exp(lr) - 1.2) < 0.03 || fabs(exp(lr) - 0.8) < 0.03);
        logp[i] = (float)(old[i] + lr);
        adv[i] = (float)rng_normal(&rng);
        ret[i] = (float)rng_normal(&rng);
    }
    pg_case c = {old, adv, ret, 0.2f};
    ppo_policy_loss(logp, old, adv, NULL, 16, 0.2f, 1.0f, g, NULL);
    expect_fd(logp, 16, g, pg_loss_of, &c, 1e-3, 1e-4);
    int flat = 0;
    for (int i = 0; i < 16; i++) flat += g[i] == 0;
    cr_expect(flat > 0 && flat < 16, "the sample should hit both the clipped and unclipped branches (%d flat)", flat);

    /* value loss: v around old with differences away from +-clip */
    float v[16];
    for (int i = 0; i < 16; i++) {
        double d;
        do d = rng_uniform(&rng, -0.5, 0.5);
        while (fabs(fabs(d) - 0.2) < 0.02);
        v[i] = (float)(old[i] + d);
    }
    ppo_value_loss(v, old, ret, NULL, 16, 0.2f, 1.0f, g, NULL);
    expect_fd(v, 16, g, v_loss_of, &c, 1e-3, 1e-4);
    c.clip = 0;
    ppo_value_loss(v, old, ret, NULL, 16, 0.0f, 1.0f, g, NULL);
    expect_fd(v, 16, g, v_loss_of, &c, 1e-3, 1e-4);
}

Test(ppo, value_loss_by_hand)
{
    /* clip .2:
     *  0: v 1,  old 1.5, ret 0:   e1 1,  v clipped to 1.3: e2 1.3  -> 1.69 (clipped, flat)
     *  1: v 2,  old 1.5, ret 4:   e1 -2, clipped to 1.7:   e2 -2.3 -> 5.29 (clipped, flat)
     *  2: v 1.6, old 1.5, ret 3.2: inside the clip: e = -1.6       -> 2.56, grad -1.6
     *  3: v 3,  old 1.5, ret 2:   e1 1, e2 -.3: unclipped larger   -> 1,    grad 1
     * loss = .5 * (1.69 + 5.29 + 2.56 + 1) / 4 = 1.3175; unclipped: .5 * 8.56 / 4 = 1.07 */
    const float v[4] = {1, 2, 1.6f, 3}, old[4] = {1.5f, 1.5f, 1.5f, 1.5f}, ret[4] = {0, 4, 3.2f, 2};
    float g[4];
    double cf;
    NEAR(ppo_value_loss(v, old, ret, NULL, 4, 0.2f, 1.0f, g, &cf), 1.3175, 1e-6);
    NEAR(cf, 0.5, 0);
    const double want[4] = {0, 0, -0.4, 0.25};
    for (int i = 0; i < 4; i++) NEAR(g[i], want[i], 1e-6);
    NEAR(ppo_value_loss(v, old, ret, NULL, 4, 0.0f, 1.0f, g, &cf), 1.07, 1e-6);
    const double want_u[4] = {0.25, -0.5, -0.4, 0.25};
    for (int i = 0; i < 4; i++) NEAR(g[i], want_u[i], 1e-6);
}

Test(ppo, kl_estimators)
{
    /* one sample: new .5, ref .25: k1 = ln 2; k3 = .5 - 1 + ln 2 */
    const float n1 = (float)log(0.5), r1 = (float)log(0.25);
    double k1, k3;
    ppo_kl(&n1, &r1, NULL, 1, &k1, &k3);
    NEAR(k1, log(2.0), 1e-6);
    NEAR(k3, 0.5 - 1 + log(2.0), 1e-6);
    /* both are unbiased: over samples in exact proportion to p = (.5, .25, .25) their means equal
     * KL(p || q) with q = (.2, .2, .6) */
    const double p[3] = {.5, .25, .25}, q[3] = {.2, .2, .6};
    const int s[4] = {0, 0, 1, 2};
    float ln[4], lq[4];
    for (int i = 0; i < 4; i++) {
        ln[i] = (float)log(p[s[i]]);
        lq[i] = (float)log(q[s[i]]);
    }
    double kl = 0;
    for (int j = 0; j < 3; j++) kl += p[j] * log(p[j] / q[j]);
    ppo_kl(ln, lq, NULL, 4, &k1, &k3);
    NEAR(k1, kl, 1e-6);
    NEAR(k3, kl, 1e-6);
}

Test(ppo, explained_variance)
{
    /* ret 1 2 4 (population var 42/27), ret - v = 0 0 1 (var 6/27): 1 - 6/42 */
    const float v[4] = {1, 2, 3, 50}, r[4] = {1, 2, 4, -50};
    const uint8_t m[4] = {1, 1, 1, 0};
    NEAR(ppo_explained_variance(v, r, m, 4), 1 - 6.0 / 42.0, 1e-6);
    const float c[2] = {3, 3};
    cr_expect(isnan(ppo_explained_variance(v, c, NULL, 2)));
}

typedef struct {
    const int32_t *act;
    const float *wl, *we; /* weights of the summed log-probs and entropies */
    int n, k;
} cat_case;

static double cat_obj(const float *logits, void *ud)
{
    const cat_case *c = ud;
    float lp[4], h[4];
    ppo_categorical_fwd(logits, c->k, c->n, c->k, c->act, lp, h);
    double s = 0;
    for (int r = 0; r < c->n; r++) s += (double)c->wl[r] * lp[r] + (double)c->we[r] * h[r];
    return s;
}

Test(ppo, categorical_head)
{
    /* logits (0, ln 3): p = (.25, .75), log p(1) = ln .75, H = -(.25 ln .25 + .75 ln .75) */
    const float z[2] = {0, (float)log(3.0)};
    const int32_t a1 = 1;
    float lp, h;
    ppo_categorical_fwd(z, 2, 1, 2, &a1, &lp, &h);
    NEAR(lp, log(0.75), 1e-6);
    NEAR(h, -(0.25 * log(0.25) + 0.75 * log(0.75)), 1e-6);
    cr_expect(ppo_argmax(z, 2) == 1);

    uint64_t rng = 3;
    float logits[12], d[12];
    for (int i = 0; i < 12; i++) logits[i] = (float)rng_normal(&rng);
    const int32_t act[4] = {0, 2, 1, 2};
    const float wl[4] = {0.5f, -1, 2, 0.3f}, we[4] = {1, 0.2f, -0.7f, 0};
    cat_case c = {act, wl, we, 4, 3};
    ppo_categorical_bwd(d, logits, 3, 4, 3, act, wl, we);
    expect_fd(logits, 12, d, cat_obj, &c, 1e-3, 1e-3);

    /* sampling follows the probabilities */
    int counts[2] = {0, 0};
    for (int i = 0; i < 20000; i++) counts[ppo_categorical_sample(z, 2, &rng)]++;
    NEAR(counts[1] / 20000.0, 0.75, 0.015);
}

typedef struct {
    const float *mean, *act, *log_std, *wl;
    float went;
    int n, d;
} gauss_case;

static double gauss_obj(const gauss_case *c)
{
    float lp[3];
    ppo_gaussian_fwd(c->mean, c->log_std, c->n, c->d, c->act, lp);
    double s = c->went * ppo_gaussian_entropy(c->log_std, c->d);
    for (int r = 0; r < c->n; r++) s += (double)c->wl[r] * lp[r];
    return s;
}

static double gauss_obj_mean(const float *mean, void *ud)
{
    gauss_case c = *(const gauss_case *)ud;
    c.mean = mean;
    return gauss_obj(&c);
}

static double gauss_obj_logstd(const float *log_std, void *ud)
{
    gauss_case c = *(const gauss_case *)ud;
    c.log_std = log_std;
    return gauss_obj(&c);
}

Test(ppo, gaussian_head)
{
    /* N(1; 0, 1) in each of two dims: 2 * (-.5 - .5 ln 2pi); entropy 2 * (.5 + .5 ln 2pi) */
    const float m0[2] = {0, 0}, ls0[2] = {0, 0}, a0[2] = {1, 1};
    float lp;
    ppo_gaussian_fwd(m0, ls0, 1, 2, a0, &lp);
    NEAR(lp, 2 * (-0.5 - 0.5 * log(2 * M_PI)), 1e-6);
    NEAR(ppo_gaussian_entropy(ls0, 2), 2 * (0.5 + 0.5 * log(2 * M_PI)), 1e-9);

    uint64_t rng = 11;
    float mean[6], act[6], dmean[6], ls[2] = {-0.5f, 0.3f}, dls[2] = {0, 0};
    for (int i = 0; i < 6; i++) {
        mean[i] = (float)rng_normal(&rng);
        act[i] = (float)rng_normal(&rng);
    }
    const float wl[3] = {1, -0.5f, 0.25f};
    gauss_case c = {mean, act, ls, wl, -0.1f, 3, 2};
    ppo_gaussian_bwd(dmean, dls, mean, ls, 3, 2, act, wl, c.went);
    expect_fd(mean, 6, dmean, gauss_obj_mean, &c, 1e-3, 1e-3);
    expect_fd(ls, 2, dls, gauss_obj_logstd, &c, 1e-3, 1e-3);
}

Test(ppo, permutation)
{
    int p[50], q[50], seen[50] = {0};
    uint64_t a = 1, b = 2;
    ppo_permutation(p, 50, &a);
    ppo_permutation(q, 50, &b);
    int same = 0;
    for (int i = 0; i < 50; i++) {
        cr_assert(p[i] >= 0 && p[i] < 50);
        seen[p[i]]++;
        same += p[i] == q[i];
    }
    for (int i = 0; i < 50; i++) cr_expect(seen[i] == 1);
    cr_expect(same < 10, "two seeds gave nearly the same order");
}
