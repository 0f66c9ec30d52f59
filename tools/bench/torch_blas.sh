#!/usr/bin/env bash
# torch_blas.sh - the PyTorch peer (torch_gpt2_bench.py) with PyTorch's BLAS swapped for the OpenMP
# builds of BLIS and OpenBLAS, to pick the fastest PyTorch to compare rlhf.c with.
#
# Usage: tools/bench/torch_blas.sh [ROUNDS]        (default 3 rounds, interleaved)
#   PYTHON     a Python with PyTorch (default: /usr/bin/python3)
#   THREADS    threads (default 2: OMP_NUM_THREADS and torch.set_num_threads)
#   BENCH_ARGS extra arguments for both modes (e.g. "--config tiny")
#   MODES      "train sample" (default), or one of them
#
# Debian's PyTorch (BLAS_INFO=generic) calls the Fortran BLAS symbols sgemm_/sgemv_/dgemm_ from
# libblas.so.3, a NEEDED entry of libtorch_cpu.so listed before liblapack.so.3 and libdnnl.so.2, so
# the first libblas.so.3 on the search path wins: "default" is whatever the Debian alternative
# libblas.so.3-x86_64-linux-gnu points to; "blis" and "openblas" put
# /usr/lib/x86_64-linux-gnu/{blis-openmp,openblas-openmp} first in LD_LIBRARY_PATH. The script
# first shows where sgemm_ binds (LD_DEBUG=bindings) and times torch.mm on GPT-2-small shapes with
# each library, then runs the train and sample benchmarks ROUNDS times in turn (A B C A B C ...)
# and prints the median (and best) of each. The machine may be shared: numbers are indicative.
# If BLIS selects its 'generic' kernels on this CPU, the blis-<arch> variants force optimized ones.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-/usr/bin/python3}"
THREADS="${THREADS:-2}"
ROUNDS="${1:-3}"
MODES="${MODES:-train sample}"
LIBDIR=/usr/lib/x86_64-linux-gnu
export OMP_NUM_THREADS="$THREADS"

declare -A DIRS=([default]="" [blis]="$LIBDIR/blis-openmp" [openblas]="$LIBDIR/openblas-openmp")
declare -A ARCH=([default]="" [blis]="" [openblas]="")
NAMES=(default blis openblas)
for n in blis openblas; do
    [[ -e "${DIRS[$n]}/libblas.so.3" ]] || { echo "torch_blas.sh: ${DIRS[$n]}/libblas.so.3 missing (apt-get install libblis4-openmp libopenblas0-openmp)" >&2; exit 2; }
done
"$PY" -c 'import torch' 2>/dev/null || { echo "torch_blas.sh: $PY has no torch" >&2; exit 2; }

# BLIS picks its kernels from the CPU id at run time; a CPU newer than the BLIS release (e.g. AMD
# family 0x1A, Zen 5, with Debian 12's BLIS 0.9.0) falls back to the slow 'generic' kernels. Then
# also run "blis-skx" and "blis-zen3" (AVX-512 CPUs) or "blis-haswell" (AVX2 only), with
# BLIS_ARCH_TYPE set to that sub-configuration's numeric id (version-specific: looked up by name).
blis_info="$("$PY" - "$LIBDIR/blis-openmp/libblis.so.4" <<'PYEOF'
import ctypes, sys
l = ctypes.CDLL(sys.argv[1])
l.bli_arch_string.restype = ctypes.c_char_p
l.bli_info_get_version_str.restype = ctypes.c_char_p
names = {}
for i in range(64):
    s = l.bli_arch_string(i).decode()
    if s in names: break
    names[s] = i
    if s == "generic": break
flags = open("/proc/cpuinfo").read().split()
want = ["skx", "zen3"] if "avx512f" in flags else ["haswell"] if "avx2" in flags else []
want = ",".join("%s:%d" % (w, names[w]) for w in want if w in names)
print(l.bli_info_get_version_str().decode(), l.bli_arch_string(l.bli_arch_query_id()).decode(), want or "-")
PYEOF
)"
read -r blis_ver blis_auto blis_want <<<"$blis_info"
echo "BLIS $blis_ver selects '$blis_auto' on this CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs))"
if [[ "$blis_auto" == generic && "$blis_want" != - ]]; then
    IFS=, read -r -a wants <<<"$blis_want"
    for w in "${wants[@]}"; do
        DIRS[blis-${w%%:*}]="$LIBDIR/blis-openmp"
        ARCH[blis-${w%%:*}]="${w##*:}"
        NAMES+=("blis-${w%%:*}")
        echo "  -> also running blis-${w%%:*}: BLIS_ARCH_TYPE=${w##*:}"
    done
