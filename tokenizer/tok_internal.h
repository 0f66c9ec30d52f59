/* tok_internal.h — what the tokenizer's .c files share: the tokenizer struct, hashing, the
 * pre-tokenizer's scanner, and the GPT-2 byte<->unicode table. Not a public header. */
#ifndef RLHF_TOK_INTERNAL_H
#define RLHF_TOK_INTERNAL_H

#include "tok.h"

#include <stdint.h>
#include <string.h>

/* Character classes of GPT-2's pattern. */
enum { TC_OTHER = 0, TC_LETTER = 1, TC_NUMBER = 2, TC_SPACE = 3 };

/* End of the pre-token that starts at s[i] (i < n). Implements GPT-2's pattern exactly. */
size_t pretok_next(const uint8_t *s, size_t n, size_t i);

/* A position p in (lo, hi] where pre-tokenization of s certainly breaks (so text before and after
 * p can be processed independently); returns hi when none is found before it. */
size_t pretok_safe_split(const uint8_t *s, size_t lo, size_t hi);

/* GPT-2's bytes_to_unicode: byte b is written as code point tok_byte_to_cp(b); its default id in a
 * byte-level vocabulary is tok_byte_rank(b) (printable bytes first, as GPT-2's encoder.json). */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_byte_rank(uint8_t b);
int tok_cp_to_byte(uint32_t cp); /* -1 when cp is not one of the 256 symbols */

static inline uint64_t tok_hash_bytes(const uint8_t *p, size_t n)
{
    /* a small multiply-xorshift hash, 8 bytes at a time */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ (k * 0xbf58476d1ce4e5b9ull)) * 0x94d049bb133111ebull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) k |= (uint64_t)p[i] << (8 * i);
    h = (h ^ (k * 0xbf58476d1ce4e5b9ull)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static inline uint64_t tok_hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

struct tok_tokenizer {
    size_t n_vocab;
    uint8_t *bytes;   /* all token bytes, back to back */
    size_t *off;      /* token i is bytes[off[i] .. off[i+1]) */
    int32_t *rank;    /* merge rank of token i (index of the first merge producing it), or -1 */
    int32_t byte_id[256];
    int32_t eot;      /* id of <|endoftext|>, or -1 */

    /* bytes -> id (open addressing; -1 empty). Special tokens are not in it. */
    int32_t *vtab;
    size_t vmask;

    /* (left id, right id) -> merge: every split of every merge-made token into two tokens, so a
     * pair merges exactly when its concatenation is a token with a rank (tiktoken's rule). */
    uint64_t *pkey;   /* (left << 32 | right) + 1; 0 = empty */
    int32_t *prank;
    int32_t *pid;
    size_t pmask;

    int32_t (*merges)[2]; /* merge list in rank order, for saving */
    size_t n_merges;
};

/* Find the id of a byte string, or -1. */
int32_t tok_lookup(const tok_tokenizer *t, const uint8_t *p, size_t n);

/* Build a tokenizer from token byte strings (ids 0..n-1) and a merge list (pairs of ids, rank
 * order). Takes ownership of nothing; copies. eot may be -1. Validates that each merge's result is
 * a token. Used by the loader and the trainer. */
int tok_build(tok_tokenizer **out, size_t n, const uint8_t *const *tb, const size_t *tl,
              const int32_t (*merges)[2], size_t n_merges, int32_t eot, char *err, size_t errlen);

#endif
