/* test_gpt2_bf16.c — mixed-precision GPT-2 (gpt2_set_precision(m, GPT2_PREC_BF16)): logits, log-probs,
 * loss and the gradient of every tensor against the float64 PyTorch goldens (tests/data/gpt2, from
 * tools/golden/gen_gpt2_golden.py) within bounds derived from bf16's 8-bit significand; the weight
 * copies' refresh contract (gpt2_weights_changed); fp32 staying bit-identical; and a short training
 * run in bf16 tracking the fp32 run's loss. Skipped, saying so, where the CPU has neither
 * AVX512-BF16 nor usable AMX or the build has no oneDNN (then only the fallback test runs).
 *
 * The bounds. One bf16 product of inputs rounded to nearest (relative error <= 2^-8 each) has an
 * error <= (2^-7 + 2^-16) sum|a_i b_i| + k 2^-24 sum|a_i b_i| (tests/test_mm_bf16.c): a relative
 * error of at most ~2^-7 of its output's scale. To first order the relative errors of the D products
 * on the path from the inputs to a tensor add up (LayerNorm, softmax, GELU and the residual adds pass
 * a relative error on with gain ~1), so
 *     max |ours - golden| <= D * 2^-7 * max |golden|           (per tensor)
 * with D = 6L + 1 = 13 products for the logits of this L = 2 model (per layer: qkv, QK^T, PV, proj,
 * fc, fcproj; then the LM head) and D = 2 * 13 = 26 for gradients (every forward product, then
 * every backward product). The log-probs and the loss inherit twice the logits' absolute bound (a
 * logit and the log-sum-exp). The same tensors in fp32 are held to 2e-6 (test_gpt2_golden.c);
 * the errors measured here are printed by --verbose runs and sit well inside these bounds. */
#include "cpu.h"
#include "gpt2.h"
#include "hf.h"
#include "mm.h"
#include "safetensors.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U7 (1.0 / 128.0) /* 2^-7: one product's relative error bound */

static int bf16_or_skip(void)
{
    if (mm_bf16_available()) return 1;
    cr_skip("bf16 products not available here (CPU: %s; needs AVX512-BF16 or AMX, and oneDNN in the build)",
            cpu_features_str());
    return 0;
}

static gpt2 *load_tiny(gpt2_precision p)
{
    gpt2 *m;
    char err[512];
    cr_assert(hf_load_gpt2(tu_data("gpt2/tiny"), &m, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(m, 1);
    cr_assert_eq(gpt2_set_precision(m, p), p, "%s", gpt2_precision_note(m));
    return m;
}

static void *read_tensor(st_file *g, const char *name, st_dtype dtype, size_t elem)
{
    const st_tensor *t = st_find(g, name);
    cr_assert(t && t->dtype == dtype, "golden tensor %s missing or of another type", name);
    void *d = malloc(t->numel * elem);
    char err[512];
    cr_assert(st_read_raw(g, t, d, t->numel * elem, err, sizeof err) == 0, "%s", err);
    return d;
}

/* max |a - b| against D * 2^-7 * max |b|; returns the measured ratio err / max|b| */
static double within(const char *what, const float *a, const double *b, size_t n, int D)
{
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs(b[i]));
    }
    scale = fmax(scale, 1e-3);
    cr_assert(mx <= D * U7 * scale, "%s: max error %.3g > %d * 2^-7 * %.3g = %.3g", what, mx, D, scale, D * U7 * scale);
    cr_log_info("%s: max error %.3g = %.2g of max |value| (bound %.2g)", what, mx, mx / scale, D * U7);
    return mx / scale;
}

typedef struct {
    st_file *g;
    int32_t *tok, *tgt;
    float *mask;
} golden;

