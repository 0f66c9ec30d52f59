/* cmd_ppo.c — `rlhf ppo`: per-token PPO of a GPT-2 policy against a reward (a reward model, or any
 * --reward source), with a KL penalty to a frozen reference and a value head (rlhf/ppo_lm.h). A
 * thin wrapper: options bound to ppo_lm_opts (the shared RL ones through tools/rl_cli.h), progress
 * bar with the main objectives and a summary out. */
#include "cli.h"
#include "commands.h"
#include "ppo_lm.h"
#include "rl_cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int cmd_ppo(int argc, char **argv)
{
    ppo_lm_opts o = ppo_lm_defaults();
    ppo_lm_hparams *h = &o.h;
    float penalty = NAN, replace = NAN;
    rl_cli rc = {0};
    const cli_opt own[] = {
        {"--rm", OPT_STR, &o.rm, "DIR", "reward-model folder (`rlhf rm`): the reward unless --reward is given", 0},
        {"--value-model", OPT_STR, &o.value_model, "DIR",
         "train a separate value model started from this reward-model folder (default: a zero value head on the policy)", 0},
        {"--ppo-epochs", OPT_INT, &o.rl.epochs, "N", "passes over each rollout", 0},
        {"--cliprange", OPT_FLOAT, &o.rl.epsilon, "X", "policy ratio clip", 0},
        {"--missing-eos-penalty", OPT_FLOAT, &penalty, "X", "subtract X from the score of a completion without EOS (TRL)", 0},
        {"--missing-eos-score", OPT_FLOAT, &replace, "X",
         "replace the score of a completion without EOS by X (lm-human-preferences)", 0},
        {"--kl-coef", OPT_DOUBLE, &h->kl_coef, "B", "KL penalty β (the initial one with --target-kl)", 0},
        {"--target-kl", OPT_DOUBLE, &h->target_kl, "K", "adapt β towards this sequence KL (Ziegler et al.; 0: fixed β)", 0},
        {"--kl-horizon", OPT_DOUBLE, &h->kl_horizon, "H", "horizon of the adaptive KL controller", 0},
        {"--whiten-rewards", OPT_FLAG, &h->whiten_rewards, NULL, "whiten the per-token rewards (mean kept)", 0},
        {"--gamma", OPT_FLOAT, &h->gamma, "X", "discount", 0},
        {"--lambda", OPT_FLOAT, &h->lambda, "X", "GAE λ", 0},
        {"--cliprange-value", OPT_FLOAT, &h->cliprange_value, "X", "value clip (0: unclipped value loss)", 0},
        {"--vf-coef", OPT_FLOAT, &h->vf_coef, "X", "value loss coefficient", 0},
        {0}};
    static const char *const show[] = {"objective/scores", "objective/kl", "objective/kl_coef", NULL};
    train_progress prog;
    rl_cli_parse("ppo", "Per-token PPO against a reward with a KL penalty to a reference (or continue with --resume).",
                 argc, argv, own, 0, &o.rl, &rc, &o.run, &o.optim, "prompts (completions) per iteration", 1,
                 &prog, show);
    cli_model_path("ppo", "--rm", &o.rm);
    cli_model_path("ppo", "--value-model", &o.value_model);
    if (!o.rm && !o.rl.n_reward) cli_die("ppo", "give a reward: --rm DIR or --reward SPEC...");
    if (o.rm && o.rl.n_reward) cli_die("ppo", "give --rm or --reward, not both (--reward rm:DIR adds a reward model)");
    if (!isnan(penalty) && !isnan(replace)) cli_die("ppo", "give --missing-eos-penalty or --missing-eos-score, not both");
    h->eos_mode = !isnan(penalty) ? PPO_LM_EOS_SUBTRACT : !isnan(replace) ? PPO_LM_EOS_REPLACE : PPO_LM_EOS_OFF;
    h->eos_penalty = !isnan(penalty) ? penalty : !isnan(replace) ? replace : 0;
    char err[1024];
    ppo_lm_result r;
    if (ppo_lm_run(&o, &r, err, sizeof err)) cli_die("ppo", "%s", err);
    char extra[512];
    snprintf(extra, sizeof extra,
             "%ld iterations (%s) on %zu prompts: score %.4f, KL %.4f, β %.4g; last iteration rollout %.2f s, scoring "
             "%.2f s, update %.2f s -> %s/model",
             r.steps, r.resumed_from ? "resumed" : "from the start", r.n_prompts, r.last.scores, r.last.kl, r.last.kl_coef,
             r.last.t_rollout, r.last.t_scoring, r.last.t_update, o.run.out);
    cli_progress_done(&prog.bar, extra);
    rl_cli_free(&rc);
    return 0;
}
