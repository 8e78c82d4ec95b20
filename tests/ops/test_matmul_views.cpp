// The matrix-view matmul (ops/matmul.h MatrixView) on the CPU: equal, bit for bit, to the tensor matmul on
// the views' blocks copied out (the same sgemm on the same values), over hand-written and random cases
// (transposes, alpha / beta / bias, f32 and bf16, column blocks, views at non-zero offsets); elements of
// c's buffer outside its view keep their values. Then every validation error, by its message.
// Reruns one case: --gtest_filter='*MatmulViewsCpu*M9_N31_K17_ta_tb*'.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "common/strided_matmul_checks.h"
#include "common/testutil.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"

using namespace wick;
using wick::test::StridedMatmulCase;

namespace {

const std::vector<StridedMatmulCase>& cases() {
  static const auto* c = new std::vector<StridedMatmulCase>(wick::test::strided_matmul_cases(48));
  return *c;
}

class MatmulViewsCpu : public ::testing::TestWithParam<size_t> {};

TEST_P(MatmulViewsCpu, EqualsTensorMatmulOnCopiedBlocks) {
  const StridedMatmulCase& s = cases()[GetParam()];
  auto o = wick::test::make_strided_operands(s, 1000 + GetParam());
  const Tensor c_before = wick::test::host_copy(o.c);
  // Reference: the tensor matmul on contiguous copies of the blocks.
  const Tensor a_blk = wick::test::copy_block(o.va), b_blk = wick::test::copy_block(o.vb);
  Tensor c_blk = wick::test::copy_block(o.vc);
  matmul(a_blk, b_blk, c_blk, s.ta, s.tb, s.alpha, s.beta, s.bias ? &o.bias : nullptr);

  matmul(o.va, o.vb, o.vc, s.ta, s.tb, s.alpha, s.beta, s.bias ? &o.bias : nullptr);
  const Tensor got = wick::test::copy_block(o.vc);
  EXPECT_EQ(std::memcmp(got.raw(), c_blk.raw(), got.nbytes()), 0)
      << s.name() << ": differs from the tensor matmul by " << wick::test::max_abs_diff(got, c_blk);
  EXPECT_EQ(wick::test::guard_changes(c_before, o.c, o.vc), 0) << s.name() << ": elements outside c's view changed";
}

INSTANTIATE_TEST_SUITE_P(Cases, MatmulViewsCpu, ::testing::Range<size_t>(0, cases().size()),
                         [](const auto& info) { return std::to_string(info.param) + "_" + cases()[info.param].name(); });

// matmul_into (d = alpha op(a) op(b) + beta c, c only read): bit for bit the view matmul on d after copying c's
// block into it; c's whole buffer and d's elements outside its view keep their values.
const std::vector<StridedMatmulCase>& into_cases() {
  static const auto* c = new std::vector<StridedMatmulCase>(wick::test::matmul_into_cases(24));
  return *c;
}

class MatmulIntoCpu : public ::testing::TestWithParam<size_t> {};

TEST_P(MatmulIntoCpu, EqualsViewMatmulAfterCopyingC) {
  const StridedMatmulCase& s = into_cases()[GetParam()];
  auto o = wick::test::make_strided_operands(s, 2000 + GetParam());
  const Tensor c_before = wick::test::host_copy(o.c), d_before = wick::test::host_copy(o.d);
  // Reference: c's block copied into a copy of d's buffer, then the in-place view matmul there.
  Tensor ref = wick::test::host_copy(o.d);
  MatrixView ref_view = o.vd;
  ref_view.tensor = &ref;
  copy_matrix(o.vc, ref_view);
  matmul(o.va, o.vb, ref_view, s.ta, s.tb, s.alpha, s.beta);

  matmul_into(o.va, o.vb, o.vc, o.vd, s.ta, s.tb, s.alpha, s.beta);
  EXPECT_EQ(std::memcmp(o.d.raw(), ref.raw(), ref.nbytes()), 0)
      << s.name() << ": differs from the in-place matmul by " << wick::test::max_abs_diff(o.d, ref);
  EXPECT_EQ(std::memcmp(o.c.raw(), c_before.raw(), c_before.nbytes()), 0) << s.name() << ": c was written";
  EXPECT_EQ(wick::test::guard_changes(d_before, o.d, o.vd), 0) << s.name() << ": elements outside d's view changed";
}

INSTANTIATE_TEST_SUITE_P(Cases, MatmulIntoCpu, ::testing::Range<size_t>(0, into_cases().size()),
                         [](const auto& info) { return std::to_string(info.param) + "_" + into_cases()[info.param].name(); });

// c a column block of the buffer a is a column block of ([x | y] with y = x W^T): allowed, and correct.
// The tuning scope (ops/matmul.h): off by default, on inside a scope, nested scopes restore what was before,
// and it is per thread (another thread inside no scope is not allowed).
TEST(MatmulTuningScope, NestsAndIsPerThread) {
  EXPECT_FALSE(matmul_tuning_allowed());
  {
    const MatmulTuningScope outer;
    EXPECT_TRUE(matmul_tuning_allowed());
    bool other_thread = true;
    std::thread([&] { other_thread = matmul_tuning_allowed(); }).join();
    EXPECT_FALSE(other_thread);
    {
      const MatmulTuningScope inner;
      EXPECT_TRUE(matmul_tuning_allowed());
    }
    EXPECT_TRUE(matmul_tuning_allowed());
  }
  EXPECT_FALSE(matmul_tuning_allowed());
}

TEST(MatmulViews, OutputBesideInputInOneBuffer) {
  Rng rng(5);
  Tensor buf = wick::test::randn({11, 6 + 4}, rng), w = wick::test::randn({4, 6}, rng);
  const Tensor before = wick::test::host_copy(buf);
  const Tensor x = wick::test::copy_block(MatrixView::columns(buf, 0, 6));
  Tensor want = Tensor::empty({11, 4}, DType::F32);
  matmul(x, w, want, false, true);
  matmul(MatrixView::columns(buf, 0, 6), MatrixView::whole(w), MatrixView::columns(buf, 6, 4), false, true, 1.0f, 0.0f);
  const Tensor got = wick::test::copy_block(MatrixView::columns(buf, 6, 4));
  EXPECT_EQ(std::memcmp(got.raw(), want.raw(), got.nbytes()), 0);
  EXPECT_EQ(wick::test::guard_changes(before, buf, MatrixView::columns(buf, 6, 4)), 0);
}

// Each bad call and the words its wick::Error must contain.
TEST(MatmulViews, ValidationErrors) {
  const Tensor a = Tensor::zeros({4, 7}, DType::F32), b = Tensor::zeros({7, 3}, DType::F32);
  const Tensor c = Tensor::zeros({4, 3}, DType::F32), wide = Tensor::zeros({4, 10}, DType::F32);
  const Tensor a_bf = Tensor::zeros({4, 7}, DType::BF16), a_i32 = Tensor::zeros({4, 7}, DType::I32);
  const Tensor c_i32 = Tensor::zeros({4, 3}, DType::I32), bias3 = Tensor::zeros({3}, DType::F32);
  const Tensor bias4 = Tensor::zeros({4}, DType::F32), bias_bf = Tensor::zeros({3}, DType::BF16);
  const Tensor rank3 = Tensor::zeros({2, 4, 7}, DType::F32), undefined;
  using MV = MatrixView;
  const MV A = MV::whole(a), B = MV::whole(b), C = MV::whole(c);
  struct Bad {
    std::string what;
    std::function<void()> call;
    std::string want;
  };
  const std::vector<Bad> bad = {
      {"whole of rank 3", [&] { MV::whole(rank3); }, "MatrixView::whole: t f32[2, 4, 7] cpu: t must be rank 2"},
      {"columns past the end", [&] { MV::columns(wide, 8, 3); }, "columns [8, 11) must lie inside [0, 10)"},
      {"columns negative", [&] { MV::columns(wide, -1, 3); }, "columns [-1, 2) must lie inside [0, 10)"},
      {"undefined a", [&] { matmul(MV{&undefined, 0, 4, 7, 7}, B, C, false, false, 1, 0); }, "a must be a defined tensor"},
      {"null c", [&] { matmul(A, B, MV{nullptr, 0, 4, 3, 3}, false, false, 1, 0); }, "c must be a defined tensor"},
      {"a int", [&] { matmul(MV::whole(a_i32), B, C, false, false, 1, 0); }, "a must be f32 or bf16"},
      {"a, b dtypes", [&] { matmul(MV::whole(a_bf), B, C, false, false, 1, 0); }, "b must have a's dtype (bf16)"},
      {"c int", [&] { matmul(A, B, MV::whole(c_i32), false, false, 1, 0); }, "c must be f32 or bf16"},
      {"bias dtype", [&] { matmul(A, B, C, false, false, 1, 0, &bias_bf); }, "bias must have c's dtype (f32)"},
      {"ld < cols", [&] { matmul(MV{&a, 0, 4, 7, 6}, B, C, false, false, 1, 0); },
       "matmul: a f32[4, 7] cpu: a's view [4 x 7, ld 6] at offset 0: ld must be >= cols"},
      {"negative offset", [&] { matmul(A, MV{&b, -1, 7, 3, 3}, C, false, false, 1, 0); },
       "b's view [7 x 3, ld 3] at offset -1: offset, rows and cols must be >= 0"},
      {"view past the tensor", [&] { matmul(A, B, MV{&wide, 8, 4, 3, 10}, false, false, 1, 0); },
       "c's view [4 x 3, ld 10] at offset 8 must lie inside the tensor: it ends at element 41 > numel 40"},
      {"inner dims", [&] { matmul(A, B, C, true, false, 1, 0); }, "inner dimensions differ: op(a's view [4 x 7, ld 7] at offset 0) gives K = 4, op(b's view [7 x 3, ld 3] at offset 0) gives K = 7"},
      {"c shape", [&] { matmul(A, B, MV::columns(wide, 0, 4), false, false, 1, 0); },
       "c's view [4 x 4, ld 10] at offset 0 must be op(a) @ op(b) = [4 x 3]"},
      {"bias shape", [&] { matmul(A, B, C, false, false, 1, 0, &bias4); }, "bias must be [N] = [3]"},
      {"bias beta", [&] { matmul(A, B, C, false, false, 1, 0.5f, &bias3); }, "a bias needs beta == 0 or beta == 1"},
      {"c overlaps a", [&] { matmul(MV::columns(wide, 0, 7), B, MV::columns(wide, 6, 3), false, false, 1, 0); },
       "c's view [4 x 3, ld 10] at offset 6 must not overlap a's view [4 x 7, ld 10] at offset 0"},
      {"c overlaps b", [&] { matmul(A, MV{&wide, 0, 7, 3, 3}, MV{&wide, 20, 4, 3, 3}, false, false, 1, 0); },
       "c's view [4 x 3, ld 3] at offset 20 must not overlap b's view [7 x 3, ld 3] at offset 0"},
      {"c is a", [&] { matmul(MV::whole(c), MV{&b, 0, 3, 3, 3}, C, false, false, 1, 0); }, "must not overlap a's view"},
      {"into: d overlaps c", [&] { matmul_into(A, B, MV::columns(wide, 0, 3), MV::columns(wide, 2, 3), false, false, 1, 1); },
       "d's view [4 x 3, ld 10] at offset 2 must not overlap c's view [4 x 3, ld 10] at offset 0"},
      {"into: d is c", [&] { matmul_into(A, B, C, C, false, false, 1, 1); }, "(in place: the view matmul)"},
      {"into: d overlaps a", [&] { matmul_into(MV::columns(wide, 0, 7), B, C, MV::columns(wide, 6, 3), false, false, 1, 1); },
       "must not overlap a's view"},
      {"into: c dtype", [&] { matmul_into(A, B, MV::whole(c_i32), C, false, false, 1, 1); }, "c must have d's dtype (f32)"},
      {"into: c shape", [&] { matmul_into(A, B, MV::columns(wide, 0, 4), C, false, false, 1, 1); },
       "c's view [4 x 4, ld 10] at offset 0 must be op(a) @ op(b) = [4 x 3]"},
      {"into: d shape", [&] { matmul_into(A, B, C, MV::columns(wide, 0, 4), false, false, 1, 1); },
       "d's view [4 x 4, ld 10] at offset 0 must be op(a) @ op(b) = [4 x 3]"},
  };
  for (const Bad& x : bad) {
    const std::string msg = wick::test::error_of(x.call);
    EXPECT_NE(msg.find(x.want), std::string::npos) << x.what << ": got \"" << msg << "\"";
  }
}

}  // namespace
