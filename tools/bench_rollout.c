/* bench_rollout.c — `rlhf bench rollout`: the RL core's rollout (rlhf/rl.h: KV-cache sampling of
 * B prompts x G completions, then the fp32 full-forward recomputation of their log-probs) on random
 * weights at a model shape (default GPT-2 small, 124M), with fp32 and with bf16 decode weights in
 * the same run (taking turns), and how far the sampler's log-probs lie from the trainer's in each. The last lines
 * are `fp32_rollout_tokens_per_s: X`, `bf16_rollout_tokens_per_s: X` and `bf16_speedup: X`. */
#include "cli.h"
#include "commands.h"
#include "gpt2.h"
#include "kv.h"
#include "rl.h"
#include "rollout.h"
#include "rng.h"

#include <omp.h>
#include <stdlib.h>

typedef struct {
    double sample_s, logp_s, diff_mean, diff_max; /* medians of the timed runs; the last run's differences */
} rollout_time;

static int by_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, by_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* one rollout of rows prompts with weights w: its sampling and recomputation seconds */
static void one_rollout(gpt2 *m, rollout *r, int rows, const int32_t *const *pp, const int *pl, int newtok, gpt2_weights w,
                        uint64_t seed, double *ts, double *tl)
{
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.max_new_tokens = newtok;
    so.weights = w;
    so.seed = seed;
    char err[GPT2_ERR_LEN];
    const double t0 = clk_now();
    if (rollout_sample(r, m, rows, pp, pl, &so, err, sizeof err)) cli_die("bench rollout", "%s", err);
    const double t1 = clk_now();
    if (rollout_logprobs(m, r, so.temperature, r->logp, err, sizeof err)) cli_die("bench rollout", "%s", err);
    *ts = t1 - t0;
    *tl = clk_now() - t1;
}

/* runs timed rollouts per weight type after one untimed each, fp32 and bf16 taking turns (on a
 * shared machine the load then drifts over both alike) */
static void time_rollouts(gpt2 *m, rollout *r, int rows, const int32_t *const *pp, const int *pl, int newtok, int runs,
                          rollout_time out[2])
{
    double ts[2][64], tl[2][64];
    for (int k = -1; k < runs; k++)
        for (int w = 0; w < 2; w++) {
            double a, b;
            one_rollout(m, r, rows, pp, pl, newtok, w ? GPT2_W_BF16 : GPT2_W_F32, rng_stream(1, (uint64_t)(k + 1)), &a, &b);
            if (k >= 0) ts[w][k] = a, tl[w][k] = b;
            if (k == runs - 1) rl_logp_difference(r, NULL, &out[w].diff_mean, &out[w].diff_max);
        }
    for (int w = 0; w < 2; w++) out[w].sample_s = median(ts[w], runs), out[w].logp_s = median(tl[w], runs);
}

int bench_rollout(int argc, char **argv)
{
    const char *config = "gpt2-small";
    long prompts = 4, gens = 4, plen = 32, newtok = 64, runs = 3, threads = 0;
    const cli_opt opts[] = {
        {"--config", OPT_STR, &config, "NAME", "model shape (random weights)", 0},
        {"--prompts", OPT_LONG, &prompts, "B", "prompts per rollout", 0},
        {"--generations", OPT_LONG, &gens, "G", "completions per prompt", 0},
        {"--prompt-len", OPT_LONG, &plen, "N", "prompt tokens (random ids)", 0},
        {"--new-tokens", OPT_LONG, &newtok, "N", "tokens sampled per completion (no stop token)", 0},
        {"--runs", OPT_LONG, &runs, "N", "timed rollouts per weight type (the median counts)", 0},
        {"--threads", OPT_LONG, &threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("bench rollout", "Time the RL core's rollout (sampling + log-prob recomputation), fp32 and bf16 decode weights.",
              argc, argv, opts);
    if (prompts < 1 || gens < 1 || plen < 1 || newtok < 1 || runs < 1 || runs > 64)
        cli_die("bench rollout", "--prompts, --generations, --prompt-len, --new-tokens must be positive, --runs 1..64");
    const int nt = threads > 0 ? (int)threads : omp_get_max_threads(), rows = (int)(prompts * gens);
    cli_threads(nt);
    gpt2_config cfg;
    if (gpt2_config_named(config, 50257, &cfg)) cli_die("bench rollout", "unknown --config '%s'", config);
    if (plen + newtok > cfg.n_positions) cli_die("bench rollout", "prompt and new tokens exceed %d positions", cfg.n_positions);
    char err[GPT2_ERR_LEN];
    gpt2 *m;
    if (gpt2_create(&m, &cfg, err, sizeof err)) cli_die("bench rollout", "%s", err);
    gpt2_init_random(m, 1337);
    gpt2_set_threads(m, nt);
    int32_t *ptok = malloc((size_t)prompts * (size_t)plen * sizeof *ptok);
    const int32_t **pp = malloc((size_t)rows * sizeof *pp);
    int *pl = malloc((size_t)rows * sizeof *pl);
    rollout r;
    if (!ptok || !pp || !pl || rollout_create(&r, rows, (int)(plen + newtok), (int)newtok, err, sizeof err))
        cli_die("bench rollout", "out of memory");
    uint64_t s = 7;
    for (long i = 0; i < prompts * plen; i++) ptok[i] = (int32_t)rng_below(&s, (uint64_t)cfg.vocab_size);
    for (int q = 0; q < rows; q++) pp[q] = ptok + (size_t)(q / gens) * (size_t)plen, pl[q] = (int)plen;
    rollout_time tw[2];
    time_rollouts(m, &r, rows, pp, pl, (int)newtok, (int)runs, tw);
    const rollout_time f = tw[0], b = tw[1];
    const double toks = (double)rows * (double)newtok;
    printf("config %s: %.1fM parameters, random weights; %ld prompts x %ld completions = %d rows, %ld prompt tokens, %ld "
           "new tokens each, %d threads, median of %ld rollouts\n",
           config, gpt2_num_params(m) / 1e6, prompts, gens, rows, plen, newtok, nt, runs);
    printf("%-8s %10s %14s %12s %18s %16s %15s\n", "weights", "sample_s", "sample_tok/s", "logprobs_s", "rollout_tok/s",
           "|dlogp| mean", "|dlogp| max");
    const rollout_time *t[2] = {&f, &b};
    for (int i = 0; i < 2; i++)
        printf("%-8s %10.3f %14.1f %12.3f %18.1f %16.3g %15.3g\n", i ? "bf16" : "fp32", t[i]->sample_s, toks / t[i]->sample_s,
               t[i]->logp_s, toks / (t[i]->sample_s + t[i]->logp_s), t[i]->diff_mean, t[i]->diff_max);
    printf("fp32_rollout_tokens_per_s: %.1f\n", toks / (f.sample_s + f.logp_s));
    printf("bf16_rollout_tokens_per_s: %.1f\n", toks / (b.sample_s + b.logp_s));
    printf("bf16_speedup: %.2f\n", (f.sample_s + f.logp_s) / (b.sample_s + b.logp_s));
    rollout_free(&r);
    free(ptok);
    free(pp);
    free(pl);
    gpt2_free(m);
    return 0;
}
