// Elementwise ops on CUDA (ops/elementwise.h): one grid-stride launch each, 4 elements per thread when
// every pointer is aligned for it (float4 / 8-byte bf16 loads), f32 math, outputs may alias inputs.
#include <algorithm>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/pdl.cuh"

namespace wick {
void cuda_cast(const Tensor& src, Tensor& dst);  // ops/cuda/cast.cu
}

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

struct AddOp {
  __device__ float operator()(float x, float y) const { return x + y; }
};
struct ScaleOp {  // x * s (second operand unused)
  float s;
  __device__ float operator()(float x, float) const { return x * s; }
};
struct AxpyOp {  // (x, y) -> y + alpha * x
  float alpha;
  __device__ float operator()(float x, float y) const { return y + alpha * x; }
};

// out[i] = op(a[i], b[i]) (b null for unary ops). No __restrict__: out may alias a or b, and each element
// is read and written by the same thread. Launched with pdl::launch.
template <typename T, bool kBinary, bool kVec, typename Op>
__global__ void map_kernel(const T* a, const T* b, T* out, long long n, Op op) {
  pdl::enter();
  const long long stride = (long long)gridDim.x * blockDim.x;
  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if constexpr (kVec) {
    const long long n4 = n / 4;
    for (long long j = i; j < n4; j += stride) {
      float x[4], y[4] = {0, 0, 0, 0}, r[4];
      cuda::load4(a + 4 * j, x);
      if constexpr (kBinary) cuda::load4(b + 4 * j, y);
#pragma unroll
      for (int e = 0; e < 4; ++e) r[e] = op(x[e], y[e]);
      cuda::store4(out + 4 * j, r);
    }
    i += 4 * n4;  // the tail (< 4 elements)
  }
  for (; i < n; i += stride) {
    const float y = kBinary ? cuda::to_f(b[i]) : 0.0f;
    out[i] = cuda::from_f<T>(op(cuda::to_f(a[i]), y));
  }
}

template <bool kBinary, typename Op> void map(const char* name, const Tensor& a, const Tensor* b, Tensor& out, Op op) {
  WICK_CHECK(a.dtype() == out.dtype() && (!b || b->dtype() == out.dtype()), "op " << name << ": " << a.str() << " -> " << out.str());
  WICK_CHECK(a.numel() == out.numel() && (!b || b->numel() == out.numel()), "op " << name << ": " << a.str() << " -> " << out.str());
  const long long n = out.numel();
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(out);
  cuda::dispatch_float(out.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = cuda::cptr<T>(a);
    const T* pb = b ? cuda::cptr<T>(*b) : nullptr;
    T* po = cuda::ptr<T>(out);
    const bool vec = cuda::aligned4<T>(pa) && (!b || cuda::aligned4<T>(pb)) && cuda::aligned4<T>(po);
    if (vec) WICK_CUDA_CHECK(pdl::launch(map_kernel<T, kBinary, true, Op>, dim3(cuda::grid_for((n + 3) / 4, 256)), dim3(256), 0, s, pa, pb, po, n, op));
    else WICK_CUDA_CHECK(pdl::launch(map_kernel<T, kBinary, false, Op>, dim3(cuda::grid_for(n, 256)), dim3(256), 0, s, pa, pb, po, n, op));
  });
}

// copy_matrices (and copy_matrix, one copy): dst (row r at dst + r * ldd) = scale * src (row r at src + r * lds),
// up to kCopiesALaunch copies of one dtype pair, copy blockIdx.y; each block grid-strides over its copy's elements
// (blocks past a small copy's end exit at once).
constexpr int kCopiesALaunch = 32;
struct CopyItem {
  const void* src;
  void* dst;
  long long lds, ldd, rows;
  int cols;
  float scale;
};
struct CopyTable {
  CopyItem c[kCopiesALaunch];
};
template <typename S, typename D> __global__ void copy_matrices_kernel(const __grid_constant__ CopyTable t) {
  const CopyItem& it = t.c[blockIdx.y];
  const S* src = static_cast<const S*>(it.src);
  D* dst = static_cast<D*>(it.dst);
  const long long n = it.rows * it.cols;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / it.cols, c = i % it.cols;
    dst[r * it.ldd + c] = cuda::from_f<D>(it.scale * cuda::to_f(src[r * it.lds + c]));
  }
}

template <typename U> __global__ void fill_kernel(U* p, long long n, U bits) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    p[i] = bits;
}

