/* cmd_bench.c — `rlhf bench train|matmul|sample`: speed of a full training step (forward + backward +
 * AdamW) on random weights, of each matrix product in it, and of KV-cache sampling (with the read
 * bandwidth and the share of it a decode step reaches), for comparison with PyTorch and llm.c run
 * on the same shapes (tools/bench/). The last line of `bench train` is `train_step_ms: X`, of
 * `bench sample` `tokens_per_s: X`. */
#include "cli.h"
#include "commands.h"
#include "cpu.h"
#include "gpt2.h"
#include "kv.h"
#include "mm.h"

#include <omp.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h> /* AVX-512 here; the bf16 peak loop is compiled for its target whatever -march says */
#endif
#include <string.h>

typedef struct {
    const char *config;
    long batch, seq, steps, threads, vocab;
} bench_opts;

static gpt2 *make_model(const char *cmd, const bench_opts *o, gpt2_config *cfg)
{
    if (gpt2_config_named(o->config, (int)o->vocab, cfg))
        cli_die(cmd, "unknown --config '%s' (tiny, small, gpt2-small, gpt2-medium)", o->config);
    char err[GPT2_ERR_LEN];
    gpt2 *m;
    if (gpt2_create(&m, cfg, err, sizeof err)) cli_die(cmd, "%s", err);
    gpt2_set_threads(m, (int)o->threads);
    gpt2_init_random(m, 1337);
    return m;
}

/* best-of-reps seconds of one product C (m,n) = op(A) op(B), on operands filled with values (not
 * calloc's zero pages, which would flatter memory-bound shapes) */
static double time_sgemm(const char *cmd, int ta, int tb, int m, int n, int k, int reps, int nthreads)
{
    float *a = malloc((size_t)m * k * 4), *b = malloc((size_t)k * n * 4), *c = malloc((size_t)m * n * 4);
    if (!a || !b || !c) cli_die(cmd, "out of memory");
    for (long i = 0; i < (long)m * k; i++) a[i] = (float)(i % 7) * 0.01f;
    for (long i = 0; i < (long)k * n; i++) b[i] = (float)(i % 5) * 0.01f;
    const int lda = ta ? m : k, ldb = tb ? k : n;
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = clk_now();
        mm_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n, nthreads);
        double t = clk_now() - t0;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* the sgemm rate the model's products can at best reach: 256x3072x768, as in the MLP */
static double sgemm_peak(int nthreads)
{
    const int M = 256, N = 3072, K = 768;
    return 2.0 * M * N * K / time_sgemm("bench train", 0, 0, M, N, K, 6, nthreads) / 1e9;
}

/* ---- bf16 (--precision bf16) ----------------------------------------------------------------------- */

/* the vdpbf16ps peak: every thread runs 12 independent chains of the instruction (enough to hide its
 * latency), best of 3; 0 where the CPU lacks it. On CPUs with AMX the tiles can go past this. */
#if defined(__x86_64__)
/* one thread's rate in GFLOP/s (its own function: OpenMP's outlined region would not carry the target) */
__attribute__((target("avx512f,avx512bf16"))) static double bf16_chains(long iters)
{
    __m512 c0 = _mm512_set1_ps(1), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0,
           c10 = c0, c11 = c0;
    const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x3f003f00);
    double best = 1e9;
    for (int r = 0; r < 3; r++) {
        double t0 = clk_now();
        for (long i = 0; i < iters; i++) {
#define DP(c) c = _mm512_dpbf16_ps(c, a, b)
            DP(c0), DP(c1), DP(c2), DP(c3), DP(c4), DP(c5), DP(c6), DP(c7), DP(c8), DP(c9), DP(c10), DP(c11);
#undef DP
        }
        double t = clk_now() - t0;
        best = t < best ? t : best;
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return (_mm512_reduce_add_ps(s) != 0 ? 12.0 * 64.0 : 0) * (double)iters / best / 1e9; /* 64 flops each */
}
#endif

static double bf16_peak(int nthreads)
{
    double rate = 0;
#if defined(__x86_64__)
    if (!cpu_features()->avx512_bf16) return 0;
#pragma omp parallel num_threads(nthreads) reduction(+ : rate)
    rate += bf16_chains(4000000);
#else
    (void)nthreads;
#endif
    return rate;
}

static gpt2_precision parse_precision(const char *cmd, const char *name)
{
    gpt2_precision p;
    if (gpt2_precision_parse(name, &p)) cli_die(cmd, "--precision: expected fp32 or bf16, got '%s'", name);
    return p;
}

