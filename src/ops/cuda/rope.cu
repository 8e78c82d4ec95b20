// Rotary position embedding on CUDA (ops/rope.h), rounding exactly where Hugging Face's bf16 graph rounds:
// inv_freq[i] = 1 / theta^(float(2i) / D) in f32, angle = float(pos) * inv_freq[i] in f32, cos/sin in f32
// (precise sincosf, not the fast intrinsics) rounded to T, then each product and each sum rounded to T:
//   y1 = r(r(x1 c) - r(x2 s)),  y2 = r(r(x2 c) + r(x1 s))          (x1 = x[i], x2 = x[i + D/2])
// and backward mirrors autograd through that graph: dx1 = r(r(dy1 c) + r(dy2 s)), dx2 = r(r(dy2 c) - r(dy1 s)).
// In f32 every r() is the identity; the products are __fmul_rn (never contracted into an FMA with the sum), so
// both kernels below give the same f32 values, and the CPU the same products and sums of its cos/sin (which come
// from the C library's cosf/sinf: CUDA's sincosf can differ from them in the last bit at some angles).
//
// inv_freq is computed on the host (pow in double, rounded once to f32: the correctly rounded value torch's
// f32 pow gives; Llama 3 or linear rescaling by the shared rope_rescale) and cached on the device per (device,
// frequencies, D): uploaded once, then only read.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "ops/cuda/common.cuh"
#include "ops/cuda/pdl.cuh"
#include "ops/cuda/rope_rotate.cuh"
#include "ops/cuda/cuda_ops.h"

