/* test_rm.c — the reward model (rlhf/rm.h) and `rlhf rm` / `rlhf score`: the Bradley–Terry loss
 * with margins and centering against hand-computed values and finite differences; transformers'
 * score position; the gradient of a score through head and trunk against finite differences; the
 * folder transformers reads as GPT2ForSequenceClassification; normalisation to mean 0, std 1 on the
 * reference's samples; a separable toy task learnt to full held-out accuracy; margins read per record
 * and bad ones refused. Also the forward variants added to gpt2 for heads and PPO (hidden states
 * only; logits at a temperature). Resume, kill -9, NaN and bad data: the trainer_contract suite. */
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "rm.h"
#include "rng.h"
#include "safetensors.h"
#include "testutil.h"
#include "tok.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <sys/wait.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the loss ---------------------------------------------------------------------------------- */

Test(rm_loss, bradley_terry_by_hand)
{
    /* r_c - r_r = 1 and -1: -log σ(1) = log(1 + e^-1), -log σ(-1) = log(1 + e) */
    const float rc[2] = {2, 0}, rr[2] = {1, 1};
    rm_stats st;
    double l = rm_bt_loss(rc, rr, NULL, 2, 0, NULL, NULL, &st);
    CLOSE(l, (log(1 + exp(-1.0)) + log(1 + exp(1.0))) / 2, 1e-12);
    CLOSE(st.accuracy, 0.5, 0);
    CLOSE(st.margin, 0, 1e-12);
    CLOSE(st.chosen, 1, 0);
    CLOSE(st.rejected, 1, 0);
    /* a margin m shifts the difference: -log σ(1 - 0.5) for the first pair, -log σ(-1 - 2) */
    const float m[2] = {0.5f, 2};
    CLOSE(rm_bt_loss(rc, rr, m, 2, 0, NULL, NULL, &st), (log(1 + exp(-0.5)) + log(1 + exp(3.0))) / 2, 1e-7);
    CLOSE(st.margin, 0, 1e-12); /* the logged margin is the rewards' own */
    /* centering adds c * mean((r_c + r_r)^2) = 0.1 * (9 + 1) / 2 */
    CLOSE(rm_bt_loss(rc, rr, NULL, 2, 0.1, NULL, NULL, NULL), (log(1 + exp(-1.0)) + log(1 + exp(1.0))) / 2 + 0.5, 1e-12);
    /* large differences do not overflow */
    const float big_c[1] = {500}, big_r[1] = {-500};
    CLOSE(rm_bt_loss(big_c, big_r, NULL, 1, 0, NULL, NULL, NULL), 0, 1e-12);
    CLOSE(rm_bt_loss(big_r, big_c, NULL, 1, 0, NULL, NULL, NULL), 1000, 1e-9);
}

Test(rm_loss, gradients_match_finite_differences)
{
    float rc[3] = {0.3f, -1.2f, 2.0f}, rr[3] = {0.1f, 0.4f, 2.5f};
    const float m[3] = {0.2f, 0, 1};
    const double centers[2] = {0, 0.05};
    for (int withm = 0; withm < 2; withm++)
        for (int k = 0; k < 2; k++) {
            float dc[3], dr[3];
            rm_bt_loss(rc, rr, withm ? m : NULL, 3, centers[k], dc, dr, NULL);
            for (int side = 0; side < 2; side++)
                for (int i = 0; i < 3; i++) {
                    float *x = side ? rr : rc, keep = x[i];
                    const float e = 1e-2f;
                    x[i] = keep + e;
                    double a = rm_bt_loss(rc, rr, withm ? m : NULL, 3, centers[k], NULL, NULL, NULL);
                    x[i] = keep - e;
                    double b = rm_bt_loss(rc, rr, withm ? m : NULL, 3, centers[k], NULL, NULL, NULL);
                    x[i] = keep;
                    double fd = (a - b) / (2.0 * e), an = side ? dr[i] : dc[i];
                    cr_assert(fabs(fd - an) < 1e-4, "margin %d center %g: d/d%s[%d] %g vs fd %g", withm, centers[k],
                              side ? "r_r" : "r_c", i, an, fd);
                }
        }
}

/* ---- score position ---------------------------------------------------------------------------- */

