/* cmd_grpo.c — `rlhf grpo`: GRPO with TRL's GRPOTrainer semantics (rlhf/grpo.h): G completions per
 * prompt, group-normalised advantages, the DAPO loss by default, no value function. A thin wrapper:
 * options bound to grpo_opts (the shared RL ones through tools/rl_cli.h), a progress bar, a summary. */
#include "cli.h"
#include "commands.h"
#include "grpo.h"
#include "rl_cli.h"

#include <stdio.h>

int cmd_grpo(int argc, char **argv)
{
    grpo_opts o = grpo_defaults();
    rl_cli rc = {0};
    int scale = (int)o.scale_rewards, loss = (int)o.loss_type;
    cli_enum scale_e = {&scale, grpo_scale_names}, loss_e = {&loss, grpo_loss_names};
    const cli_opt own[] = {
        {"--loss-type", OPT_ENUM, &loss_e, NULL, "how token losses add up (rlhf/grpo.h)", 0},
        {"--scale-rewards", OPT_ENUM, &scale_e, NULL, "divide advantages by the group's or the batch's std, or not", 0},
        {"--beta", OPT_DOUBLE, &o.beta, "B", "k3 KL to the reference in the loss (0: no reference loaded)", 0},
        {0}};
    static const char *const show[] = {"reward", "reward_std", "kl", NULL};
    train_progress prog;
    rl_cli_parse("grpo", "GRPO: group-relative advantages over G completions per prompt, no value function (or --resume).",
                 argc, argv, own, 1, &o.rl, &rc, &o.run, &o.optim, "prompts per step (each with G completions)", 0, &prog,
                 show);
    o.scale_rewards = (grpo_scale)scale;
    o.loss_type = (grpo_loss)loss;
    char err[1024];
    rl_result r;
    if (grpo_run(&o, &r, err, sizeof err)) cli_die("grpo", "%s", err);
    char extra[512];
    snprintf(extra, sizeof extra, "%ld steps (%s) on %zu prompts: reward %.4f (std %.4f), entropy %.3f -> %s/model", r.steps,
             r.resumed_from ? "resumed" : "from the start", r.n_prompts, r.last.reward, r.last.reward_std, r.last.entropy,
             o.run.out);
    cli_progress_done(&prog.bar, extra);
    rl_cli_free(&rc);
    return 0;
}
