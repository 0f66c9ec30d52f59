/* train_progress.h — what every training subcommand (pretrain, sft, rm, dpo, ppo) shares on the
 * command line: the options of trainer_run and trainer_optim (rlhf/trainer.h), declared once and
 * bound straight to the structs, and the progress bar: one callback for trainer_run.on_step that
 * draws cli_progress with the ETA of this process's steps (a resumed run counts from where it
 * resumed) and a few chosen metrics. */
#ifndef RLHF_TRAIN_PROGRESS_H
#define RLHF_TRAIN_PROGRESS_H

#include "cli.h"
#include "trainer.h"

typedef struct {
    cli_progress bar;
    const char *const *show; /* metric names to print, NULL-terminated ("loss", "eval_loss", ...) */
} train_progress;

void train_progress_start(train_progress *p, const char *label, const char *const *show);
/* trainer_run.on_step; ud is a train_progress */
void train_progress_on_step(void *ud, const trainer_progress *s);

/* Parse a training command's arguments: its own options (own, terminated by a NULL name) followed by
 * the shared ones bound to r and o (--out --resume --batch --accum --steps --epochs --lr --min-lr
 * --warmup --weight-decay --beta1 --beta2 --eps --grad-clip [--eval-every] --ckpt-every --keep --seed
 * --threads --stop-at; batch_help says what one batch element is; with_eval 0 leaves out
 * --eval-every for a trainer without evaluation). Then sets OpenMP's threads (cli_threads) and hooks
 * the progress bar (labelled cmd, showing `show`) into r. */
void train_cli_parse(const char *cmd, const char *summary, int argc, char **argv, const cli_opt *own, trainer_run *r,
                     trainer_optim *o, const char *batch_help, int with_eval, train_progress *prog,
                     const char *const *show);

#endif