Test(rm_model, score_position_is_transformers_rule)
{
    /* pad = 9 (EOS). Row 0: ends with EOS then padding -> the token before EOS. Row 1: a completion cut
     * before its EOS -> its last token. Row 2: only pad tokens -> 0 (argmax of zeros). Row 3: no pad id
     * (-1 below) -> the last real token, EOS included. */
    const int32_t tok[4 * 5] = {1, 2, 3, 9, 9, 1, 2, 3, 4, 5, 9, 9, 9, 9, 9, 4, 9, 9, 9, 9};
    const int len[4] = {4, 5, 2, 2};
    int pos[4];
    rm_positions(tok, len, 4, 5, 9, pos);
    cr_assert(pos[0] == 2 && pos[1] == 4 && pos[2] == 0 && pos[3] == 0, "%d %d %d %d", pos[0], pos[1], pos[2], pos[3]);
    rm_positions(tok, len, 4, 5, -1, pos);
    cr_assert(pos[0] == 3 && pos[1] == 4 && pos[2] == 1 && pos[3] == 1, "%d %d %d %d", pos[0], pos[1], pos[2], pos[3]);
}

static rm_model *tiny_rm(uint64_t seed, int vocab, int pad)
{
    gpt2_config c = {.n_layer = 2, .n_head = 2, .n_embd = 16, .vocab_size = vocab, .n_positions = 16, .ln_eps = 1e-5f};
    char err[512];
    gpt2 *m;
    head *h;
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, seed);
    float *p = gpt2_params(m);
    for (size_t i = 0; i < gpt2_num_params(m); i++) p[i] *= 3.0f; /* non-uniform attention, bigger gradients */
    gpt2_set_threads(m, 1);
    cr_assert(head_create(&h, 16, err, sizeof err) == 0, "%s", err);
    head_init(h, 0.5, seed + 1);
    head_params(h)[16] = 0.25f;
    rm_model *r;
    cr_assert(rm_create(&r, m, h, pad, err, sizeof err) == 0, "%s", err);
    return r;
}

/* objective sum_b g[b] * score[b] */
static double score_obj(rm_model *r, const int32_t *tok, const int *len, int B, int T, const float *g)
{
    float s[8];
    char err[512];
    cr_assert(rm_forward(r, tok, len, B, T, s, err, sizeof err) == 0, "%s", err);
    double o = 0;
    for (int b = 0; b < B; b++) o += (double)g[b] * s[b];
    return o;
}

Test(rm_model, score_gradient_through_head_and_trunk_matches_finite_differences)
{
    rm_model *r = tiny_rm(3, 23, 22);
    enum { B = 3, T = 6 };
    const int32_t tok[B * T] = {1, 5, 7, 22, 22, 22, 3, 3, 8, 9, 10, 11, 4, 22, 22, 22, 22, 22};
    const int len[B] = {4, 6, 5};
    const float g[B] = {0.7f, -1.1f, 0.9f}; /* not summing to 0: ln_f.bias gets sum(g) w */
    char err[512];
    score_obj(r, tok, len, B, T, g);
    gpt2_zero_grad(r->m);
    head_zero_grad(r->h);
    cr_assert(rm_backward(r, g, err, sizeof err) == 0, "%s", err);
    /* every trunk tensor and the head, each along a random direction */
    uint64_t s = 99;
    const gpt2_tensor *tb = gpt2_param_table(r->m);
    for (int k = 0; k <= GPT2_NUM_TENSORS; k++) {
        float *p = k < GPT2_NUM_TENSORS ? gpt2_params(r->m) + tb[k].offset : head_params(r->h);
        const float *gr = k < GPT2_NUM_TENSORS ? gpt2_grads(r->m) + tb[k].offset : head_grads(r->h);
        size_t n = k < GPT2_NUM_TENSORS ? tb[k].numel : head_num_params(r->h);
        float *d = malloc(n * sizeof *d), *save = malloc(n * sizeof *save);
        double gd = 0;
        for (size_t i = 0; i < n; i++) {
            d[i] = (float)rng_uniform(&s, -1, 1);
            gd += (double)gr[i] * d[i];
        }
        memcpy(save, p, n * sizeof *save);
        /* central differences at eps and 2 eps, Richardson-combined: the eps^2 error term cancels
         * (the ×3 weights make the trunk curved enough for it to matter), float noise stays small */
        double D[2];
        for (int h = 0; h < 2; h++) {
            const double eps = h ? 2e-3 : 1e-3;
            for (size_t i = 0; i < n; i++) p[i] = save[i] + (float)eps * d[i];
            double a = score_obj(r, tok, len, B, T, g);
            for (size_t i = 0; i < n; i++) p[i] = save[i] - (float)eps * d[i];
            double b = score_obj(r, tok, len, B, T, g);
            D[h] = (a - b) / (2 * eps);
        }
        memcpy(p, save, n * sizeof *save);
        double fd = (4 * D[0] - D[1]) / 3;
        const char *name = k < GPT2_NUM_TENSORS ? tb[k].name : "head";
        cr_assert(fabs(fd - gd) <= 3e-3 * fmax(1.0, fabs(fd)), "%s: finite difference %.6g, backward %.6g", name, fd, gd);
        /* the LM head is not used: wte gets gradient only through the embedding; wpe past the rows'
         * lengths gets none, but the rest does */
        cr_assert(fabs(gd) > 1e-5, "%s: gradient ~0 (%.3g): the check is vacuous", name, gd);
        free(d);
        free(save);
    }
    rm_free(r);
}

