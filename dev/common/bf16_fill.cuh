// The dev/ harnesses' random bf16 buffers: alloc_fill(n, a, seed) allocates n bf16 on the device and fills them with
// uniform values in [-a, a] from a counter hash (fast for GBs of weights: no host copy); host(d, n) reads n bf16
// back as f32.
#pragma once
#include <cuda_bf16.h>

#include <cstddef>
#include <vector>

#include "cuda_check.cuh"

__global__ void fill_kernel(__nv_bfloat16* p, size_t n, float a, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 0x9E3779B1u ^ seed * 0x85EBCA77u ^ (unsigned)(i >> 32) * 0xC2B2AE3Du;
    h ^= h >> 15, h *= 0x2C1B3C6Du, h ^= h >> 12, h *= 0x297A2D39u, h ^= h >> 15;
    p[i] = __float2bfloat16_rn(a * ((h >> 8) * (2.0f / 16777216.0f) - 1.0f));
  }
}

inline __nv_bfloat16* alloc_fill(size_t n, float a, unsigned seed) {
  __nv_bfloat16* p;
  CK(cudaMalloc(&p, n * sizeof(__nv_bfloat16)));
  fill_kernel<<<1024, 256>>>(p, n, a, seed);
  CK(cudaGetLastError());
  return p;
}

inline std::vector<float> host(const __nv_bfloat16* d, size_t n) {
  std::vector<__nv_bfloat16> t(n);
  CK(cudaMemcpy(t.data(), d, n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (size_t i = 0; i < n; i++) f[i] = __bfloat162float(t[i]);
  return f;
}
