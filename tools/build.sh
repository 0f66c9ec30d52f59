#!/usr/bin/env bash
# build.sh — configures (once) and builds rlhf.c into build/ (release, -march=native, warnings
# as errors). The binary is build/rlhf. Pass meson options as arguments on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  log=$(mktemp)
  meson setup build --buildtype=release -Dwerror=true "$@" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
  rm -f "$log"
fi
log=$(mktemp)
ninja -C build >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
rm -f "$log"
