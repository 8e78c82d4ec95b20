#include "common/paged_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "ops/attention.h"
#include "ops/paged_attention.h"

namespace wick::test {

namespace {

struct Case {
  int64_t H, Hkv, D, BS, window;
  std::vector<std::pair<int64_t, int64_t>> seqs;  // (tokens cached before, new query rows T)
};

// A serving step's shape: 150 decodes of 33-120 cached tokens and one prefill chunk, enough blocks that CUDA
// need not split the keys of any row.
Case many_decodes() {
  Case c{14, 2, 64, 16, 0, {}};
  for (int64_t s = 0; s < 150; s++) c.seqs.push_back({33 + (s * 37) % 88, 1});
  c.seqs.push_back({20, 45});
  return c;
}

std::vector<Case> cases() {
  return {
      {14, 2, 64, 16, 0, {{0, 37}, {15, 1}, {16, 1}, {100, 1}, {3, 20}, {0, 1}, {47, 1}}},  // Qwen2.5-0.5B's heads
      {14, 2, 64, 16, 8, {{0, 37}, {15, 1}, {100, 1}, {3, 20}}},
      {16, 4, 128, 16, 0, {{0, 70}, {33, 1}, {64, 5}, {200, 1}}},
      {16, 4, 128, 16, 40, {{0, 70}, {200, 1}, {31, 2}}},
      {4, 4, 64, 5, 6, {{7, 3}, {0, 12}, {11, 1}, {0, 1}}},
      {8, 1, 128, 5, 0, {{7, 3}, {0, 12}, {11, 1}}},
      // decodes alone: few blocks, long caches (CUDA splits the keys and merges the parts)
      {14, 2, 64, 16, 0, {{300, 1}, {17, 1}}},
      {16, 4, 128, 16, 50, {{250, 1}, {40, 1}, {0, 1}}},
      {8, 1, 128, 5, 0, {{123, 1}}},
      // head dims that are no multiple of 8 (bf16 stages a tile element by element) or of 4 (f32 too)
      {6, 2, 36, 8, 0, {{40, 1}, {5, 9}, {0, 3}}},
      {4, 2, 30, 8, 0, {{70, 1}, {3, 4}}},
      many_decodes(),
  };
}

// A case's inputs on the host, f32: q [N, H, D]; pools [NB, BS, Hkv, D] with the used blocks random and the
// others NaN (a read of a block not in a table shows); tables drawn from a shuffled permutation of the blocks.
struct Inputs {
  Tensor q, k_pool, v_pool, query_start, kv_len, table;
  int64_t N = 0, S = 0, MB = 0, NB = 0, max_t = 0, max_len = 0;
  std::vector<std::vector<int32_t>> tables;
};

Inputs make_inputs(const Case& c, Rng& rng) {
  Inputs in;
  in.S = static_cast<int64_t>(c.seqs.size());
  int64_t used = 0;
  for (const auto& [past, T] : c.seqs) {
    in.N += T;
    in.max_t = std::max(in.max_t, T);
    in.max_len = std::max(in.max_len, past + T);
    in.MB = std::max(in.MB, (past + T + c.BS - 1) / c.BS);
    used += (past + T + c.BS - 1) / c.BS;
  }
  in.NB = used + 7;
  std::vector<int32_t> perm(static_cast<size_t>(in.NB));
  std::iota(perm.begin(), perm.end(), 0);
  for (size_t i = perm.size() - 1; i > 0; i--) std::swap(perm[i], perm[rng.below(i + 1)]);
  in.q = randn({in.N, c.H, c.D}, rng);
  in.k_pool = randn({in.NB, c.BS, c.Hkv, c.D}, rng);
  in.v_pool = randn({in.NB, c.BS, c.Hkv, c.D}, rng);
  std::vector<bool> in_use(static_cast<size_t>(in.NB), false);
  std::vector<int32_t> start{0}, len, table(static_cast<size_t>(in.S * in.MB), -1);
  size_t next = 0;
  for (int64_t s = 0; s < in.S; s++) {
    const auto [past, T] = c.seqs[static_cast<size_t>(s)];
    start.push_back(start.back() + static_cast<int32_t>(T));
    len.push_back(static_cast<int32_t>(past + T));
    in.tables.emplace_back();
    for (int64_t j = 0; j < (past + T + c.BS - 1) / c.BS; j++) {
      const int32_t b = perm[next++];
      in_use[static_cast<size_t>(b)] = true;
      table[static_cast<size_t>(s * in.MB + j)] = b;
      in.tables.back().push_back(b);
    }
  }
  const int64_t block = c.BS * c.Hkv * c.D;
  for (int64_t b = 0; b < in.NB; b++)
    if (!in_use[static_cast<size_t>(b)])
      for (Tensor* p : {&in.k_pool, &in.v_pool})
        std::fill_n(p->data<float>() + b * block, block, std::numeric_limits<float>::quiet_NaN());
  in.query_start = Tensor::from_i32(start, {in.S + 1});
  in.kv_len = Tensor::from_i32(len, {in.S});
  in.table = Tensor::from_i32(table, {in.S, in.MB});
  return in;
}

float scale_of(const Case& c) { return 1.0f / std::sqrt(static_cast<float>(c.D)); }

Tensor run_paged(const Case& c, const Inputs& in, Device dev, DType dt) {
  PagedKvBatch b;
  b.query_start = in.query_start.to(dev);
  b.kv_len = in.kv_len.to(dev);
  b.block_table = in.table.to(dev);
  b.max_query_len = in.max_t;
  b.max_kv_len = in.max_len;
  const Tensor q = in.q.to(dt).to(dev), k = in.k_pool.to(dt).to(dev), v = in.v_pool.to(dt).to(dev);
  // out between guard rows of a value the op never writes, exact in every dtype (1234.5 is not a bf16: the
  // guard would read back as 1232 and fail as if overwritten)
  const int64_t G = 3;
  const float guard = 1232.0f;
  Tensor full = Tensor::from_f32(std::vector<float>(static_cast<size_t>((in.N + 2 * G) * c.H * c.D), guard),
                                 {in.N + 2 * G, c.H, c.D}, dev, dt);
  Tensor out = full.narrow0(G, in.N);
  paged_attention_forward(q, k, v, b, scale_of(c), c.window, out);
  const std::vector<float> all = full.to_f32_vector();
  const int64_t row = c.H * c.D;
  for (int64_t i = 0; i < G * row; i++) {
    EXPECT_EQ(all[static_cast<size_t>(i)], guard) << "guard before out, element " << i;
    EXPECT_EQ(all[static_cast<size_t>((G + in.N) * row + i)], guard) << "guard after out, element " << i;
  }
  return out.to(Device::cpu()).to(DType::F32);
}

// The plain reference in double: each query's visible keys through its table, softmax, P.v.
Tensor reference(const Case& c, const Inputs& in) {
  Tensor out = Tensor::empty({in.N, c.H, c.D}, DType::F32);
  const float* q = in.q.data<float>();
  const float* k = in.k_pool.data<float>();
  const float* v = in.v_pool.data<float>();
  const int32_t* start = in.query_start.data<int32_t>();
  const double scale = scale_of(c);
  for (int64_t s = 0; s < in.S; s++) {
    const auto [past, T] = c.seqs[static_cast<size_t>(s)];
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < c.H; h++) {
        const int64_t pos = past + t, first = c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
        const int64_t kh = h / (c.H / c.Hkv);
        const float* qr = q + ((start[s] + t) * c.H + h) * c.D;
        std::vector<double> p;
        double mx = -1e300;
        for (int64_t j = first; j <= pos; j++) {
          const int64_t row = in.tables[static_cast<size_t>(s)][static_cast<size_t>(j / c.BS)] * c.BS + j % c.BS;
          const float* kr = k + (row * c.Hkv + kh) * c.D;
          double d = 0;
          for (int64_t i = 0; i < c.D; i++) d += static_cast<double>(qr[i]) * kr[i];
          p.push_back(d * scale);
          mx = std::max(mx, p.back());
        }
        double z = 0;
        for (double& x : p) z += (x = std::exp(x - mx));
        float* o = out.data<float>() + ((start[s] + t) * c.H + h) * c.D;
        for (int64_t i = 0; i < c.D; i++) {
          double acc = 0;
          for (int64_t j = first; j <= pos; j++) {
            const int64_t row = in.tables[static_cast<size_t>(s)][static_cast<size_t>(j / c.BS)] * c.BS + j % c.BS;
            acc += p[static_cast<size_t>(j - first)] * v[(row * c.Hkv + kh) * c.D + i];
          }
          o[i] = static_cast<float>(acc / z);
        }
      }
  }
  return out;
}

// attention_forward (the contiguous cache) on each sequence's keys gathered in order.
Tensor contiguous(const Case& c, const Inputs& in) {
  Tensor out = Tensor::empty({in.N, c.H, c.D}, DType::F32);
  const int32_t* start = in.query_start.data<int32_t>();
  for (int64_t s = 0; s < in.S; s++) {
    const auto [past, T] = c.seqs[static_cast<size_t>(s)];
    const int64_t L = past + T, row = c.Hkv * c.D;
    Tensor k = Tensor::empty({1, L, c.Hkv, c.D}, DType::F32), v = Tensor::empty({1, L, c.Hkv, c.D}, DType::F32);
    for (int64_t j = 0; j < L; j++) {
      const int64_t src = in.tables[static_cast<size_t>(s)][static_cast<size_t>(j / c.BS)] * c.BS + j % c.BS;
      std::copy_n(in.k_pool.data<float>() + src * row, row, k.data<float>() + j * row);
      std::copy_n(in.v_pool.data<float>() + src * row, row, v.data<float>() + j * row);
    }
    AttentionArgs a;
    a.scale = scale_of(c);
    a.kv_len = L;
    a.window = c.window;
    Tensor o = out.narrow0(start[s], T).view({1, T, c.H, c.D});
    attention_forward(in.q.narrow0(start[s], T).view({1, T, c.H, c.D}), k, v, a, o, nullptr);
  }
  return out;
}

std::string name(const Case& c) {
  return "H" + std::to_string(c.H) + " Hkv" + std::to_string(c.Hkv) + " D" + std::to_string(c.D) + " BS" +
         std::to_string(c.BS) + " window " + std::to_string(c.window);
}

}  // namespace

