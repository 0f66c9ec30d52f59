/* test_kv.c — KV-cache inference equals full recomputation (prefill through BLIS and through the
 * one-region decode path, decode, ragged batches, one and two threads), bf16 decode weights stay
 * close to fp32 and sample deterministically, their copy is cached per weights version, and
 * sampling is reproducible: the same seed gives the same tokens, a sequence's tokens do not depend
 * on the rest of the batch, greedy decoding follows the argmax of the full forward, the stop token
 * ends a sequence, and top-k 1 is greedy. */
#include "gpt2.h"
#include "kv.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gpt2 *model(void)
{
    gpt2_config c = {.n_layer = 3, .n_head = 4, .n_embd = 32, .vocab_size = 50, .n_positions = 40, .ln_eps = 1e-5f};
    gpt2 *m;
    char err[GPT2_ERR_LEN];
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, 99);
    float *p = gpt2_params(m);
    for (size_t i = 0; i < gpt2_num_params(m); i++) p[i] *= 5; /* peaky distributions */
    return m;
}

/* full forward logits of seq[0..n) at every position */
static float *full_logits(gpt2 *m, const int32_t *seq, int n)
{
    char err[GPT2_ERR_LEN];
    float loss;
    cr_assert(gpt2_forward(m, seq, NULL, NULL, 1, n, &loss, err, sizeof err) == 0, "%s", err);
    int V = gpt2_cfg(m)->vocab_size;
    float *l = malloc((size_t)n * V * sizeof *l);
    memcpy(l, gpt2_logits(m), (size_t)n * V * sizeof *l);
    return l;
}

Test(kv, equals_full_recomputation_ragged_batch)
{
    gpt2 *m = model();
    const int V = 50, B = 3;
    int32_t seqs[3][20];
    int lens[3] = {20, 7, 13};
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 20; i++) seqs[b][i] = (int32_t)((b * 31 + i * 17 + i * i) % V);
    gpt2_kv *kv;
    char err[GPT2_ERR_LEN];
    cr_assert(gpt2_kv_create(&kv, m, B, 20, err, sizeof err) == 0, "%s", err);
    /* prefill: the first 5 tokens of each sequence, interleaved rows, logits of every row */
    int seq[15];
    int32_t tok[15];
    float *lg = malloc((size_t)15 * V * sizeof *lg);
    for (int i = 0, r = 0; i < 5; i++)
        for (int b = 0; b < B; b++, r++) {
            seq[r] = b;
            tok[r] = seqs[b][i];
        }
    cr_assert(gpt2_kv_forward(m, kv, 15, seq, tok, NULL, lg, err, sizeof err) == 0, "%s", err);
    float *ref[3];
    for (int b = 0; b < B; b++) ref[b] = full_logits(m, seqs[b], lens[b]);
    double worst = 0;
    for (int i = 0, r = 0; i < 5; i++)
        for (int b = 0; b < B; b++, r++)
            for (int v = 0; v < V; v++) {
                double d = fabs(lg[(size_t)r * V + v] - ref[b][(size_t)i * V + v]);
                worst = d > worst ? d : worst;
            }
    /* decode the rest one token at a time, sequences dropping out as they end */
    for (int i = 5; i < 20; i++) {
        int q = 0;
        for (int b = 0; b < B; b++)
            if (i < lens[b]) {
                seq[q] = b;
                tok[q] = seqs[b][i];
                q++;
            }
        cr_assert(gpt2_kv_forward(m, kv, q, seq, tok, NULL, lg, err, sizeof err) == 0, "%s", err);
        for (int r = 0; r < q; r++)
            for (int v = 0; v < V; v++) {
                double d = fabs(lg[(size_t)r * V + v] - ref[seq[r]][(size_t)i * V + v]);
                worst = d > worst ? d : worst;
            }
    }
    cr_assert(worst < 1e-4, "KV-cache logits differ from full recomputation by %g", worst);
    for (int b = 0; b < B; b++) cr_assert_eq(gpt2_kv_len(kv, b), lens[b]);
    /* a full sequence refuses more tokens */
    seq[0] = 0;
    tok[0] = 1;
    cr_assert(gpt2_kv_forward(m, kv, 1, seq, tok, NULL, lg, err, sizeof err) != 0);
    cr_assert(strstr(err, "full"), "%s", err);
    for (int b = 0; b < B; b++) free(ref[b]);
    free(lg);
    gpt2_kv_free(kv);
    gpt2_free(m);
}

static void run(gpt2 *m, int B, const int32_t *const *pr, const int *pl, gpt2_sample_opts *o, int32_t *out, int *ol)
{
    char err[GPT2_ERR_LEN];
    cr_assert(gpt2_sample(m, B, pr, pl, o, out, ol, NULL, err, sizeof err) == 0, "%s", err);
}

