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
// WICK_WEIGHT_GRADS=2 runs its one-wave variant (up to 32 K splits a tile, every block resident, the tile's sum
// shared by its splits: ops/cuda/weight_grads.cuh), opt-in: level with cuBLASLt too (H200, docs/benchmarks.md 8m).
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

// What the CUDA twin runs for the products its kernel takes (ops/cuda/weight_grads.cuh): WICK_WEIGHT_GRADS unset,
// empty or "0": cuBLASLt (the view matmul a product); "1": the kernel, K splits reduced by each tile's last block;
// "2": the kernel in one wave, each tile's sum shared by its K splits (a launch whose tiles, split in two, exceed one wave
// runs as "1"). Any other value is an error (wick::Error, on the first weight_grad_products call on a GPU).
enum class WeightGradKernel : int { kCublasLt = 0, kLastBlock = 1, kWave = 2 };

// WICK_WEIGHT_GRADS's value (nullptr: unset) as above; wick::Error naming the value for any other.
WeightGradKernel weight_grad_kernel_from(const char* value);
// The setting (WICK_WEIGHT_GRADS, read once), and the tests' switch.
WeightGradKernel weight_grad_kernel();
void set_weight_grad_kernel(WeightGradKernel which);

}  // namespace wick
