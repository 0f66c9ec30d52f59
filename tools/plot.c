/* plot.c — gnuplot line and marker plots written atomically. See plot.h. */
#include "plot.h"

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* s as a gnuplot single-quoted string (no escapes inside; a quote is written twice) */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; s && *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('\'', f);
}

/* a label as a double-quoted data-file column (a double quote inside becomes a single one) */
static void put_label(FILE *f, const char *s)
{
    fputs(" \"", f);
    for (; s && *s; s++) fputc(*s == '"' ? '\'' : *s == '\n' ? ' ' : *s, f);
    fputc('"', f);
}

/* series k of data file `data` in the plot command: a line, or markers (joined or not) and labels */
static void put_series(FILE *g, const char *data, int k, const plot_series *s, const plot_style *st)
{
    static const plot_style line = {0};
    if (!st) st = &line;
    put_quoted(g, data);
    fprintf(g, " index %d using 1:2", k);
    if (st->point > 0)
        fprintf(g, " with %s pointtype %d pointsize 1.8", st->join ? "linespoints linewidth 1 dashtype 2" : "points",
                st->point);
    else
        fputs(" with lines linewidth 2", g);
    if (st->color > 0) fprintf(g, " linecolor %d", st->color);
    if (s->title && *s->title) {
        fputs(" title ", g);
        put_quoted(g, s->title);
    } else
        fputs(" notitle", g);
    if (st->point > 0 && st->labels) {
        fputs(", ", g);
        put_quoted(g, data);
        fprintf(g, " index %d using 1:2:3 with labels offset character 0.9,0.7 left font ',9'", k);
        if (st->color > 0) fprintf(g, " textcolor lt %d", st->color);
        fputs(" notitle", g);
    }
}

static int write_files(const char *tmp, const plot_opts *o, const plot_series *s, const plot_style *st, int ns,
                       char *err, size_t errlen)
{
    char path[4096];
    FILE *d = fopen(fio_join(path, sizeof path, tmp, "data.txt"), "w");
    if (!d) return fio_fail(err, errlen, "%s: %s", path, strerror(errno));
    for (int k = 0; k < ns; k++) {
        if (k) fputs("\n\n", d); /* gnuplot's data-set separator: two blank lines */
        int any = 0;
        for (size_t i = 0; i < s[k].n; i++)
            if (isfinite(s[k].y[i]) && isfinite(s[k].x[i])) {
                fprintf(d, "%.17g %.17g", s[k].x[i], s[k].y[i]);
                if (st && st[k].labels) put_label(d, st[k].labels[i]);
                fputc('\n', d);
                any = 1;
            }
        if (!any) fputs(st && st[k].labels ? "nan nan \"\"\n" : "nan nan\n", d); /* an empty data set would be an error in gnuplot */
    }
    if (fclose(d)) return fio_fail(err, errlen, "%s: write failed", path);

    FILE *g = fopen(fio_join(path, sizeof path, tmp, "plot.gp"), "w");
    if (!g) return fio_fail(err, errlen, "%s: %s", path, strerror(errno));
    const int w = o->width > 0 ? o->width : 900, h = o->height > 0 ? o->height : 540;
    fprintf(g,
            "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo noenhanced size %d,%d } "
            "else { set terminal png noenhanced size %d,%d }\n",
            w, h, w, h);
    fputs("set output ", g);
    put_quoted(g, fio_join(path, sizeof path, tmp, "plot.png"));
    fputs("\nset title ", g);
    put_quoted(g, o->title);
    fputs("\nset xlabel ", g);
    put_quoted(g, o->xlabel);
    fputs("\nset ylabel ", g);
    put_quoted(g, o->ylabel);
    fputs("\nset grid\nset key bottom right\nset datafile missing 'nan'\nplot ", g);
    fio_join(path, sizeof path, tmp, "data.txt");
    for (int k = 0; k < ns; k++) {
        if (k) fputs(", ", g);
        put_series(g, path, k, &s[k], st ? &st[k] : NULL);
    }
    fputs("\nset output\n", g);
    if (fclose(g)) return fio_fail(err, errlen, "%s: write failed", path);
    return 0;
}

/* run `gnuplot tmp/plot.gp` with its output in tmp/gnuplot.log */
static int run_gnuplot(const char *tmp, char *err, size_t errlen)
{
    char gp[4096], log[4096];
    fio_join(gp, sizeof gp, tmp, "plot.gp");
    fio_join(log, sizeof log, tmp, "gnuplot.log");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {"gnuplot", gp, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == ENOENT) return fio_fail(err, errlen, "gnuplot not found (install gnuplot-nox)");
    if (rc) return fio_fail(err, errlen, "cannot run gnuplot: %s", strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return fio_fail(err, errlen, "waiting for gnuplot: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) return fio_fail(err, errlen, "gnuplot not found (install gnuplot-nox)");
    size_t n = 0;
    char *text = fio_read_all(log, &n, NULL, 0);
    char first[200] = "no message";
    if (text) {
        /* the first line that says something */
        char *line = strtok(text, "\n");
        while (line && strspn(line, " \t^") == strlen(line)) line = strtok(NULL, "\n");
        if (line) fio_show(line, first, sizeof first);
        free(text);
    }
    return fio_fail(err, errlen, "gnuplot failed: %s", first);
}

int plot_lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns, char *err, size_t errlen)
{
    return plot_styled(png_path, o, s, NULL, ns, err, errlen);
}

int plot_styled(const char *png_path, const plot_opts *o, const plot_series *s, const plot_style *st, int ns, char *err,
                size_t errlen)
{
    /* the temporary folder sits beside the target, so the final rename stays on one file system */
    char tmp[4096], path[4096];
    const char *slash = strrchr(png_path, '/');
    if (slash)
        snprintf(tmp, sizeof tmp, "%.*s/.plot-XXXXXX", (int)(slash - png_path), png_path);
    else
        snprintf(tmp, sizeof tmp, ".plot-XXXXXX");
    if (!mkdtemp(tmp)) return fio_fail(err, errlen, "%s: %s", tmp, strerror(errno));
    int rc = write_files(tmp, o, s, st, ns, err, errlen);
    if (!rc) rc = run_gnuplot(tmp, err, errlen);
    if (!rc && rename(fio_join(path, sizeof path, tmp, "plot.png"), png_path))
        rc = fio_fail(err, errlen, "%s: %s", png_path, strerror(errno));
    static const char *const names[] = {"data.txt", "plot.gp", "gnuplot.log", "plot.png"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(fio_join(path, sizeof path, tmp, names[i]));
    rmdir(tmp);
    return rc;
}
