/* test_compare.c — `rlhf compare`, `rlhf demo --seeds` and `rlhf plot` end to end on --quick demos
 * (one thread), and the across-seed statistics (rlhf/seedstats.h) against an independent numerical
 * integration of Student's t density:
 *   compare   on the demo's own run folders, with the demo's evaluation settings (read from its
 *             results.json), reproduces the demo's results table line for line and its report.json
 *             models; a rerun finds every evaluation cached; runs trained by hand (rlhf dpo, rlhf
 *             grpo from the demo's SFT model) give a complete report whose figures all exist
 *   seeds     --seeds 1,2,3: every method's across-seed mean gain and interval, the comparison in
 *             words; seed-1 equals a lone --seed 1 demo; a fresh rerun reproduces report.json
 *   plot      default metrics per family, an unknown metric and a missing folder as one line */
#include "fileio.h"
#include "judge.h"
#include "seedstats.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int have_demo_inputs(void)
{
    char lex[4096];
    judge_default_lexicon(lex, sizeof lex);
    return fio_exists(lex) && fio_exists("/usr/share/games/fortunes/fortunes");
}

#define NEED_DEMO()                                                                                                    \
    do {                                                                                                               \
        if (!have_demo_inputs())                                                                                       \
            cr_skip_test("needs AFINN-165 (tools/get_afinn.sh) and the fortunes package (tools/setup_deps.sh)");       \
    } while (0)

/* run `rlhf args`; its exit status, stderr into *err (caller frees) */
static int run(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **err, const char *fmt, ...)
{
    char args[16384], *out, *e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const int rc = tu_run(args, NULL, &out, &e);
    free(out);
    if (err) *err = e;
    else free(e);
    return rc;
}

static json_t *load(const char *dir, const char *name)
{
    char p[4096];
    json_error_t je;
    json_t *j = json_load_file(fio_join(p, sizeof p, dir, name), 0, &je);
    cr_assert(j, "%s: %s", p, je.text);
    return j;
}

/* the results table of a report.md: from its header line to the first blank line (caller frees) */
static char *results_table(const char *dir)
{
    size_t n;
    char *md = tu_read(dir, "report.md", &n);
    char *a = strstr(md, "| model | method |");
    cr_assert(a, "%s/report.md has no results table", dir);
    char *b = strstr(a, "\n\n");
    cr_assert(b);
    char *t = strndup(a, (size_t)(b - a));
    free(md);
    return t;
}

