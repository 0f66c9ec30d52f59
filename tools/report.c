/* report.c — report.md / report.json / samples.jsonl / figures from results.json (rlhf/compare.h),
 * the runs' folders and, for the demo, its pipeline's stages. See report.h; the numbers come from
 * results.json, the stage summaries (stage.json) and the trainers' metrics.jsonl, nothing is
 * recomputed here. A run's method is its "family" in results.json, never read from its name; what
 * the report draws for a family comes from its row in tools/family.h. */
#include "report.h"

#include "demo.h"
#include "family.h"
#include "fileio.h"
#include "plot.h"
#include "series.h"

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
    char dir[PATHN];             /* its folder ("": none) */
    json_t *state;               /* its trainer_state.json (a trained run's settings), or NULL */
    json_t *stage;               /* stage.json, NULL when the stage did not run (bring your own, a run
                                    trained by hand) */
} stage_ref;

typedef struct {
    const report_input *in;
    const char *dir;             /* the report's folder */
    json_t *res;                 /* results.json */
    json_t *models;              /* its "models" (borrowed) */
    const json_t *ref;           /* the first model: the reference of gains, KL and collapse */
    const char *ref_name;
    char ref_label[64];          /* how the text names it ("SFT") */
    const char *fam[MAX_FAMILIES]; /* the other families, in the order of their first model */
    int nfam;
    stage_ref st[64];            /* the pipeline's stages and the runs, in order */
    int nst;
    json_t *words;               /* rm-words/words.json (NULL when absent) */
    const char *hack_word;       /* the word the reward model pays most for (NULL: results.json names none) */
} report;

/* the family of a results.json model entry */
static const char *family(const json_t *m) { return json_string_value(json_object_get(m, "family")); }

static void add_stage(report *r, const char *name, const char *family, const char *dir)
{
    if (r->nst >= (int)(sizeof r->st / sizeof *r->st)) return;
    stage_ref *s = &r->st[r->nst++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->family = family;
    snprintf(s->dir, sizeof s->dir, "%s", dir ? dir : "");
    char p[PATHN];
    s->stage = dir && fio_exists(fio_join(p, sizeof p, dir, "stage.json")) ? json_load_file(p, 0, NULL) : NULL;
    s->state = dir && fio_exists(fio_join(p, sizeof p, dir, "trainer_state.json")) ? json_load_file(p, 0, NULL) : NULL;
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

int report_json_write(const char *path, json_t *j, char *err, size_t errlen)
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
    if (r->hack_word) json_object_set_new(j, "hack_word", json_string(r->hack_word));
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
    int rc = report_json_write(fio_join(p, sizeof p, r->dir, "report.json"), j, err, errlen);
    json_decref(j);
    return rc;
}

/* <model>/samples.jsonl of the evaluation, every line parsed (NULL-terminated array; caller frees) */
static json_t **read_samples(const report *r, const char *model, long *n, char *err, size_t errlen)
{
    char p[PATHN];
    snprintf(p, sizeof p, "%s/%s/samples.jsonl", r->in->eval, model);
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
    FILE *md;                    /* report.md being written */
    char *plot_err;
    size_t plot_errlen;
} figs;

/* a figure gnuplot could not draw: noted in report.md, not fatal */
static void figure_failed(figs *f, const char *file, const char *e)
{
    fprintf(f->md, "*(figure %s not drawn: %s)*\n\n", file, e);
    if (f->plot_err && !f->plot_err[0]) snprintf(f->plot_err, f->plot_errlen, "%s", e);
}

/* draw figures/<file> and link it from report.md; a gnuplot failure is noted, not fatal */
static void figure(const report *r, figs *f, const char *file, const plot_opts *o, const plot_series *s, int ns)
{
    char p[PATHN], e[512];
    snprintf(p, sizeof p, "%s/figures/%s", r->dir, file);
    if (plot_lines(p, o, s, ns, e, sizeof e) == 0) {
        fprintf(f->md, "![%s](figures/%s)\n\n", o->title, file);
        return;
    }
    figure_failed(f, file, e);
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
        if (!r->st[i].family || !r->st[i].dir[0] || strcmp(r->st[i].family, fam) != 0) continue;
        char p[PATHN];
        fio_join(p, sizeof p, r->st[i].dir, jsonl);
        if (series_load(p, "step", key, &s[n]) == 0 && s[n].n) {
            if (w > 1) series_smooth(s[n].y, s[n].n, w);
            ps[n] = (plot_series){r->st[i].name, s[n].x, s[n].y, s[n].n};
            n++;
        } else
            series_free(&s[n]);
    }
    if (n) figure(r, f, file, o, ps, n);
    for (int i = 0; i < n; i++) series_free(&s[i]);
}

