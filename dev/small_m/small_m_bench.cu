// Harness for the small-M projection kernels (src/ops/cuda/small_m_linear.cuh, the very header wick builds):
// checks each decode shape of Qwen2.5 0.5B / 1.5B / 7B against an f64 CPU reference (bf16 inputs; rows sampled),
// then times it and prints the weight bandwidth. Each timed call reads a different copy of the weights
// (up to 64 copies cycled, together >= 100 MB, twice the H200's 50 MB L2), as decode reads each layer's weights once per
// token: the GB/s are HBM's, not L2's. Time per call: one event pair around `iters` back-to-back launches,
// divided (launch overhead hidden by the queue, as in a replayed CUDA graph); median of 5 such runs.
// Build (here, static cudart, carried to the GPU machine):
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -cudart static -I src \
//     -o dev/small_m/small_m_bench.bin dev/small_m/small_m_bench.cu
// Run: dev/small_m/small_m_bench.bin [M] [l2]      (M rows of x, 1..8; default 1)
// At M 1 the one-member shapes without bias (o, down) also time bulk_gemv.cuh's kernel (session 34: shared-memory
// rings filled by bulk asynchronous copies) in a few configurations, "bulk NWxS" (warps a block x stages a warp).
// `l2` (session 25, for dev/l2_prefetch): only the default rule (without and with the weights settled), and beside
// it the same launch reading one copy of the weights every time, so that after the first call they come from L2
// when they fit (the 50 MB L2 holds each shape but lm_head): what a projection gains when its weights were
// prefetched into L2.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "ops/cuda/small_m_linear.cuh"
#include "bulk_gemv.cuh"

#include "../common/cuda_check.cuh"

using bf16 = __nv_bfloat16;
using namespace wick;

float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

struct Shape {
  std::string name;
  std::vector<int> outs;  // members (plain) or {I} (GLU)
  int in;
  int mode;               // small_m::kPlain or kGluSilu
  bool bias;
  bool y_f32;             // lm_head: f32 logits
};

