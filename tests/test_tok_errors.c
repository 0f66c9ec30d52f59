/* test_tok_errors.c — bad tokenizer files give one clear error (file, position, cause), through
 * the library and through the CLI (one stderr line, non-zero exit). */
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a tiny valid byte-level vocabulary: the 256 byte symbols, "ab", "abc", <|endoftext|> */
static char *small_vocab(const char *extra)
{
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{");
    int id = 0;
    /* printable bytes first, then the rest, as GPT-2 */
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            int pr = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            if (pr != (pass == 0)) continue;
            unsigned cp;
            if (pr) cp = (unsigned)b;
            else {
                int k = 0;
                for (int x = 0; x < b; x++) {
                    int px = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE);
                    k += !px;
                }
                cp = 256u + (unsigned)k;
            }
            if (cp == '"' || cp == '\\')
                n += (size_t)snprintf(s + n, cap - n, "%s\"\\%c\": %d", id ? ", " : "", (char)cp, id);
            else
                n += (size_t)snprintf(s + n, cap - n, "%s\"\\u%04x\": %d", id ? ", " : "", cp, id);
            id++;
        }
    n += (size_t)snprintf(s + n, cap - n, ", \"ab\": 256, \"abc\": 257, \"<|endoftext|>\": 258%s}", extra);
    return s;
}

static const char *make_dir(const char *tag, const char *vocab, const char *merges)
{
    const char *d = tu_tmpdir(tag);
    char p[4200];
    if (vocab) {
        snprintf(p, sizeof p, "%s/vocab.json", d);
        tu_write(p, vocab, strlen(vocab));
    }
    if (merges) {
        snprintf(p, sizeof p, "%s/merges.txt", d);
        tu_write(p, merges, strlen(merges));
    }
    return d;
}

static void expect_error(const char *tag, const char *vocab, const char *merges, const char *const *needles)
{
    const char *d = make_dir(tag, vocab, merges);
    char err[TOK_ERR_LEN] = "";
    tok_tokenizer *t = NULL;
    cr_assert(tok_load(d, &t, err, sizeof err) != 0, "%s: loaded a bad tokenizer", tag);
    cr_assert_null(t);
    cr_assert(strchr(err, '\n') == NULL, "%s: error must be one line: %s", tag, err);
    for (const char *const *n = needles; *n; n++) cr_assert(strstr(err, *n), "%s: '%s' not in: %s", tag, *n, err);
    /* and through the CLI: one line on stderr, non-zero status, nothing on stdout */
    char args[4400];
    snprintf(args, sizeof args, "tokenize --tokenizer '%s'", d);
    char *out, *eout;
    int st = tu_run(args, NULL, &out, &eout);
    cr_assert(st != 0, "%s: CLI exit status 0", tag);
    cr_assert_eq(tu_lines(eout), 1, "%s: CLI stderr should be one line: %s", tag, eout);
    cr_assert_str_eq(out, "");
    cr_assert(strstr(eout, needles[0]), "%s: CLI error lacks '%s': %s", tag, needles[0], eout);
    free(out);
    free(eout);
}

Test(tok_errors, small_vocab_is_valid)
{
    char *v = small_vocab("");
    const char *d = make_dir("valid", v, "#version: 0.2\na b\nab c\n");
    char err[TOK_ERR_LEN];
    tok_tokenizer *t;
    cr_assert(tok_load(d, &t, err, sizeof err) == 0, "%s", err);
    tok_encoder *e = tok_encoder_create(t);
    tok_ids ids = {0};
    cr_assert(tok_encode(e, "abc", 3, 0, &ids) == 0);
    cr_assert(ids.n == 1 && ids.ids[0] == 257);
    tok_ids_free(&ids);
    tok_encoder_free(e);
    tok_free(t);
    free(v);
}

Test(tok_errors, missing_files)
{
    char err[TOK_ERR_LEN];
    tok_tokenizer *t;
    cr_assert(tok_load("/nonexistent/dir", &t, err, sizeof err) != 0);
    cr_assert(strstr(err, "/nonexistent/dir") && strstr(err, "no such directory"), "%s", err);
    const char *d = tu_tmpdir("empty");
    cr_assert(tok_load(d, &t, err, sizeof err) != 0);
    cr_assert(strstr(err, "no tokenizer here"), "%s", err);
    char *v = small_vocab("");
    expect_error("no-merges", v, NULL, (const char *[]){"merges.txt", "cannot open", NULL});
    expect_error("no-vocab", NULL, "a b\n", (const char *[]){"vocab.json", "cannot open", NULL});
    free(v);
}

