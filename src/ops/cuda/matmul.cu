// matmul on CUDA: shapes -> one cuBLASLt GEMM (cublaslt.cu), plus the corner cases cuBLASLt does not take
// (k = 0; a bias cuBLASLt cannot read: other dtype than c, or misaligned). Matrix views pass their row
// strides to cuBLASLt as leading dimensions.
#include "ops/cuda/common.cuh"
#include "ops/cuda/cublaslt.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/matmul.h"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

// c [rows, n] (rows ld elements apart) = beta * c (c not read when beta == 0) + bias[col] (when given);
// f32 math.
template <typename TC, typename TB>
__global__ void scale_add_bias_kernel(TC* c, long long total, long long n, long long ld, float beta, const TB* bias) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    const long long col = i % n, at = (i / n) * ld + col;
    float v = beta == 0.0f ? 0.0f : beta * cuda::to_f(c[at]);
    if (bias) v += cuda::to_f(bias[col]);
    c[at] = cuda::from_f<TC>(v);
  }
}

// c: `total` elements in rows of n, ld apart, starting at element `offset` of the tensor.
template <typename TC, typename TB>
void launch_scale_add_bias(const Tensor& c, int64_t offset, long long total, long long n, long long ld, float beta,
                           const TB* bias) {
  if (total == 0) return;
  scale_add_bias_kernel<TC, TB><<<cuda::grid_for(total, 256), 256, 0, cuda::stream_of(c)>>>(
      cuda::ptr<TC>(c) + offset, total, n, ld, beta, bias);
  WICK_CUDA_LAUNCH_CHECK();
}

// c = beta * c + bias over rows of n, for any c/bias float dtypes (bias may be null); c as above.
void scale_add_bias(const Tensor& c, int64_t offset, long long total, long long n, long long ld, float beta,
                    const Tensor* bias) {
  cuda::dispatch_float(c.dtype(), "matmul", [&](auto tc) {
    using TC = typename decltype(tc)::type;
    if (!bias) return launch_scale_add_bias<TC, float>(c, offset, total, n, ld, beta, nullptr);
    cuda::dispatch_float(bias->dtype(), "matmul bias", [&](auto tb) {
      using TB = typename decltype(tb)::type;
      launch_scale_add_bias<TC, TB>(c, offset, total, n, ld, beta, cuda::cptr<TB>(*bias));
    });
  });
}

// A view's first element.
char* view_ptr(const MatrixView& v) {
  return static_cast<char*>(v.tensor->raw()) + v.offset * static_cast<int64_t>(dtype_size(v.tensor->dtype()));
}

int64_t prod(const Shape& s, int begin, int end) {
  int64_t p = 1;
  for (int i = begin; i < end; ++i) p *= s[i];
  return p;
}

}  // namespace

// a [..., M, K] (or [..., K, M]), b [K, N] / [N, K] or [batch, ...], c [..., M, N]; see ops/matmul.h.
void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b, float alpha, float beta,
            const Tensor* bias) {
  cuda::GemmArgs g;
  g.device = c.device().index;
  g.ab_type = a.dtype();
  g.c_type = c.dtype();
  g.trans_a = trans_a, g.trans_b = trans_b;
  g.alpha = alpha, g.beta = beta;
  g.a = a.raw(), g.b = b.raw(), g.c = c.raw();
  g.may_tune = matmul_tuning_allowed();
  if (a.dtype() != b.dtype())
    throw Error("matmul: CUDA inputs must share a dtype, got " + a.str() + " x " + b.str(), "",
                "cast one input (e.g. the f32 LoRA weight to bf16, or the activation to f32)");
  WICK_CHECK(a.ndim() >= 2 && (b.ndim() == 2 || (b.ndim() == 3 && a.ndim() == 3)),
             "matmul " << a.str() << " x " << b.str());
  const int ra = a.ndim();
  g.n = trans_b ? b.dim(-2) : b.dim(-1);
  g.k = trans_a ? a.dim(-2) : a.dim(-1);
  if (b.ndim() == 2 && !trans_a) {
    // Leading dims of a (and c) flatten into M: one plain GEMM.
    g.m = prod(a.shape(), 0, ra - 1);
    g.batch = 1;
  } else {
    // Strided batch over a's leading dims; a rank-2 b is shared by every item (stride 0).
    g.m = trans_a ? a.dim(-1) : a.dim(-2);
    g.batch = prod(a.shape(), 0, ra - 2);
    g.stride_a = g.m * g.k;
    g.stride_b = b.ndim() == 3 ? g.k * g.n : 0;
    g.stride_c = g.m * g.n;
  }
  WICK_CHECK(c.numel() == g.batch * g.m * g.n, "matmul output " << c.str() << " for m=" << g.m << " n=" << g.n
                                                                  << " batch=" << g.batch);
  if (c.numel() == 0) return;
  if (g.k == 0) {  // op(a) op(b) is all zeros
    scale_add_bias(c, 0, c.numel(), g.n, g.n, beta, bias);
    return;
  }
  const bool fused_bias = bias && bias->dtype() == c.dtype() && cuda::gemm_bias_aligned(bias->raw());
  g.bias = fused_bias ? bias->raw() : nullptr;
  cuda::gemm(g);
  if (bias && !fused_bias) scale_add_bias(c, 0, c.numel(), g.n, g.n, 1.0f, bias);
}

