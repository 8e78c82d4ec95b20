// Embedding lookup and its gradient on CUDA (ops/embedding.h).
// Forward: one block per id row, a gather (16-byte copies when the rows allow it, else converting elements).
// Backward: one block per id row, atomicAdd into the table gradient: f32 (what wick's training uses), or bf16
// (sm_80+ bf16 atomics; every addition rounds, as torch's bf16 index_add does). Atomics make the order of
// additions for a repeated id, and so the last bits of its row, run-dependent.
// An id outside [0, V) prints the offending id and traps (a device-side assert that also works with NDEBUG);
// the CUDA context is unusable afterwards, as with any device assert.
#include <cstdio>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

template <typename I> __device__ __forceinline__ long long checked_id(const I* ids, long long row, long long V) {
  const long long id = static_cast<long long>(ids[row]);
  if (id < 0 || id >= V) {
    if (threadIdx.x == 0) printf("wick embedding: ids[%lld] = %lld is outside the table [0, %lld)\n", row, id, V);
    __trap();
  }
  return id;
}

// out [N, C] = table[ids] as raw bytes, 16 at a time (row bytes and both bases 16-byte aligned).
template <typename I>
__global__ void gather_rows16_kernel(const I* ids, const int4* table, int4* out, long long V, long long row_vecs) {
  const long long n = blockIdx.x;
  const long long id = checked_id(ids, n, V);
  const int4* src = table + id * row_vecs;
  int4* dst = out + n * row_vecs;
  for (long long c = threadIdx.x; c < row_vecs; c += blockDim.x) dst[c] = src[c];
}

// Element by element, converting table's dtype to out's.
template <typename I, typename TT, typename TO>
__global__ void gather_rows_kernel(const I* ids, const TT* table, TO* out, long long V, long long C) {
  const long long n = blockIdx.x;
  const long long id = checked_id(ids, n, V);
  const TT* src = table + id * C;
  TO* dst = out + n * C;
  for (long long c = threadIdx.x; c < C; c += blockDim.x) dst[c] = cuda::from_f<TO>(cuda::to_f(src[c]));
}

// dtable [V, C] (f32 or bf16) += dout [N, C] scattered by ids.
template <typename I, typename TD, typename TG>
__global__ void scatter_add_kernel(const I* ids, const TD* dout, TG* dtable, long long V, long long C) {
  const long long n = blockIdx.x;
  const long long id = checked_id(ids, n, V);
  const TD* src = dout + n * C;
  TG* dst = dtable + id * C;
  for (long long c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dst + c, cuda::from_f<TG>(cuda::to_f(src[c])));
}

}  // namespace

// ids [N] i32/i64, table [V, C] -> out [N, C] (=)
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const long long N = ids.numel(), V = table.dim(0), C = table.dim(1);
  if (N == 0 || C == 0) return;
  WICK_CHECK(N <= 0x7fffffffLL, "embedding: " << N << " ids");
  cudaStream_t s = cuda::stream_of(out);
  const long long row_bytes = C * static_cast<long long>(dtype_size(table.dtype()));
  const bool raw16 = table.dtype() == out.dtype() && row_bytes % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(table.raw()) % 16 == 0 && reinterpret_cast<uintptr_t>(out.raw()) % 16 == 0;
  cuda::dispatch_index(ids.dtype(), "embedding_forward", [&](auto ti) {
    using I = typename decltype(ti)::type;
    if (raw16) {
      const long long vecs = row_bytes / 16;
      gather_rows16_kernel<I><<<(unsigned)N, cuda::row_threads(vecs, 1, 256), 0, s>>>(
          cuda::cptr<I>(ids), cuda::cptr<int4>(table), cuda::ptr<int4>(out), V, vecs);
      WICK_CUDA_LAUNCH_CHECK();
      return;
    }
    cuda::dispatch_float(table.dtype(), "embedding_forward", [&](auto tt) {
      using TT = typename decltype(tt)::type;
      cuda::dispatch_float(out.dtype(), "embedding_forward", [&](auto to) {
        using TO = typename decltype(to)::type;
        gather_rows_kernel<I, TT, TO><<<(unsigned)N, cuda::row_threads(C, 1, 256), 0, s>>>(
            cuda::cptr<I>(ids), cuda::cptr<TT>(table), cuda::ptr<TO>(out), V, C);
        WICK_CUDA_LAUNCH_CHECK();
      });
    });
  });
}

// dout [N, C] (f32 or bf16) -> dtable [V, C] f32 or bf16 (+=)
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const long long N = ids.numel(), V = dtable.dim(0), C = dtable.dim(1);
  if (N == 0 || C == 0) return;
  WICK_CHECK(N <= 0x7fffffffLL, "embedding: " << N << " ids");
  cudaStream_t s = cuda::stream_of(dtable);
  cuda::dispatch_index(ids.dtype(), "embedding_backward", [&](auto ti) {
    using I = typename decltype(ti)::type;
    cuda::dispatch_float(dout.dtype(), "embedding_backward", [&](auto td) {
      using TD = typename decltype(td)::type;
      cuda::dispatch_float(dtable.dtype(), "embedding_backward", [&](auto tg) {
        using TG = typename decltype(tg)::type;
        scatter_add_kernel<I, TD, TG><<<(unsigned)N, cuda::row_threads(C, 1, 256), 0, s>>>(
            cuda::cptr<I>(ids), cuda::cptr<TD>(dout), cuda::ptr<TG>(dtable), V, C);
        WICK_CUDA_LAUNCH_CHECK();
      });
    });
  });
}

}  // namespace wick::cuda_ops
