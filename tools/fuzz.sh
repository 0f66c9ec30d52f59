#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer targets (tests/fuzz/: tokenizer loaders and encoder, safetensors, JSONL
# datasets, config.json, trainer_state.json, stage.json, reward-program answers) with clang + ASan + UBSan in
# build-fuzz/ and run each for SECONDS (default $FUZZ_SECONDS, else 30).
#
#   tools/fuzz.sh [SECONDS] [TARGET...]   TARGET: one of ALL_TARGETS below (default all)
#
# Each target runs on a scratch copy of its seed corpus (tests/fuzz/corpus/<name>/), so nothing is
# written into the repository; crash reproducers go to build-fuzz/fuzz-artifacts/. Prints one line
# per target and exits non-zero when any target crashed. Non-interactive (fine under CI=true).
# Needs: clang libclang-rt-14-dev libomp-14-dev (tools/setup_deps.sh installs them), and the GPT-2
# vocabulary (tools/get_gpt2_vocab.sh, run here when present).
# Environment: FUZZ_SECONDS, FUZZ_BUILD_DIR (default build-fuzz), FUZZ_ARTIFACTS, RLHF_GPT2_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-${FUZZ_SECONDS:-30}}"
shift || true
TARGETS=("$@")
ALL_TARGETS=(fuzz_encode fuzz_vocab fuzz_merges fuzz_safetensors fuzz_dataset fuzz_config fuzz_trainer_state fuzz_stage
    fuzz_reward_lines)
((${#TARGETS[@]})) || TARGETS=("${ALL_TARGETS[@]}")
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
ARTIFACTS="${FUZZ_ARTIFACTS:-$BUILD/fuzz-artifacts}"

die() { echo "fuzz.sh: $*" >&2; exit 2; }
[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ && "$SECONDS_PER_TARGET" -gt 0 ]] ||
    die "SECONDS must be a positive integer, got '$SECONDS_PER_TARGET'"
for t in "${TARGETS[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t'"
done
command -v clang >/dev/null 2>&1 || die "clang not found (apt-get install clang libclang-rt-14-dev libomp-14-dev)"

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/rlhf-fuzz.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

# ---- configure (once) and build -----------------------------------------------------------------
if [[ ! -f "$BUILD/build.ninja" ]]; then
    echo "fuzz.sh: configuring $BUILD" >&2
    CC=clang meson setup "$BUILD" "$ROOT" \
        -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link </dev/null >"$SCRATCH/setup.log" 2>&1 ||
        { cat "$SCRATCH/setup.log" >&2; die "meson setup failed"; }
fi
grep -q 'fuzz_encode' "$BUILD/build.ninja" ||
    die "$BUILD was not configured with -Dfuzz=true (remove it and run again)"
for t in "${TARGETS[@]}"; do # a folder configured before a target was added: meson regenerates it
    grep -q "$t" "$BUILD/build.ninja" || meson setup --reconfigure "$BUILD" "$ROOT" </dev/null >"$SCRATCH/setup.log" 2>&1 ||
        { cat "$SCRATCH/setup.log" >&2; die "meson setup --reconfigure failed"; }
done
meson compile -C "$BUILD" "${TARGETS[@]}" </dev/null >"$SCRATCH/build.log" 2>&1 ||
    { cat "$SCRATCH/build.log" >&2; die "build failed"; }

# ---- the GPT-2 vocabulary (fuzz_encode) -----------------------------------------------------------
if [[ " ${TARGETS[*]} " == *" fuzz_encode "* && -z "${RLHF_GPT2_DIR:-}" ]]; then
    gpt2=""
    if [[ -f "$ROOT/tools/get_gpt2_vocab.sh" ]]; then
        if out="$(bash "$ROOT/tools/get_gpt2_vocab.sh" </dev/null)"; then
            gpt2="$(printf '%s\n' "$out" | tail -n 1)/openai"
        else
            echo "fuzz.sh: tools/get_gpt2_vocab.sh failed; trying the cache" >&2
        fi
    fi
    if [[ -z "$gpt2" || ! -f "$gpt2/encoder.json" ]]; then
        gpt2="${RLHF_CACHE:-$HOME/.cache/rlhf.c}/gpt2/openai"
    fi
    [[ -f "$gpt2/encoder.json" && -f "$gpt2/vocab.bpe" ]] ||
        die "no GPT-2 vocabulary in $gpt2 (run tools/get_gpt2_vocab.sh or set RLHF_GPT2_DIR)"
    export RLHF_GPT2_DIR="$gpt2"
fi

# ---- run ----------------------------------------------------------------------------------------
mkdir -p "$ARTIFACTS"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

failed=0
for t in "${TARGETS[@]}"; do
    name="${t#fuzz_}"
    case "$name" in vocab) max_len=65536 ;; *) max_len=4096 ;; esac
    corpus="$SCRATCH/$name/corpus"
    mkdir -p "$corpus" "$SCRATCH/$name/tmp"
    cp -R "$ROOT/tests/fuzz/corpus/$name/." "$corpus/"
    dict=()
    [[ -f "$ROOT/tests/fuzz/$name.dict" ]] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
    log="$SCRATCH/$t.log"
    rc=0
    # TMPDIR: the targets' tok_save folders land in the scratch folder even after a crash
    TMPDIR="$SCRATCH/$name/tmp" "$BUILD/tests/fuzz/$t" \
        -max_total_time="$SECONDS_PER_TARGET" -max_len="$max_len" -timeout=60 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t-" "${dict[@]}" "$corpus" \
        </dev/null >"$log" 2>&1 || rc=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
    [[ -n "$runs" ]] || runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)"
    [[ -n "$runs" ]] || runs="$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n 1)"
    if ((rc == 0)); then
        echo "$t: ${runs:-?} runs, ok"
    else
        failed=1
        artifact="$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -n 1)"
        cp "$log" "$ARTIFACTS/$t.log"
        echo "--- $t: last lines of the log ($ARTIFACTS/$t.log) ---" >&2
        grep -vE '^(#[0-9]+|"|INFO:)|Uses: ' "$log" | tail -n 40 >&2 || true
        echo "$t: ${runs:-?} runs, CRASH (exit $rc), reproducer: ${artifact:-none}" \
            "(replay: $BUILD/tests/fuzz/$t ${artifact:-FILE})"
    fi
done
exit "$failed"
