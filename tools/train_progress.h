/* train_progress.h — what every fine-tuning subcommand (sft, rm, dpo) shares on the command line:
 * the options of trainer_hparams (rlhf/trainer.h), declared once, and the progress bar: one
 * callback for trainer_opts.on_step that draws cli_progress with the ETA of this process's steps
 * (a resumed run counts from where it resumed) and a few chosen metrics. */
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

/* The options of trainer_hparams. cli_opt writes long and double; these hold the values until
 * train_cli_apply copies them into h. */
enum { TRAIN_CLI_NOPTS = 19 };
typedef struct {
    trainer_hparams *h;
    long batch, accum, max_prompt, max_completion, keep, seed, threads;
    double lr, min_lr, wd, b1, b2, clip;
} train_cli;

/* Append the TRAIN_CLI_NOPTS shared options to opts at *k (room needed), with h's values as the
 * defaults; batch_help says what one batch element is ("examples", "preference pairs"). */
void train_cli_options(train_cli *v, trainer_hparams *h, const char *batch_help, cli_opt *opts, size_t *k);
/* after cli_parse: the parsed values into v->h */
void train_cli_apply(const train_cli *v);

#endif
