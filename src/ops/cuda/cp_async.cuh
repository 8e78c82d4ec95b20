// cp.async (sm_80+): 16-byte copies from global to shared memory that do not pass through registers, so that a
// kernel can have many rows in flight while it computes. Shared by the flash attention tiles
// (flash_attention.cuh) and the decode attention kernel's value tiles (decode_attention.cu). Standalone (CUDA
// runtime only) so that dev/ harnesses build the same kernels.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace wick::cp_async {

// The shared-memory address cp.async and ldmatrix take.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, through L2 only (.cg); zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Wait until at most N committed groups of this thread are still in flight.
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace wick::cp_async
