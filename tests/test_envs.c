/* test_envs.c — the classic-control envs (rlhf/envs/): replay parity with Gymnasium 1.x on the
 * trajectories in tests/data/envs/ (made by tools/golden/gen_gym_traj.py from Gymnasium's own
 * code), the vectorized stepper's automatic reset and truncation, seeded resets and their ranges,
 * and the replay command's errors. */
#include "env.h"
#include "envmath.h"
#include "fileio.h"
#include "rng.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ids[] = {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
                                  "Pendulum-v1"};

/* the next line of *s as parsed JSON (NULL at the end); advances *s */
static json_t *next_json(char **s)
{
    while (**s == '\n') (*s)++;
    if (!**s) return NULL;
    char *nl = strchr(*s, '\n');
    size_t n = nl ? (size_t)(nl - *s) : strlen(*s);
    json_error_t e;
    json_t *j = json_loadb(*s, n, 0, &e);
    cr_assert(j, "bad JSON line: %s", e.text);
    *s += n;
    return j;
}

/* Replay every episode of one env through `rlhf env replay` and compare with Gymnasium's output:
 * observations equal as float32, rewards within 1e-9 relative (we expect 0), flags identical. */
static void check_parity(const char *id)
{
    char rel[128], args[512];
    snprintf(rel, sizeof rel, "envs/%s.in.jsonl", id);
    snprintf(args, sizeof args, "env replay --env %s", id);
    char *out, *err;
    int rc = tu_run(args, tu_data(rel), &out, &err);
    cr_assert_eq(rc, 0, "%s: replay failed: %s", id, err);
    snprintf(rel, sizeof rel, "envs/%s.out.jsonl", id);
    char ferr[512];
    size_t wlen;
    char *want = fio_read_all(tu_data(rel), &wlen, ferr, sizeof ferr);
    cr_assert(want, "%s", ferr);
    char *po = out, *pw = want;
    long episodes = 0, steps = 0;
    double max_rel = 0;
    for (json_t *w; (w = next_json(&pw)); episodes++) {
        json_t *g = next_json(&po);
        cr_assert(g, "%s: replay printed %ld episodes, Gymnasium %ld or more", id, episodes, episodes + 1);
        json_t *wo = json_object_get(w, "obs"), *go = json_object_get(g, "obs");
        json_t *wr = json_object_get(w, "rewards"), *gr = json_object_get(g, "rewards");
        size_t k = json_array_size(wr);
        cr_assert_eq(json_array_size(gr), k, "%s episode %ld: %zu steps, Gymnasium %zu", id, episodes,
                     json_array_size(gr), k);
        cr_assert_eq(json_array_size(go), k);
        for (size_t t = 0; t < k; t++) {
            json_t *wv = json_array_get(wo, t), *gv = json_array_get(go, t);
            cr_assert_eq(json_array_size(gv), json_array_size(wv));
            for (size_t j = 0; j < json_array_size(wv); j++) {
                float a = (float)json_number_value(json_array_get(gv, j));
                float b = (float)json_number_value(json_array_get(wv, j));
                cr_assert(a == b || (isnan(a) && isnan(b)), "%s episode %ld step %zu obs[%zu]: %.9g, Gymnasium %.9g", id,
                          episodes, t, j, (double)a, (double)b);
            }
            double a = json_number_value(json_array_get(gr, t)), b = json_number_value(json_array_get(wr, t));
            double r = fabs(a - b) / fmax(fabs(b), 1e-300);
            if (a != b) max_rel = fmax(max_rel, r);
            cr_assert(a == b || r <= 1e-9, "%s episode %ld step %zu reward %.17g, Gymnasium %.17g", id, episodes, t, a,
                      b);
            const char *flags[] = {"terminated", "truncated"};
            for (int f = 0; f < 2; f++)
                cr_assert_eq(json_is_true(json_array_get(json_object_get(g, flags[f]), t)),
                             json_is_true(json_array_get(json_object_get(w, flags[f]), t)),
                             "%s episode %ld step %zu: %s differs", id, episodes, t, flags[f]);
        }
        steps += (long)k;
        json_decref(w);
        json_decref(g);
    }
    cr_assert_null(next_json(&po), "%s: replay printed more episodes than Gymnasium", id);
    cr_assert_gt(episodes, 20, "%s: too few episodes in the test data", id);
    cr_log_info("%s: %ld episodes, %ld steps, identical (max reward rel. error %g)", id, episodes, steps, max_rel);
    free(want);
    free(out);
    free(err);
}

