/* cmd_plot.c — `rlhf plot RUN_DIR... [--metrics a,b,...] --out DIR`: the chosen metrics of one or
 * several runs, one figure per metric with every run on the same axes (gnuplot, tools/plot.h), so
 * two runs compare at a glance. Without --metrics: the curves of each run's family (tools/family.h;
 * the family read from the run's trainer_state.json, rlhf/compare.h). DIR/plots.md links the
 * figures. A run is named by its folder's last component, or NAME=DIR. */
#include "cli.h"
#include "commands.h"
#include "compare.h"
#include "family.h"
#include "fileio.h"
#include "plot.h"
#include "series.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "plot"
#define PATHN 4096
#define MAX_METRICS 32

typedef struct {
    char name[128];
    char dir[PATHN];
    char family[32];
} run_ref;

/* NAME=DIR or DIR; its metrics.jsonl must exist */
static void open_run(const char *arg, run_ref *r)
{
    cli_name_dir(arg, r->name, sizeof r->name, r->dir, sizeof r->dir);
    char p[PATHN], err[1024];
    if (!fio_exists(fio_join(p, sizeof p, r->dir, "metrics.jsonl"))) cli_die(CMD, "%s: no such file (not a training run's folder?)", p);
    compare_run cr;
    if (compare_run_open(r->dir, &cr, err, sizeof err) == 0) snprintf(r->family, sizeof r->family, "%s", cr.family);
    compare_run_free(&cr);
}

/* the metric names one run logged (every key of its metrics.jsonl but "step"), comma-separated */
static void metric_names(const run_ref *r, char *buf, size_t n)
{
    char p[PATHN];
    size_t len, o = 0;
    char *text = fio_read_all(fio_join(p, sizeof p, r->dir, "metrics.jsonl"), &len, NULL, 0);
    buf[0] = 0;
    json_t *seen = json_object();
    for (char *s = text; s && *s && o < n;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = 0;
        json_t *j = json_loads(s, 0, NULL);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            if (strcmp(k, "step") == 0 || json_object_get(seen, k) || o >= n) continue;
            json_object_set_new(seen, k, json_true());
            o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? ", " : "", k);
        }
        json_decref(j);
        s = nl ? nl + 1 : s + strlen(s);
    }
    json_decref(seen);
    free(text);
}

/* the metrics: --metrics, else every curve of the runs' families (each once) */
static int choose(const char *list, const run_ref *r, int nr, const char **key, int *smooth, char *buf, size_t bufn)
{
    int n = 0;
    if (list) {
        snprintf(buf, bufn, "%s", list);
        for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
            if (n == MAX_METRICS) cli_die(CMD, "--metrics: at most %d", MAX_METRICS);
            if (*s) smooth[n] = 1, key[n++] = s;
        }
        if (!n) cli_die(CMD, "--metrics '%s': no metric names", list);
        return n;
    }
    for (int i = 0; i < nr; i++) {
        const family_info *f = family_get(r[i].family);
        for (int c = 0; f && c < FAMILY_MAX_CURVES && f->curves[c].key && n < MAX_METRICS; c++) {
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= strcmp(key[j], f->curves[c].key) == 0;
            if (!dup) smooth[n] = f->curves[c].smooth, key[n++] = f->curves[c].key;
        }
    }
    if (!n)
        cli_die(CMD, "no default metrics for these runs (family %s): choose with --metrics a,b,...",
                r[0].family[0] ? r[0].family : "unknown");
    return n;
}

/* every metric is logged by some run, else one line naming what the first run has (checked before
 * any figure is drawn) */
static void check_metrics(const run_ref *r, int nr, const char *const *key, int nk)
{
    for (int k = 0; k < nk; k++) {
        int found = 0;
        for (int i = 0; i < nr && !found; i++) {
            char p[PATHN];
            series s = {0};
            if (series_load(fio_join(p, sizeof p, r[i].dir, "metrics.jsonl"), "step", key[k], &s)) cli_die(CMD, "out of memory");
            found = s.n > 0;
            series_free(&s);
        }
        if (found) continue;
        char names[2048];
        metric_names(&r[0], names, sizeof names);
        cli_die(CMD, "unknown metric '%s': in no run's metrics.jsonl (%s has: %s)", key[k], r[0].name, names);
    }
}