Test(tok_errors, bad_json)
{
    char *v = small_vocab("");
    char *trunc = strdup(v);
    trunc[strlen(trunc) / 2] = 0;
    expect_error("truncated", trunc, "a b\n", (const char *[]){"vocab.json:1:", "invalid JSON", NULL});
    expect_error("not-object", "[1, 2]", "a b\n", (const char *[]){"vocab.json:1:1", "JSON object", NULL});
    expect_error("garbage", "{\"a\": 0,\n \"b\": }", "", (const char *[]){"vocab.json:2:", "invalid JSON", NULL});
    expect_error("not-int", "{\"a\": \"x\"}", "", (const char *[]){"vocab.json", "\"a\"", "integer", NULL});
    /* control characters in a key are escaped, so the message stays one line (found by fuzz_vocab) */
    expect_error("newline-key", "{\"a\\nb\": \"x\", \"c\": 1}", "", (const char *[]){"vocab.json", "a\\u000ab", NULL});
    expect_error("cr-key", "{\"\\r\\u0001\": 0}", "", (const char *[]){"vocab.json", "\\u000d\\u0001", NULL});
    free(trunc);
    free(v);
}

Test(tok_errors, duplicate_entries)
{
    char *v = small_vocab(", \"ab\": 259");
    expect_error("dup-key", v, "", (const char *[]){"vocab.json:1:", "duplicate", NULL});
    free(v);
    v = small_vocab(", \"zz\": 258");
    expect_error("dup-id", v, "", (const char *[]){"vocab.json", "258", NULL});
    free(v);
    v = small_vocab("");
    expect_error("dup-merge", v, "#version: 0.2\na b\nab c\na b\n",
                 (const char *[]){"merges.txt:4:", "duplicate merge", "line 2", NULL});
    free(v);
}

Test(tok_errors, bad_merges)
{
    char *v = small_vocab("");
    expect_error("unknown-symbol", v, "#version: 0.2\na b\nab xyz\n",
                 (const char *[]){"merges.txt:3:4", "unknown symbol 'xyz'", NULL});
    expect_error("not-a-symbol", v, "a b\nab \xe4\xb8\xad\n",
                 (const char *[]){"merges.txt:2:4", "U+4E2D", NULL});
    expect_error("no-result", v, "a b\nb c\n", (const char *[]){"merges.txt:2:", "'bc' is not in the vocabulary", NULL});
    expect_error("one-field", v, "a b\nabc\n", (const char *[]){"merges.txt:2:", "two symbols", NULL});
    expect_error("three-fields", v, "a b c\n", (const char *[]){"merges.txt:1:", "two symbols", NULL});
    free(v);
}

Test(tok_errors, vocab_semantics)
{
    /* ids not 0..N-1 */
    char *v = small_vocab(", \"zz\": 5000");
    expect_error("id-range", v, "", (const char *[]){"vocab.json", "\"zz\"", "5000", NULL});
    free(v);
    /* not byte-level: a token spelled with a character outside the 256 symbols */
    v = small_vocab(", \"\\u4e2d\": 259");
    expect_error("not-bytelevel", v, "", (const char *[]){"vocab.json", "U+4E2D", NULL});
    free(v);
    /* a byte missing */
    expect_error("missing-byte", "{\"a\": 0}", "", (const char *[]){"vocab.json", "no token for byte", NULL});
}

Test(tok_errors, cli_usage_errors)
{
    char *out, *err;
    cr_assert(tu_run("tokenize", NULL, &out, &err) != 0);
    cr_assert(strstr(err, "--tokenizer") && tu_lines(err) == 1, "%s", err);
    free(out);
    free(err);
    cr_assert(tu_run("tokenize --tokenizer /x --bogus", NULL, &out, &err) != 0);
    cr_assert(strstr(err, "unknown option '--bogus'") && tu_lines(err) == 1, "%s", err);
    free(out);
    free(err);
    cr_assert(tu_run("frobnicate", NULL, &out, &err) != 0);
    cr_assert(strstr(err, "unknown command") && tu_lines(err) == 1, "%s", err);
    free(out);
    free(err);
    cr_assert(tu_run("tokenize --help", NULL, &out, &err) == 0);
    cr_assert(strstr(out, "--allow-special"), "%s", out);
    free(out);
    free(err);
}
