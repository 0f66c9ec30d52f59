/* fuzz_encode.c — libFuzzer target: encode arbitrary bytes with the real GPT-2 vocabulary.
 *
 * The input is the text (any bytes, not necessarily UTF-8). For both modes (plain, and
 * TOK_ALLOW_SPECIAL) it checks, aborting on a violation:
 *   - every id is below tok_vocab_size, and decode(encode(x)) == x byte for byte;
 *   - tok_encode equals the reference encoder of fuzz_common.h (pattern + tiktoken merge loop);
 *   - tok_pretokenize cuts where the reference pre-tokenizer does;
 *   - tok_encode_parallel(2 threads) equals tok_encode (1 input in 8: each call creates encoders);
 *     since inputs are far smaller than its chunks, the cut points it would use
 *     (pretok_safe_split) are checked directly on every input: encoding the two sides of a cut
 *     separately gives the same ids; 1 input in 2048 is also repeated into a buffer big enough
 *     for tok_encode_parallel to really cut it;
 *   - one encoder is reused across inputs (warm cache, as in real use); every input is encoded
 *     twice by it (the second time all cache hits), and 1 in 16 also by a fresh encoder (cold).
 * Which inputs get the occasional checks depends only on the input's bytes, so a crash replays
 * (corpus/encode/parallel_big.txt is one that gets them all).
 *
 * The vocabulary comes from $RLHF_GPT2_DIR, else $RLHF_CACHE/gpt2/openai, else
 * $HOME/.cache/rlhf.c/gpt2/openai (tools/get_gpt2_vocab.sh makes it).
 */
#include "fuzz_common.h"
#include "tok_internal.h" /* pretok_safe_split */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tok_tokenizer *g_tok;
static tok_encoder *g_enc;
static fz_ref g_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[4096];
    const char *env = getenv("RLHF_GPT2_DIR");
    if (env && *env) snprintf(dir, sizeof dir, "%s", env);
    else if ((env = getenv("RLHF_CACHE")) && *env) snprintf(dir, sizeof dir, "%s/gpt2/openai", env);
    else snprintf(dir, sizeof dir, "%s/.cache/rlhf.c/gpt2/openai", getenv("HOME") ? getenv("HOME") : "");
    char err[TOK_ERR_LEN];
    if (tok_load(dir, &g_tok, err, sizeof err)) {
        fprintf(stderr,
                "fuzz_encode: cannot load the GPT-2 vocabulary from %s: %s\n"
                "fuzz_encode: run tools/get_gpt2_vocab.sh, or set RLHF_GPT2_DIR to a folder holding "
                "encoder.json + vocab.bpe (or vocab.json + merges.txt)\n",
                dir, err);
        abort();
    }
    if (tok_vocab_size(g_tok) != 50257 || tok_eot_id(g_tok) != 50256) {
        fprintf(stderr, "fuzz_encode: %s is not GPT-2's vocabulary (%zu ids, <|endoftext|> = %d)\n", dir,
                tok_vocab_size(g_tok), tok_eot_id(g_tok));
        abort();
    }
    g_enc = tok_encoder_create(g_tok);
    if (!g_enc) {
        fprintf(stderr, "fuzz_encode: out of memory\n");
        abort();
    }
    fz_ref_init(&g_ref, g_tok);
    return 0;
}

static void encode_or_die(tok_encoder *e, const uint8_t *s, size_t n, int flags, tok_ids *out)
{
    FZ_CHECK(tok_encode(e, (const char *)s, n, flags, out) == 0, "tok_encode failed (out of memory?)");
}

/* the two sides of pretok_safe_split's cut encode to the ids of the whole */
static void check_split(const uint8_t *s, size_t n, size_t lo, int flags, const tok_ids *whole)
{
    size_t p = pretok_safe_split(s, lo, n);
    FZ_CHECK(p > lo && p <= n, "pretok_safe_split(lo=%zu, hi=%zu) = %zu, outside (lo, hi]", lo, n, p);
    if (p == n) return;
    tok_ids parts = {0};
    encode_or_die(g_enc, s, p, flags, &parts);
    encode_or_die(g_enc, s + p, n - p, flags, &parts);
    if (!fz_ids_equal(whole, &parts)) {
        fprintf(stderr, "  split at byte %zu (lo %zu), flags %d\n", p, lo, flags);
        fz_check_ids_equal(whole, &parts, "encode(text)", "encode(text[..p]) + encode(text[p..])", s, n);
    }
    tok_ids_free(&parts);
}