void check_paged_attention_cpu() {
  Rng rng(1201);
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    const Inputs in = make_inputs(c, rng);
    const Tensor got = run_paged(c, in, Device::cpu(), DType::F32);
    EXPECT_LT(max_abs_diff(got, reference(c, in)), 1e-5);
    EXPECT_EQ(max_abs_diff(got, contiguous(c, in)), 0.0) << "not bit for bit the contiguous attention_forward";
  }
}

void check_paged_attention_device(Device dev, DType dt) {
  Rng rng(1301);
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c) + " " + dtype_name(dt));
    Inputs in = make_inputs(c, rng);
    if (dt != DType::F32)  // both sides read the rounded inputs
      for (Tensor* t : {&in.q, &in.k_pool, &in.v_pool}) *t = t->to(dt).to(DType::F32);
    const Tensor want = run_paged(c, in, Device::cpu(), DType::F32);
    const Tensor got = run_paged(c, in, dev, dt);
    if (dt == DType::F32) EXPECT_LT(max_abs_diff(got, want), 2e-5);
    else EXPECT_LT(max_abs_rel(got, want), 2e-2);
  }
}

void check_paged_kv_write(Device dev, DType dt) {
  Rng rng(1401);
  for (const auto& [NB, BS, Hkv, D, N] : std::vector<std::array<int64_t, 5>>{{9, 16, 2, 64, 37}, {6, 5, 4, 128, 11}, {3, 16, 1, 64, 1}}) {
    SCOPED_TRACE("NB " + std::to_string(NB) + " BS " + std::to_string(BS) + " N " + std::to_string(N));
    const int64_t X = Hkv * D;
    const Tensor k_pool = randn({NB, BS, Hkv, D}, rng).to(dt), v_pool = randn({NB, BS, Hkv, D}, rng).to(dt);
    const Tensor k_rows = randn({N, X}, rng).to(dt), v_rows = randn({N, X}, rng).to(dt);
    std::vector<int32_t> slots(static_cast<size_t>(NB * BS));
    std::iota(slots.begin(), slots.end(), 0);
    for (size_t i = slots.size() - 1; i > 0; i--) std::swap(slots[i], slots[rng.below(i + 1)]);
    slots.resize(static_cast<size_t>(N));
    Tensor kp = k_pool.clone().to(dev), vp = v_pool.clone().to(dev);  // clone: to() of the same device shares
    paged_kv_write(k_rows.to(dev), v_rows.to(dev), Tensor::from_i32(slots, {N}, dev), kp, vp);
    for (const auto& [pool, rows, got] : {std::tuple{&k_pool, &k_rows, &kp}, std::tuple{&v_pool, &v_rows, &vp}}) {
      std::vector<float> want = pool->to_f32_vector();
      const std::vector<float> r = rows->to_f32_vector();
      for (int64_t i = 0; i < N; i++)
        std::copy_n(r.begin() + i * X, X, want.begin() + slots[static_cast<size_t>(i)] * X);
      EXPECT_EQ(got->to_f32_vector(), want);
    }
  }
  // A slot outside the pool is an error naming it (on the CPU; CUDA asserts on the device).
  if (dev.is_cpu()) {
    Tensor kp = randn({2, 4, 1, 64}, rng), vp = randn({2, 4, 1, 64}, rng);
    const std::string e = error_of([&] {
      paged_kv_write(randn({1, 64}, rng), randn({1, 64}, rng), Tensor::from_i32({8}, {1}), kp, vp);
    });
    EXPECT_NE(e.find("outside"), std::string::npos) << e;
  }
}

}  // namespace wick::test
