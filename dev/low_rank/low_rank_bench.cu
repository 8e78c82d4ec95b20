// Harness for the fused low-rank kernels, the very headers wick builds: v1 the cooperative kernel
// (src/ops/cuda/low_rank.cuh), v2 the cluster kernel (low_rank_cluster.cuh beside it: an experiment, slower), v3
// (src/ops/cuda/low_rank_recompute.cuh: one launch recomputing u per row tile) and v4
// (src/ops/cuda/low_rank_split_k.cuh: two launches chained by PDL) and v5 (low_rank_one_launch.cuh beside it:
// v4's blocks in one launch, the finish blocks waiting on a counter; an experiment, slower), each in a few
// configurations (g_cfg; G1 0: wick's split_k_partials). wick runs v1, v3 and v4 by the rule in
// src/ops/low_rank.cpp. Checks each against an f64 CPU
// reference (and run-to-run determinism) and times it as bench/bench_seed.cpp does (one CUDA event pair around
// each call, synchronised, median over iterations). Also times an empty kernel and an empty cooperative kernel
// with two grid barriers: the floors of the two designs.
// Build (here, static cudart, carried to the GPU machine):
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -cudart static -I src \
//     -o dev/low_rank/low_rank_bench.bin dev/low_rank/low_rank_bench.cu
// Run: dev/low_rank/low_rank_bench.bin [G override...]
//      dev/low_rank/low_rank_bench.bin split     v1 beside v3 and v4 in their configurations
//      dev/low_rank/low_rank_bench.bin one       v5 checked (and against v4's bits) on every shape, then the seed
//                                                rows and decode shapes timed: v1, v3, v4 and v5 at wick's settings
#include <cooperative_groups.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <random>
#include <string>
#include <vector>

#include "ops/cuda/low_rank.cuh"
#include "ops/cuda/low_rank_recompute.cuh"
#include "ops/cuda/low_rank_split_k.cuh"
#include "low_rank_cluster.cuh"
#include "low_rank_one_launch.cuh"

#include "../common/cuda_check.cuh"
#include "../common/median_us.cuh"

using bf16 = __nv_bfloat16;

__global__ void empty_kernel() {}
__global__ void two_barriers() {
  cooperative_groups::this_grid().sync();
  cooperative_groups::this_grid().sync();
}

float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

template <typename T> T from_float(float v);
template <> float from_float<float>(float v) { return v; }
template <> bf16 from_float<bf16>(float v) { return __float2bfloat16_rn(v); }
float as_float(float v) { return v; }
float as_float(bf16 v) { return __bfloat162float(v); }

int g_max_cluster = 0;  // the cluster kernel's largest cluster on this device (0: none)
// v3 / v4's configuration: rows a block (4 or 8), target blocks of the tiled kernel, v4's partial blocks (0:
// wick's split_k_partials(in)) and whether its finish kernel stages B before it waits.
struct SplitCfg {
  int TM = 4, target = 128, G1 = 16;
  bool early_b = true;
};
SplitCfg g_cfg;
int* g_counters = nullptr;  // v5's two counters (zeroed once; every launch leaves them at 0)
std::vector<unsigned char> g_last_y;  // the bytes of the last case's y (v5 against v4's bits)

