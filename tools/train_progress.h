/* train_progress.h — the progress bar every training subcommand shows (sft, rm, dpo, ppo): one
 * callback for rlhf/trainer.h's on_step that draws cli_progress with the ETA of this process's
 * steps (a resumed run counts from where it resumed) and a few chosen metrics. */
#ifndef RLHF_TRAIN_PROGRESS_H
#define RLHF_TRAIN_PROGRESS_H

#include "cli.h"
#include "trainer.h"

typedef struct {
    cli_progress bar;
    const char *const *show; /* metric names to print, NULL-terminated ("loss", "eval_loss", ...) */
} train_progress;

void train_progress_start(train_progress *p, const char *label, const char *const *show);
/* trainer_opts.on_step; ud is a train_progress */
void train_progress_on_step(void *ud, const trainer_progress *s);

#endif
