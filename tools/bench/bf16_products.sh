#!/usr/bin/env bash
# bf16_products.sh [THREADS] [ROWS] [REPS] — builds and runs tools/bench/bf16_products.c: GPT-2-small's
# training products in BLIS fp32 vs oneDNN bf16 vs a hand-written AVX512-BF16 kernel, and the
# machine's bf16 and fp32 peaks (the measurement behind the README's "bf16 products" choice).
# Needs the release build (bash tools/build.sh) and libdnnl-dev; the CPU needs AVX512-BF16.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f build/librlhf.a ] || bash tools/build.sh
out="${TMPDIR:-/tmp}/bf16_products"
gcc -O3 -march=native -fopenmp -std=c11 -D_GNU_SOURCE -Wall -Wextra -Imodel tools/bench/bf16_products.c \
  build/librlhf.a /usr/lib/x86_64-linux-gnu/blis-openmp/libblis.a -ldnnl -lm -lpthread -o "$out"
exec "$out" "${1:-2}" "${2:-256}" "${3:-5}"