Test(kv, sampling_is_reproducible_and_batch_independent)
{
    gpt2 *m = model();
    int32_t p0[] = {1, 2, 3}, p1[] = {7}, p2[] = {4, 4, 4, 4, 4};
    const int32_t *pr[] = {p0, p1, p2};
    int pl[] = {3, 1, 5};
    gpt2_sample_opts o = gpt2_sample_defaults();
    o.max_new_tokens = 20;
    o.seed = 5;
    int32_t a[60], b[60], c[20];
    int la[3], lb[3], lc[1];
    run(m, 3, pr, pl, &o, a, la);
    run(m, 3, pr, pl, &o, b, lb);
    cr_assert(memcmp(a, b, sizeof a) == 0 && memcmp(la, lb, sizeof la) == 0, "same seed, different tokens");
    /* sequence 1 alone (as sequence 0 of a batch of one) draws from stream 0, so compare stream 0 */
    run(m, 1, pr, pl, &o, c, lc);
    cr_assert(lc[0] == la[0] && memcmp(c, a, (size_t)lc[0] * 4) == 0, "sequence 0 depends on the batch");
    o.seed = 6;
    run(m, 3, pr, pl, &o, b, lb);
    cr_assert(memcmp(a, b, sizeof a) != 0, "another seed gave the same 60 tokens");
    gpt2_free(m);
}

Test(kv, greedy_follows_full_forward_and_stops)
{
    gpt2 *m = model();
    int32_t p[] = {3, 1, 4, 1, 5};
    const int32_t *pr[] = {p};
    int pl[] = {5};
    gpt2_sample_opts o = gpt2_sample_defaults();
    o.temperature = 0;
    o.max_new_tokens = 12;
    int32_t out[12];
    int ol[1];
    run(m, 1, pr, pl, &o, out, ol);
    cr_assert_eq(ol[0], 12);
    int32_t seq[17];
    memcpy(seq, p, sizeof p);
    memcpy(seq + 5, out, sizeof out);
    float *lg = full_logits(m, seq, 16);
    for (int i = 0; i < 12; i++) {
        const float *row = lg + (size_t)(4 + i) * 50;
        int best = 0;
        for (int v = 1; v < 50; v++)
            if (row[v] > row[best]) best = v;
        cr_assert_eq(out[i], best, "greedy token %d is %d, argmax of the full forward is %d", i, out[i], best);
    }
    /* top-k 1 at temperature 1 is greedy too */
    gpt2_sample_opts o1 = gpt2_sample_defaults();
    o1.top_k = 1;
    o1.max_new_tokens = 12;
    int32_t out1[12];
    run(m, 1, pr, pl, &o1, out1, ol);
    cr_assert(memcmp(out, out1, sizeof out) == 0, "top-k 1 differs from greedy");
    /* stopping: make the 3rd greedy token the stop token */
    o.stop_token = out[2];
    int first = 0;
    while (out[first] != o.stop_token) first++;
    run(m, 1, pr, pl, &o, out1, ol);
    cr_assert_eq(ol[0], first + 1, "stopped after %d tokens, want %d", ol[0], first + 1);
    cr_assert_eq(out1[first], o.stop_token);
    free(lg);
    gpt2_free(m);
}