/* A folder laid out as transformers' GPT2ForSequenceClassification saves it, scored against float64
 * PyTorch with transformers' pooling rule (tools/golden/gen_rm_golden.py) */
Test(rm_model, scores_match_pytorch_and_transformers_pooling)
{
    rm_model *r;
    char err[512];
    cr_assert(rm_load(tu_data("rm/tiny"), &r, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(r->m, 1);
    head_set_threads(r->h, 1);
    cr_assert(r->pad_id == 60 && head_params(r->h)[32] == 0.375f);
    st_file *f;
    cr_assert(st_open(tu_data("rm/golden.safetensors"), &f, err, sizeof err) == 0, "%s", err);
    const st_tensor *tt = st_find(f, "tokens"), *tl = st_find(f, "lengths"), *tp = st_find(f, "positions"),
                    *ts = st_find(f, "scores");
    cr_assert(tt && tl && tp && ts && tt->ndim == 2);
    const int B = (int)tt->shape[0], T = (int)tt->shape[1];
    int32_t tok[64];
    int len[8], pos[8], want_pos[8];
    double want[8];
    cr_assert(B <= 8 && B * T <= 64);
    cr_assert(st_read_raw(f, tt, tok, (size_t)B * T * 4, err, sizeof err) == 0);
    cr_assert(st_read_raw(f, tl, len, (size_t)B * 4, err, sizeof err) == 0);
    cr_assert(st_read_raw(f, tp, want_pos, (size_t)B * 4, err, sizeof err) == 0);
    cr_assert(st_read_raw(f, ts, want, (size_t)B * 8, err, sizeof err) == 0);
    st_close(f);
    rm_positions(tok, len, B, T, r->pad_id, pos);
    for (int b = 0; b < B; b++) cr_assert(pos[b] == want_pos[b], "row %d: position %d, transformers %d", b, pos[b], want_pos[b]);
    float s[8];
    cr_assert(rm_forward(r, tok, len, B, T, s, err, sizeof err) == 0, "%s", err);
    for (int b = 0; b < B; b++)
        cr_assert(fabs(s[b] - want[b]) < 1e-5 * (1 + fabs(want[b])), "row %d: %.8g, PyTorch %.8g", b, s[b], want[b]);
    rm_free(r);
}

/* ---- gpt2's forward variants ------------------------------------------------------------------- */

Test(gpt2_forward_variants, hidden_only_and_temperature)
{
    rm_model *r = tiny_rm(5, 23, -1);
    gpt2 *m = r->m;
    enum { B = 2, T = 5, C = 16 };
    const int32_t tok[B * T] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, tgt[B * T] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    char err[512];
    float loss, h1[B * T * C];
    cr_assert(gpt2_forward(m, tok, tgt, NULL, B, T, &loss, err, sizeof err) == 0, "%s", err);
    memcpy(h1, gpt2_hidden(m), sizeof h1);
    float lp1[B * T];
    memcpy(lp1, gpt2_logp(m), sizeof lp1);
    /* hidden states only: the same hidden states, no logits */
    cr_assert(gpt2_forward_hidden(m, tok, B, T, err, sizeof err) == 0, "%s", err);
    cr_assert(memcmp(h1, gpt2_hidden(m), sizeof h1) == 0);
    cr_assert(gpt2_logits(m) == NULL);
    /* temperature 1 is the plain forward, bit for bit */
    float loss1;
    cr_assert(gpt2_forward_temp(m, tok, tgt, NULL, B, T, 1.0f, &loss1, err, sizeof err) == 0, "%s", err);
    cr_assert(loss1 == loss && memcmp(lp1, gpt2_logp(m), sizeof lp1) == 0);
    /* temperature 2: log-probs of softmax(logits / 2), from the plain logits */
    float lg[B * T * 23];
    cr_assert(gpt2_forward(m, tok, tgt, NULL, B, T, &loss, err, sizeof err) == 0);
    memcpy(lg, gpt2_logits(m), sizeof lg);
    cr_assert(gpt2_forward_temp(m, tok, tgt, NULL, B, T, 2.0f, &loss, err, sizeof err) == 0);
    for (int i = 0; i < B * T; i++) {
        double mx = -1e30, z = 0;
        for (int v = 0; v < 23; v++) mx = fmax(mx, lg[i * 23 + v] / 2.0);
        for (int v = 0; v < 23; v++) z += exp(lg[i * 23 + v] / 2.0 - mx);
        double want = lg[i * 23 + tgt[i]] / 2.0 - mx - log(z);
        cr_assert(fabs(gpt2_logp(m)[i] - want) < 1e-5, "row %d: %g vs %g", i, gpt2_logp(m)[i], want);
    }
    cr_assert(gpt2_forward_temp(m, tok, tgt, NULL, B, T, 0.0f, &loss, err, sizeof err) == -1);
    cr_assert(strstr(err, "temperature 0 must be a positive number"), "%s", err);
    /* the backward goes through the division: a directional finite difference on wte at T = 0.7 */
    const float w[B * T] = {0.3f, -0.2f, 0.5f, 0.1f, -0.4f, 0.2f, 0.6f, -0.3f, 0.25f, 0.15f};
    cr_assert(gpt2_forward_temp(m, tok, tgt, NULL, B, T, 0.7f, &loss, err, sizeof err) == 0);
    gpt2_zero_grad(m);
    cr_assert(gpt2_backward(m, w, NULL, err, sizeof err) == 0, "%s", err);
    const gpt2_tensor *tb = gpt2_param_table(m);
    for (int k = 0; k < GPT2_NUM_TENSORS; k += 7) { /* wte, attention projection, final LayerNorm */
        float *p = gpt2_params(m) + tb[k].offset;
        const float *g = gpt2_grads(m) + tb[k].offset;
        size_t n = tb[k].numel;
        uint64_t s = 7 + (uint64_t)k;
        float *d = malloc(n * sizeof *d), *save = malloc(n * sizeof *save);
        double gd = 0;
        for (size_t i = 0; i < n; i++) gd += (double)g[i] * (d[i] = (float)rng_uniform(&s, -1, 1));
        memcpy(save, p, n * sizeof *save);
        double o[2];
        for (int sign = 0; sign < 2; sign++) {
            for (size_t i = 0; i < n; i++) p[i] = save[i] + (sign ? -1e-3f : 1e-3f) * d[i];
            cr_assert(gpt2_forward_temp(m, tok, tgt, NULL, B, T, 0.7f, &loss, err, sizeof err) == 0);
            o[sign] = 0;
            for (int i = 0; i < B * T; i++) o[sign] += (double)w[i] * gpt2_logp(m)[i];
        }
        memcpy(p, save, n * sizeof *save);
        double fd = (o[0] - o[1]) / 2e-3;
        cr_assert(fabs(fd - gd) <= 3e-3 * fmax(1.0, fabs(fd)), "%s at T 0.7: fd %.6g, backward %.6g", tb[k].name, fd, gd);
        free(d);
        free(save);
    }
    rm_free(r);
}

/* ---- the folder -------------------------------------------------------------------------------- */

Test(rm_model, folder_is_a_transformers_sequence_classifier)
{
    rm_model *r = tiny_rm(7, 23, 22), *q;
    char err[512], p[4200];
    const char *dir = tu_tmpdir("rm-folder");
    char out[4200];
    snprintf(out, sizeof out, "%s/rm", dir);
    const ckpt_file extra[] = {{"note.txt", "hi\n", 3}};
    cr_assert(rm_save(r, out, extra, 1, err, sizeof err) == 0, "%s", err);
    /* config.json: what GPT2ForSequenceClassification(num_labels=1).save_pretrained writes */
    json_error_t je;
    json_t *cfg = json_load_file(fio_join(p, sizeof p, out, "config.json"), 0, &je);
    cr_assert(cfg, "%s", je.text);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0)),
                     "GPT2ForSequenceClassification");
    cr_assert(json_integer_value(json_object_get(cfg, "num_labels")) == 1);
    cr_assert(json_integer_value(json_object_get(cfg, "pad_token_id")) == 22);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(cfg, "id2label"), "0")), "LABEL_0");
    json_decref(cfg);
    /* model.safetensors: the trunk's names plus score.weight [1, C], no bias */
    st_file *f;
    cr_assert(st_open(fio_join(p, sizeof p, out, "model.safetensors"), &f, err, sizeof err) == 0, "%s", err);
    const st_tensor *sw = st_find(f, "score.weight");
    cr_assert(sw && sw->ndim == 2 && sw->shape[0] == 1 && sw->shape[1] == 16);
    cr_assert(st_find(f, "transformer.wte.weight") && !st_find(f, "score.bias"));
    st_close(f);
    cr_assert(fio_exists(fio_join(p, sizeof p, out, "note.txt")));
    /* a plain GPT-2 loader refuses it by name; the reward-model loader reads it back exactly */
    gpt2 *g;
    cr_assert(hf_load_gpt2(out, &g, err, sizeof err) == -1 && strstr(err, "score.weight"), "%s", err);
    cr_assert(rm_load(out, &q, err, sizeof err) == 0, "%s", err);
    cr_assert(q->pad_id == 22);
    cr_assert(memcmp(head_params(q->h), head_params(r->h), 17 * sizeof(float)) == 0); /* bias from reward.json */
    cr_assert(memcmp(gpt2_params(q->m), gpt2_params(r->m), gpt2_num_params(r->m) * sizeof(float)) == 0);
    rm_free(q);
    /* saving again replaces the folder whole (no leftovers from the first one) */
    cr_assert(rm_save(r, out, NULL, 0, err, sizeof err) == 0, "%s", err);
    cr_assert(!fio_exists(fio_join(p, sizeof p, out, "note.txt")));
    /* a folder without score.weight is not a reward model */
    cr_assert(hf_save_gpt2(r->m, out, err, sizeof err) == 0);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
    cr_assert(system(cmd) == 0);
    cr_assert(hf_save_gpt2(r->m, out, err, sizeof err) == 0);
    cr_assert(rm_load(out, &q, err, sizeof err) == -1);
    cr_assert(strstr(err, "\"score.weight\" is missing"), "%s", err);
    rm_free(r);
}

