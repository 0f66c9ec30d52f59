/* cmd_rm.c — `rlhf rm` (train a Bradley–Terry reward model on preference JSONL, optionally
 * normalised against a reference policy's samples) and `rlhf score` (score JSONL records with a
 * reward-model folder). Thin wrappers around rlhf/rm.h. */
#include "cli.h"
#include "commands.h"
#include "dataset.h"
#include "rm.h"
#include "tok.h"
#include "train_progress.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_rm(int argc, char **argv)
{
    rm_opts o = rm_defaults();
    const cli_opt own[] = {
        {"--model", OPT_STR, &o.model, "DIR", "GPT-2 folder (pretrained or SFT) for the trunk, or a reward-model folder", 1},
        {"--tokenizer", OPT_STR, &o.tokenizer, "DIR", "tokenizer folder", 1},
        {"--data", OPT_STR, &o.data, "FILE",
         "preference JSONL: {\"prompt\",\"chosen\",\"rejected\"} (optional numeric \"margin\") per line", 1},
        {"--eval-data", OPT_STR, &o.eval_data, "FILE", "held-out preference JSONL (eval_loss, eval_accuracy, ...)", 0},
        {"--max-prompt-len", OPT_INT, &o.max_prompt_len, "N", "prompt tokens kept, from the end (0: no limit)", 0},
        {"--max-completion-len", OPT_INT, &o.max_completion_len, "N", "completion tokens kept, EOS included (0: no limit)", 0},
        {"--center-rewards", OPT_DOUBLE, &o.center, "X", "TRL's center_rewards_coefficient: + X mean((r_c + r_r)^2)", 0},
        {"--normalize-prompts", OPT_STR, &o.normalize_prompts, "FILE",
         "prompt-only JSONL: after training, set gain and bias so the reference's samples score mean 0, std 1", 0},
        {"--normalize-ref", OPT_STR, &o.normalize_ref, "DIR", "reference policy for the normalisation (default: --model)", 0},
        {"--normalize-samples", OPT_INT, &o.normalize_samples, "N", "samples drawn for the normalisation", 0},
        {"--normalize-max-new-tokens", OPT_INT, &o.normalize_max_new_tokens, "N", "length of those samples", 0},
        {"--normalize-temperature", OPT_FLOAT, &o.normalize_temperature, "X", "their sampling temperature", 0},
        {0}};
    static const char *const show[] = {"loss", "accuracy", "eval_accuracy", NULL};
    train_progress prog;
    train_cli_parse("rm", "Train a Bradley-Terry reward model on preference pairs (or continue with --resume).", argc, argv,
                    own, &o.run, &o.optim, "preference pairs per micro-batch", 1, &prog, show);
    cli_model_path("rm", "--model", &o.model);
    cli_model_path("rm", "--normalize-ref", &o.normalize_ref);
    cli_tokenizer_path("rm", "--tokenizer", &o.tokenizer);
    char err[1024];
    rm_result r;
    if (rm_run(&o, &r, err, sizeof err)) cli_die("rm", "%s", err);
    char extra[512];
    int n = snprintf(extra, sizeof extra, "%ld steps (%s) on %zu pairs%s, loss %.4f accuracy %.3f", r.steps,
                     r.resumed_from ? "resumed" : "from the start", r.n_train, r.margins ? " with margins" : "",
                     r.train.loss, r.train.accuracy);
    if (!isnan(r.eval.loss))
        n += snprintf(extra + n, sizeof extra - (size_t)n, ", eval_loss %.4f eval_accuracy %.3f", r.eval.loss,
                      r.eval.accuracy);
    if (r.normalized)
        n += snprintf(extra + n, sizeof extra - (size_t)n, ", normalised (reference mean %.4g std %.4g over %ld samples)",
                      r.norm.mean, r.norm.std, r.norm.n);
    snprintf(extra + n, sizeof extra - (size_t)n, " -> %s/model", o.run.out);
    cli_progress_done(&prog.bar, extra);
    return 0;
}

