/* acrobot.c — Acrobot-v1 exactly as Gymnasium 1.x's classic_control/acrobot.py.
 *
 * State (float64): theta1, theta2, dtheta1, dtheta2. One step is one classical RK4 step of
 * dt = 0.2 on the "book" dynamics with the torque (-1, 0, +1) held as a fifth state component,
 * then both angles wrapped into [-pi, pi] by repeated +-2pi and the velocities clipped to
 * +-4pi / +-9pi. Reward -1 per step, 0 on the terminating step (tip above the bar:
 * -cos(t1) - cos(t2 + t1) > 1); truncated at 500 steps. The reset draws U(-0.1, 0.1) and rounds it
 * to float32, as Gymnasium does.
 *
 * The system is chaotic, so every expression keeps Python's order of operations (left to right,
 * constants folded the same way): the float64 results are bit for bit Gymnasium's. numpy's
 * `x**2` on a float64 scalar is libm's pow(x, 2), not x*x (see envmath.h). */
#include "env.h"
#include "envmath.h"
#include "rng.h"

#include <math.h>

#define DT 0.2
#define L1 1.0   /* link lengths */
#define M1 1.0   /* link masses */
#define M2 1.0
#define LC1 0.5  /* centres of mass */
#define LC2 0.5
#define I1 1.0   /* moments of inertia */
#define I2 1.0
#define G 9.8
#define MAX_VEL_1 (4 * M_PI)
#define MAX_VEL_2 (9 * M_PI)

/* the derivative of (theta1, theta2, dtheta1, dtheta2) under torque a ("book" dynamics) */
static void dsdt(const double *s, double a, double *ds)
{
    const double theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
    /* Python: m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos(theta2)) + I1 + I2 */
    double d1 = M1 * (LC1 * LC1) + M2 * ((L1 * L1) + (LC2 * LC2) + 2 * L1 * LC2 * cos(theta2)) + I1 + I2;
    double d2 = M2 * ((LC2 * LC2) + L1 * LC2 * cos(theta2)) + I2;
    double phi2 = M2 * LC2 * G * cos(theta1 + theta2 - M_PI / 2.0);
    double phi1 = -M2 * L1 * LC2 * env_pow2(dtheta2) * sin(theta2) - 2 * M2 * L1 * LC2 * dtheta2 * dtheta1 * sin(theta2) +
                  (M1 * LC1 + M2 * L1) * G * cos(theta1 - M_PI / 2) + phi2;
    double ddtheta2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * env_pow2(dtheta1) * sin(theta2) - phi2) /
                      (M2 * (LC2 * LC2) + I2 - env_pow2(d2) / d1);
    double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    ds[0] = dtheta1;
    ds[1] = dtheta2;
    ds[2] = ddtheta1;
    ds[3] = ddtheta2;
}

/* Gymnasium's wrap(): shift by the period until inside [m, M]. The no-progress test only fires
 * where Python would loop for ever (|x| so large that x - diff == x). */
static double wrap(double x, double m, double M)
{
    double diff = M - m;
    while (x > M && x - diff != x) x = x - diff;
    while (x < m && x + diff != x) x = x + diff;
    return x;
}

/* Python's min(max(x, m), M) */
static double bound(double x, double m, double M)
{
    double y = m > x ? m : x;
    return M < y ? M : y;
}

static void acrobot_reset(double *s, uint64_t *rng)
{
    for (int i = 0; i < 4; i++) s[i] = (float)rng_uniform(rng, -0.1, 0.1);
}

static void acrobot_step(double *s, const double *action, double *reward, int *terminated)
{
    static const double torques[3] = {-1.0, 0.0, +1};
    const double torque = torques[(int)action[0]];
    /* rk4(derivs, y0, [0, dt]) on the augmented state; the torque's derivative is 0, so it stays */
    const double dt = DT - 0, dt2 = dt / 2.0;
    double k1[4], k2[4], k3[4], k4[4], y[4];
    dsdt(s, torque, k1);
    for (int i = 0; i < 4; i++) y[i] = s[i] + dt2 * k1[i];
    dsdt(y, torque, k2);
    for (int i = 0; i < 4; i++) y[i] = s[i] + dt2 * k2[i];
    dsdt(y, torque, k3);
    for (int i = 0; i < 4; i++) y[i] = s[i] + dt * k3[i];
    dsdt(y, torque, k4);
    double ns[4];
    for (int i = 0; i < 4; i++) ns[i] = s[i] + dt / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
    s[0] = wrap(ns[0], -M_PI, M_PI);
    s[1] = wrap(ns[1], -M_PI, M_PI);
    s[2] = bound(ns[2], -MAX_VEL_1, MAX_VEL_1);
    s[3] = bound(ns[3], -MAX_VEL_2, MAX_VEL_2);
    *terminated = -cos(s[0]) - cos(s[1] + s[0]) > 1.0;
    *reward = *terminated ? 0.0 : -1.0;
}

static void acrobot_observe(const double *s, float *obs)
{
    obs[0] = (float)cos(s[0]);
    obs[1] = (float)sin(s[0]);
    obs[2] = (float)cos(s[1]);
    obs[3] = (float)sin(s[1]);
    obs[4] = (float)s[2];
    obs[5] = (float)s[3];
}

const env_spec env_acrobot = {
    .id = "Acrobot-v1",
    .state_dim = 4,
    .obs_dim = 6,
    .discrete = 1,
    .n_actions = 3,
    .act_dim = 1,
    .max_episode_steps = 500,
    .reset = acrobot_reset,
    .step = acrobot_step,
    .observe = acrobot_observe,
};
