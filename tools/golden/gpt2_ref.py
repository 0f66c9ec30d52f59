"""gpt2_ref.py - a plain-PyTorch (functional) GPT-2 reference, and random Hugging Face folders.

No transformers/safetensors packages needed: weights are read with tools/golden/st.py.

    cfg, P = load_hf(dir, dtype=torch.float64)   # P: {canonical HF name: tensor}, names always with
                                                 # the "transformer." prefix; attn.bias/masked_bias
                                                 # buffers and a tied lm_head.weight are dropped
    logits = forward(P, cfg, tokens)             # tokens (B,T) int -> (B,T,V)
    logp   = token_logprobs(P, cfg, tokens, targets)       # (B,T) log softmax at targets
    loss   = masked_loss(P, cfg, tokens, targets, mask)    # mean of -logp over mask (scalar)
    lp     = sequence_logprobs(P, cfg, ids)      # (n-1,) log p(ids[t] | ids[:t]), t = 1..n-1
    make_random_hf(dir, n_layer, n_head, n_embd, vocab, n_positions, seed, prefix=True,
                   buffers=False, dtype='F32', std=0.02)

The model is GPT-2 exactly as Hugging Face's GPT2LMHeadModel computes it: token + learned position
embeddings, pre-LayerNorm blocks (eps from config, 1e-5), causal multi-head attention with scores
scaled by 1/sqrt(head_dim), GELU tanh form ("gelu_new"), final LayerNorm, LM head tied to wte.
Linear weights are Conv1D, stored (in, out): y = x @ W + b.

Command line (for scripts):
    gpt2_ref.py make-random DIR --n-layer 2 --n-head 2 --n-embd 64 --vocab 50257 --n-positions 128
                [--seed 1] [--no-prefix] [--buffers F32|BOOL] [--dtype F32|F16|BF16|F64] [--std 0.02]
    gpt2_ref.py logprobs --model DIR [--dtype f64|f32] < ids      # like `rlhf logprobs`
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

PREFIX = "transformer."


# ----------------------------------------------------------------------------- names and shapes

def param_shapes(cfg):
    """Ordered {canonical HF name (with prefix): shape} of the trainable tensors."""
    L, C, V, P = cfg["n_layer"], cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    out = {PREFIX + "wte.weight": (V, C), PREFIX + "wpe.weight": (P, C)}
    for i in range(L):
        h = PREFIX + "h.%d." % i
        out[h + "ln_1.weight"] = (C,)
        out[h + "ln_1.bias"] = (C,)
        out[h + "attn.c_attn.weight"] = (C, 3 * C)
        out[h + "attn.c_attn.bias"] = (3 * C,)
        out[h + "attn.c_proj.weight"] = (C, C)
        out[h + "attn.c_proj.bias"] = (C,)
        out[h + "ln_2.weight"] = (C,)
        out[h + "ln_2.bias"] = (C,)
        out[h + "mlp.c_fc.weight"] = (C, 4 * C)
        out[h + "mlp.c_fc.bias"] = (4 * C,)
        out[h + "mlp.c_proj.weight"] = (4 * C, C)
        out[h + "mlp.c_proj.bias"] = (C,)
    out[PREFIX + "ln_f.weight"] = (C,)
    out[PREFIX + "ln_f.bias"] = (C,)
    return out


def make_config(n_layer, n_head, n_embd, vocab, n_positions):
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": vocab - 1,
        "embd_pdrop": 0.1,
        "eos_token_id": vocab - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": n_positions,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_inner": None,
        "n_layer": n_layer,
        "n_positions": n_positions,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "vocab_size": vocab,
    }


# ----------------------------------------------------------------------------- loading and saving

def load_hf(path, dtype=torch.float64):
    """Load an HF GPT-2 folder -> (cfg dict, {canonical name: tensor of dtype})."""
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise ValueError("%s: model_type %r is not gpt2" % (path, cfg.get("model_type")))
    act = cfg.get("activation_function", "gelu_new")
    if act != "gelu_new":
        raise ValueError("%s: activation_function %r (only gelu_new)" % (path, act))
    if cfg.get("n_inner") not in (None, 4 * cfg["n_embd"]):
        raise ValueError("%s: n_inner %r (only 4*n_embd)" % (path, cfg["n_inner"]))
    cfg.setdefault("layer_norm_epsilon", 1e-5)
    raw, _ = st.load_torch(os.path.join(path, "model.safetensors"))
    want = param_shapes(cfg)
    P = {}
    for name, t in raw.items():
        canon = name if name.startswith(PREFIX) else PREFIX + name
        short = canon[len(PREFIX):]
        parts = short.split(".")
        if (len(parts) == 4 and parts[0] == "h" and parts[1].isdigit() and parts[2] == "attn"
                and parts[3] in ("bias", "masked_bias")):
            continue  # causal-mask buffers of older checkpoints
        if short == "lm_head.weight" or name == "lm_head.weight":
            continue  # checked below: must equal wte (tied)
        if canon not in want:
            raise ValueError("%s: unexpected tensor %s" % (path, name))
        if canon in P:
            raise ValueError("%s: %s given twice" % (path, canon))
        if tuple(t.shape) != tuple(want[canon]):
            raise ValueError("%s: %s has shape %s, expected %s" % (path, name, list(t.shape), list(want[canon])))
        P[canon] = t.to(dtype)
    missing = [n for n in want if n not in P]
    if missing:
        raise ValueError("%s: missing %s" % (path, ", ".join(missing[:5])))
    if "lm_head.weight" in raw and not torch.equal(raw["lm_head.weight"].to(dtype), P[PREFIX + "wte.weight"]):
        raise ValueError("%s: lm_head.weight differs from wte (untied heads are not GPT-2)" % path)
    return cfg, {n: P[n] for n in want}


def save_hf(path, cfg, P, prefix=True, buffers=False, dtype="F32"):
    """Write config.json + model.safetensors. P: {canonical name: tensor}. dtype: F32/F16/BF16/F64.
    buffers: False, True/'F32' (float 0/1 mask) or 'BOOL' -> add attn.bias (1,1,P,P) lower-triangular
    and attn.masked_bias (scalar -1e4) per layer, as older checkpoints have."""
    os.makedirs(path, exist_ok=True)
    tdt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}[dtype]
    out = {}
    for name, t in P.items():
        key = name if prefix else name[len(PREFIX):]
        out[key] = t.detach().to(tdt).contiguous()
    if buffers:
        Pn = cfg["n_positions"]
        tri = torch.tril(torch.ones(Pn, Pn, dtype=torch.float32)).view(1, 1, Pn, Pn)
        if buffers == "BOOL":
            tri = tri.to(torch.bool)
        for i in range(cfg["n_layer"]):
            h = ("transformer." if prefix else "") + "h.%d." % i
            out[h + "attn.bias"] = tri
            out[h + "attn.masked_bias"] = torch.tensor(-1e4, dtype=torch.float32)
    st.save(os.path.join(path, "model.safetensors"), out, {"format": "pt"})
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def random_params(cfg, seed, std=0.02):
    """GPT-2-style random weights in float64 (deterministic for a seed):
    weights N(0, std); residual projections (attn.c_proj, mlp.c_proj weights) N(0, std/sqrt(2L));
    biases N(0, std) (not 0, so they are tested); LayerNorm weights 1 + N(0, 0.1), biases N(0, 0.1)."""
    g = torch.Generator().manual_seed(int(seed))
    L = cfg["n_layer"]
    P = {}
    for name, shape in param_shapes(cfg).items():
        z = torch.randn(shape, generator=g, dtype=torch.float64)
        if ".ln_" in name:
            P[name] = 1.0 + 0.1 * z if name.endswith(".weight") else 0.1 * z
        elif name.endswith("c_proj.weight"):
            P[name] = z * (std / math.sqrt(2 * L))
        else:
            P[name] = z * std
    return P


def make_random_hf(dir, n_layer, n_head, n_embd, vocab, n_positions, seed, prefix=True,
                   buffers=False, dtype="F32", std=0.02):
    """Write a random GPT-2 HF folder; returns (cfg, float64 params as stored, i.e. after rounding)."""
    if n_embd % n_head:
        raise ValueError("n_embd %d is not a multiple of n_head %d" % (n_embd, n_head))
    cfg = make_config(n_layer, n_head, n_embd, vocab, n_positions)
    P = random_params(cfg, seed, std)
    save_hf(dir, cfg, P, prefix=prefix, buffers=buffers, dtype=dtype)
    tdt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}[dtype]
    return cfg, {n: t.to(tdt).to(torch.float64) for n, t in P.items()}


# ----------------------------------------------------------------------------- the model

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance, as torch's LayerNorm
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(x, w, b, wo, bo, n_head):
    B, T, C = x.shape
    hd = C // n_head
    qkv = x @ w + b                                    # (B,T,3C): q | k | v, heads contiguous
    q, k, v = qkv.split(C, dim=-1)
    q = q.view(B, T, n_head, hd).transpose(1, 2)       # (B,NH,T,hd)
    k = k.view(B, T, n_head, hd).transpose(1, 2)
    v = v.view(B, T, n_head, hd).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    att = att.masked_fill(~causal, float("-inf"))
    att = torch.softmax(att, dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)
    return y @ wo + bo


def hidden(P, cfg, tokens):
    """tokens (B,T) -> final hidden states (B,T,C) after ln_f."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    B, T = tokens.shape
    if T > cfg["n_positions"]:
        raise ValueError("T=%d > n_positions=%d" % (T, cfg["n_positions"]))
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    x = P[PREFIX + "wte.weight"][tokens] + P[PREFIX + "wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        h = PREFIX + "h.%d." % i
        a = layer_norm(x, P[h + "ln_1.weight"], P[h + "ln_1.bias"], eps)
        x = x + attention(a, P[h + "attn.c_attn.weight"], P[h + "attn.c_attn.bias"],
                          P[h + "attn.c_proj.weight"], P[h + "attn.c_proj.bias"], cfg["n_head"])
        m = layer_norm(x, P[h + "ln_2.weight"], P[h + "ln_2.bias"], eps)
        m = gelu_new(m @ P[h + "mlp.c_fc.weight"] + P[h + "mlp.c_fc.bias"])
        x = x + (m @ P[h + "mlp.c_proj.weight"] + P[h + "mlp.c_proj.bias"])
    return layer_norm(x, P[PREFIX + "ln_f.weight"], P[PREFIX + "ln_f.bias"], eps)


def forward(P, cfg, tokens):
    """tokens (B,T) -> logits (B,T,V) (LM head tied to wte)."""
    return hidden(P, cfg, tokens) @ P[PREFIX + "wte.weight"].t()


def token_logprobs(P, cfg, tokens, targets, logits=None):
    """(B,T) log softmax(logits)[target]."""
    if logits is None:
        logits = forward(P, cfg, tokens)
    targets = torch.as_tensor(targets, dtype=torch.long)
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def masked_loss(P, cfg, tokens, targets, mask=None, logp=None):
    """Mean of -logp over positions where mask != 0 (weighted by mask): -sum(mask*logp)/sum(mask)."""
    if logp is None:
        logp = token_logprobs(P, cfg, tokens, targets)
    if mask is None:
        return -logp.mean()
    mask = torch.as_tensor(mask, dtype=logp.dtype)
    return -(mask * logp).sum() / mask.sum()


@torch.no_grad()
def sequence_logprobs(P, cfg, ids):
    """ids (n,) -> (n-1,) log p(ids[t] | ids[:t]) for t = 1..n-1, in one forward."""
    ids = torch.as_tensor(ids, dtype=torch.long).view(1, -1)
    return token_logprobs(P, cfg, ids[:, :-1], ids[:, 1:])[0]


# ----------------------------------------------------------------------------- command line

def _main(argv):
    ap = argparse.ArgumentParser(prog="gpt2_ref.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-random", help="write a random GPT-2 HF folder")
    mk.add_argument("dir")
    mk.add_argument("--n-layer", type=int, required=True)
    mk.add_argument("--n-head", type=int, required=True)
    mk.add_argument("--n-embd", type=int, required=True)
    mk.add_argument("--vocab", type=int, default=50257)
    mk.add_argument("--n-positions", type=int, default=1024)
    mk.add_argument("--seed", type=int, default=1)
    mk.add_argument("--no-prefix", action="store_true")
    mk.add_argument("--buffers", choices=["F32", "BOOL"], default=None)
    mk.add_argument("--dtype", choices=["F32", "F16", "BF16", "F64"], default="F32")
    mk.add_argument("--std", type=float, default=0.02)
    lp = sub.add_parser("logprobs", help="ids on stdin -> one log-prob per line (tokens 1..n-1)")
    lp.add_argument("--model", required=True)
    lp.add_argument("--dtype", choices=["f64", "f32"], default="f64")
    a = ap.parse_args(argv)
    if a.cmd == "make-random":
        make_random_hf(a.dir, a.n_layer, a.n_head, a.n_embd, a.vocab, a.n_positions, a.seed,
                       prefix=not a.no_prefix, buffers=a.buffers or False, dtype=a.dtype, std=a.std)
    else:
        cfg, P = load_hf(a.model, torch.float64 if a.dtype == "f64" else torch.float32)
        ids = [int(x) for x in sys.stdin.read().split()]
        if len(ids) < 1:
            sys.exit("gpt2_ref.py: no ids on stdin")
        for v in sequence_logprobs(P, cfg, ids).tolist():
            print("%.17g" % v)


if __name__ == "__main__":
    _main(sys.argv[1:])
