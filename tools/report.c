/* report.c — report.md / report.json / samples.jsonl / figures from a finished demo folder. See
 * report.h; the numbers come from eval/results.json, the stage summaries (stage.json) and the
 * trainers' metrics.jsonl, nothing is recomputed here. A run's method is its "family" in
 * results.json (rlhf/demo.h), never read from its name. */
#include "report.h"

#include "demo.h"
#include "fileio.h"
#include "plot.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATHN 4096
#define SMOOTH 5 /* steps in the moving averages of noisy per-step curves */

static json_t *load_json(const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fio_fail(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    return j;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* ---- the stages ---------------------------------------------------------------------------------- */

#define MAX_FAMILIES 8

typedef struct {
    char name[64];
    const char *family;          /* a trained run's family ("ppo", "dpo", ...); NULL for other stages */
    json_t *stage;               /* stage.json, NULL when the stage did not run (bring your own) */
} stage_ref;

typedef struct {
    const char *dir;
    json_t *res;                 /* eval/results.json */
    json_t *models;              /* its "models" (borrowed) */
    const json_t *ref;           /* the model of family "sft": the reference of gains, KL and collapse */
    const char *fam[MAX_FAMILIES]; /* the other families, in the order of their first model */
    int nfam;
    stage_ref st[64];
    int nst;
} report;

/* the family of a results.json model entry */
static const char *family(const json_t *m) { return json_string_value(json_object_get(m, "family")); }

static void add_stage(report *r, const char *name, const char *family)
{
    if (r->nst >= (int)(sizeof r->st / sizeof *r->st)) return;
    stage_ref *s = &r->st[r->nst++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->family = family;
    char p[PATHN];
    snprintf(p, sizeof p, "%s/%s/stage.json", r->dir, name);
    s->stage = fio_exists(p) ? json_load_file(p, 0, NULL) : NULL;
}

/* part ("summary" or "settings") of a stage's stage.json; NULL when the stage did not run */
static const json_t *stage_section(const report *r, const char *name, const char *part)
{
    for (int i = 0; i < r->nst; i++)
        if (strcmp(r->st[i].name, name) == 0 && r->st[i].stage) return json_object_get(r->st[i].stage, part);
    return NULL;
}

static const json_t *summary(const report *r, const char *name) { return stage_section(r, name, "summary"); }

/* ---- report.json and samples.jsonl -------------------------------------------------------------- */

/* the best run of a family: the highest gold reward among runs whose distinct-2 keeps a safety margin
 * over the collapse line (>= DEMO_BEST_MARGIN x SFT's, where "collapsed" is < DEMO_COLLAPSE_RATIO x:
 * a run just above the line is too close to call), else among runs that did not collapse, else
 * among all */
static const char *best_run(const report *r, const char *fam)
{
    const char *best = NULL;
    double bg = -INFINITY;
    const double d2_sft = num(r->ref, "distinct2");
    for (int pass = 0; pass < 3 && !best; pass++) {
        const char *k;
        json_t *m;
        json_object_foreach(r->models, k, m)
        {
            if (strcmp(family(m), fam) != 0) continue;
            if (pass == 0 && !(num(m, "distinct2") >= DEMO_BEST_MARGIN * d2_sft)) continue;
            if (pass == 1 && json_is_true(json_object_get(m, "collapsed"))) continue;
            if (num(m, "gold_reward") > bg) {
                bg = num(m, "gold_reward");
                best = k;
            }
        }
    }
    return best;
}

static int write_json(const char *path, json_t *j, char *err, size_t errlen)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (!s) return fio_fail(err, errlen, "%s: out of memory", path);
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps leaves room for the NUL: replace it, write n + 1 bytes */
    int rc = fio_write_atomic(path, s, n + 1, err, errlen);
    free(s);
    return rc;
}

static int write_report_json(const report *r, char *err, size_t errlen)
{
    json_t *j = json_object();
    json_object_set(j, "models", r->models);
    json_t *best = json_object();
    for (int i = 0; i < r->nfam; i++) {
        const char *b = best_run(r, r->fam[i]);
        if (b) json_object_set_new(best, r->fam[i], json_string(b));
    }
    json_object_set_new(j, "best", best);
    json_object_set_new(j, "eval", json_pack("{s:O, s:O, s:O, s:O}", "prompts", json_object_get(r->res, "prompts"),
                                              "samples_per_prompt", json_object_get(r->res, "samples_per_prompt"),
                                              "temperature", json_object_get(r->res, "temperature"), "max_new_tokens",
                                              json_object_get(r->res, "max_new_tokens")));
    const json_t *rm = summary(r, "rm"), *pf = summary(r, "prefs");
    if (rm)
        json_object_set_new(j, "reward_model",
                            json_pack("{s:O, s:O, s:O}", "eval_accuracy", json_object_get(rm, "eval_accuracy"),
                                      "eval_gold_accuracy", json_object_get(rm, "eval_gold_accuracy"), "pairs",
                                      json_object_get(rm, "pairs")));
    if (pf) json_object_set_new(j, "labels", json_deep_copy(pf));
    char p[PATHN];
    int rc = write_json(fio_join(p, sizeof p, r->dir, "report.json"), j, err, errlen);
    json_decref(j);
    return rc;
}

/* samples-<model>.jsonl of the eval stage, every line parsed (NULL-terminated array; caller frees) */
static json_t **read_samples(const report *r, const char *model, long *n, char *err, size_t errlen)
{
    char p[PATHN];
    snprintf(p, sizeof p, "%s/eval/samples-%s.jsonl", r->dir, model);
    size_t len;
    char *text = fio_read_all(p, &len, err, errlen);
    if (!text) return NULL;
    long lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    json_t **v = calloc((size_t)lines + 2, sizeof *v);
    *n = 0;
    char *s = text;
    while (v && *s) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = 0;
        if (*s && !(v[(*n)++] = json_loads(s, JSON_ALLOW_NUL, NULL))) {
            fio_fail(err, errlen, "%s:%ld: not JSON", p, *n);
            for (long i = 0; i < *n; i++) json_decref(v[i]);
            free(v);
            v = NULL;
        }
        s = nl ? nl + 1 : s + strlen(s);
    }
    if (!v && !err[0]) fio_fail(err, errlen, "out of memory");
    free(text);
    return v;
}

static void free_samples(json_t **v, long n)
{
    for (long i = 0; v && i < n; i++) json_decref(v[i]);
    free(v);
}

/* close a memory stream and, when rc is 0, write what it holds to dir/name atomically */
static int commit_stream(FILE *f, char **buf, size_t *len, const char *dir, const char *name, int rc, char *err,
                         size_t errlen)
{
    char p[PATHN];
    if (fclose(f) != 0 && rc == 0) rc = fio_fail(err, errlen, "%s: out of memory", name);
    if (rc == 0) rc = fio_write_atomic(fio_join(p, sizeof p, dir, name), *buf, *len, err, errlen);
    free(*buf);
    *buf = NULL;
    return rc;
}

static int write_samples(const report *r, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return fio_fail(err, errlen, "out of memory");
    const char *k;
    json_t *m;
    int rc = 0;
    json_object_foreach(r->models, k, m)
    {
        long n;
        json_t **v = read_samples(r, k, &n, err, errlen);
        if (!v) {
            rc = -1;
            break;
        }
        for (long i = 0; i < n; i++) {
            json_t *o = json_pack("{s:s, s:O, s:O}", "model", k, "prompt", json_object_get(v[i], "prompt"), "completion",
                                  json_object_get(v[i], "completion"));
            char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            if (s) fprintf(f, "%s\n", s);
            else rc = fio_fail(err, errlen, "out of memory");
            free(s);
            json_decref(o);
        }
        free_samples(v, n);
    }
    return commit_stream(f, &buf, &len, r->dir, "samples.jsonl", rc, err, errlen);
}

/* ---- figures ------------------------------------------------------------------------------------- */

typedef struct {
    double *x, *y;
    size_t n, cap;
} series;

static void series_free(series *s)
{
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

static int series_push(series *s, double x, double y)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return -1;
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return -1;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return 0;
}

/* (step, key) of every line of a JSONL file that has key; a missing file gives no points */
static int load_metric(const char *path, const char *xkey, const char *key, series *s)
{
    size_t len;
    char *text = fio_read_all(path, &len, NULL, 0);
    if (!text) return 0;
    int rc = 0;
    for (char *p = text; *p && rc == 0;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        json_t *j = json_loads(p, 0, NULL);
        const double x = num(j, xkey), y = num(j, key);
        if (j && !isnan(x) && !isnan(y)) rc = series_push(s, x, y);
        json_decref(j);
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(text);
    return rc;
}

/* trailing moving average over w points, in place */
static void smooth(double *y, size_t n, int w)
{
    double *c = malloc((n + 1) * sizeof *c);
    if (!c) return;
    c[0] = 0;
    for (size_t i = 0; i < n; i++) c[i + 1] = c[i] + y[i];
    for (size_t i = 0; i < n; i++) {
        const size_t lo = i + 1 > (size_t)w ? i + 1 - (size_t)w : 0;
        y[i] = (c[i + 1] - c[lo]) / (double)(i + 1 - lo);
    }
    free(c);
}

typedef struct {
    FILE *md;                    /* report.md being written */
    char *plot_err;
    size_t plot_errlen;
} figs;

/* draw figures/<file> and link it from report.md; a gnuplot failure is noted, not fatal */
static void figure(const report *r, figs *f, const char *file, const plot_opts *o, const plot_series *s, int ns)
{
    char p[PATHN], e[512];
    snprintf(p, sizeof p, "%s/figures/%s", r->dir, file);
    if (plot_lines(p, o, s, ns, e, sizeof e) == 0) {
        fprintf(f->md, "![%s](figures/%s)\n\n", o->title, file);
        return;
    }
    fprintf(f->md, "*(figure %s not drawn: %s)*\n\n", file, e);
    if (f->plot_err && !f->plot_err[0]) snprintf(f->plot_err, f->plot_errlen, "%s", e);
}

/* one figure with one series per run of a family, metric `key` of <run>/metrics.jsonl (or another
 * file) against the step, optionally smoothed */
static void runs_figure(const report *r, figs *f, const char *fam, const char *file, const char *jsonl, const char *key,
                        int w, const plot_opts *o)
{
    series s[64] = {{0}};
    plot_series ps[64];
    int n = 0;
    for (int i = 0; i < r->nst && n < 64; i++) {
        if (!r->st[i].family || strcmp(r->st[i].family, fam) != 0) continue;
        char p[PATHN];
        snprintf(p, sizeof p, "%s/%s/%s", r->dir, r->st[i].name, jsonl);
        if (load_metric(p, "step", key, &s[n]) == 0 && s[n].n) {
            if (w > 1) smooth(s[n].y, s[n].n, w);
            ps[n] = (plot_series){r->st[i].name, s[n].x, s[n].y, s[n].n};
            n++;
        } else
            series_free(&s[n]);
    }
    if (n) figure(r, f, file, o, ps, n);
    for (int i = 0; i < n; i++) series_free(&s[i]);
}

/* the frontier's line of a family */
static const char *family_label(const char *fam)
{
    static const char *const label[][2] = {{"ppo", "PPO (one point per KL coefficient)"}, {"dpo", "DPO (one point per beta)"}};
    for (size_t i = 0; i < sizeof label / sizeof *label; i++)
        if (strcmp(fam, label[i][0]) == 0) return label[i][1];
    return fam;
}

/* the (KL, gold) points of a family's runs, in KL order; kmax grows to the largest KL */
static void family_points(const report *r, const char *fam, series *s, double *kmax)
{
    const char *k;
    json_t *v;
    json_object_foreach(r->models, k, v)
    {
        if (strcmp(family(v), fam) != 0) continue;
        const double kl = num(v, "kl"), g = num(v, "gold_reward");
        if (isnan(kl) || isnan(g) || series_push(s, kl, g)) continue;
        *kmax = kl > *kmax ? kl : *kmax;
        /* insertion into KL order */
        for (size_t i = s->n - 1; i > 0 && s->x[i - 1] > s->x[i]; i--) {
            double t = s->x[i];
            s->x[i] = s->x[i - 1];
            s->x[i - 1] = t;
            t = s->y[i];
            s->y[i] = s->y[i - 1];
            s->y[i - 1] = t;
        }
    }
}

/* gold reward against KL to SFT: one line per family through its runs (ordered by KL), and SFT's
 * gold reward as a flat baseline */
static void frontier(const report *r, figs *f)
{
    series s[MAX_FAMILIES + 1] = {{0}};
    plot_series ps[MAX_FAMILIES + 1];
    const int n = r->nfam;
    double kmax = 0;
    for (int m = 0; m < n; m++) family_points(r, r->fam[m], &s[m], &kmax);
    const double g0 = num(r->ref, "gold_reward");
    series_push(&s[n], 0, g0);
    series_push(&s[n], kmax > 0 ? kmax : 1, g0);
    for (int m = 0; m <= n; m++) ps[m] = (plot_series){m < n ? family_label(r->fam[m]) : "SFT", s[m].x, s[m].y, s[m].n};
    plot_opts o = {"Gold reward vs KL to SFT (held-out prompts)", "KL(policy || SFT), nats per completion",
                   "gold reward (AFINN-165, normalised)", 0, 0};
    figure(r, f, "frontier.png", &o, ps, n + 1);
    for (int i = 0; i <= n; i++) series_free(&s[i]);
}

/* gold against reward-model score of each PPO run's rollouts along training (moving averages):
 * a run whose curve keeps moving right (more reward-model score) while it falls (less gold) is
 * over-optimising the reward model */
static void gold_vs_rm(const report *r, figs *f)
{
    series s[64] = {{0}};
    plot_series ps[64];
    int n = 0;
    for (int i = 0; i < r->nst && n < 64; i++) {
        if (!r->st[i].family || strcmp(r->st[i].family, "ppo") != 0) continue;
        char p[PATHN];
        series a = {0}, b = {0};
        snprintf(p, sizeof p, "%s/%s/gold.jsonl", r->dir, r->st[i].name);
        if (load_metric(p, "step", "rm", &a) == 0 && load_metric(p, "step", "gold", &b) == 0 && a.n && a.n == b.n) {
            smooth(a.y, a.n, SMOOTH);
            smooth(b.y, b.n, SMOOTH);
            s[n] = (series){a.y, b.y, a.n, a.n};
            free(a.x);
            free(b.x);
            ps[n] = (plot_series){r->st[i].name, s[n].x, s[n].y, s[n].n};
            n++;
        } else {
            series_free(&a);
            series_free(&b);
        }
    }
    plot_opts o = {"PPO rollouts along training: gold vs reward-model score (moving average of 5 iterations)",
                   "reward-model score (normalised on SFT samples)", "gold reward", 0, 0};
    if (n) figure(r, f, "ppo_gold_vs_rm.png", &o, ps, n);
    for (int i = 0; i < n; i++) series_free(&s[i]);
}

/* reward-model accuracy: training batches (smoothed) and held-out pairs */
static void rm_figure(const report *r, figs *f)
{
    char p[PATHN];
    snprintf(p, sizeof p, "%s/rm/metrics.jsonl", r->dir);
    series a = {0}, b = {0};
    load_metric(p, "step", "accuracy", &a);
    load_metric(p, "step", "eval_accuracy", &b);
    smooth(a.y, a.n, SMOOTH);
    plot_series ps[2] = {{"training pairs (moving average of 5 steps)", a.x, a.y, a.n},
                         {"held-out pairs", b.x, b.y, b.n}};
    plot_opts o = {"Reward model accuracy (against the noisy labels)", "step", "accuracy", 0, 0};
    if (a.n) figure(r, f, "rm_accuracy.png", &o, ps, 2);
    series_free(&a);
    series_free(&b);
}

/* ---- report.md ---------------------------------------------------------------------------------- */

/* text for a markdown table cell: one line, '|' escaped, HTML-ish characters neutralised */
static void md_cell(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r' || *s == '\t') fputc(' ', f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '*' || *s == '_' || *s == '`' || *s == '[' || *s == ']' || *s == '\\') {
            fputc('\\', f);
            fputc(*s, f);
        } else
            fputc(*s, f);
    }
}

static void results_table(const report *r, FILE *f)
{
    fputs("| model | gold reward | gain over SFT [95% CI] | reward-model score | KL to SFT (nats) | distinct-2 | |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n",
          f);
    const double d2 = num(r->ref, "distinct2");
    const char *k;
    json_t *m;
    json_object_foreach(r->models, k, m)
    {
        fprintf(f, "| %s | %.4f | ", k, num(m, "gold_reward"));
        const json_t *ci = json_object_get(m, "gain_ci95");
        if (m == r->ref) fputs("— | ", f);
        else
            fprintf(f, "%+.4f [%+.4f, %+.4f] | ", num(m, "gain"), json_number_value(json_array_get(ci, 0)),
                    json_number_value(json_array_get(ci, 1)));
        fprintf(f, "%.3f | %.2f | %.3f | ", num(m, "rm_reward"), num(m, "kl"), num(m, "distinct2"));
        if (json_is_true(json_object_get(m, "collapsed")))
            fprintf(f, "**collapsed** (distinct-2 < %g × SFT's %.3f)", DEMO_COLLAPSE_RATIO, d2);
        else if (m != r->ref && json_number_value(json_array_get(ci, 0)) > 0)
            fputs("beats SFT", f);
        fputs(" |\n", f);
    }
}

static void stage_table(const report *r, FILE *f)
{
    fputs("| stage | wall time | summary |\n| --- | ---: | --- |\n", f);
    double total = 0;
    for (int i = 0; i < r->nst; i++) {
        if (!r->st[i].stage) continue;
        const double s = num(r->st[i].stage, "seconds");
        total += s;
        fprintf(f, "| %s | %.1f s | ", r->st[i].name, s);
        const char *k;
        json_t *v;
        int first = 1;
        json_object_foreach(json_object_get(r->st[i].stage, "summary"), k, v)
        {
            if (json_is_integer(v)) fprintf(f, "%s%s %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
            else if (json_is_real(v)) fprintf(f, "%s%s %.4g", first ? "" : ", ", k, json_real_value(v));
            else continue;
            first = 0;
        }
        fputs(" |\n", f);
    }
    fprintf(f, "| **total** | **%.1f s** (%.1f min) | |\n", total, total / 60);
}

static void settings_block(const report *r, FILE *f)
{
    fputs("```\n", f);
    for (int i = 0; i < r->nst; i++) {
        if (!r->st[i].stage) continue;
        char *s = json_dumps(json_object_get(r->st[i].stage, "settings"), JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        fprintf(f, "%-12s %s\n", r->st[i].name, s ? s : "?");
        free(s);
    }
    fputs("```\n\n", f);
}

/* the first `np` held-out prompts, every model's completion under each */
static int samples_section(const report *r, FILE *f, int np, char *err, size_t errlen)
{
    const size_t nm = json_object_size(r->models);
    json_t ***v = calloc(nm, sizeof *v);
    long *n = calloc(nm, sizeof *n);
    const char **names = calloc(nm, sizeof *names);
    int rc = v && n && names ? 0 : fio_fail(err, errlen, "out of memory");
    size_t i = 0;
    const char *k;
    json_t *m;
    json_object_foreach(r->models, k, m)
    {
        if (rc || i >= nm) break;
        names[i] = k;
        if (!(v[i] = read_samples(r, k, &n[i], err, errlen))) rc = -1;
        i++;
    }
    for (int p = 0; rc == 0 && p < np && p < n[0]; p++) {
        fputs("**", f);
        md_cell(f, json_string_value(json_object_get(v[0][p], "prompt")));
        fputs("** …\n\n| model | completion | gold |\n| --- | --- | ---: |\n", f);
        for (size_t q = 0; q < nm; q++) {
            if (p >= n[q]) continue;
            fprintf(f, "| %s | …", names[q]);
            md_cell(f, json_string_value(json_object_get(v[q][p], "completion")));
            fprintf(f, " | %.3f |\n", num(v[q][p], "extra"));
        }
        fputs("\n", f);
    }
    for (size_t q = 0; v && q < nm; q++) free_samples(v[q], n[q]);
    free(v);
    free(n);
    free(names);
    return rc;
}

/* the best run of each family, and the rule that picked it */
static void best_runs(const report *r, FILE *f)
{
    int n = 0;
    for (int i = 0; i < r->nfam; i++) {
        const char *b = best_run(r, r->fam[i]);
        if (!b) continue;
        const json_t *m = json_object_get(r->models, b);
        char up[32];
        size_t k = 0;
        for (; r->fam[i][k] && k + 1 < sizeof up; k++) up[k] = (char)toupper((unsigned char)r->fam[i][k]);
        up[k] = 0;
        fprintf(f, "%sBest %s run: **%s** (gold %+.4f over SFT, KL %.2f).", n++ ? " " : "", up, b, num(m, "gain"),
                num(m, "kl"));
    }
    if (n)
        fprintf(f, " (The best run of a method has the highest gold reward among its runs whose distinct-2 is at least "
                   "%g × SFT's, a margin over the collapse line; failing that, among those that did not collapse.)",
                DEMO_BEST_MARGIN);
}

static int write_md(const report *r, figs *fg, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return fio_fail(err, errlen, "out of memory");
    fg->md = f;
    const json_t *rm = summary(r, "rm"), *pf = summary(r, "prefs");
    fputs("# rlhf.c demo report\n\n", f);
    fputs("A tiny GPT-2 pretrained on Debian's English fortunes, fine-tuned on prompt/completion splits (SFT), then "
          "tuned toward positive sentiment two ways: PPO against a Bradley–Terry reward model learned from preference "
          "pairs, and DPO on the same pairs. The gold judge (AFINN-165, scored in C: `rlhf judge --explain`) plays the "
          "human: it labelled the pairs (with Bradley–Terry noise) and it measures the outcome here.\n\n",
          f);
    fprintf(f, "## Results on %lld held-out prompts (%lld completion%s each, temperature %g, up to %lld new tokens)\n\n",
            (long long)num(r->res, "prompts"), (long long)num(r->res, "samples_per_prompt"),
            num(r->res, "samples_per_prompt") > 1 ? "s" : "", num(r->res, "temperature"),
            (long long)num(r->res, "max_new_tokens"));
    results_table(r, f);
    fprintf(f,
            "\nHow to read it: **gold reward** is the judge's mean normalised score of the completions (sum of AFINN "
            "valences / max(words, 8)); **gain** is the mean per-prompt difference from SFT on the same prompts, "
            "sampled with the same random numbers, with a 95%% normal interval; **reward-model score** is what PPO was "
            "paid (normalised so SFT's samples score mean 0, std 1); **KL** is Σ log π − log π_SFT over the "
            "completion tokens on the model's own samples; **distinct-2** is distinct token bigrams / all bigrams. A "
            "run is flagged **collapsed** when its distinct-2 falls below %g × SFT's: it found a repetitive text the "
            "judge likes (reward hacking), not better writing.\n\n",
            DEMO_COLLAPSE_RATIO);
    best_runs(r, f);
    fputs("\n\n## Figures\n\n", f);
    frontier(r, fg);
    static const plot_opts ppo_o[3] = {
        {"PPO: reward-model score of the rollouts", "iteration", "objective/scores", 0, 0},
        {"PPO: KL to SFT of the rollouts", "iteration", "objective/kl (nats per completion)", 0, 0},
        {"PPO: policy entropy", "iteration", "policy/entropy (nats per token)", 0, 0}};
    runs_figure(r, fg, "ppo", "ppo_score.png", "metrics.jsonl", "objective/scores", 1, &ppo_o[0]);
    runs_figure(r, fg, "ppo", "ppo_kl.png", "metrics.jsonl", "objective/kl", 1, &ppo_o[1]);
    runs_figure(r, fg, "ppo", "ppo_entropy.png", "metrics.jsonl", "policy/entropy", 1, &ppo_o[2]);
    gold_vs_rm(r, fg);
    static const plot_opts dpo_o[2] = {
        {"DPO: reward margin chosen - rejected (training batches, moving average of 5 steps)", "step",
         "rewards/margins", 0, 0},
        {"DPO: preference accuracy (training batches, moving average of 5 steps)", "step", "rewards/accuracies", 0,
         0}};
    runs_figure(r, fg, "dpo", "dpo_margins.png", "metrics.jsonl", "rewards/margins", SMOOTH, &dpo_o[0]);
    runs_figure(r, fg, "dpo", "dpo_accuracy.png", "metrics.jsonl", "rewards/accuracies", SMOOTH, &dpo_o[1]);
    rm_figure(r, fg);

    fputs("## Preference data and reward model\n\n", f);
    const json_t *pfs = stage_section(r, "prefs", "settings"), *rms = stage_section(r, "rm", "settings");
    if (pf)
        fprintf(f,
                "%lld training pairs (%lld held-out): for each of %lld training prompts %lld completions were sampled "
                "from SFT and scored by the gold judge (completion only); sorted by score, the best was paired with "
                "the worst, the second best with the second worst, and so on (pairs whose scores tie exactly were "
                "skipped: a tie is no preference; %lld prompts gave no pair). Each label was drawn from "
                "Bradley–Terry, P(higher-scored chosen) = σ((s_hi − s_lo)/τ) with τ = %g, so the labels are noisy like "
                "a human's: **%.1f%%** of the training labels are flipped (expected %.1f%%; mean gold gap %.3f).\n\n",
                (long long)num(pf, "pairs"), (long long)num(pf, "eval_pairs"), (long long)num(pfs, "pref_prompts"),
                (long long)num(pfs, "pref_samples"), (long long)num(pf, "tied_prompts"), num(pfs, "bt_tau"),
                100 * num(pf, "flip_rate"), 100 * num(pf, "flip_rate_expected"), num(pf, "mean_gold_gap"));
    else
        fputs("The preference pairs are the user's (`--prefs`): no sampling and no Bradley–Terry labels here.\n\n", f);
    if (rm)
        fprintf(f,
                "Reward model: held-out accuracy **%.3f** against the noisy labels, **%.3f** against the gold judge's "
                "order (%lld pairs whose gold scores differ); normalised on %lld SFT samples (their raw scores: mean "
                "%.3f, std %.3f).\n\n",
                num(rm, "eval_accuracy"), num(rm, "eval_gold_accuracy"), (long long)num(rm, "eval_gold_pairs"),
                (long long)num(rms, "rm_norm_samples"), num(rm, "reference_mean"), num(rm, "reference_std"));
    fputs("## Wall time per stage\n\n", f);
    stage_table(r, f);
    fputs("\nA rerun skips every stage whose settings did not change (`stage.json` in each folder); times are those "
          "of the run that made the stage.\n\n## Samples (held-out prompts; the prompt is not part of the "
          "completion)\n\n",
          f);
    int rc = samples_section(r, f, 5, err, errlen);
    fputs("## Settings\n\n", f);
    settings_block(r, f);
    return commit_stream(f, &buf, &len, r->dir, "report.md", rc, err, errlen);
}

/* results.json's models (path: for errors): the SFT reference, and a stage and a family for every
 * other run */
static int read_models(report *r, const char *path, char *err, size_t errlen)
{
    r->models = json_object_get(r->res, "models");
    if (!json_is_object(r->models)) return fio_fail(err, errlen, "%s: no \"models\"", path);
    const char *k;
    json_t *m;
    json_object_foreach(r->models, k, m)
    {
        const char *fam = family(m);
        if (!fam)
            return fio_fail(err, errlen, "%s: model \"%s\" has no \"family\" (made by an older rlhf: run the demo again)",
                            path, k);
        if (strcmp(fam, "sft") == 0) {
            if (!r->ref) r->ref = m;
            continue;
        }
        add_stage(r, k, fam);
        int i = 0;
        while (i < r->nfam && strcmp(r->fam[i], fam) != 0) i++;
        if (i == r->nfam && r->nfam < MAX_FAMILIES) r->fam[r->nfam++] = fam;
    }
    return r->ref ? 0 : fio_fail(err, errlen, "%s: no model of family \"sft\" (the reference)", path);
}

int report_write(const char *dir, char *plot_err, size_t plot_errlen, char *err, size_t errlen)
{
    report r;
    memset(&r, 0, sizeof r);
    r.dir = dir;
    if (plot_err && plot_errlen) plot_err[0] = 0;
    if (err && errlen) err[0] = 0;
    char p[PATHN];
    snprintf(p, sizeof p, "%s/eval/results.json", dir);
    if (!(r.res = load_json(p, err, errlen))) return -1;
    static const char *const head[] = {"corpus", "tokenizer", "pretrain", "sft", "prefs", "rm"};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++) add_stage(&r, head[i], NULL);
    int rc = read_models(&r, p, err, errlen);
    add_stage(&r, "eval", NULL);
    figs fg = {NULL, plot_err, plot_errlen};
    if (rc == 0) rc = fio_mkdirs(fio_join(p, sizeof p, dir, "figures"), err, errlen);
    if (rc == 0) rc = write_report_json(&r, err, errlen);
    if (rc == 0) rc = write_samples(&r, err, errlen);
    if (rc == 0) rc = write_md(&r, &fg, err, errlen);
    for (int i = 0; i < r.nst; i++) json_decref(r.st[i].stage);
    json_decref(r.res);
    return rc;
}
