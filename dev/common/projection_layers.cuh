// The dev/ decode-chain harnesses' model: L layers of Qwen2.5-1.5B's four projection phases as wick's small_m
// kernels take them (ops/cuda/small_m_linear.cuh Args), each layer with its own random weights (so each layer's
// weights come from HBM): q|k|v with bias; o + the residual x (reading q in attention's place: no attention);
// gate/up + GLU; down + the residual h. No norms. Plans are not filled in (small_m::plan does that).
#pragma once
#include <cmath>
#include <utility>
#include <vector>

#include "bf16_fill.cuh"
#include "ops/cuda/small_m_linear.cuh"

constexpr int kC = 1536, kQ = 1536, kKV = 256, kI = 8960;  // Qwen2.5-1.5B

using ProjectionArgs = wick::small_m::Args<__nv_bfloat16, __nv_bfloat16>;
struct ProjectionLayer {
  ProjectionArgs qkv, o, glu, down;
};

// The weights of one layer, in bytes.
constexpr double kProjectionLayerBytes =
    2.0 * ((double)(kQ + 2 * kKV) * kC + (double)kC * kQ + 2.0 * kI * kC + (double)kC * kI);
// The weights' rate, TB/s, when L layers take ms milliseconds.
inline double projection_tb_per_s(int L, double ms) { return kProjectionLayerBytes * L / (ms * 1e-3) / 1e12; }

// L layers from input x0 (layer l + 1 reads layer l's down output); every activation buffer is appended to acts (a
// harness clears them before a checked run). Weights at 1/sqrt(in) scale keep the activations near unit size.
inline std::vector<ProjectionLayer> make_projection_layers(int L, const __nv_bfloat16* x0,
                                                           std::vector<std::pair<__nv_bfloat16*, size_t>>& acts) {
  using bf16 = __nv_bfloat16;
  std::vector<ProjectionLayer> layers(L);
  const bf16* x = x0;
  unsigned seed = 100;
  const float sc = 1.0f / std::sqrt((float)kC), si = 1.0f / std::sqrt((float)kI);
  for (int l = 0; l < L; l++) {
    ProjectionLayer& y = layers[l];
    bf16* wq = alloc_fill((size_t)(kQ + 2 * kKV) * kC, sc, seed++);
    bf16* bq = alloc_fill(kQ + 2 * kKV, 0.1f, seed++);
    bf16* wo = alloc_fill((size_t)kC * kQ, sc, seed++);
    bf16* wg = alloc_fill((size_t)kI * kC, sc, seed++);
    bf16* wu = alloc_fill((size_t)kI * kC, sc, seed++);
    bf16* wd = alloc_fill((size_t)kC * kI, si, seed++);
    bf16 *q, *h, *s, *xn;
    CK(cudaMalloc(&q, (kQ + 2 * kKV) * sizeof(bf16)));
    CK(cudaMalloc(&h, kC * sizeof(bf16)));
    CK(cudaMalloc(&s, kI * sizeof(bf16)));
    CK(cudaMalloc(&xn, kC * sizeof(bf16)));
    acts.insert(acts.end(), {{q, kQ + 2 * kKV}, {h, kC}, {s, kI}, {xn, kC}});
    ProjectionArgs a = {};
    a.M = 1, a.prefetch = 1;
    y.qkv = a, y.o = a, y.glu = a, y.down = a;
    // q|k|v: three members (one weight buffer), the bias; outputs q | k | v contiguous.
    y.qkv.x = x, y.qkv.in = kC, y.qkv.members = 3;
    const int outs[3] = {kQ, kKV, kKV};
    for (int j = 0, r = 0; j < 3; r += outs[j], j++)
      y.qkv.w[j] = wq + (size_t)r * kC, y.qkv.b[j] = bq + r, y.qkv.y[j] = q + r, y.qkv.out[j] = outs[j];
    // o (+ the residual x): reads q in attention's place.
    y.o.x = q, y.o.in = kQ, y.o.members = 1, y.o.w[0] = wo, y.o.y[0] = h, y.o.out[0] = kC, y.o.res = x;
    // gate/up + GLU.
    y.glu.x = h, y.glu.in = kC, y.glu.w[0] = wg, y.glu.w[1] = wu, y.glu.y[0] = s, y.glu.out[0] = y.glu.out[1] = kI;
    // down (+ the residual h).
    y.down.x = s, y.down.in = kI, y.down.members = 1, y.down.w[0] = wd, y.down.y[0] = xn, y.down.out[0] = kC,
    y.down.res = h;
    x = xn;
  }
  CK(cudaDeviceSynchronize());
  return layers;
}