Test(envs, parity_cartpole) { check_parity("CartPole-v1"); }
Test(envs, parity_acrobot) { check_parity("Acrobot-v1"); }
Test(envs, parity_mountain_car) { check_parity("MountainCar-v0"); }
Test(envs, parity_mountain_car_continuous) { check_parity("MountainCarContinuous-v0"); }
Test(envs, parity_pendulum) { check_parity("Pendulum-v1"); }

/* env_pow2's shortcut (x*x where it cannot differ from pow) against libm's pow(x, 2.0) itself,
 * on values of every scale, squares near powers of two, ties and specials */
Test(envs, pow2_is_libm_pow)
{
    static volatile const double two = 2.0;
    uint64_t rng = 5;
    long differ = 0;
    for (long i = 0; i < 3000000; i++) {
        double x = rng_uniform(&rng, -1, 1) * ldexp(1.0, (int)rng_below(&rng, 80) - 40);
        if (i % 3 == 0) x = sqrt(ldexp(1.0, (int)rng_below(&rng, 200) - 100)) * (1 + ldexp(rng_unit(&rng) - 0.5, -40));
        double a = env_pow2(x), b = pow(x, two);
        cr_assert(a == b || (isnan(a) && isnan(b)), "x = %a: env_pow2 %a, pow %a", x, a, b);
        differ += a != x * x;
    }
    cr_assert_gt(differ, 100, "the sample includes squares where pow is not x*x");
    const double special[] = {0.0, -0.0, 1e-300, -1e-170, 1e200, -1e160, INFINITY, -INFINITY, NAN, 0x1p-537, 3.0};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) {
        double a = env_pow2(special[i]), b = pow(special[i], two);
        cr_assert(a == b || (isnan(a) && isnan(b)), "x = %a", special[i]);
    }
}

/* Gymnasium's registrations (gymnasium/envs/__init__.py) and spaces */
Test(envs, registry)
{
    const int max_steps[] = {500, 500, 200, 999, 200}, obs_dim[] = {4, 6, 2, 2, 3};
    int n = 0;
    for (const env_spec *const *p = env_list(); *p; p++) n++;
    cr_assert_eq(n, 5);
    for (int i = 0; i < 5; i++) {
        const env_spec *e = env_find(ids[i]);
        cr_assert(e, "%s missing", ids[i]);
        cr_assert_eq(e->max_episode_steps, max_steps[i], "%s", ids[i]);
        cr_assert_eq(e->obs_dim, obs_dim[i], "%s", ids[i]);
    }
    cr_assert_eq(env_find("CartPole-v1")->n_actions, 2);
    cr_assert_eq(env_find("Acrobot-v1")->n_actions, 3);
    cr_assert_eq(env_find("Pendulum-v1")->act_high[0], 2.0);
    cr_assert_eq(env_find("MountainCarContinuous-v0")->act_low[0], -1.0);
    cr_assert_null(env_find("CartPole-v0"));
}

/* The reset distributions are Gymnasium's ranges (not its PCG64 numbers): many draws stay inside
 * and come close to both ends. */
