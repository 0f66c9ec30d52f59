#!/usr/bin/env bash
# bench_model.sh [LLMC_DIR] — GPT-2-small (124M) speed of rlhf.c against its peers, all measured in
# this one run on the same machine and thread count:
#   training step, batch 4 x 64 tokens (forward + backward + AdamW):
#     rlhf.c in fp32 and in bf16 (mixed precision: bf16 products, fp32 accumulation)  vs  PyTorch
#             in fp32 with its BLAS swapped for the OpenMP build of BLIS and of OpenBLAS, and in
#             bf16 under torch.autocast("cpu", dtype=torch.bfloat16) (the fastest of all counts)
#             vs  llm.c's CPU train_gpt2.c (built from LLMC_DIR, if given)
#   KV-cache sampling, batch 1 and batch 8: rlhf.c (fp32 weights, and bf16 decode weights — a
#             rounded copy, fp32 activations — reported separately) vs the same PyTorch in fp32
#             and with the model cast to bfloat16 (the fastest counts).
#             PyTorch decodes under torch.inference_mode() with a hand-written KV cache.
# ONLY=decode skips the training benchmark. Every peer runs ROUNDS times (default 2), in turn, and its best run counts. Prints each figure,
# then per benchmark the best PyTorch variant, ours and the ratio. Run it on a quiet machine:
# spinning OpenMP threads make every figure meaningless when another process holds a core.
set -euo pipefail
cd "$(dirname "$0")/.."
LLMC_DIR="${1:-${LLMC_DIR:-}}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
RLHF="${RLHF_BIN:-build/rlhf}"
PY=/usr/bin/python3
LIB=/usr/lib/x86_64-linux-gnu
export OMP_NUM_THREADS="$THREADS"
[ -x "$RLHF" ] || bash tools/build.sh
field() { awk -v k="$1:" '$1 == k {v = $2} END {if (v == "") exit 1; print v}'; }