Test(kv, sampling_frequencies_follow_the_distribution)
{
    /* one step from the same prompt, many seeds: the empirical distribution of the first token
     * matches softmax(logits / T), and top-p keeps only the nucleus */
    gpt2 *m = model();
    int32_t p[] = {2, 9};
    float *lg = full_logits(m, p, 2);
    const float *row = lg + 50;
    double pr[50], z = 0, mx = -1e30;
    for (int v = 0; v < 50; v++) mx = row[v] > mx ? row[v] : mx;
    for (int v = 0; v < 50; v++) z += (pr[v] = exp((row[v] - mx) / 0.7));
    for (int v = 0; v < 50; v++) pr[v] /= z;
    const int N = 800;
    const int32_t *prs[N];
    int pl[N];
    for (int i = 0; i < N; i++) {
        prs[i] = p;
        pl[i] = 2;
    }
    gpt2_sample_opts o = gpt2_sample_defaults();
    o.temperature = 0.7f;
    o.max_new_tokens = 1;
    int32_t *out = malloc(N * sizeof *out);
    int *ol = malloc(N * sizeof *ol);
    run(m, N, prs, pl, &o, out, ol);
    int cnt[50] = {0};
    for (int i = 0; i < N; i++) cnt[out[i]]++;
    for (int v = 0; v < 50; v++) {
        double sd = sqrt(N * pr[v] * (1 - pr[v])) + 1;
        cr_assert(fabs(cnt[v] - N * pr[v]) < 5 * sd, "token %d drawn %d times, expected %.1f", v, cnt[v], N * pr[v]);
    }
    /* nucleus 0.5: only tokens inside the smallest set reaching 0.5 appear */
    o.top_p = 0.5f;
    run(m, N, prs, pl, &o, out, ol);
    int order[50];
    for (int v = 0; v < 50; v++) order[v] = v;
    for (int i = 0; i < 50; i++)
        for (int j = i + 1; j < 50; j++)
            if (pr[order[j]] > pr[order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    int inside[50] = {0};
    double acc = 0;
    for (int i = 0; i < 50 && acc < 0.5; i++) {
        inside[order[i]] = 1;
        acc += pr[order[i]];
    }
    for (int i = 0; i < N; i++) cr_assert(inside[out[i]], "top-p 0.5 drew token %d outside the nucleus", out[i]);
    free(out);
    free(ol);
    free(lg);
    gpt2_free(m);
}

/* prompts of 36 + 15 + 22 = 73 rows in one call (more than the decode path's 64: BLIS, an op per
 * region), then decode steps (the decode kernels in one region), at one and two threads: the logits
 * of every row equal the full forward's */
Test(kv, prefill_of_many_rows_then_decode_equals_full_recomputation)
{
    gpt2 *m = model();
    const int V = 50, B = 3;
    int32_t seqs[3][40];
    int lens[3] = {36, 15, 22};
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 40; i++) seqs[b][i] = (int32_t)((b * 13 + i * 7 + i * i * 3) % V);
    float *ref[3];
    for (int b = 0; b < B; b++) ref[b] = full_logits(m, seqs[b], lens[b] + 4);
    for (int nt = 1; nt <= 2; nt++) {
        gpt2_set_threads(m, nt);
        gpt2_kv *kv;
        char err[GPT2_ERR_LEN];
        cr_assert(gpt2_kv_create(&kv, m, B, 40, err, sizeof err) == 0, "%s", err);
        int seq[73];
        int32_t tok[73];
        int R = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < lens[b]; i++, R++) {
                seq[R] = b;
                tok[R] = seqs[b][i];
            }
        float *lg = malloc((size_t)R * V * sizeof *lg);
        cr_assert(gpt2_kv_forward(m, kv, R, seq, tok, NULL, lg, err, sizeof err) == 0, "%s", err);
        double worst = 0;
        for (int b = 0, r = 0; b < B; b++)
            for (int i = 0; i < lens[b]; i++, r++)
                for (int v = 0; v < V; v++) worst = fmax(worst, fabs(lg[(size_t)r * V + v] - ref[b][(size_t)i * V + v]));
        for (int i = 0; i < 4; i++) {
            for (int b = 0; b < B; b++) {
                seq[b] = b;
                tok[b] = seqs[b][lens[b] + i];
            }
            cr_assert(gpt2_kv_forward(m, kv, B, seq, tok, NULL, lg, err, sizeof err) == 0, "%s", err);
            for (int b = 0; b < B; b++)
                for (int v = 0; v < V; v++)
                    worst = fmax(worst, fabs(lg[(size_t)b * V + v] - ref[b][(size_t)(lens[b] + i) * V + v]));
        }
        cr_assert(worst < 1e-4, "%d threads: KV-cache logits differ from full recomputation by %g", nt, worst);
        free(lg);
        gpt2_kv_free(kv);
    }
    for (int b = 0; b < B; b++) free(ref[b]);
    gpt2_free(m);
}

/* bf16 decode weights: the same decode steps' logits stay within 2% of the logits' spread of the
 * fp32 ones (bf16 keeps 8 significant bits: each weight is off by up to 2^-9 relatively, and those
 * errors average out in the dot products; on CPUs with AMX, steps of >= 4 rows also round the
 * activations, which the same bound covers), yet differ (the copy is really used), at 2 rows and at
 * 6 (AMX's path where it exists: n_embd 32 is a multiple of its 32-deep tiles); sampling with them
 * is deterministic */
