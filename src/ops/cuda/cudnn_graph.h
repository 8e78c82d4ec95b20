// A small builder for cuDNN backend operation graphs (the subset wick's fused attention needs: tensors,
// pointwise, reduction, matmul and reshape operations; heuristics; one execution plan), over libcudnn
// loaded at run time.
//
// Why at run time (dlopen) and not linked: cuDNN is optional. It ships with the CUDA toolkit on some machines
// and with PyTorch's pip wheels (site-packages/nvidia/cudnn) on others; a wick binary built where its headers
// were found still runs where the library is absent, and then uses its own kernels. Only the headers (enums,
// types) are needed to build.
//
// Why the backend API by hand: cuDNN's C++ frontend is neither in Debian nor on npm; the graphs wick needs
// (the flash-attention patterns cuDNN's engines recognise) are a few dozen descriptors. The descriptor
// sequence mirrors what that frontend builds for scaled dot-product attention, so the same engines match.
#pragma once
#include <cudnn_graph.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wick::cuda_ops::cudnn {

// The loaded library, or null when it cannot be loaded (why: load_error()). Thread-safe, loads once.
struct Api;
const Api* api();
std::string load_error();
int version();  // cudnnGetVersion() of the loaded library, 0 if none

// One backend descriptor, destroyed with its owner.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type);
  ~Desc();
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return d_; }
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* value);
  void finalize();

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};
using DescPtr = std::shared_ptr<Desc>;

// A tensor of the graph: its uid is what the variant pack names; virtual tensors live only inside the fused
// kernel; by-value tensors are host scalars passed at execution.
struct TensorRef {
  int64_t uid = 0;
  DescPtr desc;
};

// Builds the graph op by op, then the plan. Throws wick::Error with cuDNN's own message on any failure.
class GraphBuilder {
 public:
  TensorRef tensor(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides, cudnnDataType_t dt,
                   bool is_virtual, bool by_value = false);
  // A [1,1,1,1] f32 scalar passed by value at execution (its uid is returned; the caller supplies the value).
  TensorRef scalar(cudnnDataType_t dt = CUDNN_DATA_FLOAT) { return tensor({1, 1, 1, 1}, {1, 1, 1, 1}, dt, false, true); }
  // A virtual tensor with the dims and packed row-major strides given.
  TensorRef virt(const std::vector<int64_t>& dims, cudnnDataType_t dt = CUDNN_DATA_FLOAT);
  TensorRef virt(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                 cudnnDataType_t dt = CUDNN_DATA_FLOAT) {
    return tensor(dims, strides, dt, true);
  }

  // y = mode(x [, b [, t]]); math precision `prec`; axis for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, const TensorRef& x, const TensorRef* b, const TensorRef* t,
                 const TensorRef& y, cudnnDataType_t prec = CUDNN_DATA_FLOAT, int64_t axis = -1);
  void reduction(cudnnReduceTensorOp_t op, const TensorRef& x, const TensorRef& y);
  void matmul(const TensorRef& a, const TensorRef& b, const TensorRef& c);
  void reshape(const TensorRef& x, const TensorRef& y);

  // Finalizes the operation graph on `handle`, asks the heuristics (mode A, then fallback) for engine
  // configurations and keeps the first whose plan finalizes. Returns the plan; its workspace size in *ws.
  DescPtr build_plan(cudnnHandle_t handle, int64_t* ws, std::string* engine_note);

 private:
  int64_t next_uid_ = 1;
  std::vector<DescPtr> keep_;  // descriptors the ops reference: alive as long as the builder
  std::vector<DescPtr> ops_;
};

// The per-device handle, created on first use. Null if cuDNN is unavailable.
cudnnHandle_t handle(int device);

// Executes a plan: uids and pointers (device pointers, or host pointers for by-value tensors), workspace.
void execute(cudnnHandle_t h, const Desc& plan, const std::vector<int64_t>& uids, const std::vector<void*>& ptrs,
             void* workspace, cudaStream_t stream);

}  // namespace wick::cuda_ops::cudnn