// A device buffer of n random bf16 values (uniform in [-a, a]) and its host copy (as f32).
struct Buf {
  bf16* d = nullptr;
  std::vector<float> h;
};
Buf make(size_t n, float a, std::mt19937& rng) {
  Buf b;
  b.h.resize(n);
  std::vector<bf16> t(n);
  uint64_t st = rng() | 1;  // xorshift64: fast enough for the 1 GB lm_head of 7B
  for (size_t i = 0; i < n; i++) {
    st ^= st << 13, st ^= st >> 7, st ^= st << 17;
    const float u = (float)(st >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    t[i] = __float2bfloat16_rn(a * (2.0f * u - 1.0f));
    b.h[i] = __bfloat162float(t[i]);
  }
  CK(cudaMalloc(&b.d, n * sizeof(bf16)));
  CK(cudaMemcpy(b.d, t.data(), n * sizeof(bf16), cudaMemcpyHostToDevice));
  return b;
}
// Another device copy of b (the same values at other addresses: what the timing needs).
Buf clone(const Buf& b) {
  Buf c;
  CK(cudaMalloc(&c.d, b.h.size() * sizeof(bf16)));
  CK(cudaMemcpy(c.d, b.d, b.h.size() * sizeof(bf16), cudaMemcpyDeviceToDevice));
  return c;
}

double act_silu(double g) { return g / (1.0 + std::exp(-g)); }

// The launch configurations timed side by side: the default rule, then fixed (unroll, warps per row).
// Every one but the first with the weights settled (Args::prefetch: read before pdl::enter(), as wick's decode does).
const small_m::Tuning kTunings[] = {{0, 0}, {0, 0}, {4, 1}, {4, 2}, {4, 4}, {4, 8}, {8, 1}, {8, 2}, {8, 4}, {8, 8}};
const char* kTuningNames[] = {"default", "def pre", "U4 K1", "U4 K2", "U4 K4", "U4 K8",
                              "U8 K1",   "U8 K2",   "U8 K4", "U8 K8"};
constexpr int kNumTunings = sizeof(kTunings) / sizeof(kTunings[0]);
// Beside them, for one-member plain projections of one row without bias (o, down): bulk_gemv.cuh's kernel at these
// (warps a block, stages a warp), the weights settled as "def pre".
const int kBulk[][2] = {{2, 4}, {4, 2}, {4, 3}, {8, 1}, {8, 2}};
constexpr int kNumBulk = sizeof(kBulk) / sizeof(kBulk[0]);

bool g_l2_only = false;  // `l2`: the default rule only, and the L2-warm line
int g_sms = 0;           // the device's multiprocessors: the default rule's one-wave cap, as wick passes them

int run_shape(const Shape& s, int M, std::mt19937& rng, cudaStream_t st) {
  const int in = s.in;
  const bool glu = s.mode != small_m::kPlain;
  const int nm = glu ? 2 : (int)s.outs.size();
  std::vector<int> outs = glu ? std::vector<int>{s.outs[0], s.outs[0]} : s.outs;
  size_t wbytes = 0;
  for (int o : outs) wbytes += (size_t)o * in * sizeof(bf16);
  const int copies = (int)std::max<size_t>(1, std::min<size_t>(64, (256u << 20) / wbytes + 1));
  Buf x = make((size_t)M * in, 1.0f, rng);
  std::vector<std::vector<Buf>> w(copies), b(copies);
  for (int c = 0; c < copies; c++)
    for (int j = 0; j < nm; j++) {
      w[c].push_back(c ? clone(w[0][j]) : make((size_t)outs[j] * in, 1.0f / std::sqrt((float)in), rng));
      if (s.bias) b[c].push_back(c ? clone(b[0][j]) : make(outs[j], 0.5f, rng));
    }
  const int ycols = glu ? outs[0] : 0;
  std::vector<void*> y(nm, nullptr);
  const size_t ysz = s.y_f32 ? 4 : 2;
  for (int j = 0; j < (glu ? 1 : nm); j++) CK(cudaMalloc(&y[j], (size_t)M * (glu ? ycols : outs[j]) * ysz));

  small_m::Tuning tune{};
  int prefetch = 0;
  bulk_gemv::Plan bulk{};  // blocks > 0: time bulk_gemv.cuh's kernel instead
  const bool bulk_ok = M == 1 && !glu && nm == 1 && !s.bias && !s.y_f32 && in % 8 == 0 && !g_l2_only;
  auto launch = [&](int c) {
    if (bulk.blocks > 0) {
      CK(bulk_gemv::launch(bulk, w[c][0].d, x.d, static_cast<bf16*>(y[0]), outs[0], in, 1, st));
    } else if (s.y_f32) {
      small_m::Args<bf16, float> a{};
      a.x = x.d, a.M = M, a.in = in, a.members = nm, a.prefetch = prefetch;
      for (int j = 0; j < nm; j++) {
        a.w[j] = w[c][j].d, a.b[j] = s.bias ? b[c][j].d : nullptr, a.out[j] = outs[j];
        a.y[j] = static_cast<float*>(y[glu ? 0 : j]);
      }
      CK((small_m::launch<bf16, float>(a, s.mode, st, tune)));
    } else {
      small_m::Args<bf16, bf16> a{};
      a.x = x.d, a.M = M, a.in = in, a.members = nm, a.prefetch = prefetch;
      for (int j = 0; j < nm; j++) {
        a.w[j] = w[c][j].d, a.b[j] = s.bias ? b[c][j].d : nullptr, a.out[j] = outs[j];
        a.y[j] = static_cast<bf16*>(y[glu ? 0 : j]);
      }
      CK((small_m::launch<bf16, bf16>(a, s.mode, st, tune)));
    }
  };

  double worst = 0;
  std::string dims;
  for (int j = 0; j < nm; j++) dims += (j ? "+" : "") + std::to_string(outs[j]);
  std::printf("%-22s M %d  [%s, %d]%s\n", s.name.c_str(), M, dims.c_str(), in, s.bias ? " +bias" : "");
  for (int ti = 0; ti < (g_l2_only ? 2 : kNumTunings + (bulk_ok ? kNumBulk : 0)); ti++) {
  char bulk_name[32] = "";
  if (ti >= kNumTunings) {
    bulk = bulk_gemv::make_plan(outs[0], in, g_sms, kBulk[ti - kNumTunings][0], kBulk[ti - kNumTunings][1]);
    std::snprintf(bulk_name, sizeof bulk_name, "bulk %dx%d", bulk.warps, bulk.stages);
    if (bulk.blocks == 0) {
      std::printf("    %-8s (does not fit in shared memory)\n", bulk_name);
      continue;
    }
  } else {
    tune = kTunings[ti];
    tune.sms = g_sms;
    prefetch = ti > 0;
  }
  // Check copy 0 against an f64 reference (bf16 output: within a bf16 rounding plus f32 summation).
  for (int j = 0; j < (glu ? 1 : nm); j++)  // all ones: NaN in bf16 and f32, so an output not written fails
    CK(cudaMemset(y[j], 0xff, (size_t)M * (glu ? ycols : outs[j]) * ysz));
  launch(0);
  CK(cudaStreamSynchronize(st));
  for (int j = 0; j < (glu ? 1 : nm); j++) {
    const int out = glu ? ycols : outs[j];
    std::vector<float> got((size_t)M * out);
    if (s.y_f32) {
      CK(cudaMemcpy(got.data(), y[j], got.size() * 4, cudaMemcpyDeviceToHost));
    } else {
      std::vector<bf16> t(got.size());
      CK(cudaMemcpy(t.data(), y[j], t.size() * 2, cudaMemcpyDeviceToHost));
      for (size_t i = 0; i < t.size(); i++) got[i] = __bfloat162float(t[i]);
    }
    const int step = std::max(1, out / 4096);  // up to ~4096 rows checked per member (every row when fewer)
    for (int m = 0; m < M; m++)
      for (int o = 0; o < out; o += step) {
        auto dot = [&](int jj) {
          double acc = 0;
          for (int i = 0; i < in; i++) acc += (double)x.h[(size_t)m * in + i] * w[0][jj].h[(size_t)o * in + i];
          if (s.bias) acc += b[0][jj].h[o];
          return acc;
        };
        double ref;
        if (glu) {
          const double g = round_bf16((float)dot(0)), u = round_bf16((float)dot(1));
          ref = round_bf16((float)act_silu(g)) * u;
        } else {
          ref = dot(j);
        }
        const double e = std::fabs(got[(size_t)m * out + o] - ref) / (std::fabs(ref) + 1e-2);
        if (!(e <= worst)) worst = e;  // a NaN (an output not written) is the worst
      }
  }
  // Time.
  const int iters = 200;
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  // Median of 5 runs of `iters` launches on the copies pick(i) names, in us a launch.
  const auto median_us = [&](auto pick) {
    std::vector<double> us;
    for (int i = 0; i < 20; i++) launch(pick(i));
    for (int rep = 0; rep < 5; rep++) {
      CK(cudaEventRecord(e0, st));
      for (int i = 0; i < iters; i++) launch(pick(i));
      CK(cudaEventRecord(e1, st));
      CK(cudaEventSynchronize(e1));
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      us.push_back(ms * 1e3 / iters);
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  };
  const double t = median_us([&](int i) { return i % copies; });
  std::printf("    %-8s %8.2f us  %7.1f GB/s  (%5.1f%% of 4.8 TB/s)  max rel err so far %.2e %s\n",
              ti < kNumTunings ? kTuningNames[ti] : bulk_name, t,
              wbytes / t / 1e3, wbytes / t / 1e3 / 4800.0 * 100, worst, worst < 2e-2 ? "ok" : "FAIL");
  if (g_l2_only && ti == 1) {  // the same launch on copy 0 every time: its weights stay in L2 when they fit
    const double tw = median_us([](int) { return 0; });
    std::printf("    %-8s %8.2f us  %7.1f GB/s  (weights %.1f MB, one copy: from L2 when they fit)\n", "L2 warm", tw,
                wbytes / tw / 1e3, wbytes / 1e6);
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  }
  for (auto& v : w)
    for (auto& q : v) CK(cudaFree(q.d));
  for (auto& v : b)
    for (auto& q : v) CK(cudaFree(q.d));
  for (void* p : y)
    if (p) CK(cudaFree(p));
  CK(cudaFree(x.d));
  return worst < 2e-2 ? 0 : 1;
}

int main(int argc, char** argv) {
  const int M = argc > 1 ? std::atoi(argv[1]) : 1;
  g_l2_only = argc > 2 && std::string(argv[2]) == "l2";
  if (M < 1 || M > small_m::kMaxM) {
    std::printf("M must be 1..%d\n", small_m::kMaxM);
    return 2;
  }
  CK(cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, 0));
  cudaStream_t st;
  CK(cudaStreamCreate(&st));
  std::mt19937 rng(1234);
  struct Model {
    const char* name;
    int C, Q, KV, I, V;
  };
  const Model models[] = {{"0.5B", 896, 896, 128, 4864, 151936},
                          {"1.5B", 1536, 1536, 256, 8960, 151936},
                          {"7B", 3584, 3584, 512, 18944, 152064}};
  int fails = 0;
  for (const Model& m : models) {
    const std::string p = m.name;
    const Shape shapes[] = {
        {p + " qkv", {m.Q, m.KV, m.KV}, m.C, small_m::kPlain, true, false},
        {p + " o", {m.C}, m.Q, small_m::kPlain, false, false},
        {p + " gate/up+silu", {m.I}, m.C, small_m::kGluSilu, false, false},
        {p + " gate|up (plain)", {m.I, m.I}, m.C, small_m::kPlain, false, false},
        {p + " down", {m.C}, m.I, small_m::kPlain, false, false},
        {p + " lm_head f32", {m.V}, m.C, small_m::kPlain, false, true},
    };
    for (const Shape& s : shapes) fails += run_shape(s, M, rng, st);
  }
  std::printf(fails ? "%d shapes FAILED\n" : "all shapes ok\n", fails);
  return fails ? 1 : 0;
}