/* ---- training on a toy task -------------------------------------------------------------------- */

static tu_fixture fx;
static char prompts_path[4200];

static const char *const good[] = {" good", " great", " nice", " fine"};
static const char *const bad[] = {" bad", " awful", " poor", " sad"};
static const char *const filler[] = {" the", " film", " was", " very", " today", " and", " plot", " cast"};

/* pairs whose chosen and rejected differ in one word: a positive word or a negative one */
static size_t make_pairs(char *buf, size_t cap, int n, uint64_t seed, int with_margin)
{
    uint64_t s = seed;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        char a[256] = "", b[256] = "";
        int at = (int)rng_below(&s, 4), len = 4 + (int)rng_below(&s, 3);
        for (int w = 0; w < len; w++) {
            const char *f = filler[rng_below(&s, 8)];
            if (w == at) {
                strcat(a, good[rng_below(&s, 4)]);
                strcat(b, bad[rng_below(&s, 4)]);
            } else {
                strcat(a, f);
                strcat(b, f);
            }
        }
        o += (size_t)snprintf(buf + o, cap - o, "{\"prompt\": \"review:\", \"chosen\": \"%s\", \"rejected\": \"%s\"", a, b);
        if (with_margin) o += (size_t)snprintf(buf + o, cap - o, ", \"margin\": %d", i % 2);
        o += (size_t)snprintf(buf + o, cap - o, "}\n");
    }
    return o;
}

