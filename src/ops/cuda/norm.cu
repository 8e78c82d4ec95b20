// RMSNorm and LayerNorm on CUDA (ops/norm.h).
// Rows: one block per row, statistics in f32 by block reduction, 4 elements per thread when aligned.
// x, w, y, dy, dx share one dtype T (f32 or bf16); rstd/mean are f32; dw/db may be f32 or bf16.
// Weight gradients (+=) are deterministic: a column kernel writes per-(row chunk, column) f32 partials into
// the device scratch buffer, and a second kernel sums them in a fixed order and adds them to dw/db.
#include <algorithm>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.cuh"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

// ---- RMSNorm as Qwen2RMSNorm: y = round_T(x * rstd) * w, rounded to T; or (kOffset) as Gemma3RMSNorm:
// y = (x * rstd) * (1 + w) in f32, rounded to T once ----
// x [N, C], w [C] -> y [N, C] (row stride ldy), rstd [N]
// kAdd (add_rms_norm_forward): x = round_T(x + res) is written to h first (each thread reads back only what it
// wrote), so the norm sees exactly what a separate add would have stored.
// Launched with pdl::launch (a decode step runs two a layer).
template <typename T, int V, bool kOffset, bool kAdd = false>
__global__ void rms_fwd_kernel(const T* x, const T* w, T* y, long long ldy, float* rstd, int C, float eps, const T* res,
                               T* h) {
  pdl::enter();
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const T* xr = (kAdd ? h : x) + row * C;
  T* yr = y + row * ldy;
  float ss = 0.0f;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float v[V];
    if constexpr (kAdd) {
      float r[V];
      cuda::loadv<V>(x + row * C + c, v);
      cuda::loadv<V>(res + row * C + c, r);
#pragma unroll
      for (int i = 0; i < V; ++i) v[i] = cuda::round_to<T>(v[i] + r[i]);
      cuda::storev<V>(h + row * C + c, v);
    } else {
      cuda::loadv<V>(xr + c, v);
    }
#pragma unroll
    for (int i = 0; i < V; ++i) ss += v[i] * v[i];
  }
  ss = cuda::block_sum(ss, shm);
  const float r = rsqrtf(ss / static_cast<float>(C) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float v[V], wv[V];
    cuda::loadv<V>(xr + c, v);
    cuda::loadv<V>(w + c, wv);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = kOffset ? (v[i] * r) * (1.0f + wv[i]) : cuda::round_to<T>(v[i] * r) * wv[i];
    cuda::storev<V>(yr + c, v);
  }
}

// dx = rstd * g - x * rstd^3 * sum(g * x) / C, g = dy * w (kOffset: dy * (1 + w)) (the cast to T is identity
// for gradients)
// kAcc: dx += the gradient rounded to T (a residual's gradient plus the norm's, as two bf16 tensors add).
template <typename T, int V, bool kOffset, bool kAcc>
__global__ void rms_bwd_kernel(const T* dy, const T* x, const T* w, const float* rstd, T* dx, int C) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const T* xr = x + row * C;
  const T* dyr = dy + row * C;
  T* dxr = dx + row * C;
  float dot = 0.0f;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float xv[V], dv[V], wv[V];
    cuda::loadv<V>(xr + c, xv);
    cuda::loadv<V>(dyr + c, dv);
    cuda::loadv<V>(w + c, wv);
#pragma unroll
    for (int i = 0; i < V; ++i) dot += dv[i] * (kOffset ? 1.0f + wv[i] : wv[i]) * xv[i];
  }
  dot = cuda::block_sum(dot, shm);
  const float r = rstd[row];
  const float k = r * r * r * dot / static_cast<float>(C);
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float xv[V], dv[V], wv[V], o[V];
    cuda::loadv<V>(xr + c, xv);
    cuda::loadv<V>(dyr + c, dv);
    cuda::loadv<V>(w + c, wv);
#pragma unroll
    for (int i = 0; i < V; ++i) o[i] = r * dv[i] * (kOffset ? 1.0f + wv[i] : wv[i]) - xv[i] * k;
    if constexpr (kAcc) {
      float prev[V];
      cuda::loadv<V>(dxr + c, prev);
#pragma unroll
      for (int i = 0; i < V; ++i) o[i] = prev[i] + cuda::round_to<T>(o[i]);
    }
    cuda::storev<V>(dxr + c, o);
  }
}

// ---- LayerNorm as torch: y = (x - mean) * rstd * w + b in f32, one rounding ----
template <typename T, int V>
__global__ void ln_fwd_kernel(const T* x, const T* w, const T* b, T* y, float* mean, float* rstd, int C, float eps) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const T* xr = x + row * C;
  T* yr = y + row * C;
  float s = 0.0f;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float v[V];
    cuda::loadv<V>(xr + c, v);
