// 16 bytes of one tensor row as f32: a uint4 loaded from 8 bf16 or 4 f32 elements, widened. Standalone (only
// cuda_bf16.h) so that kernel headers also built by the dev/ harnesses can include it.
#pragma once
#include <cuda_bf16.h>

namespace wick::vec16 {

__device__ __forceinline__ void unpack(const uint4& u, const __nv_bfloat16*, float* f) {
  const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    __nv_bfloat162 h;
    *reinterpret_cast<unsigned*>(&h) = w[i];
    const float2 p = __bfloat1622float2(h);
    f[2 * i] = p.x, f[2 * i + 1] = p.y;
  }
}
__device__ __forceinline__ void unpack(const uint4& u, const float*, float* f) {
  f[0] = __uint_as_float(u.x), f[1] = __uint_as_float(u.y), f[2] = __uint_as_float(u.z), f[3] = __uint_as_float(u.w);
}

}  // namespace wick::vec16
