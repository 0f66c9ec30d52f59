/* plot.h — line plots as PNG through gnuplot, for the learning curves the trainers draw, and
 * marker plots with labels (the demo's frontier: one marker style per family, a label per run).
 *
 * Why gnuplot through a process: it is the project's one plotting dependency (gnuplot-nox), and a
 * data file plus a script in a private temporary folder keeps the call simple to inspect. The PNG
 * is written next to its target and renamed over it, so a reader never sees half an image. The
 * terminal is pngcairo when gnuplot has it, png otherwise. */
#ifndef RLHF_PLOT_H
#define RLHF_PLOT_H

#include <stddef.h>

typedef struct {
    const char *title;     /* legend entry */
    const double *x, *y;   /* n points; non-finite y values are left out */
    size_t n;
} plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    int width, height;     /* pixels (0: 900 x 540) */
} plot_opts;

/* Draw the series as lines into png_path. -1 with one line in err when gnuplot is missing or
 * fails (its first error line quoted), or a file cannot be written. */
int plot_lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns, char *err, size_t errlen);

/* How plot_styled draws one series (all 0: as plot_lines does). */
typedef struct {
    int point;             /* > 0: gnuplot point type (e.g. 7 a filled circle, 6 the same hollow): markers */
    int join;              /* with point: a thin dashed line through the markers as well */
    int color;             /* > 0: gnuplot line-type colour index (the series of one family share it) */
    const char *const *labels; /* with point: a label beside each of the series' n points (NULL: none) */
} plot_style;

/* plot_lines with a style per series (st[k] for s[k]; st NULL: lines). A series whose title is ""
 * has no legend entry. */
int plot_styled(const char *png_path, const plot_opts *o, const plot_series *s, const plot_style *st, int ns, char *err,
                size_t errlen);

#endif
