/* cmd_ppo.c — `rlhf ppo`: per-token PPO of a GPT-2 policy against a reward model, with a KL penalty
 * to a frozen reference and a value head (rlhf/ppo_lm.h). A thin wrapper: options bound to
 * ppo_lm_opts, progress bar with the main objectives and a summary out. */
#include "cli.h"
#include "commands.h"
#include "ppo_lm.h"
#include "train_progress.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int cmd_ppo(int argc, char **argv)
{
    ppo_lm_opts o = ppo_lm_defaults();
    ppo_lm_hparams *h = &o.h;
    float penalty = NAN, replace = NAN;
    int nostop = 0, bf16 = 0;
    const cli_opt own[] = {
        {"--policy", OPT_STR, &o.policy, "DIR", "Hugging Face GPT-2 folder to start from (the SFT model)", 1},
        {"--ref", OPT_STR, &o.ref, "DIR", "frozen reference (default: the --policy folder)", 0},
        {"--rm", OPT_STR, &o.rm, "DIR", "reward-model folder (`rlhf rm`)", 1},
        {"--value-model", OPT_STR, &o.value_model, "DIR",
         "train a separate value model started from this reward-model folder (default: a zero value head on the policy)", 0},
        {"--prompts", OPT_STR, &o.prompts, "FILE", "prompt-only JSONL: {\"prompt\"} per line", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--minibatch", OPT_INT, &h->minibatch, "M", "rows per optimizer step (0: the whole batch)", 0},
        {"--ppo-epochs", OPT_INT, &h->ppo_epochs, "N", "passes over each rollout", 0},
        {"--temperature", OPT_FLOAT, &h->temperature, "T", "sampling temperature (log-probs are taken at it)", 0},
        {"--max-new-tokens", OPT_INT, &h->max_new_tokens, "N", "completion tokens at most", 0},
        {"--max-prompt-len", OPT_INT, &o.max_prompt_len, "N", "prompt tokens kept, from the end (0: as many as fit)", 0},
        {"--no-stop", OPT_FLAG, &nostop, NULL, "do not stop completions at <|endoftext|>", 0},
        {"--missing-eos-penalty", OPT_FLOAT, &penalty, "X", "subtract X from the score of a completion without EOS (TRL)", 0},
        {"--missing-eos-score", OPT_FLOAT, &replace, "X",
         "replace the score of a completion without EOS by X (lm-human-preferences)", 0},
        {"--kl-coef", OPT_DOUBLE, &h->kl_coef, "B", "KL penalty β (the initial one with --target-kl)", 0},
        {"--target-kl", OPT_DOUBLE, &h->target_kl, "K", "adapt β towards this sequence KL (Ziegler et al.; 0: fixed β)", 0},
        {"--kl-horizon", OPT_DOUBLE, &h->kl_horizon, "H", "horizon of the adaptive KL controller", 0},
        {"--whiten-rewards", OPT_FLAG, &h->whiten_rewards, NULL, "whiten the per-token rewards (mean kept)", 0},
        {"--gamma", OPT_FLOAT, &h->gamma, "X", "discount", 0},
        {"--lambda", OPT_FLOAT, &h->lambda, "X", "GAE λ", 0},
        {"--cliprange", OPT_FLOAT, &h->cliprange, "X", "policy ratio clip", 0},
        {"--cliprange-value", OPT_FLOAT, &h->cliprange_value, "X", "value clip (0: unclipped value loss)", 0},
        {"--vf-coef", OPT_FLOAT, &h->vf_coef, "X", "value loss coefficient", 0},
        {"--sample-bf16", OPT_FLAG, &bf16, NULL, "decode with bf16 weights (~2x faster sampling)", 0},
        {0}};
    static const char *const show[] = {"objective/scores", "objective/kl", "objective/kl_coef", NULL};
    train_progress prog;
    train_cli_parse("ppo", "Per-token PPO against a reward model with a KL penalty to a reference (or continue with --resume).",
                    argc, argv, own, &o.run, &o.optim, "prompts (completions) per iteration", 0, &prog, show);
    if (!isnan(penalty) && !isnan(replace)) cli_die("ppo", "give --missing-eos-penalty or --missing-eos-score, not both");
    h->eos_mode = !isnan(penalty) ? PPO_LM_EOS_SUBTRACT : !isnan(replace) ? PPO_LM_EOS_REPLACE : PPO_LM_EOS_OFF;
    h->eos_penalty = !isnan(penalty) ? penalty : !isnan(replace) ? replace : 0;
    o.stop_at_eos = !nostop;
    h->sample_weights = bf16 ? GPT2_W_BF16 : GPT2_W_F32;
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
    return 0;
}
