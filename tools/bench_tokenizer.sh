#!/usr/bin/env bash
# bench_tokenizer.sh - throughput of the C GPT-2 tokenizer (`rlhf tokenize`)
# against the reference, tiktoken (WASM, in-process), on ~20 MB of real text.
#
# Usage: tools/bench_tokenizer.sh
#   RLHF_BIN   the rlhf binary (default: build/rlhf in the repo)
#   RLHF_CACHE cache dir (default: ~/.cache/rlhf.c)
# The corpus ($CACHE/bench/text20mb.txt, built once) is the English fortunes,
# /usr/share/common-licenses/* and /usr/share/doc/*/{changelog*.gz,copyright}
# in sorted order, valid UTF-8 files only, cut to exactly 20,000,000 bytes
# (ending in a newline). It depends on the Debian packages installed, so
# compare numbers from one machine only. MB = 1e6 bytes.
# Prints tiktoken_mb_per_s, rlhf_mb_per_s (whole process, best of 3),
# ratio (rlhf / tiktoken) and same_count (token counts agree).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RLHF_CACHE:-$HOME/.cache/rlhf.c}"
RLHF="${RLHF_BIN:-$ROOT/build/rlhf}"
TARGET=20000000
CORPUS="$CACHE/bench/text20mb.txt"

die() { echo "bench_tokenizer.sh: $*" >&2; exit 1; }

GPT2_DIR="$("$ROOT/tools/get_gpt2_vocab.sh" | tail -n 1)"

# ---------------------------------------------------------------------------
# Corpus.
# Lists the candidate source files, one per line, in the fixed order.
corpus_sources() {
    local f
    if [[ -d /usr/share/games/fortunes ]]; then
        # Plain fortune files (no extension; .dat/.u8 are indexes/symlinks).
        find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.*' | LC_ALL=C sort
    fi
    find /usr/share/common-licenses -maxdepth 1 -type f | LC_ALL=C sort
    for f in /usr/share/doc/*/changelog*.gz /usr/share/doc/*/copyright; do
        [[ -f "$f" ]] && printf '%s\n' "$f"
    done | LC_ALL=C sort
}

# Appends the text of one source file to $2 if it is valid UTF-8 without NULs.
append_source() {
    local src="$1" out="$2" tmp="$3"
    case "$src" in
        *.gz) gzip -dc -- "$src" >"$tmp" 2>/dev/null || return 0 ;;
        *) cat -- "$src" >"$tmp" ;;
    esac
    [[ -s "$tmp" ]] || return 0
    iconv -f utf-8 -t utf-8 "$tmp" >/dev/null 2>&1 || return 0
    if LC_ALL=C grep -qaP '\x00' "$tmp"; then return 0; fi
    cat "$tmp" >>"$out"
    printf '\n' >>"$out"
}

build_corpus() {
    local dir part tmp size src real
    dir="$(dirname "$CORPUS")"
    mkdir -p "$dir"
    part="$CORPUS.part.$$"
    tmp="$CORPUS.src.$$"
    trap 'rm -f "$part" "$tmp" "$part.cut"' EXIT
    : >"$part"
    declare -A seen=()
    size=0
    while IFS= read -r src; do
        # /usr/share/doc has symlinked directories: take each real file once.
        real="$(readlink -f -- "$src")"
        [[ -n "${seen[$real]:-}" ]] && continue
        seen[$real]=1
        append_source "$src" "$part" "$tmp"
        size=$(stat -c %s "$part")
        ((size >= TARGET)) && break
    done < <(corpus_sources)
    ((size >= TARGET)) || die "only $size bytes of UTF-8 text found (need $TARGET)"

    # Exactly TARGET bytes: the first TARGET-1 bytes, minus an incomplete
    # trailing UTF-8 sequence (at most 3 bytes), padded with spaces, then "\n".
    head -c $((TARGET - 1)) "$part" >"$part.cut"
    local i
    for i in 1 2 3 4; do
        iconv -f utf-8 -t utf-8 "$part.cut" >/dev/null 2>&1 && break
        ((i < 4)) || die "cannot cut corpus at a UTF-8 boundary"
        truncate -s -1 "$part.cut"
    done
    size=$(stat -c %s "$part.cut")
    printf '%*s\n' $((TARGET - 1 - size)) '' | tr -d '\n' >>"$part.cut"
    printf '\n' >>"$part.cut"
    [[ "$(stat -c %s "$part.cut")" == "$TARGET" ]] || die "corpus has the wrong size"
    iconv -f utf-8 -t utf-8 "$part.cut" >/dev/null 2>&1 || die "corpus is not valid UTF-8"
    mv -f "$part.cut" "$CORPUS"
    rm -f "$part" "$tmp"
    trap - EXIT
}

if [[ ! -f "$CORPUS" ]] || [[ "$(stat -c %s "$CORPUS")" != "$TARGET" ]]; then
    echo "building corpus $CORPUS ..." >&2
    build_corpus
fi
BYTES=$(stat -c %s "$CORPUS")
echo "corpus: $CORPUS ($BYTES bytes, sha256 $(sha256sum "$CORPUS" | cut -c1-16))"

# ---------------------------------------------------------------------------
# tiktoken (in-process timing of encode over the whole file).
TT_OUT="$(node "$ROOT/tools/bench/tiktoken_bench.mjs" "$CORPUS")"
echo "$TT_OUT"
TT_MBPS="$(awk -F': ' '$1 == "tiktoken_mb_per_s" {print $2}' <<<"$TT_OUT")"
TT_TOKENS="$(awk -F': ' '$1 == "tiktoken_tokens" {print $2}' <<<"$TT_OUT")"
[[ -n "$TT_MBPS" && -n "$TT_TOKENS" ]] || die "could not parse tiktoken_bench.mjs output"

# ---------------------------------------------------------------------------
# rlhf tokenize (whole process: loading the vocab + tokenizing + printing).
[[ -x "$RLHF" ]] || die "$RLHF not found or not executable (build it, or set RLHF_BIN)"

best=""
for _ in 1 2 3; do
    t0=$(date +%s.%N)
    "$RLHF" tokenize --tokenizer "$GPT2_DIR/openai" --in "$CORPUS" >/dev/null ||
        die "$RLHF tokenize failed"
    t1=$(date +%s.%N)
    best=$(awk -v a="$t0" -v b="$t1" -v best="$best" \
        'BEGIN { d = b - a; if (best == "" || d < best) best = d; printf "%.6f", best }')
done
RLHF_TOKENS=$("$RLHF" tokenize --tokenizer "$GPT2_DIR/openai" --in "$CORPUS" | wc -l)

awk -v bytes="$BYTES" -v s="$best" -v tt="$TT_MBPS" 'BEGIN {
    mbps = bytes / 1e6 / s
    printf "rlhf_seconds: %.3f\n", s
    printf "rlhf_mb_per_s: %.2f\n", mbps
    printf "ratio: %.3f\n", mbps / tt
}'
echo "rlhf_tokens: $RLHF_TOKENS"
if [[ "$RLHF_TOKENS" == "$TT_TOKENS" ]]; then
    echo "same_count: yes"
else
    echo "same_count: no"
fi
