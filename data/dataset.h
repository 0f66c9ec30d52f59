/* dataset.h — JSON Lines datasets with TRL's field names, tokenised, shuffled and batched with
 * padding, attention masks and loss masks. Every trainer (SFT, reward model, DPO, PPO, eval) reads
 * its data through this one module.
 *
 * ---- File format -------------------------------------------------------------------------------
 * One JSON object per line (blank lines are skipped). The kind is decided by the first record's
 * fields, and every record must have exactly the fields of that kind (other fields are ignored):
 *   DS_TEXT                {"text"}                        language modelling
 *   DS_PROMPT_COMPLETION   {"prompt", "completion"}        SFT
 *   DS_PREFERENCE          {"prompt", "chosen", "rejected"}   reward model, DPO
 *                          {"chosen", "rejected"}          implicit prompt (ds_dataset.implicit_prompt)
 *   DS_PROMPT_ONLY         {"prompt"}                      PPO rollouts, eval
 * Values must be strings (conversational lists of messages are refused). Preference records may carry
 * TRL's numeric "margin" (the reward model's Bradley–Terry margin): in every record or in none. "text", "completion",
 * "chosen" and "rejected" must not be empty; a prompt may be empty except in a prompt-only file.
 * Implicit prompts are TRL's extract_prompt: the prompt is the longest common prefix of chosen and
 * rejected, moved back one character when it ends in a space (so the space starts the completions);
 * when one string is a prefix of the other, the last character of the shorter one is left to the
 * completions (TRL's loop ends one short); the cut never falls inside a UTF-8 sequence.
 * chosen == rejected is an error.
 *
 * Errors are one line: "FILE:LINE:COLUMN: what", e.g.
 *   prefs.jsonl:12:1: field "chosen" must be a string
 *   prefs.jsonl:7:15: invalid JSON: ...            (column from jansson, 1-based characters)
 *   prefs.jsonl: empty file (no records)
 * Field errors point at column 1 of the line.
 *
 * ---- Tokenisation ------------------------------------------------------------------------------
 * GPT-2 BPE (tok_encode, specials NOT allowed: "<|endoftext|>" inside a string is ordinary text).
 * Prompt and completion are tokenised separately and concatenated (as TRL does), so the boundary
 * between them is always a token boundary. EOS (<|endoftext|>, when the tokenizer has it) is
 * appended to every completion, chosen and rejected, and to every text (a text record is a
 * completion with an empty prompt). Prompts get no EOS.
 * Length limits (each <= 0: no limit), applied in this order:
 *   1. max_prompt_len: a longer prompt keeps its LAST max_prompt_len tokens (cut from the left: the
 *      end of the prompt is what the completion follows);
 *   2. max_completion_len: a longer completion (EOS included) keeps its FIRST max_completion_len
 *      tokens (cut from the right; a cut completion has lost its EOS, as in TRL);
 *   3. max_len (the model's n_positions): when prompt + completion is still longer, the completion
 *      is cut further from the right; if the prompt alone leaves no room for one completion token,
 *      the prompt is cut from the left to max_len - 1. A preference pair shares one prompt cut.
 * Cuts are counted (n_prompt_cut, n_completion_cut) so callers can report them.
 *
 * ---- Batches -----------------------------------------------------------------------------------
 * A row is one sequence s = prompt ++ completion of n tokens. With T the longest row of the batch:
 *   tokens[b,t]    = s[t] for t < n, pad_id after (right padding)
 *   targets[b,t]   = s[t+1] for t < n-1, pad_id after (the next token; pad_id is a valid id)
 *   attn[b,t]      = 1 for t < n, else 0
 *   loss_mask[b,t] = 1 when targets[b,t] is a completion token (t+1 >= prompt length, t+1 < n),
 *                    else 0; for DS_TEXT every real next token counts (the prompt length is 0).
 *                    Prompt tokens and padding are never trained on; the first token of a row
 *                    has nothing before it, so with an empty prompt it is never a target.
 *   lengths[b] = n, prompt_lengths[b] = prompt tokens.
 * The GPT-2 here has no attention mask. Right padding is harmless for a causal model: position t
 * attends only to positions <= t, so real tokens never see the padding after them; the padded
 * positions compute garbage that loss_mask zeroes, and scalar heads (reward, value) must read the
 * hidden state at the last REAL token, position lengths[b] - 1, never at T - 1.
 * Preference batches hold 2P rows for P pairs: rows 0..P-1 are prompt+chosen, rows P..2P-1 are
 * prompt+rejected of the same pairs in the same order, so DPO and the reward model do one forward.
 * Prompt-only batches hold the prompts alone (loss_mask all 0); for sampling, pass row pointers
 * &tokens[b*T] with lengths[b] to gpt2_sample (the KV cache needs no padding).
 *
 * ---- Order -------------------------------------------------------------------------------------
 * A ds_sampler visits the examples in a seeded random order that is new each epoch (Fisher-Yates
 * driven by tokenizer/rng.h). The whole position is one counter (examples consumed), so a
 * checkpoint stores one number and a resumed run continues exactly; epoch = cursor / n.
 */
