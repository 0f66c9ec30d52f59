"""torch_gpt2_bench.py - PyTorch (CPU) peer for rlhf.c's speed comparison, in float32 or bfloat16.

    /usr/bin/python3 tools/bench/torch_gpt2_bench.py --mode train|sample [--config gpt2-small]
        [--batch 4] [--seq 64] [--steps 10] [--new-tokens 64] [--threads 2] [--temperature 1.0]
        [--dtype fp32|bf16]

--dtype bf16: training runs forward and loss under torch.autocast("cpu", dtype=torch.bfloat16)
(PyTorch's own mixed precision: fp32 parameters and optimizer, bf16 matrix products through
oneDNN); sampling casts the parameters and the KV cache to bfloat16.

A random-weight GPT-2 (same math as tools/golden/gpt2_ref.py, but float32 and with PyTorch's fused
ops: F.layer_norm, F.gelu(approximate="tanh"), F.cross_entropy; attention is plain matmuls with a
causal mask, as PyTorch 1.13 has no scaled_dot_product_attention). LM head tied to wte.

train:  per iteration: forward on (batch, seq) random tokens, mean cross-entropy, backward,
        torch.optim.AdamW step (lr 1e-4, betas (0.9, 0.95), weight decay 0.1 on 2-D tensors, global
        grad-norm clipping to 1.0). 2 warm-up iterations, then --steps timed ones.
        Prints `train_step_ms: X` (median) plus min/max.
sample: batched decoding with a KV cache (a hand-written cached loop: preallocated per-layer K/V
        tensors written in place, under torch.inference_mode()): batch prompts of 1 token, --new-tokens tokens each
        (greedy when --temperature 0, otherwise sampled), 1 short warm-up generation, then --steps
        timed generations (default 3). Prints `tokens_per_s: X` (median; batch x new tokens per
        generation / its wall time) and `decode_ms_per_step: X`.
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, vocab=50257, n_positions=1024),
    "gpt2-small": dict(n_layer=12, n_head=12, n_embd=768, vocab=50257, n_positions=1024),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, vocab=50257, n_positions=1024),
}


def init_params(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    L, C, V, P = cfg["n_layer"], cfg["n_embd"], cfg["vocab"], cfg["n_positions"]

    def n(*shape, std=0.02):
        return torch.randn(*shape, generator=g) * std

    p = {"wte": n(V, C), "wpe": n(P, C), "lnf_w": torch.ones(C), "lnf_b": torch.zeros(C)}
    for i in range(L):
        p["ln1_w%d" % i] = torch.ones(C)
        p["ln1_b%d" % i] = torch.zeros(C)
        p["qkv_w%d" % i] = n(C, 3 * C)
        p["qkv_b%d" % i] = torch.zeros(3 * C)
        p["proj_w%d" % i] = n(C, C, std=0.02 / math.sqrt(2 * L))
        p["proj_b%d" % i] = torch.zeros(C)
        p["ln2_w%d" % i] = torch.ones(C)
        p["ln2_b%d" % i] = torch.zeros(C)
        p["fc_w%d" % i] = n(C, 4 * C)
        p["fc_b%d" % i] = torch.zeros(4 * C)
        p["fcp_w%d" % i] = n(4 * C, C, std=0.02 / math.sqrt(2 * L))
        p["fcp_b%d" % i] = torch.zeros(C)
    return p


def block(p, i, x, nh, cache=None, pos=0):
    """One transformer block. cache: (k_cache, v_cache) each (B, NH, maxT, hd) filled up to pos."""
    B, T, C = x.shape
    hd = C // nh
    a = F.layer_norm(x, (C,), p["ln1_w%d" % i], p["ln1_b%d" % i], 1e-5)
    qkv = torch.addmm(p["qkv_b%d" % i], a.view(B * T, C), p["qkv_w%d" % i]).view(B, T, 3, nh, hd)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B,NH,T,hd)
    if cache is not None:
        kc, vc = cache
        kc[:, :, pos:pos + T] = k
        vc[:, :, pos:pos + T] = v
        k, v = kc[:, :, :pos + T], vc[:, :, :pos + T]
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
    if T > 1:
        S = k.shape[2]
        mask = torch.ones(T, S, dtype=torch.bool).tril(diagonal=S - T)
        att = att.masked_fill(~mask, float("-inf"))
    att = torch.softmax(att, dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B * T, C)
    x = x + torch.addmm(p["proj_b%d" % i], y, p["proj_w%d" % i]).view(B, T, C)
    m = F.layer_norm(x, (C,), p["ln2_w%d" % i], p["ln2_b%d" % i], 1e-5)
    m = F.gelu(torch.addmm(p["fc_b%d" % i], m.view(B * T, C), p["fc_w%d" % i]), approximate="tanh")
    return x + torch.addmm(p["fcp_b%d" % i], m, p["fcp_w%d" % i]).view(B, T, C)


def forward(p, cfg, tokens, caches=None, pos=0):
    B, T = tokens.shape
    x = p["wte"][tokens] + p["wpe"][pos:pos + T]
    for i in range(cfg["n_layer"]):
        x = block(p, i, x, cfg["n_head"], None if caches is None else caches[i], pos)
    x = F.layer_norm(x, (cfg["n_embd"],), p["lnf_w"], p["lnf_b"], 1e-5)
    return x @ p["wte"].t()


def bench_train(cfg, a):
    p = init_params(cfg)
    for t in p.values():
        t.requires_grad_(True)
    decay = [t for t in p.values() if t.dim() >= 2]
    other = [t for t in p.values() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, cfg["vocab"], (a.batch, a.seq + 1), generator=g)
    x, y = tokens[:, :-1], tokens[:, 1:]
    times = []
    for it in range(2 + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            logits = forward(p, cfg, x)
            loss = F.cross_entropy(logits.view(-1, cfg["vocab"]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if it >= 2:
            times.append(dt * 1e3)
        if a.verbose:
            print("step %d loss %.4f %.1f ms" % (it, loss.item(), dt * 1e3), file=sys.stderr)
    print("train_step_ms: %.1f" % statistics.median(times))
    print("train_step_ms_min: %.1f" % min(times))
    print("train_step_ms_max: %.1f" % max(times))


@torch.inference_mode()  # PyTorch's fastest no-autograd mode (no version counters or views tracking)
def generate(p, cfg, B, n_new, temperature, g):
    L, NH, C = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
    hd = C // NH
    maxT = 1 + n_new
    if maxT > cfg["n_positions"]:
        raise SystemExit("torch_gpt2_bench: 1 + new tokens > n_positions")
    dt = p["wte"].dtype
    caches = [(torch.zeros(B, NH, maxT, hd, dtype=dt), torch.zeros(B, NH, maxT, hd, dtype=dt)) for _ in range(L)]
    tok = torch.randint(0, cfg["vocab"], (B, 1), generator=g)
    out = [tok]
    for pos in range(n_new):
        logits = forward(p, cfg, tok, caches, pos)[:, -1]
        if temperature <= 0:
            tok = logits.argmax(-1, keepdim=True)
        else:
            tok = torch.multinomial(torch.softmax(logits.float() / temperature, -1), 1, generator=g)
        out.append(tok)
    return torch.cat(out, 1)


def bench_sample(cfg, a):
    p = init_params(cfg)
    if a.dtype == "bf16":
        p = {k: v.to(torch.bfloat16) for k, v in p.items()}
    g = torch.Generator().manual_seed(2)
    generate(p, cfg, a.batch, min(8, a.new_tokens), a.temperature, g)  # warm-up
    rates, per_step = [], []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        generate(p, cfg, a.batch, a.new_tokens, a.temperature, g)
        dt = time.perf_counter() - t0
        rates.append(a.batch * a.new_tokens / dt)
        per_step.append(dt * 1e3 / a.new_tokens)
    print("tokens_per_s: %.1f" % statistics.median(rates))
    print("decode_ms_per_step: %.2f" % statistics.median(per_step))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["train", "sample"], required=True)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="gpt2-small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None, help="timed iterations (train: 10, sample: 3)")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if a.steps is None:
        a.steps = 10 if a.mode == "train" else 3
    torch.set_num_threads(a.threads)
    cfg = CONFIGS[a.config]
    print("torch %s, %d threads, %s, %s, mode %s, batch %d, %s" % (
        torch.__version__, torch.get_num_threads(), a.dtype, a.config, a.mode, a.batch,
        "seq %d" % a.seq if a.mode == "train" else "new tokens %d" % a.new_tokens), file=sys.stderr)
    (bench_train if a.mode == "train" else bench_sample)(cfg, a)


if __name__ == "__main__":
    main()