/* What tells a run apart from its family's others, from its trainer settings (tools/family.h's
 * parameter; a PPO run with an adaptive KL controller: its target): {"beta": 0.1}, {"target_kl": 4};
 * NULL when unknown (the reference, a model folder) */
static json_t *run_setting(const report *r, const char *name)
{
    const json_t *set = NULL;
    for (int i = 0; i < r->nst && !set; i++)
        if (strcmp(r->st[i].name, name) == 0) set = json_object_get(r->st[i].state, "settings");
    const char *fam = json_string_value(json_object_get(set, "family"));
    const family_info *fi = family_get(fam);
    const json_t *tk = json_object_get(set, "target_kl"), *v = fi && fi->param ? json_object_get(set, fi->param) : NULL;
    if (fam && strcmp(fam, "ppo") == 0 && json_number_value(tk) > 0) return json_pack("{s:f}", "target_kl", json_number_value(tk));
    return json_is_number(v) ? json_pack("{s:f}", fi->param, json_number_value(v)) : NULL;
}

/* a model's "setting" (add_settings) as a short label: "β=0.1", "KL→4"; "" without one */
static void setting_label(const json_t *m, char *buf, size_t n)
{
    const char *k;
    json_t *v;
    buf[0] = 0;
    json_object_foreach(json_object_get(m, "setting"), k, v)
    {
        const family_info *fi = family_get(family(m));
        if (strcmp(k, "target_kl") == 0) snprintf(buf, n, "KL→%g", json_number_value(v));
        else snprintf(buf, n, "%s=%g", fi && fi->symbol ? fi->symbol : k, json_number_value(v));
    }
}

/* The (KL, ykey) points of a family's runs into s[0] (not collapsed) and s[1] (collapsed), with their
 * labels; *kmax grows to the largest KL. */
typedef struct {
    series s[2];
    char lab[2][64][32];
    const char *labp[2][64];
} family_points;

static void collect_points(const report *r, const char *fam, const char *ykey, family_points *fp, double *kmax)
{
    const char *k;
    json_t *v;
    json_object_foreach(r->models, k, v)
    {
        if (strcmp(family(v), fam) != 0) continue;
        const int c = json_is_true(json_object_get(v, "collapsed"));
        const double kl = num(v, "kl"), y = num(v, ykey);
        series *s = &fp->s[c];
        if (isnan(kl) || isnan(y) || s->n >= 64 || series_push(s, kl, y)) continue;
        setting_label(v, fp->lab[c][s->n - 1], sizeof fp->lab[c][0]);
        fp->labp[c][s->n - 1] = fp->lab[c][s->n - 1];
        *kmax = kl > *kmax ? kl : *kmax;
    }
}

/* ykey of every run against its KL to the reference: a marker per run (each family its own, hollow when the
 * run collapsed) labelled with its setting, and the reference's value as a flat baseline */
