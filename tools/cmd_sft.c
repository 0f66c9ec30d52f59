/* cmd_sft.c — `rlhf sft`: supervised fine-tuning of a GPT-2 folder on prompt/completion or text
 * JSONL (loss on completion tokens only for prompt/completion data). A thin wrapper around
 * rlhf/sft.h: options in (the shared training options from train_progress.h), progress bar and a
 * summary out. */
#include "cli.h"
#include "commands.h"
#include "sft.h"
#include "train_progress.h"

#include <math.h>
#include <stdio.h>

int cmd_sft(int argc, char **argv)
{
    sft_opts o = sft_defaults();
    cli_opt opts[8 + TRAIN_CLI_NOPTS] = {
        {"--model", OPT_STR, &o.model, "DIR", "Hugging Face GPT-2 folder to start from", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--data", OPT_STR, &o.data, "FILE", "training JSONL: {\"prompt\",\"completion\"} or {\"text\"} per line", 1},
        {"--eval-data", OPT_STR, &o.eval_data, "FILE", "held-out JSONL of the same kind (eval_loss, accuracy)", 0},
        {"--out", OPT_STR, &o.out, "DIR", "output: checkpoints, metrics.jsonl, model/", 1},
        {"--resume", OPT_FLAG, &o.resume, NULL, "continue from DIR/latest when there is one", 0},
    };
    size_t k = 6;
    train_cli tc;
    train_cli_options(&tc, &o.h, "examples per micro-batch", opts, &k);
    cli_parse("sft", "Supervised fine-tuning on prompt/completion or text JSONL (or continue with --resume).", argc, argv,
              opts);
    train_cli_apply(&tc);
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
