#!/usr/bin/env bash
# bench_dp.sh — data parallel at the GPT-2 124M shape, in one run on this machine:
#   1 process x 2 threads  vs  2 processes x 1 thread (mpirun)  vs  the same with --zero 1
# each a pretraining run of the same global batch. Prints the step time (median of the steps after
# the first), the bytes all-reduced per step, the share of the step spent in collectives, the peak
# memory of each rank (ZeRO-1 shards the AdamW moments), then a projection for N machines from the
# measured all-reduce bandwidth and compute time, with its assumptions.
#
#   bash tools/bench_dp.sh [STEPS=6] [BATCH=4] [SEQ=128]
#
# Timings on a machine shared with other work are noisy: run it on a quiet one. Needs build/rlhf
# built with MPI (tools/build.sh does when libopenmpi-dev is installed) and mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-6} BATCH=${2:-4} SEQ=${3:-128}
BIN=$PWD/build/rlhf
[ -x "$BIN" ] || { echo "bench_dp: build first (bash tools/build.sh)"; exit 1; }
command -v mpirun >/dev/null || { echo "bench_dp: mpirun is missing (openmpi-bin)"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/rlhf-bench-dp.XXXXXX")
trap 'rm -rf "$W"' EXIT
MPI=(mpirun --oversubscribe --allow-run-as-root --bind-to none -x OMP_NUM_THREADS=1 -np 2)
TIME=()
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -f "peak_rss_kb %M")

# a corpus and a tokenizer (the quick demo's first stages), and the 124M shape
"$BIN" demo --quick --threads 1 --out "$W/demo" >/dev/null 2>&1
cat >"$W/gpt2-124m.json" <<'EOF'
{"model_type": "gpt2", "n_layer": 12, "n_head": 12, "n_embd": 768, "vocab_size": 50257, "n_positions": 1024}
EOF
PT=(pretrain --corpus "$W/demo/corpus/train.txt" --tokenizer "$W/demo/tokenizer" --config "$W/gpt2-124m.json"
    --seq "$SEQ" --batch "$BATCH" --steps "$STEPS" --eval-every 0 --eval-batches 1 --ckpt-every 1000000
    --precision fp32 --lr 1e-4 --warmup 1)

# run NAME CMD...: the run, its per-step metrics and each process's peak memory
run() {
  local name=$1; shift
  echo "running $name ..." >&2
  "$@" --out "$W/$name" >/dev/null 2>"$W/$name.err" || { tail -5 "$W/$name.err"; exit 1; }
}
run one "${TIME[@]}" "$BIN" "${PT[@]}" --threads 2
run dp "${MPI[@]}" "${TIME[@]}" "$BIN" "${PT[@]}" --threads 1
run zero "${MPI[@]}" "${TIME[@]}" "$BIN" "${PT[@]}" --threads 1 --zero 1

# median over steps 2.. of a metric ("" when absent); the step time of one process from tokens_per_s
median() {
  awk -v k="\"$2\":" 'NR > 1 { i = index($0, k); if (i) { s = substr($0, i + length(k)); sub(/[,}].*/, "", s); print s } }' \
    "$W/$1/metrics.jsonl" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
tokens=$((BATCH * SEQ))
t_one=$(awk -v t="$tokens" -v r="$(median one tokens_per_s)" 'BEGIN { printf "%.4f", t / r }')
rss() { grep -o 'peak_rss_kb [0-9]*' "$W/$1.err" | awk '{ s = s (NR > 1 ? ", " : "") sprintf("%.0f MB", $2 / 1024) } END { print s }'; }
params=124439808

echo
echo "GPT-2 124M shape ($params parameters), global batch $BATCH x $SEQ tokens, $STEPS steps (median of steps 2..$STEPS), fp32"
printf '%-24s %9s %12s %9s %10s %9s  %s\n' "run" "step (s)" "sent to MPI" "comm (s)" "comm share" "wait (s)" \
  "peak memory per process"
printf '%-24s %9s %12s %9s %10s %9s  %s\n' "1 process x 2 threads" "$t_one" "-" "-" "-" "-" "$(rss one)"
for r in dp zero; do
  t=$(median $r dp/step_seconds) c=$(median $r dp/comm_seconds) b=$(median $r dp/comm_bytes) w=$(median $r dp/wait_seconds)
  label="2 processes x 1 thread"
  [ $r = zero ] && label="2 x 1, --zero 1"
  printf '%-24s %9.4f %9.0f MB %9.4f %9.1f%% %9.4f  %s\n' "$label" "$t" "$(echo "$b" | awk '{ print $1 / 1e6 }')" "$c" \
    "$(awk -v c="$c" -v t="$t" 'BEGIN { print 100 * c / t }')" "$w" "$(rss $r)"
done
echo "(sent to MPI: plain, the gradients all-reduced; ZeRO-1, the gradients reduce-scattered plus this rank's"
echo " parameters all-gathered. comm: time inside the collectives; wait: time the ranks waited for each other"
echo " before them, i.e. load imbalance, not communication)"
t_dp=$(median dp dp/step_seconds) c_dp=$(median dp dp/comm_seconds) b_dp=$(median dp dp/comm_bytes)
echo
awk -v a="$t_one" -v b="$t_dp" 'BEGIN { printf "2 processes x 1 thread vs 1 process x 2 threads: %.2fx the step time\n", b / a }'
echo "AdamW moments per process: $((params * 8 / 1000000)) MB (plain), $((params * 4 / 1000000)) MB with --zero 1 at 2 ranks"
echo
echo "Projection for N machines (one rank per machine, each with this machine's compute), from this run:"
awk -v t="$t_dp" -v c="$c_dp" -v b="$b_dp" -v tok="$tokens" 'BEGIN {
  comp = t - c; bw = b / (c > 0 ? c : 1e-9);  # the measured all-reduce rate (bytes handed to MPI per second)
  printf "  measured: compute %.3f s/step, all-reduce of %.0f MB in %.3f s (%.2f GB/s between 2 ranks here)\n", comp, b / 1e6, c, bw / 1e9;
  printf "  assumptions: weak scaling (each machine keeps the per-rank batch, the global batch grows with N);\n";
  printf "  ring all-reduce moving 2(N-1)/N of the gradient bytes over each link; no overlap with the backward;\n";
  printf "  compute per machine as measured here (1 thread per rank on this shared machine)\n";
  split("1.25 12.5", L, " ");
  printf "  %4s %18s %18s %18s\n", "N", "step @ 10 Gb/s", "step @ 100 Gb/s", "tokens/s @ 100 Gb/s";
  for (n = 1; n <= 64; n *= 2) {
    f = 2 * (n - 1) / n;
    s1 = comp + f * b / (L[1] * 1e9); s2 = comp + f * b / (L[2] * 1e9);
    printf "  %4d %13.3f s %3.0f%% %13.3f s %3.0f%% %18.0f\n", n, s1, 100 * comp / s1, s2, 100 * comp / s2, n * tok / 2 / s2;
  }
  printf "  (%%: share of the step spent computing)\n";
}'
echo
echo "note: timings depend on what else runs on the machine; compare runs from the same invocation only"
