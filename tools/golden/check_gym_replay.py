"""check_gym_replay.py - replay trajectory files through `rlhf env replay` and compare with Gymnasium.

    python3 tools/golden/check_gym_replay.py [--rlhf build/rlhf] DIR...

DIR holds <ID>.in.jsonl / <ID>.out.jsonl pairs written by gen_gym_traj.py. For each env prints the
episodes, steps, episodes whose observations are all exactly equal as float32, the first
mismatch, and the largest relative reward error; exit status 1 if anything differs beyond the
acceptance rule (obs equal as float32, rewards within 1e-9 relative, flags identical).
"""
import argparse
import glob
import json
import os
import struct
import subprocess
import sys


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rlhf", default=os.path.join(os.path.dirname(__file__), "..", "..", "build", "rlhf"))
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    bad = False
    for d in args.dirs:
        for fin in sorted(glob.glob(os.path.join(d, "*.in.jsonl"))):
            env_id = os.path.basename(fin)[: -len(".in.jsonl")]
            want = [json.loads(line) for line in open(fin[: -len(".in.jsonl")] + ".out.jsonl")]
            with open(fin) as f:
                p = subprocess.run([args.rlhf, "env", "replay", "--env", env_id], stdin=f, capture_output=True,
                                   text=True)
            if p.returncode:
                print("%s: replay failed: %s" % (env_id, p.stderr.strip()))
                bad = True
                continue
            got = [json.loads(line) for line in p.stdout.splitlines()]
            steps = exact = 0
            max_rel = 0.0
            first = None
            for e, (g, w) in enumerate(zip(got, want)):
                same = len(g["rewards"]) == len(w["rewards"]) and g["terminated"] == w["terminated"] \
                    and g["truncated"] == w["truncated"]
                for t, (go, wo) in enumerate(zip(g["obs"], w["obs"])):
                    if [f32(x) for x in go] != [f32(x) for x in wo]:
                        same = False
                        if first is None:
                            first = "episode %d step %d: %s vs Gymnasium %s" % (e, t, go, wo)
                        break
                for a, b in zip(g["rewards"], w["rewards"]):
                    if a != b:
                        max_rel = max(max_rel, abs(a - b) / max(abs(b), 1e-300))
                if max_rel > 1e-9:
                    same = False
                if not same and first is None:
                    first = "episode %d: lengths/flags/rewards differ" % e
                exact += same
                steps += len(w["rewards"])
            if len(got) != len(want):
                first = first or "%d episodes replayed, %d expected" % (len(got), len(want))
            ok = exact == len(want) and len(got) == len(want)
            bad |= not ok
            print("%-26s %5d episodes %7d steps  identical %5d  max reward rel. error %.3g%s"
                  % (env_id, len(want), steps, exact, max_rel, "" if ok else "  FIRST: " + first))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
