"""gen_gpt2_golden.py - write the GPT-2 golden files in tests/data/gpt2/ (see its README.md).

    /usr/bin/python3 tools/golden/gen_gpt2_golden.py [--out tests/data/gpt2]

Deterministic: fixed seeds, one thread, sorted tensor names -> re-running gives byte-identical
files (on the same machine and BLAS; float64 results may differ in the last bits elsewhere).
"""
import argparse
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref as ref  # noqa: E402
import st  # noqa: E402

TINY = dict(n_layer=2, n_head=2, n_embd=32, vocab=61, n_positions=16)
SEED_WEIGHTS = 20240601
SEED_DATA = 7
# Weight scale: GPT-2's 0.02 leaves a 32-wide model nearly linear (GELU's tanh vs erf form changes the
# logits by 8e-7, below float32 test tolerances); 0.1 makes such mistakes visible (3e-4) while the
# logits stay moderate (|logit| < 3).
STD = 0.1
B, T = 3, 9
ADAMW = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip=1.0, steps=3)


def batch():
    g = torch.Generator().manual_seed(SEED_DATA)
    seq = torch.randint(0, TINY["vocab"], (B, T + 1), generator=g)
    tokens = seq[:, :T].to(torch.int32)
    targets = seq[:, 1:].to(torch.int32)      # next-token targets
    mask = torch.ones(B, T, dtype=torch.float64)
    mask[0, :3] = 0.0                          # a "prompt" not scored
    mask[1, 7:] = 0.0                          # padding at the end
    mask[2, 4] = 0.0                           # one hole in the middle
    return tokens, targets, mask


def results(cfg, P, tokens, targets, mask):
    """float64 logits, logp, loss for params P (float64)."""
    with torch.no_grad():
        logits = ref.forward(P, cfg, tokens)
        logp = ref.token_logprobs(P, cfg, tokens, targets, logits=logits)
        loss = ref.masked_loss(P, cfg, tokens, targets, mask, logp=logp)
    return logits, logp, loss


def grads(cfg, P, tokens, targets, mask):
    Q = {n: t.clone().requires_grad_(True) for n, t in P.items()}
    loss = ref.masked_loss(Q, cfg, tokens, targets, mask)
    loss.backward()
    return {n: Q[n].grad.detach().clone() for n in P}


def adamw(cfg, P, tokens, targets, mask):
    """3 AdamW steps on the same batch: clip_grad_norm_(1.0) then step; decay only on ndim >= 2."""
    Q = {n: t.clone().requires_grad_(True) for n, t in P.items()}
    decay = [t for t in Q.values() if t.dim() >= 2]
    no_decay = [t for t in Q.values() if t.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": ADAMW["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"], foreach=False)
    norms = []
    losses = []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = ref.masked_loss(Q, cfg, tokens, targets, mask)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(Q.values()), ADAMW["clip"])
        norms.append(float(norm))
        losses.append(float(loss))
        opt.step()
    return ({n: t.detach().clone() for n, t in Q.items()},
            torch.tensor(norms, dtype=torch.float64), torch.tensor(losses, dtype=torch.float64))


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "gpt2"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = a.out
    os.makedirs(out, exist_ok=True)
    for sub in ("tiny", "tiny_noprefix", "tiny_f16", "tiny_bf16"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)

    # tiny/: F32 weights with the prefix; the reference computes from the F32-rounded weights
    cfg, P = ref.make_random_hf(os.path.join(out, "tiny"), TINY["n_layer"], TINY["n_head"], TINY["n_embd"],
                                TINY["vocab"], TINY["n_positions"], SEED_WEIGHTS, prefix=True, dtype="F32",
                                std=STD)
    cfg2, P2 = ref.load_hf(os.path.join(out, "tiny"))
    assert all(torch.equal(P[n], P2[n]) for n in P)
    tokens, targets, mask = batch()
    logits, logp, loss = results(cfg, P, tokens, targets, mask)
    G = grads(cfg, P, tokens, targets, mask)
    A, norms, losses = adamw(cfg, P, tokens, targets, mask)
    gold = {"tokens": tokens, "targets": targets, "mask": mask.to(torch.float32),
            "logits": logits, "logp": logp, "loss": loss.reshape(1),
            "adamw.grad_norm": norms, "adamw.loss": losses}
    for n in P:
        gold["grad." + n] = G[n]
        gold["adamw.param." + n] = A[n]
    md = {k: repr(v) if isinstance(v, float) else str(v) for k, v in ADAMW.items()}
    md.update({"clip_eps": "1e-06", "decay": "ndim>=2", "lr_schedule": "constant",
               "loss": "-sum(mask*logp)/sum(mask)", "dtype": "float64", "seed_weights": str(SEED_WEIGHTS),
               "seed_data": str(SEED_DATA), "std": repr(STD)})
    st.save(os.path.join(out, "tiny", "golden.safetensors"), gold, md)

    # tiny_noprefix/: same F32 weights, names without "transformer.", with attn.bias/masked_bias
    ref.save_hf(os.path.join(out, "tiny_noprefix"), cfg, P, prefix=False, buffers="F32", dtype="F32")

    # tiny_f16/, tiny_bf16/: the same weights rounded to F16 / BF16; reference from the rounded ones
    for sub, dt, tdt in (("tiny_f16", "F16", torch.float16), ("tiny_bf16", "BF16", torch.bfloat16)):
        d = os.path.join(out, sub)
        ref.save_hf(d, cfg, P, prefix=True, buffers=False, dtype=dt)
        _, R = ref.load_hf(d)
        assert all(torch.equal(R[n], P[n].to(tdt).to(torch.float64)) for n in P)
        lg, lp, ls = results(cfg, R, tokens, targets, mask)
        st.save(os.path.join(d, "golden.safetensors"),
                {"tokens": tokens, "targets": targets, "mask": mask.to(torch.float32),
                 "logits": lg, "logp": lp, "loss": ls.reshape(1)},
                {"dtype": "float64", "weights": dt + " rounded from tiny/ (round to nearest even)"})

    total = 0
    for dp, _, fs in os.walk(out):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    print("wrote %s (%d bytes); loss %.6f, grad norms %s, adamw losses %s"
          % (out, total, float(loss), [round(x, 4) for x in norms.tolist()],
             [round(x, 4) for x in losses.tolist()]))


if __name__ == "__main__":
    main()
