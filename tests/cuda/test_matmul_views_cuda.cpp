// The matrix-view matmul (ops/matmul.h MatrixView) on CUDA (cuBLASLt with the views' row strides as leading
// dimensions) against the CPU view matmul on the same inputs, over the cases of the CPU suite
// (tests/ops/test_matmul_views.cpp): tolerances of the CUDA matmul cases (ops/opcheck_cases_dense.cpp: f32
// 1e-5 without TF32, bf16 inputs with an f32 c 1e-4, a bf16 c 1e-2); elements of c's buffer outside its view
// keep their bits. Reruns one case: --gtest_filter='*MatmulViewsCuda*M37_N8_K48*'.
#include <gtest/gtest.h>

#include <cstring>

#include "common/strided_matmul_checks.h"
#include "common/testutil.h"
#include "ops/matmul.h"

using namespace wick;
using wick::test::StridedMatmulCase;

namespace {

const std::vector<StridedMatmulCase>& cases() {
  static const auto* c = new std::vector<StridedMatmulCase>(wick::test::strided_matmul_cases(48));
  return *c;
}

Tensor to_host(const Tensor& t) { return wick::test::host_copy(t); }

// The output view of the device run (its buffer dev_buf, copied back) against the host run's (want), within the
// tolerances at the top of this file; the elements of its buffer outside the view keep the bits they had before
// (before: a host copy).
void expect_output_matches(const StridedMatmulCase& s, const Tensor& dev_buf, const MatrixView& dev_view,
                           const MatrixView& want, const Tensor& before, const char* name) {
  const Tensor got_buf = to_host(dev_buf);
  MatrixView got_view = dev_view;
  got_view.tensor = &got_buf;
  const Tensor got = wick::test::copy_block(got_view);
  const double tol = s.ab == DType::F32 ? 1e-5 : s.c == DType::F32 ? 1e-4 : 1e-2;
  EXPECT_LE(wick::test::rel_err(got, wick::test::copy_block(want)), tol) << s.name();
  EXPECT_EQ(wick::test::guard_changes(before, got_buf, got_view), 0)
      << s.name() << ": elements outside " << name << "'s view changed";
}

class MatmulViewsCuda : public ::testing::TestWithParam<size_t> {};

TEST_P(MatmulViewsCuda, MatchesCpu) {
  WICK_REQUIRE_CUDA();
  const StridedMatmulCase& s = cases()[GetParam()];
  auto host = wick::test::make_strided_operands(s, 1000 + GetParam());
  auto dev = wick::test::copy_operands(host, Device::cuda(0));
  const Tensor c_before = wick::test::host_copy(host.c);
  matmul(host.va, host.vb, host.vc, s.ta, s.tb, s.alpha, s.beta, s.bias ? &host.bias : nullptr);
  matmul(dev.va, dev.vb, dev.vc, s.ta, s.tb, s.alpha, s.beta, s.bias ? &dev.bias : nullptr);
  expect_output_matches(s, dev.c, dev.vc, host.vc, c_before, "c");
}

INSTANTIATE_TEST_SUITE_P(Cases, MatmulViewsCuda, ::testing::Range<size_t>(0, cases().size()),
                         [](const auto& info) { return std::to_string(info.param) + "_" + cases()[info.param].name(); });

// matmul_into (cuBLASLt out of place: C and D layouts of their own) against the CPU's on the same inputs, with
// the view cases' tolerances; c's whole buffer keeps its bits, as do d's elements outside its view.
const std::vector<StridedMatmulCase>& into_cases() {
  static const auto* c = new std::vector<StridedMatmulCase>(wick::test::matmul_into_cases(24));
  return *c;
}

class MatmulIntoCuda : public ::testing::TestWithParam<size_t> {};

TEST_P(MatmulIntoCuda, MatchesCpu) {
  WICK_REQUIRE_CUDA();
  const StridedMatmulCase& s = into_cases()[GetParam()];
  auto host = wick::test::make_strided_operands(s, 2000 + GetParam());
  auto dev = wick::test::copy_operands(host, Device::cuda(0));
  const Tensor c_before = wick::test::host_copy(host.c), d_before = wick::test::host_copy(host.d);
  matmul_into(host.va, host.vb, host.vc, host.vd, s.ta, s.tb, s.alpha, s.beta);
  matmul_into(dev.va, dev.vb, dev.vc, dev.vd, s.ta, s.tb, s.alpha, s.beta);
  expect_output_matches(s, dev.d, dev.vd, host.vd, d_before, "d");
  const Tensor got_c = to_host(dev.c);
  EXPECT_EQ(std::memcmp(got_c.raw(), c_before.raw(), c_before.nbytes()), 0) << s.name() << ": c was written";
}

INSTANTIATE_TEST_SUITE_P(Cases, MatmulIntoCuda, ::testing::Range<size_t>(0, into_cases().size()),
                         [](const auto& info) { return std::to_string(info.param) + "_" + into_cases()[info.param].name(); });

// The q|k|v projection at 0.5B widths (512 rows), bf16: three view GEMMs, each reading its rows of the packed
// [Q + 2 KV, C] weight and writing its column block of the [N, Q + 2 KV] output, against one whole GEMM. The
// blocks may get other cuBLASLt algorithms than the whole, so they agree within bf16 rounding, not bitwise.
TEST(MatmulViewsCuda, QkvBlocksMatchOneGemm) {
  WICK_REQUIRE_CUDA();
  Rng rng(9);
  const int64_t N = 512, C = 896, Q = 896, KV = 128;
  const Device d = Device::cuda(0);
  const auto dev_randn = [&](const Shape& s, float scale) {
    const Tensor h = wick::test::randn(s, rng, scale).to(DType::BF16);
    Tensor t = Tensor::empty(s, DType::BF16, d);
    t.copy_from(h);
    return t;
  };
  const Tensor x = dev_randn({N, C}, 1.0f), w = dev_randn({Q + 2 * KV, C}, 0.03f);
  Tensor whole = Tensor::empty({N, Q + 2 * KV}, DType::BF16, d), blocks = dev_randn({N, Q + 2 * KV}, 1.0f);
  matmul(x, w, whole, false, true);
  const int64_t first[3] = {0, Q, Q + KV}, count[3] = {Q, KV, KV};
  for (int i = 0; i < 3; i++) {
    const MatrixView wi{&w, first[i] * C, count[i], C, C};  // rows [first, first + count) of w
    matmul(MatrixView::whole(x), wi, MatrixView::columns(blocks, first[i], count[i]), false, true, 1.0f, 0.0f);
  }
  EXPECT_LE(wick::test::rel_err(to_host(blocks), to_host(whole)), 1e-2);
}

}  // namespace
