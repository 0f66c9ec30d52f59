/* series.c — points from metrics JSONL files (see series.h). */
#include "series.h"

#include "fileio.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void series_free(series *s)
{
    free(s->x);
    free(s->y);
    memset(s, 0, sizeof *s);
}

int series_push(series *s, double x, double y)
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

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int series_load(const char *path, const char *xkey, const char *key, series *s)
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

void series_smooth(double *y, size_t n, int w)
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
