#include "common/strided_matmul_checks.h"

#include <cstring>

#include "common/testutil.h"
#include "core/rng.h"

namespace wick::test {

namespace {

std::string place_str(const ViewPlace& p) {
  return std::to_string(p.row0) + "x" + std::to_string(p.col0) + "x" + std::to_string(p.rows_after) + "x" +
         std::to_string(p.cols_after);
}

// alpha / beta as a name fragment: 0.5 -> "0p5", -2 -> "m2".
std::string num_str(float v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (s.back() == '.') s.pop_back();
  for (char& ch : s) ch = ch == '.' ? 'p' : ch == '-' ? 'm' : ch;
  return s;
}

// A buffer holding a stored [rows, cols] block at place p, and the view of that block.
Tensor make_buffer(int64_t rows, int64_t cols, const ViewPlace& p, DType dt, Rng& rng, MatrixView& v) {
  const int64_t ld = p.col0 + cols + p.cols_after;
  Tensor buf = randn({p.row0 + rows + p.rows_after, ld}, rng).to(dt);
  v = MatrixView{nullptr, p.row0 * ld + p.col0, rows, cols, ld};
  return buf;
}

// Re-points v at t, keeping its geometry (whole / columns for the places those helpers describe).
MatrixView view_of(const Tensor& t, const MatrixView& v, const ViewPlace& p) {
  if (p.row0 == 0 && p.rows_after == 0) {
    if (p.col0 == 0 && p.cols_after == 0) return MatrixView::whole(t);
    return MatrixView::columns(t, p.col0, v.cols);
  }
  MatrixView out = v;
  out.tensor = &t;
  return out;
}

}  // namespace

std::string StridedMatmulCase::name() const {
  std::string s = "M" + std::to_string(M) + "_N" + std::to_string(N) + "_K" + std::to_string(K);
  if (ta) s += "_ta";
  if (tb) s += "_tb";
  if (alpha != 1.0f) s += "_a" + num_str(alpha);
  if (beta != 0.0f) s += "_b" + num_str(beta);
  if (bias) s += "_bias";
  s += std::string("_") + dtype_name(ab) + "_c" + dtype_name(c);
  s += "_A" + place_str(pa) + "_B" + place_str(pb) + "_C" + place_str(pc);
  if (into) s += "_into_D" + place_str(pd);
  return s;
}

std::vector<StridedMatmulCase> strided_matmul_cases(int random) {
  std::vector<StridedMatmulCase> cases;
  // Whole tensors (the tensor matmul's case) and plain column blocks.
  cases.push_back({.M = 7, .N = 13, .K = 5});
  cases.push_back({.M = 7, .N = 13, .K = 5, .pa = {0, 2, 0, 3}, .pb = {0, 0, 0, 4}, .pc = {0, 5, 0, 0}});
  // x|u K-concatenation, scaled down: y [N, out] = [x | u] [N, C + r] @ [W | s B] [out, C + r]^T with the
  // operands' u / s B columns at the end of the buffers; and the base part alone, columns [0, C).
  for (DType dt : {DType::F32, DType::BF16}) {
    cases.push_back({.M = 37, .N = 40, .K = 48 + 4, .tb = true, .bias = true, .ab = dt, .c = dt});
    cases.push_back({.M = 37, .N = 40, .K = 48, .tb = true, .ab = dt, .c = dt, .pa = {0, 0, 0, 4}, .pb = {0, 0, 0, 4}});
    // q|k|v column blocks of one [N, Q + 2 KV] output: q at 0, k at Q, v at Q + KV.
    cases.push_back({.M = 37, .N = 32, .K = 48, .tb = true, .bias = true, .ab = dt, .c = dt, .pc = {0, 0, 0, 16}});
    cases.push_back({.M = 37, .N = 8, .K = 48, .tb = true, .bias = true, .ab = dt, .c = dt, .pc = {0, 32, 0, 8}});
    cases.push_back({.M = 37, .N = 8, .K = 48, .tb = true, .bias = true, .ab = dt, .c = dt, .pc = {0, 40, 0, 0}});
    // Backward shapes reading column blocks: dx = dq W (dq a block of dqkv), dW += dq^T x (f32 c, beta 1).
    cases.push_back({.M = 37, .N = 48, .K = 8, .ab = dt, .c = dt, .pa = {0, 32, 0, 8}});
    cases.push_back({.M = 8, .N = 48, .K = 37, .ta = true, .beta = 1.0f, .ab = dt, .c = DType::F32,
                     .pa = {0, 40, 0, 0}, .pb = {0, 0, 0, 4}});
  }
  // Views below leading rows (non-zero offset), with every transpose, alpha, beta and bias.
  cases.push_back({.M = 9, .N = 31, .K = 17, .ta = true, .tb = true, .alpha = 0.5f, .beta = 1.0f, .bias = true,
                   .pa = {2, 1, 1, 2}, .pb = {1, 3, 2, 1}, .pc = {3, 2, 1, 1}});
  cases.push_back({.M = 9, .N = 31, .K = 17, .alpha = -2.0f, .beta = 0.5f, .ab = DType::BF16, .c = DType::BF16,
                   .pa = {1, 1, 1, 1}, .pb = {1, 1, 1, 1}, .pc = {1, 1, 1, 1}});
  cases.push_back({.M = 5, .N = 6, .K = 0, .beta = 1.0f, .bias = true, .pc = {1, 2, 1, 2}});  // k = 0
  Rng rng(20261203);
  const auto pick = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng.next_u32() % (hi - lo + 1)); };
  const auto place = [&] {
    return rng.next_u32() % 4 == 0 ? ViewPlace{} : ViewPlace{pick(0, 2), pick(0, 5), pick(0, 2), pick(0, 5)};
  };
  const float alphas[] = {1.0f, 0.5f, -1.5f}, betas[] = {0.0f, 1.0f, 0.25f};
  for (int i = 0; i < random; i++) {
    StridedMatmulCase s;
    s.M = pick(1, 70), s.N = pick(1, 70), s.K = pick(1, 90);
    s.ta = rng.next_u32() & 1, s.tb = rng.next_u32() & 1;
    s.alpha = alphas[rng.next_u32() % 3], s.beta = betas[rng.next_u32() % 3];
    s.bias = (s.beta == 0.0f || s.beta == 1.0f) && (rng.next_u32() & 1);
    s.ab = rng.next_u32() & 1 ? DType::BF16 : DType::F32;
    s.c = s.ab == DType::BF16 && (rng.next_u32() & 1) ? DType::BF16 : DType::F32;
    s.pa = place(), s.pb = place(), s.pc = place();
    cases.push_back(s);
  }
  return cases;
}