fi
# run NAME CMD...: CMD with NAME's library first on the path (and BLIS_ARCH_TYPE when forced)
run() {
    local n=$1; shift
    if [[ -n "${ARCH[$n]}" ]]; then
        LD_LIBRARY_PATH="${DIRS[$n]}" BLIS_ARCH_TYPE="${ARCH[$n]}" "$@"
    else
        LD_LIBRARY_PATH="${DIRS[$n]}" "$@"
    fi
}

TORCH_LIB="$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
echo "libtorch_cpu.so BLAS dependencies:"
ldd "$TORCH_LIB/libtorch_cpu.so" | grep -E 'blas|lapack|dnnl|gomp' | sed 's/^/  /'
echo "default libblas.so.3 -> $(readlink -f /lib/x86_64-linux-gnu/libblas.so.3)"
echo

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/mm.py" <<'PYEOF'
import statistics, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
# (M, K, N, B transposed): GPT-2-small products at B*T = 256 and one decode step at batch 4
shapes = [(256, 768, 3072, False), (256, 3072, 768, False), (256, 768, 50257, True), (4, 768, 3072, False), (4, 768, 50257, True)]
out = []
for m, k, n, tb in shapes:
    a, b = torch.randn(m, k), (torch.randn(n, k).t() if tb else torch.randn(k, n))
    torch.mm(a, b)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); torch.mm(a, b); ts.append(time.perf_counter() - t0)
    out.append("%dx%dx%d%s %.0f" % (m, k, n, "^T" if tb else "", 2 * m * k * n / min(ts) / 1e9))
out[0] = "GF/s: " + out[0]
print("  ".join(out))
PYEOF

for n in "${NAMES[@]}"; do
    bind=$(run "$n" env LD_DEBUG=bindings "$PY" -c 'import torch; a = torch.randn(64, 64); a @ a' 2>&1 |
        grep -m1 "libtorch_cpu.*symbol \`sgemm_'" | sed 's/.* to \([^ ]*\) .*/\1/' || true)
    echo "$n: sgemm_ -> ${bind:-?}"
    echo "  torch.mm (MxKxN, best of 5): $(run "$n" "$PY" "$WORK/mm.py" "$THREADS")"
done
echo

for ((r = 1; r <= ROUNDS; r++)); do
    for mode in $MODES; do
        for n in "${NAMES[@]}"; do
            # shellcheck disable=SC2086
            run "$n" "$PY" "$HERE/torch_gpt2_bench.py" --mode "$mode" --threads "$THREADS" \
                ${BENCH_ARGS:-} 2>/dev/null >"$WORK/out"
            if [[ $mode == train ]]; then v=$(awk '$1 == "train_step_ms:" {print $2}' "$WORK/out")
            else v=$(awk '$1 == "tokens_per_s:" {print $2}' "$WORK/out"); fi
            echo "$mode $n $v" >>"$WORK/results"
            echo "round $r: $mode $n ${v:-FAILED} $([[ $mode == train ]] && echo ms/step || echo tokens/s)  (load $(cut -d' ' -f1 /proc/loadavg))"
        done
    done
done
echo
for mode in $MODES; do
    "$PY" - "$WORK/results" "$mode" <<'PYEOF'
import statistics, sys
mode = sys.argv[2]
rows = [l.split() for l in open(sys.argv[1]) if l.split()[0] == mode and len(l.split()) == 3]
med = {}
best_of = min if mode == "train" else max
for n in dict.fromkeys(r[1] for r in rows):
    v = [float(r[2]) for r in rows if r[1] == n]
    if v:
        med[n] = statistics.median(v)
        key = "train_step_ms" if mode == "train" else "tokens_per_s"
        print("%s %s: median %.1f, best %.1f  (%d runs)" % (key, n, med[n], best_of(v), len(v)))
best = best_of(med, key=med.get)
print("%s: fastest is %s" % (mode, best))
PYEOF
done
