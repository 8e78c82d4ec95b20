// weight_grad_products (ops/weight_grads.h) on CUDA against the CPU twin on the same inputs, in the layouts
// training gives it (model/linear.cpp): a folded group's dB_j from dy_j and the u columns of [x | u], and dA
// (transposed, [R, in]) from x's columns and du's columns of another wide buffer, all outputs views of one packed f32
// gradient block. Checks: within 1e-4 of the CPU (f32 sums of the same bf16 inputs in other orders), the block's
// elements outside the outputs keep their bits, and a second run from the same start gives the same bits
// (the kernel's in-kernel reduction sums the K splits in a fixed order). Also more products than one launch
// takes, the 0.5B gate/up shape (K 8192, M 4864), and the off-kernel products (cuBLASLt) in the same call.
// The kernel is opt-in (WICK_WEIGHT_GRADS=1 or 2): every kernel test here runs for both of its reductions
// (WeightGradKernel::kLastBlock and kWave: parameterised, the case's suffix names which), and one checks the default
// path (cuBLASLt a product) on the same inputs. kWave adds a thin set (q|k|v's dA alone at K 8192, where it takes up
// to 32 splits a tile) and a launch of more tiles than one wave (kWave falls back to kLastBlock's plan for it).
// The registry cases (tests/common/op_cases.cpp, weight_grad_products_*) run in test_ops_cuda.cpp with the
// process's setting.
#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "common/strided_matmul_checks.h"
#include "common/testutil.h"
#include "core/rng.h"
#include "ops/weight_grads.h"

using namespace wick;

