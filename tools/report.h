/* report.h — the demo's report, built from a finished demo folder (rlhf/demo.h) alone, so it can be
 * rebuilt at any time without rerunning anything:
 *   report.json     {"models": {"<name>": {"gold_reward", "rm_reward", "kl", "distinct2", ...}}, ...}
 *                   from eval/results.json and the stage summaries; no timings and no paths of the
 *                   output folder, so the same seed gives the same bytes
 *   samples.jsonl   {"model", "prompt", "completion"} for every held-out sample of every model
 *   report.md       settings, the results table, wall time per stage, reward-model accuracy, label
 *                   noise, figures and samples side by side
 *   figures/NAME.png gnuplot (tools/plot.h): the gold-reward-vs-KL frontier of every PPO and DPO run,
 *                   PPO curves (score, KL, entropy), DPO curves (margins, accuracy), reward-model
 *                   accuracy, and gold vs reward-model score along PPO training
 * Every file is written whole or not at all. */
#ifndef RLHF_REPORT_H
#define RLHF_REPORT_H

#include <stddef.h>

/* Write the report into dir (a finished demo folder). Figures that gnuplot cannot draw are left out
 * of report.md with a note; *plot_err (may be NULL) then gets gnuplot's first error (else ""). */
int report_write(const char *dir, char *plot_err, size_t plot_errlen, char *err, size_t errlen);

#endif
