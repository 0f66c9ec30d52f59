/* fuzz_vocab.c — libFuzzer target: the vocabulary (vocab.json / encoder.json) loader.
 *
 * Input: the vocabulary JSON. When the input holds a 0x00 byte it is split there instead: the
 * bytes before it are the vocabulary, the bytes after it the merges text, so both files vary.
 * Without a 0x00, the vocabulary is loaded twice: with an empty merges file ("#version" line only)
 * and, when that works, with a small fixed one (the seeds' vocabularies hold its symbols).
 *
 * Properties (abort on violation):
 *   - on failure, err is non-empty, one line (no '\n'), NUL-terminated within TOK_ERR_LEN;
 *   - on success: encoding (round trip, reference encoder, warm cache; see fuzz_common.h), and
 *     tok_save into a temporary folder then tok_load gives the same tokenizer (files removed after).
 */
#include "fuzz_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_dir;

static const char k_empty_merges[] = "#version: 0.2\n";
static const char k_small_merges[] = "#version: 0.2\n\xC4\xA0 t\nh e\na b\nab c\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_dir = fz_make_tmpdir("vocab");
    return 0;
}

/* 1 when the tokenizer loaded */
static int one(const char *vocab, size_t vl, const char *merges, size_t ml, const uint8_t *data, size_t size)
{
    return fz_load_and_exercise(vocab, vl, merges, ml, data, size, g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nul = memchr(s, 0, size);
    if (nul) {
        size_t vl = (size_t)(nul - s);
        one(s, vl, nul + 1, size - vl - 1, data, size);
    } else {
        if (one(s, size, k_empty_merges, sizeof k_empty_merges - 1, data, size))
            one(s, size, k_small_merges, sizeof k_small_merges - 1, data, size);
    }
    return 0;
}
