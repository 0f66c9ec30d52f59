#!/usr/bin/env bash
# demo_tokenizer.sh [OUT] — the tokenizer on real text: builds the English fortunes corpus, trains
# an 8k byte-level BPE on it, tokenizes it with that and with GPT-2's real vocabulary, checks the
# round trip and prints sizes and speed. Output in OUT (default out/tokenizer-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/tokenizer-demo}"
RLHF="${RLHF_BIN:-build/rlhf}"
mkdir -p "$OUT"

# the corpus: Debian's English fortunes (plain files; .dat indexes, .u8 links and offensive ones skipped)
corpus="$OUT/fortunes.txt"
if [ ! -s "$corpus" ]; then
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort |
    xargs cat | iconv -f utf-8 -t utf-8 -c > "$corpus.tmp"
  mv "$corpus.tmp" "$corpus"
fi
bytes=$(stat -c %s "$corpus")
echo "corpus: $corpus ($bytes bytes)"

"$RLHF" tokenizer train --corpus "$corpus" --vocab-size 8192 --out "$OUT/bpe8k" 2>&1 | tail -n 1
gpt2="$(bash tools/get_gpt2_vocab.sh | tail -n 1)/openai"

sample="$(awk 'BEGIN{RS="%\n"} NR==42{print; exit}' "$corpus")"
for tk in "$OUT/bpe8k" "$gpt2"; do
  t0=$(date +%s.%N)
  n=$("$RLHF" tokenize --tokenizer "$tk" --in "$corpus" | tee "$OUT/ids.txt" | wc -l)
  t1=$(date +%s.%N)
  "$RLHF" detokenize --tokenizer "$tk" --in "$OUT/ids.txt" | cmp -s - "$corpus" && rt=exact || rt=FAILED
  awk -v n="$n" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v tk="$tk" -v rt="$rt" \
    'BEGIN{printf "%-40s %9d tokens  %.2f bytes/token  %.0f MB/s  round trip: %s\n", tk, n, b/n, b/1e6/(t1-t0), rt}'
  echo "  sample: $(printf '%s' "$sample" | head -c 80 | tr '\n' ' ')"
  echo "  ids:    $(printf '%s' "$sample" | head -c 80 | "$RLHF" tokenize --tokenizer "$tk" | head -n 24 | tr '\n' ' ')"
done
rm -f "$OUT/ids.txt"
