/* mountain_car_continuous.c — MountainCarContinuous-v0 exactly as Gymnasium 1.x's
 * classic_control/continuous_mountain_car.py (with numpy 1.x's scalar promotion rules).
 *
 * State: position, velocity. The force is the action clipped to [-1, 1];
 * velocity += force * 0.0015 - 0.0025 * cos(3 * position), clipped to +-0.07; position +=
 * velocity, clipped to [-1.2, 0.6]; the left wall stops a car moving left. Terminated when
 * position >= 0.45 and velocity >= 0 (on the float64 values); reward 100 on that step, minus
 * 0.1 * action^2 on every step with the *unclipped* action (libm pow, as Python's math.pow).
 * Gymnasium then stores the state as float32, so the state carried to the next step is rounded
 * to float32 here too. Truncated at 999 steps. Reset: position U(-0.6, -0.4), velocity 0. */
#include "env.h"
#include "envmath.h"
#include "rng.h"

#include <math.h>

#define MIN_ACTION -1.0
#define MAX_ACTION 1.0
#define MIN_POSITION -1.2
#define MAX_POSITION 0.6
#define MAX_SPEED 0.07
#define GOAL_POSITION 0.45
#define POWER 0.0015

static void mcc_reset(double *s, uint64_t *rng)
{
    s[0] = rng_uniform(rng, -0.6, -0.4);
    s[1] = 0;
}

static void mcc_step(double *s, const double *action, double *reward, int *terminated)
{
    double position = s[0], velocity = s[1];
    /* Python's min(max(action[0], min_action), max_action) */
    double a = action[0];
    double force = MIN_ACTION > a ? MIN_ACTION : a;
    force = MAX_ACTION < force ? MAX_ACTION : force;
    velocity += force * POWER - 0.0025 * cos(3 * position);
    if (velocity > MAX_SPEED) velocity = MAX_SPEED;
    if (velocity < -MAX_SPEED) velocity = -MAX_SPEED;
    position += velocity;
    if (position > MAX_POSITION) position = MAX_POSITION;
    if (position < MIN_POSITION) position = MIN_POSITION;
    if (position == MIN_POSITION && velocity < 0) velocity = 0;
    *terminated = position >= GOAL_POSITION && velocity >= 0;
    double r = *terminated ? 100.0 : 0.0;
    *reward = r - env_pow2(a) * 0.1;
    s[0] = (float)position;
    s[1] = (float)velocity;
}

static void mcc_observe(const double *s, float *obs)
{
    obs[0] = (float)s[0];
    obs[1] = (float)s[1];
}

const env_spec env_mountain_car_continuous = {
    .id = "MountainCarContinuous-v0",
    .state_dim = 2,
    .obs_dim = 2,
    .discrete = 0,
    .n_actions = 0,
    .act_dim = 1,
    .act_low = {-1.0},
    .act_high = {1.0},
    .max_episode_steps = 999,
    .reset = mcc_reset,
    .step = mcc_step,
    .observe = mcc_observe,
};
