/* test_corpus.c — the default corpus (data/corpus.h): record splitting and normalisation, the
 * dropping rules, de-duplication, the hash split and order (independent of files and their order),
 * the prompt rule, the files written, and the real Debian fortunes when installed. */
#include "corpus.h"
#include "fileio.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *norm(const char *s)
{
    static char buf[512];
    size_t n = corpus_normalize(buf, s, strlen(s));
    cr_assert_eq(n, strlen(buf));
    return buf;
}

Test(corpus, fnv1a_published_vectors)
{
    /* test vectors from the FNV reference (Fowler/Noll/Vo) */
    cr_assert_eq(corpus_hash("", 0), 0xcbf29ce484222325ull);
    cr_assert_eq(corpus_hash("a", 1), 0xaf63dc4c8601ec8cull);
    cr_assert_eq(corpus_hash("foobar", 6), 0x85944171f73967e8ull);
}

Test(corpus, normalize)
{
    cr_assert_str_eq(norm("  Hello,\n\tworld!  \n"), "Hello, world!");
    cr_assert_str_eq(norm("\t\tQ:\tWhy?\n\t\tA:\tBecause.\n\n"), "Q: Why? A: Because.");
    cr_assert_str_eq(norm("_\b_\bB_\bo_\bld"), "Bold");           /* underline overstrike */
    cr_assert_str_eq(norm("b\bbad x\bX"), "bad X");                /* bold / replace overstrike */
    cr_assert_str_eq(norm("\xc3\xa9\bE"), "E");                    /* a backspace erases a whole character */
    cr_assert_str_eq(norm("a \bb"), "ab");                         /* ... or the pending space */
    cr_assert_str_eq(norm("Beep\a!\x7f ok"), "Beep ! ok");         /* controls are space */
    cr_assert_str_eq(norm("bad \xff\xfe bytes \xc3"), "bad bytes");  /* invalid UTF-8 dropped */
    cr_assert_str_eq(norm("non\xc2\xa0" "breaking"), "non breaking");  /* NBSP is space */
    cr_assert_str_eq(norm("caf\xc3\xa9 \xe2\x80\x94 ok"), "caf\xc3\xa9 \xe2\x80\x94 ok");
    cr_assert_str_eq(norm(" \n\t "), "");
}

Test(corpus, prompt_rule)
{
    const char *r = "You will be married within a year, and divorced within two.";
    cr_assert_eq(corpus_prompt_len(r, strlen(r), 4), strlen("You will be married"));
    cr_assert_eq(corpus_prompt_len(r, strlen(r), 2), strlen("You will"));
    const char *s = "Go away now"; /* 3 words: the prompt is at most half */
    cr_assert_eq(corpus_prompt_len(s, strlen(s), 4), strlen("Go"));
    const char *t = "You will be married within a year"; /* 7 words: 3 */
    cr_assert_eq(corpus_prompt_len(t, strlen(t), 4), strlen("You will be"));
    cr_assert_eq(corpus_prompt_len("Hi there", 8, 4), 2);
    cr_assert_eq(corpus_prompt_len("Hello", 5, 4), 0);
}

/* the records of a finished corpus, joined by '|' (order included) */
static char *joined(const corpus *c)
{
    size_t n = 1;
    for (size_t i = 0; i < c->n; i++) n += c->rec[i].len + 1;
    char *s = calloc(n, 1);
    for (size_t i = 0; i < c->n; i++) {
        strcat(s, c->rec[i].text);
        strcat(s, "|");
    }
    return s;
}

static corpus *from_texts(const char *const *names, const char *const *texts, size_t n, uint32_t mod)
{
    corpus_opts o = corpus_defaults();
    o.heldout_mod = mod;
    corpus *c;
    char err[256];
    cr_assert_eq(corpus_create(&c, &o, err, sizeof err), 0, "%s", err);
    for (size_t i = 0; i < n; i++) cr_assert_eq(corpus_add_text(c, names[i], texts[i], strlen(texts[i]), err, sizeof err), 0, "%s", err);
    cr_assert_eq(corpus_finish(c, err, sizeof err), 0, "%s", err);
    return c;
}