#ifndef RLHF_DATASET_H
#define RLHF_DATASET_H

#include "tok.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { DS_TEXT, DS_PROMPT_COMPLETION, DS_PREFERENCE, DS_PROMPT_ONLY } ds_kind;

/* "text", "prompt-completion", "preference", "prompt-only" */
const char *ds_kind_name(ds_kind k);

/* ---- streaming reader (raw strings, for tools that need the text itself, e.g. `rlhf score`) -- */

typedef struct ds_reader ds_reader;

/* One record. Strings are NUL-terminated (lengths given: JSON strings may not hold NUL, but the
 * lengths save a strlen) and stay valid until the next ds_reader_next or ds_reader_close. Fields
 * not in the kind are NULL. For implicit-prompt preferences the reader has already split off the
 * prompt (prompt points to a copy of the shared prefix). */
typedef struct {
    const char *text, *prompt, *completion, *chosen, *rejected;
    size_t text_len, prompt_len, completion_len, chosen_len, rejected_len;
    long line; /* 1-based line in the file */
    int has_margin;  /* preference records: TRL's optional numeric "margin" (in every record or none) */
    double margin;   /* 0 when absent */
} ds_record;

/* Open path ("-" is stdin); reads nothing yet. */
int ds_reader_open(ds_reader **out, const char *path, char *err, size_t errlen);
/* The same over len bytes in memory (not copied: they must outlive the reader); name is the file
 * name messages give. */
int ds_reader_open_mem(ds_reader **out, const char *data, size_t len, const char *name, char *err, size_t errlen);
/* 1: *rec filled; 0: end of file (an error "empty file" if there was no record at all); -1: error. */
int ds_reader_next(ds_reader *r, ds_record *rec, char *err, size_t errlen);
/* the kind (valid after the first record) and whether the prompt was implicit */
ds_kind ds_reader_kind(const ds_reader *r);
int ds_reader_implicit_prompt(const ds_reader *r);
void ds_reader_close(ds_reader *r);

/* ---- tokenised dataset ----------------------------------------------------------------------- */

typedef struct {
    int max_prompt_len;      /* <= 0: no limit (see the rules above) */
    int max_completion_len;  /* <= 0: no limit */
    int max_len;             /* <= 0: no limit; normally the model's n_positions */
    int add_eos;             /* 1 (default): EOS after completions, chosen, rejected and texts */
    int require_kind;        /* -1 (default): any kind; else a ds_kind the file must have */
    tok_encoder *encoder;    /* NULL (default): one is made for the load; else this one (of the same
                              * tokenizer) is used, so a caller loading many files keeps one cache */
} ds_load_opts;

ds_load_opts ds_load_defaults(void); /* no limits, add_eos 1, require_kind -1 */

/* One example: token ranges into ds_dataset.tok. a is the completion (DS_PROMPT_COMPLETION), the
 * chosen completion (DS_PREFERENCE) or the text (DS_TEXT, np = 0); b is the rejected completion
 * (DS_PREFERENCE only, else nb = 0). DS_PROMPT_ONLY has na = nb = 0. */
typedef struct {
    size_t prompt, a, b;   /* offsets into tok */
    int np, na, nb;        /* token counts after the limits */
    long line;             /* source line, for messages */
    float margin;          /* preference pairs: the record's "margin" (0 without one) */
} ds_example;

