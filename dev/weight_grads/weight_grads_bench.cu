// Harness for the weight-gradient kernel wick runs (src/ops/cuda/weight_grads.cuh), both reductions: v1
// (kLastBlock, WICK_WEIGHT_GRADS=1) and v2 (kWave, =2: one wave, up to 32 splits a tile, each tile's sum shared by
// its splits). Checks each against an f64 CPU reference (every element of every output, accumulate and set, plain
// and transposed) and run-to-run bits (v2: four runs from the same start), then times the sets a Qwen2.5 0.5B / 1.5B
// training step gives it (8 x 1024 tokens, r 16 on all seven projections: q|k|v's dB with dA, o's dB + dA,
// gate/up's dB with dA, down's dB + dA) with each variant's plan, reporting us, waves and the GB/s of reading a and
// b once; v1 also in its other configurations (64-column blocks, 6 stages, the tile's reduction four splits a round
// trip), v2 in two (wick's 128 columns x 4 stages; 64 x 6). Then the load-only probe (kLoadOnly: v2's plan and the
// same cp.async ring, no MMA, no partials) on the 0.5B sets and on each of their products alone, at wick's 4 stages
// and at 8 (one block an SM by shared memory): how far the stream itself is from HBM speed.
// Lines: "v1 TM .. ST .. SU ..", "v2 TM .. ST ..", "probe TM .. ST .." per set; "per 0.5B layer, <variant>, round
// N" per configuration; "ALL OK" or "N FAILED" last.
// Build: nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src -o build-gpu/weight_grads_bench.bin \
//          dev/weight_grads/weight_grads_bench.cu
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
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

// A set's operands, made once (host copies for the reference, device copies for the runs): uniform in [-1, 1)
// from a fixed seed (xorshift: the 1.5B sets alone are ~0.5 G elements).
struct Data {
  std::vector<std::vector<__nv_bfloat16>> ha, hb;
  std::vector<std::vector<float>> ho;  // the outputs' start
  std::vector<std::vector<double>> ref;  // a^T b [M][R] in f64, made by the first check
  std::vector<__nv_bfloat16*> da, db;
  std::vector<float*> dout;
};
static std::map<std::string, Data> g_data;
static Data& data_for(const Set& set) {
  auto it = g_data.find(set.name);
  if (it != g_data.end()) return it->second;
  Data& d = g_data[set.name];
  uint64_t x = 0x9E3779B97F4A7C15ull ^ std::hash<std::string>()(set.name);
  auto uni = [&x]() {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return float(int64_t(x >> 40) - (1ll << 23)) * (1.0f / float(1 << 23));
  };
  const int n = (int)set.ps.size(), K = set.K;
  d.ha.resize(n), d.hb.resize(n), d.ho.resize(n), d.ref.resize(n), d.da.resize(n), d.db.resize(n), d.dout.resize(n);
  for (int i = 0; i < n; i++) {
    const Spec& s = set.ps[i];
    d.ha[i].resize((size_t)K * s.M);
    d.hb[i].resize((size_t)K * s.R);
    d.ho[i].resize((size_t)s.M * s.R);
    for (auto& v : d.ha[i]) v = __float2bfloat16(uni());
    for (auto& v : d.hb[i]) v = __float2bfloat16(uni());
    for (auto& v : d.ho[i]) v = uni();
    CK(cudaMalloc(&d.da[i], d.ha[i].size() * 2));
    CK(cudaMalloc(&d.db[i], d.hb[i].size() * 2));
    CK(cudaMalloc(&d.dout[i], d.ho[i].size() * 4));
    CK(cudaMemcpy(d.da[i], d.ha[i].data(), d.ha[i].size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.db[i], d.hb[i].data(), d.hb[i].size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d.dout[i], d.ho[i].data(), d.ho[i].size() * 4, cudaMemcpyHostToDevice));
  }
  return d;
}

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
// v2's configurations (TM, ST): wick's, and 64-column blocks with 6 stages (3 blocks an SM by shared memory at
// rank tile 16, where 128 x 6 would fit one).
template <class F> void wave_configs(F&& f) {
  f(C<128>{}, C<4>{});
  f(C<64>{}, C<6>{});
}
// The probe's (TM, ST): wick's ring, and twice its stages.
template <class F> void probe_configs(F&& f) {
  f(C<128>{}, C<4>{});
  f(C<128>{}, C<8>{});
}

