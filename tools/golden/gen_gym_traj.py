"""gen_gym_traj.py - classic-control trajectories from Gymnasium 1.x, for the replay parity test.

    /usr/bin/python3 tools/golden/gen_gym_traj.py --gym DIR [--out tests/data/envs] [--scale K]
                     [--numpy-simd]

DIR is a Gymnasium 1.x source tree (the folder holding gymnasium/); nothing from it is copied.
For each env it writes two files: <ID>.in.jsonl, the input `rlhf env replay` reads (one episode
per line: {"env", "init_state", "actions"}), and <ID>.out.jsonl, what Gymnasium returned for it
({"obs", "rewards", "terminated", "truncated"}, stopping at the first terminated or truncated
step). Start states: Gymnasium's own resets, states visited mid-episode, uniform states in wide
boxes, and hand-picked edge states (exactly at and one ulp beyond the thresholds, walls, velocity
limits, angles far outside [-pi, pi]); actions: random, out of range for the continuous envs, and
closed-loop policies that balance / pump energy so that episodes also run to truncation or reach
the goal. --scale multiplies the number of random episodes (the committed files use 1; larger
values make a bigger private check). Deterministic for a given seed.

numpy on AVX-512 machines computes float64 sin/cos with its bundled SVML (up to ~3 ulp, not
libm's correctly rounded results), so Gymnasium's trajectories then depend on the machine. This
script turns those AVX-512 kernels off (NPY_DISABLE_CPU_FEATURES) and checks that np.sin/np.cos
equal math.sin/math.cos, so the reference is the portable one; --numpy-simd keeps them (to
measure the difference).

Floats are written as Python's shortest round-trip repr; observations as the shortest decimal
of the float32 value (checked to come back exactly when read as a double and rounded to float32).
"""
import argparse
import json
import math
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gym_src import import_gymnasium  # noqa: E402


def setup_numpy(keep_simd):
    """Re-exec once with numpy's AVX-512 dispatch off unless it already matches libm."""
    import numpy as np

    xs = np.linspace(-10, 10, 20001)
    same = all(float(np.sin(np.float64(x))) == math.sin(x) and float(np.cos(np.float64(x))) == math.cos(x)
               for x in xs)
    if same or keep_simd:
        return np, same
    if os.environ.get("NPY_DISABLE_CPU_FEATURES"):
        sys.exit("numpy's float64 sin/cos still differ from libm with NPY_DISABLE_CPU_FEATURES=%s"
                 % os.environ["NPY_DISABLE_CPU_FEATURES"])
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    off = [f for f in __cpu_dispatch__ if f.startswith("AVX512") and __cpu_features__.get(f)]
    os.environ["NPY_DISABLE_CPU_FEATURES"] = " ".join(off)
    os.execv(sys.executable, [sys.executable] + sys.argv)


def f32_str(np, v):
    """shortest decimal of a float32 that survives str -> double -> float32"""
    s = str(np.float32(v))
    if np.float32(float(s)) != np.float32(v):
        s = repr(float(v))
    return s


def run_episode(gym, np, env_id, init_state, policy, rng, max_steps):
    """Gymnasium from init_state (None: a real reset, seed taken from rng) with the policy;
    returns (init_state, actions, out)"""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    if init_state is None:
        init_state = [float(x) for x in np.asarray(env.unwrapped.state)]
    else:
        env.unwrapped.state = np.array(init_state, dtype=np.float64)
        obs = None
    continuous = isinstance(env.action_space, gym.spaces.Box)
    actions, out = [], {"obs": [], "rewards": [], "terminated": [], "truncated": []}
    state = np.array(env.unwrapped.state, dtype=np.float64)
    for t in range(max_steps):
        a = policy(state, obs, t)
        actions.append(a)
        obs, r, term, trunc, _ = env.step(np.array([a], dtype=np.float64) if continuous else int(a))
        out["obs"].append([f32_str(np, v) for v in obs])
        out["rewards"].append(float(r))
        out["terminated"].append(bool(term))
        out["truncated"].append(bool(trunc))
        state = np.array(env.unwrapped.state, dtype=np.float64)
        if term or trunc:
            break
    env.close()
    return init_state, actions, out


def nudge(np, x, d):
    """x moved by d ulps (d = +-1)"""
    return float(np.nextafter(x, math.inf if d > 0 else -math.inf))


# ---- per-env cases: (init_state or None, policy, steps) ----

