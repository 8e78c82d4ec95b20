"""PyTorch SDPA on the shapes of attention_bench.cu, for side-by-side numbers in the same device call.

Causal GQA (enable_gqa=True), bf16, tensors laid out as wick's ([B, T, H, D] memory, viewed as
[B, H, T, D]), one backend at a time (cuDNN, FlashAttention). Median of CUDA-event times over many reps,
rotating 3 input sets; prints lines shaped like attention_bench's 'time' lines.
    python3 dev/attention/sdpa_peer.py
"""
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = [("qwen05b", 8, 1024, 14, 2, 64), ("long16k", 1, 16384, 14, 2, 64), ("qwen7b", 4, 2048, 28, 4, 128)]
BACKENDS = [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)]


def inputs(B, T, H, Hkv, D, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    mk = lambda h: torch.randn(B, T, h, D, device="cuda", dtype=torch.bfloat16, generator=g).transpose(1, 2)
    q, k, v, do = mk(H), mk(Hkv), mk(Hkv), mk(H)
    for x in (q, k, v):
        x.requires_grad_(True)
    return q, k, v, do


def time_ms(fn, sets, reps):
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for s in sets:
        fn(s)
    torch.cuda.synchronize()
    ts = []
    for r in range(reps):
        s = sets[r % len(sets)]
        a.record()
        fn(s)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts), min(ts), max(ts)


def main():
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__, "cudnn", torch.backends.cudnn.version())
    for name, B, T, H, Hkv, D in SHAPES:
        pairs = B * H * T * (T + 1) / 2
        fl = {"fwd": 4 * pairs * D, "bwd": 10 * pairs * D}
        fl["fwd+bwd"] = fl["fwd"] + fl["bwd"]
        sets = [inputs(B, T, H, Hkv, D, 1000 + i) for i in range(3)]
        reps = 20 if T >= 8192 else 50
        for bname, be in BACKENDS:
            try:
                with sdpa_kernel([be]):
                    fwd = lambda s: F.scaled_dot_product_attention(s[0], s[1], s[2], is_causal=True, enable_gqa=True)
                    outs = [fwd(s) for s in sets]
                    res = {"fwd": time_ms(lambda s: fwd(s), sets, reps)}
                    idx = {id(s): i for i, s in enumerate(sets)}
                    bwd = lambda s: torch.autograd.grad(outs[idx[id(s)]], (s[0], s[1], s[2]), s[3], retain_graph=True)
                    res["bwd"] = time_ms(bwd, sets, reps)

                    def both(s):
                        o = fwd(s)
                        torch.autograd.grad(o, (s[0], s[1], s[2]), s[3])

                    res["fwd+bwd"] = time_ms(both, sets, reps)
                for st in ("fwd", "bwd", "fwd+bwd"):
                    med, lo, hi = res[st]
                    print(f"time  sdpa-{bname:6s} {name:10s} {st:8s} {med:8.3f} ms  {fl[st] / (med * 1e-3) / 1e12:6.1f} "
                          f"TFLOP/s (min {lo:.3f}, max {hi:.3f}, {reps} reps)", flush=True)
                del outs
            except Exception as e:  # a backend that refuses the shape
                print(f"time  sdpa-{bname:6s} {name:10s} unavailable: {type(e).__name__}: {str(e)[:200]}", flush=True)
        del sets
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
