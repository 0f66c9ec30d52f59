/* tok.h — GPT-2 byte-level BPE tokenizer: load (Hugging Face or OpenAI layout), encode, decode,
 * train, save.
 *
 * Why this shape: the tokenizer is immutable after loading, so one tok_tokenizer is shared by all
 * threads; per-thread mutable state (the piece cache and scratch buffers) lives in tok_encoder, so
 * encoding allocates nothing once the cache is warm and there is no hidden global state.
 *
 * Encoding semantics are tiktoken's (and therefore OpenAI GPT-2's):
 *   1. optional special-token split (<|endoftext|> only when the caller allows specials);
 *   2. pre-tokenization with GPT-2's pattern
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      implemented by hand over utf8proc categories (\s is Unicode White_Space);
 *   3. a piece that is itself a vocabulary entry becomes that token; otherwise its bytes are merged
 *      pairwise, always merging the adjacent pair whose concatenation has the lowest merge rank
 *      (leftmost on ties).
 * Bytes that are not valid UTF-8 are never an error: each invalid byte is a character of its own
 * in the "other" class ([^\s\p{L}\p{N}]) and is encoded as its byte token, so decode(encode(x)) == x
 * for every byte string x.
 *
 * Errors: functions returning int give 0 on success and -1 on failure, with one line of text in
 * err (file:line:column: what is wrong). Nothing is printed.
 */
#ifndef RLHF_TOK_H
#define RLHF_TOK_H

#include <stddef.h>
#include <stdint.h>

#define TOK_ERR_LEN 512
#define TOK_EOT_TEXT "<|endoftext|>"

typedef struct tok_tokenizer tok_tokenizer;
typedef struct tok_encoder tok_encoder;

/* A growable array of token ids. Zero-initialise; free with tok_ids_free. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok_ids;

void tok_ids_free(tok_ids *v);
int tok_ids_push(tok_ids *v, int32_t id); /* 0, or -1 when out of memory */

/* A growable byte buffer. Zero-initialise; free with tok_bytes_free. */
typedef struct {
    uint8_t *data;
    size_t n, cap;
} tok_bytes;

void tok_bytes_free(tok_bytes *b);
/* append n bytes to b (0, or -1 when out of memory; b is left as it was) */
int tok_bytes_append(tok_bytes *b, const void *p, size_t n);

/* ---- loading and saving ---------------------------------------------------------------------- */

/* Load a folder holding either vocab.json + merges.txt (Hugging Face) or encoder.json + vocab.bpe
 * (OpenAI). Hugging Face names win when both are present. */
int tok_load(const char *dir, tok_tokenizer **out, char *err, size_t errlen);

/* The two files of the tokenizer in dir, by the rule tok_load uses (Hugging Face names win; the
 * OpenAI files hold the same contents under other names). 0, or -1 when neither layout is there. */
int tok_files(const char *dir, char *vocab, char *merges, size_t n, char *err, size_t errlen);

/* Load from two explicit files (vocabulary JSON object token->id, and merges text). */
int tok_load_files(const char *vocab_path, const char *merges_path, tok_tokenizer **out, char *err,
                   size_t errlen);

/* Load from memory; the names are only used in error messages. */
int tok_load_mem(const char *vocab, size_t vocab_len, const char *vocab_name, const char *merges,
                 size_t merges_len, const char *merges_name, tok_tokenizer **out, char *err, size_t errlen);

/* Write dir/vocab.json and dir/merges.txt (Hugging Face layout; each file written to a temporary
 * name and renamed, so a reader never sees a half-written file). Creates dir if needed. */
int tok_save(const tok_tokenizer *t, const char *dir, char *err, size_t errlen);

void tok_free(tok_tokenizer *t);

size_t tok_vocab_size(const tok_tokenizer *t);   /* number of ids (max id + 1) */
size_t tok_merge_count(const tok_tokenizer *t);
int32_t tok_eot_id(const tok_tokenizer *t);      /* id of <|endoftext|>, or -1 */
/* Merge number r (0 = first): the ids of its left and right parts. 0, or -1 when r is out of range. */
int tok_merge(const tok_tokenizer *t, size_t r, int32_t *a, int32_t *b);
/* Bytes of one token; NULL (and *len = 0) for an id out of range. */
const uint8_t *tok_token_bytes(const tok_tokenizer *t, int32_t id, size_t *len);

/* ---- encoding -------------------------------------------------------------------------------- */

enum { TOK_ALLOW_SPECIAL = 1 }; /* flag: "<|endoftext|>" in the text becomes the special token */

/* Per-thread encoder state: a cache from pre-token bytes to ids, and scratch space. */
tok_encoder *tok_encoder_create(const tok_tokenizer *t);
void tok_encoder_free(tok_encoder *e);

/* Append the ids of text[0..len) to out. Returns 0, or -1 when out of memory. */
int tok_encode(tok_encoder *e, const char *text, size_t len, int flags, tok_ids *out);

/* Encode a large buffer with nthreads threads (<= 0: OpenMP's default), splitting it only at
 * places where pre-tokenization is certain to break, so the result equals tok_encode's. */
int tok_encode_parallel(const tok_tokenizer *t, const char *text, size_t len, int flags,
                        int nthreads, tok_ids *out);

/* Pre-tokenization alone: calls fn(piece, piece_len, ud) for each piece, in order (specials are not
 * split here). Exposed for the trainer and for tests. */
void tok_pretokenize(const char *text, size_t len, void (*fn)(const char *, size_t, void *), void *ud);

/* ---- decoding -------------------------------------------------------------------------------- */

/* Append the bytes of ids to out. Fails (naming the index and id) for an id out of range. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, tok_bytes *out, char *err,
               size_t errlen);
/* The same, but an id outside the vocabulary (a model whose vocabulary is padded past the
 * tokenizer's can sample one) becomes U+FFFD instead of an error (sampled text, reports). */
int tok_decode_lenient(const tok_tokenizer *t, const int32_t *ids, size_t n, tok_bytes *out, char *err, size_t errlen);

/* ---- training -------------------------------------------------------------------------------- */

typedef struct {
    size_t vocab_size;   /* total ids: 256 bytes + merges + 1 (<|endoftext|>); >= 257 */
    int nthreads;        /* <= 0: OpenMP's default */
    size_t min_frequency;/* a pair must occur at least this often to be merged (default 2) */
    /* optional progress callback: done/total in arbitrary units */
    void (*progress)(void *ud, double done, double total, const char *phase);
    void *progress_ud;
} tok_train_opts;

tok_train_opts tok_train_defaults(void);

/* Train a byte-level BPE on the concatenation of the given texts (each a separate document:
 * pre-tokenization restarts at each). Deterministic: the same texts and options give the same
 * merges whatever the thread count. <|endoftext|> in the texts is a document separator. */
int tok_train(const char *const *texts, const size_t *lens, size_t ntexts, const tok_train_opts *o,
              tok_tokenizer **out, char *err, size_t errlen);

#endif
