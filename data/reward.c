/* reward.c — `--reward` specs into sources and their weighted sum as one scorer; the judge source.
 * The external program lives in reward_cmd.c. See reward.h. */
#include "reward.h"

#include "fileio.h"
#include "judge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ------------------------------------------------------------------------------------ */

static int starts_source(const char *s)
{
    return strncmp(s, "rm:", 3) == 0 || strncmp(s, "cmd:", 4) == 0 || strcmp(s, "judge") == 0 ||
           strncmp(s, "judge:", 6) == 0;
}

/* append s[0..len) to the source's argv */
static int add_arg(reward_source *r, size_t *n, const char *s, size_t len, char *err, size_t errlen)
{
    char **v = realloc(r->argv, (*n + 2) * sizeof *v);
    if (!v) return fio_fail(err, errlen, "out of memory");
    r->argv = v;
    if (!(v[*n] = strndup(s, len))) return fio_fail(err, errlen, "out of memory");
    v[++*n] = NULL;
    return 0;
}

/* append the whitespace-separated words of s */
static int add_words(reward_source *r, size_t *n, const char *s, char *err, size_t errlen)
{
    while (*s) {
        while (*s == ' ' || *s == '\t') s++;
        const char *e = s;
        while (*e && *e != ' ' && *e != '\t') e++;
        if (e == s) break;
        if (add_arg(r, n, s, (size_t)(e - s), err, errlen)) return -1;
        s = e;
    }
    return 0;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

/* one source from specs[*i] (and, for cmd:, the arguments after it); *i moves past them */
static int parse_one(reward_source *r, const char *const *specs, size_t nspecs, size_t *i, char *err, size_t errlen)
{
    const char *s = specs[(*i)++];
    if (strncmp(s, "rm:", 3) == 0) {
        r->kind = REWARD_RM;
        if (!s[3]) return fio_fail(err, errlen, "--reward rm:DIR needs a reward-model folder");
        if (!(r->arg = strdup(s + 3))) return fio_fail(err, errlen, "out of memory");
        snprintf(r->name, sizeof r->name, "rm:%s", base_name(r->arg));
        return 0;
    }
    if (strcmp(s, "judge") == 0 || strncmp(s, "judge:", 6) == 0) {
        r->kind = REWARD_JUDGE;
        if (s[5] == ':' && !(r->arg = strdup(s + 6))) return fio_fail(err, errlen, "out of memory");
        snprintf(r->name, sizeof r->name, "judge");
        return 0;
    }
    if (strncmp(s, "cmd:", 4) != 0)
        return fio_fail(err, errlen, "--reward: '%s' is not a reward source (rm:DIR, judge, cmd:PROGRAM [ARGS...])", s);
    r->kind = REWARD_CMD;
    size_t n = 0;
    if (add_words(r, &n, s + 4, err, errlen)) return -1;
    for (; *i < nspecs && !starts_source(specs[*i]); (*i)++) /* arguments as given, not split */
        if (add_arg(r, &n, specs[*i], strlen(specs[*i]), err, errlen)) return -1;
    if (n == 0) return fio_fail(err, errlen, "--reward cmd:PROGRAM needs a program");
    if (!(r->arg = strdup(r->argv[0]))) return fio_fail(err, errlen, "out of memory");
    snprintf(r->name, sizeof r->name, "cmd:%s", base_name(r->arg));
    return 0;
}

int reward_parse(reward_set *rs, const char *const *specs, size_t nspecs, const double *weights, size_t nweights,
                 char *err, size_t errlen)
{
    if (nspecs == 0) return fio_fail(err, errlen, "--reward: no reward source given");
    for (size_t i = 0; i < nspecs;) {
        if (rs->n == REWARD_MAX) return fio_fail(err, errlen, "--reward: at most %d sources", REWARD_MAX);
        reward_source *r = &rs->src[rs->n++];
        r->weight = 1.0f;
        if (parse_one(r, specs, nspecs, &i, err, errlen)) return -1;
        for (int k = 0; k < rs->n - 1; k++) /* names stay distinct: metrics are keyed by them */
            if (strcmp(rs->src[k].name, r->name) == 0) {
                const size_t l = strlen(r->name);
                snprintf(r->name + (l < 56 ? l : 56), 8, "#%d", rs->n % 100);
            }
    }
    if (nweights && nweights != (size_t)rs->n)
        return fio_fail(err, errlen, "--reward-weights: %zu weights for %d reward sources", nweights, rs->n);
    for (size_t k = 0; k < nweights; k++) {
        if (!isfinite(weights[k])) return fio_fail(err, errlen, "--reward-weights: weight %zu is not finite", k + 1);
        rs->src[k].weight = (float)weights[k];
    }
    return 0;
}

/* ---- opening ----------------------------------------------------------------------------------- */

typedef struct {
    judge *j;
    scorer_judge g;
} judge_src;

static void judge_release(void *p)
{
    judge_src *s = p;
    judge_free(s->j);
    free(s);
}

static void cmd_release(void *p) { reward_cmd_free(p); }

int reward_open(reward_set *rs, const tok_tokenizer *t, int32_t stop, double timeout_s, char *err, size_t errlen)
{
    for (int i = 0; i < rs->n; i++) {
        reward_source *r = &rs->src[i];
        if (r->s.fn) continue;
        if (r->kind == REWARD_RM) return fio_fail(err, errlen, "--reward %s: reward models are opened by rlhf/", r->name);
        if (r->kind == REWARD_JUDGE) {
            judge_src *s = calloc(1, sizeof *s);
            char path[4096];
            if (!s) return fio_fail(err, errlen, "out of memory");
            if (judge_create(&s->j, r->arg ? r->arg : judge_default_lexicon(path, sizeof path), err, errlen)) {
                free(s);
                return -1;
            }
            s->g = (scorer_judge){s->j, t, stop};
            r->s = scorer_judge_make(&s->g);
            r->owned = s;
            r->release = judge_release;
            continue;
        }
        reward_cmd *c;
        if (reward_cmd_start(&c, r->argv, t, stop, timeout_s, err, errlen)) return -1;
        r->s = reward_cmd_scorer(c);
        r->owned = c;
        r->release = cmd_release;
    }
    return 0;
}

/* ---- the weighted sum ---------------------------------------------------------------------------- */

static int set_rows(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                    float *scores, char *err, size_t errlen)
{
    reward_set *rs = ud;
    if (B > rs->cap) {
        float *nb = realloc(rs->buf, (size_t)rs->n * (size_t)B * sizeof *nb);
        if (!nb) return fio_fail(err, errlen, "out of memory");
        rs->buf = nb;
        rs->cap = B;
    }
    for (int i = 0; i < rs->n; i++) {
        reward_source *r = &rs->src[i];
        float *x = rs->buf + (size_t)i * B;
        if (scorer_score(&r->s, tokens, lengths, prompt_lengths, B, T, x, err, errlen)) return -1;
        double m = 0, v = 0;
        for (int b = 0; b < B; b++) m += x[b];
        m /= B;
        for (int b = 0; b < B; b++) v += (x[b] - m) * (x[b] - m);
        r->mean = m;
        r->std = sqrt(v / B);
    }
    for (int b = 0; b < B; b++) {
        float s = 0;
        for (int i = 0; i < rs->n; i++) s += rs->src[i].weight * rs->buf[(size_t)i * B + b];
        scores[b] = s;
    }
    return 0;
}

scorer reward_scorer(reward_set *rs) { return (scorer){set_rows, rs}; }

void reward_free(reward_set *rs)
{
    for (int i = 0; i < rs->n; i++) {
        reward_source *r = &rs->src[i];
        if (r->release) r->release(r->owned);
        for (char **a = r->argv; a && *a; a++) free(*a);
        free(r->argv);
        free(r->arg);
    }
    free(rs->buf);
    memset(rs, 0, sizeof *rs);
}
