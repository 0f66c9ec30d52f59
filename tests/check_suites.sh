#!/usr/bin/env bash
# check_suites.sh EXE SUITE... — fails when the Criterion suites EXE declares (`EXE --list`) are not
# exactly the suites tests/meson.build registers as meson tests (the arguments): a suite left out
# would never run, a suite registered but gone would pass by running nothing.
set -euo pipefail
exe=$1
shift
declared=$("$exe" --list | sed -n 's/^\([A-Za-z0-9_]*\): [0-9]* tests*$/\1/p' | sort -u)
registered=$(printf '%s\n' "$@" | sort -u)
[ -n "$declared" ] || { echo "$exe --list declares no suites"; exit 1; }
missing=$(comm -23 <(echo "$declared") <(echo "$registered"))
gone=$(comm -13 <(echo "$declared") <(echo "$registered"))
[ -z "$missing" ] || echo "declared by a Test() but not registered in tests/meson.build:" $missing
[ -z "$gone" ] || echo "registered in tests/meson.build but declared by no Test():" $gone
[ -z "$missing$gone" ] || exit 1
echo "$(echo "$declared" | wc -l) suites, each registered once"