/* best-of-reps seconds of one bf16 product as the model runs it: B a view of a bf16 weight when A is
 * not transposed (x @ W, dy @ W^T, the LM head), else plain bf16 (x^T @ dy); operands rounded outside
 * the timing (the conversions are in `bench train`) */
static double time_bgemm(const char *cmd, mm_ctx *c, int ta, int tb, int m, int n, int k, int reps, int nthreads)
{
    const size_t na = (size_t)m * k, nb = (size_t)k * n;
    float *out = malloc((size_t)m * n * 4);
    uint16_t *a16 = malloc(na * 2), *b16 = malloc(nb * 2);
    if (!out || !a16 || !b16) cli_die(cmd, "out of memory");
    for (size_t i = 0; i < na; i++) a16[i] = mm_bf16((float)(i % 7) * 0.01f);
    for (size_t i = 0; i < nb; i++) b16[i] = mm_bf16((float)(i % 5) * 0.01f);
    mm_bweight *w = NULL;
    if (!ta && mm_bweight_view(c, &w, tb, k, n, b16, tb ? k : n)) cli_die(cmd, "%s", mm_ctx_error(c));
    const mm_bshape s = {ta, tb, m, n, k, ta ? m : k, tb ? k : n, n, 0, 0, 0, 0, 0, 0, 0, 0};
    double best = 1e9;
    for (int r = 0; r < reps + 1; r++) { /* the first call compiles the product: not timed */
        double t0 = clk_now();
        int rc = w ? mm_bgemm_w(c, m, 1.0f, a16, k, w, NULL, 0.0f, out, n, nthreads)
                   : mm_bgemm(c, &s, 1.0f, a16, b16, 0.0f, out, nthreads);
        if (rc) cli_die(cmd, "%s", mm_ctx_error(c));
        double t = clk_now() - t0;
        if (r && t < best) best = t;
    }
    mm_bweight_free(w);
    free(out), free(a16), free(b16);
    return best;
}

static int bench_train(int argc, char **argv)
{
    bench_opts o = {"gpt2-small", 4, 64, 10, 0, 50257};
    const char *prec_name = "fp32";
    const cli_opt opts[] = {
        {"--config", OPT_STR, &o.config, "NAME", "model shape (tiny, small, gpt2-small, gpt2-medium)", 0},
        {"--precision", OPT_STR, &prec_name, "fp32|bf16", "products in fp32, or bf16 with fp32 accumulation", 0},
        {"--batch", OPT_LONG, &o.batch, "B", "sequences per step", 0},
        {"--seq", OPT_LONG, &o.seq, "T", "tokens per sequence", 0},
        {"--steps", OPT_LONG, &o.steps, "N", "timed steps (after 2 warm-up steps)", 0},
        {"--threads", OPT_LONG, &o.threads, "N", "threads (0: all cores)", 0},
        {"--vocab", OPT_LONG, &o.vocab, "V", "vocabulary size", 0},
        {0}};
    cli_parse("bench train", "Time full training steps (forward, backward, AdamW) on random weights.", argc, argv,
              opts);
    if (o.batch < 1 || o.seq < 1 || o.steps < 1) cli_die("bench train", "--batch, --seq and --steps must be positive");
    int nt = o.threads > 0 ? (int)o.threads : omp_get_max_threads();
    cli_threads(nt);
    const gpt2_precision prec = parse_precision("bench train", prec_name);
    gpt2_config cfg;
    gpt2 *m = make_model("bench train", &o, &cfg);
    gpt2_set_precision(m, prec);
    const int B = (int)o.batch, T = (int)o.seq, N = B * T;
    int32_t *tok = malloc((size_t)(N + 1) * sizeof *tok);
    uint64_t s = 12345;
    for (int i = 0; i <= N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)cfg.vocab_size);
    }
    adamw opt;
    if (adamw_create(&opt, gpt2_num_params(m))) cli_die("bench train", "out of memory");
    adamw_range ranges[GPT2_NUM_TENSORS];
    gpt2_adamw_ranges(m, ranges);
    adamw_hparams h = adamw_defaults();
    char err[GPT2_ERR_LEN];
    double tf = 0, tb = 0, to = 0, total = 0;
    float loss = 0;
    printf("config %s: %d layers, %d heads, %d dims, vocab %d, %.1fM parameters; batch %d x %d tokens, %d threads\n",
           o.config, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, gpt2_num_params(m) / 1e6, B, T, nt);
    printf("precision: %s (%s)\n", gpt2_precision_name(gpt2_precision_of(m)), gpt2_precision_note(m));
    for (long step = 0; step < o.steps + 2; step++) {
        double t0 = clk_now();
        if (gpt2_forward(m, tok, tok + 1, NULL, B, T, &loss, err, sizeof err)) cli_die("bench train", "%s", err);
        double t1 = clk_now();
        gpt2_zero_grad(m);
        if (gpt2_backward(m, NULL, NULL, err, sizeof err)) cli_die("bench train", "%s", err);
        double t2 = clk_now();
        double norm = grad_norm(gpt2_grads(m), gpt2_num_params(m), opt.partial);
        adamw_step_scaled(&opt, gpt2_params(m), gpt2_grads(m), clip_scale(norm, 1.0), ranges, GPT2_NUM_TENSORS, &h,
                          h.lr);
        gpt2_weights_changed(m); /* bf16: the copy is rebuilt in the next step (timed) */
        double t3 = clk_now();
        if (step >= 2) {
            tf += t1 - t0;
            tb += t2 - t1;
            to += t3 - t2;
            total += t3 - t0;
        }
    }
    double ms = 1e3 * total / (double)o.steps;
    double flops = 3.0 * gpt2_flops_forward(&cfg, B, T);
    double gf = flops / (total / (double)o.steps) / 1e9;
    const int bf = gpt2_precision_of(m) == GPT2_PREC_BF16;
    double peak = bf ? bf16_peak(nt) : sgemm_peak(nt);
    printf("forward %.1f ms, backward %.1f ms, clip+adamw %.1f ms (per step, mean of %ld; final loss %.4f)\n",
           1e3 * tf / o.steps, 1e3 * tb / o.steps, 1e3 * to / o.steps, o.steps, loss);
    printf("throughput: %.1f GFLOP/s = %.0f%% of %s here (%.1f GFLOP/s); %.0f tokens/s\n", gf, 100.0 * gf / peak,
           bf ? "the vdpbf16ps peak" : "BLIS's own sgemm", peak, N / (total / (double)o.steps));
    printf("train_step_ms: %.2f\n", ms);
    adamw_free(&opt);
    free(tok);
    gpt2_free(m);
    return 0;
}

