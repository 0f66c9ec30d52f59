#!/usr/bin/env bash
# build.sh — configures (once) and builds rlhf.c into build/ (release, -march=native, warnings
# as errors). The binary is build/rlhf. Pass meson options as arguments on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release -Dwerror=true "$@" >/dev/null
fi
ninja -C build >/dev/null