std::vector<StridedMatmulCase> matmul_into_cases(int random) {
  std::vector<StridedMatmulCase> cases;
  for (DType dt : {DType::F32, DType::BF16}) {
    // dx [N, C] = dx_base (the first C columns of [N, C + R]) + du [N, R] A [R, C].
    cases.push_back({.M = 37, .N = 48, .K = 12, .beta = 1.0f, .ab = dt, .c = dt, .pa = {0, 48, 0, 0},
                     .pc = {0, 0, 0, 12}, .into = true});
    cases.push_back({.M = 9, .N = 31, .K = 17, .ta = true, .tb = true, .alpha = 0.5f, .beta = 0.25f, .ab = dt,
                     .c = dt, .pa = {2, 1, 1, 2}, .pb = {1, 3, 2, 1}, .pc = {3, 2, 1, 1}, .into = true,
                     .pd = {1, 4, 2, 3}});
  }
  cases.push_back({.M = 5, .N = 6, .K = 0, .beta = 1.0f, .pc = {1, 2, 1, 2}, .into = true, .pd = {0, 1, 0, 1}});  // k = 0
  cases.push_back({.M = 5, .N = 6, .K = 3, .into = true, .pd = {1, 1, 1, 1}});  // beta = 0: c not read
  Rng rng(20261205);
  const auto pick = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng.next_u32() % (hi - lo + 1)); };
  const auto place = [&] {
    return rng.next_u32() % 4 == 0 ? ViewPlace{} : ViewPlace{pick(0, 2), pick(0, 5), pick(0, 2), pick(0, 5)};
  };
  const float alphas[] = {1.0f, 0.5f, -1.5f}, betas[] = {1.0f, 0.25f, -1.0f};
  for (int i = 0; i < random; i++) {
    StridedMatmulCase s;
    s.M = pick(1, 70), s.N = pick(1, 70), s.K = pick(1, 90);
    s.ta = rng.next_u32() & 1, s.tb = rng.next_u32() & 1;
    s.alpha = alphas[rng.next_u32() % 3], s.beta = betas[rng.next_u32() % 3];
    s.ab = rng.next_u32() & 1 ? DType::BF16 : DType::F32;
    s.c = s.ab == DType::BF16 && (rng.next_u32() & 1) ? DType::BF16 : DType::F32;
    s.pa = place(), s.pb = place(), s.pc = place(), s.pd = place();
    s.into = true;
    cases.push_back(s);
  }
  return cases;
}

