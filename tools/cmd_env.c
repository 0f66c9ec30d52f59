/* cmd_env.c — `rlhf env list|replay|bench`: the classic-control environments from the command
 * line. `replay` exists to check parity with Gymnasium (JSON Lines of start states and actions
 * in, each step's observation, reward and flags out, floats with 17 significant digits so they
 * read back exactly); `bench` measures env steps per second with random actions. A thin wrapper
 * around rlhf/envs/env.h. */
#include "cli.h"
#include "commands.h"
#include "env.h"
#include "fileio.h"
#include "rng.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- replay ---- */

/* a double as JSON: 17 significant digits; non-finite values as Python's json.dumps writes them */
static void put_num(cli_out *o, double v)
{
    char b[40];
    int n;
    if (isnan(v))
        n = snprintf(b, sizeof b, "NaN");
    else if (isinf(v))
        n = snprintf(b, sizeof b, "%sInfinity", v < 0 ? "-" : "");
    else
        n = snprintf(b, sizeof b, "%.17g", v);
    cli_out_bytes(o, b, (size_t)n);
}

static void put_str(cli_out *o, const char *s) { cli_out_bytes(o, s, strlen(s)); }

static void put_flags(cli_out *o, const uint8_t *f, int k)
{
    put_str(o, "[");
    for (int t = 0; t < k; t++) put_str(o, t ? (f[t] ? ",true" : ",false") : (f[t] ? "true" : "false"));
    put_str(o, "]");
}

/* one {"obs": ..., "rewards": ..., "terminated": ..., "truncated": ...} line */
static void put_episode(cli_out *o, const env_spec *e, int k, const float *obs, const double *rew,
                        const uint8_t *term, const uint8_t *trunc)
{
    put_str(o, "{\"obs\":[");
    for (int t = 0; t < k; t++) {
        put_str(o, t ? ",[" : "[");
        for (int j = 0; j < e->obs_dim; j++) {
            if (j) put_str(o, ",");
            put_num(o, (double)obs[(size_t)t * e->obs_dim + j]);
        }
        put_str(o, "]");
    }
    put_str(o, "],\"rewards\":[");
    for (int t = 0; t < k; t++) {
        if (t) put_str(o, ",");
        put_num(o, rew[t]);
    }
    put_str(o, "],\"terminated\":");
    put_flags(o, term, k);
    put_str(o, ",\"truncated\":");
    put_flags(o, trunc, k);
    put_str(o, "}\n");
}

/* buffers for one episode, grown as needed and reused across lines */
typedef struct {
    int cap;
    double *actions, *rew;
    float *obs;
    uint8_t *term, *trunc;
} replay_buf;

static int buf_reserve(replay_buf *b, int n)
{
    if (n <= b->cap) return 0;
    int cap = n < 64 ? 64 : n;
    double *a = realloc(b->actions, (size_t)cap * ENV_MAX_ACT * sizeof *a);
    if (a) b->actions = a;
    double *r = realloc(b->rew, (size_t)cap * sizeof *r);
    if (r) b->rew = r;
    float *ob = realloc(b->obs, (size_t)cap * ENV_MAX_OBS * sizeof *ob);
    if (ob) b->obs = ob;
    uint8_t *t = realloc(b->term, (size_t)cap);
    if (t) b->term = t;
    uint8_t *u = realloc(b->trunc, (size_t)cap);
    if (u) b->trunc = u;
    if (!a || !r || !ob || !t || !u) return -1;
    b->cap = cap;
    return 0;
}

static void buf_free(replay_buf *b)
{
    free(b->actions);
    free(b->rew);
    free(b->obs);
    free(b->term);
    free(b->trunc);
}

