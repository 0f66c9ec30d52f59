#!/usr/bin/env bash
# llmc_bench.sh - the llm.c CPU reference (karpathy/llm.c, train_gpt2.c) as a speed peer: time of
# one GPT-2-small (124M) training step (forward, backward, AdamW) at B=4, T=64.
#
# Usage: tools/bench/llmc_bench.sh [LLMC_DIR]
#   LLMC_DIR     an llm.c checkout (argument or environment). It may be a bare git directory
#                (e.g. a mirror): then train_gpt2.c and llmc/ are read from its HEAD with git.
#   THREADS      OMP_NUM_THREADS (default 2)
#   STEPS        timed steps (default 5), after 2 warm-up steps
#   LLMC_CFLAGS  compiler flags (default "-O3 -march=native -fopenmp -DOMP"; llm.c's own
#                Makefile uses -Ofast, which lets gcc vectorize its matmul reductions)
#   PYTHON       a Python with numpy (default /usr/bin/python3)
#
# Nothing of llm.c is copied into this repository: the script compiles the checkout's train_gpt2.c
# unchanged into a temporary folder, and writes what that program opens, in its formats:
#   gpt2_124M.bin  int32 header[256] = {20240326, 3, maxT 1024, V 50257, L 12, NH 12, C 768,
#                  Vp 50304, 0...}, then float32 parameters in llm.c's order (wte (Vp,C) with zero
#                  padding rows, wpe, ln1w, ln1b, qkvw (L,3C,C), qkvb, attprojw, attprojb, ln2w,
#                  ln2b, fcw (L,4C,C), fcb, fcprojw (L,C,4C), fcprojb, lnfw, lnfb), random GPT-2 init
#   dev/data/tinyshakespeare/tiny_shakespeare_{train,val}.bin
#                  int32 header[256] = {20240520, 1, ntok, 0...}, then ntok uint16 random ids < 50257
# (no gpt2_tokenizer.bin: llm.c then only warns, and generation does not run in the steps timed).
# train_gpt2's main() has a fixed loop (B=4, T=64, validation at step 0, AdamW lr 1e-4); the script
# reads its "step N: train loss L (took X ms)" lines and stops it (by its process id) after
# 2 + STEPS steps, before its first generation. Prints `llmc_train_step_ms: X` (median of the timed
# steps) and the min/max. The machine may be shared: numbers are indicative.
set -euo pipefail

LLMC="${1:-${LLMC_DIR:-}}"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-5}"
CFLAGS="${LLMC_CFLAGS:--O3 -march=native -fopenmp -DOMP}"
PY="${PYTHON:-/usr/bin/python3}"
WARMUP=2

die() { echo "llmc_bench.sh: $*" >&2; exit 2; }
[[ -n "$LLMC" ]] || die "usage: tools/bench/llmc_bench.sh LLMC_DIR (or set LLMC_DIR): an llm.c checkout"
[[ -d "$LLMC" ]] || die "$LLMC: not a directory"
"$PY" -c 'import numpy' 2>/dev/null || die "$PY has no numpy (set PYTHON)"

