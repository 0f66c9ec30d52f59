/* test_reward.c — reward functions (data/reward.h): `--reward` specs and weights, the judge and an
 * external program as scorers and their weighted sum; the program protocol (JSON records in,
 * numbers out, a batch larger than the pipes, per-line and whole-batch answers) and each way a
 * program can fail (it crashes, hangs past the timeout, prints a non-number or too many lines, does
 * not exist): one line naming the program and the record, and every later batch refused. */
#include "fileio.h"
#include "reward.h"
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CLOSE(a, b, tol) \
    cr_assert(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.9g, expected %.9g", #a, (double)(a), (double)(b))

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- parsing ------------------------------------------------------------------------------------- */

Test(reward, parse_specs_names_and_weights)
{
    reward_set rs = {0};
    char err[512];
    const char *specs[] = {"rm:/x/my_rm", "judge", "cmd:python3 score.py", "--flag-like", "b", "judge:/l.tsv", "rm:/y/my_rm"};
    const double w[] = {1, 0.5, 2, -1, 3};
    cr_assert(reward_parse(&rs, specs, 7, w, 5, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(rs.n, 5);
    cr_assert_eq(rs.src[0].kind, REWARD_RM);
    cr_assert_str_eq(rs.src[0].arg, "/x/my_rm");
    cr_assert_str_eq(rs.src[0].name, "rm:my_rm");
    cr_assert_eq(rs.src[1].kind, REWARD_JUDGE);
    cr_assert_null(rs.src[1].arg);
    cr_assert_eq(rs.src[2].kind, REWARD_CMD);
    cr_assert_str_eq(rs.src[2].name, "cmd:python3");
    const char *argv[] = {"python3", "score.py", "--flag-like", "b"};
    for (int i = 0; i < 4; i++) cr_assert_str_eq(rs.src[2].argv[i], argv[i]);
    cr_assert_null(rs.src[2].argv[4]);
    cr_assert_str_eq(rs.src[3].arg, "/l.tsv");
    cr_assert_str_eq(rs.src[3].name, "judge#4"); /* names stay distinct: they key the metrics */
    cr_assert_str_eq(rs.src[4].name, "rm:my_rm#5");
    CLOSE(rs.src[1].weight, 0.5, 0);
    CLOSE(rs.src[3].weight, -1, 0);
    reward_free(&rs);
    /* refused, one line each */
    const char *bad[][2] = {{"nonsense", "not a reward source"}, {"rm:", "reward-model folder"}, {"cmd:", "needs a program"}};
    for (int i = 0; i < 3; i++) {
        reward_set r2 = {0};
        cr_assert(reward_parse(&r2, bad[i], 1, NULL, 0, err, sizeof err) == -1 && strstr(err, bad[i][1]), "%s", err);
        reward_free(&r2);
    }
    /* the spec's text splits at whitespace, the arguments after it stay whole */
    reward_set r4 = {0};
    const char *sh[] = {"cmd:sh  -c", "echo 1; echo 2", "judge"};
    cr_assert(reward_parse(&r4, sh, 3, NULL, 0, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(r4.n, 2);
    cr_assert_str_eq(r4.src[0].argv[0], "sh");
    cr_assert_str_eq(r4.src[0].argv[1], "-c");
    cr_assert_str_eq(r4.src[0].argv[2], "echo 1; echo 2");
    cr_assert_null(r4.src[0].argv[3]);
    reward_free(&r4);
    reward_set r3 = {0};
    cr_assert(reward_parse(&r3, specs, 2, w, 3, err, sizeof err) == -1 && strstr(err, "3 weights for 2"), "%s", err);
    reward_free(&r3);
}

/* ---- a tokenizer and rows to score ----------------------------------------------------------------- */

static tok_tokenizer *tok;
static char dir[4096];

static void setup(void)
{
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("reward"));
    char td[4200];
    snprintf(td, sizeof td, "%s/tok", dir);
    static const char text[] = "the cat says good things. a dog is happy, the owl is sad and bad. \"quotes\"\n";
    tu_tiny_bpe(text, sizeof text - 1, td);
    char err[512];
    cr_assert(tok_load(td, &tok, err, sizeof err) == 0, "%s", err);
}

static void teardown(void) { tok_free(tok); }

enum { T = 48 };

typedef struct {
    int32_t tokens[600 * T];
    int len[600], plen[600];
    int B;
} rows;

/* row b: prompt ++ completion (+ EOS when eos) */
static void add_row(rows *r, const char *prompt, const char *completion, int eos)
{
    tok_encoder *e = tok_encoder_create(tok);
    tok_ids a = {0}, c = {0};
    cr_assert(tok_encode(e, prompt, strlen(prompt), 0, &a) == 0 && tok_encode(e, completion, strlen(completion), 0, &c) == 0);
    const int b = r->B++;
    int n = 0;
    for (size_t i = 0; i < a.n; i++) r->tokens[b * T + n++] = a.ids[i];
    r->plen[b] = n;
    for (size_t i = 0; i < c.n; i++) r->tokens[b * T + n++] = c.ids[i];
    if (eos) r->tokens[b * T + n++] = tok_eot_id(tok);
    cr_assert(n <= T);
    r->len[b] = n;
    while (n < T) r->tokens[b * T + n++] = 0;
    tok_ids_free(&a);
    tok_ids_free(&c);
    tok_encoder_free(e);
}

/* a script in the test folder, executable */
static const char *script(const char *name, const char *body)
{
    static char p[8][4300];
    static int k;
    char *s = p[k++ % 8];
    snprintf(s, 4300, "%s/%s", dir, name);
    tu_write(s, body, strlen(body));
    chmod(s, 0755);
    return s;
}

static int start(reward_set *rs, const char *spec, double timeout, char *err, size_t errlen)
{
    const char *specs[] = {spec};
    memset(rs, 0, sizeof *rs);
    if (reward_parse(rs, specs, 1, NULL, 0, err, errlen)) return -1;
    return reward_open(rs, tok, tok_eot_id(tok), timeout, err, errlen);
}

static int score(reward_set *rs, const rows *r, float *out, char *err, size_t errlen)
{
    scorer s = reward_scorer(rs);
    return scorer_score(&s, r->tokens, r->len, r->plen, r->B, T, out, err, errlen);
}

/* ---- the protocol ------------------------------------------------------------------------------- */

TestSuite(reward_cmd, .init = setup, .fini = teardown, .timeout = 60);

/* Python reads the records as JSON: the answer is the completion's length in characters, or -1
 * when a field is missing, so a mangled record shows. The EOS is left out of the completion. */
Test(reward_cmd, json_records_in_numbers_out)
{
    const char *py = script("len.py", "#!/usr/bin/env python3\n"
                                      "import json, sys\n"
                                      "for line in sys.stdin:\n"
                                      "    r = json.loads(line)\n"
                                      "    ok = set(r) == {'prompt', 'completion'}\n"
                                      "    print(len(r['completion']) if ok else -1, flush=True)\n");
    rows r = {0};
    add_row(&r, "the cat", " says \"good\"\n things", 1);
    add_row(&r, "a dog", " is happy", 0);
    add_row(&r, "the owl", " is sad\tand bad", 1);
    reward_set rs;
    char err[1024], spec[4400];
    snprintf(spec, sizeof spec, "cmd:%s", py);
    cr_assert(start(&rs, spec, 30, err, sizeof err) == 0, "%s", err);
    float s[3];
    for (int k = 0; k < 2; k++) { /* the same program serves batch after batch */
        cr_assert(score(&rs, &r, s, err, sizeof err) == 0, "%s", err);
        CLOSE(s[0], strlen(" says \"good\"\n things"), 0);
        CLOSE(s[1], strlen(" is happy"), 0);
        CLOSE(s[2], strlen(" is sad\tand bad"), 0);
    }
    CLOSE(rs.src[0].mean, (20 + 9 + 15) / 3.0, 1e-6);
    reward_free(&rs);
}

/* 600 records (~60 KB) in one batch, answered line by line by a shell loop: neither side may block
 * on a full pipe; and a program that answers only after reading the whole batch */
Test(reward_cmd, large_batches_answered_per_line_or_at_the_end)
{
    const char *perline = script("perline.sh", "#!/bin/sh\nwhile IFS= read -r line; do echo ${#line}; done\n");
    const char *atend = script("atend.sh", "#!/bin/sh\nwhile :; do n=0; out=''\n"
                                           "  while [ $n -lt 600 ] && IFS= read -r line; do out=\"$out${#line}\n\"; n=$((n+1)); done\n"
                                           "  [ $n -eq 600 ] || exit 0; printf \"$out\"; done\n");
    static rows r;
    memset(&r, 0, sizeof r);
    for (int b = 0; b < 600; b++) add_row(&r, b % 2 ? "the cat says" : "a dog", b % 3 ? " good things and bad" : " happy", b % 5 == 0);
    const char *progs[] = {perline, atend};
    for (int k = 0; k < 2; k++) {
        reward_set rs;
        char err[1024], spec[4400];
        snprintf(spec, sizeof spec, "cmd:%s", progs[k]);
        cr_assert(start(&rs, spec, 30, err, sizeof err) == 0, "%s", err);
        static float s[600];
        cr_assert(score(&rs, &r, s, err, sizeof err) == 0, "%s", err);
        for (int b = 0; b < 600; b++) {
            /* {"prompt": "P", "completion": "C"} : 33 characters around the texts */
            const double want = 32 + strlen(b % 2 ? "the cat says" : "a dog") + strlen(b % 3 ? " good things and bad" : " happy");
            CLOSE(s[b], want, 0);
        }
        reward_free(&rs);
    }
}

Test(reward_cmd, weighted_sum_of_judge_and_program)
{
    const char *two = script("two.sh", "#!/bin/sh\nwhile read -r line; do echo 2; done\n");
    rows r = {0};
    add_row(&r, "the cat", " is good", 1);
    add_row(&r, "a dog", " is bad", 0);
    char err[1024], spec[4400], lex[4400];
    snprintf(spec, sizeof spec, "cmd:%s", two);
    snprintf(lex, sizeof lex, "judge:%s", tu_data("judge/tiny.tsv"));
    const char *specs[] = {lex, spec};
    const double w[] = {0.5, -1.5};
    reward_set rs = {0};
    cr_assert(reward_parse(&rs, specs, 2, w, 2, err, sizeof err) == 0, "%s", err);
    cr_assert(reward_open(&rs, tok, tok_eot_id(tok), 30, err, sizeof err) == 0, "%s", err);
    float s[2];
    cr_assert(score(&rs, &r, s, err, sizeof err) == 0, "%s", err);
    /* the judge's norm: valence / max(words, 8): "is good" +2/8, "is bad" -2/8 */
    CLOSE(s[0], 0.5 * 0.25 - 1.5 * 2, 1e-6);
    CLOSE(s[1], 0.5 * -0.25 - 1.5 * 2, 1e-6);
    CLOSE(rs.src[0].mean, 0, 1e-7);
    CLOSE(rs.src[0].std, 0.25, 1e-7);
    CLOSE(rs.src[1].mean, 2, 0);
    reward_free(&rs);
}

/* ---- failures ------------------------------------------------------------------------------------ */

/* the one-line error of scoring r with prog (timeout seconds); later batches are refused alike */
static char *failure(const char *prog, const rows *r, double timeout, double *secs)
{
    reward_set rs;
    char err[1024], spec[4400];
    snprintf(spec, sizeof spec, "cmd:%s", prog);
    cr_assert(start(&rs, spec, timeout, err, sizeof err) == 0, "%s", err);
    float s[8];
    const double t0 = now();
    cr_assert(score(&rs, r, s, err, sizeof err) == -1);
    *secs = now() - t0;
    cr_assert(!strchr(err, '\n'), "more than one line: %s", err);
    cr_assert(strstr(err, prog), "the program is not named: %s", err);
    char again[1024];
    cr_assert(score(&rs, r, s, again, sizeof again) == -1);
    cr_assert_str_eq(again, err);
    reward_free(&rs);
    return strdup(err);
}

static void three_rows(rows *r)
{
    memset(r, 0, sizeof *r);
    add_row(r, "the cat", " says good", 1);
    add_row(r, "a dog", " is happy", 1);
    add_row(r, "the owl", " is sad", 0);
}

Test(reward_cmd, a_crash_names_the_record_and_its_last_words)
{
    const char *p = script("crash.sh", "#!/bin/sh\nread -r a; echo 1; read -r b; echo 0.5\n"
                                       "echo 'Traceback: ZeroDivisionError' >&2; exit 3\n");
    rows r;
    three_rows(&r);
    double secs;
    char *e = failure(p, &r, 30, &secs);
    cr_assert(strstr(e, "exited with status 3") && strstr(e, "record 3 (row 2 of batch 1") && strstr(e, "\"the owl\"") &&
                  strstr(e, "\" is sad\"") && strstr(e, "ZeroDivisionError"),
              "%s", e);
    free(e);
    const char *k = script("killed.sh", "#!/bin/sh\nkill -9 $$\n");
    e = failure(k, &r, 30, &secs);
    cr_assert(strstr(e, "killed by signal 9") && strstr(e, "record 1 (row 0"), "%s", e);
    free(e);
}

Test(reward_cmd, a_hang_is_killed_at_the_timeout)
{
    /* answers one record, then sleeps (a child process of the shell: the whole group is killed) */
    const char *p = script("hang.sh", "#!/bin/sh\nread -r a; echo 1\nsleep 100\n");
    rows r;
    three_rows(&r);
    double secs;
    char *e = failure(p, &r, 0.5, &secs);
    cr_assert(strstr(e, "no answer within 0.5 s") && strstr(e, "record 2 (row 1") && strstr(e, "killed"), "%s", e);
    cr_assert(secs < 5, "took %.1f s", secs);
    free(e);
}

Test(reward_cmd, non_numbers_and_extra_lines_are_refused)
{
    rows r;
    three_rows(&r);
    double secs;
    const char *bodies[][2] = {{"#!/bin/sh\nwhile read -r l; do echo 1; echo oops; done\n", "\"oops\" for record 2"},
                               {"#!/bin/sh\nwhile read -r l; do echo nan; done\n", "\"nan\" for record 1"},
                               {"#!/bin/sh\nwhile read -r l; do echo; done\n", "\"\" for record 1"},
                               {"#!/bin/sh\nread a; read b; read c; printf '1\\n2\\n3\\n4\\n'; sleep 1\n", "\"4\" for record 3"}};
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%d.sh", i);
        char *e = failure(script(name, bodies[i][0]), &r, 30, &secs);
        cr_assert(strstr(e, bodies[i][1]) && strstr(e, "one finite number per line"), "%d: %s", i, e);
        free(e);
    }
}

Test(reward_cmd, a_missing_program_fails_at_the_start)
{
    reward_set rs;
    char err[1024];
    cr_assert(start(&rs, "cmd:/nonexistent/score --x", 30, err, sizeof err) == -1);
    cr_assert(strstr(err, "'/nonexistent/score --x'") && strstr(err, "cannot start"), "%s", err);
    reward_free(&rs);
}

/* ---- `rlhf eval --reward` ----------------------------------------------------------------------------- */

/* the score is the weighted sum of the sources: the judge's mean (which --gold reports) plus 0.5 x 2 */
Test(reward_eval, eval_scores_with_reward_sources, .timeout = 60)
{
    static const char prompts[] = "{\"prompt\": \"the cat is good\"}\n{\"prompt\": \"a dog is bad\"}\n";
    tu_fixture f;
    tu_fixture_make(&f, "reward-eval", prompts, sizeof prompts - 1, prompts, sizeof prompts - 1);
    char args[40000], *o, *e;
    const char *lex = tu_data("judge/tiny.tsv");
    snprintf(args, sizeof args,
             "eval --model '%s' --prompts '%s' --tokenizer '%s' --n 6 --batch 3 --max-new-tokens 6 --threads 1 --gold "
             "--lexicon '%s' --reward 'judge:%s' 'cmd:sh -c' 'while read l; do echo 2; done' --reward-weights 1 0.5",
             f.model, f.train, f.tok, lex, lex);
    cr_assert(tu_run(args, NULL, &o, &e) == 0, "%s", e);
    double score = NAN, gold = NAN;
    const char *ps = strstr(o, "\"score\":"), *pg = strstr(o, "\"gold\":");
    cr_assert(ps && pg, "%s", o);
    score = strtod(ps + 8, NULL);
    gold = strtod(pg + 7, NULL);
    CLOSE(score, gold + 1, 1e-5);
    free(o);
    free(e);
    /* --rm and --reward together: one line */
    snprintf(args, sizeof args, "eval --model '%s' --prompts '%s' --tokenizer '%s' --rm x --reward judge", f.model, f.train,
             f.tok);
    cr_assert(tu_run(args, NULL, &o, &e) == 1 && tu_lines(e) == 1 && strstr(e, "not both"), "%s", e);
    free(o);
    free(e);
}