Test(envs, reset_ranges)
{
    const double lo[][4] = {{-0.05, -0.05, -0.05, -0.05}, {-0.1, -0.1, -0.1, -0.1}, {-0.6, 0}, {-0.6, 0}, {-M_PI, -1}};
    const double hi[][4] = {{0.05, 0.05, 0.05, 0.05}, {0.1, 0.1, 0.1, 0.1}, {-0.4, 0}, {-0.4, 0}, {M_PI, 1}};
    for (int i = 0; i < 5; i++) {
        const env_spec *e = env_find(ids[i]);
        uint64_t rng = rng_stream(11, (uint64_t)i);
        double mn[ENV_MAX_STATE], mx[ENV_MAX_STATE];
        for (int j = 0; j < e->state_dim; j++) mn[j] = INFINITY, mx[j] = -INFINITY;
        for (int r = 0; r < 4000; r++) {
            double s[ENV_MAX_STATE];
            e->reset(s, &rng);
            for (int j = 0; j < e->state_dim; j++) {
                cr_assert(s[j] >= lo[i][j] && s[j] <= hi[i][j], "%s reset state[%d] = %g", ids[i], j, s[j]);
                if (i == 1) cr_assert_eq(s[j], (double)(float)s[j], "Acrobot's reset state is float32");
                mn[j] = fmin(mn[j], s[j]);
                mx[j] = fmax(mx[j], s[j]);
            }
        }
        for (int j = 0; j < e->state_dim; j++) {
            double w = hi[i][j] - lo[i][j];
            cr_assert(mn[j] - lo[i][j] <= 0.01 * w && hi[i][j] - mx[j] <= 0.01 * w, "%s state[%d] covers [%g, %g]",
                      ids[i], j, mn[j], mx[j]);
        }
    }
}

/* same seed -> same episodes; another seed -> other start states; copy i has its own stream, so
 * it does not depend on how many copies there are */
Test(envs, seeded_resets)
{
    for (int i = 0; i < 5; i++) {
        const env_spec *e = env_find(ids[i]);
        env_vec *a, *b, *c, *d;
        char err[256];
        cr_assert_eq(env_vec_create(&a, ids[i], 8, 42, err, sizeof err), 0, "%s", err);
        cr_assert_eq(env_vec_create(&b, ids[i], 8, 42, err, sizeof err), 0);
        cr_assert_eq(env_vec_create(&c, ids[i], 8, 43, err, sizeof err), 0);
        cr_assert_eq(env_vec_create(&d, ids[i], 3, 42, err, sizeof err), 0);
        float oa[8 * ENV_MAX_OBS], ob[8 * ENV_MAX_OBS], oc[8 * ENV_MAX_OBS], od[3 * ENV_MAX_OBS];
        double act[8 * ENV_MAX_ACT] = {0}, rew[8];
        uint8_t te[8], tr[8];
        for (int rep = 0; rep < 300; rep++) {
            if (rep == 0) {
                env_vec_reset(a, oa);
                env_vec_reset(b, ob);
                env_vec_reset(c, oc);
                env_vec_reset(d, od);
                int same = memcmp(oa, oc, sizeof(float) * 8 * (size_t)e->obs_dim) == 0;
                cr_assert(!same, "%s: seeds 42 and 43 gave the same start states", ids[i]);
            } else {
                for (int k = 0; k < 8; k++) act[k] = e->discrete ? (double)((k + rep) % e->n_actions) : 0.5 - 0.1 * k;
                env_vec_step(a, act, oa, rew, te, tr, NULL, NULL, NULL);
                env_vec_step(b, act, ob, rew, te, tr, NULL, NULL, NULL);
                env_vec_step(d, act, od, rew, te, tr, NULL, NULL, NULL);
            }
            cr_assert_eq(memcmp(oa, ob, sizeof(float) * 8 * (size_t)e->obs_dim), 0, "%s step %d", ids[i], rep);
            cr_assert_eq(memcmp(oa, od, sizeof(float) * 3 * (size_t)e->obs_dim), 0, "%s step %d", ids[i], rep);
        }
        env_vec_free(a);
        env_vec_free(b);
        env_vec_free(c);
        env_vec_free(d);
    }
}

