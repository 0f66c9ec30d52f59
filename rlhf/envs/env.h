/* env.h — classic-control environments identical to Gymnasium 1.x, one at a time and vectorized.
 *
 * Each environment is a table of pure functions over a float64 state (the same numbers Gymnasium
 * keeps in env.unwrapped.state), so one state can be replayed against Gymnasium exactly and N of
 * them can be stepped together. Observations are float32, as Gymnasium returns them.
 *
 * Actions: discrete envs take an index 0..n_actions-1; continuous envs take act_dim doubles
 * (clipped inside step exactly where Gymnasium clips). Both arrive as doubles in env_step so one
 * signature serves every env; a discrete action is its index as a double.
 *
 * The vectorized form (env_vec) owns N states, their step counters and RNG streams, and resets an
 * episode that ended inside env_vec_step (Gymnasium's "same-step" autoreset): the observation
 * returned is the new episode's first one, and the final observation of the finished episode is
 * kept in final_obs so a truncated episode can be bootstrapped from it. */
#ifndef RLHF_ENV_H
#define RLHF_ENV_H

#include <stddef.h>
#include <stdint.h>

#define ENV_MAX_STATE 8
#define ENV_MAX_OBS 8
#define ENV_MAX_ACT 4

typedef struct env_spec {
    const char *id;        /* "CartPole-v1" */
    int state_dim;         /* length of env.unwrapped.state */
    int obs_dim;
    int discrete;          /* 1: n_actions choices; 0: act_dim doubles in [act_low, act_high] */
    int n_actions;
    int act_dim;
    double act_low[ENV_MAX_ACT], act_high[ENV_MAX_ACT];
    int max_episode_steps; /* truncation (Gymnasium's TimeLimit) */
    /* draw a start state from the reset distribution; rng is the caller's splitmix64 state */
    void (*reset)(double *state, uint64_t *rng);
    /* one step in place; writes the reward and whether the episode terminated (not truncation,
     * which the step counter decides) */
    void (*step)(double *state, const double *action, double *reward, int *terminated);
    /* the float32 observation of a state */
    void (*observe)(const double *state, float *obs);
} env_spec;

/* the spec of an env id, or NULL */
const env_spec *env_find(const char *id);
/* all specs, NULL-terminated (for help texts and benchmarks) */
const env_spec *const *env_list(void);

/* Replay for checking against Gymnasium: start from `state` (state_len numbers, what Gymnasium
 * keeps in env.unwrapped.state; step counter 0), apply up to n_steps actions ([n_steps, act_dim];
 * discrete: the index as a double), and stop after the first step that terminated or truncated.
 * Writes obs [k, obs_dim], reward, terminated, truncated [k] (room for n_steps each) and returns
 * k, the steps applied; -1 with a message for a wrong state length, a non-finite state value or a
 * discrete action that is not an index ("action 7: ..."). */
int env_replay(const env_spec *e, const double *state, int state_len, const double *actions, int n_steps,
               float *obs, double *reward, uint8_t *terminated, uint8_t *truncated, char *err, size_t errlen);

typedef struct env_vec env_vec;

/* N copies of env `id`, seeded: copy i draws from its own stream of `seed` */
int env_vec_create(env_vec **out, const char *id, int n, uint64_t seed, char *err, size_t errlen);
void env_vec_free(env_vec *v);
const env_spec *env_vec_spec(const env_vec *v);
int env_vec_n(const env_vec *v);

/* reset every copy; obs: [n, obs_dim] */
void env_vec_reset(env_vec *v, float *obs);

/* step every copy with actions [n, act_dim] (discrete: [n], the index as a double).
 * obs: [n, obs_dim] next observations (after an automatic reset where an episode ended);
 * reward, terminated, truncated: [n]; final_obs: [n, obs_dim], the last observation of an episode
 * that ended at this step (undefined elsewhere; may be NULL).
 * ep_return / ep_length: [n], when non-NULL, the finished episode's return and length where one
 * ended (0 elsewhere) — the values CleanRL logs as episodic_return / episodic_length. */
void env_vec_step(env_vec *v, const double *actions, float *obs, double *reward, uint8_t *terminated,
                  uint8_t *truncated, float *final_obs, double *ep_return, int *ep_length);

#endif
