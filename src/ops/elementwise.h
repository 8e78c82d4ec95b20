#pragma once
#include <vector>

#include "core/tensor.h"
#include "ops/matrix_view.h"

namespace wick {

// a, b, out: same shape and dtype (f32 or bf16). out may alias a or b. f32 math.
void add(const Tensor& a, const Tensor& b, Tensor& out);        // out = a + b
void add_inplace(Tensor& acc, const Tensor& b);                 // acc += b
void scale(const Tensor& x, float s, Tensor& out);              // out = s * x
void axpy(float alpha, const Tensor& x, Tensor& y);             // y += alpha * x
// Casts: src and dst same shape, same device, any float dtypes (exact RNE to bf16/f16).
void cast(const Tensor& src, Tensor& dst);
// Between matrix views (ops/matrix_view.h): dst = scale * src, each element rounded once to dst's dtype (f32 or
// bf16 each, any device; f32 math): moves a block into or out of a wider buffer (a LoRA-folded weight's s B
// columns, a K-concatenated activation's x: model/linear.h). Same rows and cols; no overlap; nothing outside
// dst's view is written.
void copy_matrix(const MatrixView& src, const MatrixView& dst, float scale = 1.0f);
// Many copy_matrix at once (CUDA: one launch for up to 32 copies of one dtype pair, where each alone is a few
// microseconds of launch for a few KB: a training step's adapter refresh, model/linear.h refresh_adapters). Each
// copy as copy_matrix; no copy's dst may overlap another copy's src or dst (they run in any order).
struct MatrixCopy {
  MatrixView src, dst;
  float scale = 1.0f;
};
void copy_matrices(const std::vector<MatrixCopy>& copies);
// Fill with a constant (f32/bf16/i32).
void fill(Tensor& t, float value);

}  // namespace wick
