// exp_span: vec_exp.h's exp over an array, compiled like the CPU twins (WICK_CPU_HOT, their flags), so
// that tests/ops/test_vec_exp.cpp checks the code the ops run.
#include "ops/cpu/vec_exp.h"

#include "ops/cpu/common.h"

namespace wick::cpu {

WICK_CPU_HOT void exp_span(const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = exp_f32(x[i]);
}

}  // namespace wick::cpu
