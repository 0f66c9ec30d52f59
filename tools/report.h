/* report.h — the comparison report, built from files alone (so it can be rebuilt at any time
 * without rerunning anything). `rlhf demo` and `rlhf compare` both write it with report_build; the
 * demo's folder is one case (report_write).
 *   report.json     {"models": {"<name>": {"family", "gold_reward", "rm_reward", "kl", "distinct2", ...}},
 *                   "best": {"<family>": "<name>"}, "eval": {...}, and from a demo's pipeline
 *                   "reward_model" and "labels"}: results.json (rlhf/compare.h) and the stage summaries;
 *                   no timings and no paths, so the same runs give the same bytes
 *   samples.jsonl   {"model", "prompt", "completion"} for every held-out sample of every model
 *   report.md       the results table (gain over the reference, the first model, with its 95%
 *                   interval), the best run of each family, figures, wall time per stage (stages that
 *                   have a stage.json), reward-model accuracy and label noise (a demo's pipeline),
 *                   samples side by side, settings
 *   figures/NAME.png gnuplot (tools/plot.h): the gold-reward-vs-KL frontier (one line per family),
 *                   each family's training curves from each run's metrics.jsonl (tools/family.h),
 *                   gold vs reward-model score along training (runs with a gold.jsonl) and the
 *                   reward model's accuracy (a demo's pipeline)
 * Every file is written whole or not at all. A run's method is its "family" in results.json, never
 * read from its name. */
#ifndef RLHF_REPORT_H
#define RLHF_REPORT_H

#include <jansson.h>
#include <stddef.h>

/* a model's training folder: metrics.jsonl, gold.jsonl, stage.json (dir NULL: none, no curves) */
typedef struct {
    const char *name;
    const char *dir;
} report_run;

typedef struct {
    const char *out;             /* report.md, report.json, samples.jsonl, figures/ */
    const char *eval;            /* compare_evaluate's folder: results.json and <model>/samples.jsonl */
    const char *pipeline;        /* a demo folder (its corpus ... rm stages); NULL: a comparison of runs */
    const report_run *runs;      /* training folders by model name */
    int n_runs;
} report_input;

/* Write the report. Figures that gnuplot cannot draw are left out of report.md with a note;
 * *plot_err (may be NULL) then gets gnuplot's first error (else ""). */
int report_build(const report_input *in, char *plot_err, size_t plot_errlen, char *err, size_t errlen);

/* The report of a finished demo folder: report_build with its eval stage, its pipeline and its runs
 * (dir/<model>). */
int report_write(const char *dir, char *plot_err, size_t plot_errlen, char *err, size_t errlen);

/* the training folders of a demo folder's models (dir/<model>, in results.json's order) */
typedef struct {
    report_run *v;
    int n;
    char (*dirs)[4096];
} report_runs;

int report_demo_runs(const char *dir, report_runs *r, char *err, size_t errlen);
void report_runs_free(report_runs *r);

/* ---- several seeds ------------------------------------------------------------------------------
 * One replicate per seed: its own evaluation (results.json: its reference first, then its models)
 * and its own report. report_seeds_build aggregates them by model name (one method, one run per
 * seed) into out:
 *   report.json   {"seeds", "reference", "eval", "methods": {"<name>": {"family", "label", "seeds",
 *                 "gains", "gain_mean", "gain_sd", "gain_ci95" (Student t over seeds, rlhf/seedstats.h),
 *                 "kls", "kl_mean", "golds", "gold_mean", "collapsed"}}, "best": {"<family>": "<name>"},
 *                 "comparisons": [{"a", "b", "seeds", "wins", "diff_mean", "diff_ci95", "significant",
 *                 "text"}]} — the best method of each family (highest mean gain among those that
 *                 collapsed on fewer than half of their seeds, else among all) against the best of
 *                 every other family, paired seed by seed; no paths and no timings
 *   report.md     the table across seeds, the comparisons in words, the frontier with every seed's
 *                 point and the means, links to each seed's own report
 *   figures/frontier.png */
typedef struct {
    unsigned long long seed;
    const char *eval;            /* its results.json's folder */
    const report_run *runs;      /* its models' training folders (their settings name the methods) */
    int n_runs;
    const char *report;          /* its report.md relative to out (a link); NULL: none */
} report_replicate;

int report_seeds_build(const char *out, const report_replicate *reps, int n, char *plot_err, size_t plot_errlen,
                       char *err, size_t errlen);

/* j as indented JSON (6 significant digits) and a newline, written atomically */
int report_json_write(const char *path, json_t *j, char *err, size_t errlen);

#endif