static golden golden_open(void)
{
    golden G;
    char err[512];
    cr_assert(st_open(tu_data("gpt2/tiny/golden.safetensors"), &G.g, err, sizeof err) == 0, "%s", err);
    G.tok = read_tensor(G.g, "tokens", ST_I32, 4);
    G.tgt = read_tensor(G.g, "targets", ST_I32, 4);
    const st_tensor *mt = st_find(G.g, "mask");
    G.mask = malloc(mt->numel * 4);
    cr_assert(st_read_f32(G.g, mt, G.mask, mt->numel, err, sizeof err) == 0, "%s", err);
    return G;
}

static void golden_close(golden *G)
{
    free(G->tok);
    free(G->tgt);
    free(G->mask);
    st_close(G->g);
}

Test(gpt2_bf16, logits_logp_loss_against_float64)
{
    if (!bf16_or_skip()) return;
    gpt2 *m = load_tiny(GPT2_PREC_BF16);
    golden G = golden_open();
    const int B = 3, T = 9, V = gpt2_cfg(m)->vocab_size, D = 6 * gpt2_cfg(m)->n_layer + 1;
    float loss;
    char err[512];
    cr_assert(gpt2_forward(m, G.tok, G.tgt, G.mask, B, T, &loss, err, sizeof err) == 0, "%s", err);
    double *logits = read_tensor(G.g, "logits", ST_F64, 8), *logp = read_tensor(G.g, "logp", ST_F64, 8);
    double *rl = read_tensor(G.g, "loss", ST_F64, 8), lmax = 0;
    for (size_t i = 0; i < (size_t)B * T * V; i++) lmax = fmax(lmax, fabs(logits[i]));
    within("logits", gpt2_logits(m), logits, (size_t)B * T * V, D);
    const double lbound = 2 * D * U7 * lmax; /* a logit's error plus the log-sum-exp's */
    for (int i = 0; i < B * T; i++)
        cr_assert(fabs(gpt2_logp(m)[i] - logp[i]) <= lbound, "logp[%d] %.7g vs %.7g (bound %.3g)", i, gpt2_logp(m)[i],
                  logp[i], lbound);
    cr_assert(fabs(loss - rl[0]) <= lbound, "loss %.7g vs %.7g (bound %.3g)", loss, rl[0], lbound);
    /* and bf16 really ran: the logits are not the fp32 ones */
    gpt2 *f = load_tiny(GPT2_PREC_FP32);
    cr_assert(gpt2_forward(f, G.tok, G.tgt, G.mask, B, T, NULL, err, sizeof err) == 0, "%s", err);
    cr_assert(memcmp(gpt2_logits(f), gpt2_logits(m), (size_t)B * T * V * 4) != 0, "bf16 logits equal fp32's");
    free(logits), free(logp), free(rl);
    golden_close(&G);
    gpt2_free(f);
    gpt2_free(m);
}

Test(gpt2_bf16, gradients_of_every_tensor_against_float64)
{
    if (!bf16_or_skip()) return;
    gpt2 *m = load_tiny(GPT2_PREC_BF16);
    golden G = golden_open();
    char err[512];
    cr_assert(gpt2_forward(m, G.tok, G.tgt, G.mask, 3, 9, NULL, err, sizeof err) == 0, "%s", err);
    gpt2_zero_grad(m);
    cr_assert(gpt2_backward(m, NULL, NULL, err, sizeof err) == 0, "%s", err);
    const gpt2_tensor *tb = gpt2_param_table(m);
    const int L = gpt2_cfg(m)->n_layer, D = 2 * (6 * L + 1);
    for (int k = 0; k < GPT2_NUM_TENSORS; k++)
        for (int l = 0; l < (tb[k].per_layer ? L : 1); l++) {
            char hn[128], name[160];
            hf_tensor_name(hn, sizeof hn, k, l, 1);
            snprintf(name, sizeof name, "grad.%s", hn);
            double *ref = read_tensor(G.g, name, ST_F64, 8);
            within(name, gpt2_grads(m) + gpt2_off(tb, k, l), ref, tb[k].per_layer ? tb[k].numel / (size_t)L : tb[k].numel, D);
            free(ref);
        }
    golden_close(&G);
    gpt2_free(m);
}

