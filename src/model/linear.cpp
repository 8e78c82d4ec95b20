#include "model/linear.h"

#include "core/error.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

namespace wick {

// A [rows, cols] view at the front of a flat scratch buffer.
static Tensor front(const Tensor& buf, int64_t rows, int64_t cols) {
  WICK_CHECK(buf.defined() && buf.numel() >= rows * cols, "linear scratch too small for [" << rows << ", " << cols << "]");
  return buf.view({buf.numel()}).narrow0(0, rows * cols).view({rows, cols});
}

static bool uses_dropout(const Linear& l, uint64_t seed) { return seed != 0 && l.lora.dropout > 0.0f; }

// The adapter's input: x32, or dropout(x32) in s.d32.
static Tensor adapter_input(const Linear& l, const Tensor& x32, LinearScratch& s, uint64_t seed) {
  if (!uses_dropout(l, seed)) return x32;
  Tensor d = front(s.d32, x32.dim(0), x32.dim(1));
  dropout_forward(x32, l.lora.dropout, seed, d);
  return d;
}

void linear_forward(const Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, Tensor* u, LinearScratch& s,
                    uint64_t dropout_seed) {
  const int64_t N = x.dim(0);
  matmul(x, l.w, y, false, true, 1.0f, 0.0f, l.b.defined() ? &l.b : nullptr);
  if (!l.lora.active()) return;
  const Tensor xin = adapter_input(l, x32, s, dropout_seed);
  // u = xin A^T  [N, r]
  Tensor uu = u ? *u : front(s.r32, N, l.lora.rank());
  matmul(xin, l.lora.A, uu, false, true);
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
                     LinearScratch& s, uint64_t dropout_seed) {
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
  // dA += du^T xin         [r, in]
  const Tensor xin = adapter_input(l, x32, s, dropout_seed);
  matmul(du, xin, l.lora.dA, true, false, 1.0f, 1.0f);
  // dx += dropout'(du A)   [N, in]
  const bool drop = uses_dropout(l, dropout_seed);
  if (dx.dtype() == DType::F32 && !drop) {
    matmul(du, l.lora.A, dx, false, false, 1.0f, 1.0f);
    return;
  }
  Tensor dxl = front(s.b32, N, l.in());
  matmul(du, l.lora.A, dxl, false, false);
  if (drop) dropout_forward(dxl, l.lora.dropout, dropout_seed, dxl);
  if (dx.dtype() == DType::F32) {
    add(dx, dxl, dx);
    return;
  }
  Tensor dx32 = front(s.a32, N, l.in());  // dy32 is no longer needed
  cast(dx, dx32);
  add(dx32, dxl, dx32);
  cast(dx32, dx);
}

}  // namespace wick
