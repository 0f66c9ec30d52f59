/* test_dpo.c — the DPO losses (rlhf/dpo.h) against values worked out by hand from their formulas,
 * their gradients against finite differences, the logged rewards, option checks, and (further down)
 * end-to-end runs on a synthetic task whose optimum is known. Resume (with the cached reference
 * log-probs), kill -9, NaN and bad data: the trainer_contract suite (test_trainer_contract.c). */
#include "dpo.h"
#include "fileio.h"
#include "hf.h"
#include "rng.h"
#include "testutil.h"
#include "tok.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- through the model ------------------------------------------------------------------------- */

/* a hand-made batch: 2 pairs (rows: chosen 0, chosen 1, rejected 0, rejected 1) over a 23-token
 * vocabulary, prompt of 2 tokens, completions of different lengths, right padding */
typedef struct {
    int32_t tok[4 * 6], tgt[4 * 6];
    float mask[4 * 6];
    int len[4];
    ds_batch b;
} mini_batch;

static void mini(mini_batch *x)
{
    const int32_t rows[4][6] = {{1, 2, 5, 6, 7, 22}, {3, 4, 8, 9, 22, 0}, {1, 2, 10, 11, 22, 0}, {3, 4, 12, 13, 14, 22}};
    const int lens[4] = {6, 5, 5, 6}, plen = 2;
    for (int r = 0; r < 4; r++) {
        x->len[r] = lens[r];
        for (int t = 0; t < 6; t++) {
            x->tok[r * 6 + t] = rows[r][t];
            x->tgt[r * 6 + t] = t < 5 && t + 1 < lens[r] ? rows[r][t + 1] : 0;
            x->mask[r * 6 + t] = (t + 1 >= plen && t + 1 < lens[r]) ? 1.0f : 0.0f;
        }
    }
    memset(&x->b, 0, sizeof x->b);
    x->b.B = 4;
    x->b.T = 6;
    x->b.tokens = x->tok;
    x->b.targets = x->tgt;
    x->b.loss_mask = x->mask;
    x->b.lengths = x->len;
}

static gpt2 *tiny_policy(uint64_t seed)
{
    gpt2_config c = {.n_layer = 2, .n_head = 2, .n_embd = 16, .vocab_size = 23, .n_positions = 8, .ln_eps = 1e-5f};
    char err[512];
    gpt2 *m;
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, seed);
    float *p = gpt2_params(m);
    for (size_t i = 0; i < gpt2_num_params(m); i++) p[i] *= 3.0f;
    gpt2_set_threads(m, 1);
    return m;
}

static double step_loss(gpt2 *m, mini_batch *x, const dpo_loss_opts *o, const double *rc, const double *rr, dpo_work *w)
{
    char err[512];
    float loss;
    cr_assert(gpt2_forward(m, x->b.tokens, x->b.targets, x->b.loss_mask, 4, 6, &loss, err, sizeof err) == 0, "%s", err);
    double s[4];
    float n[4];
    dpo_seq_logps(gpt2_logp(m), x->b.loss_mask, 4, 6, s, n);
    (void)w;
    return dpo_loss(o, 2, s, s + 2, rc, rr, n, n + 2, NULL, NULL, NULL);
}

/* dpo_step's gradient of the DPO and IPO losses w.r.t. every model tensor, against finite
 * differences (Richardson-combined central differences at eps and 2 eps) */
