// AdamW and the sum of squares for gradient clipping, on CUDA (ops/optim.h).
//
// adamw_step: one fused elementwise launch (float4 when aligned) in the operation order of torch's
// single-tensor AdamW, with the scalars computed on the host in double as Python computes them and passed
// as f32 as torch's CUDA kernels receive them:
//   g = grad * grad_scale                       (clip_grad_norm_'s grad.mul_(coef); skipped when 1)
//   p = p * (1 - lr*wd)                         (param.mul_)
//   m = lerp(m, g, 1 - beta1)                   (exp_avg.lerp_, torch's two-branch lerp)
//   v = v * beta2;  v = v + (1 - beta2) * g * g (exp_avg_sq.mul_().addcmul_())
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
//   p = p + (-lr / (1 - beta1^t)) * (m / denom) (param.addcdiv_)
//
// adamw_step_many: the same per-element code, tensors packed 48 to a launch (see below).
//
// sum_squares: tensors are packed 64 at a time into a kernel argument; each block squares and sums up to
// 4096 elements of one tensor in f32 and writes its partial to the device scratch buffer; one last block
// adds the partials in double, in a fixed order (deterministic), and the double is copied to the host
// (this synchronizes wick's stream).
//
// clip_state: the same partials and the same last block, which then also takes the square root and grad_norm's
// clip coefficient with the host's correctly rounded operations and writes a ClipState; adamw_step_many(clip)
// reads the coefficient (and the skip flag) from it. Nothing waits for the host, so a training step queues its
// update right behind its backward.
#include <cmath>
#include <vector>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

// Per element, the order of f32 operations of ops/optim.h (shared with the CPU twin; torch's order).
struct KernelScalars {
  AdamWScalars s;
  float grad_scale;
  bool scale_grad;
  const ClipState* clip;  // when set: grad_scale is its coef, read on the device, and its skip stops the update
};

KernelScalars kernel_scalars(const AdamWConfig& cfg, int64_t step, float grad_scale) {
  KernelScalars k;
  k.s = adamw_scalars(cfg, step);
  k.grad_scale = grad_scale;
  k.scale_grad = grad_scale != 1.0f;
  k.clip = nullptr;
  return k;
}

// The block's copy of the scalars with the device clip state applied; false: skip the update.
__device__ __forceinline__ bool resolve_clip(KernelScalars& k) {
  if (!k.clip) return true;
  if (k.clip->skip != 0.0f) return false;
  k.grad_scale = k.clip->coef;
  k.scale_grad = k.grad_scale != 1.0f;
  return true;
}

__device__ __forceinline__ void adamw_elem(float& p, float g, float& m, float& v, const KernelScalars& k) {
  if (k.scale_grad) g = g * k.grad_scale;
  p = p * k.s.decay;
  m = k.s.lerp_w < 0.5f ? fmaf(k.s.lerp_w, g - m, m) : fmaf(k.s.lerp_w - 1.0f, g - m, g);
  v = __fadd_rn(__fmul_rn(v, k.s.beta2), __fmul_rn(__fmul_rn(k.s.one_minus_beta2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(sqrtf(v), k.s.bc2_sqrt), k.s.eps);
  p = __fadd_rn(p, __fdiv_rn(__fmul_rn(k.s.neg_step_size, m), denom));
}

template <int V>
__global__ void adamw_kernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m,
                             float* __restrict__ v, long long n, KernelScalars k) {
  const long long stride = (long long)gridDim.x * blockDim.x * V;
  for (long long i = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * V; i < n; i += stride) {
    float p[V], g[V], mm[V], vv[V];
    cuda::loadv<V>(param + i, p);
    cuda::loadv<V>(grad + i, g);
    cuda::loadv<V>(m + i, mm);
    cuda::loadv<V>(v + i, vv);
#pragma unroll
    for (int e = 0; e < V; ++e) adamw_elem(p[e], g[e], mm[e], vv[e], k);
    cuda::storev<V>(param + i, p);
    cuda::storev<V>(m + i, mm);
    cuda::storev<V>(v + i, vv);
  }
}

// adamw_step_many: up to kAdamMaxTensors tensors per launch; block b updates kAdamChunk elements of the tensor
// whose block range holds b (same per-element code as adamw_kernel: results are identical).
constexpr int kAdamMaxTensors = 48;
constexpr int kAdamThreads = 256;
constexpr long long kAdamChunk = kAdamThreads * 16;
struct AdamBatch {
  float* p[kAdamMaxTensors];
  const float* g[kAdamMaxTensors];
  float* m[kAdamMaxTensors];
  float* v[kAdamMaxTensors];
  long long n[kAdamMaxTensors];
  int first_block[kAdamMaxTensors + 1];
  int count;
};

__global__ void adamw_many_kernel(AdamBatch b, KernelScalars k) {
  if (!resolve_clip(k)) return;
  int j = 0;
  while (j + 1 < b.count && (int)blockIdx.x >= b.first_block[j + 1]) ++j;
  const long long lo = (long long)(blockIdx.x - b.first_block[j]) * kAdamChunk;
  const long long hi = lo + kAdamChunk < b.n[j] ? lo + kAdamChunk : b.n[j];
  for (long long i = lo + threadIdx.x; i < hi; i += kAdamThreads) {
    float p = b.p[j][i], mm = b.m[j][i], vv = b.v[j][i];
    adamw_elem(p, b.g[j][i], mm, vv, k);
    b.p[j][i] = p, b.m[j][i] = mm, b.v[j][i] = vv;
  }
}

constexpr int kSsqThreads = 256;
constexpr long long kSsqChunk = kSsqThreads * 16;  // elements per block
constexpr int kSsqMaxTensors = 64;

struct SsqBatch {
  const float* ptr[kSsqMaxTensors];
  long long n[kSsqMaxTensors];
  int first_block[kSsqMaxTensors + 1];  // tensor j owns blocks [first_block[j], first_block[j+1])
  int count;
};

// partial[b] = sum of squares of block b's chunk, b = blockIdx.x within this batch
__global__ void ssq_partials_kernel(SsqBatch batch, float* partial) {
  __shared__ float shm[32];
  const int b = blockIdx.x;
  int lo = 0, hi = batch.count - 1;  // the last j with first_block[j] <= b
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (batch.first_block[mid] <= b) lo = mid;
    else hi = mid - 1;
  }
  const float* p = batch.ptr[lo];
  const long long begin = (long long)(b - batch.first_block[lo]) * kSsqChunk;
  const long long end = min(begin + kSsqChunk, batch.n[lo]);
  float s = 0.0f;
  for (long long i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float x = p[i];
    s += x * x;
  }
  s = cuda::block_sum(s, shm);
  if (threadIdx.x == 0) partial[b] = s;
}

