/* test_demo.c — `rlhf demo` end to end at a very small size (--quick, one thread): every artefact
 * exists, report.json has the required keys and every model its family, a rerun reuses every stage
 * and a changed setting reruns only what depends on it, the same seed in a fresh folder reproduces
 * report.json byte for byte, and the bring-your-own path runs on a tiny random Hugging Face-layout
 * checkpoint with the user's own JSONL files; the reward model's word probe finds the word a scorer
 * pays most for. */
#include "fileio.h"
#include "judge.h"
#include "probe.h"
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
    size_t n;
    char err[512];
    char *s = fio_read_all(path, &n, err, sizeof err);
    cr_assert(s, "%s", err);
    return s;
}

static void assert_exists(const char *dir, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    cr_assert(fio_exists(p), "missing %s", p);
}

static int run_demo(const char *args, char **err_out)
{
    char *out, *err;
    const int rc = tu_run(args, NULL, &out, &err);
    free(out);
    if (err_out) *err_out = err;
    else free(err);
    return rc;
}

/* the runs a demo should have made of each trained family ("ppo", "dpo", "grpo", "rloo") */
typedef struct {
    int ppo, dpo, grpo, rloo;
} want_runs;

/* report.json: {"models": {...}} with one "sft" and the wanted runs of each family by their
 * "family", each run named after its family and holding its measures (gain and interval, KL,
 * distinct-2, hack-word share, length), and "best" naming a run of each family; returns the number
 * of models */
static size_t check_report_json(const char *dir, want_runs want)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/report.json", dir);
    json_error_t je;
    json_t *j = json_load_file(p, 0, &je);
    cr_assert(j, "%s: %s", p, je.text);
    json_t *models = json_object_get(j, "models");
    cr_assert(json_is_object(models));
    want_runs got = {0};
    int nsft = 0;
    const char *k;
    json_t *m;
    json_object_foreach(models, k, m)
    {
        const char *fam = json_string_value(json_object_get(m, "family"));
        cr_assert(fam, "model %s has no family", k);
        nsft += strcmp(fam, "sft") == 0;
        got.ppo += strcmp(fam, "ppo") == 0;
        got.dpo += strcmp(fam, "dpo") == 0;
        got.grpo += strcmp(fam, "grpo") == 0;
        got.rloo += strcmp(fam, "rloo") == 0;
        /* the demo names its runs sft, ppo-kl<beta>, ppo-t<target>, dpo-b<beta>, grpo-b<beta>, rloo-b<beta> */
        cr_assert(strncmp(k, fam, strlen(fam)) == 0 && (k[strlen(fam)] == '-' || !k[strlen(fam)]),
                  "model %s has family %s", k, fam);
        static const char *const keys[] = {"gold_reward", "rm_reward", "kl", "distinct2", "gain", "hack_word_share",
                                           "completion_length"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            cr_assert(json_is_number(json_object_get(m, keys[i])), "%s has no %s", k, keys[i]);
        const double share = json_number_value(json_object_get(m, "hack_word_share"));
        cr_assert(share >= 0 && share <= 1, "%s: hack-word share %g", k, share);
        cr_assert_eq(json_array_size(json_object_get(m, "gain_ci95")), 2);
        cr_assert(json_is_boolean(json_object_get(m, "collapsed")));
        /* a run carries its sweep setting; SFT has none */
        cr_assert_eq(json_object_size(json_object_get(m, "setting")), strcmp(fam, "sft") != 0);
    }
    cr_assert_eq(nsft, 1);
    cr_assert_eq(got.ppo, want.ppo);
    cr_assert_eq(got.dpo, want.dpo);
    cr_assert_eq(got.grpo, want.grpo);
    cr_assert_eq(got.rloo, want.rloo);
    cr_assert(json_is_string(json_object_get(j, "hack_word")), "report.json names the hack word");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(models, "sft"), "family")), "sft");
    json_object_foreach(json_object_get(j, "best"), k, m)
    {
        const char *fam = json_string_value(json_object_get(json_object_get(models, json_string_value(m)), "family"));
        cr_assert(fam && strcmp(fam, k) == 0, "best %s run %s is not of that family", k, json_string_value(m));
    }
    cr_assert_eq(json_object_size(json_object_get(j, "best")),
                 (size_t)((want.ppo > 0) + (want.dpo > 0) + (want.grpo > 0) + (want.rloo > 0)));
    /* SFT is its own reference: KL exactly 0 */
    cr_assert_eq(json_number_value(json_object_get(json_object_get(models, "sft"), "kl")), 0.0);
    const size_t n = json_object_size(models);
    json_decref(j);
    return n;
}

