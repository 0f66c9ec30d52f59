/* demo.h — the main job as one library call: tune a tiny GPT-2 toward positive sentiment with four
 * methods (PPO, DPO, GRPO, RLOO), judged by the AFINN-165 gold judge, every stage cached on disk.
 * `rlhf demo` is a thin wrapper; tools/report.c turns the folder into report.md / report.json / plots.
 *
 * ---- Stages (each a folder OUT/<stage>/) --------------------------------------------------------
 *   corpus      the fortunes corpus (data/corpus.h): train/held-out text, SFT and prompt files
 *   tokenizer   a small byte-level BPE trained on corpus/train.txt
 *   pretrain    a tiny GPT-2 trained from scratch on train.txt (model/)
 *   sft         fine-tuned on the prompt/completion splits (loss on completions only)
 *   prefs       for pref_prompts training prompts, pref_samples completions each from the SFT model
 *               (eval_run), scored by the gold judge on the completion only (empty ones dropped);
 *               sorted by that score, the i-th best and the i-th worst completion of a prompt form
 *               a pair (pref_samples / 2 disjoint pairs; a pair whose scores tie exactly is skipped:
 *               it carries no preference), and the Bradley–Terry labeller (judge_bt_label, tau =
 *               bt_tau) decides which is "chosen" — so some labels are flipped, like a human's (the
 *               stage records how many, and how many it expected). prefs_train.jsonl, and
 *               prefs_heldout.jsonl from held-out prompts (the reward model's held-out accuracy).
 *   rm          a Bradley–Terry reward model from the SFT model, normalised on SFT samples (mean 0,
 *               std 1); its held-out accuracy against the noisy labels and against the gold order
 *   rm-words    what the reward model pays for (data/probe.h), words.json: the "hack word" is the
 *               word whose presence raises the reward-model score of SFT's own completions most
 *               (probe_samples of them on training prompts; words in >= 1% of them): the reward's
 *               favourite among the words the policy already writes, the one RL can find. For
 *               reference, every whole-word token scored alone (the whole completion) after
 *               probe_prompts training prompts.
 *   ppo-t<K>    PPO against the reward model, one run per target KL K of the adaptive KL controller
 *               (lm-human-preferences' practice: β adapts so the run's KL lands near K whatever the
 *               seed; a fixed β can collapse on one seed and barely move on another)
 *   ppo-kl<β>   PPO with a fixed KL coefficient β (none by default; --ppo-kl adds them)
 *   dpo-b<β>    DPO on prefs_train.jsonl, one run per β
 *   grpo-b<β>   GRPO against the reward model (DAPO loss, group-normalised advantages), one run per β
 *               of the k3 KL to SFT in the loss
 *   rloo-b<β>   RLOO against the reward model (leave-one-out baseline), one run per β of the KL
 *               folded into the sequence reward
 *               (every RL run's gold.jsonl logs the gold judge's mean on each step's rollouts)
 *   eval        every model (sft and every run) on the same held-out prompts with the same sampling
 *               seed (common random numbers: the gain over SFT is measured per sample, pairwise):
 *               gold reward, gain over SFT and its 95% interval, reward-model score, KL to SFT,
 *               distinct-1/2, "collapsed" (distinct-2 below DEMO_COLLAPSE_RATIO x SFT's), the share of
 *               completions containing the hack word, mean completion length; <model>/samples.jsonl
 *               and results.json — through rlhf/compare.h, the code `rlhf compare` runs on any runs
 *
 * ---- Families ---------------------------------------------------------------------------------
 * Every model carries its family as data: results.json (and the report's report.json) hold
 * {"hack_word": "...", "models": {"<name>": {"family": "sft" | "ppo" | "dpo" | "grpo" | "rloo",
 * "setting": {"<param>": value}, "gold_reward", "gain", "gain_ci95", "kl", "distinct2",
 * "hack_word_share", "completion_length", "collapsed", ...}}}, in the order the stages ran (sft
 * first: the reference of every gain and KL; it has no "setting"). Readers take a run's method from
 * "family", never from its name, and its sweep value from "setting" (kl_coef, target_kl or beta).
 * The demo is a table of stages in rlhf/demo.c; each sweep is rows generated from one list
 * (ppo_kl, ppo_target_kl, dpo_beta, grpo_beta, rloo_beta), and another method is another sweep row.
 *
 * ---- Caching ----------------------------------------------------------------------------------
 * A stage is a pure function of its settings: the demo's options that it reads plus the hashes of
 * the stages it reads from (rlhf/stage.h runs it). Its hash is FNV-1a-64 of those settings as
 * canonical JSON (sorted keys). A stage runs into OUT/.<stage>.tmp/, writes stage.json there last
 * ({"stage","hash","settings","summary","seconds","cpu_seconds"}), and the folder is renamed to OUT/<stage>; so a
 * stage is either complete or absent, and a rerun skips every stage whose stage.json has the same
 * hash (changing one setting reruns that stage and everything downstream). Trainers' step-N
 * checkpoints are removed once their stage is complete (the final model and metrics stay).
 *
 * ---- Several seeds ----------------------------------------------------------------------------
 * The corpus and the tokenizer do not depend on the seed (no random draw: corpus_build is a pure
 * function of the fortunes, the BPE of its text); their settings leave the seed out and they run in
 * demo_opts.shared, once for all seeds. Every other stage depends on it — pretraining too (its
 * initial weights and data order): a seed repeats the whole pipeline a user would rerun, so the
 * spread across seeds includes the base model's, and OUT/seed-<S>/ of `rlhf demo --seeds` holds the
 * same numbers as `rlhf demo --seed S` alone. (With --model the base is the user's, shared by all.)
 * The report across seeds (tools/report.h) gives each method's mean gain with a Student-t interval
 * over seeds and pairs the best methods seed by seed.
 *
 * ---- Determinism ------------------------------------------------------------------------------
 * Every random draw derives from `seed` (tokenizer/rng.h streams per stage), and the thread counts
 * are fixed (`threads` for training; one for the stages that mostly decode, which is faster at this
 * size: see DEMO_DECODE_THREADS in demo.c), so the same seed and threads give the same numbers
 * (in practice the same at 1 and 2 threads too: no result here depends on how work is split).
 * results.json holds no timings (they live in stage.json).
 *
 * ---- Bring your own -----------------------------------------------------------------------------
 * model: a Hugging Face GPT-2 folder holding its tokenizer (vocab.json + merges.txt, or encoder.json
 * + vocab.bpe) replaces the tokenizer and pretrain stages (sft starts from it). sft_data,
 * prompts, eval_prompts and prefs / eval_prefs replace the corpus's files (prefs skips the
 * sampling stage: the pairs are used as given, and the gold judge only measures).
 */
