/* test_dpo.c — the DPO losses (rlhf/dpo.h) against values worked out by hand from their formulas,
 * their gradients against finite differences, the logged rewards, option checks, and (further down)
 * end-to-end runs on a synthetic task whose optimum is known. */
#include "dpo.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLOSE(a, b, tol) cr_assert(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.12g, expected %.12g", #a, (double)(a), (double)(b))

/* One pair with chosen log-ratio 1 and rejected log-ratio 0, so h = 1. */
static const double PC[1] = {-3}, RC[1] = {-4}, PR[1] = {-5}, RR[1] = {-5};

Test(dpo_loss, sigmoid_by_hand)
{
    /* β = ln 3: σ(β h) = 3/4, so -log σ = ln(4/3) */
    dpo_loss_opts o = {DPO_SIGMOID, log(3.0), 0};
    dpo_stats st;
    double l = dpo_loss(&o, 1, PC, PR, RC, RR, NULL, NULL, NULL, NULL, &st);
    CLOSE(l, log(4.0 / 3.0), 1e-12);
    CLOSE(st.loss, l, 0);
    /* rewards: β times the log-ratios */
    CLOSE(st.rewards_chosen, log(3.0), 1e-12);
    CLOSE(st.rewards_rejected, 0, 1e-12);
    CLOSE(st.rewards_margins, log(3.0), 1e-12);
    CLOSE(st.rewards_accuracies, 1, 0);
    CLOSE(st.logps_chosen, -3, 0);
    CLOSE(st.logps_rejected, -5, 0);
    /* h = 0 (no preference learnt yet): ln 2 for every β */
    const double z[1] = {0};
    o.beta = 0.1;
    CLOSE(dpo_loss(&o, 1, z, z, z, z, NULL, NULL, NULL, NULL, &st), log(2.0), 1e-12);
    CLOSE(st.rewards_accuracies, 0, 0); /* a tie is not a correct ranking */
}

Test(dpo_loss, label_smoothing_cdpo_and_robust_by_hand)
{
    /* σ(β h) = 3/4, σ(-β h) = 1/4; ε = 1/4 */
    dpo_loss_opts o = {DPO_SIGMOID, log(3.0), 0.25};
    CLOSE(dpo_loss(&o, 1, PC, PR, RC, RR, NULL, NULL, NULL, NULL, NULL), 0.75 * log(4.0 / 3.0) + 0.25 * log(4.0), 1e-12);
    o.type = DPO_ROBUST;
    CLOSE(dpo_loss(&o, 1, PC, PR, RC, RR, NULL, NULL, NULL, NULL, NULL), (0.75 * log(4.0 / 3.0) - 0.25 * log(4.0)) / 0.5,
          1e-12);
    /* robust with ε = 0 is plain DPO */
    o.label_smoothing = 0;
    CLOSE(dpo_loss(&o, 1, PC, PR, RC, RR, NULL, NULL, NULL, NULL, NULL), log(4.0 / 3.0), 1e-12);
}

Test(dpo_loss, hinge_by_hand)
{
    dpo_loss_opts o = {DPO_HINGE, 0.5, 0};
    CLOSE(dpo_loss(&o, 1, PC, PR, RC, RR, NULL, NULL, NULL, NULL, NULL), 0.5, 1e-12); /* 1 - 0.5 * 1 */
    o.beta = 2; /* β h = 2 > 1: no loss, no gradient */
    double dc, dr;
    CLOSE(dpo_loss(&o, 1, PC, PR, RC, RR, NULL, NULL, &dc, &dr, NULL), 0, 0);
    CLOSE(dc, 0, 0);
    CLOSE(dr, 0, 0);
}

Test(dpo_loss, ipo_uses_length_averaged_log_ratios)
{
    /* chosen log-ratio 1 over 2 tokens -> 0.5; rejected log-ratio -2 over 4 tokens -> -0.5; h' = 1 */
    const double pc[1] = {-3}, rc[1] = {-4}, pr[1] = {-7}, rr[1] = {-5};
    const float nc[1] = {2}, nr[1] = {4};
    dpo_loss_opts o = {DPO_IPO, 1.0, 0};
    dpo_stats st;
    CLOSE(dpo_loss(&o, 1, pc, pr, rc, rr, nc, nr, NULL, NULL, &st), 0.25, 1e-12); /* (1 - 1/2)^2 */
    o.beta = 0.5;
    CLOSE(dpo_loss(&o, 1, pc, pr, rc, rr, nc, nr, NULL, NULL, NULL), 0, 1e-12); /* h' = 1/(2β) */
    /* the logged rewards stay the summed ones */
    CLOSE(st.rewards_chosen, 1, 1e-12);
    CLOSE(st.rewards_rejected, -2, 1e-12);
    /* without lengths the sums are used: h = 3, (3 - 1)^2 */
    CLOSE(dpo_loss(&o, 1, pc, pr, rc, rr, NULL, NULL, NULL, NULL, NULL), 4, 1e-12);
}

