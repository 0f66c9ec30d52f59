/* test_train.c — the BPE trainer: equal to a naive reference trainer, deterministic across thread
 * counts, exact vocabulary size, min-frequency, save/load, and the CLI end to end. */
#include "fileio.h"
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* deterministic synthetic corpus: Zipf-like words with punctuation, digits and some UTF-8 */
static char *synth_corpus(size_t bytes, uint64_t seed)
{
    static const char *syll[] = {"ka", "to", "ri", "an", "el", "qu", "ü", "ß", "ne", "mo", "é", "th", "er", "in", "ç"};
    char *s = malloc(bytes + 64);
    size_t n = 0;
    while (n < bytes) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(seed >> 33);
        int len = 1 + (int)((r % 7) * (r % 5) / 6);
        if (n && (r & 7) != 0) s[n++] = ' ';
        for (int k = 0; k < len; k++) {
            unsigned pick = (r >> (3 * k)) % 15;
            pick = pick * pick / 15; /* skew towards early syllables */
            const char *y = syll[pick];
            size_t l = strlen(y);
            memcpy(s + n, y, l);
            n += l;
        }
        if ((r >> 20) % 11 == 0) s[n++] = ',';
        if ((r >> 24) % 17 == 0) n += (size_t)sprintf(s + n, " %u", (r >> 10) % 1000);
        if ((r >> 28) % 13 == 0) s[n++] = '\n';
    }
    s[n] = 0;
    return s;
}

/* ---- a naive reference trainer: recount everything after every merge ---------------------------- */
typedef struct {
    uint8_t **keys;
    size_t *lens;
    uint64_t *counts;
    size_t n, cap;
} wordlist;

static void add_piece(const char *p, size_t n, void *ud)
{
    wordlist *w = ud;
    for (size_t i = 0; i < w->n; i++)
        if (w->lens[i] == n && memcmp(w->keys[i], p, n) == 0) {
            w->counts[i]++;
            return;
        }
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 256;
        w->keys = realloc(w->keys, w->cap * sizeof *w->keys);
        w->lens = realloc(w->lens, w->cap * sizeof *w->lens);
        w->counts = realloc(w->counts, w->cap * sizeof *w->counts);
    }
    w->keys[w->n] = malloc(n);
    memcpy(w->keys[w->n], p, n);
    w->lens[w->n] = n;
    w->counts[w->n] = 1;
    w->n++;
}

/* returns the number of merges; merges[r] = byte strings of left and right */
static size_t naive_train(const char *text, size_t vocab_size, size_t min_freq, char (*ml)[2][64])
{
    wordlist W = {0};
    tok_pretokenize(text, strlen(text), add_piece, &W);
    /* ids: byte b -> GPT-2 rank; we keep symbols as byte strings and ids alongside */
    char tokb[4096][64];
    size_t tokl[4096];
    int ntok = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            int pr = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            if (pr != (pass == 0)) continue;
            tokb[ntok][0] = (char)b;
            tokl[ntok++] = 1;
        }
    int *sym[4096];
    size_t symn[4096];
    cr_assert(W.n < 4096);
    for (size_t w = 0; w < W.n; w++) {
        sym[w] = malloc(W.lens[w] * sizeof(int));
        symn[w] = W.lens[w];
        for (size_t i = 0; i < W.lens[w]; i++)
            for (int k = 0; k < 256; k++)
                if ((uint8_t)tokb[k][0] == W.keys[w][i]) sym[w][i] = k;
    }
    size_t nm = 0;
    while ((size_t)ntok < vocab_size - 1) {
        /* count every pair */
        int ba = -1, bb = -1;
        uint64_t bc = 0;
        for (size_t w = 0; w < W.n; w++)
            for (size_t i = 0; i + 1 < symn[w]; i++) {
                int a = sym[w][i], b = sym[w][i + 1];
                uint64_t c = 0;
                for (size_t w2 = 0; w2 < W.n; w2++)
                    for (size_t j = 0; j + 1 < symn[w2]; j++)
                        if (sym[w2][j] == a && sym[w2][j + 1] == b) c += W.counts[w2];
                if (c > bc || (c == bc && (a < ba || (a == ba && b < bb)))) {
                    bc = c;
                    ba = a;
                    bb = b;
                }
            }
        if (bc < min_freq || ba < 0) break;
        char nb[64];
        size_t nl = tokl[ba] + tokl[bb];
        cr_assert(nl < 64);
        memcpy(nb, tokb[ba], tokl[ba]);
        memcpy(nb + tokl[ba], tokb[bb], tokl[bb]);
        int z = -1;
        for (int k = 0; k < ntok; k++)
            if (tokl[k] == nl && memcmp(tokb[k], nb, nl) == 0) z = k;
        if (z < 0) {
            z = ntok++;
            memcpy(tokb[z], nb, nl);
            tokl[z] = nl;
        }
        memset(ml[nm], 0, sizeof ml[nm]);
        memcpy(ml[nm][0], tokb[ba], tokl[ba]);
        memcpy(ml[nm][1], tokb[bb], tokl[bb]);
        nm++;
        for (size_t w = 0; w < W.n; w++) {
            size_t m = 0;
            for (size_t i = 0; i < symn[w]; i++) {
                if (i + 1 < symn[w] && sym[w][i] == ba && sym[w][i + 1] == bb) {
                    sym[w][m++] = z;
                    i++;
                } else {
                    sym[w][m++] = sym[w][i];
                }
            }
            symn[w] = m;
        }
    }
    for (size_t w = 0; w < W.n; w++) {
        free(sym[w]);
        free(W.keys[w]);
    }
    free(W.keys);
    free(W.lens);
    free(W.counts);
    return nm;
}

