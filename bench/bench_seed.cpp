// The seed crate's micro-benchmarks (its benches/training.rs), same names and shapes, with wick's public
// ops. Each body mirrors `micro` in bench/peer/torch_peer.py, the torch side of the comparison:
//   lora_forward/*            scale (x A^T) B^T: x [4,16,in], A [r,in], B [out,r] (the adapter path only), one
//                             low_rank_product call (ops/low_rank.h: on CUDA one fused launch for <= 64 rows)
//   lora_forward_two_matmuls/* the same product as the peer writes it, (x @ A) @ B with A [in,r], B [r,out]: two
//                             matmuls (what lora_forward ran before the fused op)
//   gradient_computation/*    x [2,16,512], r 8: forward, cross-entropy (mean) on zero labels, dA and dB
//   optimizer_step/adamw_step one AdamW step of a [512,512] parameter (lr 1e-3, wd 0.01)
//   full_training_step/*      x [4,64,512], r 8: forward, CE, backward, AdamW on A and B (lr 1e-4)
//   layer_operations/*        softmax / layer_norm (no affine: w = 1, b = 0) / rms_norm (w = 1) over [4,16,1024]
//   lora_rank_scaling/rank_r  scale (x A^T) B^T: x [2,32,1024], A [r,1024], B [1024,r], one low_rank_product call
//   lora_rank_scaling_two_matmuls/rank_r  (x @ A) @ B, A [1024,r], B [r,1024]: two matmuls
// A and B are randn * 0.01, x randn, as in the peer (scale 1 in the fused rows). Everything is allocated before the timed loop.
// Beyond the peer: wick's cross_entropy_forward writes per-row losses (the mean the peer also computes is
// not taken: nothing reads it); gradients are written (=), as torch.autograd.grad / zero_grad(set_to_none).
#include <functional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ops/cross_entropy.h"
#include "ops/low_rank.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/optim.h"
#include "ops/softmax.h"

