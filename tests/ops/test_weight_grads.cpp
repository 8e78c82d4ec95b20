// weight_grad_products (ops/weight_grads.h) on the CPU: over column views of wider buffers (as training passes
// them), each output equals the view matmul's a^T b (or its transpose) bit for bit, elements outside the outputs
// keep their values; then every validation error, by its message, and WICK_WEIGHT_GRADS's parsing. The registry's
// weight_grad_products_* cases check the values against the f64 reference (test_ops_cpu.cpp).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "common/strided_matmul_checks.h"
#include "common/testutil.h"
#include "ops/matmul.h"
#include "ops/weight_grads.h"

using namespace wick;
using wick::test::error_of;

TEST(WeightGradsCpu, ViewsEqualTheViewMatmul) {
  Rng rng(11);
  const int64_t K = 33, C = 24, R = 16;
  const Tensor xu = wick::test::randn({K, C + R}, rng).to(DType::BF16);
  const Tensor dy = wick::test::randn({K, 40}, rng).to(DType::BF16);
  Tensor grads = wick::test::randn({5 + R * C + 40 * 8 + 5}, rng);
  const Tensor before = wick::test::host_copy(grads);
  const MatrixView x = MatrixView::columns(xu, 0, C), u = MatrixView::columns(xu, C, 8), du = MatrixView::columns(xu, C, R);
  const MatrixView dA{&grads, 5, R, C, C}, dB{&grads, 5 + R * C, 40, 8, 8};
  weight_grad_products({{MatrixView::whole(dy), u, dB, false, 2.0f}, {x, du, dA, true, 1.0f}});

  Tensor want = wick::test::host_copy(before);
  const MatrixView wA{&want, 5, R, C, C}, wB{&want, 5 + R * C, 40, 8, 8};
  matmul(MatrixView::whole(dy), u, wB, true, false, 2.0f, 1.0f);
  matmul(du, x, wA, true, false, 1.0f, 1.0f);
  EXPECT_EQ(std::memcmp(grads.raw(), want.raw(), grads.nbytes()), 0);
  EXPECT_NE(std::memcmp(grads.raw(), before.raw(), grads.nbytes()), 0);
  // accumulate false writes scale a^T b whatever was there.
  Tensor set = wick::test::randn({8, 40}, rng), set_want = Tensor::zeros({8, 40}, DType::F32);
  weight_grad_products({{MatrixView::whole(dy), u, MatrixView::whole(set), true, 0.5f, false}});
  matmul(u, MatrixView::whole(dy), MatrixView::whole(set_want), true, false, 0.5f, 0.0f);
  EXPECT_EQ(std::memcmp(set.raw(), set_want.raw(), set.nbytes()), 0);
}

TEST(WeightGradsCpu, ValidationErrors) {
  Rng rng(12);
  const Tensor a = wick::test::randn({10, 6}, rng), b = wick::test::randn({10, 4}, rng);
  const Tensor b9 = wick::test::randn({9, 4}, rng), b16 = b.to(DType::BF16);
  Tensor out = Tensor::zeros({6, 4}, DType::F32), outT = Tensor::zeros({4, 6}, DType::F32);
  Tensor out16 = Tensor::zeros({6, 4}, DType::BF16), wide = Tensor::zeros({6, 8}, DType::F32);
  const auto W = [](const Tensor& t) { return MatrixView::whole(t); };
  const auto run = [](std::vector<WeightGradProduct> ps) { return error_of([&] { weight_grad_products(ps); }); };
  EXPECT_EQ(run({}), "");
  EXPECT_EQ(run({{W(a), W(b), W(out)}, {W(a), W(b), W(outT), true}}), "");
  EXPECT_NE(run({{W(a), W(b9), W(out)}}).find("must have the same rows (K)"), std::string::npos);
  EXPECT_NE(run({{W(a), W(b), W(outT)}}).find("must be a^T b = [6 x 4]"), std::string::npos);
  EXPECT_NE(run({{W(a), W(b), W(out), true}}).find("must be (a^T b)^T = [4 x 6]"), std::string::npos);
  EXPECT_NE(run({{W(a), W(b16), W(out)}}).find("b must have a's dtype"), std::string::npos) << run({{W(a), W(b16), W(out)}});
  EXPECT_NE(run({{W(a), W(b), W(out16)}}).find("out must be f32"), std::string::npos) << run({{W(a), W(b), W(out16)}});
  // Two products writing the same elements, or one writing another's input.
  const std::string twice = run({{W(a), W(b), W(out)}, {W(a), W(b), W(out)}});
  EXPECT_NE(twice.find("product 0: out"), std::string::npos) << twice;
  EXPECT_NE(twice.find("must not overlap product 1's out"), std::string::npos) << twice;
  const std::string into_input = run({{W(a), W(b), MatrixView::columns(wide, 0, 4)}, {MatrixView::columns(wide, 0, 6), W(b.view({10, 4}).narrow0(0, 6)), W(out)}});
  EXPECT_NE(into_input.find("must not overlap product 1's inputs"), std::string::npos) << into_input;
  // Column blocks of one buffer side by side are fine.
  EXPECT_EQ(run({{W(a), W(b), MatrixView::columns(wide, 0, 4)}, {W(a), W(b), MatrixView::columns(wide, 4, 4)}}), "");
  // A view outside its tensor.
  const MatrixView past{&out, 4, 6, 4, 4};
  EXPECT_NE(run({{W(a), W(b), past}}).find("out"), std::string::npos);
}

// WICK_WEIGHT_GRADS: unset, empty or 0 -> cuBLASLt, 1 -> the kernel (last-block reduction), 2 -> its one-wave
// variant; anything else is an error naming the value. set_weight_grad_kernel overrides the environment.
TEST(WeightGradsCpu, KernelSwitchParsing) {
  EXPECT_EQ(weight_grad_kernel_from(nullptr), WeightGradKernel::kCublasLt);
  EXPECT_EQ(weight_grad_kernel_from(""), WeightGradKernel::kCublasLt);
  EXPECT_EQ(weight_grad_kernel_from("0"), WeightGradKernel::kCublasLt);
  EXPECT_EQ(weight_grad_kernel_from("1"), WeightGradKernel::kLastBlock);
  EXPECT_EQ(weight_grad_kernel_from("2"), WeightGradKernel::kWave);
  for (const char* bad : {"3", "on", "yes", "true", " 1", "1 ", "01", "-1", "2x"}) {
    const std::string e = error_of([&] { weight_grad_kernel_from(bad); });
    EXPECT_NE(e.find(std::string("WICK_WEIGHT_GRADS=") + bad + ":"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("expected 0"), std::string::npos) << e;
  }
  const WeightGradKernel was = weight_grad_kernel();
  for (WeightGradKernel k : {WeightGradKernel::kWave, WeightGradKernel::kLastBlock, WeightGradKernel::kCublasLt}) {
    set_weight_grad_kernel(k);
    EXPECT_EQ(weight_grad_kernel(), k);
  }
  set_weight_grad_kernel(was);
}