static tok_tokenizer *train(const char *text, size_t vocab, int threads, size_t minf)
{
    tok_train_opts o = tok_train_defaults();
    o.vocab_size = vocab;
    o.nthreads = threads;
    o.min_frequency = minf;
    const char *texts[] = {text};
    size_t lens[] = {strlen(text)};
    tok_tokenizer *t;
    char err[TOK_ERR_LEN];
    cr_assert(tok_train(texts, lens, 1, &o, &t, err, sizeof err) == 0, "%s", err);
    return t;
}

Test(train, equals_naive_reference)
{
    char *text = synth_corpus(6000, 7);
    static char ml[600][2][64];
    size_t nm = naive_train(text, 256 + 200 + 1, 2, ml);
    tok_tokenizer *t = train(text, 256 + 200 + 1, 1, 2);
    cr_assert_eq(tok_merge_count(t), nm);
    for (size_t r = 0; r < nm; r++) {
        int32_t a, b;
        cr_assert(tok_merge(t, r, &a, &b) == 0);
        size_t la, lb;
        const uint8_t *pa = tok_token_bytes(t, a, &la), *pb = tok_token_bytes(t, b, &lb);
        cr_assert(la == strlen(ml[r][0]) && memcmp(pa, ml[r][0], la) == 0 && lb == strlen(ml[r][1]) &&
                      memcmp(pb, ml[r][1], lb) == 0,
                  "merge %zu: got '%.*s' '%.*s', reference '%s' '%s'", r, (int)la, pa, (int)lb, pb, ml[r][0], ml[r][1]);
    }
    tok_free(t);
    free(text);
}

Test(train, deterministic_across_threads_and_exact_size)
{
    char *text = synth_corpus(3u << 20, 11); /* > 1 MB: split into spans counted in parallel */
    tok_tokenizer *t1 = train(text, 2000, 1, 2), *t2 = train(text, 2000, 2, 2);
    cr_assert_eq(tok_vocab_size(t1), 2000);
    cr_assert_eq(tok_eot_id(t1), 1999);
    cr_assert_eq(tok_merge_count(t1), tok_merge_count(t2));
    for (size_t r = 0; r < tok_merge_count(t1); r++) {
        int32_t a1, b1, a2, b2;
        tok_merge(t1, r, &a1, &b1);
        tok_merge(t2, r, &a2, &b2);
        cr_assert(a1 == a2 && b1 == b2, "merge %zu differs between 1 and 2 threads", r);
    }
    /* the trained tokenizer compresses its corpus and round-trips it */
    tok_ids ids = {0};
    cr_assert(tok_encode_parallel(t1, text, strlen(text), 0, 2, &ids) == 0);
    cr_assert(ids.n < strlen(text) / 3, "poor compression: %zu ids for %zu bytes", ids.n, strlen(text));
    tok_bytes b = {0};
    char err[TOK_ERR_LEN];
    cr_assert(tok_decode(t1, ids.ids, ids.n, &b, err, sizeof err) == 0);
    cr_assert(b.n == strlen(text) && memcmp(b.data, text, b.n) == 0);
    /* saved and loaded back: same ids */
    const char *d = tu_tmpdir("trained");
    cr_assert(tok_save(t1, d, err, sizeof err) == 0, "%s", err);
    tok_tokenizer *t3;
    cr_assert(tok_load(d, &t3, err, sizeof err) == 0, "%s", err);
    tok_ids ids3 = {0};
    cr_assert(tok_encode_parallel(t3, text, strlen(text), 0, 2, &ids3) == 0);
    cr_assert(ids3.n == ids.n && memcmp(ids3.ids, ids.ids, ids.n * 4) == 0);
    tok_ids_free(&ids);
    tok_ids_free(&ids3);
    tok_bytes_free(&b);
    tok_free(t1);
    tok_free(t2);
    tok_free(t3);
    free(text);
}

