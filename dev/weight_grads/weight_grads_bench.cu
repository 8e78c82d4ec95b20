// Harness for the weight-gradient kernel wick runs (src/ops/cuda/weight_grads.cuh): checks it against an f64 CPU
// reference (every element of every output, accumulate and set, plain and transposed) and run-to-run bits, then
// times the sets a Qwen2.5 0.5B / 1.5B training step gives it (8 x 1024 tokens, r 16 on all seven projections:
// q|k|v's dB with dA, o's dB + dA, gate/up's dB with dA, down's dB + dA) with wick's plan (the K splits against the
// blocks resident at once), reporting us, waves and the GB/s of reading a and b once; beside it the kernel's other
// configurations (64-column blocks, 6 stages, the tile's reduction four splits a round trip).
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

// Calls f(TM, ST, SU) as integral constants for wick's configuration (128, 4, 1) and the variants written after the
// session 28 runs: 64-column blocks (twice the blocks of a thin product), 6 stages, 4 splits a round trip.
template <int V> using C = std::integral_constant<int, V>;
template <class F> void template_configs(F&& f) {
  f(C<128>{}, C<4>{}, C<1>{});
  f(C<128>{}, C<4>{}, C<4>{});
  f(C<64>{}, C<4>{}, C<4>{});
  f(C<128>{}, C<6>{}, C<4>{});
  f(C<64>{}, C<6>{}, C<4>{});
}

// Runs the set `reps` times (returns median us a run) and, when check, compares with the f64 reference.
// The kernel with TM columns a block, ST stages, SU splits a round trip in the tile's reduction (wick: 128, 4, 1);
// SU is capped at 2 from rank tile 48 (registers).
template <int RT, int TM = kTileM, int ST = kStages, int SU0 = 1>
double run(const Set& set, bool check, int reps, int* fails) {
  constexpr int SU = RT > 32 && SU0 > 2 ? 2 : SU0;
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
  CK((capacity<RT, TM, ST, SU>(sms, &cap)));
  const long long floats = plan<RT, TM>(b, cap);
  auto go = [&]() { return launch<RT, TM, ST, SU>(b, 0); };
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
  std::printf("TM %3d ST %d SU %d %-22s RT %d: %d blocks (%.2f waves of %d), %d splits, partials %.1f MB, median %.2f us, %.0f GB/s\n",
              TM, ST, SU, set.name, RT, b.blocks, double(b.blocks) / cap, cap, b.p[0].splits, floats * 4e-6, med, bytes / med * 1e-3);
  for (void* p : frees) CK(cudaFree(p));
  CK(cudaFree(ws));
  return med;
}

int main() {
  CK(cudaMalloc(&g_counters, (1 << 14) * 4));
  CK(cudaMemset(g_counters, 0, (1 << 14) * 4));
  int fails = 0;
  // Correctness: odd shapes at every rank tile.
  // Correctness: odd shapes at every rank tile, wick's configuration and the others timed below.
  auto odd = [&](auto tm, auto st, auto su) {
    constexpr int TM = decltype(tm)::value, ST = decltype(st)::value, SU = decltype(su)::value;
    run<16, TM, ST, SU>({"odd r8/16", 1037, {{136, 8, false, true}, {8, 16, true, false}, {384, 16, false, true}}}, true, 1,
                        &fails);
    run<32, TM, ST, SU>({"odd r24/32", 300, {{200, 24, true, true}, {64, 32, false, false}}}, true, 1, &fails);
    run<48, TM, ST, SU>({"odd r40/48", 2100, {{96, 40, false, true}, {1000, 48, true, true}}}, true, 1, &fails);
    run<64, TM, ST, SU>({"odd r64", 3777, {{128, 64, true, true}, {56, 64, false, true}}}, true, 1, &fails);
  };
  template_configs(odd);
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
  run<16, 64, 6, 4>(gu05, true, 1, &fails);
  // Per 0.5B layer (and 1.5B's two large sets), each configuration, two rounds.
  for (int round = 1; round <= 2; round++) {
    auto layer = [&](auto tm, auto st, auto su) {
      constexpr int TM = decltype(tm)::value, ST = decltype(st)::value, SU = decltype(su)::value;
      double t = 0;
      t += run<16, TM, ST, SU>(dB05, false, 50, &fails);
      t += run<48, TM, ST, SU>(dA05, false, 50, &fails);
      t += run<16, TM, ST, SU>(o05, false, 50, &fails);
      t += run<16, TM, ST, SU>(gu05, false, 50, &fails);
      t += run<32, TM, ST, SU>(gua05, false, 50, &fails);
      t += run<16, TM, ST, SU>(dn05, false, 50, &fails);
      std::printf("per 0.5B layer, TM %d ST %d SU %d, round %d: %.1f us (x 24 layers = %.2f ms)\n", TM, ST, SU, round, t,
                  t * 24e-3);
      run<16, TM, ST, SU>(gu15, false, 50, &fails);
      run<16, TM, ST, SU>(dn15, false, 50, &fails);
    };
    template_configs(layer);
  }
  std::printf(fails ? "%d FAILED\n" : "ALL OK\n", fails);
  return fails != 0;
}
