// CPU elementwise ops on f32 or bf16 (f32 math, one rounding to bf16 on store), casts and fills.
#include <algorithm>

#include "core/error.h"
#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

namespace {

// out[i] = f(a[i], b[i]) for f32 or bf16 tensors of one dtype (out may alias a or b).
template <typename F> void map2(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const int64_t n = out.numel();
  if (out.dtype() == DType::F32) {
    const float* pa = a.data<float>();
    const float* pb = b.data<float>();
    float* po = out.data<float>();
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) po[i] = f(pa[i], pb[i]);
  } else {
    const uint16_t* pa = a.data_u16();
    const uint16_t* pb = b.data_u16();
    uint16_t* po = out.data_u16();
#pragma omp parallel for if (n > kParallelMin)
    for (int64_t i = 0; i < n; i++) po[i] = f32_to_bf16(f(bf16_to_f32(pa[i]), bf16_to_f32(pb[i])));
  }
}

}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  map2(a, b, out, [](float x, float y) { return x + y; });
}

void add_inplace(Tensor& acc, const Tensor& b) {
  map2(acc, b, acc, [](float x, float y) { return x + y; });
}

void scale(const Tensor& x, float s, Tensor& out) {
  map2(x, x, out, [s](float v, float) { return s * v; });
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  map2(x, y, y, [alpha](float xv, float yv) { return yv + alpha * xv; });
}

void cast(const Tensor& src, Tensor& dst) { cast_into(src, dst); }

// Row by row through f32: one rounding to dst's dtype.
void copy_matrix(const MatrixView& src, const MatrixView& dst, float scale) {
  const float* s32 = src.tensor->dtype() == DType::F32 ? src.tensor->data<float>() + src.offset : nullptr;
  const uint16_t* s16 = s32 ? nullptr : src.tensor->data_u16() + src.offset;
  float* d32 = dst.tensor->dtype() == DType::F32 ? dst.tensor->data<float>() + dst.offset : nullptr;
  uint16_t* d16 = d32 ? nullptr : dst.tensor->data_u16() + dst.offset;
#pragma omp parallel for if (src.rows * src.cols > kParallelMin)
  for (int64_t r = 0; r < src.rows; r++)
    for (int64_t c = 0; c < src.cols; c++) {
      const float v = scale * (s32 ? s32[r * src.ld + c] : bf16_to_f32(s16[r * src.ld + c]));
      if (d32) d32[r * dst.ld + c] = v;
      else d16[r * dst.ld + c] = f32_to_bf16(v);
    }
}

void copy_matrices(const std::vector<MatrixCopy>& copies) {
  for (const MatrixCopy& c : copies) cpu::copy_matrix(c.src, c.dst, c.scale);
}

void fill(Tensor& t, float value) {
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::F32: std::fill_n(t.data<float>(), n, value); break;
    case DType::BF16: std::fill_n(t.data_u16(), n, f32_to_bf16(value)); break;
    case DType::I32: std::fill_n(t.data<int32_t>(), n, static_cast<int32_t>(value)); break;
    default: WICK_CHECK(false, "fill: unsupported dtype " << dtype_name(t.dtype()));
  }
}

}  // namespace wick::cpu