Test(dpo_model, step_gradient_matches_finite_differences)
{
    gpt2 *m = tiny_policy(11);
    mini_batch x;
    mini(&x);
    const double rc[2] = {-9.5, -7.25}, rr[2] = {-8, -11};
    dpo_work w;
    char err[512];
    cr_assert(dpo_work_create(&w, 2, 6, err, sizeof err) == 0);
    const dpo_loss_opts losses[2] = {{DPO_SIGMOID, 0.3, 0.1}, {DPO_IPO, 0.5, 0}};
    for (int li = 0; li < 2; li++) {
        const dpo_loss_opts *o = &losses[li];
        dpo_stats st;
        gpt2_zero_grad(m);
        cr_assert(dpo_step(m, &x.b, o, rc, rr, 1.0, &w, &st, err, sizeof err) == 0, "%s", err);
        CLOSE(st.loss, step_loss(m, &x, o, rc, rr, &w), 1e-9);
        const size_t np = gpt2_num_params(m);
        float *g = malloc(np * sizeof *g);
        memcpy(g, gpt2_grads(m), np * sizeof *g);
        const gpt2_tensor *tb = gpt2_param_table(m);
        uint64_t s = 5;
        for (int k = 0; k < GPT2_NUM_TENSORS; k++) {
            float *p = gpt2_params(m) + tb[k].offset;
            size_t n = tb[k].numel;
            float *d = malloc(n * sizeof *d), *save = malloc(n * sizeof *save);
            double gd = 0;
            for (size_t i = 0; i < n; i++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                d[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
                gd += (double)g[tb[k].offset + i] * d[i];
            }
            memcpy(save, p, n * sizeof *save);
            double D[2];
            for (int h = 0; h < 2; h++) {
                const double eps = h ? 2e-3 : 1e-3;
                for (size_t i = 0; i < n; i++) p[i] = save[i] + (float)eps * d[i];
                double a = step_loss(m, &x, o, rc, rr, &w);
                for (size_t i = 0; i < n; i++) p[i] = save[i] - (float)eps * d[i];
                double b = step_loss(m, &x, o, rc, rr, &w);
                D[h] = (a - b) / (2 * eps);
            }
            memcpy(p, save, n * sizeof *save);
            double fd = (4 * D[0] - D[1]) / 3;
            cr_assert(fabs(fd - gd) <= 3e-3 * fmax(1.0, fabs(fd)), "%s, %s: finite difference %.6g, backward %.6g",
                      dpo_loss_name(o->type), tb[k].name, fd, gd);
            cr_assert(fabs(gd) > 1e-6, "%s, %s: gradient ~0, the check is vacuous", dpo_loss_name(o->type), tb[k].name);
            free(d);
            free(save);
        }
        free(g);
    }
    dpo_work_free(&w);
    gpt2_free(m);
}

/* ---- synthetic task with a known optimum ------------------------------------------------------- */
/* Pairs share a prompt and a filler sentence; the chosen completion holds the target word " yes"
 * where the rejected one holds " no". The preferred policy puts more probability on " yes" in that
 * context; DPO must move the policy there, and its implicit reward must rank held-out pairs. */

static tu_fixture fx;

static size_t make_pairs(char *buf, size_t cap, int n, uint64_t seed)
{
    static const char *const filler[] = {" the", " cat", " sat", " on", " mat", " and", " dog", " ran"};
    uint64_t s = seed;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        char a[256] = "", b[256] = "";
        int at = (int)rng_below(&s, 3), len = 3 + (int)rng_below(&s, 3);
        for (int w = 0; w < len; w++) {
            const char *f = filler[rng_below(&s, 8)];
            strcat(a, w == at ? " yes" : f);
            strcat(b, w == at ? " no" : f);
        }
        o += (size_t)snprintf(buf + o, cap - o, "{\"prompt\": \"say:\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", a, b);
    }
    return o;
}

static void fixtures(void)
{
    static char tb[65536], eb[65536];
    const size_t nt = make_pairs(tb, sizeof tb, 48, 1), ne = make_pairs(eb, sizeof eb, 16, 2);
    tu_fixture_make(&fx, "dpo-fix", tb, nt, eb, ne);
}

static dpo_opts opts(const char *out)
{
    dpo_opts o = dpo_defaults();
    o.model = fx.model;
    o.tokenizer = fx.tok;
    o.data = fx.train;
    o.eval_data = fx.eval;
    o.run.out = out;
    o.run.batch = 8;
    o.run.steps = 30;
    o.optim.warmup = 2;
    o.optim.lr = 3e-3f;
    o.run.eval_every = 15;
    o.run.ckpt_every = 10;
    o.run.threads = 1;
    o.run.precision = TRAINER_PREC_FP32; /* the algorithm in fp32 (bf16: test_gpt2_bf16) */
    return o;
}

