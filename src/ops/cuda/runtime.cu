#include "ops/cuda/runtime.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <vector>

#include "core/device_cuda.h"
#include "core/error.h"

namespace wick {

bool cuda_compiled() { return true; }

int cuda_device_count() {
  static int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver" error
      return 0;
    }
    return n;
  }();
  return count;
}

namespace cuda {

// cudaMallocAsync, and on out-of-memory one retry after the stream has drained and the pool has returned
// what it holds unused; then a wick::Error that says how much was asked, what the device has, and what to
// change - never a crash or a hang. Runs on wick's own stream, so the wait is bounded by queued work.
void alloc_or_explain(void** p, size_t nbytes, int device, cudaStream_t s, const char* what) {
  cudaError_t e = cudaMallocAsync(p, nbytes, s);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    cudaStreamSynchronize(s);
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
    cudaGetLastError();
    e = cudaMallocAsync(p, nbytes, s);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    *p = nullptr;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    char buf[512];
    const double gib = 1024.0 * 1024.0 * 1024.0;
    std::snprintf(buf, sizeof buf, "out of GPU memory on cuda:%d: asked for %.3f GiB%s%s, %.2f GiB free of %.2f GiB", device,
                  nbytes / gib, *what ? " of " : "", what, free_b / gib, total_b / gib);
    throw Error(buf, "", "lower --batch-size (or let wick choose it: --batch-size 0) or --max-seq-len, or use "
                         "--grad-checkpointing where available; another process may hold the GPU (nvidia-smi)");
  }
  WICK_CUDA_CHECK(e);
}

void cuda_failed(cudaError_t e, const char* expr, const char* file, int line) {
  if (e == cudaErrorMemoryAllocation)
    throw Error("out of GPU memory", std::string(expr), "use a smaller batch or sequence length");
  check_failed(expr, file, line, std::string("CUDA error ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

void set_device(int device) {
  int cur = -1;
  WICK_CUDA_CHECK(cudaGetDevice(&cur));
  if (cur != device) WICK_CUDA_CHECK(cudaSetDevice(device));
}

cudaStream_t stream(int device) {
  static std::mutex mu;
  static std::vector<cudaStream_t> streams;
  std::lock_guard<std::mutex> lock(mu);
  if (device < 0 || device >= cuda_device_count())
    throw Error("CUDA device " + std::to_string(device) + " does not exist", "",
                std::to_string(cuda_device_count()) + " CUDA device(s) visible");
  if (streams.empty()) streams.assign(cuda_device_count(), nullptr);
  if (!streams[device]) {
    set_device(device);
    WICK_CUDA_CHECK(cudaStreamCreateWithFlags(&streams[device], cudaStreamNonBlocking));
  }
  return streams[device];
}

namespace {
struct ScratchBlock {
  void* p = nullptr;
  size_t n = 0;
  uint64_t generation = 0;  // blocks replaced so far (device_scratch_generation)
};
std::mutex scratch_mu;
std::vector<ScratchBlock> scratch_blocks;
}  // namespace

void* scratch(int device, size_t nbytes) {
  cudaStream_t s = stream(device);  // validates device
  std::lock_guard<std::mutex> lock(scratch_mu);
  if (scratch_blocks.empty()) scratch_blocks.assign(cuda_device_count(), ScratchBlock{});
  ScratchBlock& b = scratch_blocks[device];
  if (b.n >= nbytes && b.p) return b.p;
  // Growing inside a capture would leave the block owned by the graph (freed with it, or never freed):
  // the capture fails instead, with the block as it was.
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &cs) != cudaSuccess || cs != cudaStreamCaptureStatusNone)
    throw Error("the CUDA scratch buffer would grow to " + std::to_string(nbytes) + " bytes while a CUDA graph is "
                "being captured", "", "run the work once without capturing before capturing it");
  set_device(device);
  if (b.p) {
    WICK_CUDA_CHECK(cudaFreeAsync(b.p, s));
    b.generation++;
  }
  b.p = nullptr;
  b.n = 0;
  const size_t want = (std::max<size_t>(nbytes, size_t(1) << 20) + 255) & ~size_t(255);
  alloc_or_explain(&b.p, want, device, s, "scratch");
  b.n = want;
  return b.p;
}

namespace {
// cudaDeviceGetAttribute, cached per (device, attribute): launchers ask on every call.
int cached_attribute(int device, cudaDeviceAttr attr, int slot) {
  static std::mutex mu;
  static std::vector<std::array<int, 2>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (cache.empty()) cache.assign(cuda_device_count(), {-1, -1});
  WICK_CHECK(device >= 0 && device < (int)cache.size(), "cuda:" << device);
  int& v = cache[device][slot];
  if (v < 0) WICK_CUDA_CHECK(cudaDeviceGetAttribute(&v, attr, device));
  return v;
}
}  // namespace

int max_shared_memory_optin(int device) {
  return cached_attribute(device, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
}
int sm_count(int device) { return cached_attribute(device, cudaDevAttrMultiProcessorCount, 1); }

DeviceInfo device_info(int device) {
  cudaDeviceProp p{};
  WICK_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  return {p.name, p.totalGlobalMem, p.major, p.minor, p.multiProcessorCount};
}

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}
int driver_version() {
  int v = 0;
  cudaDriverGetVersion(&v);
  return v;
}

}  // namespace cuda