/* samples.jsonl: one {"model","prompt","completion"} line per held-out sample per model */
static void check_samples(const char *dir, size_t nmodels)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/report.json", dir);
    json_t *r = json_load_file(p, 0, NULL);
    cr_assert(r);
    const json_t *ev = json_object_get(r, "eval");
    const long per_model = (long)(json_integer_value(json_object_get(ev, "prompts")) *
                                  json_integer_value(json_object_get(ev, "samples_per_prompt")));
    json_decref(r);
    cr_assert_gt(per_model, 0);
    snprintf(p, sizeof p, "%s/samples.jsonl", dir);
    char *s = slurp(p);
    cr_assert_eq((long)tu_lines(s), per_model * (long)nmodels);
    char *line = strtok(s, "\n");
    json_t *j = json_loads(line, JSON_ALLOW_NUL, NULL);
    cr_assert(j, "first line of samples.jsonl is not JSON");
    cr_assert(json_is_string(json_object_get(j, "model")));
    cr_assert(json_is_string(json_object_get(j, "prompt")));
    cr_assert(json_is_string(json_object_get(j, "completion")));
    json_decref(j);
    free(s);
}

/* a passing test leaves no demo folders behind (a few MB each) */
static void remove_dirs(const char *a, const char *b)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", a, b);
    cr_assert_eq(system(cmd), 0);
}

static int have_demo_inputs(void)
{
    char lex[4096];
    judge_default_lexicon(lex, sizeof lex);
    return fio_exists(lex) && fio_exists("/usr/share/games/fortunes/fortunes");
}

