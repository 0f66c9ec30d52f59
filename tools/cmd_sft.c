/* cmd_sft.c — `rlhf sft`: supervised fine-tuning of a GPT-2 folder on prompt/completion or text
 * JSONL (loss on completion tokens only for prompt/completion data). A thin wrapper around
 * rlhf/sft.h: options in, progress bar and a summary out. */
#include "cli.h"
#include "commands.h"
#include "sft.h"
#include "train_progress.h"

#include <math.h>
#include <stdio.h>

int cmd_sft(int argc, char **argv)
{
    sft_opts o = sft_defaults();
    long batch = o.batch, accum = o.accum, seed = (long)o.seed, threads = 0, keep = o.keep_last;
    long max_prompt = o.max_prompt_len, max_completion = o.max_completion_len;
    double lr = o.lr, min_lr = o.min_lr, wd = o.weight_decay, clip = o.grad_clip, b1 = o.beta1, b2 = o.beta2;
    const cli_opt opts[] = {
        {"--model", OPT_STR, &o.model, "DIR", "Hugging Face GPT-2 folder to start from", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--data", OPT_STR, &o.data, "FILE", "training JSONL: {\"prompt\",\"completion\"} or {\"text\"} per line", 1},
        {"--eval-data", OPT_STR, &o.eval_data, "FILE", "held-out JSONL of the same kind (eval_loss, accuracy)", 0},
        {"--out", OPT_STR, &o.out, "DIR", "output: checkpoints, metrics.jsonl, model/", 1},
        {"--resume", OPT_FLAG, &o.resume, NULL, "continue from DIR/latest when there is one", 0},
        {"--epochs", OPT_DOUBLE, &o.epochs, "X", "passes over the data (when --steps is not given)", 0},
        {"--steps", OPT_INT, &o.steps, "N", "optimizer steps in all (overrides --epochs)", 0},
        {"--batch", OPT_INT, &batch, "B", "examples per micro-batch", 0},
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
         "completion (or text) tokens kept, EOS included, from the start (0: no limit)", 0},
        {"--eval-every", OPT_INT, &o.eval_every, "N", "evaluate every N steps (and at the end)", 0},
        {"--ckpt-every", OPT_INT, &o.ckpt_every, "N", "checkpoint every N steps (and at the end)", 0},
        {"--keep", OPT_INT, &keep, "N", "checkpoints kept", 0},
        {"--seed", OPT_INT, &seed, "S", "seed for the data order", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores; resume with the same number)", 0},
        {"--stop-at", OPT_INT, &o.stop_at, "N", "leave after step N as if interrupted (resume later)", 0},
        {0}};
    cli_parse("sft", "Supervised fine-tuning on prompt/completion or text JSONL (or continue with --resume).", argc, argv,
              opts);
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
    static const char *const show[] = {"loss", "mean_token_accuracy", "eval_loss", NULL};
    train_progress prog;
    train_progress_start(&prog, "sft", show);
    o.on_step = train_progress_on_step;
    o.ud = &prog;
    char err[1024];
    sft_result r;
    if (sft_run(&o, &r, err, sizeof err)) cli_die("sft", "%s", err);
    char extra[512];
    int n = snprintf(extra, sizeof extra, "%ld steps (%s) on %zu %s examples", r.steps,
                     r.resumed_from ? "resumed" : "from the start", r.n_train, ds_kind_name(r.kind));
    if (r.n_prompt_cut || r.n_completion_cut)
        n += snprintf(extra + n, sizeof extra - (size_t)n, " (%zu prompts, %zu completions cut)", r.n_prompt_cut,
                      r.n_completion_cut);
    n += snprintf(extra + n, sizeof extra - (size_t)n, ", loss %.4f", r.loss);
    if (!isnan(r.eval_loss)) n += snprintf(extra + n, sizeof extra - (size_t)n, ", eval_loss %.4f", r.eval_loss);
    snprintf(extra + n, sizeof extra - (size_t)n, " -> %s/model", o.out);
    cli_progress_done(&prog.bar, extra);
    return 0;
}
