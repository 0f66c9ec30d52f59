#!/usr/bin/env bash
# install.sh — the installable library, end to end (meson test `install`): `meson install` of the
# build folder into a temporary staging prefix (DESTDIR), then, through pkg-config only:
#   1. every installed header compiles on its own, and the umbrella <rlhf/rlhf.h>, with
#      -std=c11 -Wall -Wextra -Werror -pedantic (no _GNU_SOURCE);
#   2. the shared library exports the public API and not BLIS's symbols (linked inside, hidden);
#   3. tools/examples/sample.c and dpo.c build with `pkg-config --cflags --libs rlhf` and run on a
#      tiny model made with the installed `rlhf` (tokenizer train, 2 pretraining steps): sample
#      continues the prompt from the run folder, dpo writes a model that sample then loads.
#   tests/install.sh BUILD_DIR SOURCE_DIR
# A sanitizer build's library needs the sanitizer runtime first: the examples are then built with
# the same -fsanitize flags. Removes its staging folder at exit.
set -euo pipefail
BUILD="$(cd "$1" && pwd)"
SRC="$(cd "$2" && pwd)"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/rlhf-install.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
fail() { echo "install.sh: $*" >&2; exit 1; }

meson install -C "$BUILD" --no-rebuild --destdir "$STAGE/root" --quiet </dev/null >"$STAGE/install.log" 2>&1 ||
    { cat "$STAGE/install.log" >&2; fail "meson install failed"; }
pc="$(find "$STAGE/root" -name rlhf.pc -path '*/pkgconfig/*' | head -n 1)"
[[ -n "$pc" ]] || fail "no rlhf.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# the .pc names the real prefix; the files are staged under root: point its prefix there
prefix="$(pkg-config --variable=prefix rlhf)"
pkgc() { pkg-config --define-variable=prefix="$STAGE/root$prefix" "$@"; }
cflags="$(pkgc --cflags rlhf)" || fail "pkg-config --cflags rlhf failed"
libs="$(pkgc --libs rlhf)" || fail "pkg-config --libs rlhf failed"
libdir="$(pkgc --variable=libdir rlhf)"
incdir="$(pkgc --variable=includedir rlhf)/rlhf"
echo "pkg-config --cflags --libs rlhf: $cflags $libs"
so="$(readlink -f "$libdir/librlhf.so")"
[[ -f "$so" ]] || fail "no librlhf.so in $libdir"
soname="$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ "$soname" == librlhf.so.0.1 ]] || fail "soname '$soname', expected librlhf.so.0.1"
[[ -e "$libdir/$soname" ]] || fail "no $soname link in $libdir"
echo "installed $(basename "$so") (soname $soname), $(ls "$incdir" | wc -l) headers, rlhf.pc"

CC="${CC:-cc}"
san=()
if readelf -d "$so" | grep 'NEEDED.*libasan' >/dev/null; then san=(-fsanitize=address,undefined); fi
strict=(-std=c11 -Wall -Wextra -Werror -pedantic "${san[@]}")

# 1. the headers, each alone and all together
for h in "$incdir"/*.h; do
    printf '#include <rlhf/%s>\n' "$(basename "$h")" >"$STAGE/one.c"
    # shellcheck disable=SC2086
    "$CC" "${strict[@]}" $cflags -fsyntax-only "$STAGE/one.c" || fail "header rlhf/$(basename "$h") does not compile alone"
done
echo "every installed header compiles alone with ${strict[*]}"

# 2. exports: the public API, not BLIS
nm -D --defined-only "$so" | awk '{print $3}' >"$STAGE/exports"
for f in tok_load hf_load_gpt2 ckpt_resolve gpt2_sample ds_load dpo_run trainer_fit; do
    grep -qx "$f" "$STAGE/exports" || fail "$f is not exported"
done
if grep -qE '^(bli_|cblas_|bl1_)' "$STAGE/exports"; then fail "BLIS symbols are exported: $(grep -cE '^(bli_|cblas_)' "$STAGE/exports")"; fi
echo "$(wc -l <"$STAGE/exports") symbols exported, none of BLIS's"

# 3. the examples, against the installed library only
for ex in sample dpo; do
    # shellcheck disable=SC2086
    "$CC" "${strict[@]}" $cflags "$SRC/tools/examples/$ex.c" -o "$STAGE/$ex" $libs ||
        fail "tools/examples/$ex.c does not build with pkg-config"
done
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# (grep without -q: under pipefail, grep -q quitting early can kill the writer with SIGPIPE and fail the pipe)
ldd "$STAGE/sample" | grep "$libdir/librlhf.so.0.1" >/dev/null || fail "sample does not load the installed librlhf"
rlhf="$(find "$STAGE/root" -type f -name rlhf -perm -u+x | head -n 1)"
[[ -n "$rlhf" ]] || fail "no rlhf binary installed"

# a tiny model: tokenizer and 2 pretraining steps, by the installed CLI
for i in $(seq 40); do echo "the cat sat on the mat and the dog sat on the log. a good day, a bad day."; done >"$STAGE/corpus.txt"
"$rlhf" tokenizer train --corpus "$STAGE/corpus.txt" --vocab-size 300 --out "$STAGE/tok" --threads 1 >/dev/null 2>&1 ||
    fail "the installed rlhf could not train a tokenizer"
"$rlhf" pretrain --corpus "$STAGE/corpus.txt" --tokenizer "$STAGE/tok" --config tiny --seq 16 --batch 2 --steps 2 \
    --out "$STAGE/pre" --threads 1 >/dev/null 2>&1 || fail "the installed rlhf could not pretrain a tiny model"

out="$("$STAGE/sample" "$STAGE/pre" "the cat" 8)" || fail "sample failed"
[[ "$out" == "the cat"* ]] || fail "sample printed '$out'"
echo "sample (from the run folder): $out"
printf '%s\n' '{"prompt": "the cat", "chosen": " sat on the mat", "rejected": " had a bad day"}' \
    '{"prompt": "a dog", "chosen": " sat on the log", "rejected": " sat on the cat"}' >"$STAGE/prefs.jsonl"
"$STAGE/dpo" "$STAGE/pre" "$STAGE/prefs.jsonl" "$STAGE/dpo-out" 2 || fail "dpo failed"
[[ -f "$STAGE/dpo-out/model/config.json" ]] || fail "dpo wrote no model"
"$STAGE/sample" "$STAGE/dpo-out" "the dog" 4 >/dev/null || fail "sample cannot load what dpo wrote"
echo "install: ok"