#ifndef RLHF_DEMO_H
#define RLHF_DEMO_H

#include "stage.h"

#include <stddef.h>
#include <stdint.h>

#define DEMO_MAX_RUNS 6

/* A run has collapsed when its distinct-2 falls below this fraction of SFT's: it found a repetitive
 * text the judge likes (reward hacking), not better writing. */
#define DEMO_COLLAPSE_RATIO 0.7
/* The report's best run of a family: the highest gold reward among runs whose distinct-2 is at least
 * this fraction of SFT's (a margin over the collapse line: a run just above it is too close to call),
 * else among the runs that did not collapse, else among all. */
#define DEMO_BEST_MARGIN 0.75

typedef struct {
    /* the model (ignored with a user model) */
    int vocab;                 /* BPE vocabulary, <|endoftext|> included */
    int n_layer, n_head, n_embd, n_positions;
    /* pretraining */
    long pt_steps;
    int pt_batch, pt_seq;
    double pt_lr;
    /* shared by sampling, SFT, PPO and eval */
    int max_prompt_len;        /* prompt tokens kept (from the end) */
    int max_new_tokens;        /* completion tokens sampled (EOS included) */
    double temperature;        /* sampling temperature everywhere (1: KL is the models' true KL) */
    /* SFT */
    long sft_steps;
    int sft_batch, sft_max_completion;
    double sft_lr;
    /* preference pairs */
    int pref_prompts, pref_eval_prompts, pref_samples;
    double bt_tau;             /* Bradley–Terry label noise (judge.h) */
    /* reward model */
    double rm_epochs, rm_lr;
    int rm_batch, rm_norm_samples;
    /* PPO: one run per fixed KL coefficient β (ppo_kl) and one per target KL of the adaptive
     * controller (ppo_target_kl: β starts at ppo_kl_init and follows rlhf/ppo_lm.h's controller with
     * horizon ppo_kl_horizon completions, so the run's KL lands near the target whatever the seed) */
    int n_ppo;
    double ppo_kl[DEMO_MAX_RUNS];
    int n_ppo_target;
    double ppo_target_kl[DEMO_MAX_RUNS];
    double ppo_kl_init, ppo_kl_horizon;
    long ppo_steps;
    int ppo_batch, ppo_epochs, ppo_minibatch;
    double ppo_lr;
    /* DPO: one run per beta */
    int n_dpo;
    double dpo_beta[DEMO_MAX_RUNS];
    double dpo_epochs, dpo_lr;
    int dpo_batch;
    /* GRPO (rlhf/grpo.h, DAPO loss): one run per beta (k3 KL to SFT in the loss); grpo_prompts
     * prompts x grpo_generations completions per step, grpo_epochs passes (μ) in mini-batches of
     * grpo_minibatch completions */
    int n_grpo;
    double grpo_beta[DEMO_MAX_RUNS];
    long grpo_steps;
    int grpo_prompts, grpo_generations, grpo_epochs, grpo_minibatch;
    double grpo_lr;
    /* RLOO (rlhf/rloo.h): one run per beta (the KL to SFT folded into the sequence reward) */
    int n_rloo;
    double rloo_beta[DEMO_MAX_RUNS];
    long rloo_steps;
    int rloo_prompts, rloo_generations, rloo_epochs, rloo_minibatch;
    double rloo_lr;
    /* evaluation */
    int eval_prompts, eval_samples; /* held-out prompts; completions per prompt */
    int probe_samples;         /* SFT completions whose words' effect on the reward model picks the hack word */
    int probe_prompts;         /* training prompts of the word-alone probe (data/probe.h) */
} demo_config;