StridedMatmulOperands make_strided_operands(const StridedMatmulCase& s, uint64_t seed) {
  Rng rng(seed);
  StridedMatmulOperands o;
  o.a = make_buffer(s.ta ? s.K : s.M, s.ta ? s.M : s.K, s.pa, s.ab, rng, o.va);
  o.b = make_buffer(s.tb ? s.N : s.K, s.tb ? s.K : s.N, s.pb, s.ab, rng, o.vb);
  o.c = make_buffer(s.M, s.N, s.pc, s.c, rng, o.vc);
  if (s.bias) o.bias = randn({s.N}, rng).to(s.c);
  o.va = view_of(o.a, o.va, s.pa), o.vb = view_of(o.b, o.vb, s.pb), o.vc = view_of(o.c, o.vc, s.pc);
  if (s.into) {
    o.d = make_buffer(s.M, s.N, s.pd, s.c, rng, o.vd);
    o.vd = view_of(o.d, o.vd, s.pd);
  }
  return o;
}

StridedMatmulOperands copy_operands(const StridedMatmulOperands& o, Device dev) {
  StridedMatmulOperands d;
  const auto copy = [&](const Tensor& t) {
    if (!t.defined()) return Tensor();
    Tensor out = Tensor::empty(t.shape(), t.dtype(), dev);
    out.copy_from(t);
    return out;
  };
  d.a = copy(o.a), d.b = copy(o.b), d.c = copy(o.c), d.bias = copy(o.bias), d.d = copy(o.d);
  d.va = o.va, d.vb = o.vb, d.vc = o.vc, d.vd = o.vd;
  d.va.tensor = &d.a, d.vb.tensor = &d.b, d.vc.tensor = &d.c, d.vd.tensor = &d.d;
  return d;
}

Tensor host_copy(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  out.copy_from(t);
  return out;
}

Tensor copy_block(const MatrixView& v) {
  const Tensor& t = *v.tensor;
  Tensor out = Tensor::empty({v.rows, v.cols}, t.dtype());
  const size_t e = dtype_size(t.dtype());
  for (int64_t r = 0; r < v.rows; r++)
    std::memcpy(static_cast<char*>(out.raw()) + r * v.cols * e, static_cast<const char*>(t.raw()) + (v.offset + r * v.ld) * e,
                v.cols * e);
  return out;
}

int64_t guard_changes(const Tensor& before, const Tensor& after, const MatrixView& v) {
  const size_t e = dtype_size(before.dtype());
  int64_t changed = 0;
  for (int64_t i = 0; i < before.numel(); i++) {
    const int64_t rel = i - v.offset, r = rel >= 0 && v.ld ? rel / v.ld : -1, col = r >= 0 ? rel % v.ld : -1;
    const bool inside = r >= 0 && r < v.rows && col < v.cols;
    if (inside) continue;
    changed += std::memcmp(static_cast<const char*>(before.raw()) + i * e, static_cast<const char*>(after.raw()) + i * e, e) != 0;
  }
  return changed;
}

}  // namespace wick::test
