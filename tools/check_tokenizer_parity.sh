#!/usr/bin/env bash
# check_tokenizer_parity.sh - check that the C GPT-2 tokenizer gives exactly
# tiktoken's token ids on real files.
#
# Usage: tools/check_tokenizer_parity.sh FILE...
#   RLHF_BIN   the rlhf binary (default: build/rlhf in the repo)
#   RLHF_CACHE cache dir (default: ~/.cache/rlhf.c)
# For each UTF-8 text FILE, compares `rlhf tokenize --tokenizer DIR --in FILE`
# (one id per line, ordinary encoding) with tiktoken's gpt2 ordinary encoding
# (tools/bench/tiktoken_ids.mjs), for DIR = $CACHE/gpt2/openai and
# $CACHE/gpt2/hf. Prints OK or the first differing index with context per
# file and layout; exits 1 on any mismatch, 2 on usage errors.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RLHF="${RLHF_BIN:-$ROOT/build/rlhf}"

if (($# == 0)); then
    echo "usage: tools/check_tokenizer_parity.sh FILE..." >&2
    exit 2
fi
[[ -x "$RLHF" ]] || { echo "check_tokenizer_parity.sh: $RLHF not found or not executable (build it, or set RLHF_BIN)" >&2; exit 2; }

GPT2_DIR="$("$ROOT/tools/get_gpt2_vocab.sh" | tail -n 1)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fail=0
for file in "$@"; do
    if [[ ! -f "$file" ]]; then
        echo "$file: FAIL (no such file)"
        fail=1
        continue
    fi
    if ! node "$ROOT/tools/bench/tiktoken_ids.mjs" "$file" >"$WORK/expected" 2>"$WORK/err"; then
        echo "$file: FAIL (tiktoken: $(head -n 1 "$WORK/err"))"
        fail=1
        continue
    fi
    n=$(wc -l <"$WORK/expected")
    for layout in openai hf; do
        if ! "$RLHF" tokenize --tokenizer "$GPT2_DIR/$layout" --in "$file" >"$WORK/got" 2>"$WORK/err"; then
            echo "$file [$layout]: FAIL (rlhf tokenize exited non-zero: $(head -n 1 "$WORK/err"))"
            fail=1
            continue
        fi
        if cmp -s "$WORK/expected" "$WORK/got"; then
            echo "$file [$layout]: OK ($n tokens)"
        else
            echo "$file [$layout]: MISMATCH"
            # diff_ids.mjs exits 0 when the id lists are equal: then only the
            # formatting differs (e.g. CRLF, blank lines, missing last newline).
            if node "$ROOT/tools/bench/diff_ids.mjs" "$file" "$WORK/expected" "$WORK/got"; then
                echo "  same ids, but the output bytes differ: expected exactly one decimal id per line"
            fi
            fail=1
        fi
    done
done
exit "$fail"
