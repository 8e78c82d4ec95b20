// Programmatic dependent launch (PDL, sm_90+): let a kernel be scheduled while the one before it on the stream
// is still running, so that its launch and block start-up overlap that kernel's tail instead of following it.
//
// Why. A replayed decode step (infer/decode_loop.h) is ~290 small kernels for Qwen2.5-0.5B; their own work is
// a few microseconds each, and the gap between one ending and the next starting is a large part of the
// token's time. With the launch attribute cudaLaunchAttributeProgrammaticStreamSerialization the next
// kernel's blocks may start as soon as every block of the running kernel has called
// `griddepcontrol.launch_dependents` (or exited); `griddepcontrol.wait` then holds them until the running
// kernel has finished and its writes are visible. A CUDA graph captured from such launches keeps the edges.
//
// The contract, for every kernel launched through pdl::launch: call pdl::enter() first, before any global
// memory read or write (its inputs may still be being written, and its outputs still being read, by the
// kernel before it). enter() waits, then lets the kernel after it start; so when a kernel starts, the kernel two
// launches before it has finished, and reads of memory that only kernels that far back (or copies before them)
// wrote may go before enter() (decode_attention.cu's opt-in early cache loads). Launched without the attribute
// (WICK_PDL=0, or a device before sm_90) enter() returns at once and the stream orders kernels as usual.
// Header-only (CUDA runtime only) so that dev/ harnesses build the very kernels wick runs.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace wick::pdl {

__device__ __forceinline__ void enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// On unless WICK_PDL=0; only on devices of compute capability 9.0 or later (the current device when first asked).
inline bool enabled() {
  static const bool on = [] {
    const char* e = std::getenv("WICK_PDL");
    if (e && std::strcmp(e, "0") == 0) return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    return major >= 9;
  }();
  return on;
}

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute when enabled(). The kernel must call
// enter() before touching global memory. Returns the launch's error (cudaGetLastError's).
template <typename... KernelArgs, typename... Args>
cudaError_t launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<KernelArgs>(std::forward<Args>(args))...);
}

}  // namespace wick::pdl