// variant 1: cooperative (Gover > 0 forces its grid); variant 2: cluster (Gover > 0 forces the cluster size).
template <typename T>
bool run_case(int variant, int M, int in, int r, int out, bool acc, int sms, int occ, int Gover, bool time_it,
              cudaStream_t s) {
  std::mt19937 rng(M * 131 + in * 7 + r * 3 + out);
  std::normal_distribution<float> nd(0.f, 1.f);
  const bool isbf = sizeof(T) == 2;
  auto gen = [&](size_t n, float sc) {
    std::vector<float> v(n);
    for (float& f : v) f = isbf ? round_bf16(sc * nd(rng)) : sc * nd(rng);
    return v;
  };
  std::vector<float> x = gen((size_t)M * in, 1.f), A = gen((size_t)r * in, 0.05f), B = gen((size_t)out * r, 0.05f),
                     y0 = gen((size_t)M * out, 1.f);
  const float scale = 2.0f;
  // f64 reference
  std::vector<double> u((size_t)M * r, 0.0), ref((size_t)M * out);
  for (int m = 0; m < M; m++)
    for (int k = 0; k < r; k++) {
      double t = 0;
      for (int i = 0; i < in; i++) t += (double)x[(size_t)m * in + i] * A[(size_t)k * in + i];
      u[(size_t)m * r + k] = t;
    }
  for (int m = 0; m < M; m++)
    for (int o = 0; o < out; o++) {
      double t = 0;
      for (int k = 0; k < r; k++) t += u[(size_t)m * r + k] * B[(size_t)o * r + k];
      ref[(size_t)m * out + o] = scale * t + (acc ? y0[(size_t)m * out + o] : 0.0);
    }
  auto up = [&](const std::vector<float>& v) {
    std::vector<T> h(v.size());
    for (size_t i = 0; i < v.size(); i++) h[i] = from_float<T>(v[i]);
    T* d;
    CK(cudaMalloc(&d, h.size() * sizeof(T) + 64));
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
  };
  T *dx = up(x), *dA = up(A), *dB = up(B), *dy = up(y0);
  namespace lr = wick::lowrank;
  const int G = Gover > 0 ? std::min(Gover, sms * occ) : lr::low_rank_grid(in, out, sms, occ);
  const lr::ClusterGrid cg = lr::low_rank_cluster_grid(in, out, sms, Gover > 0 ? Gover : g_max_cluster);
  const int G1 = g_cfg.G1 > 0 ? g_cfg.G1 : lr::split_k_partials(in);
  float* ws;
  CK(cudaMalloc(&ws, std::max(lr::low_rank_workspace_floats(G, M, r), lr::split_k_workspace_floats(G1, M, r)) *
                         sizeof(float)));
  lr::TileGrid tg{};
  auto launch = [&](bool accumulate) {
    if (variant == 1) CK(lr::low_rank_launch<T>(dx, dA, dB, dy, M, in, r, out, scale, accumulate, ws, G, s));
    else if (variant == 2) CK(lr::low_rank_cluster_launch<T>(dx, dA, dB, dy, M, in, r, out, scale, accumulate, cg, s));
    else if (variant == 3 && g_cfg.TM == 8)
      CK((lr::recompute_launch<T, 8>(dx, dA, dB, dy, M, in, r, out, scale, accumulate, s, g_cfg.target, 0, &tg)));
    else if (variant == 3)
      CK((lr::recompute_launch<T, 4>(dx, dA, dB, dy, M, in, r, out, scale, accumulate, s, g_cfg.target, 0, &tg)));
    else if (variant == 5 && g_cfg.TM == 8)
      CK((lr::split_k_one_launch<T, 8>(dx, dA, dB, dy, M, in, r, out, scale, accumulate, G1, ws, g_counters, s,
                                       g_cfg.target, &tg)));
    else if (variant == 5)
      CK((lr::split_k_one_launch<T, 4>(dx, dA, dB, dy, M, in, r, out, scale, accumulate, G1, ws, g_counters, s,
                                       g_cfg.target, &tg)));
    else {
      auto v4 = g_cfg.TM == 8 ? (g_cfg.early_b ? lr::split_k_launch<T, 8, true> : lr::split_k_launch<T, 8, false>)
                              : (g_cfg.early_b ? lr::split_k_launch<T, 4, true> : lr::split_k_launch<T, 4, false>);
      CK(v4(dx, dA, dB, dy, M, in, r, out, scale, accumulate, G1, ws, s, g_cfg.target, &tg));
    }
  };
  launch(acc);
  CK(cudaStreamSynchronize(s));
  std::vector<T> hy((size_t)M * out);
  CK(cudaMemcpy(hy.data(), dy, hy.size() * sizeof(T), cudaMemcpyDeviceToHost));
  double num = 0, den = 0, maxd = 0, maxr = 0;
  bool finite = true;
  for (size_t i = 0; i < hy.size(); i++) {
    const double d = as_float(hy[i]) - ref[i];
    if (!std::isfinite(d)) finite = false;
    num += d * d, den += ref[i] * ref[i];
    maxd = std::max(maxd, std::fabs(d)), maxr = std::max(maxr, std::fabs(ref[i]));
  }
  const double err = std::max(std::sqrt(num / std::max(den, 1e-300)), maxd / (4 * std::max(maxr, 1e-300)));
  const double tol = isbf ? 1e-2 : 1e-5;
  const bool ok = finite && err <= tol;
  // determinism: run again, same bits
  bool same = true;
  if (!acc) {
    launch(acc);
    std::vector<T> hy2(hy.size());
    CK(cudaMemcpy(hy2.data(), dy, hy2.size() * sizeof(T), cudaMemcpyDeviceToHost));
    same = std::equal(reinterpret_cast<const char*>(hy.data()), reinterpret_cast<const char*>(hy.data() + hy.size()),
                      reinterpret_cast<const char*>(hy2.data()));
  }
  g_last_y.assign(reinterpret_cast<const unsigned char*>(hy.data()),
                  reinterpret_cast<const unsigned char*>(hy.data() + hy.size()));
  double t = -1;
  if (time_it)
    t = median_us(s, [&] { launch(false); });
  const int blocks = variant == 1 ? G : variant == 2 ? cg.blocks() : tg.RT * tg.CT + (variant == 5 ? std::min(G1, (in + 15) / 16) : 0);
  std::printf("v%d %-4s M%-4d in%-5d r%-3d out%-5d acc%d G%-4d C%-2d err %.2e %s %s", variant, isbf ? "bf16" : "f32",
              M, in, r, out, acc ? 1 : 0, blocks, variant == 2 ? cg.C : 0, err, ok ? "ok" : "FAIL",
              same ? "" : "NONDETERMINISTIC");
  if (variant == 3) std::printf(" [TM %d, %d x %d blocks, tn %d]", g_cfg.TM, tg.RT, tg.CT, tg.tn);
  if (variant == 4 || variant == 5)
    std::printf(" [G1 %d%s, TM %d, %d x %d blocks, tn %d, B %s]", std::min(G1, (in + 15) / 16),
                g_cfg.G1 > 0 ? "" : " (wick's)", g_cfg.TM, tg.RT, tg.CT, tg.tn,
                g_cfg.early_b ? "early" : "after wait");
  if (t >= 0) std::printf("  median %.2f us", t);
  std::printf("\n");
  CK(cudaFree(dx));
  CK(cudaFree(dA));
  CK(cudaFree(dB));
  CK(cudaFree(dy));
  CK(cudaFree(ws));
  return ok && same;
}

