// Harness for the weight-gradient kernel wick runs (src/ops/cuda/weight_grads.cuh): checks it against an f64 CPU
// reference (every element of every output, accumulate and set, plain and transposed) and run-to-run bits, then
// times the sets a Qwen2.5 0.5B / 1.5B training step gives it (8 x 1024 tokens, r 16 on all seven projections:
// q|k|v's dB with dA, o's dB + dA, gate/up's dB with dA, down's dB + dA) with wick's plan (the K splits against the
// blocks resident at once), reporting us, waves and the GB/s of reading a and b once; the same for the dev variant
// weight_grads_v2.cuh (64- or 128-column blocks, 4 or 6 stages, the tile's reduction a few splits a round trip).
// Build: nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src -o build-gpu/weight_grads_bench.bin \
//          dev/weight_grads/weight_grads_bench.cu
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "weight_grads_v2.cuh"
#include "ops/cuda/weight_grads.cuh"

using namespace wick::wgrad;

#define CK(x)                                                                               \
  do {                                                                                      \
    cudaError_t e_ = (x);                                                                   \
    if (e_ != cudaSuccess) {                                                                \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

struct Spec {
  int M, R;
  bool transposed, accumulate;
};

struct Set {
  const char* name;
  int K;
  std::vector<Spec> ps;
};

static unsigned* g_counters = nullptr;

// Runs the set `reps` times (returns median us a run) and, when check, compares with the f64 reference.
// V 1: wick's kernel (TM, ST ignored); V 2: dev/weight_grads/weight_grads_v2.cuh with TM columns and ST stages.
template <int RT, int V = 1, int TM = 128, int ST = 4> double run(const Set& set, bool check, int reps, int* fails) {
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int K = set.K;
  Batch b;
  b.n = (int)set.ps.size();
  std::vector<std::vector<__nv_bfloat16>> ha(b.n), hb(b.n);
  std::vector<std::vector<float>> ho(b.n);
  std::vector<void*> frees;
  for (int i = 0; i < b.n; i++) {
    const Spec& s = set.ps[i];
    ha[i].resize((size_t)K * s.M);
    hb[i].resize((size_t)K * s.R);
    ho[i].resize((size_t)s.M * s.R);
    for (auto& v : ha[i]) v = __float2bfloat16(nd(gen));
    for (auto& v : hb[i]) v = __float2bfloat16(nd(gen));
    for (auto& v : ho[i]) v = nd(gen);
    Product& p = b.p[i];
    __nv_bfloat16 *da, *db;
    float* dout;
    CK(cudaMalloc(&da, ha[i].size() * 2));
    CK(cudaMalloc(&db, hb[i].size() * 2));
    CK(cudaMalloc(&dout, ho[i].size() * 4));
    frees.insert(frees.end(), {(void*)da, (void*)db, (void*)dout});
    CK(cudaMemcpy(da, ha[i].data(), ha[i].size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(db, hb[i].data(), hb[i].size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dout, ho[i].data(), ho[i].size() * 4, cudaMemcpyHostToDevice));
    p.a = da, p.b = db, p.out = dout;
    p.lda = s.M, p.ldb = s.R, p.ldo = s.transposed ? s.M : s.R;
    p.K = K, p.M = s.M, p.R = s.R, p.transposed = s.transposed, p.accumulate = s.accumulate;
    p.scale = 0.5f + i;
  }
  int sms = 0, cap = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  long long floats;
  if constexpr (V == 1) {
    CK(capacity<RT>(sms, &cap));
    floats = plan<RT>(b, cap);
  } else {
    CK((wick::wgrad_v2::capacity<RT, TM, ST>(sms, &cap)));
    floats = wick::wgrad_v2::plan<RT, TM>(b, cap);
  }
  auto go = [&]() {
    if constexpr (V == 1) return launch<RT>(b, 0);
    else return wick::wgrad_v2::launch<RT, TM, ST>(b, 0);
  };
  float* ws;
  CK(cudaMalloc(&ws, floats * 4 + 16));
  b.part = ws, b.counters = g_counters;
  CK(go());
  CK(cudaDeviceSynchronize());
  if (check) {
    for (int i = 0; i < b.n; i++) {
      const Spec& s = set.ps[i];
      std::vector<float> got(ho[i].size());
      CK(cudaMemcpy(got.data(), b.p[i].out, got.size() * 4, cudaMemcpyDeviceToHost));
      double worst = 0, norm = 0;
      for (int m = 0; m < s.M; m++)
        for (int r = 0; r < s.R; r++) {
          double acc = 0;
          for (int k = 0; k < K; k++)
            acc += (double)__bfloat162float(ha[i][(size_t)k * s.M + m]) * __bfloat162float(hb[i][(size_t)k * s.R + r]);
          const size_t at = s.transposed ? (size_t)r * s.M + m : (size_t)m * s.R + r;
          const double want = (s.accumulate ? ho[i][at] : 0.0) + b.p[i].scale * acc;
          worst = std::max(worst, std::fabs(got[at] - want));
          norm = std::max(norm, std::fabs(want));
        }
      const bool ok = worst <= 1e-5 * norm + 1e-4;
      if (!ok) (*fails)++;
      std::printf("  check %s product %d M %d R %d%s%s: max err %.3g of max %.3g %s\n", set.name, i, s.M, s.R,
                  s.transposed ? " T" : "", s.accumulate ? "" : " set", worst, norm, ok ? "ok" : "FAIL");
    }
    // Same bits from the same start.
    std::vector<std::vector<float>> first(b.n);
    for (int i = 0; i < b.n; i++) {
      first[i].resize(ho[i].size());
      CK(cudaMemcpy(first[i].data(), b.p[i].out, ho[i].size() * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(b.p[i].out, ho[i].data(), ho[i].size() * 4, cudaMemcpyHostToDevice));
    }
    CK(go());
    for (int i = 0; i < b.n; i++) {
      std::vector<float> again(ho[i].size());
      CK(cudaMemcpy(again.data(), b.p[i].out, again.size() * 4, cudaMemcpyDeviceToHost));
      const bool same = std::memcmp(again.data(), first[i].data(), again.size() * 4) == 0;
      if (!same) (*fails)++;
      if (!same) std::printf("  check %s product %d: second run differs FAIL\n", set.name, i);
    }
  }
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<float> ts;
  for (int r = 0; r < reps; r++) {
    CK(cudaEventRecord(e0));
    CK(go());
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    ts.push_back(ms * 1000);
  }
  std::sort(ts.begin(), ts.end());
  double bytes = 0;
  for (const Spec& s : set.ps) bytes += 2.0 * K * (s.M + s.R);
  const double med = ts[ts.size() / 2];
  std::printf("v%d TM %3d ST %d %-22s RT %d: %d blocks (%.2f waves of %d), %d splits, partials %.1f MB, median %.2f us, %.0f GB/s\n",
              V, TM, ST, set.name, RT, b.blocks, double(b.blocks) / cap, cap, b.p[0].splits, floats * 4e-6, med, bytes / med * 1e-3);
  for (void* p : frees) CK(cudaFree(p));
  CK(cudaFree(ws));
  return med;
}

int main() {
  CK(cudaMalloc(&g_counters, (1 << 14) * 4));
  CK(cudaMemset(g_counters, 0, (1 << 14) * 4));
  int fails = 0;
  // Correctness: odd shapes at every rank tile.
  // Correctness: odd shapes at every rank tile, v1 and the v2 configurations.
  auto odd = [&](auto v1, auto tm, auto st) {
    constexpr int V = decltype(v1)::value, TM = decltype(tm)::value, ST = decltype(st)::value;
    run<16, V, TM, ST>({"odd r8/16", 1037, {{136, 8, false, true}, {8, 16, true, false}, {384, 16, false, true}}}, true, 1, &fails);
    run<32, V, TM, ST>({"odd r24/32", 300, {{200, 24, true, true}, {64, 32, false, false}}}, true, 1, &fails);
    run<48, V, TM, ST>({"odd r40/48", 2100, {{96, 40, false, true}, {1000, 48, true, true}}}, true, 1, &fails);
    run<64, V, TM, ST>({"odd r64", 3777, {{128, 64, true, true}, {56, 64, false, true}}}, true, 1, &fails);
  };
  using I = std::integral_constant<int, 1>;
  odd(I{}, std::integral_constant<int, 128>{}, std::integral_constant<int, 4>{});
  odd(std::integral_constant<int, 2>{}, std::integral_constant<int, 64>{}, std::integral_constant<int, 4>{});
  odd(std::integral_constant<int, 2>{}, std::integral_constant<int, 128>{}, std::integral_constant<int, 6>{});
  odd(std::integral_constant<int, 2>{}, std::integral_constant<int, 64>{}, std::integral_constant<int, 6>{});
  const int N = 8192;
  // 0.5B (C 896, I 4864, kv 128) and 1.5B (C 1536, I 8960, kv 256), r 16.
  const Set dB05 = {"0.5B qkv dB", N, {{896, 16, false, true}, {128, 16, false, true}, {128, 16, false, true}}};
  const Set dA05 = {"0.5B qkv dA", N, {{896, 48, true, true}}};
  const Set o05 = {"0.5B o dB+dA", N, {{896, 16, false, true}, {896, 16, true, true}}};
  const Set gu05 = {"0.5B gate/up dB", N, {{4864, 16, false, true}, {4864, 16, false, true}}};
  const Set gua05 = {"0.5B gate/up dA", N, {{896, 32, true, true}}};
  const Set dn05 = {"0.5B down dB+dA", N, {{896, 16, false, true}, {4864, 16, true, true}}};
  const Set gu15 = {"1.5B gate/up dB", N, {{8960, 16, false, true}, {8960, 16, false, true}}};
  const Set dn15 = {"1.5B down dB+dA", N, {{1536, 16, false, true}, {8960, 16, true, true}}};
  run<16>(gu05, true, 1, &fails);  // one full-size check
  run<16, 2, 64, 6>(gu05, true, 1, &fails);
  // Per 0.5B layer (and 1.5B's two large sets), each variant, two rounds.
  auto layer = [&](auto v1, auto tm, auto st, int round) {
    constexpr int V = decltype(v1)::value, TM = decltype(tm)::value, ST = decltype(st)::value;
    double t = 0;
    t += run<16, V, TM, ST>(dB05, false, 50, &fails);
    t += run<48, V, TM, ST>(dA05, false, 50, &fails);
    t += run<16, V, TM, ST>(o05, false, 50, &fails);
    t += run<16, V, TM, ST>(gu05, false, 50, &fails);
    t += run<32, V, TM, ST>(gua05, false, 50, &fails);
    t += run<16, V, TM, ST>(dn05, false, 50, &fails);
    std::printf("per 0.5B layer, v%d TM %d ST %d, round %d: %.1f us (x 24 layers = %.2f ms)\n", V, TM, ST, round, t,
                t * 24e-3);
    run<16, V, TM, ST>(gu15, false, 50, &fails);
    run<16, V, TM, ST>(dn15, false, 50, &fails);
  };
  for (int round = 1; round <= 2; round++) {
    layer(I{}, std::integral_constant<int, 128>{}, std::integral_constant<int, 4>{}, round);
    layer(std::integral_constant<int, 2>{}, std::integral_constant<int, 128>{}, std::integral_constant<int, 4>{}, round);
    layer(std::integral_constant<int, 2>{}, std::integral_constant<int, 64>{}, std::integral_constant<int, 4>{}, round);
    layer(std::integral_constant<int, 2>{}, std::integral_constant<int, 128>{}, std::integral_constant<int, 6>{}, round);
    layer(std::integral_constant<int, 2>{}, std::integral_constant<int, 64>{}, std::integral_constant<int, 6>{}, round);
  }
  std::printf(fails ? "%d FAILED\n" : "ALL OK\n", fails);
  return fails != 0;
}
