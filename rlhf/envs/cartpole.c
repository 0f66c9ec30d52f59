/* cartpole.c — CartPole-v1 exactly as Gymnasium 1.x's classic_control/cartpole.py.
 *
 * State (float64, Gymnasium's env.unwrapped.state): x, x_dot, theta, theta_dot. Explicit Euler
 * with tau = 0.02; +1 reward every step including the terminating one; terminated when |x| > 2.4 or
 * |theta| > 12 degrees (strictly beyond, tested on the float64 state); truncated at 500 steps.
 * Every expression keeps Python's left-to-right order of operations so that the float64 results
 * are bit for bit Gymnasium's (the build is ISO C, so the compiler does not fuse a*b+c into FMA). */
#include "env.h"
#include "rng.h"

#include <math.h>

#define GRAVITY 9.8
#define MASSCART 1.0
#define MASSPOLE 0.1
#define TOTAL_MASS (MASSPOLE + MASSCART)
#define LENGTH 0.5 /* half the pole's length */
#define POLEMASS_LENGTH (MASSPOLE * LENGTH)
#define FORCE_MAG 10.0
#define TAU 0.02
#define X_THRESHOLD 2.4

static void cartpole_reset(double *s, uint64_t *rng)
{
    for (int i = 0; i < 4; i++) s[i] = rng_uniform(rng, -0.05, 0.05);
}

static void cartpole_step(double *s, const double *action, double *reward, int *terminated)
{
    const double theta_threshold = 12 * 2 * M_PI / 360;
    double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3];
    double force = action[0] == 1 ? FORCE_MAG : -FORCE_MAG;
    double costheta = cos(theta);
    double sintheta = sin(theta);
    double temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
    double thetaacc = (GRAVITY * sintheta - costheta * temp) /
                      (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
    double xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    x = x + TAU * x_dot;
    x_dot = x_dot + TAU * xacc;
    theta = theta + TAU * theta_dot;
    theta_dot = theta_dot + TAU * thetaacc;
    s[0] = x;
    s[1] = x_dot;
    s[2] = theta;
    s[3] = theta_dot;
    *terminated = x < -X_THRESHOLD || x > X_THRESHOLD || theta < -theta_threshold || theta > theta_threshold;
    *reward = 1.0;
}

static void cartpole_observe(const double *s, float *obs)
{
    for (int i = 0; i < 4; i++) obs[i] = (float)s[i];
}

const env_spec env_cartpole = {
    .id = "CartPole-v1",
    .state_dim = 4,
    .obs_dim = 4,
    .discrete = 1,
    .n_actions = 2,
    .act_dim = 1,
    .max_episode_steps = 500,
    .reset = cartpole_reset,
    .step = cartpole_step,
    .observe = cartpole_observe,
};