/* every figure report.md links exists; returns how many */
static int check_figures(const char *dir)
{
    size_t n;
    char *md = tu_read(dir, "report.md", &n);
    int k = 0;
    for (char *p = strstr(md, "](figures/"); p; p = strstr(p + 1, "](figures/")) {
        char rel[512], path[4096];
        const size_t len = strcspn(p + 2, ")");
        snprintf(rel, sizeof rel, "%.*s", (int)len, p + 2);
        cr_assert(fio_exists(fio_join(path, sizeof path, dir, rel)), "report.md links %s, which is missing", rel);
        k++;
    }
    free(md);
    return k;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* `rlhf compare` of the quick demo's seven models in d with its evaluation settings, into out */
static int compare_demo(const char *d, const char *out, char **err)
{
    json_t *res = load(d, "eval/results.json");
    const char *seed = json_string_value(json_object_get(res, "sampling_seed"));
    cr_assert(seed, "results.json has no sampling_seed");
    const int rc =
        run(err,
            "compare '%s/sft' '%s/ppo-kl0.01' '%s/ppo-t4' '%s/dpo-b0.1' '%s/dpo-b0.5' '%s/grpo-b0.05' '%s/rloo-b0.1' "
            "--prompts '%s/corpus/prompts_heldout.jsonl' --rm '%s/rm/model' --out '%s' --hack-word '%s' --n-prompts %lld "
            "--max-new-tokens %lld --max-prompt-len %lld --batch %lld --temperature %.17g --seed %s --threads 1",
            d, d, d, d, d, d, d, d, d, out, json_string_value(json_object_get(res, "hack_word")), (long long)json_integer_value(json_object_get(res, "prompts")),
            (long long)json_integer_value(json_object_get(res, "max_new_tokens")),
            (long long)json_integer_value(json_object_get(res, "max_prompt_len")),
            (long long)json_integer_value(json_object_get(res, "batch")),
            json_number_value(json_object_get(res, "temperature")), seed);
    json_decref(res);
    return rc;
}

Test(compare, reproduces_the_demo_table_and_caches, .timeout = 300)
{
    NEED_DEMO();
    const char *d = tu_tmpdir("cmp-demo"), *c = tu_tmpdir("cmp-out");
    char *err;
    cr_assert_eq(run(&err, "demo --quick --threads 1 --seed 5 --out '%s'", d), 0, "%s", err);
    free(err);
    cr_assert_eq(compare_demo(d, c, &err), 0, "%s", err);
    free(err);
    char *ta = results_table(d), *tb = results_table(c);
    cr_assert_str_eq(tb, ta, "compare's table differs from the demo's");
    free(ta);
    free(tb);
    json_t *a = load(d, "report.json"), *b = load(c, "report.json");
    cr_assert(json_equal(json_object_get(a, "models"), json_object_get(b, "models")));
    cr_assert(json_equal(json_object_get(a, "best"), json_object_get(b, "best")));
    json_decref(a);
    json_decref(b);
    cr_assert_geq(check_figures(c), 5);
    /* the same settings again: every evaluation is found done */
    cr_assert_eq(compare_demo(d, c, &err), 0, "%s", err);
    cr_assert_eq(count(err, "cached evaluation"), 7, "%s", err);
    free(err);
    /* a run folder without a trainer's state says so in one line */
    char p[4096];
    snprintf(p, sizeof p, "%s/ppo-t4/trainer_state.json", d);
    cr_assert_eq(remove(p), 0);
    cr_assert_neq(compare_demo(d, c, &err), 0);
    cr_assert(strstr(err, "ppo-t4") && strstr(err, "trainer_state.json") && tu_lines(err) == 1, "%s", err);
    free(err);
    char rm[8400];
    snprintf(rm, sizeof rm, "rm -rf '%s' '%s'", d, c);
    cr_assert_eq(system(rm), 0);
}

Test(compare, runs_trained_by_hand, .timeout = 300)
{
    NEED_DEMO();
    const char *d = tu_tmpdir("cmp-hand-demo"), *h = tu_tmpdir("cmp-hand");
    char *err, dpo[4200], grpo[4200], out[4200];
    snprintf(dpo, sizeof dpo, "%s/my-dpo", h);
    snprintf(grpo, sizeof grpo, "%s/my-grpo", h);
    snprintf(out, sizeof out, "%s/report", h);
    cr_assert_eq(run(&err, "demo --quick --threads 1 --seed 6 --out '%s'", d), 0, "%s", err);
    free(err);
    cr_assert_eq(run(&err, "dpo --model '%s/sft/model' --tokenizer '%s/sft/model' --data '%s/prefs/prefs_train.jsonl' --out '%s' "
                           "--steps 3 --batch 4 --beta 0.3 --threads 1",
                     d, d, d, dpo),
                 0, "%s", err);
    free(err);
    cr_assert_eq(run(&err, "grpo --policy '%s/sft/model' --reward judge --prompts '%s/corpus/prompts_train.jsonl' --tokenizer "
                           "'%s/sft/model' --out '%s' --steps 2 --batch 4 --num-generations 4 --max-new-tokens 12 --threads 1",
                     d, d, d, grpo),
                 0, "%s", err);
    free(err);
    cr_assert_eq(run(&err, "compare '%s' '%s' --ref 'sft=%s/sft/model' --prompts '%s/corpus/prompts_heldout.jsonl' --out '%s' "
                           "--n-prompts 16 --max-new-tokens 12 --threads 1",
                     dpo, grpo, d, d, out),
                 0, "%s", err);
    free(err);
    json_t *r = load(out, "report.json");
    json_t *m = json_object_get(r, "models");
    cr_assert_eq(json_object_size(m), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "my-dpo"), "family")), "dpo");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "my-grpo"), "family")), "grpo");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "sft"), "family")), "model");
    json_decref(r);
    /* the frontier and each run's training curves, all linked and present */
    cr_assert_geq(check_figures(out), 4);
    size_t n;
    char *md = tu_read(out, "report.md", &n);
    cr_assert(strstr(md, "figures/frontier.png") && strstr(md, "figures/dpo_margins.png") && strstr(md, "figures/grpo_reward.png"));
    cr_assert(strstr(md, "## Samples") && strstr(md, "\"family\":\"dpo\""));
    free(md);
    char rm[8400];
    snprintf(rm, sizeof rm, "rm -rf '%s' '%s'", d, h);
    cr_assert_eq(system(rm), 0);
}

/* P(|T| < t) for Student's t with df degrees of freedom, by Simpson's rule on its density */
static double t_mass(double t, int df)
{
    const int n = 20000;
    const double c = exp(lgamma((df + 1) / 2.0) - lgamma(df / 2.0)) / sqrt(df * M_PI), h = t / n;
    double s = 0;
    for (int i = 0; i <= n; i++) {
        const double x = i * h, f = c * pow(1 + x * x / df, -(df + 1) / 2.0);
        s += (i == 0 || i == n ? 1 : i % 2 ? 4 : 2) * f;
    }
    return 2 * s * h / 3;
}

