// CPU twin of weight_grad_products (ops/weight_grads.h): one view matmul (sgemm) a product, in list order.
#include "ops/cpu/cpu_ops.h"

namespace wick::cpu {

void weight_grad_products(const std::vector<WeightGradProduct>& products) {
  for (const WeightGradProduct& p : products) {
    const float beta = p.accumulate ? 1.0f : 0.0f;
    if (p.transposed) cpu::matmul(p.b, p.a, p.out, true, false, p.scale, beta, nullptr);  // [R, M] = b^T a
    else cpu::matmul(p.a, p.b, p.out, true, false, p.scale, beta, nullptr);               // [M, R] = a^T b
  }
}

}  // namespace wick::cpu
