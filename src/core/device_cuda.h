// The CUDA half of core: device memory (core/device.cpp's primitives) and the dtype cast of Tensor::to
// (built only with WICK_CUDA). It is core's own code: ops/cuda/runtime.cu defines the memory functions (with
// wick's per-device stream and the stream-ordered pool) and ops/cuda/cast.cu the cast, and the build compiles
// them, with ops/cuda/runtime.h and common.cuh, into the core library (CMakeLists.txt: wick_layer(core OWNS
// ...)) - the files sit in ops/cuda/ only until they move to core/.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "core/device.h"

namespace wick {

void* cuda_alloc(int dev, size_t nbytes);
void cuda_free(int dev, void* p);
void cuda_copy(void* dst, Device dd, const void* src, Device sd, size_t nbytes);  // waits when the host is involved
void cuda_memset_zero(void* p, int dev, size_t nbytes);
void cuda_synchronize(int dev);
void cuda_copy_async(void* dst, Device dd, const void* src, Device sd, size_t nbytes);
void* cuda_host_alloc(size_t nbytes);
void cuda_host_free(void* p);
// DeviceGraph's CUDA half (core/device.h): capture on dev's stream, instantiate; replay; destroy.
void cuda_graph_capture(int dev, const std::function<void()>& work, void** graph, void** exec);
void cuda_graph_replay(int dev, void* exec);
void cuda_graph_destroy(void* graph, void* exec);
// StreamMarks' CUDA half: an event recorded on dev's stream (created when *event is null; without timing when
// `timing` is false: StreamPoint's); the time between two.
void cuda_event_record(int dev, void** event, bool timing = true);
double cuda_event_ms(void* a, void* b);
void cuda_event_destroy(void* event);
void cuda_event_wait(void* event);  // StreamPoint's: the host waits for the recorded event
uint64_t cuda_scratch_generation(int dev);  // core/device.h device_scratch_generation
size_t cuda_scratch_bytes(int dev);           // core/device.h device_scratch_bytes
void cuda_scratch_reserve(int dev, size_t nbytes);
size_t cuda_peak_memory(int dev);
void cuda_reset_peak_memory(int dev);
std::string cuda_device_name(int dev);

class Tensor;
void cuda_cast(const Tensor& src, Tensor& dst);  // same shape, any two dtypes, on the GPU

}  // namespace wick
