// low_rank_product: validation and dispatch (ops/low_rank.h), and the rule choosing among the CUDA op's fused
// kernels. The CUDA twin runs a fused kernel or the two matmuls (ops/cuda/low_rank.cu); the CPU twin is
// ops/cpu/low_rank.cpp.
#include "ops/low_rank.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

// Measured on an H200 (dev/low_rank/low_rank_bench-h200-session27.txt, `split` mode: median us by a CUDA event
// pair per call; an empty kernel times 5.76 by the same events). f32, M 64, in = out, the best configuration of
// each design against the cooperative kernel (v1):
//   512 r 8: kRecompute 8.6 (v1 12.7)      1024 r 8: kRecompute 10.9 (13.5)      1024 r 4: kRecompute 9.9 (13.2)
//   512 r 16: kSplitK 11.2 (13.5)          1024 r 16: kSplitK 11.8 (13.7; kRecompute 18.7)
//   1024 r 32: kSplitK 12.6 (14.6)         1024 r 64: kSplitK 14.9 (17.0; kRecompute 58)
//   2048 r 8: v1 13.8 (kRecompute 14.3)    2048 r 64: v1 18.1 (kSplitK 20.0)
// bf16 decode shapes, r 16: M 1, 896 -> 896: kSplitK 11.2-12.0 by configuration (v1 12.3); M 8: 11.6-12.0 (v1
// 11.9); M 1, 4864 -> 896 and 3584 -> 3584: v1 14.4 and 14.2 (kSplitK 18.3, 14.8). kRecompute computes a row
// tile's u once per column tile (M in r FMAs each time), so it pays only while in r is small; kSplitK's second
// launch beats v1's barriers only while in and out are narrow. Nothing between 1,024 and 2,048 wide was
// measured: those shapes stay on v1, as before.
LowRankKernel low_rank_rule(int64_t /*M*/, int64_t in, int64_t r, int64_t out) {
  if (in > kLowRankNarrow || out > kLowRankNarrow) return LowRankKernel::kCooperative;
  return r <= 8 ? LowRankKernel::kRecompute : LowRankKernel::kSplitK;
}

namespace {
LowRankKernel kernel_from_env() {
  const char* e = std::getenv("WICK_LOW_RANK_KERNEL");
  if (!e || !*e) return LowRankKernel::kRule;
  if (std::strcmp(e, "1") == 0) return LowRankKernel::kCooperative;
  if (std::strcmp(e, "3") == 0) return LowRankKernel::kRecompute;
  if (std::strcmp(e, "4") == 0) return LowRankKernel::kSplitK;
  throw Error(std::string("WICK_LOW_RANK_KERNEL=") + e + ": expected 1, 3 or 4 (or unset: wick's rule)");
}
std::atomic<int> g_low_rank_kernel{-1};  // -1: not read from the environment yet
}  // namespace

LowRankKernel low_rank_kernel() {
  int v = g_low_rank_kernel.load();
  if (v < 0) {
    v = static_cast<int>(kernel_from_env());
    g_low_rank_kernel.store(v);
  }
  return static_cast<LowRankKernel>(v);
}
void set_low_rank_kernel(LowRankKernel which) { g_low_rank_kernel.store(static_cast<int>(which)); }

void low_rank_product(const Tensor& x, const Tensor& A, const Tensor& B, float scale, Tensor& y, bool accumulate) {
  static const char* op = "low_rank_product";
  const Arg X{"x", &x}, AA{"A", &A}, BB{"B", &B}, Y{"y", &y};
  const Device dev = ops_detail::one_device(op, {X, AA, BB, Y});
  ops_detail::need_float(op, X);
  ops_detail::need_same_dtype(op, AA, X);
  ops_detail::need_same_dtype(op, BB, X);
  ops_detail::need_same_dtype(op, Y, X);
  ops_detail::need_rank(op, X, 2, "[M, in]");
  ops_detail::need_rank(op, AA, 2, "[r, in]");
  ops_detail::need_rank(op, BB, 2, "[out, r]");
  if (A.dim(1) != x.dim(1)) fail(op, {X, AA}, "A must be [r, in] with in = " + std::to_string(x.dim(1)));
  if (B.dim(1) != A.dim(0)) fail(op, {AA, BB}, "B must be [out, r] with r = " + std::to_string(A.dim(0)));
  ops_detail::need_shape(op, {X, BB, Y}, Y, {x.dim(0), B.dim(0)}, "[M, out]");
  const int64_t M = x.dim(0), r = A.dim(0), in = x.dim(1), out = B.dim(0);
  if (M == 0 || out == 0) return;
  if (r == 0 || in == 0) {  // an empty sum: the product is zero
    if (!accumulate) fill(y, 0.0f);
    return;
  }
  WICK_OP_DISPATCH(op, dev, low_rank_product, x, A, B, scale, y, accumulate);
}

}  // namespace wick