Test(train, min_frequency_and_small_corpus)
{
    /* "ab" occurs 3 times, everything else once: min frequency 3 allows exactly one merge */
    tok_tokenizer *t = train("ab ab ab cd", 1000, 1, 3);
    cr_assert_eq(tok_merge_count(t), 1);
    cr_assert_eq(tok_vocab_size(t), 258);
    int32_t a, b;
    tok_merge(t, 0, &a, &b);
    size_t l;
    cr_assert(memcmp(tok_token_bytes(t, a, &l), "a", 1) == 0 && memcmp(tok_token_bytes(t, b, &l), "b", 1) == 0);
    tok_free(t);
    /* <|endoftext|> separates documents and is never learnt */
    t = train("xy<|endoftext|>xy<|endoftext|>xy", 1000, 1, 2);
    for (size_t r = 0; r < tok_merge_count(t); r++) {
        tok_merge(t, r, &a, &b);
        const uint8_t *p = tok_token_bytes(t, a, &l);
        cr_assert(memchr(p, '|', l) == NULL, "learnt a piece of <|endoftext|>");
    }
    tok_free(t);
    tok_train_opts o = tok_train_defaults();
    o.vocab_size = 100;
    const char *texts[] = {"x"};
    size_t lens[] = {1};
    char err[TOK_ERR_LEN];
    cr_assert(tok_train(texts, lens, 1, &o, &t, err, sizeof err) != 0);
    cr_assert(strstr(err, "too small"), "%s", err);
}

Test(train, cli_end_to_end)
{
    const char *d = tu_tmpdir("cli-train");
    char p1[4200], p2[4200], out[4200], args[16000];
    snprintf(p1, sizeof p1, "%s/a.txt", d);
    snprintf(p2, sizeof p2, "%s/b.txt", d);
    snprintf(out, sizeof out, "%s/tok", d);
    char *c1 = synth_corpus(200000, 3), *c2 = synth_corpus(100000, 4);
    tu_write(p1, c1, strlen(c1));
    tu_write(p2, c2, strlen(c2));
    snprintf(args, sizeof args, "tokenizer train --corpus '%s' '%s' --vocab-size 600 --out '%s'", p1, p2, out);
    char *o, *e;
    cr_assert(tu_run(args, NULL, &o, &e) == 0, "%s", e);
    free(o);
    free(e);
    snprintf(args, sizeof args, "tokenizer info --tokenizer '%s'", out);
    cr_assert(tu_run(args, NULL, &o, &e) == 0, "%s", e);
    cr_assert(strstr(o, "\"vocab_size\": 600"), "%s", o);
    free(o);
    free(e);
    /* tokenize | detokenize gives the file back */
    char ids[4200];
    snprintf(ids, sizeof ids, "%s/ids.txt", d);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --in '%s'", out, p1);
    cr_assert(tu_run(args, NULL, &o, &e) == 0, "%s", e);
    tu_write(ids, o, strlen(o));
    free(o);
    free(e);
    snprintf(args, sizeof args, "detokenize --tokenizer '%s'", out);
    cr_assert(tu_run(args, ids, &o, &e) == 0, "%s", e);
    cr_assert(strcmp(o, c1) == 0, "detokenize did not give the text back");
    free(o);
    free(e);
    /* bad id in detokenize: file:line:col */
    tu_write(ids, "12\n 7 x9\n", 9);
    cr_assert(tu_run(args, ids, &o, &e) != 0);
    cr_assert(strstr(e, "<stdin>:2:4") && strstr(e, "'x9'") && tu_lines(e) == 1, "%s", e);
    free(o);
    free(e);
    /* a missing corpus file: one line, no output folder left behind */
    snprintf(out, sizeof out, "%s/tok2", d);
    snprintf(args, sizeof args, "tokenizer train --corpus '%s' /nonexistent.txt --vocab-size 600 --out '%s'", p1, out);
    cr_assert(tu_run(args, NULL, &o, &e) != 0);
    cr_assert(strstr(e, "/nonexistent.txt") && tu_lines(e) == 1, "%s", e);
    cr_assert(!fio_exists(out));
    free(o);
    free(e);
    free(c1);
    free(c2);
}
