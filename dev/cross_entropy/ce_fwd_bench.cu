// Variants of the cross-entropy forward (ops/cuda/cross_entropy.cu): per row of bf16 logits [N, V], the f32
// (max, sum of exp) and lse = max + log(sum). The 0.5B loss chunk is 1024 x 151,936 (311 MB): at the H200's
// ~4.8 TB/s that is ~65 us of reading; the kernel in wick (v1) took ~175 us (ncu, 2026-12-03).
//   v1  wick's kernel: 4 bf16 (8 bytes) a load, 4 loads in flight per thread, expf
//   v2  8 bf16 (16 bytes) a load, 2 loads in flight, expf
//   v3  8 bf16 a load, 4 loads in flight, expf
//   v4  v3 with exp2f on prescaled values: exp(v - m) = exp2(v log2e - m log2e), one FMA + MUFU.EX2
// Build and run on the GPU machine: nvcc -O3 -std=c++17 -arch=sm_90 dev/cross_entropy/ce_fwd_bench.cu -o ce && ./ce
// Measured (H200, 2026-12-03, 1,024 x 151,936, median of 20): v1 145 us, v2 140, v3 149, v4 116, v5 113 (512
// threads; 1,024 threads alike). wick runs v5 for bf16 (ops/cuda/cross_entropy.cu), whose correctness the op
// tests check (tests/cuda: cross_entropy cases against the CPU twin). The accuracy column of those runs printed
// inf: the harness's block reductions did not broadcast (fixed below; not rerun).
#include <cuda_bf16.h>
#include <cstdio>
#include <cmath>
#include <vector>
#include <random>
#include <cstring>
#include <cstdint>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e)); return 1; } } while (0)

__device__ __forceinline__ float warp_max(float v) { for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(~0u, v, o)); return v; }
__device__ __forceinline__ float warp_sum(float v) { for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(~0u, v, o); return v; }
// Block reductions whose result every thread gets (the first version returned it to warp 0 only, so the other
// warps rescaled by exp(m - (-inf)) and the printed lse was inf: that run's timings stand, its error column not).
__device__ float block_max(float v, float* sh) {
  v = warp_max(v); const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads(); if (l == 0) sh[w] = v; __syncthreads();
  v = l < blockDim.x / 32 ? sh[l] : -INFINITY; return warp_max(v);
}
__device__ float block_sum(float v, float* sh) {
  v = warp_sum(v); const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  __syncthreads(); if (l == 0) sh[w] = v; __syncthreads();
  v = l < blockDim.x / 32 ? sh[l] : 0.0f; return warp_sum(v);
}

template <int VW> __device__ __forceinline__ void load(const __nv_bfloat16* p, float (&f)[VW]) {
  if constexpr (VW == 4) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const unsigned w[2] = {u.x, u.y};
#pragma unroll
    for (int i = 0; i < 2; i++) { float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i])); f[2*i] = a.x; f[2*i+1] = a.y; }
  } else {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) { float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i])); f[2*i] = a.x; f[2*i+1] = a.y; }
  }
}

template <int VW, int UNROLL, bool EXP2>
__global__ void ce_fwd(const __nv_bfloat16* logits, float* lse, int V) {
  __shared__ float shm[32];
  const __nv_bfloat16* x = logits + (long long)blockIdx.x * V;
  const int stride = blockDim.x * VW;
  const float L2E = 1.4426950408889634f;
  float m = -INFINITY, s = 0.0f;
  for (int c0 = threadIdx.x * VW; c0 < V; c0 += stride * UNROLL) {
    float v[UNROLL][VW];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int c = c0 + u * stride;
      if (c < V) load<VW>(x + c, v[u]);
      else {
#pragma unroll
        for (int i = 0; i < VW; ++i) v[u][i] = -INFINITY;
      }
    }
    float lm = m;
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int i = 0; i < VW; ++i) lm = fmaxf(lm, v[u][i]);
    if (lm == -INFINITY) continue;
    if (lm > m) { s = m == -INFINITY ? 0.0f : s * expf(m - lm); m = lm; }
    if (EXP2) {
      const float mb = m * L2E;
#pragma unroll
      for (int u = 0; u < UNROLL; ++u)
#pragma unroll
        for (int i = 0; i < VW; ++i) s += v[u][i] == m ? 1.0f : exp2f(fmaf(v[u][i], L2E, -mb));
    } else {
#pragma unroll
      for (int u = 0; u < UNROLL; ++u)
#pragma unroll
        for (int i = 0; i < VW; ++i) s += v[u][i] == m ? 1.0f : expf(v[u][i] - m);
    }
  }
  const float M = block_max(m, shm);
  const float S = block_sum(m == -INFINITY ? 0.0f : s * expf(m - M), shm);
  if (threadIdx.x == 0) lse[blockIdx.x] = M + logf(S);
}

template <int VW, int UNROLL, bool EXP2>
float run(const __nv_bfloat16* d, float* lse, int N, int V, int threads) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (int i = 0; i < 3; i++) ce_fwd<VW, UNROLL, EXP2><<<N, threads>>>(d, lse, V);
  cudaEventRecord(a);
  const int reps = 20;
  for (int i = 0; i < reps; i++) ce_fwd<VW, UNROLL, EXP2><<<N, threads>>>(d, lse, V);
  cudaEventRecord(b); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b);
  return ms * 1000 / reps;
}

int main() {
  const int N = 1024, V = 151936;
  // bf16 bits made on the host by hand (round to nearest even), so the reference reads exactly what the GPU does
  std::vector<uint16_t> bits((size_t)N * V);
  std::mt19937 g(1); std::normal_distribution<float> nd(0.f, 3.f);
  for (auto& b : bits) {
    const float f = nd(g); uint32_t u; memcpy(&u, &f, 4);
    b = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
  }
  auto val = [&](size_t i) { uint32_t u = (uint32_t)bits[i] << 16; float f; memcpy(&f, &u, 4); return (double)f; };
  const std::vector<uint16_t>& h = bits;
  __nv_bfloat16* d; float* lse;
  CK(cudaMalloc(&d, h.size() * 2)); CK(cudaMalloc(&lse, N * 4));
  CK(cudaMemcpy(d, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
  std::vector<float> ref(N), got(N);
  // reference lse in double on the host for a few rows
  auto check = [&](const char* name, float us) {
    cudaMemcpy(got.data(), lse, N * 4, cudaMemcpyDeviceToHost);
    double worst = 0;
    for (int r = 0; r < N; r += 97) {
      double mx = -1e30; for (int c = 0; c < V; c++) mx = std::max(mx, val((size_t)r * V + c));
      double s = 0; for (int c = 0; c < V; c++) s += std::exp(val((size_t)r * V + c) - mx);
      worst = std::max(worst, std::fabs(mx + std::log(s) - got[r]));
    }
    printf("%-40s %8.1f us  %6.2f TB/s  max |lse - f64| %.2e\n", name, us, (double)N * V * 2 / us / 1e6, worst);
  };
  for (int threads : {512, 1024}) {
    printf("threads %d\n", threads);
    float t;
    t = run<4, 4, false>(d, lse, N, V, threads); check("v1 8B loads x4, expf", t);
    t = run<8, 2, false>(d, lse, N, V, threads); check("v2 16B loads x2, expf", t);
    t = run<8, 4, false>(d, lse, N, V, threads); check("v3 16B loads x4, expf", t);
    t = run<8, 4, true>(d, lse, N, V, threads); check("v4 16B loads x4, exp2f", t);
    t = run<8, 2, true>(d, lse, N, V, threads); check("v5 16B loads x2, exp2f", t);
  }
  return 0;
}
