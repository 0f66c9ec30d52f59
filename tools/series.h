/* series.h — (x, y) points read from metrics JSONL files, for the report's figures and `rlhf plot`:
 * one growing pair of arrays, a loader that takes one key of every line against another ("step"),
 * and a trailing moving average. */
#ifndef RLHF_SERIES_H
#define RLHF_SERIES_H

#include <stddef.h>

typedef struct {
    double *x, *y;
    size_t n, cap;
} series;

void series_free(series *s);

/* append one point; -1 when out of memory */
int series_push(series *s, double x, double y);

/* (xkey, key) of every line of a JSONL file that has both as numbers; a missing file gives no
 * points. -1 only when out of memory. */
int series_load(const char *path, const char *xkey, const char *key, series *s);

/* trailing moving average over w points, in place */
void series_smooth(double *y, size_t n, int w);

#endif