/* the copies follow gpt2_weights_changed, not every write: a step's micro-batches share them */
Test(gpt2_bf16, weight_copies_refresh_on_weights_changed)
{
    if (!bf16_or_skip()) return;
    gpt2 *m = load_tiny(GPT2_PREC_BF16);
    golden G = golden_open();
    const size_t n = (size_t)3 * 9 * gpt2_cfg(m)->vocab_size;
    float *before = malloc(n * 4);
    char err[512];
    cr_assert(gpt2_forward(m, G.tok, NULL, NULL, 3, 9, NULL, err, sizeof err) == 0, "%s", err);
    memcpy(before, gpt2_logits(m), n * 4);
    const uint64_t v = gpt2_weights_version(m);
    const gpt2_tensor *tb = gpt2_param_table(m);
    float *fcw = gpt2_params(m) + tb[GPT2_FCW].offset;
    for (size_t i = 0; i < tb[GPT2_FCW].numel; i++) fcw[i] *= 3.0f;
    cr_assert(gpt2_forward(m, G.tok, NULL, NULL, 3, 9, NULL, err, sizeof err) == 0, "%s", err);
    cr_assert(memcmp(before, gpt2_logits(m), n * 4) == 0, "the copies changed without gpt2_weights_changed");
    gpt2_weights_changed(m);
    cr_assert_gt(gpt2_weights_version(m), v);
    cr_assert(gpt2_forward(m, G.tok, NULL, NULL, 3, 9, NULL, err, sizeof err) == 0, "%s", err);
    cr_assert(memcmp(before, gpt2_logits(m), n * 4) != 0, "gpt2_weights_changed did not refresh the copies");
    free(before);
    golden_close(&G);
    gpt2_free(m);
}

/* asking for bf16 and going back to fp32 leaves exactly fp32's numbers; without bf16 the request
 * falls back to fp32 and the note says why */