namespace wick::cuda_ops {
namespace {

using cuda::bf16;

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

using cuda::rope_math::rotate;

// x [B*T, H, D], pos [B*T] -> y (may alias x); kBackward applies the inverse rotation. A second tensor x2 [B*T, H2,
// D] -> y2 (H2 > 0: the keys beside the queries) in the same launch. One block per token (grid-stride): its
// D/2 cos/sin pairs are computed once into shared memory, then the block's threads rotate every (head, pair) of
// the token with 32-bit index arithmetic. (One thread per (token, head, pair), each with its own sincosf and 64-bit
// divisions, ran a 0.5B training step's q/k RoPE at ~41 us a layer, ~5x its memory time; a thread looping over
// the heads of one pair made a decode step's RoPE ~10 us of latency.)
template <typename T, typename P, bool kBackward>
__global__ void rope_kernel(const T* x, const P* pos, const float* inv_freq, T* y, long long BT, int H, int D,
                            const T* x2, T* y2, int H2) {
  pdl::enter();  // both kernels are launched with pdl::launch
  extern __shared__ float cos_sin[];  // [D/2] cos, then [D/2] sin, rounded to T
  const int half = D / 2, heads = H + H2, slots = heads * half;
  for (long long bt = blockIdx.x; bt < BT; bt += gridDim.x) {
    const float p = static_cast<float>(pos[bt]);
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      cuda::rope_math::cos_sin<T>(p, inv_freq[i], cos_sin[i], cos_sin[half + i]);
    }
    __syncthreads();
    for (int slot = threadIdx.x; slot < slots; slot += blockDim.x) {
      const int hh = slot / half, i = slot - hh * half;
      const float c = cos_sin[i], s = cos_sin[half + i];
      const bool second = hh >= H;
      const T* src = second ? x2 : x;
      T* dst = second ? y2 : y;
      const int nh = second ? H2 : H;
      const long long base = (bt * nh + (second ? hh - H : hh)) * D;
      const float x1 = cuda::to_f(src[base + i]), xb = cuda::to_f(src[base + half + i]);
      float y1, yb;
      rotate<T, kBackward>(x1, xb, c, s, y1, yb);
      dst[base + i] = cuda::from_f<T>(y1);
      dst[base + half + i] = cuda::from_f<T>(yb);
    }
    __syncthreads();  // the next token overwrites cos_sin
  }
}

// The same rotation, 4 pairs a thread (loadv / storev: 8-byte bf16 or 16-byte f32 accesses) and several tokens a
// block, for head dims with D/2 % 4 == 0 and 4-element-aligned tensors; the values of rope_kernel (the same
// rotate), bit for bit. The scalar kernel's 2-byte accesses ran a 0.5B training step's q/k RoPE at ~28 us a layer
// (34 MB moved: ~1.2 TB/s); here each block first puts the cos/sin of its `tpb` tokens into shared memory, then
// one thread per (token, head, 4 pairs) rotates.
// With a cache (kCache, the decode step's KV-cache append of rope_qk_cache_write): the rotated second tensor (the
// keys) is also stored at row pos[bt] of cache.k, and a third group of slots copies the values cache.v_rows
// [B*T, H2, D] to the same row of cache.v (kv_cache_write's layout [B, S, H2 * D], bt = b * T + t).
template <typename T> struct CacheDest {
  T* k = nullptr;
  T* v = nullptr;
  const T* v_rows = nullptr;
  long long S = 0;
  int T_ = 1;  // tokens per batch row
};

template <typename T, typename P, bool kBackward, bool kCache = false>
__global__ void rope_vec_kernel(const T* x, const P* pos, const float* inv_freq, T* y, long long BT, int H, int D,
                                const T* x2, T* y2, int H2, int tpb, CacheDest<T> cache) {
  pdl::enter();
  extern __shared__ float cos_sin[];  // per token of the block: [D/2] cos, then [D/2] sin, rounded to T
  const int half = D / 2, chunks = half / 4, rotated = (H + H2) * chunks;
  const int per_token = rotated + (kCache ? H2 * 2 * chunks : 0);
  for (long long bt0 = static_cast<long long>(blockIdx.x) * tpb; bt0 < BT; bt0 += static_cast<long long>(gridDim.x) * tpb) {
    for (int j = threadIdx.x; j < tpb * half; j += blockDim.x) {
      const int t = j / half, i = j - t * half;
      if (bt0 + t >= BT) break;
      cuda::rope_math::cos_sin<T>(static_cast<float>(pos[bt0 + t]), inv_freq[i], cos_sin[t * D + i],
                                  cos_sin[t * D + half + i]);
    }
    __syncthreads();
    for (int slot = threadIdx.x; slot < tpb * per_token; slot += blockDim.x) {
      const int t = slot / per_token, r = slot - t * per_token, hh = r / chunks, i0 = (r - hh * chunks) * 4;
      const long long bt = bt0 + t;
      if (bt >= BT) break;
      long long row = 0;  // the cache row of token bt: (b * S + pos) * H2 * D
      if constexpr (kCache) {
        const long long p = static_cast<long long>(pos[bt]);
        if (p < 0 || p >= cache.S) {
          printf("wick rope_qk_cache_write: positions[%lld] = %lld is outside the cache's [0, %lld)\n", bt, p, cache.S);
          __trap();
        }
        row = (bt / cache.T_ * cache.S + p) * H2 * D;
        if (r >= rotated) {  // a value chunk: 4 elements copied
          const int e = (r - rotated) * 4;
          float vv[4];
          cuda::loadv<4>(cache.v_rows + bt * H2 * D + e, vv);
          cuda::storev<4>(cache.v + row + e, vv);
          continue;
        }
      }
      const bool second = hh >= H;
      const T* src = second ? x2 : x;
      T* dst = second ? y2 : y;
      const int nh = second ? H2 : H;
      const long long base = (bt * nh + (second ? hh - H : hh)) * D + i0;
      float a[4], b[4], ya[4], yb[4];
      cuda::loadv<4>(src + base, a);
      cuda::loadv<4>(src + base + half, b);
      const float* c = cos_sin + t * D + i0;
      const float* s = c + half;
#pragma unroll
      for (int k = 0; k < 4; k++) rotate<T, kBackward>(a[k], b[k], c[k], s[k], ya[k], yb[k]);
      cuda::storev<4>(dst + base, ya);
      cuda::storev<4>(dst + base + half, yb);
      if (kCache && second) {
        T* kr = cache.k + row + (hh - H) * D + i0;
        cuda::storev<4>(kr, ya);
        cuda::storev<4>(kr + half, yb);
      }
    }
    __syncthreads();  // the next tokens overwrite cos_sin
  }
}

// x [B, T, H, D] -> y; x2 (may be null) [B, T, H2, D] -> y2 in the same launch.
// With k_cache (forward only): the vector kernel's cache append (rope_qk_cache_write); returns false, launching
// nothing, when the shapes or alignment keep it from the vector kernel (the caller then runs the two ops).
template <bool kBackward>
bool rope(const char* name, const Tensor& x, const Tensor& positions, const RopeFreqs& theta, Tensor& y,
          const Tensor* x2 = nullptr, Tensor* y2 = nullptr, const Tensor* v_rows = nullptr, Tensor* k_cache = nullptr,
          Tensor* v_cache = nullptr) {
  WICK_CHECK(x.ndim() == 4 && x.dtype() == y.dtype(), "op " << name << ": " << x.str() << " -> " << y.str());
  const long long BT = x.dim(0) * x.dim(1);
  const int H = static_cast<int>(x.dim(2)), D = static_cast<int>(x.dim(3));
  const int H2 = x2 ? static_cast<int>(x2->dim(2)) : 0;
  WICK_CHECK(D % 2 == 0, "op " << name << ": head dim " << D << " must be even");
  if (BT == 0 || (H == 0 && H2 == 0) || D == 0) return true;
  bool launched = false;
  const int dev = y.device().index;
  const float* inv = rope_inv_freq_device(dev, theta, D);
  cudaStream_t s = cuda::stream_of(y);
  cuda::dispatch_float(x.dtype(), name, [&](auto tt) {
    using T = typename decltype(tt)::type;
    const T* x2p = x2 ? cuda::cptr<T>(*x2) : nullptr;
    T* y2p = y2 ? cuda::ptr<T>(*y2) : nullptr;
    bool vec = (D / 2) % 4 == 0 && cuda::aligned4<T>(x.raw()) && cuda::aligned4<T>(y.raw()) &&
               (!x2p || (cuda::aligned4<T>(x2p) && cuda::aligned4<T>(y2p)));
    CacheDest<T> cache;
    if (k_cache) {
      vec = vec && cuda::aligned4<T>(v_rows->raw()) && cuda::aligned4<T>(k_cache->raw()) && cuda::aligned4<T>(v_cache->raw());
      if (!vec) return;
      cache.k = cuda::ptr<T>(*k_cache);
      cache.v = cuda::ptr<T>(*v_cache);
      cache.v_rows = cuda::cptr<T>(*v_rows);
      cache.S = k_cache->dim(1);
      cache.T_ = static_cast<int>(x.dim(1));
    }
    const int per_token = (H + H2 + (k_cache ? 2 * H2 : 0)) * (vec ? D / 8 : D / 2);  // threads a token takes
    const int tpb = vec ? std::max(1, 512 / per_token) : 1;  // tokens a block takes
    const int threads = std::min(512, std::max(32, (tpb * per_token + 31) / 32 * 32));
    const unsigned blocks = static_cast<unsigned>(std::min<long long>((BT + tpb - 1) / tpb, 1 << 20));
    const size_t shm = static_cast<size_t>(tpb) * D * sizeof(float);
    cuda::dispatch_index(positions.dtype(), name, [&](auto tp) {
      using P = typename decltype(tp)::type;
      launched = true;
      if constexpr (!kBackward) {
        if (k_cache) {
          WICK_CUDA_CHECK(pdl::launch(rope_vec_kernel<T, P, false, true>, dim3(blocks), dim3(threads), shm, s,
                                      cuda::cptr<T>(x), cuda::cptr<P>(positions), inv, cuda::ptr<T>(y), BT, H, D, x2p,
                                      y2p, H2, tpb, cache));
          return;
        }
      }
      if (vec)
        WICK_CUDA_CHECK(pdl::launch(rope_vec_kernel<T, P, kBackward>, dim3(blocks), dim3(threads), shm, s,
                                    cuda::cptr<T>(x), cuda::cptr<P>(positions), inv, cuda::ptr<T>(y), BT, H, D, x2p,
                                    y2p, H2, tpb, cache));
      else
        WICK_CUDA_CHECK(pdl::launch(rope_kernel<T, P, kBackward>, dim3(blocks), dim3(threads), shm, s,
                                    cuda::cptr<T>(x), cuda::cptr<P>(positions), inv, cuda::ptr<T>(y), BT, H, D, x2p,
                                    y2p, H2));
    });
  });
  return launched;
}

}  // namespace

