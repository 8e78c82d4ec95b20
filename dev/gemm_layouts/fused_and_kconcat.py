# Which restructurings of the 0.5B linears pay on the H200: separate vs fused q/k/v and gate/up GEMMs,
# and the LoRA term as its own GEMM + beta-add vs folded into K (x|u)(W|sB)^T. bf16, N = 8192 rows.
import torch, json, sys
torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
dev = "cuda"; N = 8192; H = 896; I = 4864; KV = 128; r = 16
def t(*s): return torch.randn(*s, device=dev, dtype=torch.bfloat16)
def timeit(f, reps=50):
    for _ in range(5): f()
    torch.cuda.synchronize()
    e0 = torch.cuda.Event(True); e1 = torch.cuda.Event(True)
    e0.record()
    for _ in range(reps): f()
    e1.record(); torch.cuda.synchronize()
    return e0.elapsed_time(e1) / reps * 1000  # us
res = {}
x = t(N, H); wq = t(H, H); wk = t(KV, H); wv = t(KV, H); wqkv = torch.cat([wq, wk, wv])
yq = t(N, H); yk = t(N, KV); yv = t(N, KV); yqkv = t(N, H + 2 * KV)
res["qkv_fwd_separate"] = timeit(lambda: (torch.mm(x, wq.t(), out=yq), torch.mm(x, wk.t(), out=yk), torch.mm(x, wv.t(), out=yv)))
res["qkv_fwd_fused"] = timeit(lambda: torch.mm(x, wqkv.t(), out=yqkv))
dx = t(N, H)
res["qkv_bwd_dx_separate"] = timeit(lambda: (torch.mm(yq, wq, out=dx), dx.addmm_(yk, wk), dx.addmm_(yv, wv)))
res["qkv_bwd_dx_fused"] = timeit(lambda: torch.mm(yqkv, wqkv, out=dx))
wg = t(I, H); wu = t(I, H); wgu = torch.cat([wg, wu]); yg = t(N, I); yu = t(N, I); ygu = t(N, 2 * I)
res["gu_fwd_separate"] = timeit(lambda: (torch.mm(x, wg.t(), out=yg), torch.mm(x, wu.t(), out=yu)))
res["gu_fwd_fused"] = timeit(lambda: torch.mm(x, wgu.t(), out=ygu))
res["gu_bwd_dx_separate"] = timeit(lambda: (torch.mm(yg, wg, out=dx), dx.addmm_(yu, wu)))
res["gu_bwd_dx_fused"] = timeit(lambda: torch.mm(ygu, wgu, out=dx))
# LoRA forward for one linear: separate (u B^T then base with beta 1) vs K-concat
for name, (i, o) in {"q": (H, H), "k": (H, KV), "gate": (H, I), "down": (I, H)}.items():
    xx = t(N, i); w = t(o, i); B = t(o, r); u = t(N, r); y = t(N, o)
    xp = t(N, i + r); wp = t(o, i + r)
    res[f"lora_{name}_fwd_two_gemms"] = timeit(lambda: (torch.mm(u, B.t(), out=y), y.addmm_(xx, w.t())))
    res[f"lora_{name}_fwd_base_only"] = timeit(lambda: torch.mm(xx, w.t(), out=y))
    res[f"lora_{name}_fwd_kconcat"] = timeit(lambda: torch.mm(xp, wp.t(), out=y))
    # backward: du = dy B (N x r) and dB = dy^T u (o x r)
    dy = t(N, o); du = t(N, r); dB = torch.empty(o, r, device=dev, dtype=torch.float32)
    res[f"lora_{name}_bwd_du"] = timeit(lambda: torch.mm(dy, B, out=du))
    res[f"lora_{name}_bwd_dB"] = timeit(lambda: torch.mm(dy.t(), u).float())
    dxp = t(N, i + r)
    res[f"lora_{name}_bwd_dx_base"] = timeit(lambda: torch.mm(dy, w, out=xx))
    res[f"lora_{name}_bwd_dx_kconcat_du"] = timeit(lambda: torch.mm(dy, wp, out=dxp))
for k, v in res.items(): print(f"{k:34s} {v:9.1f} us")
json.dump(res, open(sys.argv[1], "w"), indent=1)