def cases_cartpole(np, rng, scale):
    th = 12 * 2 * math.pi / 360
    rnd = lambda s, o, t: int(rng.integers(2))  # noqa: E731

    def balance(eps):
        def p(s, o, t):
            if rng.random() < eps:
                return int(rng.integers(2))
            x, xd, a, ad = s
            return int(a + 0.5 * ad + 0.02 * x + 0.05 * xd > 0)
        return p

    out = []
    for _ in range(30 * scale):
        out.append((None, rnd, 600))
    for _ in range(20 * scale):
        box = [rng.uniform(-2.4, 2.4), rng.uniform(-2, 2), rng.uniform(-th, th), rng.uniform(-2, 2)]
        out.append((box, rnd, 600))
    for _ in range(scale):
        out.append((None, balance(0.1), 600))  # to truncation at 500
    for _ in range(scale):
        out.append((None, balance(0.3), 600))
    for x in (2.4, -2.4, nudge(np, 2.4, 1), nudge(np, -2.4, -1), nudge(np, 2.4, -1), 3.0, -4.8):
        for a in (0, 1):
            out.append(([x, 0.0, 0.0, 0.0], lambda s, o, t, a=a: a, 600))
    for x in (th, -th, nudge(np, th, 1), nudge(np, -th, -1), nudge(np, th, -1), 0.3):
        for a in (0, 1):
            out.append(([0.0, 0.0, x, 0.0], lambda s, o, t, a=a: a, 600))
    out.append(([2.39, 0.5, 0.0, 0.0], rnd, 600))
    out.append(([0.0, 0.0, 0.2, 0.01], rnd, 600))
    return out


def cases_acrobot(np, rng, scale):
    v1, v2 = 4 * math.pi, 9 * math.pi
    rnd = lambda s, o, t: int(rng.integers(3))  # noqa: E731

    def pump(eps):
        def p(s, o, t):
            if rng.random() < eps:
                return int(rng.integers(3))
            return 2 if s[3] > 0 else 0  # torque along the second joint's motion
        return p

    out = []
    for _ in range(scale):
        out.append((None, rnd, 600))  # mostly to truncation at 500
    for _ in range(6 * scale):
        out.append((None, pump(0.1), 600))
    for _ in range(14 * scale):
        box = [rng.uniform(-math.pi, math.pi), rng.uniform(-math.pi, math.pi), rng.uniform(-v1, v1),
               rng.uniform(-v2, v2)]
        out.append((box, rnd, 40))
    edges = [[0, 0, v1, v2], [0, 0, -v1, -v2], [0, 0, nudge(np, v1, 1), nudge(np, -v2, -1)],
             [0, 0, 20.0, -40.0], [math.pi, 0, 0, 0], [-math.pi, math.pi, 0, 0], [10.0, -25.0, 1.0, -1.0],
             [100.0, 3.2, 0, 0], [math.pi, 0.0, v1, v2], [2.0, 2 * math.pi / 3 - 2.0 + 1e-9, 0, 0],
             [2.0, 2 * math.pi / 3 - 2.0 - 1e-9, 0, 0], [3.0, 0.0, 0.0, 0.0]]
    for e in edges:
        for a in (0, 2):
            out.append(([float(x) for x in e], lambda s, o, t, a=a: a, 30))
        out.append(([float(x) for x in e], rnd, 30))
    return out


def cases_mountain_car(np, rng, scale):
    rnd = lambda s, o, t: int(rng.integers(3))  # noqa: E731

    def pump(eps):
        def p(s, o, t):
            if rng.random() < eps:
                return int(rng.integers(3))
            return 2 if s[1] >= 0 else 0
        return p

    out = []
    for _ in range(2 * scale):
        out.append((None, rnd, 300))  # to truncation at 200
    for _ in range(4 * scale):
        out.append((None, pump(0.1), 300))  # to the goal
    for _ in range(16 * scale):
        out.append(([rng.uniform(-1.2, 0.6), rng.uniform(-0.07, 0.07)], rnd, 30))
    for _ in range(6 * scale):
        out.append(([rng.uniform(0.3, 0.6), rng.uniform(-0.07, 0.07)], pump(0.0), 60))
    edges = [[-1.2, -0.07], [-1.2, 0.0], [-1.19, -0.07], [-1.2, -0.001], [0.5, 0.0], [0.49, 0.07],
             [nudge(np, 0.5, -1), 0.0011], [0.6, 0.07], [0.0, 0.1], [0.0, -0.1], [0.45, 0.07],
             [-1.25, -0.05], [0.7, 0.0]]
    for e in edges:
        for a in (0, 1, 2):
            out.append((e, lambda s, o, t, a=a: a, 20))
    return out