// Runs the set (or only its product `only`) `reps` times (returns median us a run) and, when check, compares with
// the f64 reference and the bits of further runs from the same start. V: kLastBlock (v1: plan, launch), kWave
// (v2: plan_wave, launch_wave; a set whose tiles, split in two, exceed a wave runs as v1, as wick does) or kLoadOnly (the probe
// on v2's plan; nothing to check). TM columns a block, ST stages, SU splits a round trip in v1's reduction (wick:
// 128, 4, 1); SU is capped at 2 from rank tile 48 (registers).
template <int RT, int TM = kTileM, int ST = kStages, int SU0 = 1, int V = kLastBlock>
double run(const Set& set, bool check, int reps, int* fails, int only = -1) {
  constexpr int SU = RT > 32 && SU0 > 2 ? 2 : SU0;
  const int K = set.K;
  Data& d = data_for(set);
  std::vector<int> idx;  // the set's products this run takes
  for (int i = 0; i < (int)set.ps.size(); i++)
    if (only < 0 || only == i) idx.push_back(i);
  Batch b;
  b.n = (int)idx.size();
  for (int j = 0; j < b.n; j++) {
    const int i = idx[j];
    const Spec& s = set.ps[i];
    Product& p = b.p[j];
    p.a = d.da[i], p.b = d.db[i], p.out = d.dout[i];
    p.lda = s.M, p.ldb = s.R, p.ldo = s.transposed ? s.M : s.R;
    p.K = K, p.M = s.M, p.R = s.R, p.transposed = s.transposed, p.accumulate = s.accumulate;
    p.scale = 0.5f + i;
  }
  int sms = 0, cap = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  long long floats = -1;
  if (V != kLastBlock) {
    CK((resident_blocks<RT, TM, ST, 1, V>(sms, &cap)));
    floats = plan_wave<RT, TM>(b, cap);
    if (floats < 0 && V == kLoadOnly) {
      std::printf("probe TM %3d ST %d %-22s RT %d: fewer than two splits a tile fit a wave of %d, skipped\n", TM, ST, set.name, RT, cap);
      return 0;
    }
  }
  const bool wave = floats >= 0;  // else v1's plan (V == kWave: the fallback)
  if (!wave) {
    CK((resident_blocks<RT, TM, ST, SU>(sms, &cap)));
    floats = plan<RT, TM>(b, cap);
  }
  auto go = [&]() { return wave ? launch_wave<RT, TM, ST, V>(b, 0) : launch<RT, TM, ST, SU>(b, 0); };
  float* ws;
  CK(cudaMalloc(&ws, floats * 4 + 16));
  b.part = ws, b.counters = g_counters;
  char label[64];
  if (V == kLastBlock) std::snprintf(label, sizeof label, "v1 TM %3d ST %d SU %d", TM, ST, SU);
  else if (V == kWave) std::snprintf(label, sizeof label, "v2 TM %3d ST %d%s", TM, ST, wave ? "" : " (as v1: > 1 wave)");
  else std::snprintf(label, sizeof label, "probe TM %3d ST %d", TM, ST);
  auto reset = [&]() {
    for (int i : idx) CK(cudaMemcpy(d.dout[i], d.ho[i].data(), d.ho[i].size() * 4, cudaMemcpyHostToDevice));
  };
  if (check) reset();
  CK(go());
  CK(cudaDeviceSynchronize());
  if (check && V != kLoadOnly) {
    std::vector<std::vector<float>> first(set.ps.size());
    for (int j = 0; j < b.n; j++) {
      const int i = idx[j];
      const Spec& s = set.ps[i];
      std::vector<float>& got = first[i];
      got.resize(d.ho[i].size());
      CK(cudaMemcpy(got.data(), d.dout[i], got.size() * 4, cudaMemcpyDeviceToHost));
      std::vector<double>& acc = d.ref[i];  // f64 reference, k outermost (a's rows in order), made once
      if (acc.empty()) {
        acc.assign((size_t)s.M * s.R, 0.0);
        for (int k = 0; k < K; k++) {
          const __nv_bfloat16* ar = &d.ha[i][(size_t)k * s.M];
          const __nv_bfloat16* br = &d.hb[i][(size_t)k * s.R];
          double bv[64];
          for (int r = 0; r < s.R; r++) bv[r] = __bfloat162float(br[r]);
          for (int m = 0; m < s.M; m++) {
            const double av = __bfloat162float(ar[m]);
            double* row = &acc[(size_t)m * s.R];
            for (int r = 0; r < s.R; r++) row[r] += av * bv[r];
          }
        }
      }
      double worst = 0, norm = 0;
      for (int m = 0; m < s.M; m++)
        for (int r = 0; r < s.R; r++) {
          const size_t at = s.transposed ? (size_t)r * s.M + m : (size_t)m * s.R + r;
          const double want = (s.accumulate ? d.ho[i][at] : 0.0) + b.p[j].scale * acc[(size_t)m * s.R + r];
          worst = std::max(worst, std::fabs(got[at] - want));
          norm = std::max(norm, std::fabs(want));
        }
      const bool ok = worst <= 1e-5 * norm + 1e-4;
      if (!ok) (*fails)++;
      std::printf("  check %s: %s product %d M %d R %d%s%s: max err %.3g of max %.3g %s\n", label, set.name, i, s.M,
                  s.R, s.transposed ? " T" : "", s.accumulate ? "" : " set", worst, norm, ok ? "ok" : "FAIL");
    }
    // Same bits from the same start (v2 waits on other blocks: several runs, in case timing showed through).
    const int again_runs = V == kWave ? 4 : 1;
    for (int run_i = 0; run_i < again_runs; run_i++) {
      reset();
      CK(go());
      CK(cudaDeviceSynchronize());
      for (int i : idx) {
        std::vector<float> again(d.ho[i].size());
        CK(cudaMemcpy(again.data(), d.dout[i], again.size() * 4, cudaMemcpyDeviceToHost));
        const bool same = std::memcmp(again.data(), first[i].data(), again.size() * 4) == 0;
        if (!same) (*fails)++;
        if (!same) std::printf("  check %s: %s product %d: run %d differs FAIL\n", label, set.name, i, run_i + 2);
      }
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
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  std::sort(ts.begin(), ts.end());
  double bytes = 0;
  for (int i : idx) bytes += 2.0 * K * (set.ps[i].M + set.ps[i].R);
  const double med = ts[ts.size() / 2];
  char name[64];
  if (only >= 0) std::snprintf(name, sizeof name, "%s [%d] M %d R %d", set.name, only, set.ps[only].M, set.ps[only].R);
  else std::snprintf(name, sizeof name, "%s", set.name);
  std::printf("%s %-30s RT %d: %d blocks (%.2f waves of %d), %d splits, %s %.1f MB, median %.2f us, %.0f GB/s\n", label,
              name, RT, b.blocks, double(b.blocks) / cap, cap, b.p[0].splits, V == kLoadOnly ? "workspace" : "partials",
              floats * 4e-6, med, bytes / med * 1e-3);
  CK(cudaFree(ws));
  return med;
}

int main() {
  CK(cudaMalloc(&g_counters, (1 << 14) * 4));
  CK(cudaMemset(g_counters, 0, (1 << 14) * 4));
  int coop = 0;
  CK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, 0));
  if (!coop) {
    std::printf("the device cannot launch cooperatively: no v2\n1 FAILED\n");
    return 1;
  }
  int fails = 0;
  // Correctness: odd shapes at every rank tile, v1 in wick's configuration and the others timed below, v2 in its.
  const Set odd16 = {"odd r8/16", 1037, {{136, 8, false, true}, {8, 16, true, false}, {384, 16, false, true}}};
  const Set odd32 = {"odd r24/32", 300, {{200, 24, true, true}, {64, 32, false, false}}};
  const Set odd48 = {"odd r40/48", 2100, {{96, 40, false, true}, {1000, 48, true, true}}};
  const Set odd64 = {"odd r64", 3777, {{128, 64, true, true}, {56, 64, false, true}}};
  auto odd = [&](auto tm, auto st, auto su) {
    constexpr int TM = decltype(tm)::value, ST = decltype(st)::value, SU = decltype(su)::value;
    run<16, TM, ST, SU>(odd16, true, 1, &fails);
    run<32, TM, ST, SU>(odd32, true, 1, &fails);
    run<48, TM, ST, SU>(odd48, true, 1, &fails);
    run<64, TM, ST, SU>(odd64, true, 1, &fails);
  };
  template_configs(odd);
  auto odd_wave = [&](auto tm, auto st) {
    constexpr int TM = decltype(tm)::value, ST = decltype(st)::value;
    run<16, TM, ST, 1, kWave>(odd16, true, 1, &fails);
    run<32, TM, ST, 1, kWave>(odd32, true, 1, &fails);
    run<48, TM, ST, 1, kWave>(odd48, true, 1, &fails);
    run<64, TM, ST, 1, kWave>(odd64, true, 1, &fails);
  };
  wave_configs(odd_wave);
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
  // 8 x 64 tiles: more than one wave on any card (2 blocks an SM at rank tile 16): v2 runs it as v1.
  Set wide_set = {"8 x M 8192 (> 1 wave)", 520, {}};
  for (int i = 0; i < 8; i++) wide_set.ps.push_back({8192, i % 2 ? 16 : 8, i % 2 == 1, i % 3 != 1});
  // Full-size checks: gate/up's dB (few splits), q|k|v's dA (v2: up to 32 splits), the fallback.
  run<16>(gu05, true, 1, &fails);
  run<16, 64, 6, 4>(gu05, true, 1, &fails);
  run<16, 128, 4, 1, kWave>(gu05, true, 1, &fails);
  run<48>(dA05, true, 1, &fails);
  run<48, 128, 4, 1, kWave>(dA05, true, 1, &fails);
  run<16, 128, 4, 1, kWave>(dB05, true, 1, &fails);
  run<16, 128, 4, 1, kWave>(wide_set, true, 1, &fails);
  // Per 0.5B layer (and 1.5B's two large sets), each configuration, two rounds.
  for (int round = 1; round <= 2; round++) {
    auto layer = [&](const char* variant, auto rt16, auto rt32, auto rt48) {
      double t = 0;
      t += rt16(dB05);
      t += rt48(dA05);
      t += rt16(o05);
      t += rt16(gu05);
      t += rt32(gua05);
      t += rt16(dn05);
      std::printf("per 0.5B layer, %s, round %d: %.1f us (x 24 layers = %.2f ms)\n", variant, round, t, t * 24e-3);
    };
    auto v1 = [&](auto tm, auto st, auto su) {
      constexpr int TM = decltype(tm)::value, ST = decltype(st)::value, SU = decltype(su)::value;
      char variant[64];
      std::snprintf(variant, sizeof variant, "v1 TM %d ST %d SU %d", TM, ST, SU);
      layer(variant, [&](const Set& s) { return run<16, TM, ST, SU>(s, false, 50, &fails); },
            [&](const Set& s) { return run<32, TM, ST, SU>(s, false, 50, &fails); },
            [&](const Set& s) { return run<48, TM, ST, SU>(s, false, 50, &fails); });
      run<16, TM, ST, SU>(gu15, false, 50, &fails);
      run<16, TM, ST, SU>(dn15, false, 50, &fails);
    };
    template_configs(v1);
    auto v2 = [&](auto tm, auto st) {
      constexpr int TM = decltype(tm)::value, ST = decltype(st)::value;
      char variant[64];
      std::snprintf(variant, sizeof variant, "v2 TM %d ST %d", TM, ST);
      layer(variant, [&](const Set& s) { return run<16, TM, ST, 1, kWave>(s, false, 50, &fails); },
            [&](const Set& s) { return run<32, TM, ST, 1, kWave>(s, false, 50, &fails); },
            [&](const Set& s) { return run<48, TM, ST, 1, kWave>(s, false, 50, &fails); });
      run<16, TM, ST, 1, kWave>(gu15, false, 50, &fails);
      run<16, TM, ST, 1, kWave>(dn15, false, 50, &fails);
    };
    wave_configs(v2);
    // The load-only probe: each 0.5B set, then each of its products alone (round 1 only).
    auto probe = [&](auto tm, auto st) {
      constexpr int TM = decltype(tm)::value, ST = decltype(st)::value;
      char variant[64];
      std::snprintf(variant, sizeof variant, "probe TM %d ST %d", TM, ST);
      auto p16 = [&](const Set& s) { return run<16, TM, ST, 1, kLoadOnly>(s, false, 50, &fails); };
      auto p32 = [&](const Set& s) { return run<32, TM, ST, 1, kLoadOnly>(s, false, 50, &fails); };
      auto p48 = [&](const Set& s) { return run<48, TM, ST, 1, kLoadOnly>(s, false, 50, &fails); };
      layer(variant, p16, p32, p48);
      if (round == 1) {
        for (const Set* s : {&dB05, &o05, &gu05, &dn05})
          for (int i = 0; i < (int)s->ps.size(); i++) run<16, TM, ST, 1, kLoadOnly>(*s, false, 50, &fails, i);
        run<48, TM, ST, 1, kLoadOnly>(dA05, false, 50, &fails, 0);
        run<32, TM, ST, 1, kLoadOnly>(gua05, false, 50, &fails, 0);
      }
    };
    probe_configs(probe);
  }
  std::printf(fails ? "%d FAILED\n" : "ALL OK\n", fails);
  return fails != 0;
}
