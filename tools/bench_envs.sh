#!/usr/bin/env bash
# bench_envs.sh GYMNASIUM_DIR — env steps per second of rlhf.c's classic-control envs against
# Gymnasium's Python envs, both measured in this one run on the same machine: one env stepped
# alone with uniform random actions, resets included. GYMNASIUM_DIR is a Gymnasium 1.x source tree
# (the folder holding gymnasium/; never copied into this project). The ratio is taken against the
# faster of Gymnasium's two figures (gym.make with its wrappers, or the bare env class). Each
# figure is the best of REPS runs (default 3), which tames a busy machine somewhat; STEPS (rlhf.c,
# default 2000000) and GYM_STEPS (Gymnasium, default 30000) set the lengths.
set -euo pipefail
cd "$(dirname "$0")/.."
GYM="${1:-${GYMNASIUM_DIR:-}}"
[ -n "$GYM" ] && [ -d "$GYM/gymnasium" ] || { echo "usage: bash tools/bench_envs.sh GYMNASIUM_DIR (a Gymnasium 1.x source tree)" >&2; exit 1; }
RLHF="${RLHF_BIN:-build/rlhf}"
STEPS="${STEPS:-2000000}"
GYM_STEPS="${GYM_STEPS:-30000}"
REPS="${REPS:-3}"
PY=/usr/bin/python3
[ -x "$RLHF" ] || bash tools/build.sh
field() { awk -v k="$1:" '{for (i = 1; i < NF; i++) if ($i == k) v = $(i + 1)} END {if (v == "") exit 1; print v}'; }
max() { awk -v a="$1" -v b="$2" 'BEGIN {print (b == "" || a > b) ? a : b}'; }

printf "%-26s %14s %14s %14s %9s\n" env "rlhf.c" "gym.make" "gym unwrapped" ratio
for id in $("$RLHF" env list | awk '{print $1}'); do
  ours=""; made=""; bare=""
  for _ in $(seq "$REPS"); do
    ours=$(max "$("$RLHF" env bench --env "$id" --n 1 --steps "$STEPS" | field steps_per_s)" "$ours")
    py=$($PY tools/bench/gym_env_bench.py --gym "$GYM" --env "$id" --steps "$GYM_STEPS")
    made=$(max "$(echo "$py" | field steps_per_s)" "$made")
    bare=$(max "$(echo "$py" | field unwrapped_steps_per_s)" "$bare")
  done
  ratio=$(awk -v a="$ours" -v b="$made" -v c="$bare" 'BEGIN {m = b > c ? b : c; printf "%.0fx", a / m}')
  printf "%-26s %14s %14s %14s %9s\n" "$id" "$ours" "$made" "$bare" "$ratio"
done
