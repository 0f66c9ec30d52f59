/* tokens.h — a tokenised corpus for language-model training: one token stream (documents joined
 * by <|endoftext|>), a fixed train/validation split, and deterministic batches.
 *
 * Split rule: the last val_fraction of the stream (cut at a chunk boundary) is validation.
 * Batches: the training part is cut into chunks of T+1 tokens (stride T); chunks are visited in a
 * seeded random order that is new each epoch. The whole data position is one counter (chunks
 * consumed), so a checkpoint stores one number and resuming continues exactly. */
#ifndef RLHF_TOKENS_H
#define RLHF_TOKENS_H

#include "tok.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *tok;
    size_t n;           /* tokens in all */
    size_t n_train;     /* tokens [0, n_train) are training, [n_train, n) validation */
    int T;
    uint64_t seed;
    /* the order of the current epoch */
    size_t nchunks;
    uint32_t *perm;
    uint64_t perm_epoch;
} ds_tokens;

/* Tokenise files (each a document; joined by <|endoftext|> when the tokenizer has it; a literal
 * "<|endoftext|>" inside a file is that token too). T is the
 * sequence length; val_fraction in [0, 0.5]. Errors name the file. */
int ds_tokens_load(ds_tokens *d, const tok_tokenizer *t, const char *const *files, size_t nfiles, int T,
                   double val_fraction, uint64_t seed, int nthreads, char *err, size_t errlen);
void ds_tokens_free(ds_tokens *d);

/* B training sequences: inp (B,T) and tgt (B,T) (tgt = inp shifted by one). *cursor counts chunks
 * consumed and is advanced by B. */
int ds_tokens_batch(ds_tokens *d, int B, uint64_t *cursor, int32_t *inp, int32_t *tgt);

/* Validation batch k (sequential chunks of the validation part); returns how many of the B rows
 * were filled (0 when k is past the end). */
int ds_tokens_val_batch(const ds_tokens *d, int B, size_t k, int32_t *inp, int32_t *tgt);
size_t ds_tokens_val_chunks(const ds_tokens *d);

#endif