/* parse one input line's JSON and replay it; -1 with a message (without the line number) */
static int replay_line(cli_out *o, const char *line, size_t len, const char *want_env, replay_buf *b, char *err,
                       size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return fio_fail(err, errlen, "invalid JSON at column %d: %s", jerr.column, jerr.text);
    int rc = -1;
    char shown[80];
    if (!json_is_object(root)) {
        fio_fail(err, errlen, "expected an object {\"env\", \"init_state\", \"actions\"}");
        goto done;
    }
    json_t *jenv = json_object_get(root, "env");
    const char *id = want_env;
    if (jenv) {
        if (!json_is_string(jenv)) {
            fio_fail(err, errlen, "\"env\" must be a string");
            goto done;
        }
        id = json_string_value(jenv);
        if (want_env && strcmp(id, want_env) != 0) {
            fio_fail(err, errlen, "env '%s' is not --env %s", fio_show(id, shown, sizeof shown), want_env);
            goto done;
        }
    }
    if (!id) {
        fio_fail(err, errlen, "no \"env\" (and no --env)");
        goto done;
    }
    const env_spec *e = env_find(id);
    if (!e) {
        fio_fail(err, errlen, "unknown env '%s' (see 'rlhf env list')", fio_show(id, shown, sizeof shown));
        goto done;
    }
    json_t *js = json_object_get(root, "init_state"), *ja = json_object_get(root, "actions");
    if (!json_is_array(js) || (int)json_array_size(js) != e->state_dim) {
        fio_fail(err, errlen, "\"init_state\" must be an array of %d numbers for %s", e->state_dim, e->id);
        goto done;
    }
    double state[ENV_MAX_STATE];
    for (int i = 0; i < e->state_dim; i++) {
        json_t *v = json_array_get(js, (size_t)i);
        if (!json_is_number(v)) {
            fio_fail(err, errlen, "init_state[%d] is not a number", i);
            goto done;
        }
        state[i] = json_number_value(v);
    }
    if (!json_is_array(ja)) {
        fio_fail(err, errlen, "\"actions\" must be an array");
        goto done;
    }
    size_t n = json_array_size(ja);
    if (n > 1000000) {
        fio_fail(err, errlen, "%zu actions (at most 1000000)", n);
        goto done;
    }
    if (buf_reserve(b, (int)n)) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    const int ad = e->discrete ? 1 : e->act_dim;
    for (size_t t = 0; t < n; t++) {
        json_t *v = json_array_get(ja, t);
        double *a = b->actions + t * (size_t)ad;
        if (e->discrete) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= e->n_actions) {
                fio_fail(err, errlen, "actions[%zu] must be an integer 0..%d", t, e->n_actions - 1);
                goto done;
            }
            a[0] = (double)json_integer_value(v);
        } else if (json_is_number(v) && ad == 1) {
            a[0] = json_number_value(v);
        } else if (json_is_array(v) && (int)json_array_size(v) == ad) {
            for (int j = 0; j < ad; j++) {
                json_t *x = json_array_get(v, (size_t)j);
                if (!json_is_number(x)) {
                    fio_fail(err, errlen, "actions[%zu][%d] is not a number", t, j);
                    goto done;
                }
                a[j] = json_number_value(x);
            }
        } else {
            fio_fail(err, errlen, "actions[%zu] must be %s%d number%s", t, ad == 1 ? "a number or [x]: " : "an array of ",
                     ad, ad == 1 ? "" : "s");
            goto done;
        }
    }
    int k = env_replay(e, state, e->state_dim, b->actions, (int)n, b->obs, b->rew, b->term, b->trunc, err, errlen);
    if (k < 0) goto done;
    put_episode(o, e, k, b->obs, b->rew, b->term, b->trunc);
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static int replay(int argc, char **argv)
{
    const char *env = NULL, *in = "-";
    const cli_opt opts[] = {
        {"--env", OPT_STR, &env, "ID", "every line must be this env (lines without \"env\" use it)", 0},
        {"--in", OPT_STR, &in, "FILE", "input JSON Lines (- is standard input)", 0},
        {0}};
    cli_parse("env replay",
              "Replay episodes for checking against Gymnasium: one JSON per line {\"env\", \"init_state\", "
              "\"actions\"} in; {\"obs\", \"rewards\", \"terminated\", \"truncated\"} out, up to the first "
              "terminated or truncated step.",
              argc, argv, opts);
    if (env && !env_find(env)) cli_die("env replay", "unknown env '%s' (see 'rlhf env list')", env);
    char err[512];
    size_t len;
    char *text = fio_read_all(in, &len, err, sizeof err);
    if (!text) cli_die("env replay", "%s", err);
    cli_out o;
    cli_out_init(&o, stdout);
    replay_buf b = {0};
    long lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        lineno++;
        size_t blank = 0;
        while (blank < n && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r')) blank++;
        if (blank == n) continue;
        if (replay_line(&o, line, n, env, &b, err, sizeof err)) {
            cli_out_close(&o);
            cli_die("env replay", "%s:%ld: %s", strcmp(in, "-") ? in : "<stdin>", lineno, err);
        }
    }
    buf_free(&b);
    free(text);
    if (cli_out_close(&o)) cli_die("env replay", "write error on standard output");
    return 0;
}