Test(dpo_loss, mean_over_pairs_and_metrics)
{
    /* pair 0: h = 1; pair 1: chosen ratio -1, rejected ratio 1, h = -2 (a wrong ranking) */
    const double pc[2] = {-3, -6}, rc[2] = {-4, -5}, pr[2] = {-5, -1}, rr[2] = {-5, -2};
    dpo_loss_opts o = {DPO_SIGMOID, 1.0, 0};
    dpo_stats st;
    double l = dpo_loss(&o, 2, pc, pr, rc, rr, NULL, NULL, NULL, NULL, &st);
    CLOSE(l, (log1p(exp(-1.0)) + log1p(exp(2.0))) / 2, 1e-12);
    CLOSE(st.rewards_accuracies, 0.5, 0);
    CLOSE(st.rewards_chosen, (1 + -1) / 2.0, 1e-12);
    CLOSE(st.rewards_rejected, (0 + 1) / 2.0, 1e-12);
    CLOSE(st.rewards_margins, -0.5, 1e-12);
    CLOSE(st.logps_chosen, -4.5, 1e-12);
    CLOSE(st.logps_rejected, -3, 1e-12);
}

/* every loss: d loss / d (policy chosen, rejected log-probs) against central differences */
Test(dpo_loss, gradients_match_finite_differences)
{
    const double rc[3] = {-4, -5, -9}, rr[3] = {-5, -2, -8};
    const float nc[3] = {2, 5, 3}, nr[3] = {4, 1, 7};
    const struct {
        dpo_loss_type t;
        double beta, eps;
    } cases[] = {{DPO_SIGMOID, 0.1, 0}, {DPO_SIGMOID, 0.7, 0.2}, {DPO_ROBUST, 0.5, 0.3},
                 {DPO_HINGE, 0.3, 0},   {DPO_IPO, 0.2, 0},      {DPO_IPO, 2.0, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        dpo_loss_opts o = {cases[k].t, cases[k].beta, cases[k].eps};
        double pc[3] = {-3, -6, -8.5}, pr[3] = {-5, -1.2, -7}, dc[3], dr[3];
        dpo_loss(&o, 3, pc, pr, rc, rr, nc, nr, dc, dr, NULL);
        for (int side = 0; side < 2; side++)
            for (int i = 0; i < 3; i++) {
                double *x = side ? pr : pc, keep = x[i], e = 1e-5;
                x[i] = keep + e;
                double a = dpo_loss(&o, 3, pc, pr, rc, rr, nc, nr, NULL, NULL, NULL);
                x[i] = keep - e;
                double b = dpo_loss(&o, 3, pc, pr, rc, rr, nc, nr, NULL, NULL, NULL);
                x[i] = keep;
                double fd = (a - b) / (2 * e), an = side ? dr[i] : dc[i];
                cr_assert(fabs(fd - an) < 1e-7 * (1 + fabs(an)), "%s beta %g: d/d%s[%d] analytic %.10g fd %.10g",
                          dpo_loss_name(o.type), o.beta, side ? "pr" : "pc", i, an, fd);
            }
    }
}

Test(dpo_loss, options_are_checked)
{
    char err[256];
    dpo_loss_type t;
    cr_assert(dpo_loss_parse("robust", &t) == 0 && t == DPO_ROBUST);
    cr_assert(dpo_loss_parse("kto", &t) == -1);
    dpo_loss_opts o = {DPO_SIGMOID, 0, 0};
    cr_assert(dpo_loss_check(&o, err, sizeof err) == -1 && strstr(err, "beta 0 must be a positive number"), "%s", err);
    o = (dpo_loss_opts){DPO_ROBUST, 0.1, 0.5};
    cr_assert(dpo_loss_check(&o, err, sizeof err) == -1 && strstr(err, "[0, 0.5) for the robust loss"), "%s", err);
    o = (dpo_loss_opts){DPO_IPO, 0.1, 0.1};
    cr_assert(dpo_loss_check(&o, err, sizeof err) == -1 && strstr(err, "not ipo"), "%s", err);
    o = (dpo_loss_opts){DPO_SIGMOID, 0.1, 0.5};
    cr_assert(dpo_loss_check(&o, err, sizeof err) == 0, "%s", err);
}

Test(dpo_loss, sequence_log_probs_sum_over_the_mask)
{
    const float logp[2 * 4] = {-1, -2, -3, -4, -0.5f, -0.25f, -8, -16};
    const float mask[2 * 4] = {0, 1, 1, 0, 1, 1, 0, 0};
    double s[2];
    float n[2];
    dpo_seq_logps(logp, mask, 2, 4, s, n);
    CLOSE(s[0], -5, 0);
    CLOSE(s[1], -0.75, 0);
    CLOSE(n[0], 2, 0);
    CLOSE(n[1], 2, 0);
}
