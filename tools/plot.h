/* plot.h — line plots as PNG through gnuplot, for the learning curves the trainers draw.
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

/* plot_lines with gnuplot's "with" clause per series (styles[k], e.g. "points pointtype 7"; styles
 * NULL or styles[k] NULL: lines of width 2) */
int plot_styled(const char *png_path, const plot_opts *o, const plot_series *s, const char *const *styles, int ns,
                char *err, size_t errlen);

#endif
