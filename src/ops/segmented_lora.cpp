// segmented_lora_add: validation and dispatch (ops/segmented_lora.h). On CUDA the segments of rank <= 64 go to
// the two-launch kernels (ops/cuda/segmented_lora.cu); everything else (the CPU, larger ranks) runs each
// segment as two GEMMs on f32 copies, y rounded once: the computation BatchForward made per adapter before.
#include "ops/segmented_lora.h"

#include <algorithm>
#include <string>

#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

namespace {

constexpr const char* kOp = "segmented_lora_add";

// Rows [row0, row0 + rows) of x as an f32 tensor (x itself when f32).
Tensor rows_f32(const Tensor& x, const LoraSegment& s) {
  const Tensor part = x.narrow0(s.row0, s.rows);
  if (part.dtype() == DType::F32) return part;
  Tensor f = Tensor::empty(part.shape(), DType::F32, part.device());
  cast(part, f);
  return f;
}

// y_seg = round(y_seg + scale (x_seg A^T) B^T) by two f32 GEMMs.
void by_matmuls(const Tensor& x, const LoraSegment& s, Tensor& y) {
  const Tensor x32 = rows_f32(x, s);
  Tensor u = Tensor::empty({s.rows, s.A->dim(0)}, DType::F32, x.device());
  matmul(x32, *s.A, u, false, true);
  Tensor yseg = y.narrow0(s.row0, s.rows);
  if (y.dtype() == DType::F32) {
    matmul(u, *s.B, yseg, false, true, s.scale, 1.0f);
    return;
  }
  Tensor y32 = rows_f32(y, s);
  matmul(u, *s.B, y32, false, true, s.scale, 1.0f);
  cast(y32, yseg);
}

}  // namespace

void segmented_lora_add(const Tensor& x, const std::vector<LoraSegment>& segments, Tensor& y) {
  const Arg X{"x", &x}, Y{"y", &y};
  Device dev = ops_detail::one_device(kOp, {X, Y});
  ops_detail::need_act(kOp, X);
  ops_detail::need_same_dtype(kOp, Y, X);
  ops_detail::need_rank(kOp, X, 2, "[M, in]");
  ops_detail::need_rank(kOp, Y, 2, "[M, out]");
  if (y.dim(0) != x.dim(0)) fail(kOp, {X, Y}, "y must have x's rows (" + std::to_string(x.dim(0)) + ")");
  const int64_t M = x.dim(0), in = x.dim(1), out = y.dim(1);
  std::vector<std::pair<int64_t, int64_t>> spans;
  for (size_t i = 0; i < segments.size(); i++) {
    const LoraSegment& s = segments[i];
    const std::string seg = "segment " + std::to_string(i) + " (rows " + std::to_string(s.row0) + " + " +
                            std::to_string(s.rows) + ")";
    if (!s.A || !s.B) fail(kOp, {X, Y}, seg + " must have both A and B");
    const Arg AA{"A", s.A}, BB{"B", s.B};
    ops_detail::one_device(kOp, {X, AA, BB});
    ops_detail::need_dtype(kOp, AA, DType::F32);
    ops_detail::need_dtype(kOp, BB, DType::F32);
    ops_detail::need_rank(kOp, AA, 2, "[r, in]");
    ops_detail::need_rank(kOp, BB, 2, "[out, r]");
    if (s.A->dim(1) != in) fail(kOp, {X, AA}, seg + ": A must be [r, in] with in = " + std::to_string(in));
    if (s.B->dim(0) != out || s.B->dim(1) != s.A->dim(0))
      fail(kOp, {AA, BB, Y}, seg + ": B must be [out, r] = [" + std::to_string(out) + ", " + std::to_string(s.A->dim(0)) + "]");
    if (s.row0 < 0 || s.rows < 0 || s.row0 > M - s.rows)
      fail(kOp, {X}, seg + " must lie inside the " + std::to_string(M) + " rows of x");
    if (s.rows > 0) spans.push_back({s.row0, s.row0 + s.rows});
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); i++)
    if (spans[i].first < spans[i - 1].second)
      fail(kOp, {X}, "segments overlap at row " + std::to_string(spans[i].first) + " (each row takes one adapter)");

  std::vector<LoraSegment> fused;
  for (const LoraSegment& s : segments) {
    if (s.rows == 0 || s.A->dim(0) == 0 || in == 0 || out == 0) continue;  // an empty sum: no change
    if (dev.is_cuda() && s.A->dim(0) <= kSegmentedLoraMaxRank) fused.push_back(s);
    else by_matmuls(x, s, y);
  }
  if (fused.empty()) return;
#ifdef WICK_CUDA
  cuda_ops::segmented_lora_add(x, fused, y);
#else
  ops_detail::no_cuda(kOp);
#endif
}

}  // namespace wick