/* Automatic reset on termination (CartPole pushed one way falls within a few dozen steps): the
 * final observation is past a threshold, the returned one is a fresh start, the episode counters
 * restart, and the next step continues from the fresh start. */
Test(envs, vec_autoreset_terminated)
{
    enum { N = 4 };
    env_vec *v;
    char err[256];
    cr_assert_eq(env_vec_create(&v, "CartPole-v1", N, 7, err, sizeof err), 0, "%s", err);
    float obs[N * 4], prev[N * 4], fin[N * 4];
    double act[N], rew[N], ret[N];
    int len[N], steps[N] = {0}, episodes = 0;
    uint8_t te[N], tr[N];
    env_vec_reset(v, obs);
    for (int t = 0; t < 400; t++) {
        memcpy(prev, obs, sizeof obs);
        for (int i = 0; i < N; i++) act[i] = i % 2;
        env_vec_step(v, act, obs, rew, te, tr, fin, ret, len);
        for (int i = 0; i < N; i++) {
            const float *o = obs + i * 4, *p = prev + i * 4, *f = fin + i * 4;
            steps[i]++;
            cr_assert_eq(rew[i], 1.0);
            cr_assert_not(tr[i], "no CartPole episode pushed one way reaches 500 steps");
            /* the state moved on from the previous observation (Euler: x' = x + 0.02 x_dot) */
            const float *from = te[i] ? f : o;
            cr_assert(fabsf(from[0] - (p[0] + 0.02f * p[1])) < 1e-5f, "copy %d step %d continues from the last obs", i, t);
            if (te[i]) {
                episodes++;
                cr_assert(fabsf(f[0]) > 2.4f || fabsf(f[2]) > 0.2094f, "final obs is past a threshold");
                for (int j = 0; j < 4; j++) cr_assert(fabsf(o[j]) <= 0.05f, "the returned obs is a fresh start");
                cr_assert_eq(len[i], steps[i]);
                cr_assert_eq(ret[i], (double)steps[i]);
                steps[i] = 0;
            } else {
                cr_assert_eq(len[i], 0);
                cr_assert_eq(ret[i], 0.0);
            }
        }
    }
    cr_assert_gt(episodes, 4 * N, "episodes ended and restarted");
    env_vec_free(v);
}

/* Truncation at max_episode_steps (Pendulum never terminates): every copy is truncated at steps
 * 200, 400, ... and nowhere else; final_obs is the step's own outcome (physics from the previous
 * observation), the returned obs a fresh start; ep_return is the sum of the episode's rewards. */
Test(envs, vec_truncation)
{
    enum { N = 3 };
    env_vec *v;
    char err[256];
    cr_assert_eq(env_vec_create(&v, "Pendulum-v1", N, 9, err, sizeof err), 0, "%s", err);
    float obs[N * 3], prev[N * 3], fin[N * 3];
    double act[N], rew[N], ret[N], sum[N] = {0};
    int len[N];
    uint8_t te[N], tr[N];
    env_vec_reset(v, obs);
    for (int t = 1; t <= 450; t++) {
        memcpy(prev, obs, sizeof obs);
        for (int i = 0; i < N; i++) act[i] = 1.5 * sin(0.1 * t + i);
        env_vec_step(v, act, obs, rew, te, tr, fin, ret, len);
        for (int i = 0; i < N; i++) {
            sum[i] += rew[i];
            cr_assert_not(te[i]);
            cr_assert_eq(tr[i], t % 200 == 0, "copy %d step %d", i, t);
            const float *p = prev + i * 3, *o = tr[i] ? fin + i * 3 : obs + i * 3;
            double th = atan2(p[1], p[0]);
            double thdot = p[2] + (15 * sin(th) + 3 * act[i]) * 0.05;
            thdot = thdot > 8 ? 8 : thdot < -8 ? -8 : thdot;
            cr_assert(fabs(o[2] - thdot) < 1e-4, "copy %d step %d: thdot %g, expected %g", i, t, (double)o[2], thdot);
            if (tr[i]) {
                cr_assert_eq(len[i], 200);
                cr_assert_eq(ret[i], sum[i], "episodic return is the sum of the rewards");
                cr_assert(fabsf(obs[i * 3 + 2]) <= 1.0f, "fresh start: |thdot| <= 1");
                sum[i] = 0;
            }
        }
    }
    env_vec_free(v);
}

