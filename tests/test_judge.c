/* test_judge.c — the gold judge (data/judge.h): tokenisation, longest-match phrases, negation,
 * hyphenated words and the normalised score on a tiny hand-written lexicon (tests/data/judge/
 * tiny.tsv, made-up valences), lexicon errors, the Bradley–Terry labeller, the CLI, and — when
 * tools/get_afinn.sh has run — a few published AFINN-165 valences. */
#include "fileio.h"
#include "judge.h"
#include "rng.h"
#include "testutil.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static judge *tiny(void)
{
    judge *j;
    char err[512];
    cr_assert_eq(judge_create(&j, tu_data("judge/tiny.tsv"), err, sizeof err), 0, "%s", err);
    return j;
}

static judge_result sc(const judge *j, const char *s)
{
    judge_result r;
    judge_score(j, s, strlen(s), &r);
    return r;
}

#define SCORE(j, s) (sc(j, s).score)

Test(judge, words_and_scores)
{
    judge *j = tiny();
    cr_assert_eq(judge_size(j), 14);
    judge_result r = sc(j, "This is GOOD.");
    cr_assert_eq(r.score, 2);
    cr_assert_eq(r.words, 3);
    cr_assert_eq(r.pos, 1);
    cr_assert_eq(r.neg, 0);
    cr_assert_float_eq(r.norm, 2.0 / 8, 1e-12); /* fewer than 8 words: divided by 8 */
    r = sc(j, "good, good; good! (good) \"good\" 'good' good... good? good good");
    cr_assert_eq(r.words, 10);
    cr_assert_eq(r.score, 20);
    cr_assert_float_eq(r.norm, 2.0, 1e-12); /* 8 words or more: the mean valence per word */
    cr_assert_eq(SCORE(j, "goodness goods ungood"), 0); /* whole words only */
    cr_assert_eq(SCORE(j, "love and hate"), 0);
    cr_assert_eq(SCORE(j, "NA\xc3\x8f" "VE"), -1); /* Unicode lowercasing */
    r = sc(j, "");
    cr_assert(r.words == 0 && r.score == 0 && r.norm == 0);
    char longw[300];
    memset(longw, 'g', sizeof longw - 1);
    longw[sizeof longw - 1] = 0;
    r = sc(j, longw);
    cr_assert(r.words == 1 && r.score == 0);
    r = sc(j, "good \xff\xfe bad"); /* invalid bytes separate words */
    cr_assert(r.words == 2 && r.score == 0 && r.pos == 1 && r.neg == 1);
    judge_free(j);
}

Test(judge, phrases_longest_first)
{
    judge *j = tiny();
    cr_assert_eq(SCORE(j, "It does not work."), -3);
    cr_assert_eq(SCORE(j, "it does not"), 0);             /* a phrase cut short by the end */
    cr_assert_eq(SCORE(j, "such cool stuff and good stuff"), 4 + 2);
    cr_assert_eq(SCORE(j, "kind of sad"), 0);             /* "kind of" (0) hides "kind" (+2) */
    cr_assert_eq(SCORE(j, "a kind man"), 2);
    cr_assert_eq(SCORE(j, "cool, stuff"), 0);             /* punctuation breaks a phrase... */
    cr_assert_eq(SCORE(j, "cool\n stuff"), 4);            /* ...white space does not */
    judge_free(j);
}

Test(judge, apostrophes_hyphens)
{
    judge *j = tiny();
    cr_assert_eq(SCORE(j, "I can't stand it"), -4);
    cr_assert_eq(SCORE(j, "I can\xe2\x80\x99t stand it"), -4); /* U+2019 */
    cr_assert_eq(SCORE(j, "I cant stand it"), -4);
    cr_assert_eq(SCORE(j, "'good'"), 2);
    cr_assert_eq(SCORE(j, "well-being"), 2);                /* a hyphenated term */
    cr_assert_eq(sc(j, "well-being").words, 1);
    cr_assert_eq(SCORE(j, "super-happy"), 1 + 3);           /* an unknown compound: its parts */
    judge_result r = sc(j, "good--bad");                    /* a double hyphen separates */
    cr_assert(r.words == 2 && r.score == 0);
    cr_assert_eq(sc(j, "-good- bad-").words, 2);
    judge_free(j);
}

