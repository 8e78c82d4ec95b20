// The CUDA runtime as wick uses it: one stream per device (all wick work is ordered on it), stream-ordered
// allocation (cudaMallocAsync: the driver's pool makes repeated allocations cheap), and checked calls.
// Include only from .cu files and CUDA-only .cpp files.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "core/device.h"

namespace wick::cuda {

[[noreturn]] void cuda_failed(cudaError_t e, const char* expr, const char* file, int line);

cudaStream_t stream(int device);       // wick's stream on that device (created on first use)
void set_device(int device);           // cudaSetDevice, checked; cheap when already current

// A per-device scratch buffer of at least nbytes, owned by the runtime, for ops that need temporary
// device memory (partial sums, attention row statistics). It only grows, stream-ordered: a larger request
// frees the old block on wick's stream (after the work already queued there) and allocates a new one, so
// an op must make ONE scratch() call and carve its regions from it; the pointer is valid until the next
// scratch() call on that device. Grow it (warm up) before capturing a CUDA graph.
void* scratch(int device, size_t nbytes);

// cudaMallocAsync on stream s; on out-of-memory one retry after the stream has drained and the pool has been
// trimmed, then a wick::Error naming `what`, the size asked and what the device has.
void alloc_or_explain(void** p, size_t nbytes, int device, cudaStream_t s, const char* what);

// Dynamic shared memory a block may opt into on this device (cudaDevAttrMaxSharedMemoryPerBlockOptin).
int max_shared_memory_optin(int device);
int sm_count(int device);  // multiprocessors (cached)

struct DeviceInfo {
  std::string name;
  size_t total_memory = 0;
  int cc_major = 0, cc_minor = 0, sm_count = 0;
};
DeviceInfo device_info(int device);
int runtime_version();  // e.g. 13000
int driver_version();

// Grid size for n elements at `threads` per block, capped for grid-stride loops.
inline unsigned grid_for(long long n, int threads) {
  long long b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535LL * 32) b = 65535LL * 32;
  return static_cast<unsigned>(b);
}

}  // namespace wick::cuda

#define WICK_CUDA_CHECK(expr)                                                       \
  do {                                                                              \
    cudaError_t wick_e_ = (expr);                                                   \
    if (wick_e_ != cudaSuccess) ::wick::cuda::cuda_failed(wick_e_, #expr, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch.
#define WICK_CUDA_LAUNCH_CHECK() WICK_CUDA_CHECK(cudaGetLastError())
