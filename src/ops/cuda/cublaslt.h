// wick's one door to cuBLASLt (cublaslt.cu is the only file that includes cublasLt.h). Plain C++ header.
//
// Per device: one cuBLASLt handle and one 32 MiB workspace, created on first use and kept for the life of
// the process. Per problem (shape, dtypes, transposes, batch strides, pointer alignments, bias): one plan
// (matmul descriptor, three matrix layouts, the heuristic's algorithm) created on first use and cached, so
// the repeated calls of a training step enqueue one cublasLtMatmul and nothing else.
//
// The algorithm: cuBLASLt's heuristic offers up to 8; its first is not always the fastest (the 0.5B training
// step's gate/up GEMM: 130 us against 104 for its third, dev/gemm_algos). A problem of >= 2^30 multiply-adds is
// tuned on its third call among those with GemmArgs::may_tune (calls inside a training step: ops/matmul.h
// MatmulTuningScope; so only shapes that recur pay for it, never serving's varying row counts; not under stream
// capture):
// each offered algorithm runs on that call's operands, and the fastest whose output has the first's bits (an
// order-free hash of c) is kept. So the choice changes times, never results: every call gives the bits the
// heuristic's first algorithm gives (algorithms that split k, which sum in another order, are left out by the
// hash). The tuning call saves c first when beta != 0 and restores it between runs, and synchronises the stream
// once. WICK_GEMM_TUNE=0 keeps the heuristic's first algorithm.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace wick::cuda {

// Row-major c[i] = alpha * op(a[i]) @ op(b[i]) + beta * c[i] (+ bias broadcast over rows), i < batch, where
// op(a[i]) is [m, k] (a[i] stored [k, m] when trans_a), op(b[i]) is [k, n] (b[i] stored [n, k] when trans_b),
// c[i] is [m, n]. Batch item i starts stride_* elements after item i-1 (stride 0 = the same matrix for all).
// Rows of a, b, c are lda / ldb / ldc elements apart (0 = packed: the stored row length, e.g. lda = m when
// trans_a else k); a larger ld reads or writes a block of a wider row-major buffer (ops/matmul.h MatrixView).
// Inputs f32 (TRUE f32: compute 32F, no TF32), bf16 or f16 with f32 accumulation; c f32, or the input
// type for bf16/f16 inputs. bias [n] has c's dtype. Enqueued on wick's stream of `device`; no sync.
struct GemmArgs {
  int device = 0;
  DType ab_type = DType::F32, c_type = DType::F32;
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0, batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  // Out of place: beta * c_in (rows ldc_in apart, 0 = packed; batch stride stride_c) is the accumulator and the
  // result goes to c (cuBLASLt's C != D); null = c itself. c_in and c must not overlap.
  const void* c_in = nullptr;
  int64_t ldc_in = 0;
  const void* bias = nullptr;  // null = no bias epilogue
  bool may_tune = false;       // the call may count towards and run the tuning (ops/matmul.h MatmulTuningScope)
  float alpha = 1.0f, beta = 0.0f;
};

void gemm(const GemmArgs& g);

// Shapes tuned so far in this process (all devices).
int64_t tuned_shapes();
// Tuning's progress so far: shapes tuned, and calls of a shape still to be tuned that count towards its tuning (a
// work that leaves it unchanged tunes nothing when run again: it may be captured as a CUDA graph, in which no
// shape is tuned).
int64_t tuning_progress();

// Whether cuBLASLt can read a bias at this address (else the caller adds the bias itself).
bool gemm_bias_aligned(const void* bias);

}  // namespace wick::cuda
