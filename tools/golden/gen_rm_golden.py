"""gen_rm_golden.py - golden data for the reward model (tests/data/rm/): a random GPT-2 sequence
classifier folder as transformers' GPT2ForSequenceClassification(num_labels=1).save_pretrained lays
it out, token rows right-padded with pad_token_id, and their float64 scores computed the way
transformers computes them:

    hidden = GPT-2 trunk (tools/golden/gpt2_ref.py, float64)
    logits = hidden @ score.weight^T                      # (B,T,1), no bias
    pos    = (arange(T) * (tokens != pad_token_id)).argmax(-1)   # rightmost non-pad token
    score  = logits[b, pos[b]]

plus reward.json (the bias rlhf.c keeps beside transformers' bias-free score layer), so the C score
is score + bias. Run with Debian's python (PyTorch, numpy):

    /usr/bin/python3 tools/golden/gen_rm_golden.py       # writes tests/data/rm/

Deterministic (fixed seeds): re-running gives byte-identical files.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref  # noqa: E402
import st  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "rm")

V, PAD, BIAS = 61, 60, 0.375


def main():
    folder = os.path.join(OUT, "tiny")
    cfg = gpt2_ref.make_config(2, 2, 32, V, 16)
    cfg["architectures"] = ["GPT2ForSequenceClassification"]
    cfg["id2label"] = {"0": "LABEL_0"}
    cfg["label2id"] = {"LABEL_0": 0}
    cfg["pad_token_id"] = PAD
    P = gpt2_ref.random_params(cfg, 20240607, std=0.1)
    gpt2_ref.save_hf(folder, cfg, P)
    g = torch.Generator().manual_seed(7)
    score_w = (torch.randn(1, 32, generator=g, dtype=torch.float64) * 0.3).to(torch.float32)
    # add score.weight to the trunk's file, as GPT2ForSequenceClassification's state dict has it
    tensors, meta = st.load_torch(os.path.join(folder, "model.safetensors"))
    tensors["score.weight"] = score_w
    st.save(os.path.join(folder, "model.safetensors"), tensors, meta)
    with open(os.path.join(folder, "reward.json"), "w") as f:
        json.dump({"bias": BIAS, "normalized": False}, f, indent=2, sort_keys=True)
        f.write("\n")

    # rows: right-padded with PAD; one ends in PAD-valued EOS before the padding (read before it),
    # one has no padding at all, one is a single token
    rows = [[5, 17, 3, 42, 9, PAD, PAD, PAD, PAD, PAD],
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            [33, PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD],
            [12, 59, 0, 7, PAD, PAD, PAD, PAD, PAD, PAD]]
    lengths = [6, 10, 1, 4]  # real lengths (row 0's EOS counts as real)
    tok = torch.tensor(rows, dtype=torch.long)
    P64 = {k: v.to(torch.float32).to(torch.float64) for k, v in P.items()}
    h = gpt2_ref.hidden(P64, cfg, tok)
    logits = h @ score_w.to(torch.float64).t()
    T = tok.shape[1]
    pos = (torch.arange(T) * (tok != PAD).long()).argmax(-1)
    score = logits[torch.arange(tok.shape[0]), pos, 0] + BIAS
    st.save(os.path.join(OUT, "golden.safetensors"),
            {"tokens": tok.to(torch.int32), "lengths": torch.tensor(lengths, dtype=torch.int32),
             "positions": pos.to(torch.int32), "scores": score},
            {"format": "rlhf.c-golden", "pad_token_id": str(PAD)})
    print("wrote", OUT)


if __name__ == "__main__":
    main()