typedef struct {
    char log[512];
} hits;

static void on_hit(void *ud, const char *term, int v, int negated)
{
    hits *h = ud;
    size_t n = strlen(h->log);
    snprintf(h->log + n, sizeof h->log - n, "%s%s=%d%s", n ? " " : "", term, v, negated ? "(neg)" : "");
}

Test(judge, negation)
{
    judge *j = tiny();
    cr_assert_eq(SCORE(j, "not happy"), -3);
    cr_assert_eq(SCORE(j, "not good"), -1);        /* the phrase, not a flipped "good" */
    cr_assert_eq(SCORE(j, "isn't good"), -2);      /* "isnt" negates */
    cr_assert_eq(SCORE(j, "never bad"), 2);
    cr_assert_eq(SCORE(j, "not not good"), 1);     /* the phrase "not good", negated */
    cr_assert_eq(SCORE(j, "not very happy"), 3);   /* only the word right before... */
    cr_assert_eq(SCORE(j, "not. happy"), 3);       /* ...with only white space between */
    cr_assert_eq(SCORE(j, "not super-happy"), -4); /* both parts of a compound */
    judge_result r;
    hits h = {""};
    const char *s = "I don't love it, it does not work; not good, but can't stand... happy";
    judge_score_explain(j, s, strlen(s), &r, on_hit, &h);
    cr_assert_str_eq(h.log, "love=-3(neg) does not work=-3 not good=-1 cant stand=-4 happy=3");
    cr_assert_eq(r.score, -3 - 3 - 1 - 4 + 3);
    cr_assert_eq(r.pos, 1);
    cr_assert_eq(r.neg, 4);
    cr_assert_eq(r.words, 14);
    cr_assert_float_eq(r.norm, -8.0 / 14, 1e-12);
    judge_free(j);
}

Test(judge, valence_lookup)
{
    judge *j = tiny();
    int found;
    cr_assert_eq(judge_valence(j, "Can't Stand", &found), -4);
    cr_assert(found);
    cr_assert_eq(judge_valence(j, "kind of", &found), 0);
    cr_assert(found);
    cr_assert_eq(judge_valence(j, "does", &found), 0); /* only the start of a phrase */
    cr_assert(!found);
    cr_assert_eq(judge_valence(j, "", NULL), 0);
    judge_free(j);
}

static void lex_error(const char *text, const char *want)
{
    judge *j;
    char err[512];
    cr_assert_eq(judge_create_mem(&j, text, strlen(text), "lex.tsv", err, sizeof err), -1, "accepted: %s", text);
    cr_assert(strstr(err, want), "error '%s' lacks '%s'", err, want);
    cr_assert(!strchr(err, '\n'));
}

