// Would decode's MLP in ONE launch (gate/up + GLU + down, split over the intermediate features, the down
// projection's partial sums added in the output) beat today's two launches? (issue 12: 1.5B decode at ~0.90x of
// 900 tok/s on the H200)
//
// Why. Session 32's trace of a replayed 1.5B decode step (H100, µs a launch in the PDL chain): gate/up + GLU 19.4
// for 55 MB of weights (17.8 at the card's rate), down + residual 11.6 for 27.5 MB (8.9): ~4.3 µs a layer above
// streaming, most of it the boundary between the two (the down launch waits for every GLU block, then its own
// blocks ramp up and drain). Every in-grid hand-over tried instead of a boundary (counters, grid barriers,
// dev/megakernel) was slower, because each needed all of the phase before. This one needs none: block b takes F
// intermediate features, computes their gate and up rows against x, s_f = round(round(silu(g_f)) u_f) as the GLU
// does, and then its own share of down, y_partial[c] = sum_f s_f Wd[c, f] over its F columns, which it adds into
// y in global memory. The down weights are read transposed (WdT [I, C], one contiguous row a feature, made once
// at load time), so a block streams three contiguous slices, or ("direct") in their own layout, F contiguous
// weights a row; no GLU output goes to memory; one launch boundary a layer fewer. The cost: C additions a block
// into y (1,536 at 1.5B), whose order is the blocks' arrival order:
//   atom 0: f32 atomicAdd, one a value          (not deterministic: the order of the sums varies);
//   atom 1: f32 atomicAdd on float4 (sm_90)     (4x fewer operations; not deterministic);
//   atom 2: int64 fixed point, 2^-24 units      (integer sums: the same bits in any order; 1,536 64-bit adds a
//                                                block; the reader converts back);
// and with "last block": the last block to finish turns y into the layer's bf16 output with the residual add and
// leaves y zero (the form wick could use without changing what a layer hands the next).
// This harness runs 28 layers of 1.5B's projections two ways with their own weights, each captured in a CUDA
// graph of PDL launches: the chain as wick runs it today (q|k|v, o + residual, gate/up + GLU, down + residual:
// wick's small_m kernels) and the chain with the last two replaced by the fused kernel (F = 8, 16, 32; atom 0-2).
// No norms (as dev/megakernel: o reads q in attention's place); the next layer's q|k|v reads the down output's
// buffer, which only the last-block forms write (the others leave the chain's values there: a launch waits for the
// whole launch before it in either form, so the data it reads does not change the timing). Checks: without the
// last block, layer 0's y against an f64 CPU reference from the same weights and x (within 1% of the scale); with
// it, the last layer's output against the chain's (within 5%) and y left zero; atom 2 bit for bit the same in two
// runs. Times: median of 7 graph replays, per layer.
// Measured in session 44 (H100, 28 layers; bench/results/2026-12-07-session44.txt): the chain 38.1 us a layer; every
// fused form slower: f32 atomics F 8 135.7, f32x4 F 8 / 16 / 32 48.6 / 44.1 / 49.0, int64 F 8 / 16 / 32 82.3 / 59.3 /
// 58.7, with the last block 50.4 (f32x4 F 16), 73.4 / 64.4 (int64 F 16 / 32), direct layout 51.6 / 49.0 (int64 F 16 /
// 32). The adds into y cost more than the boundary they remove (L2 atomics: 0.4-1.7 M a layer); the integrated
// op (dev/fused_mlp/small_m_mlp.patch) lost 16-20% of decode speed. Not landed.
// Build (here): nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src \
//   -o build-gpu/fused_mlp_bench.bin dev/fused_mlp/fused_mlp_bench.cu
// Run: fused_mlp_bench.bin [layers (28)]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../common/cuda_check.cuh"
#include "../common/median_us.cuh"
#include "../common/projection_layers.cuh"
#include "ops/cuda/small_m_linear.cuh"

using bf16 = __nv_bfloat16;
using namespace wick;

constexpr int kThreads = 256, kWarps = 8;
constexpr int kRowVecs = kC / 8;          // 16-byte vectors in a row of C bf16 (192)
constexpr int kLaneVecs = kRowVecs / 32;  // a lane's vectors of a row (6)
constexpr float kFixed = 16777216.0f;     // atom 2: 2^24 units