Test(corpus, records_and_drops)
{
    const char *names[] = {"one"};
    const char *texts[] = {"first record here\n%\n  second\n\trecord \n%\n%\n50% is not a separator\n%%\n"
                           " %\nstill the same record\n%\nalone\n%\n### *** $$$ a\n%\n" /* art */
                           "first record here\n%\nlast without a final separator"};
    corpus *c = from_texts(names, texts, 1, 2);
    cr_assert_eq(c->files[0].raw, 7);
    cr_assert_eq(c->dropped.short_, 1);     /* "alone" */
    cr_assert_eq(c->dropped.not_text, 1);   /* letters are 1 of 10 visible characters */
    cr_assert_eq(c->dropped.duplicate, 1);  /* "first record here" twice */
    cr_assert_eq(c->dropped.huge, 0);
    cr_assert_eq(c->n, 4);
    cr_assert_eq(c->files[0].kept, 4);
    char *j = joined(c);
    cr_assert(strstr(j, "second record|"));
    cr_assert(strstr(j, "50% is not a separator %% % still the same record|"), "%s", j);
    cr_assert(strstr(j, "last without a final separator|"));
    free(j);
    corpus_free(c);

    /* max_bytes */
    corpus_opts o = corpus_defaults();
    o.max_bytes = 10;
    o.heldout_mod = 2;
    char err[256];
    cr_assert_eq(corpus_create(&c, &o, err, sizeof err), 0);
    const char *t = "short one\n%\nthis one is too long\n%\nab cd\n%\n";
    cr_assert_eq(corpus_add_text(c, "x", t, strlen(t), err, sizeof err), 0);
    cr_assert_eq(c->dropped.huge, 1);
    cr_assert_eq(c->n, 2);
    corpus_free(c);
}

/* many distinct records, spread over files in two different ways */
static char *numbered(int from, int to, int step)
{
    size_t cap = 64 * (size_t)(abs(to - from) + 1), n = 0;
    char *s = malloc(cap);
    s[0] = 0;
    for (int i = from; step > 0 ? i < to : i > to; i += step)
        n += (size_t)snprintf(s + n, cap - n, "Record number %d says hello.\n%%\n", i);
    return s;
}

Test(corpus, split_and_order_do_not_depend_on_files)
{
    char *a1 = numbered(0, 150, 1), *a2 = numbered(150, 400, 1);
    char *b1 = numbered(399, 199, -1), *b2 = numbered(0, 200, 2), *b3 = numbered(1, 200, 2);
    const char *na[] = {"a1", "a2"}, *ta[] = {a1, a2};
    const char *nb[] = {"z", "m", "b"}, *tb[] = {b1, b2, b3};
    corpus *ca = from_texts(na, ta, 2, 4), *cb = from_texts(nb, tb, 3, 4);
    char *ja = joined(ca), *jb = joined(cb);
    cr_assert_str_eq(ja, jb);
    cr_assert_eq(ca->n, 400);
    size_t held = 0;
    for (size_t i = 0; i < ca->n; i++) {
        const corpus_record *r = &ca->rec[i];
        cr_assert_eq(r->hash, corpus_hash(r->text, r->len));
        cr_assert_eq(r->heldout, r->hash % 4 == 0, "%s", r->text);
        cr_assert_eq(r->heldout, cb->rec[i].heldout);
        if (i) cr_assert(ca->rec[i - 1].hash <= r->hash, "not in hash order at %zu", i);
        held += r->heldout;
    }
    cr_assert_eq(held, ca->heldout.records);
    cr_assert_eq(ca->n - held, ca->train.records);
    cr_assert(held > 60 && held < 140, "%zu of 400 held out with mod 4", held); /* a hash, not a pattern */
    cr_assert_eq(ca->train.words + ca->heldout.words, 400 * 5);
    free(ja);
    free(jb);
    corpus_free(ca);
    corpus_free(cb);
    free(a1);
    free(a2);
    free(b1);
    free(b2);
    free(b3);
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char p[4096], err[256];
    char *s = fio_read_all(fio_join(p, sizeof p, dir, name), len, err, sizeof err);
    cr_assert(s, "%s", err);
    return s;
}