/* one output line: the record's string fields, then its score(s) */
static void print_scored(const ds_record *rec, const float *s, int pair)
{
    json_t *j = json_object();
    const char *names[] = {"text", "prompt", "completion", "chosen", "rejected"};
    const char *vals[] = {rec->text, rec->prompt, rec->completion, rec->chosen, rec->rejected};
    const size_t lens[] = {rec->text_len, rec->prompt_len, rec->completion_len, rec->chosen_len, rec->rejected_len};
    for (int i = 0; i < 5; i++)
        if (vals[i]) json_object_set_new(j, names[i], json_stringn(vals[i], lens[i]));
    if (pair) {
        json_object_set_new(j, "chosen_score", json_real(s[0]));
        json_object_set_new(j, "rejected_score", json_real(s[1]));
    } else
        json_object_set_new(j, "score", json_real(s[0]));
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (line) puts(line);
    free(line);
    json_decref(j);
}

int cmd_score(int argc, char **argv)
{
    const char *rmdir = NULL, *data = NULL, *tokdir = NULL;
    int batch = 8, threads = 0;
    const cli_opt opts[] = {
        {"--rm", OPT_STR, &rmdir, "DIR", "reward-model folder (as `rlhf rm` writes it)", 1},
        {"--data", OPT_STR, &data, "FILE",
         "JSONL: {\"prompt\",\"completion\"}, {\"text\"}, or preferences (then both are scored)", 1},
        {"--tokenizer", OPT_STR, &tokdir, "DIR", "tokenizer folder (default: the reward-model folder)", 0},
        {"--batch", OPT_INT, &batch, "N", "records per forward", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("score", "Score JSONL records with a reward model: one JSON line per record with its score.", argc, argv,
              opts);
    cli_model_path("score", "--rm", &rmdir);
    cli_tokenizer_path("score", "--tokenizer", &tokdir);
    if (batch < 1) cli_die("score", "--batch must be positive");
    if (strcmp(data, "-") == 0) cli_die("score", "--data must be a file (it is read twice: tokens, then the text echoed)");
    cli_threads(threads);
    char err[1024];
    rm_model *r;
    if (rm_load(rmdir, &r, err, sizeof err)) cli_die("score", "%s", err);
    gpt2_set_threads(r->m, threads);
    head_set_threads(r->h, threads);
    tok_tokenizer *t;
    if (tok_load(tokdir ? tokdir : rmdir, &t, err, sizeof err)) cli_die("score", "%s", err);
    ds_load_opts lo = ds_load_defaults();
    lo.max_len = gpt2_cfg(r->m)->n_positions;
    ds_dataset d = {0};
    if (ds_load(&d, t, data, &lo, err, sizeof err)) cli_die("score", "%s", err);
    const int pair = d.kind == DS_PREFERENCE;
    float *s = malloc((pair ? 2 : 1) * (d.n + 1) * sizeof *s);
    if (!s) cli_die("score", "out of memory");
    if (rm_score_dataset(r, &d, batch, s, err, sizeof err)) cli_die("score", "%s", err);
    /* the strings again, record by record, in the same order */
    ds_reader *rd;
    ds_record rec;
    if (ds_reader_open(&rd, data, err, sizeof err)) cli_die("score", "%s", err);
    for (size_t i = 0; i < d.n; i++) {
        int got = ds_reader_next(rd, &rec, err, sizeof err);
        if (got != 1) cli_die("score", "%s", got < 0 ? err : "the file changed while it was being scored");
        print_scored(&rec, s + (pair ? 2 * i : i), pair);
    }
    ds_reader_close(rd);
    if (fflush(stdout) != 0) cli_die("score", "cannot write the scores");
    free(s);
    ds_free(&d);
    tok_free(t);
    rm_free(r);
    return 0;
}