WORK="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# the sources: a work tree, or a bare/mirror git directory (read from HEAD)
mkdir -p "$WORK/src/llmc"
if [[ -f "$LLMC/train_gpt2.c" ]]; then
    cp "$LLMC/train_gpt2.c" "$WORK/src/"
    cp "$LLMC"/llmc/*.h "$WORK/src/llmc/"
elif git --git-dir="$LLMC" rev-parse --verify -q HEAD:train_gpt2.c >/dev/null 2>&1; then
    git --git-dir="$LLMC" show HEAD:train_gpt2.c >"$WORK/src/train_gpt2.c"
    for f in $(git --git-dir="$LLMC" ls-tree --name-only HEAD llmc/ | grep '\.h$'); do
        git --git-dir="$LLMC" show "HEAD:$f" >"$WORK/src/$f"
    done
    echo "llm.c: $(git --git-dir="$LLMC" log -1 --format='%h %cs' HEAD)"
else
    die "$LLMC: no train_gpt2.c (neither a work tree nor a git directory of llm.c)"
fi
grep -q 20240326 "$WORK/src/train_gpt2.c" || die "train_gpt2.c does not read the 20240326 checkpoint format"

echo "building: gcc $CFLAGS train_gpt2.c -lm"
# shellcheck disable=SC2086
gcc $CFLAGS -Wno-unused-result -I"$WORK/src" "$WORK/src/train_gpt2.c" -lm -o "$WORK/train_gpt2" 2>"$WORK/cc.log" ||
    { cat "$WORK/cc.log" >&2; die "build failed"; }

"$PY" - "$WORK" <<'PYEOF'
import os, sys
import numpy as np
work = sys.argv[1]
maxT, V, L, NH, C, Vp = 1024, 50257, 12, 12, 768, 50304
rng = np.random.default_rng(1337)
def normal(n, std):
    return (rng.standard_normal(n, dtype=np.float32) * np.float32(std))
resid = 0.02 / np.sqrt(2 * L)
with open(os.path.join(work, "gpt2_124M.bin"), "wb") as f:
    hdr = np.zeros(256, dtype="<i4")
    hdr[:8] = [20240326, 3, maxT, V, L, NH, C, Vp]
    f.write(hdr.tobytes())
    wte = np.zeros((Vp, C), dtype=np.float32)
    wte[:V] = normal(V * C, 0.02).reshape(V, C)
    for a in (wte, normal(maxT * C, 0.02),                                   # wte, wpe
              np.ones(L * C, np.float32), np.zeros(L * C, np.float32),        # ln1w, ln1b
              normal(L * 3 * C * C, 0.02), np.zeros(L * 3 * C, np.float32),   # qkvw, qkvb
              normal(L * C * C, resid), np.zeros(L * C, np.float32),          # attprojw, attprojb
              np.ones(L * C, np.float32), np.zeros(L * C, np.float32),        # ln2w, ln2b
              normal(L * 4 * C * C, 0.02), np.zeros(L * 4 * C, np.float32),   # fcw, fcb
              normal(L * C * 4 * C, resid), np.zeros(L * C, np.float32),      # fcprojw, fcprojb
              np.ones(C, np.float32), np.zeros(C, np.float32)):               # lnfw, lnfb
        f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
d = os.path.join(work, "dev", "data", "tinyshakespeare")
os.makedirs(d)
for name, ntok in (("train", 65536), ("val", 16384)):
    with open(os.path.join(d, "tiny_shakespeare_%s.bin" % name), "wb") as f:
        hdr = np.zeros(256, dtype="<i4")
        hdr[:3] = [20240520, 1, ntok]
        f.write(hdr.tobytes())
        f.write(rng.integers(0, V, ntok).astype("<u2").tobytes())
PYEOF

need=$((WARMUP + STEPS))
echo "running: OMP_NUM_THREADS=$THREADS train_gpt2 (B=4, T=64), $need steps"
(cd "$WORK" && OMP_NUM_THREADS="$THREADS" exec stdbuf -oL ./train_gpt2 >"$WORK/log" 2>&1) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
    if (($(grep -c '^step [0-9]*: train loss' "$WORK/log" || true) >= need)); then
        kill "$pid" 2>/dev/null || true
        break
    fi
    sleep 0.2
done
wait "$pid" 2>/dev/null || true
pid=""
if (($(grep -c '^step [0-9]*: train loss' "$WORK/log" || true) < need)); then
    tail -n 20 "$WORK/log" >&2
    die "train_gpt2 stopped before $need steps"
fi
grep -m1 '^num_parameters' "$WORK/log" || true
grep '^step [0-9]*: train loss' "$WORK/log" | head -n "$need"
grep '^step [0-9]*: train loss' "$WORK/log" | head -n "$need" | tail -n "$STEPS" |
    sed 's/.*(took \([0-9.]*\) ms).*/\1/' | sort -g | awk '
        { v[NR] = $1 }
        END {
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "llmc_train_step_ms: %.1f\nllmc_train_step_ms_min: %.1f\nllmc_train_step_ms_max: %.1f\n", med, v[1], v[NR]
        }'
