# The MLP of a 0.5B layer in a transposed ("feature-major") layout: gate and up as ONE GEMM whose output
# [2I, N] holds g^T and u^T as two contiguous blocks, the down projection reading s^T, the backward's dx as one
# K = 2I GEMM, and the LoRA terms block-diagonal / batched. Against today's row-major layout. bf16, N 8192.
import torch, json, sys
dev = "cuda"; N = 8192; H = 896; I = 4864; r = 16
def t(*s): return torch.randn(*s, device=dev, dtype=torch.bfloat16)
def timeit(f, reps=50):
    for _ in range(5): f()
    torch.cuda.synchronize()
    e0 = torch.cuda.Event(True); e1 = torch.cuda.Event(True)
    e0.record()
    for _ in range(reps): f()
    e1.record(); torch.cuda.synchronize()
    return e0.elapsed_time(e1) / reps * 1000
res = {}
x = t(N, H); wg = t(I, H); wu = t(I, H); wgu = torch.cat([wg, wu]); wd = t(H, I)
g = t(N, I); u = t(N, I); s = t(N, I); guT = t(2 * I, N); sT = t(I, N); out = t(N, H); dx = t(N, H)
res["gu_fwd_rowmajor_2gemms"] = timeit(lambda: (torch.mm(x, wg.t(), out=g), torch.mm(x, wu.t(), out=u)))
res["gu_fwd_T_1gemm"] = timeit(lambda: torch.mm(wgu, x.t(), out=guT))
res["down_fwd_rowmajor"] = timeit(lambda: torch.mm(s, wd.t(), out=out))
res["down_fwd_from_sT"] = timeit(lambda: torch.mm(sT.t(), wd.t(), out=out))
dy = t(N, H); ds = t(N, I); dsT = t(I, N)
res["down_bwd_ds_rowmajor"] = timeit(lambda: torch.mm(dy, wd, out=ds))
res["down_bwd_dsT"] = timeit(lambda: torch.mm(wd.t(), dy.t(), out=dsT))
dg = t(N, I); du = t(N, I); dguT = t(2 * I, N)
res["gu_bwd_dx_rowmajor_2gemms"] = timeit(lambda: (torch.mm(dg, wg, out=dx), dx.addmm_(du, wu)))
res["gu_bwd_dx_T_1gemm"] = timeit(lambda: torch.mm(dguT.t(), wgu, out=dx))
# LoRA of gate/up: y = s u B^T for both
Bg = t(I, r); Bu = t(I, r); Bbd = torch.zeros(2 * I, 2 * r, device=dev, dtype=torch.bfloat16)
Bbd[:I, :r] = Bg; Bbd[I:, r:] = Bu
uT = t(2 * r, N)
res["gu_lora_y_rowmajor_2gemms"] = timeit(lambda: (torch.mm(uT[:r].t(), Bg.t(), out=g), torch.mm(uT[r:].t(), Bu.t(), out=u)))
res["gu_lora_yT_blockdiag_1gemm"] = timeit(lambda: torch.mm(Bbd, uT, out=guT))
res["gu_lora_dB_rowmajor_2gemms"] = timeit(lambda: (torch.mm(dg.t(), uT[:r].t()), torch.mm(du.t(), uT[r:].t())))
res["gu_lora_dB_T_batched"] = timeit(lambda: torch.bmm(dguT.view(2, I, N), uT.view(2, r, N).transpose(1, 2)))
duT = t(2 * r, N)
res["gu_lora_duT_rowmajor_2gemms"] = timeit(lambda: (torch.mm(Bg.t(), dg.t(), out=duT[:r]), torch.mm(Bu.t(), du.t(), out=duT[r:])))
res["gu_lora_duT_blockdiag_1gemm"] = timeit(lambda: torch.mm(Bbd.t(), dguT, out=duT))
for k, v in res.items(): print(f"{k:34s} {v:9.1f} us")
json.dump(res, open(sys.argv[1], "w"), indent=1)