// core/device.cpp's CUDA halves.
void* cuda_alloc(int dev, size_t nbytes) {
  cudaStream_t s = cuda::stream(dev);
  cuda::set_device(dev);
  void* p = nullptr;
  cuda::alloc_or_explain(&p, nbytes == 0 ? 256 : nbytes, dev, s, "");
  return p;
}

void cuda_free(int dev, void* p) {
  cudaStream_t s = cuda::stream(dev);
  cuda::set_device(dev);
  WICK_CUDA_CHECK(cudaFreeAsync(p, s));
}

void cuda_copy(void* dst, Device dd, const void* src, Device sd, size_t nbytes) {
  const int dev = dd.is_cuda() ? dd.index : sd.index;
  cudaStream_t s = cuda::stream(dev);
  cuda::set_device(dev);
  if (dd.is_cuda() && sd.is_cuda() && dd.index != sd.index) {
    WICK_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(sd.index)));
    WICK_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dd.index, src, sd.index, nbytes, s));
    WICK_CUDA_CHECK(cudaStreamSynchronize(s));
    return;
  }
  WICK_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s));
  // Host memory involved: the host may reuse or read it as soon as we return.
  if (dd.is_cpu() || sd.is_cpu()) WICK_CUDA_CHECK(cudaStreamSynchronize(s));
}

void cuda_copy_async(void* dst, Device dd, const void* src, Device sd, size_t nbytes) {
  const int dev = dd.is_cuda() ? dd.index : sd.index;
  if (dd.is_cuda() && sd.is_cuda() && dd.index != sd.index)
    throw Error("an asynchronous copy between two GPUs is not supported", "", "use device_copy");
  cudaStream_t s = cuda::stream(dev);
  cuda::set_device(dev);
  WICK_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s));
}

void* cuda_host_alloc(size_t nbytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, nbytes == 0 ? 64 : nbytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw Error("out of page-locked host memory allocating " + std::to_string(nbytes) + " bytes (" +
                cudaGetErrorString(e) + ")");
  }
  return p;
}

void cuda_host_free(void* p) { cudaFreeHost(p); }