__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x, f[2 * i + 1] = p.y;
  }
}
__device__ __forceinline__ float rbf(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// Block b: features [b F, b F + F). Warp w: features w FW .. w FW + FW - 1 (gate and up rows, a lane 6 vectors of
// each); then thread t < 192: outputs 8t .. 8t + 7 over the block's F features. The first feature's gate/up
// loads and the first DB down loads go before pdl::enter() (weights are settled).
// FINAL: the last block to finish (a counter) reads y back, zeroing it (atomicExch: the L2 value), and writes
// out = round(round(y) + x) (the residual add, rounded as the separate add rounds it), so that the layer's output
// is an ordinary bf16 row and y is zero for the next launch: the form wick could use without changing what a
// decoder layer hands the next one.
// DIRECT: down's weights in their own layout (Wd [C, I], no transposed copy): thread t takes rows c = t + 256 j,
// F / 8 vectors each (32 or 64 contiguous bytes a row), loaded after the wait; int64 sums only (ATOM 2).
template <int F, int ATOM, bool FINAL, bool DIRECT = false>
__global__ void __launch_bounds__(kThreads, 2)
    fused_mlp_kernel(const bf16* __restrict__ x, const bf16* __restrict__ wg, const bf16* __restrict__ wu,
                     const bf16* __restrict__ wdT, void* __restrict__ y, bf16* __restrict__ out,
                     unsigned* __restrict__ counter) {
  constexpr int FW = F / kWarps;
  constexpr int DB = F < 8 ? F : 8;
  __shared__ float s_sh[F];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, t = threadIdx.x;
  const int f0 = blockIdx.x * F;
  uint4 g[kLaneVecs], u[kLaneVecs];
  const auto load_gu = [&](int f) {
    const bf16* gr = wg + (size_t)f * kC;
    const bf16* ur = wu + (size_t)f * kC;
#pragma unroll
    for (int v = 0; v < kLaneVecs; v++) {
      g[v] = __ldcs(reinterpret_cast<const uint4*>(gr) + lane + 32 * v);
      u[v] = __ldcs(reinterpret_cast<const uint4*>(ur) + lane + 32 * v);
    }
  };
  load_gu(f0 + warp * FW);
  uint4 d[DB];
  if (!DIRECT && t < kRowVecs)
#pragma unroll
    for (int j = 0; j < DB; j++) d[j] = __ldcs(reinterpret_cast<const uint4*>(wdT + (size_t)(f0 + j) * kC) + t);
  pdl::enter();
  uint4 xv[kLaneVecs];
#pragma unroll
  for (int v = 0; v < kLaneVecs; v++) xv[v] = __ldg(reinterpret_cast<const uint4*>(x) + lane + 32 * v);
#pragma unroll
  for (int k = 0; k < FW; k++) {
    if (k > 0) load_gu(f0 + warp * FW + k);
    float ag = 0.0f, au = 0.0f;
#pragma unroll
    for (int v = 0; v < kLaneVecs; v++) {
      float xf[8], gf[8], uf[8];
      unpack8(xv[v], xf), unpack8(g[v], gf), unpack8(u[v], uf);
#pragma unroll
      for (int e = 0; e < 8; e++) ag = fmaf(gf[e], xf[e], ag), au = fmaf(uf[e], xf[e], au);
    }
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) {
      ag += __shfl_xor_sync(0xffffffffu, ag, s);
      au += __shfl_xor_sync(0xffffffffu, au, s);
    }
    if (lane == 0) {
      const float gr = rbf(ag), ur = rbf(au);
      s_sh[warp * FW + k] = rbf(rbf(gr / (1.0f + expf(-gr))) * ur);
    }
  }
  __syncthreads();
  if constexpr (DIRECT) {
    static_assert(ATOM == 2, "the direct layout sums in int64");
    constexpr int FV = F / 8;
#pragma unroll
    for (int j = 0; j < kC / kThreads; j++) {
      const int c = t + kThreads * j;
      uint4 w[FV];
#pragma unroll
      for (int v = 0; v < FV; v++) w[v] = __ldcs(reinterpret_cast<const uint4*>(wdT + (size_t)c * kI + f0) + v);
      float a = 0.0f;
#pragma unroll
      for (int v = 0; v < FV; v++) {
        float wf[8];
        unpack8(w[v], wf);
#pragma unroll
        for (int e = 0; e < 8; e++) a = fmaf(s_sh[8 * v + e], wf[e], a);
      }
      atomicAdd(static_cast<unsigned long long*>(y) + c, static_cast<unsigned long long>(__float2ll_rn(a * kFixed)));
    }
  } else if (t < kRowVecs) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int j = 0; j < F; j++) {
      uint4 w = j < DB ? d[j] : __ldcs(reinterpret_cast<const uint4*>(wdT + (size_t)(f0 + j) * kC) + t);
      float wf[8];
      unpack8(w, wf);
      const float sj = s_sh[j];
#pragma unroll
      for (int e = 0; e < 8; e++) acc[e] = fmaf(sj, wf[e], acc[e]);
    }
    if constexpr (ATOM == 0) {
      float* yp = static_cast<float*>(y) + 8 * t;
#pragma unroll
      for (int e = 0; e < 8; e++) atomicAdd(yp + e, acc[e]);
    } else if constexpr (ATOM == 1) {
      float4* yp = reinterpret_cast<float4*>(static_cast<float*>(y) + 8 * t);
      atomicAdd(yp, make_float4(acc[0], acc[1], acc[2], acc[3]));
      atomicAdd(yp + 1, make_float4(acc[4], acc[5], acc[6], acc[7]));
    } else {
      unsigned long long* yp = static_cast<unsigned long long*>(y) + 8 * t;
#pragma unroll
      for (int e = 0; e < 8; e++) atomicAdd(yp + e, static_cast<unsigned long long>(__float2ll_rn(acc[e] * kFixed)));
    }
  }
  if constexpr (FINAL) {
    __shared__ bool last;
    __threadfence();  // this block's additions before its count
    __syncthreads();
    if (t == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int c = t; c < kC; c += kThreads) {
      float v;
      if constexpr (ATOM == 2)
        v = (float)((double)(long long)atomicExch(static_cast<unsigned long long*>(y) + c, 0ull) / kFixed);
      else
        v = atomicExch(static_cast<float*>(y) + c, 0.0f);
      out[c] = __float2bfloat16_rn(rbf(v) + __bfloat162float(x[c]));
    }
    if (t == 0) *counter = 0;
  }
}