/* The default demo (about 8 minutes on 2 idle cores) and the quick one (seconds: tests, smoke runs). */
demo_config demo_config_default(void);
demo_config demo_config_quick(void);

/* Set one field by its name in demo_config ("pt_steps", "ppo_lr", ...); ppo_kl and dpo_beta take a
 * comma-separated list (one run each, n_ppo / n_dpo follow). -1 and one line in err for an unknown
 * name or a value that is not a positive number of the field's type. */
int demo_config_set(demo_config *c, const char *key, const char *value, char *err, size_t errlen);

typedef struct {
    const char *out;           /* the demo folder */
    const char *shared;        /* the stages that do not depend on the seed (corpus, tokenizer); NULL: out.
                                  `rlhf demo --seeds` runs every seed in out/seed-<S> with shared = out */
    uint64_t seed;
    int threads;               /* fixed thread count (results depend on it): 2 */
    int precision;             /* the trainers' (a trainer_precision): auto, bf16 where the CPU has it */
    int weights;               /* decoding weights of every stage that samples (a gpt2_weights: the RL
                                  rollouts, the preference pairs, the evaluation): auto, bf16 where the
                                  CPU has it; resolved, part of each stage's settings */
    demo_config cfg;
    const char *fortunes;      /* NULL: CORPUS_DEFAULT_SRC */
    const char *lexicon;       /* NULL: judge_default_lexicon() */
    /* bring your own (NULL: the demo's) */
    const char *model;
    const char *sft_data, *prompts, *eval_prompts, *prefs, *eval_prefs;
    /* what the caller sees while the demo runs: each stage's begin, progress, end or "cached"
     * (stage.h's events) */
    void (*on_event)(void *ud, const stage_event *e);
    void *ud;
    dp *dp;                    /* under mpirun: the trainers run data-parallel, rank 0 does the rest */
} demo_opts;

/* seed 1, 2 threads, the default config */
demo_opts demo_defaults(void);

/* Run (or resume) the whole pipeline into o->out. */
int demo_run(const demo_opts *o, char *err, size_t errlen);

#endif
