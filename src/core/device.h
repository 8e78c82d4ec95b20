// Device: where a tensor's bytes live (the host, or CUDA device N); and the raw memory primitives under
// Tensor. The CUDA half is compiled only when WICK_CUDA is on; without it a CUDA device is a clear error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace wick {

struct Device {
  enum Kind : unsigned char { CPU, CUDA };
  Kind kind = CPU;
  int index = 0;

  static Device cpu() { return {CPU, 0}; }
  static Device cuda(int i = 0) { return {CUDA, i}; }
  bool is_cpu() const { return kind == CPU; }
  bool is_cuda() const { return kind == CUDA; }
  bool operator==(const Device& o) const { return kind == o.kind && (kind == CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;                   // "cpu", "cuda:0"
  static Device parse(const std::string& s);  // "cpu", "cuda", "cuda:1"; throws wick::Error otherwise
};

bool cuda_compiled();       // built with WICK_CUDA
int cuda_device_count();    // 0 when not compiled or no driver/GPU
bool cuda_available();      // cuda_device_count() > 0

// Raw memory. CPU memory is 64-byte aligned. Copies between any two devices; the CUDA side runs on
// wick's stream for that device and is complete when the call returns (device-to-device copies
// are stream-ordered and need no host sync).
void* device_alloc(Device d, size_t nbytes);
void device_free(Device d, void* p);
void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);
void device_memset_zero(void* p, Device d, size_t nbytes);
void device_synchronize(Device d);
// Page-locked host memory (cudaMallocHost in a CUDA build, else plain memory), for asynchronous copies.
void* host_alloc_pinned(size_t nbytes);
void host_free_pinned(void* p);
// A copy queued on wick's stream of the CUDA side that returns at once: the host side must be pinned memory
// (host_alloc_pinned), left untouched until device_synchronize. Between two CPU buffers, a memcpy.
void device_copy_async(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);

// A CUDA graph: the work of one callable on wick's stream of a CUDA device, recorded once and replayed as one
// launch (a decode step: hundreds of kernels whose host-side launch cost would otherwise dominate). The work
// must not wait on the host (no copies with pageable host memory, no device_synchronize, no first-time
// allocations: run it once before capturing), and every buffer it touches must outlive the graph.
class DeviceGraph {
 public:
  // Records work() without running it; throws wick::Error naming the CUDA error when it cannot be captured
  // (the stream stays usable), and when the work would grow the CUDA scratch block or keeps a device allocation
  // it made (stream-ordered allocations freed inside the work are fine). A build without CUDA, or a CPU device:
  // a clear error.
  DeviceGraph(Device d, const std::function<void()>& work);
  ~DeviceGraph();
  DeviceGraph(const DeviceGraph&) = delete;
  DeviceGraph& operator=(const DeviceGraph&) = delete;
  void replay();  // queued on the device's stream; returns at once

 private:
  Device dev_;
  void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
};

// Marks on a device's stream, to time stretches of queued work (WICK_STEP_PROFILE: train/trainer.cpp). mark()
// records the point the stream has reached (a CUDA event; on the CPU, whose ops return when done, the host clock);
// ms_between(a, b) waits for b and gives the device time from a to b, idle gaps included.
class StreamMarks {
 public:
  explicit StreamMarks(Device d) : dev_(d) {}
  ~StreamMarks();
  StreamMarks(const StreamMarks&) = delete;
  StreamMarks& operator=(const StreamMarks&) = delete;
  size_t mark();  // -> its index
  double ms_between(size_t a, size_t b);
  void clear();  // forget the marks (their events are reused)

 private:
  Device dev_;
  std::vector<void*> events_;  // cudaEvent_t, one per mark index, created on first use
  std::vector<double> host_ms_;
  size_t used_ = 0;
};

// A point on a device's stream that the host can wait for without waiting for the work queued after it (a decode
// step queued ahead of the token the host is reading: infer/decode_loop.cpp). A CUDA event without timing; on the
// CPU, whose ops return when done, every point is already passed.
class StreamPoint {
 public:
  explicit StreamPoint(Device d) : dev_(d) {}
  ~StreamPoint();
  StreamPoint(const StreamPoint&) = delete;
  StreamPoint& operator=(const StreamPoint&) = delete;
  void record();  // the point the stream has reached now (work queued so far)
  void wait();    // returns when the stream has passed the last recorded point

 private:
  Device dev_;
  void* event_ = nullptr;  // cudaEvent_t, created on first record
};

// How many times the device's CUDA scratch block (ops that need temporary memory carve it) has been replaced by a
// larger one, which frees the old: a CUDA graph captured before still points into it, so work keyed by this
// number never replays such a graph. 0 on the CPU or without CUDA.
uint64_t device_scratch_generation(Device d);
// The scratch block's size in bytes (0 before its first use, on the CPU or without CUDA), and a request that it
// hold at least nbytes now (a warm-up before capturing work that will need that much; nothing on the CPU).
size_t device_scratch_bytes(Device d);
void device_scratch_reserve(Device d, size_t nbytes);
// Peak bytes wick has held on a CUDA device (the stream-ordered pool's high-water mark), and a reset of it;
// 0 on the CPU or without CUDA.
size_t device_peak_memory(Device d);
void device_reset_peak_memory(Device d);
// The device's marketing name ("NVIDIA H200"); "cpu" on the host.
std::string device_name(Device d);

}  // namespace wick