// The sum of partial[0..n) in double, in a fixed order (deterministic), on thread 0 of one block of
// kSsqThreads (the other threads' return values are partial sums).
__device__ double sum_partials_f64(const float* partial, long long n) {
  __shared__ double sh[kSsqThreads];
  double s = 0.0;
  for (long long i = threadIdx.x; i < n; i += blockDim.x) s += static_cast<double>(partial[i]);
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  return sh[0];
}

// *out = sum of partial[0..n) in double, fixed order; one block of kSsqThreads.
__global__ void ssq_final_kernel(const float* partial, long long n, double* out) {
  const double s = sum_partials_f64(partial, n);
  if (threadIdx.x == 0) *out = s;
}

// The ClipState of the partials: ssq_final_kernel's sum (same order, same bits), then grad_norm's rule
// (ops/optim.cpp clip_coefficient) in correctly rounded operations.
__global__ void clip_final_kernel(const float* partial, long long n, double max_norm, ClipState* out) {
  const double sum = sum_partials_f64(partial, n);
  if (threadIdx.x != 0) return;
  const double total = __dsqrt_rn(sum);
  float coef = 1.0f;
  if (max_norm > 0) {
    const float denom = __fadd_rn(__double2float_rn(total), 1e-6f);
    const float c = __fmul_rn(__frcp_rn(denom), __double2float_rn(max_norm));
    coef = c < 1.0f ? c : 1.0f;  // std::min(1.0f, c): 1 for a NaN c
  }
  ClipState st;
  st.norm = total;
  st.coef = coef;
  st.skip = isfinite(total) ? 0.0f : 1.0f;
  *out = st;
}

// Queues the partials of every tensor's sum of squares into partial (total_blocks of them).
void queue_ssq_partials(const std::vector<const Tensor*>& ts, float* partial, cudaStream_t s) {
  long long done_blocks = 0;
  for (size_t i = 0; i < ts.size();) {
    SsqBatch batch{};
    int blocks = 0;
    while (i < ts.size() && batch.count < kSsqMaxTensors) {
      const long long nb = (ts[i]->numel() + kSsqChunk - 1) / kSsqChunk;
      if (blocks > 0 && blocks + nb > 0x7fffffffLL) break;
      WICK_CHECK(nb <= 0x7fffffffLL, "sum_squares: " << ts[i]->str());
      batch.ptr[batch.count] = cuda::cptr<float>(*ts[i]);
      batch.n[batch.count] = ts[i]->numel();
      batch.first_block[batch.count] = blocks;
      blocks += static_cast<int>(nb);
      ++batch.count;
      ++i;
    }
    batch.first_block[batch.count] = blocks;
    ssq_partials_kernel<<<blocks, kSsqThreads, 0, s>>>(batch, partial + done_blocks);
    WICK_CUDA_LAUNCH_CHECK();
    done_blocks += blocks;
  }
}

// The tensors with elements, checked f32 on one device; their block count into *blocks.
std::vector<const Tensor*> ssq_tensors(const std::vector<Tensor>& tensors, long long* blocks) {
  std::vector<const Tensor*> ts;
  *blocks = 0;
  for (const Tensor& t : tensors) {
    if (t.dtype() != DType::F32)
      throw Error("sum_squares: tensors must be f32, got " + t.str(), "", "keep gradients in f32");
    WICK_CHECK(t.device() == tensors[0].device(), "sum_squares across devices: " << t.str());
    if (t.numel() > 0) {
      ts.push_back(&t);
      *blocks += (t.numel() + kSsqChunk - 1) / kSsqChunk;
    }
  }
  return ts;
}

}  // namespace

