/* report_seeds.c — the report across seeds (see report.h): each seed's results.json gathered by
 * model name, the mean gain of every method with its Student-t interval over seeds, the best method
 * of each family paired seed by seed against the best of the others (rlhf/seedstats.h), stated in
 * words, and the frontier with every seed's point. Nothing is re-evaluated here. */
#include "report.h"

#include "demo.h"
#include "family.h"
#include "fileio.h"
#include "plot.h"
#include "seedstats.h"
#include "series.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATHN 4096
#define MAX_METHODS 64
#define MAX_FAMILIES 8

typedef struct {
    const char *name;            /* the model's name in every seed's results.json */
    const char *family;
    char label[96];              /* "DPO β=0.3" */
    double *gain, *kl, *gold;    /* per replicate; NaN where the seed lacks the method */
    int collapsed, seeds;
    seedstats_interval ci;       /* of the gains */
} method;

typedef struct {
    const char *out;
    const report_replicate *rep;
    int n;
    json_t **res;                /* each seed's results.json */
    const char *ref;             /* the reference's name (the first seed's first model) */
    method m[MAX_METHODS];
    int nm;
    const char *fam[MAX_FAMILIES];
    int best[MAX_FAMILIES];      /* index into m of each family's best method */
    int nfam;
} seeds;

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* "DPO β=0.3" from the first run of the method that has a trainer_state.json */
static void method_label(const seeds *s, method *m)
{
    family_label(m->family, NULL, m->label, sizeof m->label);
    for (int r = 0; r < s->n; r++)
        for (int i = 0; i < s->rep[r].n_runs; i++) {
            const report_run *u = &s->rep[r].runs[i];
            if (strcmp(u->name, m->name) != 0 || !u->dir) continue;
            char p[PATHN];
            json_t *st = json_load_file(fio_join(p, sizeof p, u->dir, "trainer_state.json"), 0, NULL);
            if (st) family_label(m->family, json_object_get(st, "settings"), m->label, sizeof m->label);
            json_decref(st);
            if (st) return;
        }
}

/* every non-reference model of every seed, by name, in the order first seen */
static int gather(seeds *s, char *err, size_t errlen)
{
    for (int r = 0; r < s->n; r++) {
        json_t *models = json_object_get(s->res[r], "models");
        const char *k;
        json_t *v;
        int first = 1;
        json_object_foreach(models, k, v)
        {
            if (first) { /* the reference of this seed */
                if (!s->ref) s->ref = k;
                first = 0;
                continue;
            }
            int i = 0;
            while (i < s->nm && strcmp(s->m[i].name, k) != 0) i++;
            if (i == s->nm) {
                if (s->nm == MAX_METHODS) return fio_fail(err, errlen, "more than %d models", MAX_METHODS);
                method *m = &s->m[s->nm++];
                m->name = k;
                m->family = json_string_value(json_object_get(v, "family"));
                m->gain = malloc((size_t)s->n * sizeof *m->gain);
                m->kl = malloc((size_t)s->n * sizeof *m->kl);
                m->gold = malloc((size_t)s->n * sizeof *m->gold);
                if (!m->family || !m->gain || !m->kl || !m->gold) return fio_fail(err, errlen, "model %s: no family", k);
                for (int q = 0; q < s->n; q++) m->gain[q] = m->kl[q] = m->gold[q] = NAN;
            }
            method *m = &s->m[i];
            m->gain[r] = num(v, "gain");
            m->kl[r] = num(v, "kl");
            m->gold[r] = num(v, "gold_reward");
            m->collapsed += json_is_true(json_object_get(v, "collapsed"));
            m->seeds++;
        }
    }
    return s->nm ? 0 : fio_fail(err, errlen, "no models beside the reference");
}

/* the finite values of x (n) into out; their count */
static int finite_of(const double *x, int n, double *out)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) out[k++] = x[i];
    return k;
}

static double mean_of(const double *x, int n)
{
    double v[64];
    const int k = finite_of(x, n < 64 ? n : 64, v);
    double t = 0;
    for (int i = 0; i < k; i++) t += v[i];
    return k ? t / k : NAN;
}

