/* fuzz_merges.c — libFuzzer target: the merges (merges.txt / vocab.bpe) loader.
 *
 * Input: the merges text. The vocabulary is fixed, built once: GPT-2's 256 byte symbols in GPT-2's
 * order, a few multi-byte tokens, and <|endoftext|>.
 *
 * Properties (abort on violation):
 *   - on failure, err is non-empty, one line (no '\n'), NUL-terminated within TOK_ERR_LEN;
 *   - on success: encoding fixed texts and the input itself round-trips, equals the reference
 *     encoder (whose merge ranks come from the loaded merge list) and is stable with a warm cache;
 *     tok_save into a temporary folder then tok_load gives the same tokenizer (files removed after).
 */
#include "fuzz_common.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_dir;
static char *g_vocab;
static size_t g_vocab_len;

/* multi-byte tokens after the 256 byte symbols ("Ġ" is GPT-2's spelling of the space byte) */
static const char *const k_extra[] = {
    "ab", "abc", "bc", "\xC4\xA0t", "he", "\xC4\xA0th", "th", "the", "\xC4\xA0the", "in", "ing",
    "\xC4\xA0\xC4\xA0", "\304\240a", "er", "'s", "12", "\xC4\x8A\xC4\x8A", "aa", "aaaa",
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

/* GPT-2's bytes_to_unicode, written out again */
static unsigned byte_cp(int b)
{
    if (printable(b)) return (unsigned)b;
    unsigned k = 0;
    for (int x = 0; x < b; x++) k += !printable(x);
    return 256u + k;
}

static void append(size_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(size_t *n, const char *fmt, ...)
{
    static size_t cap;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (*n + (size_t)w + 1 > cap) {
        cap = 2 * (*n + (size_t)w + 1);
        g_vocab = realloc(g_vocab, cap);
        FZ_CHECK(g_vocab, "out of memory");
    }
    va_start(ap, fmt);
    vsnprintf(g_vocab + *n, (size_t)w + 1, fmt, ap);
    va_end(ap);
    *n += (size_t)w;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_dir = fz_make_tmpdir("merges");
    size_t n = 0;
    int id = 0;
    append(&n, "{");
    for (int pass = 0; pass < 2; pass++) /* printable bytes first, then the rest, as GPT-2 */
        for (int b = 0; b < 256; b++) {
            if (printable(b) != (pass == 0)) continue;
            unsigned cp = byte_cp(b);
            if (cp == '"' || cp == '\\') append(&n, "%s\"\\%c\": %d", id ? ", " : "", (char)cp, id);
            else append(&n, "%s\"\\u%04x\": %d", id ? ", " : "", cp, id);
            id++;
        }
    for (size_t k = 0; k < sizeof k_extra / sizeof *k_extra; k++) append(&n, ", \"%s\": %d", k_extra[k], id++);
    append(&n, ", \"" TOK_EOT_TEXT "\": %d}", id);
    g_vocab_len = n;

    /* the fixed vocabulary must load with no merges, else every input fails the same way */
    char err[TOK_ERR_LEN];
    tok_tokenizer *t;
    if (tok_load_mem(g_vocab, g_vocab_len, "vocab.json", "", 0, "merges.txt", &t, err, sizeof err)) {
        fprintf(stderr, "fuzz_merges: the built-in vocabulary does not load: %s\n", err);
        abort();
    }
    tok_free(t);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_load_and_exercise(g_vocab, g_vocab_len, (const char *)data, size, data, size, g_dir);
    return 0;
}
