/* pendulum.c — Pendulum-v1 exactly as Gymnasium 1.x's classic_control/pendulum.py.
 *
 * State (float64): th, thdot. The torque u is the action clipped to [-2, 2]; the cost
 * normalize(th)^2 + 0.1 * thdot^2 + 0.001 * u^2 is computed on the state before the step (the
 * reward is its negative); then thdot += (15 sin(th) + 3 u) * 0.05, clipped to +-8, and
 * th += thdot * 0.05. Never terminates; truncated at 200 steps. Observation: cos th, sin th,
 * thdot. Reset: th U(-pi, pi), thdot U(-1, 1). The angle normalisation is Python's float `%`
 * (sign of the divisor), and squares are libm pow, as numpy's (envmath.h). */
#include "env.h"
#include "envmath.h"
#include "rng.h"

#include <math.h>

#define MAX_SPEED 8
#define MAX_TORQUE 2.0
#define DT 0.05
#define G 10.0
#define M 1.0
#define L 1.0

/* numpy's float64 remainder (Python's `%`): the result takes the sign of the divisor */
static double py_mod(double a, double b)
{
    double mod = fmod(a, b);
    if (mod != 0) {
        if ((b < 0) != (mod < 0)) mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}

/* ((x + pi) % (2 * pi)) - pi */
static double angle_normalize(double x) { return py_mod(x + M_PI, 2 * M_PI) - M_PI; }

static void pendulum_reset(double *s, uint64_t *rng)
{
    s[0] = rng_uniform(rng, -M_PI, M_PI);
    s[1] = rng_uniform(rng, -1.0, 1.0);
}

static void pendulum_step(double *s, const double *action, double *reward, int *terminated)
{
    double th = s[0], thdot = s[1];
    double u = env_clip(action[0], -MAX_TORQUE, MAX_TORQUE);
    double costs = env_pow2(angle_normalize(th)) + 0.1 * env_pow2(thdot) + 0.001 * env_pow2(u);
    double newthdot = thdot + (3 * G / (2 * L) * sin(th) + 3.0 / (M * (L * L)) * u) * DT;
    newthdot = env_clip(newthdot, -MAX_SPEED, MAX_SPEED);
    double newth = th + newthdot * DT;
    s[0] = newth;
    s[1] = newthdot;
    *reward = -costs;
    *terminated = 0;
}

static void pendulum_observe(const double *s, float *obs)
{
    obs[0] = (float)cos(s[0]);
    obs[1] = (float)sin(s[0]);
    obs[2] = (float)s[1];
}

const env_spec env_pendulum = {
    .id = "Pendulum-v1",
    .state_dim = 2,
    .obs_dim = 3,
    .discrete = 0,
    .n_actions = 0,
    .act_dim = 1,
    .act_low = {-2.0},
    .act_high = {2.0},
    .max_episode_steps = 200,
    .reset = pendulum_reset,
    .step = pendulum_step,
    .observe = pendulum_observe,
};