Test(demo, quick_end_to_end_cached_and_reproducible, .timeout = 300)
{
    if (!have_demo_inputs())
        cr_skip_test("needs AFINN-165 (tools/get_afinn.sh) and the fortunes package (tools/setup_deps.sh)");
    const char *a = tu_tmpdir("demo-a"), *b = tu_tmpdir("demo-b");
    char args[8192], *err;
    snprintf(args, sizeof args, "demo --quick --threads 1 --seed 7 --out '%s'", a);
    cr_assert_eq(run_demo(args, &err), 0, "%s", err);
    free(err);

    static const char *const files[] = {
        "report.md", "report.json", "samples.jsonl", "figures/frontier.png", "figures/hack_word.png",
        "figures/ppo_score.png", "figures/ppo_kl.png", "figures/ppo_entropy.png", "figures/ppo_gold_vs_rm.png",
        "figures/dpo_margins.png", "figures/dpo_accuracy.png", "figures/grpo_reward.png", "figures/grpo_gold_vs_rm.png",
        "figures/rloo_reward.png", "figures/rloo_gold_vs_rm.png", "figures/rm_accuracy.png", "corpus/stage.json",
        "tokenizer/vocab.json", "pretrain/model/model.safetensors", "sft/model/model.safetensors",
        "prefs/prefs_train.jsonl", "prefs/prefs_heldout.jsonl", "rm/model/reward.json", "rm-words/words.json",
        "ppo-kl0.01/model/model.safetensors", "ppo-kl0.01/gold.jsonl", "ppo-t4/metrics.jsonl",
        "dpo-b0.1/model/model.safetensors", "dpo-b0.5/metrics.jsonl", "grpo-b0.05/model/model.safetensors",
        "grpo-b0.05/gold.jsonl", "rloo-b0.1/model/model.safetensors", "rloo-b0.1/metrics.jsonl", "eval/results.json",
        "eval/sft/samples.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) assert_exists(a, files[i]);
    char p[4096];
    snprintf(p, sizeof p, "%s/sft/step-10", a);
    cr_assert(!fio_exists(p), "checkpoints of a finished stage are pruned");
    const want_runs quick = {.ppo = 2, .dpo = 2, .grpo = 1, .rloo = 1};
    const size_t nm = check_report_json(a, quick);
    check_samples(a, nm);
    snprintf(p, sizeof p, "%s/report.md", a);
    char *md = slurp(p);
    cr_assert(strstr(md, "| ppo-kl0.01 |") && strstr(md, "| ppo-t4 |") && strstr(md, "| dpo-b0.5 |") &&
                  strstr(md, "| grpo-b0.05 |") && strstr(md, "| rloo-b0.1 |"),
              "results table");
    /* the best run of every method in one table, each row with its family's name */
    const char *best = strstr(md, "## The best run of each method");
    cr_assert(best, "best-run table");
    static const char *const methods[] = {"| PPO | ppo-", "| DPO | dpo-", "| GRPO | grpo-", "| RLOO | rloo-"};
    for (size_t i = 0; i < 4; i++) cr_assert(strstr(best, methods[i]), "best-run table has no row %s", methods[i]);
    cr_assert(strstr(md, "## Reward hacking"), "the hack word is shown");
    cr_assert(strstr(md, "](figures/frontier.png)"), "the frontier figure is linked");
    cr_assert(strstr(md, "| pretrain |"), "wall time per stage");
    free(md);
    snprintf(p, sizeof p, "%s/report.json", a);
    char *r1 = slurp(p);

    /* the same command again: every stage is reused, the report is the same */
    cr_assert_eq(run_demo(args, &err), 0, "%s", err);
    static const char *const stages[] = {"corpus", "tokenizer", "pretrain", "sft", "prefs", "rm", "rm-words", "ppo-kl0.01",
                                         "ppo-t4", "dpo-b0.1", "dpo-b0.5", "grpo-b0.05", "rloo-b0.1", "eval"};
    for (size_t i = 0; i < sizeof stages / sizeof *stages; i++) {
        char want[64];
        snprintf(want, sizeof want, "%-10s cached", stages[i]);
        cr_assert(strstr(err, want), "stage %s not reused:\n%s", stages[i], err);
    }
    free(err);
    char *r2 = slurp(p);
    cr_assert_str_eq(r1, r2);
    free(r2);

    /* a changed DPO beta: only that run and the evaluation are redone */
    snprintf(args, sizeof args, "demo --quick --threads 1 --seed 7 --dpo-beta 0.1,0.25 --out '%s'", a);
    cr_assert_eq(run_demo(args, &err), 0, "%s", err);
    cr_assert(strstr(err, "dpo-b0.1   cached") && strstr(err, "rm         cached"), "%s", err);
    cr_assert(strstr(err, "dpo-b0.25  done") && strstr(err, "eval       done"), "%s", err);
    cr_assert(strstr(err, "grpo-b0.05 cached") && strstr(err, "rm-words   cached"), "%s", err);
    free(err);
    check_report_json(a, quick);

    /* the same seed in a fresh folder: report.json byte for byte */
    snprintf(args, sizeof args, "demo --quick --threads 1 --seed 7 --out '%s'", b);
    cr_assert_eq(run_demo(args, &err), 0, "%s", err);
    free(err);
    snprintf(p, sizeof p, "%s/report.json", b);
    char *r3 = slurp(p);
    cr_assert_str_eq(r1, r3, "report.json differs between two runs with the same seed");
    free(r1);
    free(r3);
    remove_dirs(a, b);
}

/* the user's own model (a tiny random GPT-2 in Hugging Face layout with its tokenizer) and data */
Test(demo, bring_your_own_model_and_data, .timeout = 120)
{
    const char *d = tu_tmpdir("demo-byo"), *out = tu_tmpdir("demo-byo-out");
    char model[4096], sft[4096], prompts[4096], eprompts[4096], prefs[4096];
    snprintf(model, sizeof model, "%s/model", d);
    snprintf(sft, sizeof sft, "%s/sft.jsonl", d);
    snprintf(prompts, sizeof prompts, "%s/prompts.jsonl", d);
    snprintf(eprompts, sizeof eprompts, "%s/eval_prompts.jsonl", d);
    snprintf(prefs, sizeof prefs, "%s/prefs.jsonl", d);
    static const char *const subj[] = {"The day", "My cat", "This film", "Our team", "The food", "That song"};
    static const char *const good[] = {" was good and kind.", " is a happy love.", " made me happy."};
    static const char *const bad[] = {" was bad.", " is full of hate.", " was bad and sad."};
    char text[16384], buf[16384];
    size_t tn = 0, n = 0;
    for (int i = 0; i < 24; i++) /* the tokenizer's training text */
        tn += (size_t)snprintf(text + tn, sizeof text - tn, "%s%s %s%s ", subj[i % 6], good[i % 3], subj[(i + 1) % 6],
                               bad[i % 3]);
    tu_tiny_bpe_and_model(text, tn, model, model);
    for (int i = 0; i < 24; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"prompt\": \"%s\", \"completion\": \"%s\"}\n", subj[i % 6],
                              i % 2 ? good[i % 3] : bad[i % 3]);
    tu_write(sft, buf, n);
    n = 0;
    for (int i = 0; i < 6; i++) n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"prompt\": \"%s\"}\n", subj[i]);
    tu_write(prompts, buf, n);
    tu_write(eprompts, buf, n);
    n = 0;
    for (int i = 0; i < 24; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n",
                              subj[i % 6], good[i % 3], bad[(i + 1) % 3]);
    tu_write(prefs, buf, n);

    char args[32768], *err;
    snprintf(args, sizeof args,
             "demo --quick --threads 1 --out '%s' --model '%s' --sft-data '%s' --prompts '%s' --eval-prompts '%s' "
             "--prefs '%s' --lexicon '%s' --ppo-kl 0.05 --ppo-target-kl none --dpo-beta 0.1 --grpo-beta 0 --rloo-beta none",
             out, model, sft, prompts, eprompts, prefs, tu_data("judge/tiny.tsv"));
    cr_assert_eq(run_demo(args, &err), 0, "%s", err);
    free(err);
    const size_t nm = check_report_json(out, (want_runs){.ppo = 1, .dpo = 1, .grpo = 1});
    check_samples(out, nm);
    static const char *const absent[] = {"corpus", "tokenizer", "pretrain", "prefs"};
    for (size_t i = 0; i < 4; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", out, absent[i]);
        cr_assert(!fio_exists(p), "%s should not exist: the user brought it", p);
    }
    assert_exists(out, "sft/model/vocab.json");
    assert_exists(out, "report.md");
    remove_dirs(d, out);
}