/* the intervals, the families and each family's best method */
static void summarise(seeds *s)
{
    for (int i = 0; i < s->nm; i++) {
        method *m = &s->m[i];
        double v[64];
        m->ci = seedstats_mean_ci(v, finite_of(m->gain, s->n < 64 ? s->n : 64, v));
        method_label(s, m);
        int f = 0;
        while (f < s->nfam && strcmp(s->fam[f], m->family) != 0) f++;
        if (f == s->nfam && s->nfam < MAX_FAMILIES) {
            s->fam[s->nfam] = m->family;
            s->best[s->nfam++] = -1;
        }
    }
    for (int f = 0; f < s->nfam; f++)
        for (int pass = 0; pass < 2 && s->best[f] < 0; pass++)
            for (int i = 0; i < s->nm; i++) {
                const method *m = &s->m[i];
                if (strcmp(m->family, s->fam[f]) != 0 || (pass == 0 && 2 * m->collapsed >= m->seeds)) continue;
                if (s->best[f] < 0 || m->ci.mean > s->m[s->best[f]].ci.mean) s->best[f] = i;
            }
}

static json_t *real(double v) { return isnan(v) ? json_null() : json_real(v); }

static json_t *array_of(const double *x, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, real(x[i]));
    return a;
}

static json_t *pair(double a, double b) { return isnan(a) || isnan(b) ? json_null() : json_pack("[f, f]", a, b); }

/* "DPO β=0.3 beats PPO β=0.2 on 3 of 3 seeds; mean difference +0.05 [-0.02, +0.12]: not significant" */
static void comparison_text(const method *a, const method *b, const seedstats_paired *p, char *buf, size_t n)
{
    if (p->n < 2)
        snprintf(buf, n, "%s beats %s on %d of %d seed%s; mean difference %+.3f (one seed: no interval)", a->label,
                 b->label, p->wins, p->n, p->n == 1 ? "" : "s", p->diff.mean);
    else
        snprintf(buf, n, "%s beats %s on %d of %d seeds; mean difference %+.3f [%+.3f, %+.3f]: %s", a->label, b->label,
                 p->wins, p->n, p->diff.mean, p->diff.lo, p->diff.hi,
                 p->significant ? "significant (95% t-interval over seeds excludes 0)" : "not significant");
}

/* the best method of each family against the best of every later family, the higher mean first */
static json_t *comparisons(const seeds *s)
{
    json_t *c = json_array();
    for (int f = 0; f < s->nfam; f++)
        for (int g = f + 1; g < s->nfam; g++) {
            if (s->best[f] < 0 || s->best[g] < 0) continue;
            const method *a = &s->m[s->best[f]], *b = &s->m[s->best[g]];
            if (b->ci.mean > a->ci.mean) {
                const method *t = a;
                a = b;
                b = t;
            }
            const seedstats_paired p = seedstats_compare(a->gain, b->gain, s->n);
            char text[512];
            comparison_text(a, b, &p, text, sizeof text);
            json_array_append_new(c, json_pack("{s:s, s:s, s:i, s:i, s:o, s:o, s:b, s:s}", "a", a->name, "b", b->name,
                                               "seeds", p.n, "wins", p.wins, "diff_mean", real(p.diff.mean), "diff_ci95",
                                               pair(p.diff.lo, p.diff.hi), "significant", p.significant, "text", text));
        }
    return c;
}

static json_t *methods_json(const seeds *s)
{
    json_t *o = json_object();
    for (int i = 0; i < s->nm; i++) {
        const method *m = &s->m[i];
        json_t *j = json_pack("{s:s, s:s, s:i, s:o, s:o, s:o, s:o}", "family", m->family, "label", m->label, "seeds",
                              m->seeds, "gains", array_of(m->gain, s->n), "gain_mean", real(m->ci.mean), "gain_sd",
                              real(m->ci.sd), "gain_ci95", pair(m->ci.lo, m->ci.hi));
        json_object_set_new(j, "kls", array_of(m->kl, s->n));
        json_object_set_new(j, "kl_mean", real(mean_of(m->kl, s->n)));
        json_object_set_new(j, "golds", array_of(m->gold, s->n));
        json_object_set_new(j, "gold_mean", real(mean_of(m->gold, s->n)));
        json_object_set_new(j, "collapsed", json_integer(m->collapsed));
        json_object_set_new(o, m->name, j);
    }
    return o;
}