#pragma unroll
    for (int i = 0; i < V; ++i) s += v[i];
  }
  const float mu = cuda::block_sum(s, shm) / static_cast<float>(C);
  float ss = 0.0f;  // second pass over x: centred squares (no cancellation)
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float v[V];
    cuda::loadv<V>(xr + c, v);
#pragma unroll
    for (int i = 0; i < V; ++i) ss += (v[i] - mu) * (v[i] - mu);
  }
  const float r = rsqrtf(cuda::block_sum(ss, shm) / static_cast<float>(C) + eps);
  if (threadIdx.x == 0) mean[row] = mu, rstd[row] = r;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float v[V], wv[V], bv[V];
    cuda::loadv<V>(xr + c, v);
    cuda::loadv<V>(w + c, wv);
    cuda::loadv<V>(b + c, bv);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = (v[i] - mu) * r * wv[i] + bv[i];
    cuda::storev<V>(yr + c, v);
  }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, xhat = (x - mean) * rstd
template <typename T, int V>
__global__ void ln_bwd_kernel(const T* dy, const T* x, const T* w, const float* mean, const float* rstd, T* dx, int C) {
  __shared__ float shm[32];
  const long long row = blockIdx.x;
  const T* xr = x + row * C;
  const T* dyr = dy + row * C;
  T* dxr = dx + row * C;
  const float mu = mean[row], r = rstd[row];
  float sg = 0.0f, sgx = 0.0f;
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float xv[V], dv[V], wv[V];
    cuda::loadv<V>(xr + c, xv);
    cuda::loadv<V>(dyr + c, dv);
    cuda::loadv<V>(w + c, wv);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const float g = dv[i] * wv[i];
      sg += g;
      sgx += g * (xv[i] - mu) * r;
    }
  }
  const float mg = cuda::block_sum(sg, shm) / static_cast<float>(C);
  const float mgx = cuda::block_sum(sgx, shm) / static_cast<float>(C);
  for (int c = threadIdx.x * V; c < C; c += blockDim.x * V) {
    float xv[V], dv[V], wv[V], o[V];
    cuda::loadv<V>(xr + c, xv);
    cuda::loadv<V>(dyr + c, dv);
    cuda::loadv<V>(w + c, wv);
#pragma unroll
    for (int i = 0; i < V; ++i) o[i] = r * (dv[i] * wv[i] - mg - (xv[i] - mu) * r * mgx);
    cuda::storev<V>(dxr + c, o);
  }
}

// ---- weight gradients: column partial sums, then a fixed-order final sum ----
template <typename T> struct RmsWeightGrad {  // dw += dy * round_T(x * rstd) (offset: dy * x * rstd, unrounded)
  static constexpr int kOut = 1;
  const T *dy, *x;
  const float* rstd;
  int C;
  bool offset;
  __device__ void operator()(long long n, int c, float* acc) const {
    const float xr = cuda::to_f(x[n * C + c]) * rstd[n];
    acc[0] += cuda::to_f(dy[n * C + c]) * (offset ? xr : cuda::round_to<T>(xr));
  }
};
template <typename T> struct LnWeightGrad {  // dw += dy * xhat, db += dy
  static constexpr int kOut = 2;
  const T *dy, *x;
  const float *mean, *rstd;
  int C;
  __device__ void operator()(long long n, int c, float* acc) const {
    const float d = cuda::to_f(dy[n * C + c]);
    acc[0] += d * (cuda::to_f(x[n * C + c]) - mean[n]) * rstd[n];
    acc[1] += d;
  }
};

// Block (32, 8): 32 columns x rows n = blockIdx.y * 8 + ty (stride gridDim.y * 8) -> partial[j][blockIdx.y][c]
template <typename F> __global__ void column_partials_kernel(F f, long long N, int C, float* partial) {
  __shared__ float sh[F::kOut][8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  float acc[F::kOut];
#pragma unroll
  for (int j = 0; j < F::kOut; ++j) acc[j] = 0.0f;
  if (c < C)
    for (long long n = blockIdx.y * 8 + threadIdx.y; n < N; n += gridDim.y * 8) f(n, c, acc);
#pragma unroll
  for (int j = 0; j < F::kOut; ++j) sh[j][threadIdx.y][threadIdx.x] = acc[j];
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
#pragma unroll
    for (int j = 0; j < F::kOut; ++j) {
      float s = 0.0f;
      for (int i = 0; i < 8; ++i) s += sh[j][i][threadIdx.x];
      partial[((long long)j * gridDim.y + blockIdx.y) * C + c] = s;
    }
  }
}

