/* rl_cli.h — what the RL subcommands (ppo, grpo, rloo) share on the command line: the options of
 * rl_opts (rlhf/rl.h) — models, prompts, rewards, rollout, importance sampling, mini-batches —
 * declared once and bound to the struct, and their conversion after parsing (lists and choices). */
#ifndef RLHF_RL_CLI_H
#define RLHF_RL_CLI_H

#include "cli.h"
#include "rl.h"
#include "train_progress.h"

/* what the table binds that rl_opts holds in another form */
typedef struct {
    cli_list reward, weights;  /* --reward SPEC..., --reward-weights W... (text) */
    double w[REWARD_MAX];
    int is_mode, rollout_weights, nostop;
    cli_enum is_enum, w_enum;
} rl_cli;

/* Append the shared options, bound to o and st, to opts at *k (cli_opts_add). */
void rl_cli_opts(rl_opts *o, rl_cli *st, cli_opt *opts, size_t *k);

/* Append the options of the group methods (GRPO, RLOO): --num-generations, --num-iterations,
 * --epsilon, --epsilon-high, --mask-truncated-completions. */
void rl_cli_group_opts(rl_opts *o, cli_opt *opts, size_t *k);

/* After parsing: the reward lists, the weights and the choices into o (one line and exit(1) for a
 * weight that is not a number). */
void rl_cli_finish(const char *cmd, rl_opts *o, rl_cli *st);

/* the lists the parser made */
void rl_cli_free(rl_cli *st);

/* --reward-weights as numbers into out (at most REWARD_MAX; one line and exit(1) otherwise) */
void rl_cli_weights(const char *cmd, const cli_list *w, double *out);

/* The whole parse of an RL subcommand: the shared options, the method's own (own, NULL-terminated;
 * with_group: also rl_cli_group_opts), the training ones (train_cli_parse), then rl_cli_finish;
 * exits with one line when no reward is given (has_reward: the method has one of its own). */
void rl_cli_parse(const char *cmd, const char *summary, int argc, char **argv, const cli_opt *own, int with_group,
                  rl_opts *o, rl_cli *st, trainer_run *r, trainer_optim *opt, const char *batch_help, int has_reward,
                  train_progress *prog, const char *const *show);

#endif
