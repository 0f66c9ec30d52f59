#!/usr/bin/env bash
# download_hf_gpt2.sh - download a GPT-2 checkpoint folder from Hugging Face,
# for users on a machine with internet access (the project's own machines
# have none; tests use the vocab from tools/get_gpt2_vocab.sh instead).
#
# Usage: tools/download_hf_gpt2.sh [MODEL] [DIR]
#   MODEL  Hugging Face model id (default: openai-community/gpt2; also
#          openai-community/gpt2-medium, -large, -xl, or any GPT-2 repo with
#          the same files)
#   DIR    destination folder (default: models/$(basename MODEL))
# Fetches config.json, model.safetensors, vocab.json, merges.txt,
# tokenizer.json and generation_config.json from
# https://huggingface.co/MODEL/resolve/main/FILE. Each file is downloaded to a
# temporary name and renamed when complete, so an interrupted run never
# leaves a truncated file under the final name. Set HF_TOKEN for gated or
# private repositories.
set -euo pipefail

MODEL="${1:-openai-community/gpt2}"
DIR="${2:-models/$(basename "$MODEL")}"
BASE_URL="https://huggingface.co"
FILES=(config.json model.safetensors vocab.json merges.txt tokenizer.json generation_config.json)

command -v curl >/dev/null 2>&1 || { echo "download_hf_gpt2.sh: curl not found (apt-get install -y curl)" >&2; exit 1; }

auth=()
if [[ -n "${HF_TOKEN:-}" ]]; then
    auth=(--header "Authorization: Bearer $HF_TOKEN")
fi

mkdir -p "$DIR"
tmp=""
trap 'if [[ -n "$tmp" ]]; then rm -f "$tmp"; fi' EXIT

for f in "${FILES[@]}"; do
    url="$BASE_URL/$MODEL/resolve/main/$f"
    tmp="$DIR/.$f.part.$$"
    echo "downloading $url" >&2
    if ! curl --fail --location --retry 3 --silent --show-error "${auth[@]}" --output "$tmp" "$url"; then
        echo "download_hf_gpt2.sh: failed to download $url (check the model name and your network)" >&2
        exit 1
    fi
    mv -f "$tmp" "$DIR/$f"
    tmp=""
done

echo "$DIR"