/* the fixture folder: alpha and beta are fortune files; notes.txt (extension), orphan (no .dat),
 * off/ and de/ (subfolders) are not */
Test(corpus, folder_and_files_written)
{
    corpus_opts o = corpus_defaults();
    o.heldout_mod = 2;
    corpus *c;
    char err[512];
    const char *src = tu_data("corpus/fortunes");
    cr_assert_eq(corpus_build(&c, src, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c->nfiles, 2);
    cr_assert_str_eq(c->files[0].name, "alpha");
    cr_assert_str_eq(c->files[1].name, "beta");
    cr_assert_eq(c->files[0].raw + c->files[1].raw, 10);
    cr_assert_eq(c->n, 7);
    cr_assert_eq(c->files[0].kept, 4); /* the duplicate kept is alpha's (the first file) */
    cr_assert_eq(c->files[1].kept, 3);
    char *j = joined(c);
    cr_assert(strstr(j, "|Bold text, overstruck: bad.|") || strncmp(j, "Bold text", 9) == 0, "%s", j);
    cr_assert(strstr(j, "Q: What is the good life? A: A happy one. -- Anonymous|"), "%s", j);
    cr_assert(strstr(j, "Bell ring ok here.|"), "%s", j);
    cr_assert(!strstr(j, "Offensive") && !strstr(j, "deutscher") && !strstr(j, "Lonely") && !strstr(j, "Not a fortune"));
    free(j);

    const char *out = tu_tmpdir("corpus");
    cr_assert_eq(corpus_write(c, out, src, err, sizeof err), 0, "%s", err);
    /* train.txt / heldout.txt: the records of each side joined by <|endoftext|>, in order */
    for (int h = 0; h < 2; h++) {
        size_t len;
        char *txt = slurp(out, h ? "heldout.txt" : "train.txt", &len);
        char want[4096] = "";
        for (size_t i = 0; i < c->n; i++)
            if (c->rec[i].heldout == h) {
                if (*want) strcat(want, "<|endoftext|>");
                strcat(want, c->rec[i].text);
            }
        cr_assert_str_eq(txt, want);
        free(txt);
        /* sft and prompt files: one line per record of the side, prompt + completion = record */
        size_t sl, pl;
        char *sft = slurp(out, h ? "sft_heldout.jsonl" : "sft_train.jsonl", &sl);
        char *pr = slurp(out, h ? "prompts_heldout.jsonl" : "prompts_train.jsonl", &pl);
        char *sp = sft, *pp = pr;
        for (size_t i = 0; i < c->n; i++) {
            if (c->rec[i].heldout != h) continue;
            json_error_t je;
            json_t *a = json_loadb(sp, (size_t)(strchr(sp, '\n') - sp), 0, &je);
            json_t *b = json_loadb(pp, (size_t)(strchr(pp, '\n') - pp), 0, &je);
            cr_assert(a && b);
            const char *p = json_string_value(json_object_get(a, "prompt"));
            const char *cm = json_string_value(json_object_get(a, "completion"));
            cr_assert(p && cm && *p && *cm == ' ');
            char both[1024];
            snprintf(both, sizeof both, "%s%s", p, cm);
            cr_assert_str_eq(both, c->rec[i].text);
            cr_assert_eq(strlen(p), corpus_prompt_len(c->rec[i].text, c->rec[i].len, 4));
            cr_assert_str_eq(json_string_value(json_object_get(b, "prompt")), p);
            cr_assert_eq(json_object_size(b), 1);
            json_decref(a);
            json_decref(b);
            sp = strchr(sp, '\n') + 1;
            pp = strchr(pp, '\n') + 1;
        }
        cr_assert_eq(*sp, 0);
        cr_assert_eq(*pp, 0);
        free(sft);
        free(pr);
    }
    /* corpus.json */
    char p[4096];
    json_error_t je;
    json_t *s = json_load_file(fio_join(p, sizeof p, out, "corpus.json"), 0, &je);
    cr_assert(s, "%s", je.text);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(s, "train"), "records")), (json_int_t)c->train.records);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(s, "heldout"), "words")), (json_int_t)c->heldout.words);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(s, "dropped"), "duplicate")), 1);
    cr_assert_eq(json_array_size(json_object_get(s, "files")), 2);
    json_decref(s);
    /* written again: byte for byte the same */
    size_t l1, l2;
    char *first = slurp(out, "sft_train.jsonl", &l1);
    const char *out2 = tu_tmpdir("corpus2");
    cr_assert_eq(corpus_write(c, out2, src, err, sizeof err), 0, "%s", err);
    char *second = slurp(out2, "sft_train.jsonl", &l2);
    cr_assert(l1 == l2 && memcmp(first, second, l1) == 0);
    free(first);
    free(second);
    corpus_free(c);
}

