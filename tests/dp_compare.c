/* dp_compare.c — the comparer behind tests/mpi.sh: is a data-parallel run the same as one process?
 *
 *   dp_compare weights A.safetensors B.safetensors TOL
 *       every tensor of A in B with the same shape, and max |a - b| / max |a| <= TOL per tensor
 *       (prints how many tensors are bit-identical). One exception, checked apart: the key third of
 *       each attention bias (attn.c_attn.bias). Its exact gradient is 0 (softmax ignores a constant
 *       added to every key), so what it holds is rounding noise that AdamW scales up to steps of the
 *       learning rate's size, different for any other order of the same sums; it must stay noise
 *       (below NOISE_MAX in both runs) rather than match.
 *   dp_compare weights A B TOL NAME...
 *       the same, with the tensors NAME left out and their difference printed: those whose exact
 *       gradient is 0 for the run's loss in the same way (a reward model's final LayerNorm bias
 *       shifts chosen and rejected scores alike, and the Bradley-Terry loss sees only differences)
 *   dp_compare json A.json B.json RTOL ATOL
 *       the same tree, every number within |a - b| <= RTOL max(|a|, |b|) + ATOL (reports)
 *   dp_compare metrics A.jsonl B.jsonl TOL KEY...
 *       the same steps, and for each KEY present in a line of A: |a - b| <= TOL * max(|a|, |b|, 1e-6);
 *       KEY@ATOL: |a - b| <= ATOL instead, for a value that is ~0 by construction (PPO's policy loss
 *       is a mean of whitened advantages at the first update), where relative errors mean nothing
 *
 * Exit 0 when they match, 1 (one line per difference, at most 10) when not, 2 on bad input. */
#include "fileio.h"
#include "safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOISE_MAX 1e-4

/* the key third of an attention bias as noise: 1 when both runs keep it below NOISE_MAX */
static int key_bias_noise(const char *name, const float *u, const float *v, size_t n, size_t *from, size_t *to)
{
    const size_t L = strlen(name), S = strlen("attn.c_attn.bias");
    *from = *to = 0;
    if (L < S || strcmp(name + L - S, "attn.c_attn.bias") != 0 || n % 3) return 1;
    *from = n / 3, *to = 2 * n / 3;
    for (size_t k = *from; k < *to; k++)
        if (!(fabsf(u[k]) < NOISE_MAX && fabsf(v[k]) < NOISE_MAX)) return 0;
    return 1;
}

static int listed(const char *name, char **names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

static int weights(const char *pa, const char *pb, double tol, char **noise, int nnoise)
{
    char err[512];
    st_file *a, *b;
    if (st_open(pa, &a, err, sizeof err) || st_open(pb, &b, err, sizeof err)) {
        fprintf(stderr, "dp_compare: %s\n", err);
        return 2;
    }
    int bad = 0, same = 0;
    double worst = 0;
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *x = st_get(a, i), *y = st_find(b, x->name);
        if (!y || y->numel != x->numel) {
            fprintf(stderr, "dp_compare: %s: tensor %s missing or of another size\n", pb, x->name);
            bad++;
            continue;
        }
        float *u = malloc(x->numel * sizeof *u), *v = malloc(x->numel * sizeof *v);
        if (!u || !v || st_read_f32(a, x, u, x->numel, err, sizeof err) || st_read_f32(b, y, v, y->numel, err, sizeof err)) {
            fprintf(stderr, "dp_compare: %s\n", u && v ? err : "out of memory");
            free(u), free(v);
            return 2;
        }
        size_t k0, k1;
        if (!key_bias_noise(x->name, u, v, x->numel, &k0, &k1) && bad++ < 10)
            fprintf(stderr, "dp_compare: %s: the key bias of %s is not noise-sized\n", pb, x->name);
        double d = 0, m = 0;
        for (size_t k = 0; k < x->numel; k++)
            if (k < k0 || k >= k1) d = fmax(d, fabs((double)u[k] - v[k])), m = fmax(m, fabs((double)u[k]));
        const double rel = m > 0 ? d / m : d;
        if (listed(x->name, noise, nnoise)) {
            printf("weights: %s (exact gradient 0) differs by %.3g (relative), left out\n", x->name, rel);
            free(u), free(v);
            continue;
        }
        worst = fmax(worst, rel);
        same += memcmp(u, v, x->numel * sizeof *u) == 0;
        if (!(rel <= tol) && bad++ < 10) fprintf(stderr, "dp_compare: %s: %s differs by %.3g (relative)\n", pb, x->name, rel);
        free(u), free(v);
    }
    printf("weights: %d of %zu tensors bit-identical, largest relative difference %.3g\n", same, st_count(a), worst);
    st_close(a), st_close(b);
    return bad ? 1 : 0;
}