Test(seeds, t_quantiles_and_paired_comparison)
{
    const int dfs[] = {1, 2, 3, 5, 10, 29, 30, 31, 40, 100};
    for (size_t i = 0; i < sizeof dfs / sizeof *dfs; i++) {
        const double t = seedstats_t975(dfs[i]);
        cr_assert_float_eq(t_mass(t, dfs[i]), 0.95, dfs[i] > 30 ? 2e-5 : 2e-7, "df %d: t %.9f", dfs[i], t);
    }
    cr_assert(isnan(seedstats_t975(0)));
    /* three seeds by hand: mean 0.2, sd 0.1, half-width 4.30265273 * 0.1 / sqrt(3) */
    const double x[3] = {0.1, 0.2, 0.3};
    const seedstats_interval ci = seedstats_mean_ci(x, 3);
    cr_assert_float_eq(ci.mean, 0.2, 1e-12);
    cr_assert_float_eq(ci.sd, 0.1, 1e-12);
    cr_assert_float_eq(ci.hi - ci.mean, 4.30265273 * 0.1 / sqrt(3.0), 1e-8);
    cr_assert(isnan(seedstats_mean_ci(x, 1).lo), "one seed has no interval");
    /* a beats b on two seeds of three by a consistent margin: significant; a noisy one is not */
    const double a[3] = {0.5, 0.6, 0.7}, b[3] = {0.4, 0.5, 0.61}, c[3] = {0.2, 0.9, 0.1};
    const seedstats_paired p = seedstats_compare(a, b, 3), q = seedstats_compare(a, c, 3);
    cr_assert_eq(p.n, 3);
    cr_assert_eq(p.wins, 3);
    cr_assert_float_eq(p.diff.mean, (0.1 + 0.1 + 0.09) / 3, 1e-12);
    cr_assert(p.significant);
    cr_assert_eq(q.wins, 2);
    cr_assert(!q.significant);
    const double nan_b[3] = {0.4, NAN, 0.61};
    cr_assert_eq(seedstats_compare(a, nan_b, 3).n, 2, "a seed one method lacks is left out");
}

Test(seeds, demo_three_seeds_aggregated_and_reproducible, .timeout = 600)
{
    NEED_DEMO();
    const char *a = tu_tmpdir("seeds-a"), *b = tu_tmpdir("seeds-b"), *one = tu_tmpdir("seeds-one");
    char *err;
    cr_assert_eq(run(&err, "demo --quick --threads 1 --seeds 1,2,3 --out '%s'", a), 0, "%s", err);
    free(err);
    json_t *r = load(a, "report.json");
    cr_assert_eq(json_array_size(json_object_get(r, "seeds")), 3);
    const char *k;
    json_t *m;
    int nm = 0;
    json_object_foreach(json_object_get(r, "methods"), k, m)
    {
        nm++;
        cr_assert_eq(json_integer_value(json_object_get(m, "seeds")), 3, "%s", k);
        const json_t *ci = json_object_get(m, "gain_ci95"), *g = json_object_get(m, "gains");
        cr_assert(json_array_size(ci) == 2 && json_array_size(g) == 3, "%s: no interval", k);
        const double mean = json_number_value(json_object_get(m, "gain_mean"));
        double s = 0;
        for (int i = 0; i < 3; i++) s += json_number_value(json_array_get(g, (size_t)i)) / 3;
        cr_assert_float_eq(mean, s, 1e-5, "%s: mean gain %g, per-seed mean %g", k, mean, s);
        cr_assert_leq(json_number_value(json_array_get(ci, 0)), mean + 1e-6);
        cr_assert_geq(json_number_value(json_array_get(ci, 1)), mean - 1e-6);
    }
    cr_assert_eq(nm, 6, "the quick demo's 2 PPO, 2 DPO, 1 GRPO and 1 RLOO runs");
    const json_t *c = json_array_get(json_object_get(r, "comparisons"), 0);
    cr_assert(c && strstr(json_string_value(json_object_get(c, "text")), "of 3 seeds; mean difference"),
              "no comparison in words");
    json_decref(r);
    size_t n;
    char *md = tu_read(a, "report.md", &n);
    cr_assert(strstr(md, "95% t-interval") && strstr(md, "figures/frontier.png") && strstr(md, "seed-2/report.md"));
    free(md);
    /* the corpus and tokenizer once, in the top folder; seed 1 equals a demo of seed 1 alone */
    char p[4200];
    cr_assert(fio_exists(fio_join(p, sizeof p, a, "corpus/stage.json")) && !fio_exists(fio_join(p, sizeof p, a, "seed-1/corpus")));
    cr_assert_eq(run(&err, "demo --quick --threads 1 --seed 1 --out '%s'", one), 0, "%s", err);
    free(err);
    snprintf(p, sizeof p, "%s/seed-1", a);
    tu_same_file(p, one, "report.json");
    /* the same seeds in a fresh folder: the same report.json, byte for byte */
    cr_assert_eq(run(&err, "demo --quick --threads 1 --seeds 1,2,3 --out '%s'", b), 0, "%s", err);
    free(err);
    tu_same_file(a, b, "report.json");
    /* rlhf compare over the three seeds' runs: one replicate per seed (the demo seed in each stage.json),
     * each against its own sft, aggregated by name */
    char args[8192], out[4200];
    size_t at = 0;
    static const char *const names[] = {"sft", "ppo-kl0.01", "ppo-t4", "dpo-b0.1", "dpo-b0.5", "grpo-b0.05", "rloo-b0.1"};
    for (int s = 1; s <= 3; s++)
        for (int i = 0; i < 7; i++) at += (size_t)snprintf(args + at, sizeof args - at, " '%s/seed-%d/%s'", a, s, names[i]);
    snprintf(out, sizeof out, "%s/cmp", b);
    cr_assert_eq(run(&err, "compare%s --prompts '%s/corpus/prompts_heldout.jsonl' --out '%s' --n-prompts 8 --max-new-tokens 12 "
                           "--threads 1",
                     args, a, out),
                 0, "%s", err);
    free(err);
    r = load(out, "report.json");
    cr_assert_eq(json_object_size(json_object_get(r, "methods")), 6);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(json_object_get(r, "methods"), "dpo-b0.5"), "seeds")), 3);
    json_decref(r);
    cr_assert(fio_exists(fio_join(p, sizeof p, out, "seed-3/report.md")));
    cr_assert_neq(run(&err, "demo --quick --seeds 1,x --out '%s'", b), 0);
    cr_assert(strstr(err, "--seeds") && tu_lines(err) == 1, "%s", err);
    free(err);
    char rm[13000];
    snprintf(rm, sizeof rm, "rm -rf '%s' '%s' '%s'", a, b, one);
    cr_assert_eq(system(rm), 0);
}

