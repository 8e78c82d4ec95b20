// The MPI communicator (Open MPI): MPI_Allreduce for host tensors and scalars, NCCL for GPU tensors when
// compiled with it (dist/nccl_reducer.h). Compiled only with WICK_HAVE_MPI.
#if defined(WICK_HAVE_MPI)
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include "core/error.h"
#include "dist/communicator.h"
#include "dist/watchdog.h"
#if defined(WICK_HAVE_NCCL)
#include "dist/nccl_reducer.h"
#endif

namespace wick::dist {

namespace {

void mpi_check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string(what) + " failed: " + std::string(msg, static_cast<size_t>(len)), "MPI",
              "another rank has probably died; its own message says why");
}

#if defined(WICK_HAVE_NCCL)
void broadcast_from_root(void* bytes, size_t n) {
  mpi_check(MPI_Bcast(bytes, static_cast<int>(n), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
}
#endif

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      // Only the training thread calls MPI (the watchdog never does).
      mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_mpi_ = true;
    }
    // Errors come back as return codes (then wick::Error), not as MPI's abort-on-error default.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
    watchdog_ = std::make_unique<Watchdog>(rank_);
  }
  ~MpiCommunicator() override {
    // A rank that leaves without finalize() (an error) ends the whole job at once: MPI_Finalize would wait
    // for the others, which wait in their next collective for this one.
    if (owns_mpi_ && !finalized_) MPI_Abort(MPI_COMM_WORLD, 1);
  }
  bool finalized() const override { return finalized_; }
  void finalize() override {
    if (finalized_) return;
#if defined(WICK_HAVE_NCCL)
    nccl_.reset();
#endif
    watchdog_.reset();
    finalized_ = true;
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string backend() const override { return compiled_backends(); }

  void allreduce_sum(const std::vector<Tensor*>& tensors) override {
    std::vector<Tensor*> host, gpu;
    split_by_device(tensors, host, gpu);
    if (!gpu.empty()) {
#if defined(WICK_HAVE_NCCL)
      nccl_for(gpu).allreduce_sum(gpu, bucket_bytes(), *watchdog_);
#else
      throw Error("GPU tensors to all-reduce, but this wick was built without NCCL", "dist",
                  "rebuild with NCCL found (nccl.h in the CUDA toolkit or pip's nvidia-nccl), or train on the CPU");
#endif
    }
    if (!host.empty()) allreduce_host(host);
  }
  void start_allreduce_sum(const std::vector<Tensor*>& tensors) override {
    std::vector<Tensor*> host, gpu;
    split_by_device(tensors, host, gpu);
    if (!gpu.empty()) {
#if defined(WICK_HAVE_NCCL)
      nccl_for(gpu).start(gpu, bucket_bytes());
#else
      allreduce_sum(gpu);  // names the missing NCCL
#endif
    }
    if (!host.empty()) start_host(host);
  }
  void finish_allreduces() override {
#if defined(WICK_HAVE_NCCL)
    if (nccl_) nccl_->finish(*watchdog_);
#endif
    if (pending_.empty()) return;
    Watchdog::Scope scope(*watchdog_, "MPI_Wait (gradients)");
    for (PendingBucket& b : pending_) {
      mpi_check(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "MPI_Iallreduce");
      size_t off = 0;
      for (Tensor* t : b.tensors) {
        std::memcpy(t->data<float>(), b.sums.data() + off, t->nbytes());
        off += static_cast<size_t>(t->numel());
      }
    }
    pending_.clear();
  }
  void allreduce_sum(double* v, size_t n) override {
    Watchdog::Scope scope(*watchdog_, "MPI_Allreduce (step totals)");
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, v, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  void allreduce_sum(int64_t* v, size_t n) override {
    Watchdog::Scope scope(*watchdog_, "MPI_Allreduce (step totals)");
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, v, static_cast<int>(n), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD),
              "MPI_Allreduce");
  }
  void broadcast(void* bytes, size_t n, int root) override {
    Watchdog::Scope scope(*watchdog_, "MPI_Bcast");
    mpi_check(MPI_Bcast(bytes, static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void barrier() override {
    Watchdog::Scope scope(*watchdog_, "MPI_Barrier");
    mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }
  [[noreturn]] void abort(const std::string& why, int code) override {
    std::fprintf(stderr, "wick: rank %d: %s\n", rank_, why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  // Host tensors: packed into a bucket of up to bucket_bytes, one MPI_Allreduce per bucket; a tensor larger
  // than a bucket is reduced in place, a bucket-sized piece at a time.
  void allreduce_host(const std::vector<Tensor*>& tensors) {
    Watchdog::Scope scope(*watchdog_, "MPI_Allreduce (gradients)");
    const size_t cap = std::max<size_t>(1, std::min<size_t>(bucket_bytes() / sizeof(float), INT_MAX));
    std::vector<float> bucket;
    std::vector<Tensor*> in_bucket;
    auto flush = [&] {
      if (bucket.empty()) return;
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, bucket.data(), static_cast<int>(bucket.size()), MPI_FLOAT, MPI_SUM,
                              MPI_COMM_WORLD),
                "MPI_Allreduce");
      size_t off = 0;
      for (Tensor* t : in_bucket) {
        std::memcpy(t->data<float>(), bucket.data() + off, t->nbytes());
        off += static_cast<size_t>(t->numel());
      }
      bucket.clear();
      in_bucket.clear();
    };
    for (Tensor* t : tensors) {
      const size_t n = static_cast<size_t>(t->numel());
      if (n > cap) {
        flush();
        for (size_t off = 0; off < n; off += cap)
          mpi_check(MPI_Allreduce(MPI_IN_PLACE, t->data<float>() + off, static_cast<int>(std::min(cap, n - off)),
                                  MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                    "MPI_Allreduce");
        continue;
      }
      if (bucket.size() + n > cap) flush();
      bucket.insert(bucket.end(), t->data<float>(), t->data<float>() + n);
      in_bucket.push_back(t);
    }
    flush();
  }

  // Host tensors, started: packed into buckets of up to bucket_bytes (a larger tensor alone), one
  // MPI_Iallreduce each; finish_allreduces() waits and unpacks.
  struct PendingBucket {
    std::vector<float> sums;
    std::vector<Tensor*> tensors;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  void start_host(const std::vector<Tensor*>& tensors) {
    const size_t cap = std::max<size_t>(1, bucket_bytes() / sizeof(float));
    PendingBucket b;
    auto launch = [&] {
      if (b.sums.empty()) return;
      WICK_CHECK(b.sums.size() <= static_cast<size_t>(INT_MAX));
      pending_.push_back(std::move(b));
      PendingBucket& q = pending_.back();
      mpi_check(MPI_Iallreduce(MPI_IN_PLACE, q.sums.data(), static_cast<int>(q.sums.size()), MPI_FLOAT, MPI_SUM,
                               MPI_COMM_WORLD, &q.request),
                "MPI_Iallreduce");
      b = PendingBucket{};
    };
    for (Tensor* t : tensors) {
      const size_t n = static_cast<size_t>(t->numel());
      if (!b.sums.empty() && b.sums.size() + n > cap) launch();
      b.sums.insert(b.sums.end(), t->data<float>(), t->data<float>() + n);
      b.tensors.push_back(t);
    }
    launch();
  }
  std::deque<PendingBucket> pending_;  // a deque: started buffers never move

  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool owns_mpi_ = false, finalized_ = false;
  std::unique_ptr<Watchdog> watchdog_;
  // f32 tensors only; host ones reduce over MPI, device ones over NCCL.
  static void split_by_device(const std::vector<Tensor*>& tensors, std::vector<Tensor*>& host, std::vector<Tensor*>& gpu) {
    for (Tensor* t : tensors) {
      if (t->dtype() != DType::F32) throw Error("allreduce_sum takes f32 tensors, got " + t->str(), "dist");
      (t->device().is_cpu() ? host : gpu).push_back(t);
    }
  }
#if defined(WICK_HAVE_NCCL)
  // The NCCL communicator, made at the first GPU reduction on the device of its tensors.
  NcclReducer& nccl_for(const std::vector<Tensor*>& gpu) {
    if (!nccl_) nccl_ = std::make_unique<NcclReducer>(rank_, size_, gpu[0]->device().index, &broadcast_from_root);
    return *nccl_;
  }
  std::unique_ptr<NcclReducer> nccl_;
#endif
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace wick::dist
#endif