namespace wick::bench {
namespace {

// The adapter path as 2-D products: x [M, in] -> xa [M, r] -> y [M, out].
struct Lora {
  Tensor x, A, B, xa, y;
  Lora(int64_t M, int64_t in, int64_t r, int64_t out, Rng& rng, Device dev)
      : x(randn({M, in}, rng, dev)),
        A(randn({in, r}, rng, dev, 0.01f)),
        B(randn({r, out}, rng, dev, 0.01f)),
        xa(Tensor::empty({M, r}, DType::F32, dev)),
        y(Tensor::empty({M, out}, DType::F32, dev)) {}
  void forward() {
    matmul(x, A, xa);
    matmul(xa, B, y);
  }
};

// The adapter path as one op: y = scale (x A^T) B^T with PEFT's layouts A [r, in], B [out, r].
struct LoraFused {
  Tensor x, A, B, y;
  LoraFused(int64_t M, int64_t in, int64_t r, int64_t out, Rng& rng, Device dev)
      : x(randn({M, in}, rng, dev)),
        A(randn({r, in}, rng, dev, 0.01f)),
        B(randn({out, r}, rng, dev, 0.01f)),
        y(Tensor::empty({M, out}, DType::F32, dev)) {}
  void forward() { low_rank_product(x, A, B, 1.0f, y, false); }
};

// Forward + mean cross-entropy on zero labels + the gradients of A and B (the peer's fb / full).
struct LoraTrain {
  Lora f;
  Tensor labels, losses, lse, dlogits, dxa, dA, dB;
  float inv_n;
  LoraTrain(int64_t M, int64_t C, int64_t r, Rng& rng, Device dev)
      : f(M, C, r, C, rng, dev),
        labels(Tensor::from_i32(std::vector<int32_t>(static_cast<size_t>(M), 0), {M}, dev)),
        losses(Tensor::empty({M}, DType::F32, dev)),
        lse(Tensor::empty({M}, DType::F32, dev)),
        dlogits(Tensor::empty({M, C}, DType::F32, dev)),
        dxa(Tensor::empty({M, r}, DType::F32, dev)),
        dA(Tensor::empty({C, r}, DType::F32, dev)),
        dB(Tensor::empty({r, C}, DType::F32, dev)),
        inv_n(1.0f / static_cast<float>(M)) {}
  void forward_backward() {
    f.forward();                                                      // y [M, C] = logits
    cross_entropy_forward(f.y, labels, losses, lse);                  // losses [M], lse [M]
    cross_entropy_backward(f.y, labels, lse, inv_n, dlogits);         // dlogits [M, C] of the mean loss
    matmul(f.xa, dlogits, dB, /*trans_a=*/true);                      // dB [r, C] = xa^T dlogits
    matmul(dlogits, f.B, dxa, false, /*trans_b=*/true);               // dxa [M, r] = dlogits B^T
    matmul(f.x, dxa, dA, /*trans_a=*/true);                           // dA [C, r] = x^T dxa
  }
};

void reg(const std::string& name, Device dev, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark((name + dev_suffix(dev)).c_str(), std::move(fn))
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace

void register_seed_benchmarks(const std::vector<Device>& devices) {
  struct LoraShape {
    const char* name;
    int64_t in, out, r;
  };
  const LoraShape lora_shapes[] = {{"small_512x512_r8", 512, 512, 8},
                                   {"medium_1024x1024_r8", 1024, 1024, 8},
                                   {"large_2048x2048_r8", 2048, 2048, 8},
                                   {"small_512x512_r16", 512, 512, 16}};
  for (Device dev : devices) {
    for (const LoraShape& s : lora_shapes) {
      reg(std::string("lora_forward/") + s.name, dev, [s, dev](benchmark::State& st) {
        Rng rng(1);
        LoraFused l(4 * 16, s.in, s.r, s.out, rng, dev);  // x [4,16,in] as [64, in]
        timed_loop(st, dev, [&] { l.forward(); });
      });
      reg(std::string("lora_forward_two_matmuls/") + s.name, dev, [s, dev](benchmark::State& st) {
        Rng rng(1);
        Lora l(4 * 16, s.in, s.r, s.out, rng, dev);
        timed_loop(st, dev, [&] { l.forward(); });
      });
    }

    reg("gradient_computation/forward_backward", dev, [dev](benchmark::State& st) {
      Rng rng(2);
      LoraTrain t(2 * 16, 512, 8, rng, dev);  // x [2,16,512]
      timed_loop(st, dev, [&] { t.forward_backward(); });
    });

    reg("optimizer_step/adamw_step", dev, [dev](benchmark::State& st) {
      Rng rng(3);
      Tensor p = randn({512, 512}, rng, dev), g = randn({512, 512}, rng, dev);
      Tensor m = Tensor::zeros({512, 512}, DType::F32, dev), v = Tensor::zeros({512, 512}, DType::F32, dev);
      AdamWConfig cfg;  // torch.optim.AdamW defaults: betas 0.9/0.999, eps 1e-8, wd 0.01
      cfg.lr = 1e-3f;
      int64_t step = 0;
      timed_loop(st, dev, [&] { adamw_step(p, g, m, v, cfg, ++step); });
    });

    reg("full_training_step/complete_iteration", dev, [dev](benchmark::State& st) {
      Rng rng(4);
      LoraTrain t(4 * 64, 512, 8, rng, dev);  // x [4,64,512]
      Tensor mA = Tensor::zeros(t.f.A.shape(), DType::F32, dev), vA = Tensor::zeros(t.f.A.shape(), DType::F32, dev);
      Tensor mB = Tensor::zeros(t.f.B.shape(), DType::F32, dev), vB = Tensor::zeros(t.f.B.shape(), DType::F32, dev);
      AdamWConfig cfg;
      cfg.lr = 1e-4f;
      int64_t step = 0;
      timed_loop(st, dev, [&] {
        t.forward_backward();
        ++step;
        adamw_step(t.f.A, t.dA, mA, vA, cfg, step);
        adamw_step(t.f.B, t.dB, mB, vB, cfg, step);
      });
    });

    // [4,16,1024] as [64, 1024]
    reg("layer_operations/softmax_stable", dev, [dev](benchmark::State& st) {
      Rng rng(5);
      Tensor x = randn({64, 1024}, rng, dev), y = Tensor::empty({64, 1024}, DType::F32, dev);
      timed_loop(st, dev, [&] { softmax_forward(x, y); });
    });
    reg("layer_operations/layer_norm", dev, [dev](benchmark::State& st) {
      Rng rng(6);
      Tensor x = randn({64, 1024}, rng, dev), y = Tensor::empty({64, 1024}, DType::F32, dev);
      Tensor w = constant({1024}, 1.0f, dev), b = constant({1024}, 0.0f, dev);  // torch: no affine
      Tensor mean = Tensor::empty({64}, DType::F32, dev), rstd = Tensor::empty({64}, DType::F32, dev);
      timed_loop(st, dev, [&] { layer_norm_forward(x, w, b, 1e-5f, y, mean, rstd); });
    });
    reg("layer_operations/rms_norm", dev, [dev](benchmark::State& st) {
      Rng rng(7);
      Tensor x = randn({64, 1024}, rng, dev), y = Tensor::empty({64, 1024}, DType::F32, dev);
      Tensor w = constant({1024}, 1.0f, dev), rstd = Tensor::empty({64}, DType::F32, dev);
      timed_loop(st, dev, [&] { rms_norm_forward(x, w, 1e-5f, y, rstd); });
    });

    for (int64_t r : {4, 8, 16, 32, 64}) {
      reg("lora_rank_scaling/rank_" + std::to_string(r), dev, [r, dev](benchmark::State& st) {
        Rng rng(8);
        LoraFused l(2 * 32, 1024, r, 1024, rng, dev);  // x [2,32,1024] as [64, 1024]
        timed_loop(st, dev, [&] { l.forward(); });
      });
      reg("lora_rank_scaling_two_matmuls/rank_" + std::to_string(r), dev, [r, dev](benchmark::State& st) {
        Rng rng(8);
        Lora l(2 * 32, 1024, r, 1024, rng, dev);
        timed_loop(st, dev, [&] { l.forward(); });
      });
    }
  }
}

}  // namespace wick::bench
