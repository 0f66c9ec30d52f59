/* synth.h — the synthetic known-optimum task of the RL method tests (GRPO, RLOO): a tiny random
 * GPT-2 over 8 ids, four prompts, reward = how many completion tokens are the target id, the exact
 * next-token distribution after each prompt, and the optima the methods should approach. */
#ifndef RLHF_TEST_SYNTH_H
#define RLHF_TEST_SYNTH_H

#include "dataset.h"
#include "gpt2.h"
#include "scorer.h"

#include <stddef.h>
#include <stdint.h>

enum { SYN_V = 8, SYN_TARGET = 3, SYN_NEW = 8, SYN_PROMPTS = 4 };

/* target tokens and completion tokens counted by the scorer since the last reset */
typedef struct {
    double hits, tokens;
} syn_counter;

/* the tiny model (2 layers, 2 heads, 32 wide, 8 ids, 32 positions) of a seed, 1 thread, with the
 * final LayerNorm zeroed: exactly uniform next-token distributions in every context, so the
 * optima below hold exactly (a reference with context-dependent preferences tilts them) */
gpt2 *syn_model(uint64_t seed);
/* syn_model(11) saved as a Hugging Face folder <fresh tmp dir>/policy, into dir */
void syn_policy_dir(char *dir, size_t n, const char *tag);
/* the four prompts as token rows */
void syn_prompts(ds_prompts *ps);
/* reward = count of SYN_TARGET in the completion; counts into c */
scorer syn_scorer(syn_counter *c);
/* mean over the prompts of p(target) and of KL(pol || ref) at the first completion token (exact) */
void syn_first_token(gpt2 *pol, gpt2 *ref, double *pt, double *kl);
/* the mean over completion positions of p(target | context), exactly, along n samples (cycling the
 * prompts) of new_tokens tokens of pol at temperature 1 (the per-token probability where the
 * policy itself goes) */
double syn_target_prob(gpt2 *pol, int n, int new_tokens);
/* the KL-regularised optimum of E[count] - β KL(π || π_ref) for the uniform reference:
 * π*(target) = e^{1/β} / (e^{1/β} + V - 1) per token (PPO's and RLOO's target) */
double syn_optimum_kl(double beta);
/* GRPO with unscaled advantages (r - group mean, so E[A ∇log π] = (1 - 1/G) ∇E[r]) and the k3 KL in
 * the loss (whose gradient is that of KL(π_ref || π) at fixed contexts): the stationary point of one
 * softmax over V with a uniform reference, c p (1 - p) = β (p - 1/V), c = 1 - 1/G. Exact for
 * one-token completions; over longer ones the count reward's pull through later contexts, which
 * the k3 term does not see, moves it up a little (~0.01 at β = 0.25). */
double syn_optimum_grpo(double beta, int G);

#endif