/* ---- bench ---- */

/* steps per second of one env: n copies, `steps` vector steps with uniform random actions */
static double bench_one(const env_spec *e, int n, long steps, uint64_t seed)
{
    char err[256];
    env_vec *v;
    if (env_vec_create(&v, e->id, n, seed, err, sizeof err)) cli_die("env bench", "%s", err);
    const int ad = e->discrete ? 1 : e->act_dim;
    float *obs = malloc((size_t)n * (size_t)e->obs_dim * sizeof *obs);
    double *act = malloc((size_t)n * (size_t)ad * sizeof *act), *rew = malloc((size_t)n * sizeof *rew);
    uint8_t *term = malloc((size_t)n), *trunc = malloc((size_t)n);
    if (!obs || !act || !rew || !term || !trunc) cli_die("env bench", "out of memory");
    uint64_t rng = rng_stream(seed, 0x62656e6368ull);
    env_vec_reset(v, obs);
    double t0 = clk_now();
    for (long s = 0; s < steps; s++) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < ad; j++)
                act[i * ad + j] = e->discrete ? (double)rng_below(&rng, (uint64_t)e->n_actions)
                                              : rng_uniform(&rng, e->act_low[j], e->act_high[j]);
        env_vec_step(v, act, obs, rew, term, trunc, NULL, NULL, NULL);
    }
    double dt = clk_now() - t0;
    env_vec_free(v);
    free(obs);
    free(act);
    free(rew);
    free(term);
    free(trunc);
    return (double)steps * n / (dt > 0 ? dt : 1e-9);
}

static int bench(int argc, char **argv)
{
    const char *env = NULL;
    long n = 1, steps = 1000000, seed = 0;
    const cli_opt opts[] = {
        {"--env", OPT_STR, &env, "ID", "one env (default: every env)", 0},
        {"--n", OPT_LONG, &n, "N", "copies stepped together (env_vec)", 0},
        {"--steps", OPT_LONG, &steps, "S", "vector steps timed (N*S env steps)", 0},
        {"--seed", OPT_LONG, &seed, "S", "seed for resets and the random actions", 0},
        {0}};
    cli_parse("env bench", "Env steps per second with uniform random actions (automatic resets included).", argc,
              argv, opts);
    if (n < 1 || n > 1000000) cli_die("env bench", "--n must be 1..1000000 (got %ld)", n);
    if (steps < 1) cli_die("env bench", "--steps must be >= 1 (got %ld)", steps);
    if (env && !env_find(env)) cli_die("env bench", "unknown env '%s' (see 'rlhf env list')", env);
    for (const env_spec *const *e = env_list(); *e; e++) {
        if (env && strcmp(env, (*e)->id) != 0) continue;
        double sps = bench_one(*e, (int)n, steps, (uint64_t)seed);
        printf("%-26s n %ld  steps %ld  steps_per_s: %.0f\n", (*e)->id, n, n * steps, sps);
        fflush(stdout);
    }
    return 0;
}

/* ---- list ---- */

static int list(int argc, char **argv)
{
    const cli_opt opts[] = {{0}};
    cli_parse("env list", "The environments, their observation and action sizes and episode limits.", argc, argv,
              opts);
    for (const env_spec *const *p = env_list(); *p; p++) {
        const env_spec *e = *p;
        if (e->discrete)
            printf("%-26s obs %d  actions %d (discrete)  max_episode_steps %d\n", e->id, e->obs_dim, e->n_actions,
                   e->max_episode_steps);
        else
            printf("%-26s obs %d  action %d in [%g, %g]  max_episode_steps %d\n", e->id, e->obs_dim, e->act_dim,
                   e->act_low[0], e->act_high[0], e->max_episode_steps);
    }
    return 0;
}

int cmd_env(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "replay") == 0) return replay(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "bench") == 0) return bench(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "list") == 0) return list(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: rlhf env list|replay|bench [options]\n\n"
               "  list     the environments (Gymnasium ids)\n"
               "  replay   [--env ID] [--in FILE]: JSON Lines episodes in, Gymnasium-style steps out\n"
               "  bench    [--env ID] [--n N] [--steps S]: env steps per second\n\n"
               "'rlhf env <sub> --help' for the options of one.\n");
        return 0;
    }
    cli_die("env", "expected 'list', 'replay' or 'bench' (see 'rlhf env --help')");
}
