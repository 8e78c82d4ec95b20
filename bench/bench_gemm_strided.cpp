// GEMMs on matrix views (ops/matmul.h MatrixView) at the Qwen2.5-0.5B shapes the training step will use,
// 8 x 1024 tokens, bf16, CUDA only:
//   gemm_strided/xu_kconcat/*    y [8192, 896] = [x | u] [8192, 896+16] @ [W | s B] [896, 896+16]^T: the LoRA
//                                adapter folded into the base GEMM (K-concatenation; u, s B the last 16 columns)
//   gemm_strided/x_base_view/*   the base GEMM alone reading columns [0, 896) of the same [8192, 912] x|u buffer
//                                (a strided view, ld 912) and of the [896, 912] weight buffer
//   gemm_strided/x_base/*        the base GEMM on contiguous [8192, 896] x [896, 896]^T (today's base GEMM)
//   gemm_strided/qkv_views/*     q, k, v written by three view GEMMs into the column blocks [0, 896),
//                                [896, 1024), [1024, 1152) of one [8192, 1152] output (ld 1152), each + its bias
//   gemm_strided/qkv_whole/*     the same by one GEMM: [8192, 896] @ [1152, 896]^T + bias [1152]
//   gemm_strided/qkv_tensors/*   three GEMMs into three contiguous outputs (today's q, k, v projections)
// All inputs random, allocated before the timed loop.
#include <memory>
#include <string>

#include "bench_util.h"
#include "ops/matmul.h"

namespace wick::bench {

namespace {

constexpr int64_t kN = 8 * 1024, kC = 896, kR = 16, kQ = 896, kKV = 128, kQKV = kQ + 2 * kKV;

Tensor bf16(const Shape& s, Rng& rng, Device dev, float scale) { return randn(s, rng, dev, scale).to(DType::BF16); }

struct KConcat {
  Tensor xu, wb, x, w, y;
  explicit KConcat(Device dev) {
    Rng rng(3);
    xu = bf16({kN, kC + kR}, rng, dev, 1.0f), wb = bf16({kC, kC + kR}, rng, dev, 0.03f);
    x = bf16({kN, kC}, rng, dev, 1.0f), w = bf16({kC, kC}, rng, dev, 0.03f);
    y = Tensor::empty({kN, kC}, DType::BF16, dev);
  }
};

struct Qkv {
  Tensor x, w, bias, out, wq, wk, wv, bq, bk, bv, q, k, v;
  explicit Qkv(Device dev) {
    Rng rng(4);
    x = bf16({kN, kC}, rng, dev, 1.0f);
    w = bf16({kQKV, kC}, rng, dev, 0.03f), bias = bf16({kQKV}, rng, dev, 0.1f);
    out = Tensor::empty({kN, kQKV}, DType::BF16, dev);
    wq = bf16({kQ, kC}, rng, dev, 0.03f), wk = bf16({kKV, kC}, rng, dev, 0.03f), wv = bf16({kKV, kC}, rng, dev, 0.03f);
    bq = bf16({kQ}, rng, dev, 0.1f), bk = bf16({kKV}, rng, dev, 0.1f), bv = bf16({kKV}, rng, dev, 0.1f);
    q = Tensor::empty({kN, kQ}, DType::BF16, dev), k = Tensor::empty({kN, kKV}, DType::BF16, dev);
    v = Tensor::empty({kN, kKV}, DType::BF16, dev);
  }
};

template <class State, class Body>
void reg(const std::string& name, Device dev, Body body) {
  benchmark::RegisterBenchmark(name.c_str(), [dev, body](benchmark::State& st) {
    auto s = std::make_unique<State>(dev);
    timed_loop(st, dev, [&] { body(*s); });
  })->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

void register_gemm_strided_benchmarks(const std::vector<Device>& devices) {
  for (Device dev : devices) {
    if (!dev.is_cuda()) continue;  // 8192-row GEMMs: GPU rows only
    const std::string sfx = dev_suffix(dev);
    using MV = MatrixView;
    reg<KConcat>("gemm_strided/xu_kconcat" + sfx, dev, [](KConcat& s) { matmul(s.xu, s.wb, s.y, false, true); });
    reg<KConcat>("gemm_strided/x_base_view" + sfx, dev, [](KConcat& s) {
      matmul(MV::columns(s.xu, 0, kC), MV::columns(s.wb, 0, kC), MV::whole(s.y), false, true, 1.0f, 0.0f);
    });
    reg<KConcat>("gemm_strided/x_base" + sfx, dev, [](KConcat& s) { matmul(s.x, s.w, s.y, false, true); });
    reg<Qkv>("gemm_strided/qkv_views" + sfx, dev, [](Qkv& s) {
      const MV x = MV::whole(s.x);
      matmul(x, MV::whole(s.wq), MV::columns(s.out, 0, kQ), false, true, 1.0f, 0.0f, &s.bq);
      matmul(x, MV::whole(s.wk), MV::columns(s.out, kQ, kKV), false, true, 1.0f, 0.0f, &s.bk);
      matmul(x, MV::whole(s.wv), MV::columns(s.out, kQ + kKV, kKV), false, true, 1.0f, 0.0f, &s.bv);
    });
    reg<Qkv>("gemm_strided/qkv_whole" + sfx, dev, [](Qkv& s) {
      matmul(s.x, s.w, s.out, false, true, 1.0f, 0.0f, &s.bias);
    });
    reg<Qkv>("gemm_strided/qkv_tensors" + sfx, dev, [](Qkv& s) {
      matmul(s.x, s.wq, s.q, false, true, 1.0f, 0.0f, &s.bq);
      matmul(s.x, s.wk, s.k, false, true, 1.0f, 0.0f, &s.bk);
      matmul(s.x, s.wv, s.v, false, true, 1.0f, 0.0f, &s.bv);
    });
  }
}

}  // namespace wick::bench
