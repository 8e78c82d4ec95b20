#if defined(WICK_HAVE_NCCL)
#include "dist/nccl_reducer.h"

#include <nccl.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/error.h"
#include "dist/communicator.h"
#include "ops/cuda/runtime.h"

namespace wick::dist {

struct NcclReducer::Impl {
  ncclComm_t comm = nullptr;
  cudaEvent_t done = nullptr;   // the sums are complete
  cudaEvent_t ready = nullptr;  // the gradients are (wick's stream reached start())
  cudaStream_t side = nullptr;  // the sums' own stream
  bool pending = false;
};

static void nccl_check(ncclResult_t r, const char* what) {
  if (r == ncclSuccess || r == ncclInProgress) return;
  throw Error(std::string("NCCL ") + what + " failed: " + ncclGetErrorString(r) + " (" + ncclGetLastError(nullptr) + ")",
              "NCCL", "another rank may have died; NCCL_DEBUG=INFO shows more");
}

NcclReducer::NcclReducer(int rank, int size, int device, void (*broadcast_id)(void*, size_t))
    : p_(std::make_unique<Impl>()), device_(device) {
  default_nccl_environment();
  cuda::set_device(device);
  ncclUniqueId id{};
  if (rank == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  broadcast_id(&id, sizeof id);
  nccl_check(ncclCommInitRank(&p_->comm, size, id, rank), "ncclCommInitRank");
  WICK_CUDA_CHECK(cudaEventCreateWithFlags(&p_->done, cudaEventDisableTiming));
  WICK_CUDA_CHECK(cudaEventCreateWithFlags(&p_->ready, cudaEventDisableTiming));
  WICK_CUDA_CHECK(cudaStreamCreateWithFlags(&p_->side, cudaStreamNonBlocking));
}

NcclReducer::~NcclReducer() {
  if (p_->done) cudaEventDestroy(p_->done);
  if (p_->ready) cudaEventDestroy(p_->ready);
  if (p_->side) cudaStreamDestroy(p_->side);
  if (p_->comm) ncclCommDestroy(p_->comm);
}

void NcclReducer::allreduce_sum(const std::vector<Tensor*>& tensors, size_t bucket_bytes, Watchdog& watchdog) {
  start(tensors, bucket_bytes);
  finish(watchdog);
}

void NcclReducer::start(const std::vector<Tensor*>& tensors, size_t bucket_bytes) {
  cuda::set_device(device_);
  WICK_CUDA_CHECK(cudaEventRecord(p_->ready, cuda::stream(device_)));
  WICK_CUDA_CHECK(cudaStreamWaitEvent(p_->side, p_->ready, 0));
  cudaStream_t s = p_->side;
  p_->pending = true;
  size_t i = 0;
  while (i < tensors.size()) {
    // One bucket: tensors until bucket_bytes is reached, launched as one NCCL group (fused by NCCL).
    size_t bytes = 0;
    nccl_check(ncclGroupStart(), "ncclGroupStart");
    for (; i < tensors.size() && (bytes == 0 || bytes + tensors[i]->nbytes() <= bucket_bytes); i++) {
      Tensor& t = *tensors[i];
      WICK_CHECK(t.dtype() == DType::F32 && t.device().is_cuda() && t.device().index == device_);
      nccl_check(ncclAllReduce(t.data<float>(), t.data<float>(), static_cast<size_t>(t.numel()), ncclFloat32, ncclSum,
                               p_->comm, s),
                 "ncclAllReduce");
      bytes += t.nbytes();
    }
    nccl_check(ncclGroupEnd(), "ncclGroupEnd");
  }
}

void NcclReducer::finish(Watchdog& watchdog) {
  if (!p_->pending) return;
  p_->pending = false;
  Watchdog::Scope scope(watchdog, "an NCCL allreduce of the gradients");
  cuda::set_device(device_);
  // wick's stream (the optimizer) waits for the sums; this thread too, asking NCCL about the peers
  // meanwhile: a dead one shows as an async error.
  WICK_CUDA_CHECK(cudaEventRecord(p_->done, p_->side));
  WICK_CUDA_CHECK(cudaStreamWaitEvent(cuda::stream(device_), p_->done, 0));
  for (;;) {
    const cudaError_t q = cudaEventQuery(p_->done);
    if (q == cudaSuccess) break;
    if (q != cudaErrorNotReady) WICK_CUDA_CHECK(q);
    ncclResult_t async = ncclSuccess;
    nccl_check(ncclCommGetAsyncError(p_->comm, &async), "ncclCommGetAsyncError");
    if (async != ncclSuccess && async != ncclInProgress) {
      ncclCommAbort(p_->comm);
      p_->comm = nullptr;
      nccl_check(async, "allreduce (a peer failed)");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

}  // namespace wick::dist
#endif