static void family_scatter(const report *r, figs *f, const char *file, const char *ykey, const plot_opts *o)
{
    family_points *fp = calloc(MAX_FAMILIES, sizeof *fp);
    plot_series ps[2 * MAX_FAMILIES + 1];
    plot_style st[2 * MAX_FAMILIES + 1] = {{0}};
    series base = {0};
    if (!fp) return;
    double kmax = 0;
    int n = 0;
    for (int m = 0; m < r->nfam; m++) {
        collect_points(r, r->fam[m], ykey, &fp[m], &kmax);
        int point, hollow, color;
        family_style(r->fam[m], &point, &hollow, &color);
        for (int c = 0; c < 2; c++) {
            if (!fp[m].s[c].n) continue;
            ps[n] = (plot_series){c ? "" : family_display(r->fam[m]), fp[m].s[c].x, fp[m].s[c].y, fp[m].s[c].n};
            st[n++] = (plot_style){c ? hollow : point, 0, color, fp[m].labp[c]};
        }
    }
    series_push(&base, 0, num(r->ref, ykey));
    series_push(&base, kmax > 0 ? kmax : 1, num(r->ref, ykey));
    ps[n] = (plot_series){r->ref_label, base.x, base.y, base.n};
    st[n++] = (plot_style){0, 0, 8, NULL};
    char p[PATHN], e[512];
    snprintf(p, sizeof p, "%s/figures/%s", r->dir, file);
    if (plot_styled(p, o, ps, st, n, e, sizeof e) == 0) fprintf(f->md, "![%s](figures/%s)\n\n", o->title, file);
    else figure_failed(f, file, e);
    for (int m = 0; m < r->nfam; m++) series_free(&fp[m].s[0]), series_free(&fp[m].s[1]);
    series_free(&base);
    free(fp);
}

/* gold against reward-model score of the rollouts of each run of an RL family along training (its
 * gold.jsonl; moving averages): a run whose curve keeps moving right (more reward-model score) while
 * it falls (less gold) is over-optimising the reward model */