static int write_json(const seeds *s, json_t *comp, char *err, size_t errlen)
{
    json_t *seedv = json_array(), *best = json_object();
    for (int r = 0; r < s->n; r++) json_array_append_new(seedv, json_integer((json_int_t)s->rep[r].seed));
    for (int f = 0; f < s->nfam; f++)
        if (s->best[f] >= 0) json_object_set_new(best, s->fam[f], json_string(s->m[s->best[f]].name));
    const json_t *r0 = s->res[0];
    json_t *j = json_pack("{s:o, s:s, s:{s:O, s:O, s:O, s:O}, s:o, s:o, s:O}", "seeds", seedv, "reference", s->ref, "eval",
                          "prompts", json_object_get(r0, "prompts"), "samples_per_prompt",
                          json_object_get(r0, "samples_per_prompt"), "temperature", json_object_get(r0, "temperature"),
                          "max_new_tokens", json_object_get(r0, "max_new_tokens"), "methods", methods_json(s), "best",
                          best, "comparisons", comp);
    char p[PATHN];
    const int rc = j ? report_json_write(fio_join(p, sizeof p, s->out, "report.json"), j, err, errlen)
                     : fio_fail(err, errlen, "out of memory");
    json_decref(j);
    return rc;
}

/* gold against KL: each family's mean over seeds (a line through its methods in KL order), every
 * seed's run as a point, the reference's mean gold as a flat line */
static int frontier(const seeds *s, FILE *md, char *plot_err, size_t plot_errlen)
{
    series sv[2 * MAX_FAMILIES + 1] = {{0}};
    plot_series ps[2 * MAX_FAMILIES + 1];
    plot_style styles[2 * MAX_FAMILIES + 1] = {{0}};
    char names[2 * MAX_FAMILIES][96];
    int k = 0;
    double kmax = 0, g0 = 0;
    for (int f = 0; f < s->nfam; f++, k += 2) {
        for (int i = 0; i < s->nm; i++) {
            const method *m = &s->m[i];
            if (strcmp(m->family, s->fam[f]) != 0) continue;
            for (int r = 0; r < s->n; r++) series_push(&sv[k + 1], m->kl[r], m->gold[r]);
            const double x = mean_of(m->kl, s->n);
            size_t j = sv[k].n;
            series_push(&sv[k], x, mean_of(m->gold, s->n));
            for (; j > 0 && sv[k].x[j - 1] > sv[k].x[j]; j--) { /* insertion into KL order */
                double t = sv[k].x[j];
                sv[k].x[j] = sv[k].x[j - 1], sv[k].x[j - 1] = t;
                t = sv[k].y[j];
                sv[k].y[j] = sv[k].y[j - 1], sv[k].y[j - 1] = t;
            }
            kmax = x > kmax ? x : kmax;
        }
        snprintf(names[k], sizeof names[k], "%s: mean over %d seeds", family_display(s->fam[f]), s->n);
        snprintf(names[k + 1], sizeof names[k + 1], "%s: each seed", family_display(s->fam[f]));
        ps[k] = (plot_series){names[k], sv[k].x, sv[k].y, sv[k].n};
        ps[k + 1] = (plot_series){names[k + 1], sv[k + 1].x, sv[k + 1].y, sv[k + 1].n};
        /* a family's points in its line's colour */
        styles[k] = (plot_style){.color = f + 1};
        styles[k + 1] = (plot_style){.point = 7, .color = f + 1};
    }
    for (int r = 0; r < s->n; r++) g0 += num(json_object_get(json_object_get(s->res[r], "models"), s->ref), "gold_reward") / s->n;
    series_push(&sv[k], 0, g0);
    series_push(&sv[k], kmax > 0 ? kmax : 1, g0);
    ps[k] = (plot_series){"reference (mean over seeds)", sv[k].x, sv[k].y, sv[k].n};
    plot_opts o = {"Gold reward vs KL to the reference, every seed (held-out prompts)", "KL to the reference, nats per completion",
                   "gold reward", 0, 0};
    char p[PATHN], e[512];
    snprintf(p, sizeof p, "%s/figures/frontier.png", s->out);
    if (plot_styled(p, &o, ps, styles, k + 1, e, sizeof e) == 0) fputs("![frontier across seeds](figures/frontier.png)\n\n", md);
    else {
        fprintf(md, "*(figure frontier.png not drawn: %s)*\n\n", e);
        if (plot_err && !plot_err[0]) snprintf(plot_err, plot_errlen, "%s", e);
    }
    for (int i = 0; i <= k; i++) series_free(&sv[i]);
    return 0;
}