Test(plot, runs_on_shared_axes_and_errors, .timeout = 300)
{
    NEED_DEMO();
    const char *d = tu_tmpdir("plot-demo"), *o = tu_tmpdir("plot-out");
    char *err;
    cr_assert_eq(run(&err, "demo --quick --threads 1 --seed 8 --out '%s'", d), 0, "%s", err);
    free(err);
    /* default metrics of the PPO family, both runs on each figure */
    cr_assert_eq(run(&err, "plot '%s/ppo-kl0.01' 'b=%s/ppo-t4' --out '%s'", d, d, o), 0, "%s", err);
    free(err);
    char p[4200];
    cr_assert(fio_exists(fio_join(p, sizeof p, o, "objective_scores.png")));
    cr_assert(fio_exists(fio_join(p, sizeof p, o, "policy_entropy.png")));
    size_t n;
    char *md = tu_read(o, "plots.md", &n);
    cr_assert(strstr(md, "- b: ") && strstr(md, "(family ppo)") && strstr(md, "](objective_kl.png)"), "%s", md);
    free(md);
    /* chosen metrics across families */
    cr_assert_eq(run(&err, "plot '%s/ppo-t4' '%s/dpo-b0.1' --metrics loss/policy,learning_rate --out '%s/x'", d, d, o), 0,
                 "%s", err);
    free(err);
    snprintf(p, sizeof p, "%s/x/loss_policy.png", o);
    cr_assert(fio_exists(p));
    /* an unknown metric: one line naming it and what the run has, nothing written */
    cr_assert_neq(run(&err, "plot '%s/dpo-b0.1' --metrics rewards/margins,nope --out '%s/y'", d, o), 0);
    cr_assert(strstr(err, "unknown metric 'nope'") && strstr(err, "rewards/margins") && tu_lines(err) == 1, "%s", err);
    free(err);
    snprintf(p, sizeof p, "%s/y", o);
    cr_assert(!fio_exists(p), "nothing is written for a bad metric");
    cr_assert_neq(run(&err, "plot '%s/missing' --out '%s/z'", d, o), 0);
    cr_assert(strstr(err, "missing/metrics.jsonl") && tu_lines(err) == 1, "%s", err);
    free(err);
    char rm[8400];
    snprintf(rm, sizeof rm, "rm -rf '%s' '%s'", d, o);
    cr_assert_eq(system(rm), 0);
}