const float* rope_inv_freq_device(int device, const RopeFreqs& f, int D) {
  static std::mutex mu;
  using Key = std::tuple<int, uint32_t, int, uint32_t, uint32_t, uint32_t, uint32_t, bool>;
  static std::map<Key, float*> tables;  // kept for the life of the process
  const float theta = f.theta;
  std::lock_guard<std::mutex> lock(mu);
  float*& t = tables[Key{device, bits_of(theta), D, bits_of(f.factor), bits_of(f.low_freq_factor),
                         bits_of(f.high_freq_factor), bits_of(f.original_max_position), f.linear}];
  if (!t) {
    std::vector<float> h(D / 2);
    for (int i = 0; i < D / 2; ++i) {
      const float e = static_cast<float>(2 * i) / static_cast<float>(D);
      h[i] = 1.0f / static_cast<float>(std::pow(static_cast<double>(theta), static_cast<double>(e)));
    }
    rope_rescale(h, f);
    cudaStream_t s = cuda::stream(device);
    cuda::set_device(device);
    float* p = nullptr;
    WICK_CUDA_CHECK(cudaMalloc(&p, h.size() * sizeof(float)));
    // On wick's stream (a plain cudaMemcpy from pageable memory may still be in flight on the legacy stream).
    WICK_CUDA_CHECK(cudaMemcpyAsync(p, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice, s));
    WICK_CUDA_CHECK(cudaStreamSynchronize(s));
    t = p;
  }
  return t;
}