template <typename U> void launch_fill(Tensor& t, U bits) {
  const long long n = t.numel();
  fill_kernel<U><<<cuda::grid_for(n, 256), 256, 0, cuda::stream_of(t)>>>(static_cast<U*>(t.raw()), n, bits);
  WICK_CUDA_LAUNCH_CHECK();
}

}  // namespace

// a, b, out same shape and dtype -> out = a + b
void add(const Tensor& a, const Tensor& b, Tensor& out) { map<true>("add", a, &b, out, AddOp{}); }

// acc += b
void add_inplace(Tensor& acc, const Tensor& b) { map<true>("add_inplace", acc, &b, acc, AddOp{}); }

// out = s * x
void scale(const Tensor& x, float s, Tensor& out) { map<false>("scale", x, nullptr, out, ScaleOp{s}); }

// y += alpha * x
void axpy(float alpha, const Tensor& x, Tensor& y) { map<true>("axpy", x, &y, y, AxpyOp{alpha}); }

// Any dtypes, same shape: RNE casts (cast.cu); a plain device copy when the dtypes match.
void cast(const Tensor& src, Tensor& dst) {
  WICK_CHECK(src.numel() == dst.numel(), "cast " << src.str() << " -> " << dst.str());
  if (src.numel() == 0) return;
  if (src.dtype() == dst.dtype()) {
    if (src.raw() != dst.raw())
      WICK_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyDeviceToDevice, cuda::stream_of(dst)));
    return;
  }
  cuda_cast(src, dst);
}

// dst = scale * src between views, f32 or bf16 each: copy_matrices' kernel with one copy.
void copy_matrix(const MatrixView& src, const MatrixView& dst, float scale) { copy_matrices({{src, dst, scale}}); }

// Many copies: grouped by (src, dst) dtype, kCopiesALaunch a launch, the grid as wide as the largest copy needs.
void copy_matrices(const std::vector<MatrixCopy>& copies) {
  cudaStream_t s = cuda::stream_of(*copies[0].dst.tensor);
  std::vector<bool> done(copies.size(), false);
  for (size_t first = 0; first < copies.size(); first++) {
    if (done[first]) continue;
    const DType sd = copies[first].src.tensor->dtype(), dd = copies[first].dst.tensor->dtype();
    CopyTable table{};
    int n = 0;
    long long most = 0;
    for (size_t i = first; i < copies.size() && n < kCopiesALaunch; i++) {
      const MatrixCopy& c = copies[i];
      if (done[i] || c.src.tensor->dtype() != sd || c.dst.tensor->dtype() != dd) continue;
      done[i] = true;
      if (c.src.rows * c.src.cols == 0) continue;
      const size_t ss = dtype_size(sd), ds = dtype_size(dd);
      table.c[n++] = {static_cast<const char*>(c.src.tensor->raw()) + c.src.offset * ss,
                      static_cast<char*>(c.dst.tensor->raw()) + c.dst.offset * ds, (long long)c.src.ld, (long long)c.dst.ld,
                      (long long)c.src.rows, (int)c.src.cols, c.scale};
      most = std::max<long long>(most, c.src.rows * c.src.cols);
    }
    if (n == 0) continue;
    const dim3 grid(std::min<unsigned>(cuda::grid_for(most, 256), 1024u), n);
    cuda::dispatch_float(sd, "copy_matrices", [&](auto st) {
      using S = typename decltype(st)::type;
      cuda::dispatch_float(dd, "copy_matrices", [&](auto dt) {
        using D = typename decltype(dt)::type;
        copy_matrices_kernel<S, D><<<grid, 256, 0, s>>>(table);
        WICK_CUDA_LAUNCH_CHECK();
      });
    });
  }
}

// Every element = value, converted as a cast would (RNE for bf16/f16, truncation for integers).
void fill(Tensor& t, float value) {
  if (t.numel() == 0) return;
  switch (t.dtype()) {
    case DType::F32: {
      uint32_t bits;
      std::memcpy(&bits, &value, 4);
      return launch_fill<uint32_t>(t, bits);
    }
    case DType::BF16: return launch_fill<uint16_t>(t, f32_to_bf16(value));
    case DType::F16: return launch_fill<uint16_t>(t, f32_to_f16(value));
    case DType::I32: return launch_fill<int32_t>(t, static_cast<int32_t>(value));
    case DType::I64: return launch_fill<int64_t>(t, static_cast<int64_t>(value));
  }
}

}  // namespace wick::cuda_ops