static json_t *lines(const char *path)
{
    char err[512];
    size_t n;
    char *s = fio_read_all(path, &n, err, sizeof err);
    if (!s) {
        fprintf(stderr, "dp_compare: %s\n", err);
        return NULL;
    }
    json_t *arr = json_array();
    for (char *l = strtok(s, "\n"); l; l = strtok(NULL, "\n")) json_array_append_new(arr, json_loads(l, 0, NULL));
    free(s);
    return arr;
}

static int metrics(const char *pa, const char *pb, double tol, char **keys, int nkeys)
{
    json_t *a = lines(pa), *b = lines(pb);
    if (!a || !b) return 2;
    int bad = 0, checked = 0;
    double worst = 0;
    if (json_array_size(a) != json_array_size(b)) {
        fprintf(stderr, "dp_compare: %s has %zu lines, %s %zu\n", pa, json_array_size(a), pb, json_array_size(b));
        bad++;
    }
    for (size_t i = 0; i < json_array_size(a) && i < json_array_size(b); i++)
        for (int k = 0; k < nkeys; k++) {
            char key[128];
            snprintf(key, sizeof key, "%s", keys[k]);
            char *at = strchr(key, '@');
            const double atol = at ? atof(at + 1) : -1;
            if (at) *at = 0;
            json_t *x = json_object_get(json_array_get(a, i), key), *y = json_object_get(json_array_get(b, i), key);
            if (!x) continue;
            if (!json_is_number(y)) {
                fprintf(stderr, "dp_compare: %s line %zu lacks %s\n", pb, i + 1, keys[k]);
                bad++;
                continue;
            }
            const double u = json_number_value(x), v = json_number_value(y), rel = fabs(u - v) / fmax(fmax(fabs(u), fabs(v)), 1e-6);
            checked++;
            const int ok = at ? fabs(u - v) <= atol : rel <= tol;
            if (!at) worst = fmax(worst, rel);
            if (!ok && bad++ < 10)
                fprintf(stderr, "dp_compare: line %zu: %s %.9g vs %.9g (relative %.3g)\n", i + 1, key, u, v, rel);
        }
    printf("metrics: %d values over %zu steps, largest relative difference %.3g (KEY@ATOL aside)\n", checked, json_array_size(a), worst);
    json_decref(a), json_decref(b);
    return bad || !checked ? 1 : 0;
}

/* every number of a within rtol/atol of the same place in b; *worst the largest relative difference */
static int tree(const json_t *a, const json_t *b, const char *path, double rtol, double atol, double *worst)
{
    if (json_is_number(a)) {
        if (!json_is_number(b)) return fprintf(stderr, "dp_compare: %s: not a number in both\n", path), 1;
        const double u = json_number_value(a), v = json_number_value(b), d = fabs(u - v), m = fmax(fabs(u), fabs(v));
        if (m > 0) *worst = fmax(*worst, d / m);
        if (d <= rtol * m + atol) return 0;
        return fprintf(stderr, "dp_compare: %s: %.9g vs %.9g\n", path, u, v), 1;
    }
    char p[512];
    int bad = 0;
    if (json_is_object(a)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)a, k, x)
        {
            snprintf(p, sizeof p, "%s/%s", path, k);
            json_t *y = json_object_get(b, k);
            bad += y ? tree(x, y, p, rtol, atol, worst) : (fprintf(stderr, "dp_compare: %s: missing\n", p), 1);
        }
    } else if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return fprintf(stderr, "dp_compare: %s: lengths differ\n", path), 1;
        for (size_t i = 0; i < json_array_size(a); i++) {
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            bad += tree(json_array_get(a, i), json_array_get(b, i), p, rtol, atol, worst);
        }
    } else if (!json_equal((json_t *)a, (json_t *)b)) {
        return fprintf(stderr, "dp_compare: %s differs\n", path), 1;
    }
    return bad;
}

static int json_files(const char *pa, const char *pb, double rtol, double atol)
{
    json_error_t e;
    json_t *a = json_load_file(pa, 0, &e), *b = a ? json_load_file(pb, 0, &e) : NULL;
    if (!a || !b) return fprintf(stderr, "dp_compare: %s\n", e.text), 2;
    double worst = 0;
    const int bad = tree(a, b, "", rtol, atol, &worst);
    printf("json: %s, largest relative difference %.3g\n", bad ? "differs" : "matches", worst);
    json_decref(a), json_decref(b);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "json") == 0) return json_files(argv[2], argv[3], atof(argv[4]), atof(argv[5]));
    if (argc >= 5 && strcmp(argv[1], "weights") == 0) return weights(argv[2], argv[3], atof(argv[4]), argv + 5, argc - 5);
    if (argc >= 6 && strcmp(argv[1], "metrics") == 0) return metrics(argv[2], argv[3], atof(argv[4]), argv + 5, argc - 5);
    fprintf(stderr, "usage: dp_compare weights A B TOL | metrics A.jsonl B.jsonl TOL KEY... | json A B RTOL ATOL\n");
    return 2;
}