Test(demo, errors_are_one_line)
{
    const char *d = tu_tmpdir("demo-err");
    char args[8192], *err;
    snprintf(args, sizeof args, "demo --quick --out '%s' --ppo-kl 0.1,x", d);
    cr_assert_eq(run_demo(args, &err), 1);
    cr_assert_eq(tu_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "--ppo-kl"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "demo --quick --out '%s' --lexicon /nonexistent/afinn.tsv", d);
    cr_assert_eq(run_demo(args, &err), 1);
    cr_assert_eq(tu_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "/nonexistent/afinn.tsv"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "demo --quick --out '%s' --model /nonexistent/model", d);
    cr_assert_eq(run_demo(args, &err), 1);
    cr_assert_eq(tu_lines(err), 1, "%s", err);
    free(err);
    snprintf(args, sizeof args, "demo --quick --out '%s' --ppo-target-kl 0", d);
    cr_assert_eq(run_demo(args, &err), 1);
    cr_assert_eq(tu_lines(err), 1, "%s", err);
    cr_assert(strstr(err, "target KL"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "demo --quick --out '%s' --set pt_steps=0", d);
    cr_assert_eq(run_demo(args, &err), 1);
    cr_assert(strstr(err, "pt_steps"), "%s", err);
    free(err);
    remove_dirs(d, d);
}

/* ---- the reward model's word probe (data/probe.h) -------------------------------------------------- */

/* a scorer that pays 2 for " happy", 1 for " good", -1 for " bad" as the completion's first token and
 * 0 otherwise, plus 0.25 per prompt token (so the mean over the prompts is part of the score) */
typedef struct {
    const tok_tokenizer *t;
    long rows;
} word_payer;

static int pay_words(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                     float *scores, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    word_payer *w = ud;
    for (int b = 0; b < B; b++) {
        cr_assert_eq(lengths[b], prompt_lengths[b] + 2, "the completion is the word and EOS");
        cr_assert_eq(tokens[(size_t)b * T + prompt_lengths[b] + 1], tok_eot_id(w->t));
        size_t n;
        const uint8_t *s = tok_token_bytes(w->t, tokens[(size_t)b * T + prompt_lengths[b]], &n);
        const float f = n == 6 && !memcmp(s, " happy", 6) ? 2 : n == 5 && !memcmp(s, " good", 5) ? 1
                                                           : n == 4 && !memcmp(s, " bad", 4)    ? -1
                                                                                                : 0;
        scores[b] = f + 0.25f * (float)prompt_lengths[b];
    }
    w->rows += B;
    return 0;
}

Test(demo, probe_finds_the_words_a_scorer_pays_most_for)
{
    const char *d = tu_tmpdir("probe");
    char text[8192];
    size_t n = 0;
    for (int i = 0; i < 40; i++) n += (size_t)snprintf(text + n, sizeof text - n, "a happy day, a good day, a bad day. ");
    tu_tiny_bpe(text, n, d);
    char err[512];
    tok_tokenizer *t;
    cr_assert_eq(tok_load(d, &t, err, sizeof err), 0, "%s", err);
    /* two prompts of 1 and 3 tokens: the mean adds 0.5 */
    const int32_t p1[] = {'a'}, p2[] = {'a', 'b', 'c'};
    const int32_t *rows[] = {p1, p2};
    int len[] = {1, 3};
    const ds_prompts pp = {rows, len, 2};
    word_payer wp = {t, 0};
    const scorer sc = {pay_words, &wp};
    probe_word *w;
    int nw;
    cr_assert_eq(probe_words(&sc, t, &pp, 3, &w, &nw, err, sizeof err), 0, "%s", err);
    cr_assert_geq(nw, 4, "happy, good, bad and day are whole-word tokens (%d candidates)", nw);
    cr_assert_eq(wp.rows, 2L * nw, "every candidate after every prompt, once");
    cr_assert_str_eq(w[0].word, "happy");
    cr_assert_float_eq(w[0].score, 2.5, 1e-6);
    cr_assert_str_eq(w[1].word, "good");
    cr_assert_str_eq(w[nw - 1].word, "bad");
    cr_assert_float_eq(w[nw - 1].score, -0.5, 1e-6);
    for (int i = 0; i < nw; i++) cr_assert_geq(strlen(w[i].word), (size_t)PROBE_MIN_LETTERS);
    free(w);
    tok_free(t);

    /* the effect of a word's presence on the scores, by hand: "good" in texts 0 and 1 (mean 2) against
     * 0 without; "day" in 1, 2, 3 (mean 1/3) against 3; "bad" once (too rare), "so" too short; a word
     * twice in one text counts once */
    static const char *const texts[] = {"so good, good", "Good day", "bad day", "a day!"};
    static const float scores[] = {3, 1, -1, 1};
    cr_assert_eq(probe_presence(texts, scores, 4, 0, &w, &nw, err, sizeof err), 0, "%s", err);
    cr_assert_eq(nw, 2);
    cr_assert_str_eq(w[0].word, "good");
    cr_assert_float_eq(w[0].score, 2.0, 1e-9);
    cr_assert_float_eq(w[0].share, 0.5, 1e-12);
    cr_assert_str_eq(w[1].word, "day");
    cr_assert_float_eq(w[1].score, 1.0 / 3 - 3, 1e-9);
    free(w);
    cr_assert_eq(probe_presence(texts, scores, 4, 0.6, &w, &nw, err, sizeof err), 0, "%s", err);
    cr_assert(nw == 1 && strcmp(w[0].word, "day") == 0, "min_share keeps the words in >= 60%% of the texts");
    free(w);

    /* whole words, ASCII case folded */
    static const struct {
        const char *text;
        int has;
    } cases[] = {{"so good", 1}, {"Good!", 1}, {"a GOOD day", 1}, {"goodness", 0}, {"feelgood", 0}, {"go od", 0},
                 {"", 0},       {"good", 1},  {"(good)", 1},     {"good's", 1},   {"goo", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_assert_eq(probe_has_word(cases[i].text, strlen(cases[i].text), "good"), cases[i].has, "'%s'", cases[i].text);
    remove_dirs(d, d);
}
