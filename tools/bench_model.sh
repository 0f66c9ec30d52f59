#!/usr/bin/env bash
# bench_model.sh [LLMC_DIR] — GPT-2-small (124M) speed of rlhf.c against its peers, all measured in
# this one run on the same machine and thread count:
#   training step, batch 4 x 64 tokens (forward + backward + AdamW):
#     rlhf.c  vs  PyTorch with its BLAS swapped for the OpenMP build of BLIS and of OpenBLAS (the
#             faster one counts)  vs  llm.c's CPU train_gpt2.c (built from LLMC_DIR, if given)
#   KV-cache sampling, batch 1 and batch 8: rlhf.c vs the same PyTorch.
# Prints each figure and the ratios. Run it on a quiet machine: spinning OpenMP threads make every
# figure meaningless when another process holds a core.
set -euo pipefail
cd "$(dirname "$0")/.."
LLMC_DIR="${1:-${LLMC_DIR:-}}"
THREADS="${THREADS:-2}"
RLHF="${RLHF_BIN:-build/rlhf}"
PY=/usr/bin/python3
LIB=/usr/lib/x86_64-linux-gnu
export OMP_NUM_THREADS="$THREADS"
[ -x "$RLHF" ] || bash tools/build.sh
field() { awk -v k="$1:" '$1 == k {v = $2} END {if (v == "") exit 1; print v}'; }

echo "== training step, gpt2-small, batch 4 x 64, $THREADS threads"
ours=$("$RLHF" bench train --config gpt2-small --batch 4 --seq 64 --steps 5 --threads "$THREADS" | tee /dev/stderr | field train_step_ms)
best_torch=""; best_lib=""
for lib in blis-openmp openblas-openmp; do
  if [ -e "$LIB/$lib/libblas.so.3" ]; then
    t=$(LD_LIBRARY_PATH="$LIB/$lib" $PY tools/bench/torch_gpt2_bench.py --mode train --config gpt2-small \
          --batch 4 --seq 64 --steps 5 --threads "$THREADS" 2>/dev/null | field train_step_ms)
    echo "pytorch ($lib): train_step_ms $t"
    if [ -z "$best_torch" ] || awk -v a="$t" -v b="$best_torch" 'BEGIN{exit !(a < b)}'; then best_torch=$t; best_lib=$lib; fi
  fi
done
llmc=""
if [ -n "$LLMC_DIR" ]; then
  llmc=$(STEPS=3 THREADS="$THREADS" bash tools/bench/llmc_bench.sh "$LLMC_DIR" 2>/dev/null | field llmc_train_step_ms) || llmc=""
  echo "llm.c train_gpt2.c: train_step_ms ${llmc:-failed}"
fi

echo "== KV-cache sampling, gpt2-small, 64 new tokens"
declare -A ours_s torch_s
for b in 1 8; do
  ours_s[$b]=$("$RLHF" bench sample --config gpt2-small --batch "$b" --new-tokens 64 --threads "$THREADS" | tee /dev/stderr | field tokens_per_s)
  torch_s[$b]=$(LD_LIBRARY_PATH="$LIB/$best_lib" $PY tools/bench/torch_gpt2_bench.py --mode sample --config gpt2-small \
                  --batch "$b" --new-tokens 64 --threads "$THREADS" 2>/dev/null | field tokens_per_s)
  echo "pytorch ($best_lib) batch $b: tokens_per_s ${torch_s[$b]}"
done

echo "== summary (higher ratio = rlhf.c faster)"
awk -v o="$ours" -v t="$best_torch" -v l="$best_lib" 'BEGIN{printf "train step: rlhf.c %.0f ms, PyTorch+%s %.0f ms -> %.2fx\n", o, l, t, t/o}'
[ -n "$llmc" ] && awk -v o="$ours" -v t="$llmc" 'BEGIN{printf "train step: llm.c %.0f ms -> %.2fx\n", t, t/o}'
for b in 1 8; do
  awk -v o="${ours_s[$b]}" -v t="${torch_s[$b]}" -v b="$b" 'BEGIN{printf "sampling batch %d: rlhf.c %.1f tok/s, PyTorch %.1f tok/s -> %.2fx\n", b, o, t, o/t}'
done