/* Bad replay input: one error line naming the line, non-zero exit, nothing after it. */
Test(envs, replay_errors)
{
    const char *dir = tu_tmpdir("envs_err");
    struct {
        const char *text, *needle;
    } cases[] = {
        {"{\"env\":\"CartPole-v1\",\"init_state\":[0,0,0,0],\"actions\":[0]}\n{\"env\":\"CartPole-v1\",", ":2: invalid JSON"},
        {"{\"env\":\"CartPole-v2\",\"init_state\":[0,0,0,0],\"actions\":[0]}\n", "unknown env"},
        {"{\"env\":\"CartPole-v1\",\"init_state\":[0,0,0],\"actions\":[0]}\n", "4 numbers"},
        {"\n{\"env\":\"CartPole-v1\",\"init_state\":[0,0,0,0],\"actions\":[1,2]}\n", ":2: actions[1] must be an integer 0..1"},
        {"{\"env\":\"Pendulum-v1\",\"init_state\":[0,0],\"actions\":[0.5,\"x\"]}\n", "actions[1]"},
        {"{\"env\":\"Pendulum-v1\",\"init_state\":[0,0],\"actions\":[[0.5,1]]}\n", "actions[0]"},
        {"[1,2]\n", "expected an object"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/in%zu.jsonl", dir, c);
        tu_write(path, cases[c].text, strlen(cases[c].text));
        char *out, *err;
        int rc = tu_run("env replay", path, &out, &err);
        cr_assert_neq(rc, 0, "case %zu accepted", c);
        cr_assert(strstr(err, cases[c].needle), "case %zu: '%s' does not say '%s'", c, err, cases[c].needle);
        cr_assert_eq(tu_lines(err), 1, "case %zu: one error line, got '%s'", c, err);
        free(out);
        free(err);
    }
}

/* Both spellings of a continuous action, 0.3 and [0.3], are the same action; the output stops at
 * the truncation step even when more actions follow. */
Test(envs, replay_continuous_spellings)
{
    const char *dir = tu_tmpdir("envs_cont");
    char in[4200];
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    char *text = malloc(8000), *p = text;
    for (int line = 0; line < 2; line++) {
        p += sprintf(p, "{\"env\":\"Pendulum-v1\",\"init_state\":[1.0,0.5],\"actions\":[");
        for (int t = 0; t < 210; t++) p += sprintf(p, line ? "%s[%.2f]" : "%s%.2f", t ? "," : "", -3 + 0.03 * t);
        p += sprintf(p, "]}\n");
    }
    tu_write(in, text, (size_t)(p - text));
    char *out, *err;
    cr_assert_eq(tu_run("env replay", in, &out, &err), 0, "%s", err);
    char *nl = strchr(out, '\n');
    cr_assert(nl && strchr(nl + 1, '\n'));
    cr_assert_eq(strncmp(out, nl + 1, (size_t)(nl - out)), 0, "0.3 and [0.3] replay the same");
    char *s = out;
    json_t *j = next_json(&s);
    cr_assert_eq(json_array_size(json_object_get(j, "rewards")), 200);
    cr_assert(json_is_true(json_array_get(json_object_get(j, "truncated"), 199)));
    cr_assert(json_is_false(json_array_get(json_object_get(j, "truncated"), 198)));
    json_decref(j);
    free(text);
    free(out);
    free(err);
}
