#!/usr/bin/env bash
# control_seeds.sh [ENV ...] [-- EXTRA RLHF CONTROL FLAGS] — the robustness benchmark of
# `rlhf control`: trains every seed in SEEDS (default 1-20) on each env (default CartPole-v1 and
# Acrobot-v1) with the env's defaults, JOBS runs at a time (default 2, one thread each), then prints
# per seed the success score (the deterministic evaluation of the final policy, mean return over its
# evaluation episodes — 100 by default), the mean return of the last 100 training episodes, whether
# the run succeeded (score >= the env's success threshold, see `rlhf control --help`) and its wall
# time; per env, the success rate (for an env without a threshold, the median score) and the median
# wall time. Runs go to OUT (default out/control_seeds). Flags after `--` go to every run (for
# tuning, e.g. `-- --lr 5e-4`).
# Examples: bash tools/control_seeds.sh;  SEEDS="21-40" bash tools/control_seeds.sh CartPole-v1
set -euo pipefail
cd "$(dirname "$0")/.."
RLHF="${RLHF_BIN:-build/rlhf}"
SEEDS="${SEEDS:-1-20}"
JOBS="${JOBS:-2}"
OUT="${OUT:-out/control_seeds}"
envs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#envs[@]} -gt 0 ] || envs=(CartPole-v1 Acrobot-v1)
[ -x "$RLHF" ] || bash tools/build.sh
case "$SEEDS" in
  *-*) seeds=$(seq "${SEEDS%-*}" "${SEEDS#*-}") ;;
  *) seeds="$SEEDS" ;;
esac

# one run: ENV SEED -> OUT/ENV-sSEED/summary.json (stdout and stderr kept beside it)
run_one() {
  local dir="$OUT/$1-s$2"
  mkdir -p "$dir"
  "$RLHF" control --env "$1" --seed "$2" --threads 1 --out "$dir" "${@:3}" >"$dir/stdout" 2>"$dir/stderr" ||
    echo "FAILED: $1 seed $2 (see $dir/stderr)" >&2
}
export -f run_one
export RLHF OUT

for env in "${envs[@]}"; do
  for s in $seeds; do printf '%s\0%s\0' "$env" "$s"; done |
    xargs -0 -n 2 -P "$JOBS" bash -c 'run_one "${@: -2}" "${@:1:$#-2}"' _ "$@" 2>&1 | sed 's/^/  /' || true
done

# the median of whitespace-separated numbers ("?" when there are none)
median() {
  echo "$1" | tr ' ' '\n' | sed '/^$/d' | sort -g |
    awk '{a[NR] = $1} END {if (NR) printf "%.1f\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); else print "?"}'
}
field() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$1" | head -1; }
for env in "${envs[@]}"; do
  echo "== $env (seeds $SEEDS)"
  printf '%6s %12s %14s %8s %9s\n' seed score train_last100 success wall_s
  ok=0 n=0 walls="" scores=""
  for s in $seeds; do
    f="$OUT/$env-s$s/summary.json"
    n=$((n + 1))
    if [ ! -f "$f" ]; then printf '%6s %12s\n' "$s" "no summary"; continue; fi
    score=$(field "$f" eval_mean_return) last=$(field "$f" train_last100_return)
    succ=$(field "$f" success) wall=$(field "$f" wall_seconds) thr=$(field "$f" success_threshold)
    [ "$succ" = true ] && ok=$((ok + 1))
    walls="$walls $wall" scores="$scores $score"
    printf '%6s %12.1f %14.1f %8s %9.1f\n' "$s" "$score" "$last" "$succ" "$wall"
  done
  verdict="success $ok/$n (score >= ${thr:-?})"
  [ "${thr:-}" = null ] && verdict="no success threshold; median score $(median "$scores")"
  echo "$env: $verdict; median wall $(median "$walls") s"
done
