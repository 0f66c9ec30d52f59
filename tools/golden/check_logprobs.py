"""check_logprobs.py - helpers for tools/check_logprobs.sh (compare `rlhf logprobs` with a float64
PyTorch GPT-2, tools/golden/gpt2_ref.py).

    check_logprobs.py ids --n N --vocab V --seed S          # N random ids, one line, space-separated
    check_logprobs.py compare --model DIR --ids FILE --got FILE --tol X [--mean-tol Y] [--name NAME]
        reference: log p(ids[t] | ids[:t]) for t = 1..n-1 in float64 from the folder's weights;
        got: what `rlhf logprobs` printed (whitespace-separated numbers, one per line expected).
        --mean-tol: also bound the mean abs error (bf16 products: 0.05 max, 0.01 mean).
        Prints "NAME: n=.. max_abs_err=.. (at t=..) mean_abs_err=.. tol=.. PASS|FAIL";
        exit 0 on PASS, 1 on FAIL (count mismatch, non-finite or too large an error).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref as ref  # noqa: E402


def cmd_ids(a):
    rng = np.random.default_rng(a.seed)
    ids = rng.integers(0, a.vocab, size=a.n)
    print(" ".join(str(int(x)) for x in ids))


def cmd_compare(a):
    name = a.name or a.model
    ids = [int(x) for x in open(a.ids).read().split()]
    try:
        got = [float(x) for x in open(a.got).read().split()]
    except ValueError as e:
        print("%s: FAIL (output is not numbers: %s)" % (name, e))
        return 1
    cfg, P = ref.load_hf(a.model, torch.float64)
    want = ref.sequence_logprobs(P, cfg, ids).numpy()
    if len(got) != len(want):
        print("%s: FAIL (got %d values, expected %d = one per token after the first)" % (name, len(got), len(want)))
        return 1
    got = np.array(got, dtype=np.float64)
    if not np.all(np.isfinite(got)):
        print("%s: FAIL (non-finite values at t=%s)" % (name, (np.nonzero(~np.isfinite(got))[0] + 1)[:5].tolist()))
        return 1
    err = np.abs(got - want)
    i = int(err.argmax())
    ok = float(err.max()) <= a.tol and (a.mean_tol is None or float(err.mean()) <= a.mean_tol)
    mt = "" if a.mean_tol is None else " mean_tol=%.0e" % a.mean_tol
    print("%s: n=%d max_abs_err=%.3e (at t=%d: got %.8f want %.8f) mean_abs_err=%.3e tol=%.0e%s %s"
          % (name, len(want), err.max(), i + 1, got[i], want[i], err.mean(), a.tol, mt, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(prog="check_logprobs.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("ids")
    i.add_argument("--n", type=int, required=True)
    i.add_argument("--vocab", type=int, required=True)
    i.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("--model", required=True)
    c.add_argument("--ids", required=True)
    c.add_argument("--got", required=True)
    c.add_argument("--tol", type=float, required=True)
    c.add_argument("--mean-tol", type=float, default=None)
    c.add_argument("--name", default=None)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("REF_THREADS", "2")))
    if a.cmd == "ids":
        cmd_ids(a)
        return 0
    return cmd_compare(a)


if __name__ == "__main__":
    sys.exit(main())
