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

#endif