static void fixtures(void)
{
    static char tb[65536], eb[65536];
    const size_t nt = make_pairs(tb, sizeof tb, 64, 1, 0), ne = make_pairs(eb, sizeof eb, 24, 2, 0);
    tu_fixture_make(&fx, "rm-fix", tb, nt, eb, ne); /* a BPE trained on the pairs' words */
    fio_join(prompts_path, sizeof prompts_path, fx.dir, "prompts.jsonl");
    const char pr[] = "{\"prompt\": \"review:\"}\n{\"prompt\": \"review: the film\"}\n";
    tu_write(prompts_path, pr, sizeof pr - 1);
}

static rm_opts opts(const char *out)
{
    rm_opts o = rm_defaults();
    o.model = fx.model;
    o.tokenizer = fx.tok;
    o.data = fx.train;
    o.eval_data = fx.eval;
    o.run.out = out;
    o.run.batch = 8;
    o.run.accum = 1;
    o.run.steps = 40;
    o.optim.warmup = 2;
    o.optim.lr = 3e-3f;
    o.run.eval_every = 20;
    o.run.ckpt_every = 10;
    o.run.threads = 1;
    o.run.precision = TRAINER_PREC_FP32; /* the algorithm in fp32 (bf16: test_gpt2_bf16) */
    return o;
}