static double bf16_worst(gpt2 *m, int B, double *spread)
{
    const int V = 50, N = 12;
    char err[GPT2_ERR_LEN];
    gpt2_kv *k32, *k16;
    cr_assert(gpt2_kv_create(&k32, m, B, N, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_kv_create(&k16, m, B, N, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_kv_set_weights(k16, m, GPT2_W_BF16, err, sizeof err) == 0, "%s", err);
    float l32[8 * 50], l16[8 * 50];
    double worst = 0, lo = 1e30, hi = -1e30;
    for (int i = 0; i < N; i++) {
        int seq[8];
        int32_t tok[8];
        for (int b = 0; b < B; b++) {
            seq[b] = b;
            tok[b] = (int32_t)((i * 7 + 3 + b * (i * i + 11)) % V);
        }
        cr_assert(gpt2_kv_forward(m, k32, B, seq, tok, NULL, l32, err, sizeof err) == 0, "%s", err);
        cr_assert(gpt2_kv_forward(m, k16, B, seq, tok, NULL, l16, err, sizeof err) == 0, "%s", err);
        for (int v = 0; v < B * V; v++) {
            worst = fmax(worst, fabs(l32[v] - l16[v]));
            lo = fmin(lo, l32[v]);
            hi = fmax(hi, l32[v]);
        }
    }
    gpt2_kv_free(k32);
    gpt2_kv_free(k16);
    *spread = hi - lo;
    return worst;
}

Test(kv, bf16_weights_stay_close_to_fp32_and_sample_deterministically)
{
    gpt2 *m = model();
    char err[GPT2_ERR_LEN];
    for (int B = 2; B <= 6; B += 4) {
        double spread, worst = bf16_worst(m, B, &spread);
        cr_assert(worst > 0, "%d rows: bf16 weights gave exactly the fp32 logits: the copy is not used", B);
        cr_assert(worst < 0.02 * spread, "%d rows: bf16 logits differ by %g, spread of the logits %g", B, worst, spread);
    }
    /* sampling */
    int32_t p0[] = {1, 2}, p1[] = {9};
    const int32_t *pr[] = {p0, p1};
    int pl[] = {2, 1};
    gpt2_sample_opts o = gpt2_sample_defaults();
    o.max_new_tokens = 15;
    o.weights = GPT2_W_BF16;
    int32_t a[30], b[30];
    int la[2], lb[2];
    run(m, 2, pr, pl, &o, a, la);
    run(m, 2, pr, pl, &o, b, lb);
    cr_assert(memcmp(a, b, sizeof a) == 0 && memcmp(la, lb, sizeof la) == 0, "bf16: same seed, different tokens");
    o.weights = (gpt2_weights)7;
    cr_assert(gpt2_sample(m, 2, pr, pl, &o, a, la, NULL, err, sizeof err) != 0);
    cr_assert(strstr(err, "weight"), "%s", err);
    gpt2_free(m);
}

/* The bf16 decode copy belongs to the model and follows its weights version: weights written
 * without gpt2_weights_changed still decode from the cached copy (it is not rebuilt per call), and
 * after gpt2_weights_changed (what the training loop calls after each optimizer step) the next
 * decode reads the new weights: its logits equal those of a fresh model holding them. */
static void step_logits(gpt2 *m, float *out)
{
    char err[GPT2_ERR_LEN];
    gpt2_kv *kv;
    cr_assert(gpt2_kv_create(&kv, m, 2, 4, err, sizeof err) == 0, "%s", err);
    cr_assert(gpt2_kv_set_weights(kv, m, GPT2_W_BF16, err, sizeof err) == 0, "%s", err);
    int seq[2] = {0, 1};
    int32_t tok[2] = {3, 17};
    cr_assert(gpt2_kv_forward(m, kv, 2, seq, tok, NULL, out, err, sizeof err) == 0, "%s", err);
    gpt2_kv_free(kv);
}

Test(kv, bf16_copy_is_cached_until_the_weights_change)
{
    gpt2 *m = model(), *fresh = model();
    float a[100], b[100], c[100], d[100];
    step_logits(m, a);
    const gpt2_derived *slot = gpt2_decode_copy(m);
    cr_assert(slot->data && slot->version == gpt2_weights_version(m), "no bf16 copy kept after a decode step");
    /* an "optimizer step" on the blocks' matrices (the copy holds those and the LM head; LayerNorms,
     * biases and the embeddings are read in fp32), not announced yet */
    float *p = gpt2_params(m), *q = gpt2_params(fresh);
    const gpt2_tensor *tb = gpt2_param_table(m);
    const int mats[] = {GPT2_QKVW, GPT2_ATTPROJW, GPT2_FCW, GPT2_FCPROJW};
    for (int k = 0; k < 4; k++)
        for (size_t i = tb[mats[k]].offset; i < tb[mats[k]].offset + tb[mats[k]].numel; i++) q[i] = p[i] = p[i] * 0.5f + 0.01f;
    gpt2_weights_changed(fresh);
    step_logits(m, b);
    cr_assert(memcmp(a, b, sizeof a) == 0, "the copy was rebuilt although the weights version did not change");
    gpt2_weights_changed(m);
    step_logits(m, c);
    step_logits(fresh, d);
    cr_assert(slot->version == gpt2_weights_version(m), "the copy did not follow the new weights version");
    cr_assert(memcmp(c, d, sizeof c) == 0, "after gpt2_weights_changed the decode does not read the new weights");
    cr_assert(memcmp(a, c, sizeof a) != 0, "new weights, same logits");
    gpt2_free(m);
    gpt2_free(fresh);
}
