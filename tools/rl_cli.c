/* rl_cli.c — the shared options of the RL subcommands. See rl_cli.h. */
#include "rl_cli.h"

#include <stdlib.h>

void rl_cli_opts(rl_opts *o, rl_cli *st, cli_opt *opts, size_t *k)
{
    st->is_enum = (cli_enum){&st->is_mode, rl_is_names};
    st->w_enum = (cli_enum){&st->rollout_weights, gpt2_weights_names};
    st->is_mode = (int)o->is_correction;
    st->rollout_weights = (int)o->rollout_weights;
    const cli_opt shared[] = {
        {"--policy", OPT_STR, &o->policy, "DIR", "Hugging Face GPT-2 folder to start from (the SFT model)", 1},
        {"--ref", OPT_STR, &o->ref, "DIR", "frozen reference (default: the --policy folder)", 0},
        {"--prompts", OPT_STR, &o->prompts, "FILE", "prompt-only JSONL: {\"prompt\"} per line", 1},
        {"--tokenizer", OPT_STR, &o->tokenizer, "DIR", "tokenizer folder", 1},
        {"--reward", OPT_MULTI, &st->reward, "SPEC",
         "reward sources, summed: rm:DIR (reward model), judge[:LEXICON] (gold judge), 'cmd:PROGRAM ARGS' (reads "
         "{\"prompt\",\"completion\"} JSON lines, writes one number per line)", 0},
        {"--reward-weights", OPT_MULTI, &st->weights, "W", "one weight per --reward source (default: all 1)", 0},
        {"--reward-timeout", OPT_DOUBLE, &o->reward_timeout, "S", "seconds a reward program may take per batch", 0},
        {"--temperature", OPT_FLOAT, &o->temperature, "T", "sampling temperature (log-probs are taken at it)", 0},
        {"--top-k", OPT_INT, &o->top_k, "K", "sample from the K most likely tokens (0: off)", 0},
        {"--top-p", OPT_FLOAT, &o->top_p, "P", "sample from the smallest set holding probability P (1: off)", 0},
        {"--max-new-tokens", OPT_INT, &o->max_new_tokens, "N", "completion tokens at most", 0},
        {"--max-prompt-len", OPT_INT, &o->max_prompt_len, "N", "prompt tokens kept, from the end (0: as many as fit)", 0},
        {"--no-stop", OPT_FLAG, &st->nostop, NULL, "do not stop completions at <|endoftext|>", 0},
        {"--rollout-weights", OPT_ENUM, &st->w_enum, NULL, "decode weights of the rollout (auto: bf16 where the CPU has bf16, ~2x faster sampling; the log-probs stay at --precision)", 0},
        {"--is-correction", OPT_ENUM, &st->is_enum, NULL,
         "weigh token losses by the trainer/sampler ratio: tis min(ratio, C), mask: 0 outside [1/C, C]", 0},
        {"--is-cap", OPT_FLOAT, &o->is_cap, "C", "the importance-sampling cap", 0},
        {"--minibatch", OPT_INT, &o->minibatch, "M", "completions per optimizer step (0: the whole batch)", 0},
        {0}};
    cli_opts_add(opts, k, shared);
}

void rl_cli_free(rl_cli *st)
{
    free(st->reward.v);
    free(st->weights.v);
}

void rl_cli_weights(const char *cmd, const cli_list *w, double *out)
{
    if (w->n > REWARD_MAX) cli_die(cmd, "--reward-weights: at most %d", REWARD_MAX);
    for (size_t i = 0; i < w->n; i++) {
        char *end;
        out[i] = strtod(w->v[i], &end);
        if (end == w->v[i] || *end) cli_die(cmd, "--reward-weights: '%s' is not a number", w->v[i]);
    }
}

void rl_cli_finish(const char *cmd, rl_opts *o, rl_cli *st)
{
    o->is_correction = (rl_is_mode)st->is_mode;
    o->rollout_weights = (gpt2_weights)st->rollout_weights;
    o->stop_at_eos = !st->nostop;
    if (st->reward.n) {
        o->reward = st->reward.v;
        o->n_reward = st->reward.n;
    }
    rl_cli_weights(cmd, &st->weights, st->w);
    o->reward_weights = st->weights.n ? st->w : NULL;
    o->n_reward_weights = st->weights.n;
}

void rl_cli_group_opts(rl_opts *o, cli_opt *opts, size_t *k)
{
    const cli_opt group[] = {
        {"--num-generations", OPT_INT, &o->num_generations, "G", "completions per prompt", 0},
        {"--num-iterations", OPT_INT, &o->epochs, "MU", "passes over each batch (ratios against the sampling policy)", 0},
        {"--epsilon", OPT_FLOAT, &o->epsilon, "X", "ratio clip, lower side (and upper without --epsilon-high)", 0},
        {"--epsilon-high", OPT_FLOAT, &o->epsilon_high, "X", "ratio clip, upper side (DAPO: 0.28; 0: --epsilon)", 0},
        {"--mask-truncated-completions", OPT_FLAG, &o->mask_truncated, NULL, "leave completions without EOS out of the loss", 0},
        {0}};
    cli_opts_add(opts, k, group);
}

void rl_cli_parse(const char *cmd, const char *summary, int argc, char **argv, const cli_opt *own, int with_group,
                  rl_opts *o, rl_cli *st, trainer_run *r, trainer_optim *opt, const char *batch_help, int has_reward,
                  train_progress *prog, const char *const *show)
{
    cli_opt opts[CLI_MAX_OPTS];
    size_t k = 0;
    rl_cli_opts(o, st, opts, &k);
    if (with_group) rl_cli_group_opts(o, opts, &k);
    cli_opts_add(opts, &k, own);
    train_cli_parse(cmd, summary, argc, argv, opts, r, opt, batch_help, 0, prog, show);
    cli_model_path(cmd, "--policy", &o->policy);
    cli_tokenizer_path(cmd, "--ref", &o->ref); /* lenient: --beta 0 loads no reference */
    cli_tokenizer_path(cmd, "--tokenizer", &o->tokenizer);
    rl_cli_finish(cmd, o, st);
    if (!has_reward && !o->n_reward) cli_die(cmd, "give a reward: --reward SPEC... (rm:DIR, judge, cmd:PROGRAM)");
}
