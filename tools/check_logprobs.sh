#!/usr/bin/env bash
# check_logprobs.sh - acceptance check: `rlhf logprobs --model DIR` agrees with a float64 PyTorch
# GPT-2 (tools/golden/gpt2_ref.py) within 1e-4 (tiny shape) and 2e-4 (124M shape) in fp32; with
# PRECISION=bf16 (`rlhf logprobs --precision bf16`: bf16 products, fp32 accumulation) within 0.05
# max abs and 0.01 mean abs at every shape.
#
# Usage: [PRECISION=fp32|bf16] tools/check_logprobs.sh [tiny|124m|all]      (default fp32, all)
#   RLHF_BIN   the rlhf binary (default: build/rlhf in the repo)
#   PYTHON     a Python with PyTorch and numpy (default: /usr/bin/python3)
#   KEEP=1     keep the temporary folder (printed) instead of deleting it
# Writes random Hugging Face GPT-2 folders (config.json + model.safetensors, GPT-2 init, non-zero
# biases) into a temporary folder:
#   tiny           2 layers, 2 heads, n_embd 64, vocab 50257, 128 positions, "transformer." prefix
#   tiny-nopre     the same weights, names without the prefix, with bool attn.bias/masked_bias buffers
#   tiny-sharp     the tiny shape with weights N(0, 0.1) instead of GPT-2's 0.02: at 0.02 a model
#                  this small is nearly linear and e.g. GELU's erf form instead of tanh moves the
#                  log-probs by only 4e-6; at 0.1 by 4e-4, so the 1e-4 check catches it
#   124m           12 layers, 12 heads, n_embd 768, vocab 50257, 1024 positions, prefix, no buffers
#   124m-nopre     the same weights, no prefix, float attn.bias/masked_bias buffers (as HF's gpt2)
# and for each, random token sequences (64 and 200 tokens; capped at n_positions), fed one per
# invocation to `rlhf logprobs --model DIR` on standard input. Its output (one natural-log
# probability per line for each token after the first, given all tokens before it) is compared with
# the reference; prints max abs error and PASS/FAIL per case, exits 1 if any case fails.
# The 124M cases need ~1.1 GB of temporary disk and a few GB of memory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RLHF="${RLHF_BIN:-$ROOT/build/rlhf}"
PY="${PYTHON:-/usr/bin/python3}"
REF="$ROOT/tools/golden/gpt2_ref.py"
CHK="$ROOT/tools/golden/check_logprobs.py"
WHICH="${1:-all}"
PRECISION="${PRECISION:-fp32}"
case "$PRECISION" in fp32|bf16) ;; *) echo "check_logprobs.sh: PRECISION must be fp32 or bf16" >&2; exit 2 ;; esac

case "$WHICH" in tiny|124m|all) ;; *) echo "usage: tools/check_logprobs.sh [tiny|124m|all]" >&2; exit 2 ;; esac
[[ -x "$RLHF" ]] || { echo "check_logprobs.sh: $RLHF not found or not executable (build it, or set RLHF_BIN)" >&2; exit 2; }
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "check_logprobs.sh: $PY lacks torch/numpy (set PYTHON)" >&2; exit 2; }

WORK="$(mktemp -d)"
if [[ "${KEEP:-0}" == 1 ]]; then echo "check_logprobs.sh: keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

fail=0
# run_case NAME DIR VOCAB NPOS TOL SEED
run_case() {
    local name=$1 dir=$2 vocab=$3 npos=$4 tol=$5 seed=$6 n k=0 mean=()
    if [[ "$PRECISION" == bf16 ]]; then tol=0.05; mean=(--mean-tol 0.01); fi
    for n in 64 200; do
        ((n > npos)) && n=$npos
        k=$((k + 1))
        "$PY" "$CHK" ids --n "$n" --vocab "$vocab" --seed $((seed * 10 + k)) >"$WORK/ids"
        if ! "$RLHF" logprobs --model "$dir" --precision "$PRECISION" <"$WORK/ids" >"$WORK/got" 2>"$WORK/err"; then
            echo "$name [$n tokens]: FAIL (rlhf logprobs exited non-zero: $(head -n 1 "$WORK/err"))"
            fail=1
            continue
        fi
        "$PY" "$CHK" compare --model "$dir" --ids "$WORK/ids" --got "$WORK/got" --tol "$tol" "${mean[@]}" \
            --name "$name $PRECISION [$n tokens]" || fail=1
    done
}

if [[ "$WHICH" == tiny || "$WHICH" == all ]]; then
    "$PY" "$REF" make-random "$WORK/tiny" --n-layer 2 --n-head 2 --n-embd 64 --vocab 50257 --n-positions 128 --seed 11
    "$PY" "$REF" make-random "$WORK/tiny-nopre" --n-layer 2 --n-head 2 --n-embd 64 --vocab 50257 --n-positions 128 --seed 11 \
        --no-prefix --buffers BOOL
    run_case tiny "$WORK/tiny" 50257 128 1e-4 1
    run_case tiny-nopre "$WORK/tiny-nopre" 50257 128 1e-4 2
    "$PY" "$REF" make-random "$WORK/tiny-sharp" --n-layer 2 --n-head 2 --n-embd 64 --vocab 50257 --n-positions 128 --seed 13 \
        --std 0.1
    run_case tiny-sharp "$WORK/tiny-sharp" 50257 128 1e-4 5
    rm -rf "$WORK/tiny" "$WORK/tiny-nopre" "$WORK/tiny-sharp"
fi
if [[ "$WHICH" == 124m || "$WHICH" == all ]]; then
    "$PY" "$REF" make-random "$WORK/124m" --n-layer 12 --n-head 12 --n-embd 768 --vocab 50257 --n-positions 1024 --seed 12
    run_case 124m "$WORK/124m" 50257 1024 2e-4 3
    rm -rf "$WORK/124m"
    "$PY" "$REF" make-random "$WORK/124m-nopre" --n-layer 12 --n-head 12 --n-embd 768 --vocab 50257 --n-positions 1024 --seed 12 \
        --no-prefix --buffers F32
    run_case 124m-nopre "$WORK/124m-nopre" 50257 1024 2e-4 4
fi

if ((fail)); then echo "check_logprobs: FAIL"; exit 1; fi
echo "check_logprobs: PASS"