static int bench_matmul(int argc, char **argv)
{
    bench_opts o = {"gpt2-small", 4, 64, 5, 0, 50257};
    const char *prec_name = "fp32";
    const cli_opt opts[] = {
        {"--config", OPT_STR, &o.config, "NAME", "model shape", 0},
        {"--precision", OPT_STR, &prec_name, "fp32|bf16", "products in fp32, or bf16 with fp32 accumulation", 0},
        {"--batch", OPT_LONG, &o.batch, "B", "sequences", 0},
        {"--seq", OPT_LONG, &o.seq, "T", "tokens per sequence", 0},
        {"--threads", OPT_LONG, &o.threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("bench matmul", "Time each matrix product of one GPT-2 training step, as the model calls it.", argc,
              argv, opts);
    gpt2_config cfg;
    if (gpt2_config_named(o.config, (int)o.vocab, &cfg)) cli_die("bench matmul", "unknown --config '%s'", o.config);
    int nt = o.threads > 0 ? (int)o.threads : omp_get_max_threads();
    const int N = (int)(o.batch * o.seq), C = cfg.n_embd, V = cfg.vocab_size;
    mm_ctx *mc = NULL;
    double peak = 0;
    if (parse_precision("bench matmul", prec_name) == GPT2_PREC_BF16) {
        char err[256];
        if (mm_ctx_create(&mc, err, sizeof err)) cli_die("bench matmul", "%s", err);
        peak = bf16_peak(nt);
        printf("bf16 products (fp32 accumulation), vdpbf16ps peak here %.0f GFLOP/s; CPU: %s\n", peak,
               cpu_features_str());
    }
    struct {
        const char *name;
        int ta, tb, m, n, k;
    } sh[] = {
        {"qkv   fwd  x@W", 0, 0, N, 3 * C, C},     {"qkv   bwd  dy@W^T", 0, 1, N, C, 3 * C},
        {"qkv   bwd  x^T@dy", 1, 0, C, 3 * C, N},   {"proj  fwd", 0, 0, N, C, C},
        {"fc    fwd", 0, 0, N, 4 * C, C},           {"fc    bwd  dy@W^T", 0, 1, N, C, 4 * C},
        {"fc    bwd  x^T@dy", 1, 0, C, 4 * C, N},   {"fcprj fwd", 0, 0, N, C, 4 * C},
        {"fcprj bwd  dy@W^T", 0, 1, N, 4 * C, C},   {"fcprj bwd  x^T@dy", 1, 0, 4 * C, C, N},
        {"head  fwd  x@wte^T", 0, 1, N, V, C},      {"head  bwd  dl@wte", 0, 0, N, C, V},
        {"head  bwd  dl^T@x", 1, 0, V, C, N},
    };
    for (size_t i = 0; i < sizeof sh / sizeof *sh; i++) {
        int m = sh[i].m, n = sh[i].n, k = sh[i].k;
        double best = mc ? time_bgemm("bench matmul", mc, sh[i].ta, sh[i].tb, m, n, k, (int)o.steps, nt)
                         : time_sgemm("bench matmul", sh[i].ta, sh[i].tb, m, n, k, (int)o.steps, nt);
        double gf = 2.0 * m * n * k / best / 1e9;
        printf("%-20s %c%c m=%6d n=%6d k=%6d  %8.2f ms  %6.1f GFLOP/s", sh[i].name, sh[i].ta ? 'T' : 'N',
               sh[i].tb ? 'T' : 'N', m, n, k, best * 1e3, gf);
        if (peak > 0) printf("  %3.0f%% of peak", 100 * gf / peak);
        printf("\n");
    }
    if (mc) printf("engine: %s\n", mm_ctx_engine(mc));
    mm_ctx_free(mc);
    return 0;
}

/* Read bandwidth with every thread: each sums its share of a 512 MiB array with four independent
 * 16-lane accumulators (one would measure the adder's latency, not the memory), best of 3. The
 * bound a decode step can reach is this rate divided by the bytes of weights it reads. */
static double read_bandwidth_gbs(void)
{
    const size_t n = (size_t)1 << 27; /* floats */
    float *a = aligned_alloc(64, n * sizeof *a);
    if (!a) return 0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 7);
    double best = 1e9, sink = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = clk_now(), s = 0;
#pragma omp parallel reduction(+ : s)
        {
            const size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
            const size_t i0 = n / 64 * t / T * 64, i1 = n / 64 * (t + 1) / T * 64;
#ifdef __AVX512F__
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t i = i0; i < i1; i += 64) {
                s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
                s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
                s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
                s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
            }
            s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
#else
            float lane[64] = {0};
            for (size_t i = i0; i < i1; i += 64)
#pragma omp simd
                for (int j = 0; j < 64; j++) lane[j] += a[i + j];
            for (int j = 0; j < 64; j++) s += lane[j];
#endif
        }
        double t = clk_now() - t0;
        sink += s;
        if (t < best) best = t;
    }
    free(a);
    return sink >= 0 ? (double)n * sizeof(float) / best / 1e9 : 0;
}