/* one figure: metric `key` of every run that logged it */
static void draw(const run_ref *r, int nr, const char *key, int smooth, const char *out, FILE *md)
{
    series *s = calloc((size_t)nr, sizeof *s);
    plot_series *ps = calloc((size_t)nr, sizeof *ps);
    if (!s || !ps) cli_die(CMD, "out of memory");
    int n = 0;
    for (int i = 0; i < nr; i++) {
        char p[PATHN];
        if (series_load(fio_join(p, sizeof p, r[i].dir, "metrics.jsonl"), "step", key, &s[i])) cli_die(CMD, "out of memory");
        if (!s[i].n) continue;
        if (smooth > 1) series_smooth(s[i].y, s[i].n, smooth);
        ps[n++] = (plot_series){r[i].name, s[i].x, s[i].y, s[i].n};
    }
    char file[256], p[PATHN], title[256], err[512];
    size_t k = 0;
    for (const char *c = key; *c && k + 5 < sizeof file; c++) file[k++] = strchr("/ :", *c) ? '_' : *c;
    snprintf(file + k, sizeof file - k, ".png");
    snprintf(title, sizeof title, smooth > 1 ? "%s (moving average of %d steps)" : "%s", key, smooth);
    const plot_opts o = {title, "step", key, 0, 0};
    if (plot_lines(fio_join(p, sizeof p, out, file), &o, ps, n, err, sizeof err)) cli_die(CMD, "%s", err);
    fprintf(md, "![%s](%s)\n\n", key, file);
    fprintf(stderr, "%s\n", p);
    for (int i = 0; i < nr; i++) series_free(&s[i]);
    free(s);
    free(ps);
}

int cmd_plot(int argc, char **argv)
{
    cli_list runs = {0};
    const char *out = NULL, *metrics = NULL;
    const cli_opt opts[] = {
        {"--out", OPT_STR, &out, "DIR", "one PNG per metric and plots.md linking them", 1},
        {"--metrics", OPT_STR, &metrics, "a,b,...", "metrics.jsonl names (default: the runs' families' curves)", 0},
        {"--runs", OPT_MULTI, &runs, "DIR...", "more run folders (as the leading arguments): NAME=DIR names one", 0},
        {0}};
    const int lead = cli_leading(argc, argv, &runs);
    cli_parse(CMD, "Draw metrics of one or several training runs on shared axes (one figure per metric, gnuplot).",
              argc - lead, argv + lead, opts);
    if (!runs.n) cli_die(CMD, "no run folders (rlhf plot RUN_DIR... --out DIR)");
    run_ref *r = calloc(runs.n, sizeof *r);
    if (!r) cli_die(CMD, "out of memory");
    for (size_t i = 0; i < runs.n; i++) open_run(runs.v[i], &r[i]);
    const char *key[MAX_METRICS];
    int smooth[MAX_METRICS];
    char buf[4096], err[1024], p[PATHN];
    const int nk = choose(metrics, r, (int)runs.n, key, smooth, buf, sizeof buf);
    check_metrics(r, (int)runs.n, key, nk);
    if (fio_mkdirs(out, err, sizeof err)) cli_die(CMD, "%s", err);
    char *md = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&md, &len);
    if (!f) cli_die(CMD, "out of memory");
    fputs("# Training curves\n\n", f);
    for (size_t i = 0; i < runs.n; i++) fprintf(f, "- %s: %s (family %s)\n", r[i].name, r[i].dir, r[i].family[0] ? r[i].family : "?");
    fputs("\n", f);
    for (int k = 0; k < nk; k++) draw(r, (int)runs.n, key[k], smooth[k], out, f);
    if (fclose(f) || fio_write_atomic(fio_join(p, sizeof p, out, "plots.md"), md, len, err, sizeof err))
        cli_die(CMD, "%s", err[0] ? err : "out of memory");
    free(md);
    free(r);
    free(runs.v);
    return 0;
}