// param, grad, m, v: f32, same shape; step >= 1
void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& cfg, int64_t step,
                float grad_scale) {
  const Tensor* all[] = {&param, &grad, &m, &v};
  for (const Tensor* t : all)
    WICK_CHECK(t->dtype() == DType::F32 && t->numel() == param.numel(), "adamw_step: " << t->str());
  const long long n = param.numel();
  if (n == 0) return;
  const KernelScalars k = kernel_scalars(cfg, step, grad_scale);
  cudaStream_t s = cuda::stream_of(param);
  const bool vec = n % 4 == 0 && cuda::aligned4<float>(param.raw()) && cuda::aligned4<float>(grad.raw()) &&
                   cuda::aligned4<float>(m.raw()) && cuda::aligned4<float>(v.raw());
  cuda::dispatch_vec(vec, [&](auto vw) {
    constexpr int V = decltype(vw)::value;
    adamw_kernel<V><<<cuda::grid_for(n / V, 256), 256, 0, s>>>(cuda::ptr<float>(param), cuda::cptr<float>(grad),
                                                              cuda::ptr<float>(m), cuda::ptr<float>(v), n, k);
    WICK_CUDA_LAUNCH_CHECK();
  });
}

namespace {
void adamw_many_launch(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step,
                       float grad_scale, const ClipState* clip) {
  KernelScalars k = kernel_scalars(cfg, step, grad_scale);
  k.clip = clip;
  cudaStream_t s = cuda::stream_of(*tensors[0].param);
  for (size_t i = 0; i < tensors.size();) {
    AdamBatch b{};
    int blocks = 0;
    for (; i < tensors.size() && b.count < kAdamMaxTensors; ++i) {
      const AdamWTensors& t = tensors[i];
      const long long n = t.param->numel();
      if (n == 0) continue;
      b.p[b.count] = cuda::ptr<float>(*t.param);
      b.g[b.count] = cuda::cptr<float>(*t.grad);
      b.m[b.count] = cuda::ptr<float>(*t.m);
      b.v[b.count] = cuda::ptr<float>(*t.v);
      b.n[b.count] = n;
      b.first_block[b.count] = blocks;
      blocks += static_cast<int>((n + kAdamChunk - 1) / kAdamChunk);
      b.count++;
    }
    if (b.count == 0) continue;
    b.first_block[b.count] = blocks;
    adamw_many_kernel<<<blocks, kAdamThreads, 0, s>>>(b, k);
    WICK_CUDA_LAUNCH_CHECK();
  }
}
}  // namespace

void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step,
                     float grad_scale) {
  adamw_many_launch(tensors, cfg, step, grad_scale, nullptr);
}

// Sum of squares of every element of every tensor (f32, one device). Synchronizes wick's stream.
double sum_squares(const std::vector<Tensor>& tensors) {
  long long total_blocks = 0;
  const std::vector<const Tensor*> ts = ssq_tensors(tensors, &total_blocks);
  if (ts.empty()) return 0.0;
  const int dev = ts[0]->device().index;
  cudaStream_t s = cuda::stream_of(*ts[0]);
  // scratch: [double result][float partials...]
  char* base = static_cast<char*>(cuda::scratch(dev, sizeof(double) + sizeof(float) * total_blocks));
  double* result = reinterpret_cast<double*>(base);
  float* partial = reinterpret_cast<float*>(base + sizeof(double));
  queue_ssq_partials(ts, partial, s);
  ssq_final_kernel<<<1, kSsqThreads, 0, s>>>(partial, total_blocks, result);
  WICK_CUDA_LAUNCH_CHECK();
  double host = 0.0;
  WICK_CUDA_CHECK(cudaMemcpyAsync(&host, result, sizeof(double), cudaMemcpyDeviceToHost, s));
  WICK_CUDA_CHECK(cudaStreamSynchronize(s));
  return host;
}

// grads non-empty (ops/optim.cpp writes the empty case). The partials go to the scratch buffer, which stays
// valid for the queued kernels: a later, larger request frees the old one stream-ordered.
void clip_state(const std::vector<Tensor>& grads, double max_norm, Tensor& state) {
  long long total_blocks = 0;
  const std::vector<const Tensor*> ts = ssq_tensors(grads, &total_blocks);
  cudaStream_t s = cuda::stream_of(state);
  float* partial = static_cast<float*>(cuda::scratch(state.device().index, sizeof(float) * std::max(1LL, total_blocks)));
  if (!ts.empty()) queue_ssq_partials(ts, partial, s);
  clip_final_kernel<<<1, kSsqThreads, 0, s>>>(partial, total_blocks, max_norm, static_cast<ClipState*>(state.raw()));
  WICK_CUDA_LAUNCH_CHECK();
}

void adamw_step_many(const std::vector<AdamWTensors>& tensors, const AdamWConfig& cfg, int64_t step, const Tensor& clip) {
  adamw_many_launch(tensors, cfg, step, 1.0f, static_cast<const ClipState*>(clip.raw()));
}

}  // namespace wick::cuda_ops