// out0[c] += sum_r partial[0][r][c]; out1 likewise from partial[1] (either may be null).
template <typename TW> __global__ void column_finish_kernel(const float* partial, int R, int C, TW* out0, TW* out1) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  TW* outs[2] = {out0, out1};
  for (int j = 0; j < 2; ++j) {
    if (!outs[j]) continue;
    float s = 0.0f;
    for (int r = 0; r < R; ++r) s += partial[((long long)j * R + r) * C + c];
    outs[j][c] = cuda::from_f<TW>(cuda::to_f(outs[j][c]) + s);
  }
}

// dw (and db) += column sums of f over N rows; both outputs one dtype.
template <typename F> void weight_grads(const F& f, long long N, int C, Tensor* dw, Tensor* db, int device, cudaStream_t s) {
  if (N == 0 || C == 0) return;
  const int R = static_cast<int>(std::clamp<long long>((N + 31) / 32, 1, 64));
  float* partial = static_cast<float*>(cuda::scratch(device, sizeof(float) * F::kOut * R * (size_t)C));
  column_partials_kernel<F><<<dim3((C + 31) / 32, R), dim3(32, 8), 0, s>>>(f, N, C, partial);
  WICK_CUDA_LAUNCH_CHECK();
  const Tensor* any = dw ? dw : db;
  WICK_CHECK(!dw || !db || dw->dtype() == db->dtype(), "layer_norm_backward: dw " << dw->str() << ", db " << db->str());
  cuda::dispatch_float(any->dtype(), "norm weight gradient", [&](auto tw) {
    using TW = typename decltype(tw)::type;
    column_finish_kernel<TW><<<(C + 255) / 256, 256, 0, s>>>(partial, R, C, dw ? cuda::ptr<TW>(*dw) : nullptr,
                                                             db ? cuda::ptr<TW>(*db) : nullptr);
    WICK_CUDA_LAUNCH_CHECK();
  });
}

// Rows of C elements: 4 at a time when C % 4 == 0 and every pointer allows it.
template <typename T> bool rows_vec(int C, std::initializer_list<const void*> ps) {
  if (C % 4) return false;
  for (const void* p : ps)
    if (!cuda::aligned4<T>(p)) return false;
  return true;
}

void check_same(const char* op, DType t, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* x : ts)
    WICK_CHECK(x->dtype() == t, "op " << op << ": " << x->str() << " must have dtype " << dtype_name(t));
}

}  // namespace

// Calls f(std::bool_constant<kind == OneOffset>{}).
template <typename F> static void dispatch_offset(RmsWeight kind, F&& f) {
  if (kind == RmsWeight::OneOffset) f(std::true_type{});
  else f(std::false_type{});
}

// Element (row, 0) of a view (ops/matrix_view.h) as T*.
template <typename T> static T* view_ptr(const MatrixView& v) { return cuda::ptr<T>(*v.tensor) + v.offset; }

// x [N, C], w [C] -> y [N, C] (=, a view), rstd [N] f32 (=)
void rms_norm_forward(const Tensor& x, const Tensor& w, float eps, const MatrixView& y, Tensor& rstd, RmsWeight kind) {
  const int C = static_cast<int>(x.dim(-1));
  const long long N = C ? x.numel() / C : 0;
  if (N == 0) return;
  check_same("rms_norm_forward", x.dtype(), {&w, y.tensor});
  cudaStream_t s = cuda::stream_of(*y.tensor);
  cuda::dispatch_float(x.dtype(), "rms_norm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* py = view_ptr<T>(y);
    cuda::dispatch_vec(rows_vec<T>(C, {x.raw(), w.raw(), py}) && y.ld % 4 == 0, [&](auto v) {
      constexpr int V = decltype(v)::value;
      dispatch_offset(kind, [&](auto off) {
        WICK_CUDA_CHECK(pdl::launch(rms_fwd_kernel<T, V, decltype(off)::value>, dim3((unsigned)N),
                                    dim3(cuda::row_threads(C, V, 512)), 0, s, cuda::cptr<T>(x), cuda::cptr<T>(w), py,
                                    (long long)y.ld, cuda::ptr<float>(rstd), C, eps, nullptr, nullptr));
      });
    });
  });
}

// a, b [N, C], w [C] -> h = a + b [N, C] (=), y [N, C] (=, a view), rstd [N] f32 (=)
void add_rms_norm_forward(const Tensor& a, const Tensor& b, const Tensor& w, float eps, Tensor& h, const MatrixView& y,
                          Tensor& rstd, RmsWeight kind) {
  const int C = static_cast<int>(a.dim(-1));
  const long long N = C ? a.numel() / C : 0;
  if (N == 0) return;
  check_same("add_rms_norm_forward", a.dtype(), {&b, &w, &h, y.tensor});
  cudaStream_t s = cuda::stream_of(*y.tensor);
  cuda::dispatch_float(a.dtype(), "add_rms_norm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* py = view_ptr<T>(y);
    cuda::dispatch_vec(rows_vec<T>(C, {a.raw(), b.raw(), h.raw(), w.raw(), py}) && y.ld % 4 == 0, [&](auto v) {
      constexpr int V = decltype(v)::value;
      dispatch_offset(kind, [&](auto off) {
        WICK_CUDA_CHECK(pdl::launch(rms_fwd_kernel<T, V, decltype(off)::value, true>, dim3((unsigned)N),
                                    dim3(cuda::row_threads(C, V, 512)), 0, s, cuda::cptr<T>(a), cuda::cptr<T>(w), py,
                                    (long long)y.ld, cuda::ptr<float>(rstd), C, eps, cuda::cptr<T>(b),
                                    cuda::ptr<T>(h)));
      });
    });
  });
}