Test(rm_train, learns_a_separable_task, .init = fixtures, .timeout = 120)
{
    char out[4300], err[1024], p[4400];
    snprintf(out, sizeof out, "%s/run", tu_tmpdir("rm-learn"));
    rm_opts o = opts(out);
    o.normalize_prompts = prompts_path;
    o.normalize_samples = 32;
    o.normalize_max_new_tokens = 6;
    rm_result r;
    cr_assert(rm_run(&o, &r, err, sizeof err) == 0, "%s", err);
    cr_assert(r.n_train == 64 && r.n_eval == 24 && r.steps == 40 && !r.margins);
    /* held-out pairs ranked right; the starting accuracy is what chance gives */
    cr_assert(r.eval.accuracy == 1.0, "eval accuracy %g (loss %g)", r.eval.accuracy, r.eval.loss);
    cr_assert(r.eval.loss < 0.2, "eval loss %g", r.eval.loss);
    cr_assert(r.eval.margin > 1, "eval margin %g", r.eval.margin);
    /* metrics.jsonl: one line per step with TRL's names; eval at 20 and 40 */
    char *mt = tu_read(out, "metrics.jsonl", NULL);
    cr_assert(tu_lines(mt) == 40);
    json_t *first = json_loads(mt, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert(first);
    const char *names[] = {"loss", "accuracy", "margin", "rewards/chosen", "rewards/rejected", "learning_rate", "grad_norm"};
    for (int i = 0; i < 7; i++) cr_assert(json_is_number(json_object_get(first, names[i])), "%s missing", names[i]);
    cr_assert(!json_object_get(first, "eval_loss"));
    json_decref(first);
    cr_assert(strstr(mt, "\"eval_accuracy\"") && strstr(mt, "\"eval_rewards/chosen\""));
    free(mt);
    /* normalised against the starting model's samples, and the folder scores like the run did */
    cr_assert(r.normalized && r.norm.n == 32 && r.norm.std > 0);
    rm_model *q;
    cr_assert(rm_load(fio_join(p, sizeof p, out, "model"), &q, err, sizeof err) == 0, "%s", err);
    cr_assert(q->normalized);
    CLOSE(q->ref_std, r.norm.std, 1e-9 * r.norm.std);
    /* normalising the normalised model on the same samples (same seed) finds mean 0, std 1 */
    gpt2 *ref;
    cr_assert(hf_load_gpt2(fx.model, &ref, err, sizeof err) == 0, "%s", err);
    tok_tokenizer *t;
    cr_assert(tok_load(fx.tok, &t, err, sizeof err) == 0, "%s", err);
    ds_dataset pd = {0};
    ds_load_opts lo = ds_load_defaults();
    cr_assert(ds_load(&pd, t, prompts_path, &lo, err, sizeof err) == 0, "%s", err);
    const int32_t *pp[2] = {pd.tok + pd.ex[0].prompt, pd.tok + pd.ex[1].prompt};
    const int pl[2] = {pd.ex[0].np, pd.ex[1].np};
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.max_new_tokens = 6;
    so.stop_token = tok_eot_id(t);
    so.seed = rng_stream(o.run.seed, 0x6e6f726dull); /* the seed rm_run used */
    rm_norm_stats ns;
    cr_assert(rm_normalize(q, ref, pp, pl, 2, 32, 16, &so, &ns, err, sizeof err) == 0, "%s", err);
    CLOSE(ns.mean, 0, 1e-4);
    CLOSE(ns.std, 1, 1e-4);
    ds_free(&pd);
    tok_free(t);
    gpt2_free(ref);
    rm_free(q);
}

/* `rlhf score` prints one JSON line per record; preferences get both scores */
Test(rm_train, score_command, .init = fixtures, .timeout = 120)
{
    char out[4300], err[1024], args[24000];
    snprintf(out, sizeof out, "%s/run", tu_tmpdir("rm-score"));
    rm_opts o = opts(out);
    o.run.steps = 2;
    o.eval_data = NULL;
    cr_assert(rm_run(&o, NULL, err, sizeof err) == 0, "%s", err);
    char *so, *se;
    snprintf(args, sizeof args, "score --rm '%s/model' --data '%s' --threads 1", out, fx.eval);
    cr_assert(tu_run(args, NULL, &so, &se) == 0, "%s", se);
    cr_assert(tu_lines(so) == 24, "%s", so);
    json_t *j = json_loads(so, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert(j && json_is_string(json_object_get(j, "chosen")) && json_is_real(json_object_get(j, "chosen_score")) &&
              json_is_real(json_object_get(j, "rejected_score")));
    /* the same score the library gives */
    rm_model *q;
    char p[4400];
    cr_assert(rm_load(fio_join(p, sizeof p, out, "model"), &q, err, sizeof err) == 0, "%s", err);
    tok_tokenizer *t;
    cr_assert(tok_load(fx.tok, &t, err, sizeof err) == 0);
    ds_dataset d = {0};
    ds_load_opts lo = ds_load_defaults();
    cr_assert(ds_load(&d, t, fx.eval, &lo, err, sizeof err) == 0);
    float s[48];
    cr_assert(rm_score_dataset(q, &d, 5, s, err, sizeof err) == 0, "%s", err);
    CLOSE(json_real_value(json_object_get(j, "chosen_score")), s[0], 1e-5);
    CLOSE(json_real_value(json_object_get(j, "rejected_score")), s[1], 1e-5);
    json_decref(j);
    free(so);
    free(se);
    ds_free(&d);
    tok_free(t);
    rm_free(q);
}

/* the reward model's own data checks: margins (all or none, numbers), the held-out file, the
 * normalisation prompts; one line on standard error, exit 1, no checkpoint and no model (the wrong
 * kind, malformed and empty data, NaN and resume: trainer_contract) */
Test(rm_train, refuses_bad_margins_eval_data_and_prompts, .init = fixtures, .timeout = 60)
{
    const char *d = tu_tmpdir("rm-bad");
    char path[4300], out[4300], args[24000], p[4400];
    snprintf(out, sizeof out, "%s/run", d);
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": 1}\n", ":2:"},
        {"{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"margin\": 1}\n"
         "{\"prompt\": \"a\", \"chosen\": \"x\", \"rejected\": \"y\"}\n",
         ":2:1: field \"margin\" is missing"},
        {"{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\", \"margin\": \"big\"}\n",
         ":1:1: field \"margin\" must be a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(path, sizeof path, "%s/bad%zu.jsonl", d, i);
        tu_write(path, cases[i].text, strlen(cases[i].text));
        snprintf(args, sizeof args, "rm --model '%s' --tokenizer '%s' --data '%s' --out '%s' --steps 2 --threads 1",
                 fx.model, fx.tok, path, out);
        char *so, *se;
        cr_assert(tu_run(args, NULL, &so, &se) == 1, "case %zu: %s", i, se);
        cr_assert(tu_lines(se) == 1 && strstr(se, cases[i].want), "case %zu: %s", i, se);
        cr_assert(!fio_exists(fio_join(p, sizeof p, out, "latest")) && !fio_exists(fio_join(p, sizeof p, out, "model")),
                  "case %zu left files", i);
        free(so);
        free(se);
    }
    /* the held-out file of the wrong kind, and training data given as normalisation prompts */
    snprintf(args, sizeof args,
             "rm --model '%s' --tokenizer '%s' --data '%s' --eval-data '%s' --out '%s' --steps 2 --threads 1", fx.model,
             fx.tok, fx.train, tu_data("datasets/pc.jsonl"), out);
    char *so, *se;
    cr_assert(tu_run(args, NULL, &so, &se) == 1 && tu_lines(se) == 1 && strstr(se, "pc.jsonl:1:1"), "%s", se);
    free(so);
    free(se);
    snprintf(args, sizeof args,
             "rm --model '%s' --tokenizer '%s' --data '%s' --normalize-prompts '%s' --normalize-max-new-tokens 4 --out '%s' --steps 2 --threads 1",
             fx.model, fx.tok, fx.train, fx.train, out);
    cr_assert(tu_run(args, NULL, &so, &se) == 1 && tu_lines(se) == 1 && strstr(se, "prompt-only"), "%s", se);
    free(so);
    free(se);
    cr_assert(!fio_exists(fio_join(p, sizeof p, out, "latest")));
}

/* margins are read per record (blank lines skipped as the dataset skips them), in the one pass that
 * reads the data (so a pipe works), and used by training */
Test(rm_train, margins_follow_the_records, .init = fixtures, .timeout = 60)
{
    const char *d = tu_tmpdir("rm-margin");
    char path[4300], out[4300], err[1024];
    snprintf(path, sizeof path, "%s/m.jsonl", d);
    snprintf(out, sizeof out, "%s/run", d);
    const char text[] = "{\"prompt\": \"review:\", \"chosen\": \" good\", \"rejected\": \" bad\", \"margin\": 1.5}\n\n"
                        "{\"prompt\": \"review:\", \"chosen\": \" nice\", \"rejected\": \" sad\", \"margin\": -2}\n";
    tu_write(path, text, sizeof text - 1);
    tok_tokenizer *t;
    cr_assert(tok_load(fx.tok, &t, err, sizeof err) == 0, "%s", err);
    ds_dataset ds = {0};
    ds_load_opts lo = ds_load_defaults();
    cr_assert(ds_load(&ds, t, path, &lo, err, sizeof err) == 0, "%s", err);
    cr_assert(ds.has_margins && ds.ex[0].margin == 1.5f && ds.ex[1].margin == -2.0f);
    ds_free(&ds);
    /* a file without margins gives none */
    cr_assert(ds_load(&ds, t, fx.eval, &lo, err, sizeof err) == 0, "%s", err);
    cr_assert(!ds.has_margins && ds.ex[0].margin == 0);
    ds_free(&ds);
    tok_free(t);
    rm_opts o = opts(out);
    o.data = path;
    o.eval_data = NULL;
    o.run.steps = 2;
    o.run.batch = 2;
    rm_result r;
    cr_assert(rm_run(&o, &r, err, sizeof err) == 0, "%s", err);
    cr_assert(r.margins == 1);
    /* the same data through a pipe */
    char cmd[32768], out2[4300], log[4300];
    snprintf(out2, sizeof out2, "%s/run-pipe", d);
    snprintf(log, sizeof log, "%s/pipe.log", d);
    snprintf(cmd, sizeof cmd,
             "cat '%s' | '%s' rm --model '%s' --tokenizer '%s' --data - --out '%s' --steps 2 --batch 2 --threads 1 > '%s' 2>&1",
             path, RLHF_BIN, fx.model, fx.tok, out2, log);
    const int st = system(cmd);
    char *msg = tu_read(log, NULL, NULL);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(msg, "with margins"), "%s", msg);
    free(msg);
}
