/* cmd_dpo.c — `rlhf dpo`: Direct Preference Optimization of a GPT-2 folder on preference JSONL
 * (losses sigmoid, ipo, hinge, robust; label smoothing for cDPO). A thin wrapper around rlhf/dpo.h:
 * options bound to dpo_opts, progress bar and a summary out. */
#include "cli.h"
#include "commands.h"
#include "dpo.h"
#include "train_progress.h"

#include <math.h>
#include <stdio.h>

int cmd_dpo(int argc, char **argv)
{
    dpo_opts o = dpo_defaults();
    cli_enum loss = {&o.loss.type, dpo_loss_names};
    const cli_opt own[] = {
        {"--model", OPT_STR, &o.model, "DIR", "Hugging Face GPT-2 folder to start from (normally the SFT model)", 1},
        {"--ref", OPT_STR, &o.ref, "DIR", "reference model (default: the starting model itself)", 0},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--data", OPT_STR, &o.data, "FILE", "preference JSONL: {\"prompt\",\"chosen\",\"rejected\"} per line", 1},
        {"--eval-data", OPT_STR, &o.eval_data, "FILE", "held-out preference JSONL", 0},
        {"--max-prompt-len", OPT_INT, &o.max_prompt_len, "N", "prompt tokens kept, from the end (0: no limit)", 0},
        {"--max-completion-len", OPT_INT, &o.max_completion_len, "N", "completion tokens kept, EOS included (0: no limit)", 0},
        {"--loss", OPT_ENUM, &loss, NULL, "sigmoid (DPO), ipo, hinge or robust", 0},
        {"--beta", OPT_DOUBLE, &o.loss.beta, "B", "strength of the pull towards the reference", 0},
        {"--label-smoothing", OPT_DOUBLE, &o.loss.label_smoothing, "E",
         "assumed share of flipped labels (sigmoid: cDPO; robust)", 0},
        {0}};
    static const char *const show[] = {"loss", "rewards/accuracies", "eval_rewards/accuracies", NULL};
    train_progress prog;
    train_cli_parse("dpo", "Direct Preference Optimization on preference pairs (or continue with --resume).", argc, argv,
                    own, &o.run, &o.optim, "preference pairs per micro-batch", 1, &prog, show);
    cli_model_path("dpo", "--model", &o.model);
    cli_model_path("dpo", "--ref", &o.ref);
    cli_tokenizer_path("dpo", "--tokenizer", &o.tokenizer);
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
    snprintf(extra + n, sizeof extra - (size_t)n, " -> %s/model", o.run.out);
    cli_progress_done(&prog.bar, extra);
    return 0;
}