namespace {

struct Layout {
  int64_t K, C;                // tokens, the group's input width
  std::vector<int64_t> outs;   // members' out widths
  int64_t r;                   // rank of every member
};

// The operands of one group's backward on one device: xu [K, C + R] (x | u), dxu [K, C + R] (. | du), dys, and
// the f32 block [pad | dA [R, C] | dB_0 | dB_1 | .. | pad] (pack_lora_grads' layout with guards around it).
struct Operands {
  Tensor xu, dxu, grads;
  std::vector<Tensor> dys;
};

constexpr int64_t kPad = 37;

// One of the kernel's reductions (or cuBLASLt) for a scope, then the setting before.
struct ForceKernel {
  WeightGradKernel was = weight_grad_kernel();
  explicit ForceKernel(WeightGradKernel which) { set_weight_grad_kernel(which); }
  ~ForceKernel() { set_weight_grad_kernel(was); }
};

Operands make(const Layout& L, Device dev, uint64_t seed) {
  Rng rng(seed);
  const int64_t R = L.r * static_cast<int64_t>(L.outs.size());
  Operands o;
  o.xu = wick::test::randn({L.K, L.C + R}, rng).to(DType::BF16).to(dev);
  o.dxu = wick::test::randn({L.K, L.C + R}, rng, 0.5f).to(DType::BF16).to(dev);
  for (int64_t n : L.outs) o.dys.push_back(wick::test::randn({L.K, n}, rng, 0.25f).to(DType::BF16).to(dev));
  int64_t total = 2 * kPad + R * L.C;
  for (int64_t n : L.outs) total += n * L.r;
  o.grads = wick::test::randn({total}, rng).to(dev);
  return o;
}

// The group's products: each member's dB, then dA (dA alone when only_dA).
std::vector<WeightGradProduct> products(const Layout& L, const Operands& o, bool only_dA = false) {
  const int64_t R = L.r * static_cast<int64_t>(L.outs.size());
  std::vector<WeightGradProduct> ps;
  int64_t at = kPad + R * L.C;
  for (size_t j = 0; j < L.outs.size(); j++) {
    const MatrixView u = MatrixView::columns(o.xu, L.C + static_cast<int64_t>(j) * L.r, L.r);
    const MatrixView dB{&o.grads, at, L.outs[j], L.r, L.r};
    ps.push_back({MatrixView::whole(o.dys[j]), u, dB, false, 2.0f + static_cast<float>(j)});
    at += L.outs[j] * L.r;
  }
  const MatrixView dA{&o.grads, kPad, R, L.C, L.C};
  ps.push_back({MatrixView::columns(o.xu, 0, L.C), MatrixView::columns(o.dxu, L.C, R), dA, true, 1.0f});
  if (only_dA) ps.erase(ps.begin(), ps.end() - 1);
  return ps;
}

void expect_matches_cpu_and_repeats(const Layout& L, uint64_t seed, WeightGradKernel kernel, bool only_dA = false) {
  const ForceKernel force(kernel);
  const Operands host = make(L, Device::cpu(), seed);
  Operands dev = make(L, Device::cuda(0), seed);
  const Tensor start = wick::test::host_copy(dev.grads);
  weight_grad_products(products(L, host, only_dA));
  weight_grad_products(products(L, dev, only_dA));
  const Tensor got = wick::test::host_copy(dev.grads);
  EXPECT_LE(wick::test::rel_err(got, host.grads), 1e-4);
  // Each output separately too (a small dB must not hide in the large dA).
  for (const WeightGradProduct& p : products(L, host, only_dA)) {
    MatrixView g = p.out;
    g.tensor = &got;
    EXPECT_LE(wick::test::rel_err(wick::test::copy_block(g), wick::test::copy_block(p.out)), 1e-4)
        << "output at offset " << p.out.offset;
  }
  const float* s = static_cast<const float*>(start.raw());
  const float* g = static_cast<const float*>(got.raw());
  const int64_t n = got.numel();
  for (int64_t i = 0; i < kPad; i++) {
    EXPECT_EQ(std::memcmp(&s[i], &g[i], 4), 0) << "guard " << i << " changed";
    EXPECT_EQ(std::memcmp(&s[n - 1 - i], &g[n - 1 - i], 4), 0) << "guard " << n - 1 - i << " changed";
  }
  // The same start again: the same bits.
  dev.grads.copy_from(start.to(Device::cuda(0)));
  weight_grad_products(products(L, dev, only_dA));
  const Tensor again = wick::test::host_copy(dev.grads);
  EXPECT_EQ(std::memcmp(again.raw(), got.raw(), got.nbytes()), 0) << "a second run gave other bits";
}

// Independent products [K, M_i] x [K, R_i] (bf16 unless f32), each into its own output with scale 0.5 + i / 4,
// every third one set (not accumulated): within 1e-4 of the CPU (1e-5 for f32, the view matmul on both), and the
// same bits from the same start on a second run.
struct Spec {
  int64_t M, R;
  bool transposed;
  DType dt;
};
void expect_list_matches_cpu_and_repeats(const std::vector<Spec>& spec, int64_t K, uint64_t seed,
                                         WeightGradKernel kernel) {
  const ForceKernel force(kernel);
  Rng rng(seed);
  std::vector<Tensor> a_h, b_h, o_h, a_d, b_d, o_d;
  for (const Spec& p : spec) {
    a_h.push_back(wick::test::randn({K, p.M}, rng).to(p.dt));
    b_h.push_back(wick::test::randn({K, p.R}, rng).to(p.dt));
    o_h.push_back(wick::test::randn(p.transposed ? Shape{p.R, p.M} : Shape{p.M, p.R}, rng));
  }
  for (size_t i = 0; i < spec.size(); i++) {
    a_d.push_back(a_h[i].to(Device::cuda(0)));
    b_d.push_back(b_h[i].to(Device::cuda(0)));
    o_d.push_back(o_h[i].to(Device::cuda(0)));
  }
  std::vector<Tensor> start;  // the outputs before the runs
  for (const Tensor& o : o_h) start.push_back(wick::test::host_copy(o));
  auto list = [&](std::vector<Tensor>& a, std::vector<Tensor>& b, std::vector<Tensor>& o) {
    std::vector<WeightGradProduct> ps;
    for (size_t i = 0; i < spec.size(); i++)
      ps.push_back({MatrixView::whole(a[i]), MatrixView::whole(b[i]), MatrixView::whole(o[i]), spec[i].transposed,
                    0.5f + 0.25f * static_cast<float>(i), i % 3 != 1});
    return ps;
  };
  weight_grad_products(list(a_h, b_h, o_h));
  weight_grad_products(list(a_d, b_d, o_d));
  std::vector<Tensor> got;
  for (size_t i = 0; i < spec.size(); i++) {
    got.push_back(wick::test::host_copy(o_d[i]));
    EXPECT_LE(wick::test::rel_err(got[i], o_h[i]), spec[i].dt == DType::F32 ? 1e-5 : 1e-4)
        << "product " << i << " M " << spec[i].M << " R " << spec[i].R;
  }
  // The same start again: the same bits.
  for (size_t i = 0; i < spec.size(); i++) o_d[i].copy_from(start[i].to(Device::cuda(0)));
  weight_grad_products(list(a_d, b_d, o_d));
  for (size_t i = 0; i < spec.size(); i++) {
    const Tensor again = wick::test::host_copy(o_d[i]);
    EXPECT_EQ(std::memcmp(again.raw(), got[i].raw(), got[i].nbytes()), 0)
        << "product " << i << ": a second run gave other bits";
  }
}

}  // namespace

