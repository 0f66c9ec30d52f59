/* test_eval.c — held-out evaluation (rlhf/eval.h): distinct-n by hand; the sequence-level KL
 * estimator (Σ log π - log π_ref on the policy's own samples) against the exact KL of two tiny
 * models over every 2-token completion, at temperature 1 and 0.5, and exactly 0 against itself;
 * the samples file, a scorer callback and the gold judge as a second scorer. */
#include "eval.h"
#include "fileio.h"
#include "testutil.h"
#include "tok.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(eval, distinct_n_by_hand)
{
    /* unigrams 1 2 3 1 | 1 2: 3 distinct of 6; bigrams (1,2) (2,3) (3,1) | (1,2): 3 distinct of 4 */
    const int32_t a[] = {1, 2, 3, 1}, b[] = {1, 2};
    const int32_t *ids[] = {a, b};
    const int len[] = {4, 2};
    double d1, d2;
    char err[128];
    cr_assert(eval_distinct(ids, len, 2, &d1, &d2, err, sizeof err) == 0, "%s", err);
    CLOSE(d1, 0.5, 0);
    CLOSE(d2, 0.75, 0);
    /* a bigram never crosses two completions: [1] [2] has none */
    const int32_t c[] = {1}, e[] = {2};
    const int32_t *ids2[] = {c, e};
    const int len2[] = {1, 1};
    cr_assert(eval_distinct(ids2, len2, 2, &d1, &d2, err, sizeof err) == 0, "%s", err);
    CLOSE(d1, 1, 0);
    CLOSE(d2, 0, 0);
}

enum { V = 8 };

static gpt2 *tiny(uint64_t seed, float scale)
{
    gpt2_config c = {2, 2, 16, V, 16, 1e-5f};
    gpt2 *m;
    char err[256];
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, seed);
    float *p = gpt2_params(m);
    for (size_t i = 0; i < gpt2_num_params(m); i++) p[i] *= scale; /* peaked distributions: a sizeable KL */
    gpt2_set_threads(m, 1);
    omp_set_num_threads(1); /* tiny models: threads would only wait on each other */
    return m;
}

/* log-softmax of the logits after tokens[0..n) at temperature tau */
static void next_logp(gpt2 *m, const int32_t *tokens, int n, double tau, double *lp)
{
    char err[256];
    float loss;
    cr_assert(gpt2_forward(m, tokens, NULL, NULL, 1, n, &loss, err, sizeof err) == 0, "%s", err);
    const float *lg = gpt2_logits(m) + (size_t)(n - 1) * V;
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, lg[v] / tau);
    for (int v = 0; v < V; v++) z += exp(lg[v] / tau - mx);
    for (int v = 0; v < V; v++) lp[v] = lg[v] / tau - mx - log(z);
}

/* KL(p || q) over every completion of 2 tokens: Σ_y1 p(y1) [log p(y1)/q(y1) + KL(p(.|y1) || q(.|y1))] */
static double exact_kl2(gpt2 *p, gpt2 *q, const int32_t *prompt, int n, double tau)
{
    double a[V], b[V], kl = 0;
    int32_t row[8];
    memcpy(row, prompt, (size_t)n * sizeof *row);
    next_logp(p, row, n, tau, a);
    next_logp(q, row, n, tau, b);
    for (int y = 0; y < V; y++) {
        double a2[V], b2[V], k2 = 0;
        row[n] = y;
        next_logp(p, row, n + 1, tau, a2);
        next_logp(q, row, n + 1, tau, b2);
        for (int z = 0; z < V; z++) k2 += exp(a2[z]) * (a2[z] - b2[z]);
        kl += exp(a[y]) * (a[y] - b[y] + k2);
    }
    return kl;
}

Test(eval, sequence_kl_estimates_the_exact_kl, .timeout = 60)
{
    gpt2 *pol = tiny(3, 4.0f), *ref = tiny(4, 4.0f);
    static const int32_t prompt[] = {1, 5, 2};
    const int32_t *rows[] = {prompt};
    int lens[] = {3};
    const ds_prompts pp = {rows, lens, 1};
    char err[512];
    const double taus[] = {1.0, 0.5};
    for (int k = 0; k < 2; k++) {
        eval_opts o = eval_defaults();
        o.n = 3000;
        o.batch = 100;
        o.max_new_tokens = 2;
        o.temperature = (float)taus[k];
        eval_result r;
        cr_assert(eval_run(pol, ref, &pp, &o, &r, err, sizeof err) == 0, "%s", err);
        const double exact = exact_kl2(pol, ref, prompt, 3, taus[k]), se = r.kl_std / sqrt((double)r.n);
        cr_assert(exact > 0.1, "exact KL %.4f: the models should differ", exact);
        cr_assert(fabs(r.kl - exact) < 4 * se, "temperature %.1f: estimate %.4f ± %.4f, exact %.4f", taus[k], r.kl, se, exact);
        CLOSE(r.completion_length, 2, 0);
        CLOSE(r.eos_rate, 0, 0);
        cr_assert(isnan(r.score) && isnan(r.extra));
    }
    /* against itself: every sample's log-ratio is exactly 0 */
    eval_opts o = eval_defaults();
    o.n = 20;
    o.max_new_tokens = 4;
    eval_result r;
    cr_assert(eval_run(pol, pol, &pp, &o, &r, err, sizeof err) == 0, "%s", err);
    CLOSE(r.kl, 0, 0);
    CLOSE(r.kl_std, 0, 0);
    /* no reference: no KL */
    cr_assert(eval_run(pol, NULL, &pp, &o, &r, err, sizeof err) == 0, "%s", err);
    cr_assert(isnan(r.kl));
    gpt2_free(pol);
    gpt2_free(ref);
}

