/* cmd_judge.c — `rlhf judge`: score texts with the gold judge (AFINN-165, data/judge.h), one JSON
 * line per record, so any score can be checked by hand (--explain lists the matched terms). */
#include "cli.h"
#include "commands.h"
#include "dataset.h"
#include "judge.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const judge *j;
    int explain;
    double seconds; /* time spent scoring */
    size_t texts;
    double sum_score, sum_norm;
} judging;

static void add_hit(void *ud, const char *term, int valence, int negated)
{
    json_array_append_new(ud, negated ? json_pack("[s,i,s]", term, valence, "negated") : json_pack("[s,i]", term, valence));
}

/* {"score", "norm", "words"[, "hits"]} for one text */
static json_t *score_json(judging *g, const char *s, size_t n, double *norm)
{
    judge_result r;
    json_t *hits = g->explain ? json_array() : NULL;
    double t0 = clk_now();
    judge_score_explain(g->j, s, n, &r, hits ? add_hit : NULL, hits);
    g->seconds += clk_now() - t0;
    g->texts++;
    g->sum_score += r.score;
    g->sum_norm += r.norm;
    if (norm) *norm = r.norm;
    json_t *o = json_pack("{s:i, s:f, s:i}", "score", r.score, "norm", r.norm, "words", r.words);
    if (hits) json_object_set_new(o, "hits", hits);
    return o;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (!s) cli_die("judge", "out of memory");
    puts(s);
    free(s);
    json_decref(o);
}

int cmd_judge(int argc, char **argv)
{
    const char *lex = NULL, *in = NULL, *text = NULL;
    int explain = 0;
    const cli_opt opts[] = {
        {"--in", OPT_STR, &in, "FILE", "JSONL: scores \"completion\", \"text\", \"prompt\" (prompt-only files), or \"chosen\" and \"rejected\"", 0},
        {"--text", OPT_STR, &text, "TEXT", "score this text", 0},
        {"--lexicon", OPT_STR, &lex, "FILE", "term<TAB>valence file (default: AFINN-165 from tools/get_afinn.sh)", 0},
        {"--explain", OPT_FLAG, &explain, NULL, "list the matched terms and their valences", 0},
        {0}};
    cli_parse("judge", "Score texts with the gold sentiment judge (AFINN-165).", argc, argv, opts);
    if (!in == !text) cli_die("judge", "give exactly one of --in FILE and --text TEXT");
    char path[4096], err[1024];
    if (!lex) lex = judge_default_lexicon(path, sizeof path);
    judge *j;
    if (judge_create(&j, lex, err, sizeof err)) cli_die("judge", "%s (run tools/get_afinn.sh for AFINN-165)", err);
    judging g = {.j = j, .explain = explain};
    size_t pairs = 0, agree = 0;
    if (text) {
        print_json(score_json(&g, text, strlen(text), NULL));
    } else {
        ds_reader *r;
        ds_record rec;
        int rc;
        if (ds_reader_open(&r, in, err, sizeof err)) cli_die("judge", "%s", err);
        while ((rc = ds_reader_next(r, &rec, err, sizeof err)) == 1) {
            json_t *o;
            if (rec.chosen) {
                double nc, nr;
                json_t *c = score_json(&g, rec.chosen, rec.chosen_len, &nc);
                json_t *rj = score_json(&g, rec.rejected, rec.rejected_len, &nr);
                pairs++;
                agree += nc > nr;
                o = json_pack("{s:I, s:o, s:o, s:b}", "line", (json_int_t)rec.line, "chosen", c, "rejected", rj, "agree", nc > nr);
            } else {
                const char *s = rec.completion ? rec.completion : rec.text ? rec.text : rec.prompt;
                size_t n = rec.completion ? rec.completion_len : rec.text ? rec.text_len : rec.prompt_len;
                o = json_pack("{s:I}", "line", (json_int_t)rec.line);
                json_t *sc = score_json(&g, s, n, NULL);
                if (!o || !sc || json_object_update(o, sc)) cli_die("judge", "out of memory");
                json_decref(sc);
            }
            if (!o) cli_die("judge", "out of memory");
            print_json(o);
        }
        ds_reader_close(r);
        if (rc < 0) cli_die("judge", "%s", err);
    }
    fprintf(stderr, "judge: %zu texts, mean score %.3f, mean norm %.4f", g.texts, g.sum_score / (double)g.texts,
            g.sum_norm / (double)g.texts);
    if (pairs) fprintf(stderr, "; judge prefers chosen in %zu of %zu pairs (%.1f%%)", agree, pairs, 100.0 * (double)agree / (double)pairs);
    fprintf(stderr, "; %.2f ms per 1000 texts (%zu terms in %s)\n", 1e6 * g.seconds / (double)g.texts, judge_size(j), lex);
    judge_free(j);
    return 0;
}
