/* cmd_rloo.c — `rlhf rloo`: RLOO with TRL's RLOOTrainer semantics (rlhf/rloo.h): k completions per
 * prompt, the KL folded into the sequence reward, a leave-one-out baseline, a sequence-level clipped
 * update. A thin wrapper: options bound to rloo_opts (the shared RL ones through tools/rl_cli.h). */
#include "cli.h"
#include "commands.h"
#include "rl_cli.h"
#include "rloo.h"

#include <stdio.h>

int cmd_rloo(int argc, char **argv)
{
    rloo_opts o = rloo_defaults();
    rl_cli rc = {0};
    const cli_opt own[] = {
        {"--beta", OPT_DOUBLE, &o.beta, "B", "KL to the reference, subtracted from the sequence reward (0: no reference)", 0},
        {"--normalize-advantages", OPT_FLAG, &o.normalize_advantages, NULL, "whiten the advantages over the batch", 0},
        {0}};
    static const char *const show[] = {"reward", "kl", NULL};
    train_progress prog;
    rl_cli_parse("rloo", "RLOO: REINFORCE with a leave-one-out baseline over k completions per prompt (or --resume).",
                 argc, argv, own, 1, &o.rl, &rc, &o.run, &o.optim, "prompts per step (each with K completions)", 0, &prog,
                 show);
    char err[1024];
    rl_result r;
    if (rloo_run(&o, &r, err, sizeof err)) cli_die("rloo", "%s", err);
    char extra[512];
    snprintf(extra, sizeof extra, "%ld steps (%s) on %zu prompts: reward %.4f, KL %.4f -> %s/model", r.steps,
             r.resumed_from ? "resumed" : "from the start", r.n_prompts, r.last.reward, r.last.kl, o.run.out);
    cli_progress_done(&prog.bar, extra);
    rl_cli_free(&rc);
    return 0;
}
