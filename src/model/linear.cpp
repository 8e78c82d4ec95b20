#include "model/linear.h"

#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace wick {

// A [rows, cols] view at the front of a flat scratch buffer.
static Tensor front(const Tensor& buf, int64_t rows, int64_t cols) {
  WICK_CHECK(buf.defined() && buf.numel() >= rows * cols, "linear scratch too small for [" << rows << ", " << cols << "]");
  return buf.view({buf.numel()}).narrow0(0, rows * cols).view({rows, cols});
}

void linear_forward(const Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, Tensor* u, LinearScratch& s) {
  const int64_t N = x.dim(0);
  matmul(x, l.w, y, false, true, 1.0f, 0.0f, l.b.defined() ? &l.b : nullptr);
  if (!l.lora.active()) return;
  // u = x32 A^T  [N, r]
  Tensor uu = u ? *u : front(s.r32, N, l.lora.rank());
  matmul(x32, l.lora.A, uu, false, true);
  if (y.dtype() == DType::F32) {
    matmul(uu, l.lora.B, y, false, true, l.lora.scale, 1.0f);  // y += scale * u B^T
    return;
  }
  // bf16: y32 = f32(y) + scale * u B^T, then one rounding back to bf16.
  Tensor y32 = front(s.b32, N, l.out());
  cast(y, y32);
  matmul(uu, l.lora.B, y32, false, true, l.lora.scale, 1.0f);
  cast(y32, y);
}

void linear_backward(Linear& l, const Tensor& dy, const Tensor& x32, const Tensor& u, Tensor& dx, bool accumulate,
                     LinearScratch& s) {
  const int64_t N = dy.dim(0);
  // Frozen base: dx (=|+=) dy W
  matmul(dy, l.w, dx, false, false, 1.0f, accumulate ? 1.0f : 0.0f);
  if (!l.lora.active()) return;
  const float sc = l.lora.scale;
  Tensor dy32 = dy;
  if (dy.dtype() != DType::F32) {
    dy32 = front(s.a32, N, l.out());
    cast(dy, dy32);
  }
  // dB += scale * dy^T u   [out, r]
  matmul(dy32, u, l.lora.dB, true, false, sc, 1.0f);
  // du = scale * dy B      [N, r]
  Tensor du = front(s.r32, N, l.lora.rank());
  matmul(dy32, l.lora.B, du, false, false, sc, 0.0f);
  // dA += du^T x32         [r, in]
  matmul(du, x32, l.lora.dA, true, false, 1.0f, 1.0f);
  // dx += du A             [N, in]
  if (dx.dtype() == DType::F32) {
    matmul(du, l.lora.A, dx, false, false, 1.0f, 1.0f);
    return;
  }
  Tensor dx32 = front(s.b32, N, l.in());
  cast(dx, dx32);
  matmul(du, l.lora.A, dx32, false, false, 1.0f, 1.0f);
  cast(dx32, dx);
}

}  // namespace wick
