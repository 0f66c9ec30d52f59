/* cmd_sft.c — `rlhf sft`: supervised fine-tuning of a GPT-2 folder on prompt/completion or text
 * JSONL (loss on completion tokens only for prompt/completion data). A thin wrapper around
 * rlhf/sft.h: options bound to sft_opts (the shared training options from train_progress.h),
 * progress bar and a summary out. */
#include "cli.h"
#include "commands.h"
#include "sft.h"
#include "train_progress.h"

#include <math.h>
#include <stdio.h>

int cmd_sft(int argc, char **argv)
{
    sft_opts o = sft_defaults();
    const cli_opt own[] = {
        {"--model", OPT_STR, &o.model, "DIR", "Hugging Face GPT-2 folder to start from", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--data", OPT_STR, &o.data, "FILE", "training JSONL: {\"prompt\",\"completion\"} or {\"text\"} per line", 1},
        {"--eval-data", OPT_STR, &o.eval_data, "FILE", "held-out JSONL of the same kind (eval_loss, accuracy)", 0},
        {"--max-prompt-len", OPT_INT, &o.max_prompt_len, "N", "prompt tokens kept, from the end (0: no limit)", 0},
        {"--max-completion-len", OPT_INT, &o.max_completion_len, "N",
         "completion (or text) tokens kept, EOS included, from the start (0: no limit)", 0},
        {0}};
    static const char *const show[] = {"loss", "mean_token_accuracy", "eval_loss", NULL};
    train_progress prog;
    train_cli_parse("sft", "Supervised fine-tuning on prompt/completion or text JSONL (or continue with --resume).", argc,
                    argv, own, &o.run, &o.optim, "examples per micro-batch", 1, &prog, show);
    cli_model_path("sft", "--model", &o.model);
    cli_tokenizer_path("sft", "--tokenizer", &o.tokenizer);
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
    snprintf(extra + n, sizeof extra - (size_t)n, " -> %s/model", o.run.out);
    cli_progress_done(&prog.bar, extra);
    return 0;
}