// wdT[i, c] = wd[c, i]
__global__ void transpose_kernel(const bf16* wd, bf16* wdT) {
  for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < (size_t)kC * kI;
       k += (size_t)gridDim.x * blockDim.x) {
    const size_t c = k / kI, i = k % kI;
    wdT[i * kC + c] = wd[k];
  }
}

// One layer's phases, and the fused kernel's operands: the MLP's input h, its gate and up weights, down transposed.
struct Layer : ProjectionLayer {
  const bf16 *h, *wg, *wu, *wdT;
};

int main(int argc, char** argv) {
  const int L = argc > 1 ? std::atoi(argv[1]) : 28;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs; %d layers of Qwen2.5-1.5B's projections (C %d, q|k|v %d, I %d), M 1\n", prop.name,
              prop.multiProcessorCount, L, kC, kQ + 2 * kKV, kI);
  std::vector<std::pair<bf16*, size_t>> acts;
  const bf16* x0 = alloc_fill(kC, 1.0f, 7);
  std::vector<Layer> layers;
  for (const ProjectionLayer& p : make_projection_layers(L, x0, acts)) {
    Layer y;
    static_cast<ProjectionLayer&>(y) = p;
    y.h = p.glu.x, y.wg = p.glu.w[0], y.wu = p.glu.w[1];
    bf16* wdT;
    CK(cudaMalloc(&wdT, (size_t)kC * kI * sizeof(bf16)));
    transpose_kernel<<<1024, 256>>>(p.down.w[0], wdT);
    CK(cudaGetLastError());
    y.wdT = wdT;
    layers.push_back(y);
  }
  for (Layer& y : layers) {
    small_m::plan(y.qkv, small_m::kPlain), small_m::plan(y.o, small_m::kPlain);
    small_m::plan(y.glu, small_m::kGluSilu), small_m::plan(y.down, small_m::kPlain);
  }
  CK(cudaDeviceSynchronize());

  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  // Median of 7 replays, no warm-up (each graph ran once, checked, before it is timed), in ms.
  const auto time_graph = [&](cudaGraphExec_t ge) {
    return static_cast<float>(median_us(st, [&] { CK(cudaGraphLaunch(ge, st)); }, 7, 0) / 1e3);
  };
  const auto capture = [&](auto&& body) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    body();
    CK(cudaStreamEndCapture(st, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    CK(cudaGraphDestroy(g));
    return ge;
  };

  // The chain as wick runs it.
  cudaGraphExec_t chain = capture([&] {
    for (const Layer& y : layers) {
      CK(small_m::launch(y.qkv, small_m::kPlain, st));
      CK(small_m::launch(y.o, small_m::kPlain, st));
      CK(small_m::launch(y.glu, small_m::kGluSilu, st));
      CK(small_m::launch(y.down, small_m::kPlain, st));
    }
  });
  CK(cudaGraphLaunch(chain, st));
  CK(cudaStreamSynchronize(st));
  const float chain_ms = time_graph(chain);
  std::printf("chain (4 launches a layer): %.2f us a layer, %.2f TB/s of weights\n", 1000 * chain_ms / L,
              projection_tb_per_s(L, chain_ms));

  // Layer 0's MLP in f64 on the host: y[c] = sum_i s_i wd[c, i], s from the chain's own rounding rule.
  const std::vector<float> hh = host(layers[0].h, kC), hg = host(layers[0].wg, (size_t)kI * kC),
                           hu = host(layers[0].wu, (size_t)kI * kC), hd = host(layers[0].down.w[0], (size_t)kC * kI);
  std::vector<double> yref(kC, 0.0);
  {
    const auto rb = [](double v) { return (double)__bfloat162float(__float2bfloat16_rn((float)v)); };
    std::vector<double> sv(kI);
    for (int i = 0; i < kI; i++) {
      double ag = 0, au = 0;
      for (int c = 0; c < kC; c++)
        ag += (double)hg[(size_t)i * kC + c] * hh[c], au += (double)hu[(size_t)i * kC + c] * hh[c];
      const double gr = rb(ag), ur = rb(au);
      sv[i] = rb(rb(gr / (1.0 + std::exp(-gr))) * ur);
    }
    for (int c = 0; c < kC; c++)
      for (int i = 0; i < kI; i++) yref[c] += sv[i] * hd[(size_t)c * kI + i];
  }
  double scale = 0;
  for (double v : yref) scale = std::max(scale, std::fabs(v));

  void* acc;  // L outputs of C, 8 bytes each (atom 2) or 4
  CK(cudaMalloc(&acc, (size_t)L * kC * 8));
  bool ok = true;
  unsigned* counter;
  CK(cudaMalloc(&counter, sizeof(unsigned)));
  CK(cudaMemset(counter, 0, sizeof(unsigned)));
  const std::vector<float> chain_last = host(layers[L - 1].down.y[0], kC);
  const auto fused = [&](auto f_tag, auto atom_tag, auto final_tag, auto direct_tag) {
    constexpr int F = decltype(f_tag)::value, ATOM = decltype(atom_tag)::value;
    constexpr bool FINAL = decltype(final_tag)::value, DIRECT = decltype(direct_tag)::value;
    const size_t esz = ATOM == 2 ? 8 : 4;
    cudaGraphExec_t ge = capture([&] {
      CK(cudaMemsetAsync(acc, 0, (size_t)L * kC * esz, st));
      for (int l = 0; l < L; l++) {
        const Layer& y = layers[l];
        CK(small_m::launch(y.qkv, small_m::kPlain, st));
        CK(small_m::launch(y.o, small_m::kPlain, st));
        // FINAL: one y and one counter for every layer (each launch leaves them zero), the output where the
        // chain's down writes it (the next layer's q|k|v reads it).
        void* yl = static_cast<void*>(static_cast<char*>(acc) + (FINAL ? 0 : (size_t)l * kC * esz));
        CK(pdl::launch(fused_mlp_kernel<F, ATOM, FINAL, DIRECT>, dim3(kI / F), dim3(kThreads), 0, st, y.h, y.wg, y.wu,
                       DIRECT ? y.down.w[0] : y.wdT, yl, const_cast<bf16*>(y.down.y[0]), counter));
      }
    });
    std::vector<unsigned char> run1((size_t)kC * esz), run2((size_t)kC * esz);
    CK(cudaGraphLaunch(ge, st));
    CK(cudaMemcpyAsync(run1.data(), acc, run1.size(), cudaMemcpyDeviceToHost, st));
    CK(cudaStreamSynchronize(st));
    const std::vector<float> last1 = host(layers[L - 1].down.y[0], kC);
    CK(cudaGraphLaunch(ge, st));
    CK(cudaMemcpyAsync(run2.data(), acc, run2.size(), cudaMemcpyDeviceToHost, st));
    CK(cudaStreamSynchronize(st));
    const std::vector<float> last2 = host(layers[L - 1].down.y[0], kC);
    if (FINAL) {  // the last layer's output beside the chain's (other sums, other roundings: within 5% of the scale)
      double w = 0, sc2 = 0;
      for (int c = 0; c < kC; c++)
        w = std::max(w, (double)std::fabs(last1[c] - chain_last[c])),
        sc2 = std::max(sc2, (double)std::fabs(chain_last[c]));
      const bool near = w <= 0.05 * sc2, same = last1 == last2,
                 zero = std::all_of(run1.begin(), run1.end(), [](unsigned char b) { return b == 0; });
      ok = ok && near && zero && (ATOM != 2 || same);
      const float ms = time_graph(ge);
      std::printf(
          "fused F %2d atom %d%s + last block (%d blocks): %.2f us a layer (%+.2f), %.2f TB/s; layer %d max |diff| "
          "from the chain %.3g of %.3g %s; y left zero %s; two runs %s\n",
          F, ATOM, DIRECT ? " direct" : "", kI / F, 1000 * ms / L, 1000 * (ms - chain_ms) / L,
          projection_tb_per_s(L, ms), L - 1, w, sc2, near ? "ok" : "FAIL", zero ? "yes" : "NO (FAIL)",
          same ? "bit for bit" : "differ");
      CK(cudaGraphExecDestroy(ge));
      return;
    }
    double worst = 0;
    for (int c = 0; c < kC; c++) {
      double v;
      if (ATOM == 2) {
        long long q;
        std::memcpy(&q, run1.data() + 8 * c, 8);
        v = (double)q / kFixed;
      } else {
        float f;
        std::memcpy(&f, run1.data() + 4 * c, 4);
        v = f;
      }
      worst = std::max(worst, std::fabs(v - yref[c]));
    }
    const bool close = worst <= 0.01 * scale, same = run1 == run2;
    ok = ok && close && (ATOM != 2 || same);
    const float ms = time_graph(ge);
    std::printf(
        "fused F %2d atom %d%s (%d blocks): %.2f us a layer (%+.2f), %.2f TB/s; layer 0 max |diff| %.3g of %.3g %s; "
        "two runs %s\n",
        F, ATOM, DIRECT ? " direct" : "", kI / F, 1000 * ms / L, 1000 * (ms - chain_ms) / L,
        projection_tb_per_s(L, ms), worst, scale, close ? "ok" : "FAIL", same ? "bit for bit" : "differ");
    CK(cudaGraphExecDestroy(ge));
  };
  using std::integral_constant;
  using B0 = integral_constant<bool, false>;
  using B1 = integral_constant<bool, true>;
  // F, atom, last block, direct layout
  fused(integral_constant<int, 8>{}, integral_constant<int, 0>{}, B0{}, B0{});
  fused(integral_constant<int, 8>{}, integral_constant<int, 1>{}, B0{}, B0{});
  fused(integral_constant<int, 8>{}, integral_constant<int, 2>{}, B0{}, B0{});
  fused(integral_constant<int, 16>{}, integral_constant<int, 1>{}, B0{}, B0{});
  fused(integral_constant<int, 16>{}, integral_constant<int, 2>{}, B0{}, B0{});
  fused(integral_constant<int, 32>{}, integral_constant<int, 1>{}, B0{}, B0{});
  fused(integral_constant<int, 32>{}, integral_constant<int, 2>{}, B0{}, B0{});
  fused(integral_constant<int, 16>{}, integral_constant<int, 1>{}, B1{}, B0{});
  fused(integral_constant<int, 16>{}, integral_constant<int, 2>{}, B1{}, B0{});
  fused(integral_constant<int, 32>{}, integral_constant<int, 2>{}, B1{}, B0{});
  fused(integral_constant<int, 16>{}, integral_constant<int, 2>{}, B1{}, B1{});
  fused(integral_constant<int, 32>{}, integral_constant<int, 2>{}, B1{}, B1{});
  const float again = time_graph(chain);
  std::printf("chain again: %.2f us a layer\n", 1000 * again / L);
  std::printf("%s\n", ok ? "done" : "FAIL");
  return ok ? 0 : 1;
}
