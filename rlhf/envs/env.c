/* env.c — the env registry and the vectorized stepper shared by every classic-control env.
 *
 * The per-env files only know one state; this file owns N of them, their step counters (for
 * Gymnasium's TimeLimit truncation), their RNG streams and the running episode statistics, and
 * applies the same-step automatic reset. */
#include "env.h"

#include "fileio.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the registry: every env file exports one spec */
extern const env_spec env_cartpole, env_acrobot, env_mountain_car, env_mountain_car_continuous, env_pendulum;
static const env_spec *const registry[] = {
    &env_cartpole,
    &env_acrobot,
    &env_mountain_car,
    &env_mountain_car_continuous,
    &env_pendulum,
    NULL,
};

const env_spec *env_find(const char *id)
{
    for (size_t i = 0; registry[i]; i++)
        if (strcmp(registry[i]->id, id) == 0) return registry[i];
    return NULL;
}

const env_spec *const *env_list(void) { return registry; }

int env_replay(const env_spec *e, const double *state, int state_len, const double *actions, int n_steps,
               float *obs, double *reward, uint8_t *terminated, uint8_t *truncated, char *err, size_t errlen)
{
    if (state_len != e->state_dim)
        return fio_fail(err, errlen, "%s: init_state has %d values, the state has %d", e->id, state_len, e->state_dim);
    double s[ENV_MAX_STATE];
    for (int i = 0; i < state_len; i++) {
        if (!isfinite(state[i])) return fio_fail(err, errlen, "init_state[%d] is not a finite number", i);
        s[i] = state[i];
    }
    const int ad = e->discrete ? 1 : e->act_dim;
    for (int t = 0; t < n_steps; t++) {
        const double *a = actions + (size_t)t * ad;
        if (e->discrete && !(a[0] >= 0 && a[0] < e->n_actions && a[0] == (int)a[0]))
            return fio_fail(err, errlen, "action %d: %.17g is not one of 0..%d", t, a[0], e->n_actions - 1);
    }
    for (int t = 0; t < n_steps; t++) {
        int term = 0;
        e->step(s, actions + (size_t)t * ad, &reward[t], &term);
        e->observe(s, obs + (size_t)t * e->obs_dim);
        terminated[t] = (uint8_t)term;
        truncated[t] = (uint8_t)(t + 1 >= e->max_episode_steps);
        if (terminated[t] || truncated[t]) return t + 1;
    }
    return n_steps;
}

struct env_vec {
    const env_spec *spec;
    int n;
    double *state; /* [n, ENV_MAX_STATE] */
    uint64_t *rng; /* [n] */
    int *steps;    /* [n] steps in the running episode */
    double *ret;   /* [n] running return */
};

int env_vec_create(env_vec **out, const char *id, int n, uint64_t seed, char *err, size_t errlen)
{
    *out = NULL;
    const env_spec *spec = env_find(id);
    if (!spec) {
        char shown[64];
        return fio_fail(err, errlen, "unknown env '%s'", fio_show(id, shown, sizeof shown));
    }
    if (n < 1) return fio_fail(err, errlen, "env count must be >= 1 (got %d)", n);
    env_vec *v = calloc(1, sizeof *v);
    if (!v) return fio_fail(err, errlen, "out of memory");
    v->spec = spec;
    v->n = n;
    v->state = calloc((size_t)n * ENV_MAX_STATE, sizeof *v->state);
    v->rng = calloc((size_t)n, sizeof *v->rng);
    v->steps = calloc((size_t)n, sizeof *v->steps);
    v->ret = calloc((size_t)n, sizeof *v->ret);
    if (!v->state || !v->rng || !v->steps || !v->ret) {
        env_vec_free(v);
        return fio_fail(err, errlen, "out of memory");
    }
    for (int i = 0; i < n; i++) v->rng[i] = rng_stream(seed, (uint64_t)i);
    *out = v;
    return 0;
}

void env_vec_free(env_vec *v)
{
    if (!v) return;
    free(v->state);
    free(v->rng);
    free(v->steps);
    free(v->ret);
    free(v);
}

const env_spec *env_vec_spec(const env_vec *v) { return v->spec; }
int env_vec_n(const env_vec *v) { return v->n; }

void env_vec_reset(env_vec *v, float *obs)
{
    const env_spec *e = v->spec;
    for (int i = 0; i < v->n; i++) {
        double *s = v->state + (size_t)i * ENV_MAX_STATE;
        e->reset(s, &v->rng[i]);
        e->observe(s, obs + (size_t)i * e->obs_dim);
        v->steps[i] = 0;
        v->ret[i] = 0;
    }
}

void env_vec_step(env_vec *v, const double *actions, float *obs, double *reward, uint8_t *terminated,
                  uint8_t *truncated, float *final_obs, double *ep_return, int *ep_length)
{
    const env_spec *e = v->spec;
    const int ad = e->discrete ? 1 : e->act_dim;
    for (int i = 0; i < v->n; i++) {
        double *s = v->state + (size_t)i * ENV_MAX_STATE;
        float *o = obs + (size_t)i * e->obs_dim;
        int term = 0;
        e->step(s, actions + (size_t)i * ad, &reward[i], &term);
        v->steps[i]++;
        v->ret[i] += reward[i];
        /* as Gymnasium's TimeLimit: both flags can be set at once; a consumer checks terminated first */
        int trunc = v->steps[i] >= e->max_episode_steps;
        terminated[i] = (uint8_t)term;
        truncated[i] = (uint8_t)trunc;
        if (ep_return) ep_return[i] = 0;
        if (ep_length) ep_length[i] = 0;
        if (term || trunc) {
            if (final_obs) e->observe(s, final_obs + (size_t)i * e->obs_dim);
            if (ep_return) ep_return[i] = v->ret[i];
            if (ep_length) ep_length[i] = v->steps[i];
            e->reset(s, &v->rng[i]);
            v->steps[i] = 0;
            v->ret[i] = 0;
        }
        e->observe(s, o);
    }
}
