// The communicator: what data-parallel training needs from the other ranks, behind one small interface.
// It sits above core/ops (it moves Tensors) and below train/ (the Trainer calls it); docs/architecture.md.
//
//   world size 1   SingleCommunicator: every call is a no-op (a plain `wick train`).
//   CPU build      MPI (Open MPI): MPI_Allreduce for gradients and host scalars.
//   CUDA build     NCCL for tensors on a GPU (the unique id travels over MPI_Bcast), MPI for host scalars,
//                  barriers and aborts; tensors on the host still go through MPI.
//
// Every rank must make the same calls in the same order with the same shapes (as MPI and NCCL require).
// A call that cannot complete because a peer is gone fails with wick::Error naming the collective (MPI is
// switched to MPI_ERRORS_RETURN); the launcher (mpirun, srun, `wick train --gpus`) also ends the job when
// any rank exits, so a dead rank never leaves the others waiting.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace wick::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank among the ranks of this host (picks the GPU: cuda:<local_rank>).
  virtual int local_rank() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "mpi+nccl"

  // Sums f32 tensors element-wise over all ranks, in place. Every rank passes the same list (same order,
  // shapes, devices). Host tensors are packed into buckets of bucket_bytes() and reduced with one
  // MPI_Allreduce per bucket; GPU tensors are reduced in place by NCCL, a bucket of tensors per NCCL group.
  virtual void allreduce_sum(const std::vector<Tensor*>& tensors) = 0;
  // The same sum, started now and finished by finish_allreduces() (which waits for every started one, in
  // order): the overlap of the gradient reduction with the rest of backward. GPU: NCCL on a stream of its
  // own, after the work already queued on wick's stream, which then waits for it. Host: MPI_Iallreduce per
  // bucket (MPI progresses it inside MPI calls, so on the CPU it overlaps little). The tensors must not be
  // touched until finish_allreduces() returns. Default: the blocking allreduce_sum.
  virtual void start_allreduce_sum(const std::vector<Tensor*>& tensors) { allreduce_sum(tensors); }
  virtual void finish_allreduces() {}
  // Host scalars (loss sums, token counts, the stop flag): summed over all ranks in place.
  virtual void allreduce_sum(double* values, size_t n) = 0;
  virtual void allreduce_sum(int64_t* values, size_t n) = 0;
  // root's bytes to every rank.
  virtual void broadcast(void* bytes, size_t n, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job (MPI_Abort): for a failure one rank sees and the others cannot.
  [[noreturn]] virtual void abort(const std::string& why, int code) = 0;
  // This rank is done with the job (MPI_Finalize, NCCL torn down); no call may follow. A process that
  // exits without it while others still run (an error) ends the whole job instead (MPI_Abort).
  virtual void finalize() {}
  virtual bool finalized() const { return false; }

  bool is_root() const { return rank() == 0; }
  // Whether calls go anywhere: false for the world-size-1 no-op. An MPI job of one rank (mpirun -np 1)
  // runs every collective (a GPU one through NCCL): what scripts/gpu-dist-check.sh compares to a plain run.
  bool collective() const { return backend() != "single"; }
  size_t bucket_bytes() const { return bucket_bytes_; }
  void set_bucket_bytes(size_t b) { bucket_bytes_ = b > 0 ? b : 1; }

 private:
  size_t bucket_bytes_ = size_t{25} << 20;  // 25 MiB, as PyTorch DDP's default bucket_cap_mb
};

// World size 1: nothing to exchange.
class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend() const override { return "single"; }
  void allreduce_sum(const std::vector<Tensor*>&) override {}
  void allreduce_sum(double*, size_t) override {}
  void allreduce_sum(int64_t*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& why, int code) override;
};

// The process's communicator, made on first use: MPI (and NCCL for CUDA tensors, when built with it) when
// the process was started by a launcher (Open MPI's mpirun, also with -np 1; or another launcher of more
// than one rank), else a SingleCommunicator. Throws
// wick::Error when launched as one of several ranks by a wick built without MPI.
Communicator& world();
// The world size the launcher announces in the environment (mpirun: OMPI_COMM_WORLD_SIZE; srun/PMIx:
// PMIX_SIZE... / SLURM_NTASKS with SLURM_PROCID; wick train --gpus: through mpirun); 1 when none.
int launcher_world_size();
// What this build can do: "mpi", "mpi+nccl" or "" (no MPI: one rank only).
std::string compiled_backends();

// Makes the MPI communicator (and its NCCL half when compiled and use_nccl). Defined only with WICK_HAVE_MPI.
std::unique_ptr<Communicator> make_mpi_communicator();

// Sets NCCL_NVLS_ENABLE=0 (NVLink multicast off) unless the user set it: called before NCCL starts.
void default_nccl_environment();

}  // namespace wick::dist
