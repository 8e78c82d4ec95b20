#include "core/device.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/device_cuda.h"
#include "core/error.h"

namespace wick {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda" || s == "gpu") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string n = s.substr(5);
    if (!n.empty() && n.find_first_not_of("0123456789") == std::string::npos && n.size() < 4)
      return cuda(std::stoi(n));
  }
  throw Error("unknown device '" + s + "'", "--device", "use cpu, cuda or cuda:N");
}

#ifndef WICK_CUDA
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
#endif
bool cuda_available() { return cuda_device_count() > 0; }

#ifndef WICK_CUDA
[[noreturn]] static void no_cuda() {
  throw Error("this build of wick has no CUDA support", "", "rebuild with nvcc present (cmake -DWICK_CUDA=ON)");
}
#endif

void* device_alloc(Device d, size_t nbytes) {
  if (d.is_cpu()) {
    const size_t n = ((nbytes + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, n == 0 ? 64 : n);
    if (!p) throw Error("out of host memory allocating " + std::to_string(nbytes) + " bytes");
    return p;
  }
#ifdef WICK_CUDA
  return cuda_alloc(d.index, nbytes);
#else
  no_cuda();
#endif
}

void device_free(Device d, void* p) {
  if (!p) return;
  if (d.is_cpu()) {
    std::free(p);
    return;
  }
#ifdef WICK_CUDA
  cuda_free(d.index, p);
#endif
}

void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef WICK_CUDA
  cuda_copy(dst, dst_dev, src, src_dev, nbytes);
#else
  no_cuda();
#endif
}

void device_memset_zero(void* p, Device d, size_t nbytes) {
  if (d.is_cpu()) {
    std::memset(p, 0, nbytes);
    return;
  }
#ifdef WICK_CUDA
  cuda_memset_zero(p, d.index, nbytes);
#else
  no_cuda();
#endif
}

void device_synchronize(Device d) {
  if (d.is_cpu()) return;
#ifdef WICK_CUDA
  cuda_synchronize(d.index);
#endif
}

void* host_alloc_pinned(size_t nbytes) {
#ifdef WICK_CUDA
  if (cuda_available()) return cuda_host_alloc(nbytes);
#endif
  return device_alloc(Device::cpu(), nbytes);
}

void host_free_pinned(void* p) {
  if (!p) return;
#ifdef WICK_CUDA
  if (cuda_available()) return cuda_host_free(p);
#endif
  device_free(Device::cpu(), p);
}

void device_copy_async(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#ifdef WICK_CUDA
  cuda_copy_async(dst, dst_dev, src, src_dev, nbytes);
#else
  no_cuda();
#endif
}

DeviceGraph::DeviceGraph(Device d, const std::function<void()>& work) : dev_(d) {
  if (d.is_cpu()) throw Error("a CUDA graph needs a CUDA device, got " + d.str());
#ifdef WICK_CUDA
  cuda_graph_capture(d.index, work, &graph_, &exec_);
#else
  (void)work;
  no_cuda();
#endif
}

DeviceGraph::~DeviceGraph() {
#ifdef WICK_CUDA
  cuda_graph_destroy(graph_, exec_);
#endif
}

void DeviceGraph::replay() {
#ifdef WICK_CUDA
  cuda_graph_replay(dev_.index, exec_);
#endif
}

StreamMarks::~StreamMarks() {
#ifdef WICK_CUDA
  for (void* e : events_) cuda_event_destroy(e);
#endif
}

size_t StreamMarks::mark() {
  const size_t i = used_++;
  if (dev_.is_cuda()) {
#ifdef WICK_CUDA
    if (events_.size() <= i) events_.resize(i + 1, nullptr);
    cuda_event_record(dev_.index, &events_[i]);
#endif
  } else {
    if (host_ms_.size() <= i) host_ms_.resize(i + 1);
    host_ms_[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  return i;
}

double StreamMarks::ms_between(size_t a, size_t b) {
  WICK_CHECK(a < used_ && b < used_, "StreamMarks: marks " << a << ", " << b << " of " << used_);
#ifdef WICK_CUDA
  if (dev_.is_cuda()) return cuda_event_ms(events_[a], events_[b]);
#endif
  return host_ms_[b] - host_ms_[a];
}

void StreamMarks::clear() { used_ = 0; }

StreamPoint::~StreamPoint() {
#ifdef WICK_CUDA
  cuda_event_destroy(event_);
#endif
}

void StreamPoint::record() {
#ifdef WICK_CUDA
  if (dev_.is_cuda()) cuda_event_record(dev_.index, &event_, /*timing=*/false);
#endif
}

void StreamPoint::wait() {
#ifdef WICK_CUDA
  if (event_) cuda_event_wait(event_);
#endif
}

uint64_t device_scratch_generation(Device d) {
#ifdef WICK_CUDA
  if (d.is_cuda()) return cuda_scratch_generation(d.index);
#endif
  return 0;
}

size_t device_scratch_bytes(Device d) {
#ifdef WICK_CUDA
  if (d.is_cuda()) return cuda_scratch_bytes(d.index);
#endif
  return 0;
}

void device_scratch_reserve(Device d, size_t nbytes) {
#ifdef WICK_CUDA
  if (d.is_cuda()) cuda_scratch_reserve(d.index, nbytes);
#endif
}

size_t device_peak_memory(Device d) {
#ifdef WICK_CUDA
  if (d.is_cuda()) return cuda_peak_memory(d.index);
#endif
  return 0;
}

void device_reset_peak_memory(Device d) {
#ifdef WICK_CUDA
  if (d.is_cuda()) cuda_reset_peak_memory(d.index);
#endif
}

std::string device_name(Device d) {
#ifdef WICK_CUDA
  if (d.is_cuda()) return cuda_device_name(d.index);
#endif
  return "cpu";
}

}  // namespace wick