/* mean log-probability of the target token where it stands in the held-out chosen completions */
static double target_logp(const char *model)
{
    char err[512];
    tok_tokenizer *t;
    cr_assert(tok_load(fx.tok, &t, err, sizeof err) == 0, "%s", err);
    tok_encoder *e = tok_encoder_create(t);
    tok_ids ids = {0};
    cr_assert(tok_encode(e, " yes", 4, 0, &ids) == 0 && ids.n == 1, "\" yes\" must be one token");
    const int32_t target = ids.ids[0];
    tok_ids_free(&ids);
    tok_encoder_free(e);
    ds_dataset d = {0};
    ds_load_opts lo = ds_load_defaults();
    cr_assert(ds_load(&d, t, fx.eval, &lo, err, sizeof err) == 0, "%s", err);
    ds_batch b = {0};
    cr_assert(ds_batch_create(&b, 2 * (int)d.n, d.max_row, err, sizeof err) == 0);
    size_t idx[64];
    for (size_t i = 0; i < d.n; i++) idx[i] = i;
    cr_assert(ds_batch_fill(&d, idx, d.n, &b, err, sizeof err) == 0, "%s", err);
    gpt2 *m;
    cr_assert(hf_load_gpt2(model, &m, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(m, 1);
    float loss;
    cr_assert(gpt2_forward(m, b.tokens, b.targets, b.loss_mask, b.B, b.T, &loss, err, sizeof err) == 0, "%s", err);
    double s = 0;
    int k = 0;
    for (int r = 0; r < (int)d.n; r++) /* chosen rows */
        for (int x = 0; x < b.T; x++)
            if (b.loss_mask[r * b.T + x] != 0 && b.targets[r * b.T + x] == target) {
                s += gpt2_logp(m)[r * b.T + x];
                k++;
            }
    cr_assert(k == (int)d.n, "one target per chosen completion, found %d", k);
    gpt2_free(m);
    ds_batch_free(&b);
    ds_free(&d);
    tok_free(t);
    return s / k;
}

/* the first and last value of a metric in OUT/metrics.jsonl */
static void metric_ends(const char *out, const char *name, double *first, double *last)
{
    char *s = tu_read(out, "metrics.jsonl", NULL);
    *first = *last = NAN;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *v = j ? json_object_get(j, name) : NULL;
        if (v) {
            if (isnan(*first)) *first = json_number_value(v);
            *last = json_number_value(v);
        }
        json_decref(j);
    }
    free(s);
}

Test(dpo_train, moves_the_policy_toward_the_known_optimum, .init = fixtures, .timeout = 120)
{
    char out[4300], err[1024], p[4400];
    snprintf(out, sizeof out, "%s/run", tu_tmpdir("dpo-learn"));
    dpo_opts o = opts(out);
    dpo_result r;
    cr_assert(dpo_run(&o, &r, err, sizeof err) == 0, "%s", err);
    cr_assert(r.n_train == 48 && r.n_eval == 16 && r.steps == 30);
    const double before = target_logp(fx.model), after = target_logp(fio_join(p, sizeof p, out, "model"));
    cr_assert(after > before + 1.0, "log p(target) %g -> %g", before, after);
    /* the implicit reward ranks held-out pairs; at step 1 the policy is the reference: all rewards 0 */
    double a0, a1, m0, m1;
    metric_ends(out, "rewards/accuracies", &a0, &a1);
    cr_assert(a0 == 0 && a1 >= 0.9, "rewards/accuracies %g -> %g", a0, a1);
    metric_ends(out, "rewards/margins", &m0, &m1);
    cr_assert(m0 == 0 && m1 > 0, "rewards/margins %g -> %g", m0, m1);
    cr_assert(r.eval.rewards_accuracies >= 0.9 && r.eval.loss < log(2.0), "eval accuracy %g loss %g",
              r.eval.rewards_accuracies, r.eval.loss);
    /* TRL's names in every line */
    char *mt = tu_read(out, "metrics.jsonl", NULL);
    cr_assert(tu_lines(mt) == 30);
    const char *names[] = {"\"loss\"", "\"rewards/chosen\"", "\"rewards/rejected\"", "\"logps/chosen\"",
                           "\"logps/rejected\"", "\"eval_rewards/accuracies\"", "\"eval_logps/chosen\""};
    for (int i = 0; i < 7; i++) cr_assert(strstr(mt, names[i]), "%s missing", names[i]);
    free(mt);
}

Test(dpo_train, a_large_beta_keeps_the_policy_near_the_reference, .init = fixtures, .timeout = 120)
{
    char a[4300], b[4300], err[1024], p[4400];
    snprintf(a, sizeof a, "%s/small", tu_tmpdir("dpo-beta"));
    snprintf(b, sizeof b, "%s/large", tu_tmpdir("dpo-beta"));
    dpo_opts o = opts(a);
    o.eval_data = NULL;
    o.loss.beta = 0.1;
    cr_assert(dpo_run(&o, NULL, err, sizeof err) == 0, "%s", err);
    o.run.out = b;
    o.loss.beta = 50;
    cr_assert(dpo_run(&o, NULL, err, sizeof err) == 0, "%s", err);
    const double ref = target_logp(fx.model), small = target_logp(fio_join(p, sizeof p, a, "model")),
                 large = target_logp(fio_join(p, sizeof p, b, "model"));
    cr_assert(fabs(large - ref) < 0.5 * fabs(small - ref), "log p(target): reference %g, beta 0.1 %g, beta 50 %g", ref,
              small, large);
}

/* the starting model named as the reference gives the same run as the default (which uses the
 * starting model itself); resume: trainer_contract */
Test(dpo_train, an_explicit_reference_equals_the_default, .init = fixtures, .timeout = 120)
{
    char a[4300], c[4300], err[1024], p[4400];
    const char *d = tu_tmpdir("dpo-ref");
    snprintf(a, sizeof a, "%s/a", d);
    snprintf(c, sizeof c, "%s/c", d);
    dpo_opts o = opts(a);
    o.run.steps = 8;
    o.run.batch = 4;
    o.run.accum = 2;
    o.run.ckpt_every = 3;
    o.loss = (dpo_loss_opts){DPO_IPO, 0.5, 0};
    cr_assert(dpo_run(&o, NULL, err, sizeof err) == 0, "%s", err);
    cr_assert(fio_exists(fio_join(p, sizeof p, a, "step-00000008/ref_logps.safetensors")));
    o.run.out = c;
    o.ref = fx.model;
    cr_assert(dpo_run(&o, NULL, err, sizeof err) == 0, "%s", err);
    gpt2 *x, *z;
    cr_assert(hf_load_gpt2(fio_join(p, sizeof p, a, "model"), &x, err, sizeof err) == 0, "%s", err);
    cr_assert(hf_load_gpt2(fio_join(p, sizeof p, c, "model"), &z, err, sizeof err) == 0, "%s", err);
    cr_assert(memcmp(gpt2_params(x), gpt2_params(z), gpt2_num_params(x) * sizeof(float)) == 0,
              "explicit reference differs");
    /* and it did train: the weights left the reference's */
    gpt2 *r;
    cr_assert(hf_load_gpt2(fx.model, &r, err, sizeof err) == 0, "%s", err);
    cr_assert(memcmp(gpt2_params(x), gpt2_params(r), gpt2_num_params(x) * sizeof(float)) != 0);
    gpt2_free(r);
    gpt2_free(x);
    gpt2_free(z);
}

/* every loss type runs through the CLI; bad loss options are one line, exit 1, nothing written */
Test(dpo_train, cli_losses_and_loss_options, .init = fixtures, .timeout = 120)
{
    const char *d = tu_tmpdir("dpo-cli");
    char out[4300], args[24000], p[4400];
    const char *losses[] = {"--loss hinge --beta 0.5", "--loss robust --label-smoothing 0.2",
                            "--loss sigmoid --label-smoothing 0.1"};
    for (int i = 0; i < 3; i++) {
        snprintf(out, sizeof out, "%s/ok%d", d, i);
        snprintf(args, sizeof args, "dpo --model '%s' --tokenizer '%s' --data '%s' --out '%s' --steps 2 --batch 4 --threads 1 %s",
                 fx.model, fx.tok, fx.train, out, losses[i]);
        char *so, *se;
        cr_assert(tu_run(args, NULL, &so, &se) == 0, "%s: %s", losses[i], se);
        cr_assert(fio_exists(fio_join(p, sizeof p, out, "model/model.safetensors")));
        free(so);
        free(se);
    }
    snprintf(out, sizeof out, "%s/bad", d);
    const struct {
        const char *data, *extra, *want;
    } cases[] = {{fx.train, "--loss ipo --label-smoothing 0.1", "not ipo"},
                 {fx.train, "--loss kto", "'kto' is not one of"},
                 {fx.train, "--beta 0", "beta 0 must be a positive number"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(args, sizeof args, "dpo --model '%s' --tokenizer '%s' --data '%s' --out '%s' --steps 2 --threads 1 %s",
                 fx.model, fx.tok, cases[i].data, out, cases[i].extra);
        char *so, *se;
        cr_assert(tu_run(args, NULL, &so, &se) == 1, "case %zu: %s", i, se);
        cr_assert(tu_lines(se) == 1 && strstr(se, cases[i].want), "case %zu: %s", i, se);
        cr_assert(!fio_exists(out), "case %zu: %s was created", i, out);
        free(so);
        free(se);
    }
}