static void gold_vs_rm(const report *r, figs *f, const char *fam)
{
    series s[64] = {{0}};
    plot_series ps[64];
    int n = 0;
    for (int i = 0; i < r->nst && n < 64; i++) {
        if (!r->st[i].family || !r->st[i].dir[0] || strcmp(r->st[i].family, fam) != 0) continue;
        char p[PATHN];
        series a = {0}, b = {0};
        fio_join(p, sizeof p, r->st[i].dir, "gold.jsonl");
        if (series_load(p, "step", "rm", &a) == 0 && series_load(p, "step", "gold", &b) == 0 && a.n && a.n == b.n) {
            series_smooth(a.y, a.n, SMOOTH);
            series_smooth(b.y, b.n, SMOOTH);
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
    char title[160], file[64];
    snprintf(title, sizeof title, "%s rollouts along training: gold vs reward-model score (moving average of 5 steps)",
             family_display(fam));
    snprintf(file, sizeof file, "%s_gold_vs_rm.png", fam);
    plot_opts o = {title, "reward-model score (normalised on SFT samples)", "gold reward", 0, 0};
    if (n) figure(r, f, file, &o, ps, n);
    for (int i = 0; i < n; i++) series_free(&s[i]);
}

/* reward-model accuracy: training batches (smoothed) and held-out pairs */
static void rm_figure(const report *r, figs *f)
{
    char p[PATHN];
    if (!r->in->pipeline) return;
    snprintf(p, sizeof p, "%s/rm/metrics.jsonl", r->in->pipeline);
    series a = {0}, b = {0};
    series_load(p, "step", "accuracy", &a);
    series_load(p, "step", "eval_accuracy", &b);
    series_smooth(a.y, a.n, SMOOTH);
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

/* "+0.1234 [+0.1000, +0.1400]": a run's gain over SFT and its 95% interval */
static void gain_cell(FILE *f, const json_t *m)
{
    const json_t *ci = json_object_get(m, "gain_ci95");
    fprintf(f, "%+.4f [%+.4f, %+.4f]", num(m, "gain"), json_number_value(json_array_get(ci, 0)),
            json_number_value(json_array_get(ci, 1)));
}

static void results_table(const report *r, FILE *f)
{
    fprintf(f, "| model | method | setting | gold reward | gain over %s [95%% CI] | reward-model score | KL to %s (nats) "
               "| distinct-2 | ",
            r->ref_label, r->ref_label);
    if (r->hack_word) fprintf(f, "'%s' share | ", r->hack_word);
    fprintf(f, "length | |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | %s---: | --- |\n", r->hack_word ? "---: | " : "");
    const double d2 = num(r->ref, "distinct2");
    const char *k;
    json_t *m;
    json_object_foreach(r->models, k, m)
    {
        char lab[32];
        setting_label(m, lab, sizeof lab);
        fprintf(f, "| %s | %s | %s | %.4f | ", k, family_display(family(m)), lab, num(m, "gold_reward"));
        const json_t *ci = json_object_get(m, "gain_ci95");
        if (m == r->ref) fputs("— | ", f);
        else {
            gain_cell(f, m);
            fputs(" | ", f);
        }
        if (isnan(num(m, "rm_reward"))) fputs("— | ", f); /* no reward model given */
        else fprintf(f, "%.3f | ", num(m, "rm_reward"));
        fprintf(f, "%.2f | %.3f | ", num(m, "kl"), num(m, "distinct2"));
        if (r->hack_word) fprintf(f, "%.1f%% | ", 100 * num(m, "hack_word_share"));
        fprintf(f, "%.1f | ", num(m, "completion_length"));
        if (json_is_true(json_object_get(m, "collapsed")))
            fprintf(f, "**collapsed** (distinct-2 < %g × %s's %.3f)", DEMO_COLLAPSE_RATIO, r->ref_label, d2);
        else if (m != r->ref && json_number_value(json_array_get(ci, 0)) > 0)
            fprintf(f, "beats %s", r->ref_label);
        fputs(" |\n", f);
    }
}

static void stage_table(const report *r, FILE *f)
{
    fputs("| stage | wall time | CPU time | summary |\n| --- | ---: | ---: | --- |\n", f);
    double total = 0, cpu = 0;
    for (int i = 0; i < r->nst; i++) {
        if (!r->st[i].stage) continue;
        const double s = num(r->st[i].stage, "seconds"), c = num(r->st[i].stage, "cpu_seconds");
        total += s;
        cpu += isnan(c) ? 0 : c;
        fprintf(f, "| %s | %.1f s | %.1f s | ", r->st[i].name, s, c);
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
    fprintf(f, "| **total** | **%.1f s** (%.1f min) | %.1f s | |\n", total, total / 60, cpu);
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

/* the best run of each family side by side, and the rule that picked it */
static void best_table(const report *r, FILE *f)
{
    const double d2 = num(r->ref, "distinct2");
    fprintf(f, "| method | best run | setting | gain over SFT [95%% CI] | KL to SFT | distinct-2 (× SFT) | '%s' share | "
               "length | training time |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
            r->hack_word);
    for (int i = 0; i < r->nfam; i++) {
        const char *b = best_run(r, r->fam[i]);
        if (!b) continue;
        const json_t *m = json_object_get(r->models, b);
        char lab[32];
        setting_label(m, lab, sizeof lab);
        fprintf(f, "| %s | %s | %s | ", family_display(r->fam[i]), b, lab);
        gain_cell(f, m);
        fprintf(f, " | %.2f | %.3f (%.2f×) | ", num(m, "kl"), num(m, "distinct2"), num(m, "distinct2") / d2);
        if (r->hack_word) fprintf(f, "%.1f%% | ", 100 * num(m, "hack_word_share"));
        const json_t *secs = stage_section(r, b, "seconds");
        fprintf(f, "%.1f | ", num(m, "completion_length"));
        if (json_is_number(secs)) fprintf(f, "%.0f s |\n", json_number_value(secs));
        else fputs("— |\n", f);
    }
    fprintf(f, "| %s | %s | | — | 0 | %.3f (1×) | ", r->ref_label, r->ref_name, d2);
    if (r->hack_word) fprintf(f, "%.1f%% | ", 100 * num(r->ref, "hack_word_share"));
    fprintf(f, "%.1f | |\n", num(r->ref, "completion_length"));
    fprintf(f, "\nThe best run of a method has the highest gold reward among its runs whose distinct-2 is at least %g × "
               "%s's, a margin over the collapse line; failing that, among those that did not collapse. Training "
               "time is the wall time of the run's own stage (in a demo, SFT, the preference pairs and the reward model "
               "are shared by every method: see the stage table).\n",
            DEMO_BEST_MARGIN, r->ref_label);
}

/* " w1 (+x.xx), w2 (+x.xx)...": words [from, to) of a words.json list with their `key` */
static void word_list(FILE *f, const json_t *list, const char *key, size_t from, size_t to)
{
    for (size_t i = from; i < json_array_size(list) && i < to; i++) {
        const json_t *w = json_array_get(list, i);
        fprintf(f, "%s %s (%+.2f)", i > from ? "," : "", json_string_value(json_object_get(w, "word")), num(w, key));
    }
}

/* the word the reward model pays most for, and how far each run went after it */
static void hacking_section(const report *r, figs *fg)
{
    FILE *f = fg->md;
    fprintf(f, "The word the reward model pays most for is **'%s'**: among the words SFT itself writes (in at least 1%% "
               "of %lld SFT completions of training prompts), the completions that contain it score %+.2f higher on "
               "the reward model than those that do not (it is in %.1f%% of them), the largest such difference "
               "(`rm-words/words.json`). This is the word a policy optimising the reward model can find by itself. The "
               "next ones:",
            r->hack_word, (long long)num(r->words, "sft_samples"), num(r->words, "effect"), 100 * num(r->words, "share"));
    word_list(f, json_object_get(r->words, "presence"), "effect", 1, 8);
    fprintf(f, ". For reference, the words it pays most for on their own (the word as the whole completion, mean "
               "reward-model score over %lld prompts):",
            (long long)num(r->words, "prompts"));
    word_list(f, json_object_get(r->words, "alone"), "score", 0, 8);
    fprintf(f, ".\n\nA policy that games the reward model puts its word everywhere: compare each run's share of "
               "held-out completions containing '%s' (as a whole word) with SFT's %.1f%%, next to its distinct-2 and "
               "its mean length (SFT: %.1f tokens) in the results table.\n\n",
            r->hack_word, 100 * num(r->ref, "hack_word_share"), num(r->ref, "completion_length"));
    char t[160];
    snprintf(t, sizeof t, "Share of completions containing '%s' vs KL to SFT (hollow: collapsed run)", r->hack_word);
    const plot_opts o = {t, "KL(policy || SFT), nats per completion", "share of held-out completions", 0, 0};
    family_scatter(r, fg, "hack_word.png", "hack_word_share", &o);
}

/* the heading, what was compared, and how to read the table */
static void md_head(const report *r, figs *fg)
{
    FILE *f = fg->md;
    if (r->in->pipeline)
        fputs("# rlhf.c demo report\n\nA tiny GPT-2 pretrained on Debian's English fortunes, fine-tuned on "
              "prompt/completion splits (SFT), then tuned toward positive sentiment by each method of the sweeps: the "
              "RL methods (PPO with a value function, GRPO with group-normalised advantages, RLOO with a leave-one-out "
              "baseline) against a Bradley–Terry reward model learned from preference pairs, and DPO on the same "
              "pairs. The gold judge (AFINN-165, scored in C: `rlhf judge --explain`) plays the human: it labelled the "
              "pairs (with Bradley–Terry noise) and it measures the outcome here.\n\n",
              f);
    else
        fprintf(f, "# rlhf.c comparison report\n\n%zu models evaluated by `rlhf compare` on the same held-out prompts "
                   "with the same sampling random numbers; the reference is **%s**.\n\n",
                json_object_size(r->models), r->ref_name);
    fprintf(f, "## Results on %lld held-out prompts (%lld completion%s each, temperature %g, up to %lld new tokens)\n\n",
            (long long)num(r->res, "prompts"), (long long)num(r->res, "samples_per_prompt"),
            num(r->res, "samples_per_prompt") > 1 ? "s" : "", num(r->res, "temperature"),
            (long long)num(r->res, "max_new_tokens"));
    results_table(r, f);
    const char *R = r->ref_label;
    fprintf(f,
            "\nHow to read it: **gold reward** is the judge's mean normalised score of the completions (sum of AFINN "
            "valences / max(words, 8)); **gain** is the mean per-prompt difference from %s on the same prompts, "
            "sampled with the same random numbers, with a 95%% normal interval; **reward-model score** is what the RL "
            "runs were paid (normalised so %s's samples score mean 0, std 1); **KL** is Σ log π − log π_%s over the "
            "completion tokens on the model's own samples; **distinct-2** is distinct token bigrams / all bigrams; "
            "**length** is the mean completion length in tokens (EOS included). A run is flagged **collapsed** when "
            "its distinct-2 falls below %g × %s's: it found a repetitive text the judge likes (reward hacking), not "
            "better writing.",
            R, R, R, DEMO_COLLAPSE_RATIO, R);
    if (r->hack_word)
        fprintf(f, " **'%s' share** is the share of completions containing the word the reward model pays most for "
                   "(see Reward hacking).",
                r->hack_word);
    fputs("\n\n## The best run of each method\n\n", f);
    best_table(r, f);
    if (r->hack_word && r->words) {
        fputs("\n## Reward hacking\n\n", f);
        hacking_section(r, fg);
    }
}

/* the frontier, every family's training curves (tools/family.h: the reference's family first), gold
 * vs reward-model score, the reward model's accuracy */
static void md_figures(const report *r, figs *fg)
{
    fputs("\n## Figures\n\n", fg->md);
    char t[128], xl[128];
    snprintf(t, sizeof t, "Gold reward vs KL to %s, held-out prompts (hollow: collapsed run)", r->ref_label);
    snprintf(xl, sizeof xl, "KL(policy || %s), nats per completion", r->ref_label);
    const plot_opts front = {t, xl, "gold reward (AFINN-165, normalised)", 0, 0};
    family_scatter(r, fg, "frontier.png", "gold_reward", &front);
    const char *fams[MAX_FAMILIES + 1] = {family(r->ref)};
    int n = 1;
    for (int i = 0; i < r->nfam; i++)
        if (strcmp(r->fam[i], fams[0]) != 0) fams[n++] = r->fam[i];
    for (int i = 0; i < n; i++) {
        const family_info *fi = family_get(fams[i]);
        for (int c = 0; fi && c < FAMILY_MAX_CURVES && fi->curves[c].key; c++) {
            const family_curve *cv = &fi->curves[c];
            char file[96];
            snprintf(file, sizeof file, "%s_%s.png", fi->name, cv->file);
            const plot_opts o = {cv->title, "step", cv->ylabel, 0, 0};
            runs_figure(r, fg, fi->name, file, "metrics.jsonl", cv->key, cv->smooth, &o);
        }
    }
    for (int i = 0; i < r->nfam; i++) gold_vs_rm(r, fg, r->fam[i]);
    rm_figure(r, fg);
}

/* the demo's preference data and reward model */
static void md_pipeline(const report *r, FILE *f)
{
    const json_t *rm = summary(r, "rm"), *pf = summary(r, "prefs");
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
}

/* the eval settings and, per model, its folder's family and trainer settings (a comparison of runs) */
static void runs_settings(const report *r, FILE *f)
{
    fprintf(f, "Evaluation: %lld prompts, %lld sample(s) each, temperature %g, %lld new tokens at most, prompts cut to "
               "%lld tokens, batches of %lld, sampling seed %s.\n\n```\n",
            (long long)num(r->res, "prompts"), (long long)num(r->res, "samples_per_prompt"), num(r->res, "temperature"),
            (long long)num(r->res, "max_new_tokens"), (long long)num(r->res, "max_prompt_len"),
            (long long)num(r->res, "batch"), json_string_value(json_object_get(r->res, "sampling_seed")));
    for (int i = 0; i < r->in->n_runs; i++) {
        char p[PATHN];
        const report_run *u = &r->in->runs[i];
        json_t *st = u->dir ? json_load_file(fio_join(p, sizeof p, u->dir, "trainer_state.json"), 0, NULL) : NULL;
        char *s = st ? json_dumps(json_object_get(st, "settings"), JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6)) : NULL;
        fprintf(f, "%-12s %s\n", u->name, s ? s : "(no trainer settings: a model folder)");
        free(s);
        json_decref(st);
    }
    fputs("```\n\n", f);
}

static int write_md(const report *r, figs *fg, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return fio_fail(err, errlen, "out of memory");
    fg->md = f;
    md_head(r, fg);
    md_figures(r, fg);
    if (r->in->pipeline) md_pipeline(r, f);
    int timed = 0;
    for (int i = 0; i < r->nst; i++) timed |= r->st[i].stage != NULL;
    if (timed) {
        fputs("## Wall time per stage\n\n", f);
        stage_table(r, f);
        fputs("\nA rerun skips every stage whose settings did not change (`stage.json` in each folder); times are those "
              "of the run that made the stage.\n\n",
              f);
    }
    fputs("## Samples (held-out prompts; the prompt is not part of the completion)\n\n", f);
    int rc = samples_section(r, f, 5, err, errlen);
    fputs("## Settings\n\n", f);
    if (r->in->pipeline) settings_block(r, f);
    else runs_settings(r, f);
    return commit_stream(f, &buf, &len, r->dir, "report.md", rc, err, errlen);
}

/* results.json's models (path: for errors): the reference (the first model) and the families of the
 * others */
static int read_models(report *r, const char *path, char *err, size_t errlen)
{
    r->models = json_object_get(r->res, "models");
    if (!json_is_object(r->models) || json_object_size(r->models) == 0)
        return fio_fail(err, errlen, "%s: no \"models\"", path);
    const char *k;
    json_t *m;
    json_object_foreach(r->models, k, m)
    {
        const char *fam = family(m);
        if (!fam)
            return fio_fail(err, errlen, "%s: model \"%s\" has no \"family\" (made by an older rlhf: run it again)", path,
                            k);
        if (!r->ref) {
            r->ref = m;
            r->ref_name = k;
            continue;
        }
        int i = 0;
        while (i < r->nfam && strcmp(r->fam[i], fam) != 0) i++;
        if (i == r->nfam && r->nfam < MAX_FAMILIES) r->fam[r->nfam++] = fam;
    }
    /* the reference by its family's name when that is known and no other model shares it, else by its own */
    const char *rf = family(r->ref);
    int shared = 0;
    for (int i = 0; i < r->nfam; i++) shared |= strcmp(r->fam[i], rf) == 0;
    snprintf(r->ref_label, sizeof r->ref_label, "%s", family_get(rf) && !shared ? family_display(rf) : r->ref_name);
    return 0;
}

/* a model's training folder, from the input's runs (NULL: none) */
static const char *run_dir(const report_input *in, const char *name)
{
    for (int i = 0; i < in->n_runs; i++)
        if (strcmp(in->runs[i].name, name) == 0) return in->runs[i].dir;
    return NULL;
}

/* the stages in order: a demo's head stages (corpus ... rm, the reference among them), every model's
 * run, a demo's eval stage */
static void add_stages(report *r)
{
    static const char *const head[] = {"corpus", "tokenizer", "pretrain", "sft", "prefs", "rm", "rm-words"};
    const char *pl = r->in->pipeline;
    char p[PATHN];
    for (size_t i = 0; pl && i < sizeof head / sizeof *head; i++) {
        const json_t *m = json_object_get(r->models, head[i]);
        add_stage(r, head[i], m ? family(m) : NULL, fio_join(p, sizeof p, pl, head[i]));
    }
    const char *k;
    json_t *m;
    json_object_foreach(r->models, k, m)
    {
        int seen = 0;
        for (int i = 0; i < r->nst; i++) seen |= strcmp(r->st[i].name, k) == 0;
        if (!seen) add_stage(r, k, family(m), run_dir(r->in, k));
    }
    if (pl) add_stage(r, "eval", NULL, fio_join(p, sizeof p, pl, "eval"));
}

int report_build(const report_input *in, char *plot_err, size_t plot_errlen, char *err, size_t errlen)
{
    report r;
    memset(&r, 0, sizeof r);
    r.in = in;
    r.dir = in->out;
    if (plot_err && plot_errlen) plot_err[0] = 0;
    if (err && errlen) err[0] = 0;
    char p[PATHN];
    if (!(r.res = load_json(fio_join(p, sizeof p, in->eval, "results.json"), err, errlen))) return -1;
    int rc = read_models(&r, p, err, errlen);
    if (rc == 0) add_stages(&r);
    /* each run's setting beside its measures (report.json, the labels) */
    const char *k;
    json_t *m;
    json_object_foreach(r.models, k, m)
    {
        json_t *set = run_setting(&r, k);
        if (set) json_object_set_new(m, "setting", set);
    }
    r.hack_word = json_string_value(json_object_get(r.res, "hack_word"));
    r.words = in->pipeline && fio_exists(fio_join(p, sizeof p, in->pipeline, "rm-words/words.json")) ? json_load_file(p, 0, NULL)
                                                                                                     : NULL;
    figs fg = {NULL, plot_err, plot_errlen};
    if (rc == 0) rc = fio_mkdirs(fio_join(p, sizeof p, in->out, "figures"), err, errlen);
    if (rc == 0) rc = write_report_json(&r, err, errlen);
    if (rc == 0) rc = write_samples(&r, err, errlen);
    if (rc == 0) rc = write_md(&r, &fg, err, errlen);
    for (int i = 0; i < r.nst; i++) json_decref(r.st[i].stage), json_decref(r.st[i].state);
    json_decref(r.words);
    json_decref(r.res);
    return rc;
}

int report_demo_runs(const char *dir, report_runs *r, char *err, size_t errlen)
{
    char p[PATHN];
    memset(r, 0, sizeof *r);
    json_t *res = load_json(fio_join(p, sizeof p, dir, "eval/results.json"), err, errlen);
    if (!res) return -1;
    const size_t n = json_object_size(json_object_get(res, "models"));
    r->v = calloc(n + 1, sizeof *r->v);
    r->dirs = calloc(n + 1, sizeof *r->dirs);
    int rc = r->v && r->dirs ? 0 : fio_fail(err, errlen, "out of memory");
    const char *k;
    json_t *m;
    json_object_foreach(json_object_get(res, "models"), k, m)
    {
        if (rc) break;
        fio_join(r->dirs[r->n], PATHN, dir, k);
        r->v[r->n] = (report_run){r->dirs[r->n] + strlen(dir) + 1, r->dirs[r->n]};
        r->n++;
    }
    json_decref(res);
    if (rc) report_runs_free(r);
    return rc;
}

void report_runs_free(report_runs *r)
{
    free(r->v);
    free(r->dirs);
    memset(r, 0, sizeof *r);
}

int report_write(const char *dir, char *plot_err, size_t plot_errlen, char *err, size_t errlen)
{
    char ev[PATHN];
    report_runs runs;
    if (report_demo_runs(dir, &runs, err, errlen)) return -1;
    report_input in = {dir, fio_join(ev, sizeof ev, dir, "eval"), dir, runs.v, runs.n};
    const int rc = report_build(&in, plot_err, plot_errlen, err, errlen);
    report_runs_free(&runs);
    return rc;
}
