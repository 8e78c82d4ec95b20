// Weight-gradient products: out_i (+)= scale_i a_i^T b_i for a set of products at once, each with a long K (a
// training step's tokens) and a narrow b (a LoRA rank): the adapters' dB_j += s dy_j^T u_j ([out_j, r]) and
// dA += du^T x (stored [R, in], the transposed form) of one projection group, in one op.
//
// Why one op for a set: each product alone is a thin slab [M, <= 64] summed over K = N tokens, which a GEMM
// library must split over K and reduce in a second launch; a layer of a 0.5B step has ~11 of them (~4.7 ms of a
// ~51 ms H200 step in ~23 launches, against ~2 ms to read their operands once). The CUDA twin
// (ops/cuda/weight_grads.cuh says how) runs a whole set in one launch on tensor cores, with a deterministic
// in-kernel reduction; the CPU twin is one sgemm a product (the view matmul).
//
// Numerics: f32 accumulation of the products of a's and b's elements (bf16 inputs exact in f32); out is f32 and
// gets scale * sum added (accumulate) or written. The CUDA kernel's summation order is fixed (the same bits every
// run) but not sgemm's. Products the kernel does not take (f32 inputs, R > 64 or not a multiple of 8, M not a
// multiple of 8, misaligned views) run as the view matmul (cuBLASLt) with the same meaning.
// The kernel is opt-in for now (WICK_WEIGHT_GRADS=1): on an H100 it measured level with cuBLASLt's split-k GEMMs in
// training (docs/benchmarks.md section 8j); without it the CUDA twin runs each product as the view matmul.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "ops/matrix_view.h"

namespace wick {

struct WeightGradProduct {
  MatrixView a;              // [K, M], f32 or bf16
  MatrixView b;              // [K, R], a's dtype
  MatrixView out;            // f32: [M, R], or [R, M] when transposed
  bool transposed = false;   // out holds (a^T b)^T = b^T a
  float scale = 1.0f;
  bool accumulate = true;    // out += scale a^T b (else out = scale a^T b)
};

// Every product's views inside their tensors, one device for all, K equal for a and b, out of the shape above and
// sharing no element with any a, b or other product's out (wick::Error naming the product otherwise). The
// products may run in any order or at once.
void weight_grad_products(const std::vector<WeightGradProduct>& products);

// Whether the CUDA twin runs its kernel (WICK_WEIGHT_GRADS set and not "0", read once), and the tests' switch.
bool weight_grad_kernel();
void set_weight_grad_kernel(bool on);

}  // namespace wick
