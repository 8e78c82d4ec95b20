// weight_grad_products: validation and dispatch (ops/weight_grads.h). CPU twin: ops/cpu/weight_grads.cpp; CUDA:
// ops/cuda/weight_grads.cu.
#include "ops/weight_grads.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;
using ops_detail::may_overlap;
using ops_detail::view_str;

namespace {
std::atomic<int> kernel_switch{-1};  // -1: WICK_WEIGHT_GRADS not read yet; else a WeightGradKernel
}  // namespace

WeightGradKernel weight_grad_kernel_from(const char* value) {
  if (!value || !*value || std::strcmp(value, "0") == 0) return WeightGradKernel::kCublasLt;
  if (std::strcmp(value, "1") == 0) return WeightGradKernel::kLastBlock;
  if (std::strcmp(value, "2") == 0) return WeightGradKernel::kWave;
  throw Error(std::string("WICK_WEIGHT_GRADS=") + value +
              ": expected 0 (or unset: cuBLASLt), 1 (wick's kernel) or 2 (its one-wave variant)");
}

WeightGradKernel weight_grad_kernel() {
  int v = kernel_switch.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(weight_grad_kernel_from(std::getenv("WICK_WEIGHT_GRADS")));
    kernel_switch.store(v, std::memory_order_relaxed);
  }
  return static_cast<WeightGradKernel>(v);
}
void set_weight_grad_kernel(WeightGradKernel which) {
  kernel_switch.store(static_cast<int>(which), std::memory_order_relaxed);
}

void weight_grad_products(const std::vector<WeightGradProduct>& products) {
  static const char* op = "weight_grad_products";
  if (products.empty()) return;
  std::vector<Arg> all;
  for (const WeightGradProduct& p : products) {
    all.push_back({"a", p.a.tensor});
    all.push_back({"b", p.b.tensor});
    all.push_back({"out", p.out.tensor});
  }
  const Device dev = ops_detail::one_device(op, all);
  for (size_t i = 0; i < products.size(); i++) {
    const WeightGradProduct& p = products[i];
    const std::string at = "product " + std::to_string(i) + ": ";
    const Arg A{"a", p.a.tensor}, B{"b", p.b.tensor}, O{"out", p.out.tensor};
    ops_detail::need_float(op, A);
    ops_detail::need_same_dtype(op, B, A);
    ops_detail::need_dtype(op, O, DType::F32);
    ops_detail::need_view_inside(op, "a", p.a);
    ops_detail::need_view_inside(op, "b", p.b);
    ops_detail::need_view_inside(op, "out", p.out);
    if (p.a.rows != p.b.rows)
      fail(op, {A, B}, at + view_str("a", p.a) + " and " + view_str("b", p.b) + " must have the same rows (K)");
    const int64_t M = p.a.cols, R = p.b.cols;
    const int64_t rows = p.transposed ? R : M, cols = p.transposed ? M : R;
    if (p.out.rows != rows || p.out.cols != cols)
      fail(op, {A, B, O}, at + view_str("out", p.out) + " must be " + (p.transposed ? "(a^T b)^T = [" : "a^T b = [") +
                              std::to_string(rows) + " x " + std::to_string(cols) + "]");
    if (may_overlap(p.out, p.a)) fail(op, {A, O}, at + view_str("out", p.out) + " must not overlap " + view_str("a", p.a));
    if (may_overlap(p.out, p.b)) fail(op, {B, O}, at + view_str("out", p.out) + " must not overlap " + view_str("b", p.b));
    for (size_t j = 0; j < products.size(); j++) {
      const WeightGradProduct& q = products[j];
      const std::string other = "product " + std::to_string(j) + "'s ";
      if (j != i && may_overlap(p.out, q.out))
        fail(op, {O}, at + view_str("out", p.out) + " must not overlap " + other + view_str("out", q.out));
      if (j != i && (may_overlap(p.out, q.a) || may_overlap(p.out, q.b)))
        fail(op, {O}, at + view_str("out", p.out) + " must not overlap " + other + "inputs");
    }
  }
  WICK_OP_DISPATCH(op, dev, weight_grad_products, products);
}

}  // namespace wick