namespace {

// The GEMM of views a, b into out (checked by ops/matmul.cpp): the views' row strides as lda / ldb / ldc.
cuda::GemmArgs view_gemm(const char* op, const MatrixView& a, const MatrixView& b, const MatrixView& out, bool trans_a,
                         bool trans_b, float alpha, float beta) {
  const Tensor &ta = *a.tensor, &tb = *b.tensor, &to = *out.tensor;
  if (ta.dtype() != tb.dtype())
    throw Error(std::string(op) + ": CUDA inputs must share a dtype, got " + ta.str() + " x " + tb.str(), "",
                "cast one input (e.g. the f32 LoRA weight to bf16, or the activation to f32)");
  cuda::GemmArgs g;
  g.device = to.device().index;
  g.ab_type = ta.dtype();
  g.c_type = to.dtype();
  g.trans_a = trans_a, g.trans_b = trans_b;
  g.alpha = alpha, g.beta = beta;
  g.m = out.rows, g.n = out.cols, g.k = trans_a ? a.rows : a.cols;
  g.lda = a.ld, g.ldb = b.ld, g.ldc = out.ld;
  g.a = view_ptr(a), g.b = view_ptr(b), g.c = view_ptr(out);
  g.may_tune = matmul_tuning_allowed();
  return g;
}

}  // namespace

// Matrix views (checked by ops/matmul.cpp): one GEMM with the views' row strides as lda / ldb / ldc.
void matmul(const MatrixView& a, const MatrixView& b, const MatrixView& c, bool trans_a, bool trans_b, float alpha,
            float beta, const Tensor* bias) {
  const Tensor& tc = *c.tensor;
  cuda::GemmArgs g = view_gemm("matmul", a, b, c, trans_a, trans_b, alpha, beta);
  if (g.m == 0 || g.n == 0) return;
  const long long total = g.m * g.n;
  if (g.k == 0) {  // op(a) op(b) is all zeros
    scale_add_bias(tc, c.offset, total, g.n, c.ld, beta, bias);
    return;
  }
  const bool fused_bias = bias && bias->dtype() == tc.dtype() && cuda::gemm_bias_aligned(bias->raw());
  g.bias = fused_bias ? bias->raw() : nullptr;
  cuda::gemm(g);
  if (bias && !fused_bias) scale_add_bias(tc, c.offset, total, g.n, c.ld, 1.0f, bias);
}

// One GEMM reading its accumulator from c's view and writing d's (cuBLASLt's C and D; checked by ops/matmul.cpp).
void matmul_into(const MatrixView& a, const MatrixView& b, const MatrixView& c, const MatrixView& d, bool trans_a,
                 bool trans_b, float alpha, float beta) {
  cuda::GemmArgs g = view_gemm("matmul_into", a, b, d, trans_a, trans_b, alpha, beta);
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0 || beta == 0.0f) {  // no accumulator to read: the view matmul on d (k = 0 included)
    if (g.k == 0 && beta != 0.0f) cuda_ops::copy_matrix(c, d, 1.0f);
    cuda_ops::matmul(a, b, d, trans_a, trans_b, alpha, beta, nullptr);
    return;
  }
  g.c_in = view_ptr(c), g.ldc_in = c.ld;
  cuda::gemm(g);
}

int64_t gemm_tuned_shapes() { return cuda::tuned_shapes(); }
int64_t gemm_tuning_progress() { return cuda::tuning_progress(); }

}  // namespace wick::cuda_ops