// Thread-local capture mode: this thread may not call what would synchronise (cudaMalloc, a synchronous copy)
// while capturing; other threads are unaffected. A failed capture (an error inside the work, or work that
// broke the capture) ends the capture before the error propagates, so the stream stays usable.
void cuda_graph_capture(int dev, const std::function<void()>& work, void** graph, void** exec) {
  cudaStream_t s = cuda::stream(dev);
  cuda::set_device(dev);
  WICK_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t g = nullptr;
  try {
    work();
  } catch (...) {
    cudaStreamEndCapture(s, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throw;
  }
  const cudaError_t e = cudaStreamEndCapture(s, &g);
  if (e != cudaSuccess || !g) {
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    throw Error(std::string("the work could not be captured as a CUDA graph: ") + cudaGetErrorString(e));
  }
  // Device memory allocated inside the work and not freed there (stream-ordered allocations become the graph's
  // allocation nodes) would be handed out again by every replay while something outside still holds it.
  size_t n_nodes = 0;
  WICK_CUDA_CHECK(cudaGraphGetNodes(g, nullptr, &n_nodes));
  std::vector<cudaGraphNode_t> nodes(n_nodes);
  if (n_nodes) WICK_CUDA_CHECK(cudaGraphGetNodes(g, nodes.data(), &n_nodes));
  long long live_allocs = 0;
  for (cudaGraphNode_t n : nodes) {
    cudaGraphNodeType t;
    WICK_CUDA_CHECK(cudaGraphNodeGetType(n, &t));
    live_allocs += t == cudaGraphNodeTypeMemAlloc ? 1 : t == cudaGraphNodeTypeMemFree ? -1 : 0;
  }
  if (live_allocs > 0) {
    cudaGraphDestroy(g);
    throw Error("the captured work keeps " + std::to_string(live_allocs) + " device allocation(s) it made", "",
                "run the work once without capturing (to size its buffers) before capturing it");
  }
  cudaGraphExec_t x = nullptr;
  const cudaError_t ei = cudaGraphInstantiate(&x, g, 0);
  if (ei != cudaSuccess) {
    cudaGraphDestroy(g);
    cudaGetLastError();
    throw Error(std::string("a captured CUDA graph could not be instantiated: ") + cudaGetErrorString(ei));
  }
  *graph = g;
  *exec = x;
}

void cuda_graph_replay(int dev, void* exec) {
  cudaStream_t s = cuda::stream(dev);
  cuda::set_device(dev);
  WICK_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec), s));
}

void cuda_graph_destroy(void* graph, void* exec) {
  if (exec) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec));
  if (graph) cudaGraphDestroy(static_cast<cudaGraph_t>(graph));
}

void cuda_memset_zero(void* p, int dev, size_t nbytes) {
  cudaStream_t s = cuda::stream(dev);
  cuda::set_device(dev);
  WICK_CUDA_CHECK(cudaMemsetAsync(p, 0, nbytes, s));
}

void cuda_synchronize(int dev) { WICK_CUDA_CHECK(cudaStreamSynchronize(cuda::stream(dev))); }

uint64_t cuda_scratch_generation(int dev) {
  std::lock_guard<std::mutex> lock(cuda::scratch_mu);
  return dev >= 0 && static_cast<size_t>(dev) < cuda::scratch_blocks.size() ? cuda::scratch_blocks[dev].generation : 0;
}

size_t cuda_scratch_bytes(int dev) {
  std::lock_guard<std::mutex> lock(cuda::scratch_mu);
  return dev >= 0 && static_cast<size_t>(dev) < cuda::scratch_blocks.size() ? cuda::scratch_blocks[dev].n : 0;
}

void cuda_scratch_reserve(int dev, size_t nbytes) { cuda::scratch(dev, nbytes); }

// The default pool serves every cudaMallocAsync of wick (tensors, activations, workspaces) outside CUDA graphs;
// allocations made inside a captured graph come from the device's graph memory instead. The two high-water marks
// added are wick's peak (an upper bound: they need not have peaked together), less cuBLASLt's 32 MiB workspace
// and the small RoPE tables (cudaMalloc).
size_t cuda_peak_memory(int dev) {
  cudaMemPool_t pool;
  WICK_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
  unsigned long long v = 0, g = 0;  // cuuint64_t
  WICK_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &v));
  WICK_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(dev, cudaGraphMemAttrUsedMemHigh, &g));
  return static_cast<size_t>(v + g);
}

void cuda_reset_peak_memory(int dev) {
  cudaMemPool_t pool;
  WICK_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
  unsigned long long zero = 0;
  WICK_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
  WICK_CUDA_CHECK(cudaDeviceSetGraphMemAttribute(dev, cudaGraphMemAttrUsedMemHigh, &zero));
}

void cuda_event_record(int dev, void** event, bool timing) {
  cuda::set_device(dev);
  if (!*event)
    WICK_CUDA_CHECK(cudaEventCreateWithFlags(reinterpret_cast<cudaEvent_t*>(event),
                                             timing ? cudaEventDefault : cudaEventDisableTiming));
  WICK_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(*event), cuda::stream(dev)));
}

void cuda_event_wait(void* event) { WICK_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event))); }

double cuda_event_ms(void* a, void* b) {
  cuda_event_wait(b);
  float ms = 0;
  WICK_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(a), static_cast<cudaEvent_t>(b)));
  return ms;
}

void cuda_event_destroy(void* event) {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

std::string cuda_device_name(int dev) {
  cudaDeviceProp prop;
  WICK_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  return prop.name;
}

}  // namespace wick