static void md_table(const seeds *s, FILE *f)
{
    fprintf(f, "| model | method | seeds | mean gain over %s [95%% t-interval over seeds] | gain per seed | mean KL | collapsed |\n"
               "| --- | --- | ---: | ---: | --- | ---: | ---: |\n",
            s->ref);
    for (int i = 0; i < s->nm; i++) {
        const method *m = &s->m[i];
        fprintf(f, "| %s | %s | %d | %+.4f ", m->name, m->label, m->seeds, m->ci.mean);
        if (isnan(m->ci.lo)) fputs("(one seed) | ", f);
        else fprintf(f, "[%+.4f, %+.4f] | ", m->ci.lo, m->ci.hi);
        for (int r = 0; r < s->n; r++) fprintf(f, "%s%+.3f", r ? ", " : "", m->gain[r]);
        fprintf(f, " | %.2f | %d of %d |\n", mean_of(m->kl, s->n), m->collapsed, m->seeds);
    }
}

static int write_md(const seeds *s, const json_t *comp, char *plot_err, size_t plot_errlen, char *err, size_t errlen)
{
    char *buf = NULL, p[PATHN];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return fio_fail(err, errlen, "out of memory");
    fprintf(f, "# rlhf.c report across %d seeds\n\nSeeds:", s->n);
    for (int r = 0; r < s->n; r++) fprintf(f, "%s %llu", r ? "," : "", s->rep[r].seed);
    fprintf(f, ". Every seed's models were evaluated on the same held-out prompts against that seed's reference "
               "(**%s**); a method's gain is its mean per-prompt gold difference from the reference. Across seeds: the "
               "mean gain and its 95%% Student-t interval (n − 1 degrees of freedom).\n\n## Methods\n\n",
            s->ref);
    md_table(s, f);
    fputs("\n## Which method wins\n\nThe best method of each family (highest mean gain among those that collapsed on "
          "fewer than half of their seeds), paired seed by seed:\n\n",
          f);
    size_t i;
    json_t *c;
    json_array_foreach(comp, i, c) fprintf(f, "- %s\n", json_string_value(json_object_get(c, "text")));
    if (json_array_size(comp) == 0) fputs("- (one family only: nothing to pair)\n", f);
    fputs("\n## Frontier\n\n", f);
    frontier(s, f, plot_err, plot_errlen);
    fputs("## Each seed\n\n", f);
    for (int r = 0; r < s->n; r++)
        if (s->rep[r].report) fprintf(f, "- seed %llu: [%s](%s)\n", s->rep[r].seed, s->rep[r].report, s->rep[r].report);
    int rc = fclose(f) ? fio_fail(err, errlen, "out of memory") : 0;
    if (rc == 0) rc = fio_write_atomic(fio_join(p, sizeof p, s->out, "report.md"), buf, len, err, errlen);
    free(buf);
    return rc;
}

int report_seeds_build(const char *out, const report_replicate *reps, int n, char *plot_err, size_t plot_errlen, char *err,
                       size_t errlen)
{
    seeds s = {.out = out, .rep = reps, .n = n};
    char p[PATHN];
    if (plot_err && plot_errlen) plot_err[0] = 0;
    int rc = n >= 1 && (s.res = calloc((size_t)n, sizeof *s.res)) ? 0 : fio_fail(err, errlen, "no seeds");
    for (int r = 0; rc == 0 && r < n; r++) {
        json_error_t je;
        if (!(s.res[r] = json_load_file(fio_join(p, sizeof p, reps[r].eval, "results.json"), 0, &je)))
            rc = fio_fail(err, errlen, "%s:%d:%d: %s", p, je.line, je.column, je.text);
    }
    if (rc == 0) rc = gather(&s, err, errlen);
    json_t *comp = NULL;
    if (rc == 0) {
        summarise(&s);
        comp = comparisons(&s);
        rc = fio_mkdirs(fio_join(p, sizeof p, out, "figures"), err, errlen);
    }
    if (rc == 0) rc = write_json(&s, comp, err, errlen);
    if (rc == 0) rc = write_md(&s, comp, plot_err, plot_errlen, err, errlen);
    json_decref(comp);
    for (int i = 0; i < s.nm; i++) free(s.m[i].gain), free(s.m[i].kl), free(s.m[i].gold);
    for (int r = 0; s.res && r < n; r++) json_decref(s.res[r]);
    free(s.res);
    return rc;
}