def cases_mountain_car_continuous(np, rng, scale):
    rnd = lambda s, o, t: float(rng.uniform(-1.5, 1.5))  # noqa: E731
    wide = lambda s, o, t: float(rng.choice([-5.0, 5.0, -1.0, 1.0, 0.0, rng.uniform(-5, 5)]))  # noqa: E731

    def pump(mag, eps):
        def p(s, o, t):
            if rng.random() < eps:
                return float(rng.uniform(-mag, mag))
            return mag if s[1] >= 0 else -mag
        return p

    out = []
    out.append((None, lambda s, o, t: float(rng.uniform(-0.3, 0.3)), 1100))  # to truncation at 999
    for _ in range(3 * scale):
        out.append((None, pump(1.0, 0.1), 1100))
    for _ in range(scale):
        out.append((None, pump(5.0, 0.1), 1100))  # out of range: force clipped, cost unclipped
    for _ in range(14 * scale):
        out.append(([rng.uniform(-1.2, 0.6), rng.uniform(-0.07, 0.07)], rnd, 25))
    for _ in range(6 * scale):
        out.append(([rng.uniform(-1.2, 0.6), rng.uniform(-0.07, 0.07)], wide, 25))
    for _ in range(5 * scale):
        out.append(([rng.uniform(0.2, 0.6), rng.uniform(-0.07, 0.07)], pump(1.0, 0.0), 60))
    edges = [[-1.2, -0.07], [-1.2, 0.0], [-1.19, -0.07], [0.45, 0.0], [0.44, 0.07],
             [nudge(np, 0.45, -1), 0.002], [0.6, 0.07], [0.0, 0.1], [0.0, -0.1], [-1.25, -0.05], [0.7, 0.0]]
    for e in edges:
        for a in (-5.0, -1.0, 0.0, 1.0, 5.0, 1.0000001):
            out.append((e, lambda s, o, t, a=a: a, 15))
    return out


def cases_pendulum(np, rng, scale):
    rnd = lambda s, o, t: float(rng.uniform(-2.5, 2.5))  # noqa: E731
    wide = lambda s, o, t: float(rng.choice([-5.0, 5.0, -2.0, 2.0, 0.0, rng.uniform(-6, 6)]))  # noqa: E731

    def swing(s, o, t):  # energy pumping then a crude PD near the top
        th, thd = s
        d = ((th + math.pi) % (2 * math.pi)) - math.pi
        if abs(d) < 0.5:
            return float(-10 * d - 1.0 * thd)
        return 2.0 if thd >= 0 else -2.0

    out = []
    for _ in range(scale):
        out.append((None, rnd, 250))  # every Pendulum episode runs to truncation at 200
    out.append((None, wide, 250))
    out.append((None, swing, 250))
    for _ in range(10 * scale):
        out.append(([rng.uniform(-20, 20), rng.uniform(-10, 10)], wide, 12))
    edges = [[math.pi, 0.0], [-math.pi, 0.0], [0.0, 8.0], [0.0, -8.0], [0.0, nudge(np, 8.0, 1)], [3.0, 10.0],
             [100.0, -12.0], [-1e3, 0.5], [2 * math.pi, 0.0], [-3 * math.pi, 1.0]]
    for e in edges:
        for a in (-5.0, -2.0, 0.0, 2.0, nudge(np, 2.0, 1), 5.0):
            out.append((e, lambda s, o, t, a=a: a, 8))
    return out


ENVS = [
    ("CartPole-v1", cases_cartpole),
    ("Acrobot-v1", cases_acrobot),
    ("MountainCar-v0", cases_mountain_car),
    ("MountainCarContinuous-v0", cases_mountain_car_continuous),
    ("Pendulum-v1", cases_pendulum),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gym", required=True, help="Gymnasium 1.x source tree (holds gymnasium/)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "envs"))
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20240917)
    ap.add_argument("--env", help="only this env id")
    ap.add_argument("--numpy-simd", action="store_true", help="keep numpy's AVX-512 sin/cos (machine-dependent)")
    args = ap.parse_args()
    np, libm = setup_numpy(args.numpy_simd)
    gym = import_gymnasium(args.gym)
    warnings.filterwarnings("ignore")
    os.makedirs(args.out, exist_ok=True)
    for i, (env_id, cases) in enumerate(ENVS):
        if args.env and args.env != env_id:
            continue
        rng = np.random.default_rng([args.seed, i])
        lines_in, lines_out, steps = [], [], 0
        for init, policy, n in cases(np, rng, args.scale):
            state, actions, out = run_episode(gym, np, env_id, init, policy, rng, n)
            actions = actions[:len(out["rewards"])]
            if isinstance(actions[0], float) and rng.random() < 0.5:
                actions = [[a] for a in actions]  # both spellings of a continuous action
            lines_in.append(json.dumps({"env": env_id, "init_state": state, "actions": actions},
                                       separators=(",", ":")))
            obs = "[" + ",".join("[" + ",".join(o) + "]" for o in out["obs"]) + "]"
            rest = json.dumps({k: out[k] for k in ("rewards", "terminated", "truncated")}, separators=(",", ":"))
            lines_out.append('{"obs":' + obs + "," + rest[1:])
            steps += len(out["rewards"])
        for suffix, lines in ((".in.jsonl", lines_in), (".out.jsonl", lines_out)):
            with open(os.path.join(args.out, env_id + suffix), "w") as f:
                f.write("\n".join(lines) + "\n")
        print("%-26s %4d episodes %6d steps  (gymnasium %s, numpy %s, sin/cos %s)"
              % (env_id, len(lines_in), steps, gym.__version__, np.__version__,
                 "libm" if libm else "numpy SIMD"), file=sys.stderr)


if __name__ == "__main__":
    main()