namespace wick {
// gtest's name for a WeightGradKernel (the test list's GetParam() line).
void PrintTo(WeightGradKernel k, std::ostream* os) {
  *os << (k == WeightGradKernel::kWave ? "kWave" : k == WeightGradKernel::kLastBlock ? "kLastBlock" : "kCublasLt");
}
}  // namespace wick

// The kernel tests run for both reductions: Reductions/WeightGradsCudaKernel.<case>/LastBlock (WICK_WEIGHT_GRADS=1)
// and .../Wave (=2).
class WeightGradsCudaKernel : public ::testing::TestWithParam<WeightGradKernel> {
 public:
  static std::string name(const ::testing::TestParamInfo<WeightGradKernel>& info) {
    return info.param == WeightGradKernel::kWave ? "Wave" : "LastBlock";
  }
};

INSTANTIATE_TEST_SUITE_P(Reductions, WeightGradsCudaKernel,
                         ::testing::Values(WeightGradKernel::kLastBlock, WeightGradKernel::kWave),
                         WeightGradsCudaKernel::name);

// 0.5B's q k v group (one launch of dB's at rank tile 16, dA at 48) and gate/up (dA at 32), with K off the
// kernel's 64-row stage.
TEST_P(WeightGradsCudaKernel, QkvGroupMatchesCpuAndRepeats) {
  WICK_REQUIRE_CUDA();
  expect_matches_cpu_and_repeats({2085, 896, {896, 128, 128}, 16}, 1, GetParam());
}
TEST_P(WeightGradsCudaKernel, GateUpShapeMatchesCpuAndRepeats) {
  WICK_REQUIRE_CUDA();
  expect_matches_cpu_and_repeats({8192, 896, {4864, 4864}, 16}, 2, GetParam());
}
TEST(WeightGradsCuda, CublasPathMatchesCpuAndRepeats) {
  WICK_REQUIRE_CUDA();
  expect_matches_cpu_and_repeats({2085, 896, {896, 128, 128}, 16}, 1, WeightGradKernel::kCublasLt);
}
TEST_P(WeightGradsCudaKernel, RankEightAndSixtyFour) {
  WICK_REQUIRE_CUDA();
  expect_matches_cpu_and_repeats({700, 256, {136, 64}, 8}, 3, GetParam());   // R 16: dB's at tile 16 with r 8, dA 16
  expect_matches_cpu_and_repeats({300, 64, {64}, 64}, 4, GetParam());        // one member at r 64: both at tile 64
}

// A thin set: q|k|v's dA alone (0.5B: M 896 = 7 tiles, R 48, K 8192), where kWave takes up to 32 splits a tile
// (kLastBlock at most 8); also K off the stage (8190) for uneven splits.
TEST_P(WeightGradsCudaKernel, ThinQkvDaMatchesCpuAndRepeats) {
  WICK_REQUIRE_CUDA();
  expect_matches_cpu_and_repeats({8192, 896, {896, 128, 128}, 16}, 6, GetParam(), /*only_dA*/ true);
  expect_matches_cpu_and_repeats({8190, 896, {896, 128, 128}, 16}, 7, GetParam(), /*only_dA*/ true);
}

// More tiles in one launch than one wave holds: 8 products of M 8192 at rank tile 16 are 512 tiles (the kernel
// fits 2 blocks an SM by shared memory: 264 on an H100 or H200, 296 on 148 SMs), so kWave runs that launch with
// kLastBlock's plan and reduction.
TEST_P(WeightGradsCudaKernel, MoreTilesThanOneWave) {
  WICK_REQUIRE_CUDA();
  std::vector<Spec> spec;
  for (int i = 0; i < 8; i++) spec.push_back({8192, i % 2 ? 16 : 8, i % 2 == 1, DType::BF16});
  expect_list_matches_cpu_and_repeats(spec, 520, 8, GetParam());
}

// Ten products (more than one launch takes) of mixed ranks, several of them sent to cuBLASLt (M 12, R 4, R 80,
// f32), in one call.
TEST_P(WeightGradsCudaKernel, ManyProductsMixedPaths) {
  WICK_REQUIRE_CUDA();
  const std::vector<Spec> spec = {{128, 16, false, DType::BF16}, {256, 16, true, DType::BF16}, {64, 16, false, DType::BF16},
                                  {8, 16, false, DType::BF16},   {512, 16, true, DType::BF16}, {96, 16, false, DType::BF16},
                                  {136, 16, false, DType::BF16}, {40, 16, true, DType::BF16},  {72, 16, false, DType::BF16},
                                  {12, 16, false, DType::BF16},  {64, 4, false, DType::BF16},  {64, 80, true, DType::BF16},
                                  {64, 16, false, DType::F32},   {384, 32, true, DType::BF16}};
  expect_list_matches_cpu_and_repeats(spec, 1500, 5, GetParam());
}
