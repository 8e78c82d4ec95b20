#!/usr/bin/env python3
"""Reference trace of torch.optim.AdamW for wick's AdamW test (tests/ops/test_adamw_torch.cpp).

Run where PyTorch and safetensors are installed (the GPU machine; the CPU is used, for determinism):
    python3 scripts/gen_adamw_reference.py [--out tests/fixtures/adamw]
then commit the two files it writes:
    adamw_reference.safetensors  every value: initial params, the grads of every step, and per config the
                                 final params, exp_avg, exp_avg_sq, grad norms and clip coefficients
    adamw_reference.json         the hyperparameters and the same results as JSON numbers with 9
                                 significant digits (each an exact f32 round trip), read by the C++ test
                                 without the io module; for the [512, 512] parameter, at every 97th
                                 element (and the last) to keep the file small.

Inputs are not drawn from torch's RNG: every initial value and gradient comes from a portable integer hash
(splitmix64, below), whose values are multiples of 2^-23 times a power of two, hence exact in f32. The C++
test regenerates them bit for bit (and checks the first values recorded here). Each config runs 5 steps
of torch.optim.AdamW(foreach=False) on all parameters; the "clip" config calls
torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=False) before each step, as a trainer does.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

MASK = (1 << 64) - 1
STEPS = 5

# name, shape, init scale, grad scale (all powers of two). "tiny" has gradients ~1e-8, where eps matters.
PARAMS = [
    ("w512", [512, 512], 2.0 ** -4, 2.0 ** -6),
    ("b7", [7], 1.0, 1.0),
    ("w3x5", [3, 5], 2.0 ** -1, 2.0 ** -2),
    ("w33x17", [33, 17], 2.0 ** -3, 2.0 ** -4),
    ("tiny", [4], 1.0, 2.0 ** -26),
    ("s1", [1], 2.0, 1.0),
]
# Extra factor on every gradient of a step (step 3 is small, step 4 large).
STEP_SCALE = [1.0, 2.0 ** -1, 2.0 ** -7, 2.0 ** 2, 2.0 ** -3]

CONFIGS = [
    dict(name="plain", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, max_norm=0.0),
    dict(name="clip", lr=1e-2, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1, max_norm=1.0),
    # beta1 < 0.5 takes torch's other lerp branch; no weight decay.
    dict(name="lowbeta", lr=5e-2, beta1=0.3, beta2=0.5, eps=1e-8, weight_decay=0.0, max_norm=0.0),
]
SAMPLE_STRIDE = 97  # JSON keeps every 97th element of tensors larger than this many squared


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def hashed(stream, n, scale):
    """n values in [-scale, scale): element i is (h >> 40) - 2^23, times scale * 2^-23, h = splitmix64(stream << 32 ^ i)."""
    k = scale * 2.0 ** -23
    return [((splitmix64(((stream << 32) ^ i) & MASK) >> 40) - (1 << 23)) * k for i in range(n)]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def stream_of(p_index, step):  # step 0: initial value; 1..5: gradient of that step
    return 1000 * (p_index + 1) + step


def f9(x):
    return float("%.9g" % x)


def sample_indices(n):
    if n <= SAMPLE_STRIDE * SAMPLE_STRIDE:
        return None  # all
    idx = list(range(0, n, SAMPLE_STRIDE))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return idx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "adamw"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)

    init, grads = {}, {}
    for pi, (name, shape, iscale, gscale) in enumerate(PARAMS):
        n = numel(shape)
        init[name] = torch.tensor(hashed(stream_of(pi, 0), n, iscale), dtype=torch.float32).reshape(shape)
        grads[name] = [torch.tensor(hashed(stream_of(pi, s), n, gscale * STEP_SCALE[s - 1]), dtype=torch.float32).reshape(shape)
                       for s in range(1, STEPS + 1)]

    tensors = {}
    for name, _, _, _ in PARAMS:
        tensors["inputs.%s.init" % name] = init[name].contiguous()
        for s in range(1, STEPS + 1):
            tensors["inputs.%s.grad%d" % (name, s)] = grads[name][s - 1].contiguous()

    out_configs = []
    for cfg in CONFIGS:
        params = [torch.nn.Parameter(init[name].clone()) for name, _, _, _ in PARAMS]
        opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
                                weight_decay=cfg["weight_decay"], foreach=False)
        norms, coefs = [], []
        for s in range(1, STEPS + 1):
            for p, (name, _, _, _) in zip(params, PARAMS):
                p.grad = grads[name][s - 1].clone()
            if cfg["max_norm"] > 0:
                total = torch.nn.utils.clip_grad_norm_(params, cfg["max_norm"], foreach=False)
                coef = torch.clamp(cfg["max_norm"] / (total + 1e-6), max=1.0)
            else:
                total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
                coef = torch.tensor(1.0)
            norms.append(float(total))
            coefs.append(float(coef))
            opt.step()
        entry = dict(cfg)
        entry["grad_norms"] = [f9(x) for x in norms]
        entry["clip_coefs"] = [f9(x) for x in coefs]
        entry["params"] = {}
        tensors["%s.grad_norms" % cfg["name"]] = torch.tensor(norms, dtype=torch.float32)
        tensors["%s.clip_coefs" % cfg["name"]] = torch.tensor(coefs, dtype=torch.float32)
        for p, (name, shape, _, _) in zip(params, PARAMS):
            st = opt.state[p]
            assert int(st["step"]) == STEPS
            res = {"final": p.detach(), "exp_avg": st["exp_avg"], "exp_avg_sq": st["exp_avg_sq"]}
            idx = sample_indices(numel(shape))
            e = {"index": idx}
            for key, t in res.items():
                tensors["%s.%s.%s" % (cfg["name"], name, key)] = t.detach().clone().contiguous()
                flat = t.detach().reshape(-1).tolist()
                e[key] = [f9(flat[i]) for i in (idx if idx is not None else range(len(flat)))]
            entry["params"][name] = e
        out_configs.append(entry)

    doc = {
        "generator": "scripts/gen_adamw_reference.py",
        "torch_version": torch.__version__,
        "optimizer": "torch.optim.AdamW(foreach=False); clip: torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False)",
        "steps": STEPS,
        "inputs": {
            "hash": "value[i] = ((splitmix64((stream << 32) ^ i) >> 40) - 2^23) * scale * 2^-23; "
                    "stream = 1000 * (param_index + 1) + step (step 0: initial value)",
            "step_scale": STEP_SCALE,
            "params": [
                {"name": name, "shape": shape, "init_scale": iscale, "grad_scale": gscale,
                 "init_first": [f9(x) for x in init[name].reshape(-1)[:4].tolist()],
                 "grad1_first": [f9(x) for x in grads[name][0].reshape(-1)[:4].tolist()]}
                for name, shape, iscale, gscale in PARAMS],
        },
        "configs": out_configs,
    }
    save_file(tensors, os.path.join(args.out, "adamw_reference.safetensors"),
              metadata={"generator": "scripts/gen_adamw_reference.py", "torch_version": torch.__version__})
    tmp = os.path.join(args.out, "adamw_reference.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, os.path.join(args.out, "adamw_reference.json"))
    print("wrote", os.path.join(args.out, "adamw_reference.{safetensors,json}"))


if __name__ == "__main__":
    main()
