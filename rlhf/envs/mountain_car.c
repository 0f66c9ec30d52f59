/* mountain_car.c — MountainCar-v0 exactly as Gymnasium 1.x's classic_control/mountain_car.py.
 *
 * State (float64): position, velocity. Actions 0 (push left), 1 (none), 2 (push right).
 * velocity += (a - 1) * 0.001 + cos(3 * position) * (-0.0025), clipped to +-0.07; position +=
 * velocity, clipped to [-1.2, 0.6]; hitting the left wall while moving left sets velocity to 0.
 * Reward -1 per step; terminated when position >= 0.5 and velocity >= 0; truncated at 200 steps.
 * Reset: position U(-0.6, -0.4), velocity 0. Python's math.cos is libm's cos, as here; the
 * operations keep Python's order so the float64 state is bit for bit Gymnasium's. */
#include "env.h"
#include "envmath.h"
#include "rng.h"

#include <math.h>

#define MIN_POSITION -1.2
#define MAX_POSITION 0.6
#define MAX_SPEED 0.07
#define GOAL_POSITION 0.5
#define FORCE 0.001
#define GRAVITY 0.0025

static void mountain_car_reset(double *s, uint64_t *rng)
{
    s[0] = rng_uniform(rng, -0.6, -0.4);
    s[1] = 0;
}

static void mountain_car_step(double *s, const double *action, double *reward, int *terminated)
{
    double position = s[0], velocity = s[1];
    velocity += ((int)action[0] - 1) * FORCE + cos(3 * position) * (-GRAVITY);
    velocity = env_clip(velocity, -MAX_SPEED, MAX_SPEED);
    position += velocity;
    position = env_clip(position, MIN_POSITION, MAX_POSITION);
    if (position == MIN_POSITION && velocity < 0) velocity = 0;
    *terminated = position >= GOAL_POSITION && velocity >= 0;
    *reward = -1.0;
    s[0] = position;
    s[1] = velocity;
}

static void mountain_car_observe(const double *s, float *obs)
{
    obs[0] = (float)s[0];
    obs[1] = (float)s[1];
}

const env_spec env_mountain_car = {
    .id = "MountainCar-v0",
    .state_dim = 2,
    .obs_dim = 2,
    .discrete = 1,
    .n_actions = 3,
    .act_dim = 1,
    .max_episode_steps = 200,
    .reset = mountain_car_reset,
    .step = mountain_car_step,
    .observe = mountain_car_observe,
};