// x [B, T, H, D], positions [B, T] -> y [B, T, H, D] (=; may alias x)
void rope_forward(const Tensor& x, const Tensor& positions, const RopeFreqs& theta, Tensor& y) {
  rope<false>("rope_forward", x, positions, theta, y);
}

// dy [B, T, H, D] -> dx [B, T, H, D] (=; may alias dy)
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeFreqs& theta, Tensor& dx) {
  rope<true>("rope_backward", dy, positions, theta, dx);
}

void rope_forward_qk(Tensor& q, Tensor& k, const Tensor& positions, const RopeFreqs& theta) {
  rope<false>("rope_forward_qk", q, positions, theta, q, &k, &k);
}

void rope_backward_qk(Tensor& dq, Tensor& dk, const Tensor& positions, const RopeFreqs& theta) {
  rope<true>("rope_backward_qk", dq, positions, theta, dq, &dk, &dk);
}

// q [B, T, H, D], k, v [B, T, Hkv, D], k_cache, v_cache [B, S, Hkv * D]: one launch of the vector kernel when it
// takes the shapes, else rope_forward_qk and kv_cache_write (the same results either way).
void rope_qk_cache_write(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& theta,
                         Tensor& k_cache, Tensor& v_cache) {
  if (rope<false>("rope_qk_cache_write", q, positions, theta, q, &k, &k, &v, &k_cache, &v_cache)) return;
  cuda_ops::rope_forward_qk(q, k, positions, theta);
  const int64_t B = k.dim(0), T = k.dim(1), X = k.dim(2) * k.dim(3);
  cuda_ops::kv_cache_write(k.view({B, T, X}), v.view({B, T, X}), positions, k_cache, v_cache);
}

}  // namespace wick::cuda_ops
