#!/usr/bin/env bash
# quickstart.sh — the README's first command: installs dependencies, builds, and runs the main
# job. Until the sentiment pipeline lands, the main job is the tokenizer demo on real text
# (tools/demo_tokenizer.sh): train a byte-level BPE on Debian's English fortunes, compare it with
# GPT-2's own vocabulary, and round-trip the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_deps.sh
bash tools/build.sh
exec bash tools/demo_tokenizer.sh "$@"
