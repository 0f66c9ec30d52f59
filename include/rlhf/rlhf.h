/* rlhf/rlhf.h — the rlhf.c library in one include: the GPT-2 byte-level BPE, GPT-2 with Hugging Face
 * weights, JSONL datasets, and every training recipe of the pipeline (pretraining, SFT, reward
 * model, DPO, PPO, GRPO, RLOO, evaluation, the demo), in plain C11.
 *
 * Build against the installed library with pkg-config:
 *
 *     cc -std=c11 my.c $(pkg-config --cflags --libs rlhf)
 *
 * ---- A worked example: load a Hugging Face GPT-2 folder and continue a prompt -------------------
 *
 *     #include <rlhf/rlhf.h>
 *     #include <stdio.h>
 *     #include <string.h>
 *
 *     int main(void)
 *     {
 *         char err[1024], dir[4096];
 *         // Any model path a user may give: a model folder (config.json + model.safetensors), a
 *         // training run's output folder (its model/, else its latest checkpoint) or OUT/latest.
 *         if (ckpt_resolve("out/sft", dir, sizeof dir, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
 *
 *         tok_tokenizer *t;                        // vocab.json + merges.txt (or encoder.json + vocab.bpe)
 *         gpt2 *m;                                 // config.json + model.safetensors
 *         if (tok_load(dir, &t, err, sizeof err) || hf_load_gpt2(dir, &m, err, sizeof err)) {
 *             fprintf(stderr, "%s\n", err);       // every error is one line: file, place, what
 *             return 1;
 *         }
 *         gpt2_set_threads(m, 1);                  // no hidden global state: threads are passed in
 *
 *         tok_encoder *e = tok_encoder_create(t);  // per-thread state (a cache)
 *         tok_ids prompt = {0};
 *         tok_encode(e, "The cat", strlen("The cat"), 0, &prompt);
 *
 *         gpt2_sample_opts so = gpt2_sample_defaults();   // defaults first, then overrides
 *         so.max_new_tokens = 20;
 *         so.seed = 1234;                          // the same seed gives the same text
 *         so.stop_token = tok_eot_id(t);
 *         int32_t out[20];
 *         int olen, plen = (int)prompt.n;
 *         const int32_t *rows[1] = {prompt.ids};
 *         if (gpt2_sample(m, 1, rows, &plen, &so, out, &olen, NULL, err, sizeof err)) { ... }
 *
 *         tok_bytes text = {0};
 *         tok_decode_lenient(t, out, (size_t)olen, &text, err, sizeof err);
 *         printf("The cat%.*s\n", (int)text.n, (const char *)text.data);
 *
 *         tok_bytes_free(&text);                   // every x_create / x_load has its x_free
 *         tok_ids_free(&prompt);
 *         tok_encoder_free(e);
 *         gpt2_free(m);
 *         tok_free(t);
 *         return 0;
 *     }
 *
 * A training recipe is one options struct and one call, e.g. DPO from an SFT model:
 *
 *     dpo_opts o = dpo_defaults();                 // TRL's defaults, documented in dpo.h
 *     o.model = "out/sft";  o.tokenizer = "out/sft/model";  o.data = "prefs.jsonl";
 *     o.run.out = "out/dpo";  o.run.steps = 100;  o.loss.beta = 0.1;
 *     dpo_result r;
 *     if (dpo_run(&o, &r, err, sizeof err)) ...    // out/dpo/model, metrics.jsonl, checkpoints
 *
 * tools/examples/ has both as complete programs (sample.c, dpo.c).
 *
 * ---- Conventions ---------------------------------------------------------------------------------
 *   - Functions return 0 (or a count) on success and -1 on failure, with one printable line in the
 *     caller's err buffer; the library never prints and never exits.
 *   - Every symbol has its module's prefix: tok_ (tokenizer), fio_ (files), rng_ (random streams),
 *     gpt2_ / hf_ / ckpt_ / st_ (the model, Hugging Face folders, checkpoints, safetensors), ds_
 *     (datasets), judge_ / reward_ / scorer_ (rewards), trainer_ (the training loop), sft_ / rm_ /
 *     dpo_ / ppo_ / grpo_ / rloo_ / rl_ / eval_ / demo_ (recipes), env_ (control environments).
 *   - Files the library writes are written whole or not at all (a temporary file and a rename).
 *   - Each header below documents its module at its top: start with tok.h, gpt2.h, kv.h (sampling),
 *     hf.h, checkpoint.h, dataset.h and trainer.h.
 *
 * The library's own sources are compiled with hidden visibility and this header forced in front of
 * them, inside the pragmas below: what it declares is exactly what the shared library exports.
 */
#ifndef RLHF_RLHF_H
#define RLHF_RLHF_H

#pragma GCC visibility push(default)

/* tokenizer/ and the shared basics */
#include "fileio.h"
#include "rng.h"
#include "stats.h"
#include "tok.h"

/* model/ */
#include "adamw.h"
#include "checkpoint.h"
#include "cpu.h"
#include "gpt2.h"
#include "head.h"
#include "hf.h"
#include "kv.h"
#include "mlp.h"
#include "mm.h"
#include "ops.h"
#include "safetensors.h"

/* data/ */
#include "corpus.h"
#include "dataset.h"
#include "judge.h"
#include "probe.h"
#include "reward.h"
#include "scorer.h"
#include "tokens.h"

/* rlhf/ and rlhf/envs/ */
#include "compare.h"
#include "control.h"
#include "demo.h"
#include "dp.h"
#include "dpo.h"
#include "env.h"
#include "eval.h"
#include "grpo.h"
#include "ppo.h"
#include "ppo_lm.h"
#include "pretrain.h"
#include "rl.h"
#include "rloo.h"
#include "rm.h"
#include "rollout.h"
#include "seedstats.h"
#include "sft.h"
#include "stage.h"
#include "trainer.h"

#pragma GCC visibility pop

#endif
