/* cmd_ppo.c — `rlhf ppo`: per-token PPO of a GPT-2 policy against a reward model, with a KL penalty
 * to a frozen reference and a value head (rlhf/ppo_lm.h). A thin wrapper: options in, progress bar
 * with the main objectives and a summary out. */
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
    long batch = o.batch, minibatch = h->minibatch, accum = h->accum, epochs = h->epochs, maxnew = h->max_new_tokens;
    long maxprompt = o.max_prompt_len, keep = o.keep_last, seed = (long)h->seed, threads = 0, warmup = h->warmup;
    double temp = h->temperature, gamma = h->gamma, lambda = h->lambda, clip = h->cliprange, vclip = h->cliprange_value;
    double vf = h->vf_coef, lr = h->lr, min_lr = h->min_lr, wd = h->weight_decay, gclip = h->grad_clip, b1 = h->beta1,
           b2 = h->beta2, penalty = NAN, replace = NAN;
    int nostop = 0, bf16 = 0;
    const cli_opt opts[] = {
        {"--policy", OPT_STR, &o.policy, "DIR", "Hugging Face GPT-2 folder to start from (the SFT model)", 1},
        {"--ref", OPT_STR, &o.ref, "DIR", "frozen reference (default: the --policy folder)", 0},
        {"--rm", OPT_STR, &o.rm, "DIR", "reward-model folder (`rlhf rm`)", 1},
        {"--value-model", OPT_STR, &o.value_model, "DIR",
         "train a separate value model started from this reward-model folder (default: a zero value head on the policy)", 0},
        {"--prompts", OPT_STR, &o.prompts, "FILE", "prompt-only JSONL: {\"prompt\"} per line", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--out", OPT_STR, &o.out, "DIR", "output: checkpoints, metrics.jsonl, model/", 1},
        {"--resume", OPT_FLAG, &o.resume, NULL, "continue from DIR/latest when there is one", 0},
        {"--steps", OPT_INT, &o.steps, "N", "PPO iterations (rollout + update each)", 0},
        {"--batch", OPT_INT, &batch, "B", "prompts (completions) per iteration", 0},
        {"--minibatch", OPT_INT, &minibatch, "M", "rows per optimizer step (0: the whole batch)", 0},
        {"--accum", OPT_INT, &accum, "N", "micro-batches per mini-batch (gradient accumulation)", 0},
        {"--epochs", OPT_INT, &epochs, "N", "passes over each rollout", 0},
        {"--temperature", OPT_DOUBLE, &temp, "T", "sampling temperature (log-probs are taken at it)", 0},
        {"--max-new-tokens", OPT_INT, &maxnew, "N", "completion tokens at most", 0},
        {"--max-prompt-len", OPT_INT, &maxprompt, "N", "prompt tokens kept, from the end (0: as many as fit)", 0},
        {"--no-stop", OPT_FLAG, &nostop, NULL, "do not stop completions at <|endoftext|>", 0},
        {"--missing-eos-penalty", OPT_DOUBLE, &penalty, "X", "subtract X from the score of a completion without EOS (TRL)", 0},
        {"--missing-eos-score", OPT_DOUBLE, &replace, "X",
         "replace the score of a completion without EOS by X (lm-human-preferences)", 0},
        {"--kl-coef", OPT_DOUBLE, &h->kl_coef, "B", "KL penalty β (the initial one with --target-kl)", 0},
        {"--target-kl", OPT_DOUBLE, &h->target_kl, "K", "adapt β towards this sequence KL (Ziegler et al.; 0: fixed β)", 0},
        {"--kl-horizon", OPT_DOUBLE, &h->kl_horizon, "H", "horizon of the adaptive KL controller", 0},
        {"--whiten-rewards", OPT_FLAG, &h->whiten_rewards, NULL, "whiten the per-token rewards (mean kept)", 0},
        {"--gamma", OPT_DOUBLE, &gamma, "X", "discount", 0},
        {"--lambda", OPT_DOUBLE, &lambda, "X", "GAE λ", 0},
        {"--cliprange", OPT_DOUBLE, &clip, "X", "policy ratio clip", 0},
        {"--cliprange-value", OPT_DOUBLE, &vclip, "X", "value clip (0: unclipped value loss)", 0},
        {"--vf-coef", OPT_DOUBLE, &vf, "X", "value loss coefficient", 0},
        {"--lr", OPT_DOUBLE, &lr, "X", "peak learning rate", 0},
        {"--min-lr", OPT_DOUBLE, &min_lr, "X", "learning rate at the end of the cosine decay", 0},
        {"--warmup", OPT_INT, &warmup, "N", "linear warm-up (optimizer steps)", 0},
        {"--weight-decay", OPT_DOUBLE, &wd, "X", "AdamW weight decay (2-D weights only)", 0},
        {"--beta1", OPT_DOUBLE, &b1, "X", "AdamW beta1", 0},
        {"--beta2", OPT_DOUBLE, &b2, "X", "AdamW beta2", 0},
        {"--grad-clip", OPT_DOUBLE, &gclip, "X", "global gradient-norm clip (0: off)", 0},
        {"--sample-bf16", OPT_FLAG, &bf16, NULL, "decode with bf16 weights (~2x faster sampling)", 0},
        {"--ckpt-every", OPT_INT, &o.ckpt_every, "N", "checkpoint every N iterations (and at the end)", 0},
        {"--keep", OPT_INT, &keep, "N", "checkpoints kept", 0},
        {"--seed", OPT_INT, &seed, "S", "seed (prompt order, sampling, mini-batches)", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores; resume with the same number)", 0},
        {"--stop-at", OPT_INT, &o.stop_at, "N", "leave after iteration N as if interrupted (resume later)", 0},
        {0}};
    cli_parse("ppo", "Per-token PPO against a reward model with a KL penalty to a reference (or continue with --resume).",
              argc, argv, opts);
    if (!isnan(penalty) && !isnan(replace)) cli_die("ppo", "give --missing-eos-penalty or --missing-eos-score, not both");
    h->eos_mode = !isnan(penalty) ? PPO_LM_EOS_SUBTRACT : !isnan(replace) ? PPO_LM_EOS_REPLACE : PPO_LM_EOS_OFF;
    h->eos_penalty = (float)(!isnan(penalty) ? penalty : !isnan(replace) ? replace : 0);
    o.stop_at_eos = !nostop;
    o.batch = (int)batch;
    o.max_prompt_len = (int)maxprompt;
    o.keep_last = (int)keep;
    o.threads = (int)threads;
    h->minibatch = (int)minibatch;
    h->accum = (int)accum;
    h->epochs = (int)epochs;
    h->max_new_tokens = (int)maxnew;
    h->seed = (uint64_t)seed;
    h->warmup = warmup;
    h->temperature = (float)temp;
    h->gamma = (float)gamma;
    h->lambda = (float)lambda;
    h->cliprange = (float)clip;
    h->cliprange_value = (float)vclip;
    h->vf_coef = (float)vf;
    h->lr = (float)lr;
    h->min_lr = (float)min_lr;
    h->weight_decay = (float)wd;
    h->grad_clip = (float)gclip;
    h->beta1 = (float)b1;
    h->beta2 = (float)b2;
    h->sample_weights = bf16 ? GPT2_W_BF16 : GPT2_W_F32;
    static const char *const show[] = {"objective/scores", "objective/kl", "objective/kl_coef", NULL};
    train_progress prog;
    train_progress_start(&prog, "ppo", show);
    o.on_step = train_progress_on_step;
    o.ud = &prog;
    char err[1024];
    ppo_lm_result r;
    if (ppo_lm_run(&o, &r, err, sizeof err)) cli_die("ppo", "%s", err);
    char extra[512];
    snprintf(extra, sizeof extra,
             "%ld iterations (%s) on %zu prompts: score %.4f, KL %.4f, β %.4g; last iteration rollout %.2f s, scoring "
             "%.2f s, update %.2f s -> %s/model",
             r.steps, r.resumed_from ? "resumed" : "from the start", r.n_prompts, r.last.scores, r.last.kl, r.last.kl_coef,
             r.last.t_rollout, r.last.t_scoring, r.last.t_update, o.out);
    cli_progress_done(&prog.bar, extra);
    return 0;
}