Test(judge, lexicon_errors)
{
    lex_error("good 3\n", "lex.tsv:1: expected");
    lex_error("good\t3\nbad\tx\n", "lex.tsv:2: the valence");
    lex_error("good\t3\nbad\t-\n", "lex.tsv:2: the valence");
    lex_error("good\t3\nbad\t1001\n", "lex.tsv:2: the valence");
    lex_error("good\t3\nGood\t2\n", "lex.tsv:2: term \"good\" is already");
    lex_error("dont\t3\ndon't\t2\n", "lex.tsv:2: term \"dont\" is already");
    lex_error("one two three four five\t1\n", "lex.tsv:1: term \"one two three four five\"");
    lex_error("...\t1\n", "lex.tsv:1: term");
    lex_error("", "lex.tsv: no terms");
    lex_error("\n\n", "lex.tsv: no terms");
    judge *j;
    char err[512];
    cr_assert_eq(judge_create(&j, "/nonexistent.tsv", err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent.tsv"));
    /* CRLF and blank lines are fine */
    const char *ok = "good\t+3\r\n\r\nbad\t-3\r\n";
    cr_assert_eq(judge_create_mem(&j, ok, strlen(ok), "ok", err, sizeof err), 0, "%s", err);
    cr_assert_eq(SCORE(j, "good bad good"), 3);
    judge_free(j);
}

Test(judge, bradley_terry)
{
    cr_assert_eq(judge_bt_prob(0.3, 0.1, 0), 1.0);
    cr_assert_eq(judge_bt_prob(0.1, 0.3, 0), 0.0);
    cr_assert_eq(judge_bt_prob(0.2, 0.2, 0.1), 0.5);
    cr_assert_eq(judge_bt_prob(0.2, 0.2, 0), 0.5);
    cr_assert_float_eq(judge_bt_prob(0.3, 0.2, 0.1), 0.7310585786300049, 1e-12); /* sigmoid(1) */
    cr_assert_float_eq(judge_bt_prob(0.2, 0.3, 0.1) + judge_bt_prob(0.3, 0.2, 0.1), 1.0, 1e-12);
    /* labels follow the probability */
    uint64_t s = 42;
    int n = 40000, a = 0, tie = 0, sure = 0;
    for (int i = 0; i < n; i++) {
        a += judge_bt_label(0.3, 0.2, 0.1, &s);
        tie += judge_bt_label(0.5, 0.5, 0, &s);
        sure += judge_bt_label(0.6, 0.5, 0, &s);
    }
    CLOSE((double)a / n, 0.7310585786300049, 0.01);
    CLOSE((double)tie / n, 0.5, 0.01);
    cr_assert_eq(sure, n);
    /* one draw per label, whatever the branch: the same seed gives the same stream */
    uint64_t s1 = 7, s2 = 7;
    judge_bt_label(1, 0, 0, &s1);
    judge_bt_label(0, 0, 0.1, &s2);
    cr_assert_eq(s1, s2);
    uint64_t s3 = 7;
    rng_u64(&s3);
    cr_assert_eq(s1, s3);
}

Test(judge, cli)
{
    char *out, *err, args[4096];
    snprintf(args, sizeof args, "judge --lexicon '%s' --text 'I am not happy, it does not work' --explain",
             tu_data("judge/tiny.tsv"));
    cr_assert_eq(tu_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert(strstr(out, "\"score\":-6"), "%s", out);
    cr_assert(strstr(out, "[\"happy\",-3,\"negated\"]"), "%s", out);
    cr_assert(strstr(out, "\"words\":8"), "%s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "judge --lexicon '%s' --in '%s'", tu_data("judge/tiny.tsv"), tu_data("judge/pairs.jsonl"));
    cr_assert_eq(tu_run(args, NULL, &out, &err), 0, "%s", err);
    cr_assert_eq(tu_lines(out), 3);
    cr_assert(strstr(err, "judge prefers chosen in 2 of 3 pairs"), "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "judge --lexicon /nonexistent.tsv --text hi");
    cr_assert_eq(tu_run(args, NULL, &out, &err), 1);
    cr_assert_eq(tu_lines(err), 1, "%s", err);
    free(out);
    free(err);
}

/* the real AFINN-165, when tools/get_afinn.sh has put it in the cache */
Test(judge, afinn165)
{
    char path[4096], err[512];
    judge_default_lexicon(path, sizeof path);
    if (!fio_exists(path)) cr_skip_test("no AFINN-165 at %s (run tools/get_afinn.sh)", path);
    judge *j;
    cr_assert_eq(judge_create(&j, path, err, sizeof err), 0, "%s", err);
    cr_assert_eq(judge_size(j), 3382); /* AFINN-165: 3382 terms */
    /* published valences */
    cr_assert_eq(judge_valence(j, "good", NULL), 3);
    cr_assert_eq(judge_valence(j, "bad", NULL), -3);
    cr_assert_eq(judge_valence(j, "outstanding", NULL), 5);
    cr_assert_eq(judge_valence(j, "abandon", NULL), -2);
    int found;
    judge_valence(j, "does not work", &found);
    cr_assert(found, "multi-word terms load");
    cr_assert_eq(SCORE(j, "What a good day"), 3);
    cr_assert_eq(SCORE(j, "This is not bad"), 3);
    judge_free(j);
}
