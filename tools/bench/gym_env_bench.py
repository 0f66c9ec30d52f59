"""gym_env_bench.py - Gymnasium's classic-control env steps per second, for tools/bench_envs.sh.

    /usr/bin/python3 tools/bench/gym_env_bench.py --gym DIR --env ID [--steps N] [--seed S]

DIR is a Gymnasium 1.x source tree (the folder holding gymnasium/). One env, stepped alone with
uniform random actions drawn before the clock starts (so only env.step and the resets are timed,
which flatters Gymnasium slightly), reset when an episode ends. Prints two lines:
`steps_per_s: X` for gym.make(ID) (TimeLimit and the checker wrappers, as training code uses it) and
`unwrapped_steps_per_s: Y` for the bare env class with the step limit counted by hand.
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden"))
from gym_src import import_gymnasium  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gym", required=True)
    ap.add_argument("--env", required=True)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    gym = import_gymnasium(args.gym)
    warnings.filterwarnings("ignore")
    env = gym.make(args.env)
    rng = np.random.default_rng(args.seed)
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        actions = [int(a) for a in rng.integers(space.n, size=args.steps)]
    else:
        actions = [np.array([a], dtype=np.float32) for a in rng.uniform(space.low[0], space.high[0], args.steps)]
    limit = env.spec.max_episode_steps

    env.reset(seed=args.seed)
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    wrapped = args.steps / (time.perf_counter() - t0)

    raw = env.unwrapped
    raw.reset(seed=args.seed)
    n = 0
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, _, _ = raw.step(a)
        n += 1
        if term or n >= limit:
            raw.reset()
            n = 0
    unwrapped = args.steps / (time.perf_counter() - t0)
    print("steps_per_s: %.0f" % wrapped)
    print("unwrapped_steps_per_s: %.0f" % unwrapped)


if __name__ == "__main__":
    main()
