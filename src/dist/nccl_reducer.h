// The NCCL half of the MPI communicator (CUDA builds with NCCL): sums f32 tensors on this rank's GPU.
// Made on the first GPU allreduce (every rank makes it then, a collective): rank 0 draws NCCL's unique id,
// MPI_Bcast hands it to the others, ncclCommInitRank joins them. Reductions run on wick's stream of the
// tensors' device (ops/cuda/runtime.h), so they are ordered after the backward that produced the gradients
// and before the optimizer that reads them. Compiled only with WICK_HAVE_NCCL.
#pragma once
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "dist/watchdog.h"

namespace wick::dist {

class NcclReducer {
 public:
  // broadcast_id: sends rank 0's id bytes to all ranks (MPI_Bcast).
  NcclReducer(int rank, int size, int device, void (*broadcast_id)(void* bytes, size_t n));
  ~NcclReducer();
  int device() const { return device_; }
  // In place, a bucket of tensors (up to bucket_bytes) per NCCL group; waits until the sums are done while
  // polling NCCL for errors of the peers (a dead peer is an error here, not a hang).
  void allreduce_sum(const std::vector<Tensor*>& tensors, size_t bucket_bytes, Watchdog& watchdog);
  // The overlapped form: start() queues the sums on a stream of its own after the work already on wick's
  // stream (the backward that produced them) and returns; finish() makes wick's stream wait for every
  // started sum and waits for them as allreduce_sum does.
  void start(const std::vector<Tensor*>& tensors, size_t bucket_bytes);
  void finish(Watchdog& watchdog);

 private:
  struct Impl;
  std::unique_ptr<Impl> p_;
  int device_;
};

}  // namespace wick::dist