/* a scorer: the completion's length, to check rows reach the scorer whole */
static int length_score(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                        float *scores, char *err, size_t errlen)
{
    (void)ud, (void)tokens, (void)T, (void)err, (void)errlen;
    for (int b = 0; b < B; b++) scores[b] = (float)(lengths[b] - prompt_lengths[b]);
    return 0;
}

Test(eval, samples_file_scorers_and_the_gold_judge, .timeout = 60)
{
    const char *dir = tu_tmpdir("eval-judge");
    static const char text[] = "good day. bad day. happy love, hate kind. not good at all. cool stuff does not work. ";
    tok_train_opts to = tok_train_defaults();
    to.vocab_size = 280;
    const char *texts[] = {text};
    const size_t lens[] = {sizeof text - 1};
    tok_tokenizer *t;
    char err[512];
    cr_assert(tok_train(texts, lens, 1, &to, &t, err, sizeof err) == 0, "%s", err);
    omp_set_num_threads(1);
    const int32_t eos = tok_eot_id(t);
    gpt2_config c = {2, 2, 16, (int)tok_vocab_size(t), 32, 1e-5f};
    gpt2 *m;
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, 9);
    gpt2_set_threads(m, 1);
    judge *j;
    cr_assert(judge_create(&j, tu_data("judge/tiny.tsv"), err, sizeof err) == 0, "%s", err);
    scorer_judge g = {j, t, eos};
    tok_encoder *e = tok_encoder_create(t);
    tok_ids a = {0}, b = {0};
    cr_assert(e && tok_encode(e, "go", 2, 0, &a) == 0 && tok_encode(e, "h", 1, 0, &b) == 0);
    const int32_t *rows[] = {a.ids, b.ids};
    int plens[] = {(int)a.n, (int)b.n};
    const ds_prompts pp = {rows, plens, 2};
    eval_opts o = eval_defaults();
    o.n = 10;
    o.batch = 4;
    o.max_new_tokens = 12;
    o.stop_token = eos;
    char out[4200], out2[4200];
    snprintf(out, sizeof out, "%s/samples.jsonl", dir);
    snprintf(out2, sizeof out2, "%s/again.jsonl", dir);
    eval_result r;
    o.score = (scorer){length_score, NULL};
    o.extra = scorer_judge_make(&g);
    o.tok = t;
    o.samples_path = out;
    cr_assert(eval_run(m, NULL, &pp, &o, &r, err, sizeof err) == 0, "%s", err);
    CLOSE(r.score, r.completion_length, 1e-9); /* the length scorer saw every completion whole */
    cr_assert(r.distinct1 > 0 && r.distinct1 <= 1 && r.distinct2 >= 0 && r.distinct2 <= 1);
    /* one line per sample; "extra" is the judge's norm of the decoded completion (EOS left out) */
    size_t n;
    char *s = fio_read_all(out, &n, err, sizeof err);
    cr_assert(s, "%s", err);
    cr_assert_eq(tu_lines(s), 10);
    double extra = 0, score = 0;
    int eos_seen = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *jl = json_loads(line, 0, &je);
        cr_assert(jl, "%s", je.text);
        const char *prompt = json_string_value(json_object_get(jl, "prompt")),
                   *comp = json_string_value(json_object_get(jl, "completion"));
        cr_assert(prompt && comp && (!strcmp(prompt, "go") || !strcmp(prompt, "h")), "%s", line);
        cr_assert(!strstr(comp, TOK_EOT_TEXT), "%s", line);
        judge_result jr;
        judge_score(j, comp, strlen(comp), &jr);
        CLOSE(json_real_value(json_object_get(jl, "extra")), jr.norm, 1e-6);
        const long ntok = (long)json_integer_value(json_object_get(jl, "tokens"));
        CLOSE(json_real_value(json_object_get(jl, "score")), (double)ntok, 0);
        cr_assert(ntok >= 1 && ntok <= 12);
        eos_seen += json_is_true(json_object_get(jl, "eos"));
        cr_assert(!json_object_get(jl, "kl")); /* no reference */
        extra += jr.norm / 10;
        score += (double)ntok / 10;
        json_decref(jl);
    }
    CLOSE(r.extra, extra, 1e-6);
    CLOSE(r.score, score, 1e-6);
    CLOSE(r.eos_rate, eos_seen / 10.0, 1e-12);
    /* the same seed and batch: the same file */
    o.samples_path = out2;
    cr_assert(eval_run(m, NULL, &pp, &o, &r, err, sizeof err) == 0, "%s", err);
    size_t n2;
    char *s2 = fio_read_all(out2, &n2, err, sizeof err), *s1 = fio_read_all(out, &n, err, sizeof err);
    cr_assert(s1 && s2 && n == n2 && memcmp(s1, s2, n) == 0);
    /* the samples file needs a tokenizer; a bad temperature is refused */
    o.tok = NULL;
    cr_assert(eval_run(m, NULL, &pp, &o, &r, err, sizeof err) == -1 && strstr(err, "needs a tokenizer"), "%s", err);
    o.samples_path = NULL;
    o.temperature = 0;
    cr_assert(eval_run(m, NULL, &pp, &o, &r, err, sizeof err) == -1 && strstr(err, "temperature"), "%s", err);
    free(s);
    free(s1);
    free(s2);
    tok_ids_free(&a);
    tok_ids_free(&b);
    tok_encoder_free(e);
    judge_free(j);
    gpt2_free(m);
    tok_free(t);
}