int main(int argc, char** argv) {
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  int dev = 0, sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  int occ = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, wick::lowrank::low_rank_kernel<float>,
                                                   wick::lowrank::kThreads, 0));
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, dev));
  g_max_cluster = wick::lowrank::low_rank_cluster_setup<float>();
  if (wick::lowrank::low_rank_cluster_setup<bf16>() != g_max_cluster) std::printf("cluster sizes differ by dtype\n");
  std::printf("%s, %d SMs, %d resident blocks/SM, coop %d, largest cluster %d\n", prop.name, sms, occ,
              prop.cooperativeLaunch, g_max_cluster);
  // `split`: v1 beside v3 and v4 in each of their configurations (correctness on every shape, then the seed rows
  // and the decode shapes timed); otherwise v1 and v2, with G overrides from the arguments.
  const bool split = argc > 1 && std::string(argv[1]) == "split";
  const bool one = argc > 1 && std::string(argv[1]) == "one";
  std::vector<int> Gs;
  for (int i = split || one ? 2 : 1; i < argc; i++) Gs.push_back(std::atoi(argv[i]));
  CK(cudaMalloc(&g_counters, 2 * sizeof(int)));
  CK(cudaMemset(g_counters, 0, 2 * sizeof(int)));

  const double te = median_us(s, [&] { empty_kernel<<<1, 32, 0, s>>>(); });
  std::printf("empty kernel: %.2f us\n", te);
  for (int g : {1, 16, 32, 64, 132}) {
    const double tb = median_us(s, [&] {
      CK(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(&two_barriers), dim3(g), dim3(256), nullptr, 0, s));
    });
    std::printf("cooperative, two grid barriers, G %d: %.2f us\n", g, tb);
  }

  bool all = true;
  // correctness sweep (not timed)
  const int shapes[][4] = {{1, 7, 4, 5},     {3, 33, 8, 17},     {1, 896, 16, 128}, {3, 1000, 64, 999},
                           {64, 513, 16, 1023}, {64, 1024, 4, 1024}, {7, 4864, 16, 896}, {64, 2048, 64, 2048},
                           {17, 100, 63, 70}, {64, 16, 1, 16}};
  const int rows[][3] = {{512, 512, 8}, {1024, 1024, 8}, {2048, 2048, 8}, {512, 512, 16},
                         {1024, 1024, 4}, {1024, 1024, 16}, {1024, 1024, 32}, {1024, 1024, 64}, {2048, 2048, 64}};
  const int dec[][4] = {{1, 896, 16, 896}, {8, 896, 16, 896}, {1, 4864, 16, 896}, {1, 3584, 16, 3584},
                        {16, 18944, 16, 3584}, {64, 3584, 64, 18944}};
  // The seed rows (f32, M 64) and the decode shapes (bf16) timed: v1, then each (variant, configuration).
  auto time_rows = [&](const std::vector<std::pair<int, SplitCfg>>& variants) {
    for (auto& rw : rows) {
      all &= run_case<float>(1, 64, rw[0], rw[2], rw[1], false, sms, occ, 0, true, s);
      for (auto& [v, c] : variants) {
        g_cfg = c;
        all &= run_case<float>(v, 64, rw[0], rw[2], rw[1], false, sms, occ, 0, true, s);
      }
    }
    for (auto& d : dec) {
      all &= run_case<bf16>(1, d[0], d[1], d[2], d[3], false, sms, occ, 0, true, s);
      for (auto& [v, c] : variants) {
        g_cfg = c;
        all &= run_case<bf16>(v, d[0], d[1], d[2], d[3], false, sms, occ, 0, true, s);
      }
    }
  };
  if (one) {
    // v5 at wick's configuration (and TM 8) on every shape: checked, and the bits of v4 at the same configuration.
    for (int tm : {4, 8}) {
      g_cfg = SplitCfg{tm, 128, 0, true};
      for (auto& sh : shapes)
        for (int acc = 0; acc < 2; acc++) {
          auto both = [&](auto tag) {
            using T = decltype(tag);
            all &= run_case<T>(4, sh[0], sh[1], sh[2], sh[3], acc, sms, occ, 0, false, s);
            const std::vector<unsigned char> v4 = g_last_y;
            all &= run_case<T>(5, sh[0], sh[1], sh[2], sh[3], acc, sms, occ, 0, false, s);
            if (g_last_y != v4) {
              std::printf("v5 differs from v4's bits (M %d, in %d, r %d, out %d, acc %d, TM %d)\n", sh[0], sh[1], sh[2],
                          sh[3], acc, tm);
              all = false;
            }
          };
          both(float{});
          both(bf16{});
        }
    }
    // timed, wick's configurations: v1, v3 (TM 4, 128 blocks), v4 and v5 (TM 4, 128 blocks, G1 wick's)
    const std::vector<std::pair<int, SplitCfg>> timed = {
        {3, SplitCfg{4, 128, 16, true}}, {4, SplitCfg{4, 128, 0, true}}, {5, SplitCfg{4, 128, 0, true}}};
    for (int round = 0; round < 2; round++) time_rows(timed);
    std::printf(all ? "ALL OK\n" : "SOME FAILED\n");
    return all ? 0 : 1;
  }
  if (split) {
    std::vector<std::pair<int, SplitCfg>> cfgs;
    for (int tm : {4, 8})
      for (int target : {64, 128, 256}) cfgs.push_back({3, SplitCfg{tm, target, 16, true}});
    for (int g1 : {8, 16, 32})
      for (int tm : {4, 8})
        for (bool early : {true, false}) cfgs.push_back({4, SplitCfg{tm, 128, g1, early}});
    cfgs.push_back({4, SplitCfg{4, 256, 16, true}});
    cfgs.push_back({4, SplitCfg{4, 128, 0, true}});  // wick's configuration
    for (auto& [v, c] : cfgs) {
      g_cfg = c;
      for (auto& sh : shapes)
        for (int acc = 0; acc < 2; acc++) {
          all &= run_case<float>(v, sh[0], sh[1], sh[2], sh[3], acc, sms, occ, 0, false, s);
          all &= run_case<bf16>(v, sh[0], sh[1], sh[2], sh[3], acc, sms, occ, 0, false, s);
        }
    }
    time_rows(cfgs);
    std::printf(all ? "ALL OK\n" : "SOME FAILED\n");
    return all ? 0 : 1;
  }
  for (auto& sh : shapes)
    for (int v = 1; v <= 2; v++)
      for (int acc = 0; acc < 2; acc++) {
        all &= run_case<float>(v, sh[0], sh[1], sh[2], sh[3], acc, sms, occ, 0, false, s);
        all &= run_case<bf16>(v, sh[0], sh[1], sh[2], sh[3], acc, sms, occ, 0, false, s);
      }
  // the cluster kernel with every cluster size from 1 to the largest, and several passes of loads
  for (int C = 1; C <= g_max_cluster; C++) {
    all &= run_case<float>(2, 5, 3000, 12, 77, true, sms, occ, C, false, s);
    all &= run_case<bf16>(2, 64, 700, 64, 300, false, sms, occ, C, false, s);
  }
  // the seed rows, timed
  for (auto& rw : rows)
    for (int v = 1; v <= 2; v++) {
      all &= run_case<float>(v, 64, rw[0], rw[2], rw[1], false, sms, occ, 0, true, s);
      for (int g : Gs) all &= run_case<float>(v, 64, rw[0], rw[2], rw[1], false, sms, occ, g, true, s);
    }
  // decode shapes, bf16 (Qwen2.5-0.5B q_proj 896 -> 896, down 4864 -> 896; 7B 3584 / 18944), r 16
  for (auto& d : dec)
    for (int v = 1; v <= 2; v++) all &= run_case<bf16>(v, d[0], d[1], d[2], d[3], false, sms, occ, 0, true, s);
  std::printf(all ? "ALL OK\n" : "SOME FAILED\n");
  return all ? 0 : 1;
}