/* repeat the input into a buffer big enough for tok_encode_parallel to cut into chunks */
static void check_parallel_big(const uint8_t *s, size_t n, int flags)
{
    size_t big = (600u << 10) + n;
    uint8_t *buf = malloc(big);
    FZ_CHECK(buf, "out of memory");
    for (size_t o = 0; o < big; o += n) memcpy(buf + o, s, big - o < n ? big - o : n);
    tok_ids a = {0}, b = {0};
    encode_or_die(g_enc, buf, big, flags, &a);
    FZ_CHECK(tok_encode_parallel(g_tok, (const char *)buf, big, flags, 2, &b) == 0,
             "tok_encode_parallel failed (out of memory?)");
    if (!fz_ids_equal(&a, &b)) {
        fprintf(stderr, "  input repeated to %zu bytes, flags %d\n", big, flags);
        fz_check_ids_equal(&a, &b, "tok_encode", "tok_encode_parallel(2 threads)", s, n);
    }
    fz_check_roundtrip(g_tok, &b, buf, big, "tok_encode_parallel (big buffer)");
    tok_ids_free(&a);
    tok_ids_free(&b);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = fz_input_hash(data, size);
    fz_check_pretokenize(data, size);
    for (int mode = 0; mode < 2; mode++) {
        int flags = mode ? TOK_ALLOW_SPECIAL : 0;
        const char *name = mode ? "tok_encode(TOK_ALLOW_SPECIAL)" : "tok_encode";
        tok_ids ids = {0};
        encode_or_die(g_enc, data, size, flags, &ids);
        fz_check_roundtrip(g_tok, &ids, data, size, name);

        tok_ids ref = {0};
        if (fz_ref_encode(&g_ref, data, size, flags, &ref) == 0)
            fz_check_ids_equal(&ref, &ids, "reference", name, data, size);
        tok_ids_free(&ref);

        /* each call makes an encoder per thread (~11 MB), so not for every input */
        if ((h >> 24) % 8 == 0) {
            tok_ids par = {0};
            FZ_CHECK(tok_encode_parallel(g_tok, (const char *)data, size, flags, 2, &par) == 0,
                     "tok_encode_parallel failed (out of memory?)");
            fz_check_ids_equal(&ids, &par, name, "tok_encode_parallel(2 threads)", data, size);
            tok_ids_free(&par);
        }

        /* warm cache: every piece of this input is now cached */
        tok_ids again = {0};
        encode_or_die(g_enc, data, size, flags, &again);
        fz_check_ids_equal(&ids, &again, name, "second tok_encode (warm cache)", data, size);
        tok_ids_free(&again);

        /* cold cache */
        if ((h >> 8) % 16 == 0) {
            tok_encoder *fresh = tok_encoder_create(g_tok);
            FZ_CHECK(fresh, "tok_encoder_create failed");
            tok_ids cold = {0};
            encode_or_die(fresh, data, size, flags, &cold);
            fz_check_ids_equal(&ids, &cold, name, "tok_encode with a fresh encoder (cold cache)", data, size);
            tok_ids_free(&cold);
            tok_encoder_free(fresh);
        }

        /* cut points of tok_encode_parallel */
        if (size > 1) {
            check_split(data, size, 0, flags, &ids);
            check_split(data, size, (size_t)(h % size), flags, &ids);
            check_split(data, size, (size_t)((h >> 32) % size), flags, &ids);
        }
        /* ~1.2 MB of encoding (seconds when instrumented): rarely, and in one mode */
        if (size > 0 && (h >> 16) % 2048 == 0 && (int)((h >> 40) & 1) == mode)
            check_parallel_big(data, size, flags);
        tok_ids_free(&ids);
    }
    return 0;
}