# PyTorch at its strongest: its BLAS swapped for the OpenMP builds of OpenBLAS and of BLIS, and BLIS
# also with its kernel set forced (Debian's BLIS falls back to generic kernels on CPUs it does not
# know; BLIS_ARCH_TYPE ids of BLIS 0.9: 0 skx, 3 haswell, 6 zen3). The best variant counts.
variants=("openblas-openmp:" "blis-openmp:" "blis-openmp:0" "blis-openmp:6" "blis-openmp:3")
torch_run() { # variant, then the benchmark's arguments
  local lib=${1%%:*} arch=${1#*:}; shift
  if [ -n "$arch" ]; then
    LD_LIBRARY_PATH="$LIB/$lib" BLIS_ARCH_TYPE="$arch" $PY tools/bench/torch_gpt2_bench.py "$@" --threads "$THREADS" 2>/dev/null
  else
    LD_LIBRARY_PATH="$LIB/$lib" $PY tools/bench/torch_gpt2_bench.py "$@" --threads "$THREADS" 2>/dev/null
  fi
}
better() { awk -v a="$1" -v b="$2" -v dir="$3" 'BEGIN{exit !(b == "" || (dir == "min" ? a < b : a > b))}'; }

ONLY="${ONLY:-}"
ours=""; ours16=""; best_torch=""; best_var=""
[ "$ONLY" = decode ] || echo "== training step, gpt2-small, batch 4 x 64, $THREADS threads, $ROUNDS rounds"
for ((r = 1; r <= ROUNDS && ${#ONLY} == 0; r++)); do
  t=$("$RLHF" bench train --config gpt2-small --batch 4 --seq 64 --steps 5 --threads "$THREADS" | tee >(cat >&2) | field train_step_ms)
  if better "$t" "$ours" min; then ours=$t; fi
  t=$("$RLHF" bench train --config gpt2-small --batch 4 --seq 64 --steps 5 --threads "$THREADS" --precision bf16 | tee >(cat >&2) | field train_step_ms)
  if better "$t" "$ours16" min; then ours16=$t; fi
  for v in "${variants[@]}"; do
    for dt in fp32 bf16; do
      t=$(torch_run "$v" --mode train --dtype "$dt" --config gpt2-small --batch 4 --seq 64 --steps 5 | field train_step_ms) || continue
      echo "pytorch ($v $dt): train_step_ms $t"
      if better "$t" "$best_torch" min; then best_torch=$t; best_var="$v $dt"; fi
    done
  done
done
llmc=""
if [ -n "$LLMC_DIR" ]; then
  llmc=$(STEPS=3 THREADS="$THREADS" LLMC_CFLAGS="-Ofast -march=native -fopenmp -DOMP" \
           bash tools/bench/llmc_bench.sh "$LLMC_DIR" 2>/dev/null | field llmc_train_step_ms) || llmc=""
  echo "llm.c train_gpt2.c (-Ofast, its Makefile's setting): train_step_ms ${llmc:-failed}"
fi

echo "== KV-cache sampling, gpt2-small, 64 new tokens (rlhf.c with fp32 and with bf16 decode weights)"
declare -A ours_s ours_h ours_share torch_s torch_v
for b in 1 8; do
  ours_s[$b]=$("$RLHF" bench sample --config gpt2-small --batch "$b" --new-tokens 64 --weights fp32 --threads "$THREADS" | tee >(cat >&2) | field tokens_per_s)
  out=$("$RLHF" bench sample --config gpt2-small --batch "$b" --new-tokens 64 --weights bf16 --threads "$THREADS" | tee >(cat >&2))
  ours_h[$b]=$(field tokens_per_s <<<"$out")
  ours_share[$b]=$(field bandwidth_share <<<"$out")
  torch_s[$b]=""
  for ((r = 1; r <= ROUNDS; r++)); do
    for v in "${variants[@]}"; do
      for dt in fp32 bf16; do
        t=$(torch_run "$v" --mode sample --dtype "$dt" --config gpt2-small --batch "$b" --new-tokens 64 | field tokens_per_s) || continue
        echo "pytorch ($v $dt) batch $b: tokens_per_s $t"
        if better "$t" "${torch_s[$b]}" max; then torch_s[$b]=$t; torch_v[$b]="$v $dt"; fi
      done
    done
  done
done

echo "== summary (ratio > 1: rlhf.c faster)"
if [ -z "$ONLY" ]; then
awk -v o="$ours" -v t="$best_torch" -v l="$best_var" 'BEGIN{printf "train step fp32: rlhf.c %.0f ms, best PyTorch (%s) %.0f ms -> %.2fx\n", o, l, t, t/o}'
awk -v o="$ours16" -v t="$best_torch" -v l="$best_var" 'BEGIN{printf "train step bf16: rlhf.c %.0f ms, best PyTorch (%s) %.0f ms -> %.2fx\n", o, l, t, t/o}'
fi
if [ -n "$llmc" ]; then awk -v o="$ours" -v t="$llmc" 'BEGIN{printf "train step: llm.c %.0f ms -> %.2fx\n", t, t/o}'; fi
for b in 1 8; do
  awk -v o="${ours_s[$b]}" -v t="${torch_s[$b]}" -v b="$b" -v l="${torch_v[$b]}" \
    'BEGIN{printf "sampling batch %d, fp32 weights: rlhf.c %.1f tok/s, best PyTorch (%s) %.1f tok/s -> %.2fx\n", b, o, l, t, o/t}'
  awk -v o="${ours_h[$b]}" -v t="${torch_s[$b]}" -v b="$b" -v s="${ours_share[$b]}" \
    'BEGIN{printf "sampling batch %d, bf16 weights: rlhf.c %.1f tok/s -> %.2fx (best PyTorch); %.0f%% of the read-bandwidth bound\n", b, o, o/t, 100*s}'
done
