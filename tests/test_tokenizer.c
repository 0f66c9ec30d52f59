/* test_tokenizer.c — the GPT-2 tokenizer against tiktoken's golden ids (both vocabulary layouts
 * and our own saved layout), specials, parallel encoding, round trips and invalid UTF-8. */
#include "fileio.h"
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    char *text;
    size_t len;
    int32_t *ids, *ids_special;
    size_t n, ns;
} gcase;

static gcase *cases;
static size_t ncases;

static int32_t *json_ids(json_t *a, size_t *n)
{
    *n = json_array_size(a);
    int32_t *v = malloc((*n + 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}

static void load_golden(void)
{
    if (cases) return;
    char err[512];
    size_t len;
    char *buf = fio_read_all(tu_data("tokenizer/gpt2_golden.jsonl"), &len, err, sizeof err);
    cr_assert(buf, "%s", err);
    size_t cap = 1024;
    cases = calloc(cap, sizeof *cases);
    char *line = buf;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            json_error_t je;
            json_t *o = json_loads(line, 0, &je);
            cr_assert(o, "golden line %zu: %s", ncases + 1, je.text);
            if (ncases == cap) cases = realloc(cases, (cap *= 2) * sizeof *cases);
            gcase *c = &cases[ncases++];
            c->name = strdup(json_string_value(json_object_get(o, "name")));
            json_t *t = json_object_get(o, "text");
            c->len = json_string_length(t);
            c->text = malloc(c->len + 1);
            memcpy(c->text, json_string_value(t), c->len + 1);
            c->ids = json_ids(json_object_get(o, "ids"), &c->n);
            c->ids_special = json_ids(json_object_get(o, "ids_special"), &c->ns);
            json_decref(o);
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(buf);
    cr_assert(ncases > 100, "golden file has only %zu cases", ncases);
}

static tok_tokenizer *load(const char *dir)
{
    char err[TOK_ERR_LEN];
    tok_tokenizer *t = NULL;
    cr_assert(tok_load(dir, &t, err, sizeof err) == 0, "%s", err);
    return t;
}

static void check_ids(const char *what, const gcase *c, const int32_t *want, size_t nw, const tok_ids *got)
{
    size_t i = 0;
    while (i < nw && i < got->n && want[i] == got->ids[i]) i++;
    cr_assert(i == nw && i == got->n,
              "%s: case '%s': first difference at token %zu (want %d, got %d; lengths %zu vs %zu)", what,
              c->name, i, i < nw ? want[i] : -1, i < got->n ? got->ids[i] : -1, nw, got->n);
}

static void check_golden(tok_tokenizer *t, const char *what)
{
    load_golden();
    tok_encoder *e = tok_encoder_create(t);
    cr_assert(e);
    for (size_t k = 0; k < ncases; k++) {
        tok_ids v = {0};
        cr_assert(tok_encode(e, cases[k].text, cases[k].len, 0, &v) == 0);
        check_ids(what, &cases[k], cases[k].ids, cases[k].n, &v);
        v.n = 0;
        cr_assert(tok_encode(e, cases[k].text, cases[k].len, TOK_ALLOW_SPECIAL, &v) == 0);
        check_ids(what, &cases[k], cases[k].ids_special, cases[k].ns, &v);
        /* and back */
        tok_bytes b = {0};
        char err[TOK_ERR_LEN];
        cr_assert(tok_decode(t, v.ids, v.n, &b, err, sizeof err) == 0, "%s", err);
        cr_assert(b.n == cases[k].len && (b.n == 0 || memcmp(b.data, cases[k].text, b.n) == 0), "round trip of '%s'",
                  cases[k].name);
        tok_bytes_free(&b);
        tok_ids_free(&v);
    }
    tok_encoder_free(e);
}

Test(tokenizer, golden_openai_layout)
{
    tok_tokenizer *t = load(tu_gpt2("openai"));
    cr_assert_eq(tok_vocab_size(t), 50257);
    cr_assert_eq(tok_merge_count(t), 50000);
    cr_assert_eq(tok_eot_id(t), 50256);
    check_golden(t, "openai layout");
    tok_free(t);
}

Test(tokenizer, golden_hf_layout)
{
    tok_tokenizer *t = load(tu_gpt2("hf"));
    check_golden(t, "hf layout");
    tok_free(t);
}

Test(tokenizer, golden_after_our_save)
{
    /* what we write is read back to the same tokenizer, and is byte-identical to GPT-2's files
     * (up to JSON spelling) */
    tok_tokenizer *t = load(tu_gpt2("openai"));
    const char *d = tu_tmpdir("saved");
    char err[TOK_ERR_LEN];
    cr_assert(tok_save(t, d, err, sizeof err) == 0, "%s", err);
    tok_tokenizer *t2 = load(d);
    cr_assert_eq(tok_vocab_size(t2), tok_vocab_size(t));
    for (int32_t i = 0; i < (int32_t)tok_vocab_size(t); i++) {
        size_t a, b;
        const uint8_t *pa = tok_token_bytes(t, i, &a), *pb = tok_token_bytes(t2, i, &b);
        cr_assert(a == b && memcmp(pa, pb, a) == 0, "token %d differs after save/load", i);
    }
    check_golden(t2, "saved layout");
    /* merges.txt is written exactly as GPT-2's vocab.bpe */
    char p1[4200], p2[4200];
    size_t l1, l2;
    char *m1 = fio_read_all(fio_join(p1, sizeof p1, tu_gpt2("openai"), "vocab.bpe"), &l1, err, sizeof err);
    char *m2 = fio_read_all(fio_join(p2, sizeof p2, d, "merges.txt"), &l2, err, sizeof err);
    cr_assert(m1 && m2);
    /* GPT-2's file has a different version header line and a trailing newline convention */
    const char *b1 = strchr(m1, '\n') + 1, *b2 = strchr(m2, '\n') + 1;
    size_t n1 = l1 - (size_t)(b1 - m1), n2 = l2 - (size_t)(b2 - m2);
    while (n1 && b1[n1 - 1] == '\n') n1--;
    while (n2 && b2[n2 - 1] == '\n') n2--;
    cr_assert(n1 == n2 && memcmp(b1, b2, n1) == 0, "merges.txt differs from vocab.bpe");
    free(m1);
    free(m2);
    tok_free(t2);
    tok_free(t);
}

Test(tokenizer, parallel_equals_sequential)
{
    load_golden();
    tok_tokenizer *t = load(tu_gpt2("openai"));
    /* one large text: all golden texts, repeated, joined by assorted separators */
    tok_bytes all = {0};
    const char *seps[] = {"\n", " ", "\n\n", "  ", "\t", "x\n"};
    for (int rep = 0; rep < 24; rep++)
        for (size_t k = 0; k < ncases; k++) {
            const char *s = seps[(k + (size_t)rep) % 6];
            size_t need = all.n + cases[k].len + strlen(s);
            if (need > all.cap) {
                all.cap = need * 2;
                all.data = realloc(all.data, all.cap);
            }
            memcpy(all.data + all.n, cases[k].text, cases[k].len);
            all.n += cases[k].len;
            memcpy(all.data + all.n, s, strlen(s));
            all.n += strlen(s);
        }
    cr_assert(all.n > 1000000, "want > 1 MB to exercise chunking, have %zu", all.n);
    for (int flags = 0; flags <= TOK_ALLOW_SPECIAL; flags += TOK_ALLOW_SPECIAL) {
        tok_encoder *e = tok_encoder_create(t);
        tok_ids seq = {0}, par = {0}, par4 = {0};
        cr_assert(tok_encode(e, (char *)all.data, all.n, flags, &seq) == 0);
        cr_assert(tok_encode_parallel(t, (char *)all.data, all.n, flags, 2, &par) == 0);
        cr_assert(tok_encode_parallel(t, (char *)all.data, all.n, flags, 4, &par4) == 0);
        cr_assert_eq(seq.n, par.n);
        cr_assert_eq(seq.n, par4.n);
        cr_assert(memcmp(seq.ids, par.ids, seq.n * 4) == 0);
        cr_assert(memcmp(seq.ids, par4.ids, seq.n * 4) == 0);
        tok_ids_free(&seq);
        tok_ids_free(&par);
        tok_ids_free(&par4);
        tok_encoder_free(e);
    }
    tok_bytes_free(&all);
    tok_free(t);
}

Test(tokenizer, invalid_utf8_is_bytes_and_round_trips)
{
    tok_tokenizer *t = load(tu_gpt2("openai"));
    tok_encoder *e = tok_encoder_create(t);
    char err[TOK_ERR_LEN];
    /* documented rule: every invalid byte is a character of class "other" on its own */
    const char s1[] = "a\xff" "b";
    tok_ids v = {0};
    cr_assert(tok_encode(e, s1, 3, 0, &v) == 0);
    cr_assert_eq(v.n, 3);
    size_t l;
    const uint8_t *p = tok_token_bytes(t, v.ids[1], &l);
    cr_assert(l == 1 && p[0] == 0xff);
    /* " \xff\xfe!" : the optional space and a run of "other" characters form one piece */
    v.n = 0;
    cr_assert(tok_encode(e, " \xff\xfe!", 4, 0, &v) == 0);
    tok_bytes b = {0};
    cr_assert(tok_decode(t, v.ids, v.n, &b, err, sizeof err) == 0);
    cr_assert(b.n == 4 && memcmp(b.data, " \xff\xfe!", 4) == 0);
    /* a truncated multi-byte sequence followed by ASCII: the ASCII survives as such */
    v.n = 0;
    cr_assert(tok_encode(e, "\xe4\xb8 hello", 8, 0, &v) == 0);
    int32_t hello = -1;
    for (size_t i = 0; i < v.n; i++) {
        p = tok_token_bytes(t, v.ids[i], &l);
        if (l == 6 && memcmp(p, " hello", 6) == 0) hello = v.ids[i];
    }
    cr_assert(hello >= 0, "' hello' should stay one token after invalid bytes");
    /* random byte strings always round-trip */
    uint64_t s = 0x1234567;
    for (int it = 0; it < 2000; it++) {
        char buf[300];
        size_t n = (size_t)(it % 300);
        for (size_t i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint8_t c = (uint8_t)(s >> 56);
            buf[i] = (char)((s >> 40) & 1 ? c : " a'\n\xc3\xa9\xe2\x80"[c % 9]);
        }
        v.n = 0;
        b.n = 0;
        cr_assert(tok_encode(e, buf, n, 0, &v) == 0);
        cr_assert(tok_decode(t, v.ids, v.n, &b, err, sizeof err) == 0);
        cr_assert(b.n == n && memcmp(b.data, buf, n) == 0, "round trip failed at iteration %d", it);
    }
    tok_bytes_free(&b);
    tok_ids_free(&v);
    tok_encoder_free(e);
    tok_free(t);
}

Test(tokenizer, decode_rejects_bad_ids)
{
    tok_tokenizer *t = load(tu_gpt2("openai"));
    int32_t ids[] = {15496, 50257};
    tok_bytes b = {0};
    char err[TOK_ERR_LEN];
    cr_assert(tok_decode(t, ids, 2, &b, err, sizeof err) != 0);
    cr_assert(strstr(err, "token 1") && strstr(err, "50257"), "%s", err);
    tok_bytes_free(&b);
    tok_free(t);
}

typedef struct {
    char pieces[32][32];
    int n;
} plist;

static void collect(const char *p, size_t n, void *ud)
{
    plist *l = ud;
    cr_assert(l->n < 32 && n < 32);
    memcpy(l->pieces[l->n], p, n);
    l->pieces[l->n][n] = 0;
    l->n++;
}

static void expect_pieces(const char *text, const char *const *want, int nw)
{
    plist l = {.n = 0};
    tok_pretokenize(text, strlen(text), collect, &l);
    cr_assert_eq(l.n, nw, "'%s': %d pieces, want %d", text, l.n, nw);
    for (int i = 0; i < nw; i++) cr_assert_str_eq(l.pieces[i], want[i], "'%s' piece %d", text, i);
}

Test(pretokenize, the_pattern_by_hand)
{
    expect_pieces("Hello world", (const char *[]){"Hello", " world"}, 2);
    expect_pieces("  hello", (const char *[]){" ", " hello"}, 2);
    expect_pieces("a\n\nb", (const char *[]){"a", "\n", "\n", "b"}, 4);
    expect_pieces("a  \n b", (const char *[]){"a", "  \n", " b"}, 3);
    expect_pieces("end   ", (const char *[]){"end", "   "}, 2);
    expect_pieces("don't 'S 'll", (const char *[]){"don", "'t", " '", "S", " '", "ll"}, 6);
    expect_pieces("x'''s", (const char *[]){"x", "'''", "s"}, 3);
    expect_pieces("abc123!!? ...", (const char *[]){"abc", "123", "!!?", " ..."}, 4);
    expect_pieces("\xc2\xa0x", (const char *[]){"\xc2\xa0", "x"}, 2);        /* NBSP is white space */
    expect_pieces("a\xe2\x80\x8b" "b", (const char *[]){"a", "\xe2\x80\x8b", "b"}, 3); /* ZWSP is not */
    expect_pieces("e\xcc\x81t\xc3\xa9", (const char *[]){"e", "\xcc\x81", "t\xc3\xa9"}, 3); /* Mn is "other" */
}