Test(gpt2_bf16, fp32_is_bit_identical_and_fallback_is_reported)
{
    gpt2 *a = load_tiny(GPT2_PREC_FP32), *b;
    char err[512];
    cr_assert(hf_load_gpt2(tu_data("gpt2/tiny"), &b, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(b, 1);
    const gpt2_precision got = gpt2_set_precision(b, GPT2_PREC_BF16);
    if (!mm_bf16_available()) {
        cr_assert_eq(got, GPT2_PREC_FP32);
        cr_assert(strstr(gpt2_precision_note(b), "running fp32"), "%s", gpt2_precision_note(b));
    } else
        cr_assert_eq(got, GPT2_PREC_BF16, "%s", gpt2_precision_note(b));
    golden G = golden_open();
    cr_assert(gpt2_forward(b, G.tok, G.tgt, G.mask, 3, 9, NULL, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(gpt2_set_precision(b, GPT2_PREC_FP32), GPT2_PREC_FP32);
    float la, lb;
    cr_assert(gpt2_forward(a, G.tok, G.tgt, G.mask, 3, 9, &la, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_forward(b, G.tok, G.tgt, G.mask, 3, 9, &lb, err, sizeof err) == 0, "%s", err);
    gpt2_zero_grad(a);
    gpt2_zero_grad(b);
    cr_assert(gpt2_backward(a, NULL, NULL, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_backward(b, NULL, NULL, err, sizeof err) == 0, "%s", err);
    cr_assert(la == lb);
    cr_assert(memcmp(gpt2_logits(a), gpt2_logits(b), (size_t)3 * 9 * gpt2_cfg(a)->vocab_size * 4) == 0);
    cr_assert(memcmp(gpt2_grads(a), gpt2_grads(b), gpt2_num_params(a) * 4) == 0);
    golden_close(&G);
    gpt2_free(a);
    gpt2_free(b);
}

/* train a small random GPT-2 on a fixed structured batch; returns the loss of each step */
static void train(gpt2_precision p, int steps, float *losses)
{
    gpt2_config cfg = {2, 2, 64, 97, 32, 1e-5f};
    gpt2 *m;
    char err[512];
    cr_assert(gpt2_create(&m, &cfg, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(m, 1);
    gpt2_init_random(m, 7);
    cr_assert_eq(gpt2_set_precision(m, p), p);
    enum { B = 4, T = 32 };
    int32_t tok[B * T + 1];
    for (int i = 0; i <= B * T; i++) tok[i] = (int32_t)((i * 7 + (i / 5) * 3) % 97); /* learnable */
    adamw opt;
    cr_assert(adamw_create(&opt, gpt2_num_params(m)) == 0);
    adamw_range ranges[GPT2_NUM_TENSORS];
    gpt2_adamw_ranges(m, ranges);
    adamw_hparams h = adamw_defaults();
    h.lr = 3e-3f;
    for (int s = 0; s < steps; s++) {
        cr_assert(gpt2_forward(m, tok, tok + 1, NULL, B, T, &losses[s], err, sizeof err) == 0, "%s", err);
        gpt2_zero_grad(m);
        cr_assert(gpt2_backward(m, NULL, NULL, err, sizeof err) == 0, "%s", err);
        grad_clip(gpt2_grads(m), gpt2_num_params(m), 1.0, opt.partial);
        adamw_step(&opt, gpt2_params(m), gpt2_grads(m), ranges, GPT2_NUM_TENSORS, &h, h.lr);
        gpt2_weights_changed(m); /* the one call a training loop makes after each optimizer step */
    }
    adamw_free(&opt);
    gpt2_free(m);
}

/* 60 steps from loss 4.60 (ln 97) down to 0.023: bf16's loss stays within 0.01 + 1% of the fp32
 * run's at every step (measured on Zen 5: largest gap 0.0010, final losses equal to 4 digits) */
Test(gpt2_bf16, training_tracks_fp32_loss)
{
    if (!bf16_or_skip()) return;
    enum { N = 60 };
    float l32[N], l16[N];
    train(GPT2_PREC_FP32, N, l32);
    train(GPT2_PREC_BF16, N, l16);
    double gap = 0;
    for (int s = 0; s < N; s++) {
        gap = fmax(gap, fabs(l16[s] - l32[s]));
        cr_assert(fabs(l16[s] - l32[s]) <= 0.01 + 0.01 * l32[s], "step %d: bf16 loss %.4f, fp32 %.4f", s, l16[s], l32[s]);
    }
    cr_assert_lt(l32[N - 1], 0.5f * l32[0], "the run must learn (loss %.3f -> %.3f)", l32[0], l32[N - 1]);
    cr_log_info("training: fp32 loss %.4f -> %.4f, bf16 %.4f -> %.4f, largest gap %.4f", l32[0], l32[N - 1], l16[0],
                l16[N - 1], gap);
}

/* max |a - b| <= D * 2^-7 * max |b| for two fp32 arrays (bf16 model against the fp32 one) */
static void close_to(const char *what, const float *a, const float *b, size_t n, int D)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = b[i];
    within(what, a, d, n, D);
    free(d);
}

/* the other entry points in bf16 against the same model in fp32: tempered log-probs (PPO) with an
 * explicit dlogp, and the hidden-only forward with dhidden (scalar heads), gradients included */
Test(gpt2_bf16, temperature_and_hidden_paths_track_fp32)
{
    if (!bf16_or_skip()) return;
    gpt2 *m16 = load_tiny(GPT2_PREC_BF16), *m32 = load_tiny(GPT2_PREC_FP32);
    golden G = golden_open();
    const int B = 3, T = 9, N = B * T, C = gpt2_cfg(m32)->n_embd, D = 6 * gpt2_cfg(m32)->n_layer + 1;
    float dlogp[27], *dh = malloc((size_t)N * C * 4);
    for (int i = 0; i < N; i++) dlogp[i] = (float)((i % 5) - 2) * 0.1f;
    for (int i = 0; i < N * C; i++) dh[i] = (float)((i % 7) - 3) * 0.01f;
    char err[512];
    gpt2 *ms[2] = {m16, m32};
    for (int pass = 0; pass < 2; pass++) {
        for (int j = 0; j < 2; j++) {
            gpt2_zero_grad(ms[j]);
            if (pass == 0) {
                cr_assert(gpt2_forward_temp(ms[j], G.tok, G.tgt, NULL, B, T, 0.7f, NULL, err, sizeof err) == 0, "%s", err);
                cr_assert(gpt2_backward(ms[j], dlogp, NULL, err, sizeof err) == 0, "%s", err);
            } else {
                cr_assert(gpt2_forward_hidden(ms[j], G.tok, B, T, err, sizeof err) == 0, "%s", err);
                cr_assert(gpt2_backward(ms[j], NULL, dh, err, sizeof err) == 0, "%s", err);
            }
        }
        if (pass == 0) close_to("tempered logits", gpt2_logits(m16), gpt2_logits(m32), (size_t)N * gpt2_cfg(m32)->vocab_size, D);
        close_to("hidden", gpt2_hidden(m16), gpt2_hidden(m32), (size_t)N * C, D - 1);
        const gpt2_tensor *tb = gpt2_param_table(m32);
        for (int k = 0; k < GPT2_NUM_TENSORS; k++) /* whole tensors (all layers at once) */
            close_to(tb[k].name, gpt2_grads(m16) + tb[k].offset, gpt2_grads(m32) + tb[k].offset, tb[k].numel, 2 * D);
    }
    free(dh);
    golden_close(&G);
    gpt2_free(m16);
    gpt2_free(m32);
}

/* gradient accumulation: two backwards after one gpt2_zero_grad add up (the first writes the weight
 * gradients, the second adds to them), as the sum of the two taken apart */
Test(gpt2_bf16, gradients_accumulate_over_micro_batches)
{
    if (!bf16_or_skip()) return;
    gpt2 *m = load_tiny(GPT2_PREC_BF16);
    golden G = golden_open();
    const size_t n = gpt2_num_params(m);
    float *g1 = malloc(n * 4), *g2 = malloc(n * 4);
    char err[512];
    const int32_t *tok2 = G.tok + 9; /* a second batch: rows 1-2 of the golden tokens as 2 x 9 */
    for (int pass = 0; pass < 3; pass++) {
        gpt2_zero_grad(m);
        if (pass != 1) {
            cr_assert(gpt2_forward(m, G.tok, G.tgt, G.mask, 3, 9, NULL, err, sizeof err) == 0, "%s", err);
            cr_assert(gpt2_backward(m, NULL, NULL, err, sizeof err) == 0, "%s", err);
        }
        if (pass == 0) memcpy(g1, gpt2_grads(m), n * 4);
        if (pass != 0) {
            cr_assert(gpt2_forward(m, tok2, G.tgt + 9, NULL, 2, 9, NULL, err, sizeof err) == 0, "%s", err);
            cr_assert(gpt2_backward(m, NULL, NULL, err, sizeof err) == 0, "%s", err);
        }
        if (pass == 1) memcpy(g2, gpt2_grads(m), n * 4);
    }
    const float *g12 = gpt2_grads(m);
    double mx = 0, worst = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)g1[i] + g2[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g12[i] - ((double)g1[i] + g2[i])));
    cr_assert(worst <= 1e-6 * mx, "accumulated gradients differ from the sum by %.3g (max %.3g)", worst, mx);
    free(g1), free(g2);
    golden_close(&G);
    gpt2_free(m);
}