// dy, x [N, C], w [C], rstd [N] -> dx [N, C] (=), dw [C] (+=, when given)
void rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd, Tensor& dx, Tensor* dw,
                       RmsWeight kind, bool accumulate) {
  const int C = static_cast<int>(x.dim(-1));
  const long long N = C ? x.numel() / C : 0;
  if (N == 0) return;
  check_same("rms_norm_backward", x.dtype(), {&dy, &w, &dx});
  cudaStream_t s = cuda::stream_of(dx);
  cuda::dispatch_float(x.dtype(), "rms_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cuda::dispatch_vec(rows_vec<T>(C, {dy.raw(), x.raw(), w.raw(), dx.raw()}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      dispatch_offset(kind, [&](auto off) {
        constexpr bool kOff = decltype(off)::value;
        const auto kernel = accumulate ? rms_bwd_kernel<T, V, kOff, true> : rms_bwd_kernel<T, V, kOff, false>;
        kernel<<<(unsigned)N, cuda::row_threads(C, V, 512), 0, s>>>(cuda::cptr<T>(dy), cuda::cptr<T>(x), cuda::cptr<T>(w),
                                                                    cuda::cptr<float>(rstd), cuda::ptr<T>(dx), C);
        WICK_CUDA_LAUNCH_CHECK();
      });
    });
    if (dw)
      weight_grads(RmsWeightGrad<T>{cuda::cptr<T>(dy), cuda::cptr<T>(x), cuda::cptr<float>(rstd), C,
                                    kind == RmsWeight::OneOffset},
                   N, C, dw, nullptr, dx.device().index, s);
  });
}

// x [N, C], w [C], b [C] -> y [N, C] (=), mean [N] f32 (=), rstd [N] f32 (=)
void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, float eps, Tensor& y, Tensor& mean,
                        Tensor& rstd) {
  const int C = static_cast<int>(x.dim(-1));
  const long long N = C ? x.numel() / C : 0;
  if (N == 0) return;
  check_same("layer_norm_forward", x.dtype(), {&w, &b, &y});
  cudaStream_t s = cuda::stream_of(y);
  cuda::dispatch_float(x.dtype(), "layer_norm_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cuda::dispatch_vec(rows_vec<T>(C, {x.raw(), w.raw(), b.raw(), y.raw()}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      ln_fwd_kernel<T, V><<<(unsigned)N, cuda::row_threads(C, V, 512), 0, s>>>(
          cuda::cptr<T>(x), cuda::cptr<T>(w), cuda::cptr<T>(b), cuda::ptr<T>(y), cuda::ptr<float>(mean),
          cuda::ptr<float>(rstd), C, eps);
      WICK_CUDA_LAUNCH_CHECK();
    });
  });
}

// -> dx [N, C] (=), dw [C] (+=, when given), db [C] (+=, when given)
void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                         Tensor& dx, Tensor* dw, Tensor* db) {
  const int C = static_cast<int>(x.dim(-1));
  const long long N = C ? x.numel() / C : 0;
  if (N == 0) return;
  check_same("layer_norm_backward", x.dtype(), {&dy, &w, &dx});
  cudaStream_t s = cuda::stream_of(dx);
  cuda::dispatch_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cuda::dispatch_vec(rows_vec<T>(C, {dy.raw(), x.raw(), w.raw(), dx.raw()}), [&](auto v) {
      constexpr int V = decltype(v)::value;
      ln_bwd_kernel<T, V><<<(unsigned)N, cuda::row_threads(C, V, 512), 0, s>>>(
          cuda::cptr<T>(dy), cuda::cptr<T>(x), cuda::cptr<T>(w), cuda::cptr<float>(mean), cuda::cptr<float>(rstd),
          cuda::ptr<T>(dx), C);
      WICK_CUDA_LAUNCH_CHECK();
    });
    if (dw || db)
      weight_grads(LnWeightGrad<T>{cuda::cptr<T>(dy), cuda::cptr<T>(x), cuda::cptr<float>(mean), cuda::cptr<float>(rstd), C},
                   N, C, dw, db, dx.device().index, s);
  });
}

}  // namespace wick::cuda_ops
