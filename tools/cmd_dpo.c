/* cmd_dpo.c — `rlhf dpo`: Direct Preference Optimization of a GPT-2 folder on preference JSONL
 * (losses sigmoid, ipo, hinge, robust; label smoothing for cDPO). A thin wrapper around rlhf/dpo.h:
 * options in, progress bar and a summary out. */
#include "cli.h"
#include "commands.h"
#include "dpo.h"
#include "train_progress.h"

#include <math.h>
#include <stdio.h>

int cmd_dpo(int argc, char **argv)
{
    dpo_opts o = dpo_defaults();
    long batch = o.batch, accum = o.accum, seed = (long)o.seed, threads = 0, keep = o.keep_last;
    long max_prompt = o.max_prompt_len, max_completion = o.max_completion_len;
    double lr = o.lr, min_lr = o.min_lr, wd = o.weight_decay, clip = o.grad_clip, b1 = o.beta1, b2 = o.beta2;
    const char *loss = dpo_loss_name(o.loss.type);
    const cli_opt opts[] = {
        {"--model", OPT_STR, &o.model, "DIR", "Hugging Face GPT-2 folder to start from (normally the SFT model)", 1},
        {"--ref", OPT_STR, &o.ref, "DIR", "reference model (default: the starting model itself)", 0},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--data", OPT_STR, &o.data, "FILE", "preference JSONL: {\"prompt\",\"chosen\",\"rejected\"} per line", 1},
        {"--eval-data", OPT_STR, &o.eval_data, "FILE", "held-out preference JSONL", 0},
        {"--out", OPT_STR, &o.out, "DIR", "output: checkpoints, metrics.jsonl, model/", 1},
        {"--resume", OPT_FLAG, &o.resume, NULL, "continue from DIR/latest when there is one", 0},
        {"--loss", OPT_STR, &loss, "NAME", "sigmoid (DPO), ipo, hinge or robust", 0},
        {"--beta", OPT_DOUBLE, &o.loss.beta, "B", "strength of the pull towards the reference", 0},
        {"--label-smoothing", OPT_DOUBLE, &o.loss.label_smoothing, "E",
         "assumed share of flipped labels (sigmoid: cDPO; robust)", 0},
        {"--epochs", OPT_DOUBLE, &o.epochs, "X", "passes over the data (when --steps is not given)", 0},
        {"--steps", OPT_INT, &o.steps, "N", "optimizer steps in all (overrides --epochs)", 0},
        {"--batch", OPT_INT, &batch, "B", "preference pairs per micro-batch", 0},
        {"--accum", OPT_INT, &accum, "N", "micro-batches per optimizer step", 0},
        {"--lr", OPT_DOUBLE, &lr, "X", "peak learning rate", 0},
        {"--min-lr", OPT_DOUBLE, &min_lr, "X", "learning rate at the end of the cosine decay", 0},
        {"--warmup", OPT_INT, &o.warmup, "N", "linear warm-up steps", 0},
        {"--weight-decay", OPT_DOUBLE, &wd, "X", "AdamW weight decay (2-D weights only)", 0},
        {"--beta1", OPT_DOUBLE, &b1, "X", "AdamW beta1", 0},
        {"--beta2", OPT_DOUBLE, &b2, "X", "AdamW beta2", 0},
        {"--grad-clip", OPT_DOUBLE, &clip, "X", "global gradient-norm clip (0: off)", 0},
        {"--max-prompt-len", OPT_INT, &max_prompt, "N", "prompt tokens kept, from the end (0: no limit)", 0},
        {"--max-completion-len", OPT_INT, &max_completion, "N",
         "completion tokens kept, EOS included, from the start (0: no limit)", 0},
        {"--eval-every", OPT_INT, &o.eval_every, "N", "evaluate every N steps (and at the end)", 0},
        {"--ckpt-every", OPT_INT, &o.ckpt_every, "N", "checkpoint every N steps (and at the end)", 0},
        {"--keep", OPT_INT, &keep, "N", "checkpoints kept", 0},
        {"--seed", OPT_INT, &seed, "S", "seed for the data order", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores; resume with the same number)", 0},
        {"--stop-at", OPT_INT, &o.stop_at, "N", "leave after step N as if interrupted (resume later)", 0},
        {0}};
    cli_parse("dpo", "Direct Preference Optimization on preference pairs (or continue with --resume).", argc, argv, opts);
    if (dpo_loss_parse(loss, &o.loss.type)) cli_die("dpo", "--loss '%s': expected sigmoid, ipo, hinge or robust", loss);
    o.batch = (int)batch;
    o.accum = (int)accum;
    o.seed = (uint64_t)seed;
    o.threads = (int)threads;
    o.keep_last = (int)keep;
    o.max_prompt_len = (int)max_prompt;
    o.max_completion_len = (int)max_completion;
    o.lr = (float)lr;
    o.min_lr = (float)min_lr;
    o.weight_decay = (float)wd;
    o.grad_clip = (float)clip;
    o.beta1 = (float)b1;
    o.beta2 = (float)b2;
    static const char *const show[] = {"loss", "rewards/accuracies", "eval_rewards/accuracies", NULL};
    train_progress prog;
    train_progress_start(&prog, "dpo", show);
    o.on_step = train_progress_on_step;
    o.ud = &prog;
    char err[1024];
    dpo_result r;
    if (dpo_run(&o, &r, err, sizeof err)) cli_die("dpo", "%s", err);
    char extra[512];
    int n = snprintf(extra, sizeof extra, "%ld steps (%s) of %s on %zu pairs, loss %.4f margin %.4f accuracy %.3f",
                     r.steps, r.resumed_from ? "resumed" : "from the start", dpo_loss_name(o.loss.type), r.n_train,
                     r.train.loss, r.train.rewards_margins, r.train.rewards_accuracies);
    if (!isnan(r.eval.loss))
        n += snprintf(extra + n, sizeof extra - (size_t)n, ", eval_loss %.4f eval accuracy %.3f", r.eval.loss,
                      r.eval.rewards_accuracies);
    snprintf(extra + n, sizeof extra - (size_t)n, " -> %s/model", o.out);
    cli_progress_done(&prog.bar, extra);
    return 0;
}