Test(corpus, errors)
{
    corpus *c;
    char err[512];
    cr_assert_eq(corpus_build(&c, "/nonexistent/fortunes", NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/fortunes"), "%s", err);
    cr_assert_eq(corpus_build(&c, tu_data("corpus/fortunes"), NULL, err, sizeof err), -1); /* 7 records, mod 20: none held out */
    cr_assert(strstr(err, "held-out"), "%s", err);
    cr_assert_eq(corpus_build(&c, tu_data("judge"), NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "no fortune files"), "%s", err);
    corpus_opts o = corpus_defaults();
    o.min_words = 1;
    cr_assert_eq(corpus_create(&c, &o, err, sizeof err), -1);
}

Test(corpus, cli)
{
    char *out, *err;
    const char *dir = tu_tmpdir("corpus-cli");
    char args[8192];
    snprintf(args, sizeof args, "corpus --src '%s' --out '%s' --heldout-mod 2", tu_data("corpus/fortunes"), dir);
    cr_assert_eq(tu_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(err, "2 files"), "%s", err);
    char p[4096];
    cr_assert(fio_exists(fio_join(p, sizeof p, dir, "corpus.json")));
    cr_assert(fio_exists(fio_join(p, sizeof p, dir, "prompts_heldout.jsonl")));
    free(out);
    free(err);
    cr_assert_eq(tu_run("corpus --src /nonexistent --out /tmp/never-made", NULL, &out, &err), 1);
    cr_assert_eq(tu_lines(err), 1, "%s", err);
    cr_assert(!fio_exists("/tmp/never-made"));
    free(out);
    free(err);
}

/* the real corpus when Debian's fortunes package is installed */
Test(corpus, debian_fortunes)
{
    if (!fio_exists(CORPUS_DEFAULT_SRC "/fortunes.dat")) cr_skip_test("fortunes package not installed");
    corpus *c;
    char err[512];
    cr_assert_eq(corpus_build(&c, CORPUS_DEFAULT_SRC, NULL, err, sizeof err), 0, "%s", err);
    cr_assert(c->nfiles >= 30, "%zu files", c->nfiles);
    cr_assert(c->n > 10000, "%zu records", c->n);
    double share = (double)c->heldout.records / (double)c->n;
    cr_assert(share > 0.04 && share < 0.06, "held-out share %.3f", share);
    for (size_t i = 0; i < c->n; i++) {
        const corpus_record *r = &c->rec[i];
        cr_assert(r->len <= 1000 && r->words >= 2);
        cr_assert(!strpbrk(r->text, "\n\t\b\a"), "%s", r->text);
        cr_assert(r->text[0] != ' ' && r->text[r->len - 1] != ' ' && !strstr(r->text, "  "));
    }
    corpus_free(c);
}