typedef struct {
    ds_kind kind;
    int implicit_prompt;   /* preference file without "prompt" */
    int has_margins;       /* preference file whose records carry a "margin" (all of them) */
    char *path;            /* a copy of the file name */
    size_t n;              /* examples */
    ds_example *ex;
    int32_t *tok;          /* all tokens, one block */
    size_t ntok;
    int32_t eos_id;        /* <|endoftext|>, or -1 */
    int32_t pad_id;        /* eos_id when there is one, else 0: any valid id (masked anyway) */
    int max_row;           /* longest row (prompt + longest completion) over the dataset */
    size_t n_prompt_cut, n_completion_cut; /* how many prompts / completions the limits shortened */
    size_t n_completion_tokens;            /* completion (or text) tokens in all, chosen+rejected */
} ds_dataset;

/* Read, check and tokenise a whole file (streaming: one line in memory at a time). With
 * o->require_kind >= 0, a file of another kind is an error naming both kinds. On error *d is left
 * empty (safe to ds_free). */
int ds_load(ds_dataset *d, const tok_tokenizer *t, const char *path, const ds_load_opts *o, char *err,
            size_t errlen);
/* The same from len bytes in memory (name: the file name messages give). */
int ds_load_mem(ds_dataset *d, const tok_tokenizer *t, const char *data, size_t len, const char *name,
                const ds_load_opts *o, char *err, size_t errlen);
void ds_free(ds_dataset *d);

/* ---- order ----------------------------------------------------------------------------------- */

typedef struct {
    size_t n;
    uint64_t seed;
    size_t *perm;          /* the order of epoch perm_epoch */
    uint64_t perm_epoch;
} ds_sampler;

int ds_sampler_create(ds_sampler *s, size_t n, uint64_t seed); /* 0, or -1 (n == 0, out of memory) */
void ds_sampler_free(ds_sampler *s);
/* The next k example indices into idx; *cursor (examples consumed so far) advances by k. Batches
 * run across epoch boundaries (the next epoch's order continues where the last one ended). */
void ds_sampler_next(ds_sampler *s, size_t k, uint64_t *cursor, size_t *idx);
/* The permutation of epoch e into perm (n entries): the same values ds_sampler_next uses. */
void ds_order(size_t n, uint64_t seed, uint64_t epoch, size_t *perm);

/* ---- prompt sets ------------------------------------------------------------------------------- */

/* Prompts as token rows, for sampling: rows[i] (len[i] >= 1 tokens) point into a dataset's tokens. */
typedef struct {
    const int32_t **rows;
    int *len;
    int n;
} ds_prompts;

/* The prompts of examples idx[0..n) of d (idx NULL: the first n, in file order). An empty prompt
 * cannot be sampled from: "FILE:LINE: empty prompt". On error *p is left empty. */
int ds_prompts_make(const ds_dataset *d, const size_t *idx, size_t n, ds_prompts *p, char *err, size_t errlen);
void ds_prompts_free(ds_prompts *p);
/* the longest prompt */
int ds_prompts_max_len(const ds_prompts *p);

/* ---- batches --------------------------------------------------------------------------------- */

typedef struct {
    int B;                 /* rows filled (preference: 2 * pairs) */
    int T;                 /* columns: the longest row of this batch; arrays are (B,T) contiguous */
    int max_rows, max_T;   /* capacity */
    int32_t *tokens, *targets;
    float *attn, *loss_mask;
    int *lengths, *prompt_lengths;
    size_t *index;         /* example index of each row */
} ds_batch;

/* Room for max_rows rows of up to max_T tokens (use d->max_row, and 2*pairs rows for
 * preferences). Allocated once; filling allocates nothing. */
int ds_batch_create(ds_batch *b, int max_rows, int max_T, char *err, size_t errlen);
void ds_batch_free(ds_batch *b);

/* Fill b from examples idx[0..k): one row each (DS_TEXT, DS_PROMPT_COMPLETION, DS_PROMPT_ONLY), or
 * two (DS_PREFERENCE: chosen rows then rejected rows). Fails (naming the capacity) when the rows do
 * not fit. */
int ds_batch_fill(const ds_dataset *d, const size_t *idx, size_t k, ds_batch *b, char *err, size_t errlen);

/* Completion tokens of the filled batch (sum of loss_mask). */
size_t ds_batch_loss_tokens(const ds_batch *b);

#endif