/* bytes of weights one decode step reads: the matrices (and wte, the LM head) at the decode
 * weights' width, biases and LayerNorms in fp32 (wpe: one row, not counted) */
static double step_weight_bytes(const gpt2 *m, gpt2_weights w)
{
    const gpt2_tensor *tb = gpt2_param_table(m);
    double bytes = 0;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        if (i == GPT2_WPE) continue;
        int matrix = i == GPT2_WTE || i == GPT2_QKVW || i == GPT2_ATTPROJW || i == GPT2_FCW || i == GPT2_FCPROJW;
        bytes += (double)tb[i].numel * (matrix && w == GPT2_W_BF16 ? 2 : 4);
    }
    return bytes;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench_sample(int argc, char **argv)
{
    bench_opts o = {"gpt2-small", 1, 0, 0, 0, 50257};
    long newtok = 128, runs = 3;
    const char *wname = "auto";
    const cli_opt opts[] = {
        {"--config", OPT_STR, &o.config, "NAME", "model shape", 0},
        {"--batch", OPT_LONG, &o.batch, "B", "sequences decoded together", 0},
        {"--new-tokens", OPT_LONG, &newtok, "N", "tokens generated per sequence", 0},
        {"--weights", OPT_STR, &wname, "auto|fp32|bf16", "decode weights (auto: bf16 where the CPU has bf16; the bf16 copy is made once, timed apart)", 0},
        {"--runs", OPT_LONG, &runs, "N", "timed generations (the median counts)", 0},
        {"--threads", OPT_LONG, &o.threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("bench sample", "Time KV-cache sampling from a one-token prompt on random weights.", argc, argv, opts);
    if (o.batch < 1 || newtok < 1 || runs < 1) cli_die("bench sample", "--batch, --new-tokens and --runs must be positive");
    gpt2_weights wt;
    if (gpt2_weights_parse(wname, &wt)) cli_die("bench sample", "--weights: expected auto, fp32 or bf16, got '%s'", wname);
    wt = gpt2_weights_resolve(wt);
    wname = gpt2_weights_name(wt);
    int nt = o.threads > 0 ? (int)o.threads : omp_get_max_threads();
    cli_threads(nt);
    gpt2_config cfg;
    gpt2 *m = make_model("bench sample", &o, &cfg);
    if (newtok + 1 > cfg.n_positions) cli_die("bench sample", "--new-tokens exceeds the context (%d)", cfg.n_positions);
    const int B = (int)o.batch;
    int32_t prompt[1] = {0};
    const int32_t **pr = malloc((size_t)B * sizeof *pr);
    int *pl = malloc((size_t)B * sizeof *pl), *ol = malloc((size_t)B * sizeof *ol);
    int32_t *out = malloc((size_t)B * (size_t)newtok * sizeof *out);
    double *tps = malloc((size_t)runs * sizeof *tps);
    if (!pr || !pl || !ol || !out || !tps) cli_die("bench sample", "out of memory");
    for (int b = 0; b < B; b++) {
        pr[b] = prompt;
        pl[b] = 1;
    }
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.weights = wt;
    char err[GPT2_ERR_LEN];
    /* the bf16 copy, made once (the model keeps it while its weights do not change), timed apart */
    double conv_ms = 0;
    if (wt == GPT2_W_BF16) {
        double t0 = clk_now();
        if (gpt2_decode_weights_ready(m, err, sizeof err)) cli_die("bench sample", "%s", err);
        conv_ms = 1e3 * (clk_now() - t0);
    }
    /* warm-up, then the timed generations */
    so.max_new_tokens = 4;
    if (gpt2_sample(m, B, pr, pl, &so, out, ol, NULL, err, sizeof err)) cli_die("bench sample", "%s", err);
    so.max_new_tokens = (int)newtok;
    for (long r = 0; r < runs; r++) {
        double t0 = clk_now();
        if (gpt2_sample(m, B, pr, pl, &so, out, ol, NULL, err, sizeof err)) cli_die("bench sample", "%s", err);
        tps[r] = (double)B * (double)newtok / (clk_now() - t0);
    }
    qsort(tps, (size_t)runs, sizeof *tps, by_value);
    const double med = runs % 2 ? tps[runs / 2] : 0.5 * (tps[runs / 2 - 1] + tps[runs / 2]);
    const double bw = read_bandwidth_gbs();
    const double bytes = step_weight_bytes(m, wt);
    const double share = bytes * (med / B) / (bw * 1e9); /* weight bytes read per second / bandwidth */
    printf("config %s: %.1fM parameters; batch %d, %ld new tokens each, %d threads, %s decode weights (%.0f MB per step)\n",
           o.config, gpt2_num_params(m) / 1e6, B, newtok, nt, wname, bytes / 1e6);
    if (wt == GPT2_W_BF16) printf("bf16 copy of the weights: %.1f ms (once per weights version, outside the timed generations)\n", conv_ms);
    printf("%.2f ms per decode step (median of %ld generations; slowest %.2f); bound at this bandwidth: %.1f tokens/s\n",
           1e3 * B / med, runs, 1e3 * B / tps[0], bw * 1e9 / bytes * B);
    printf("read_bandwidth_gb_s: %.1f\n", bw);
    printf("bandwidth_share: %.2f\n", share);
    printf("tokens_per_s: %.2f\n", med);
    free(tps);
    free(pr);
    free(pl);
    free(ol);
    free(out);
    gpt2_free(m);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return bench_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "matmul") == 0) return bench_matmul(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "sample") == 0) return bench_sample(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "rollout") == 0) return bench_rollout(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: rlhf bench train [--config NAME --batch B --seq T --steps N --threads N --precision fp32|bf16]\n"
               "       rlhf bench matmul [--config NAME --batch B --seq T --threads N --precision fp32|bf16]\n"
               "       rlhf bench sample [--config NAME --batch B --new-tokens N --weights auto|fp32|bf16 --runs N --threads N]\n"
               "       rlhf bench rollout [--config NAME --prompts B --generations G --new-tokens N --runs N --threads N]\n");
        return 0;
    }
    cli_die("bench", "expected 'train', 'matmul', 'sample' or 'rollout' (see 'rlhf bench --help')");
}
