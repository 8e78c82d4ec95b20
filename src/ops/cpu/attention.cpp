// CPU causal GQA attention, f32. Query t of T sits at absolute position p = kv_len - T + t (or positions[b, t]
// when the args give them) and sees keys
// [0, p] ((p - window, p] with a sliding window), restricted to its own segment when segment ids are given.
// Query head h reads kv head h / (H / Hkv).
#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/common.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/vec_exp.h"

namespace wick::cpu {

namespace {

struct Dims {
  int64_t B, T, H, D, S, Hkv, group, kv_len, window;
  const int32_t* pos;  // [B, T] or null
  Dims(const Tensor& q, const Tensor& k, const AttentionArgs& a)
      : B(q.dim(0)), T(q.dim(1)), H(q.dim(2)), D(q.dim(3)), S(k.dim(1)), Hkv(k.dim(2)), group(q.dim(2) / k.dim(2)),
        kv_len(a.kv_len), window(a.window), pos(a.positions ? a.positions->data<int32_t>() : nullptr) {}
  // query t's position (of row b): its last visible key
  int64_t last(int64_t b, int64_t t) const { return pos ? pos[b * T + t] : kv_len - T + t; }
  int64_t first(int64_t b, int64_t t) const { return window > 0 ? std::max<int64_t>(0, last(b, t) - window + 1) : 0; }
};

// Does query t (of row b) see key s, given first(t) <= s <= last(t)? Same segment when segments are given.
inline bool visible(const Dims& d, const int32_t* seg, int64_t b, int64_t t, int64_t s) {
  return !seg || seg[b * d.T + s] == seg[b * d.T + t];
}

// p [n] = exp(p - mx), vectorised (vec_exp.h: exp(-inf) is exactly 0).
WICK_CPU_HOT void exp_shifted(float* p, float mx, int64_t n) {
#pragma omp simd
  for (int64_t s = 0; s < n; s++) p[s] = exp_f32(p[s] - mx);
}

}  // namespace

// q [B, T, H, D], k, v [B, S, Hkv, D] -> out [B, T, H, D], lse [B, H, T]
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args, Tensor& out,
                       Tensor* lse) {
  const Dims d(q, k, args);
  const float* pq = q.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  const int32_t* seg = args.segments ? args.segments->data<int32_t>() : nullptr;
  float* po = out.data<float>();
  float* pl = lse ? lse->data<float>() : nullptr;
  const float ninf = -std::numeric_limits<float>::infinity();
#pragma omp parallel if (d.B * d.H * d.T * d.kv_len * d.D > kParallelMin)
  {
    std::vector<float> p(static_cast<size_t>(d.kv_len)), acc(static_cast<size_t>(d.D));
#pragma omp for collapse(3)
    for (int64_t b = 0; b < d.B; b++)
      for (int64_t h = 0; h < d.H; h++)
        for (int64_t t = 0; t < d.T; t++) {
          const int64_t kh = h / d.group, first = d.first(b, t), n = d.last(b, t) - first + 1;
          const float* qr = pq + ((b * d.T + t) * d.H + h) * d.D;
          float mx = ninf;
          for (int64_t s = first; s < first + n; s++) {  // p[s - first]: the scores of the visible range
            p[s - first] = visible(d, seg, b, t, s) ? args.scale * dot(qr, pk + ((b * d.S + s) * d.Hkv + kh) * d.D, d.D) : ninf;
            mx = std::max(mx, p[s - first]);
          }
          exp_shifted(p.data(), mx, n);  // hidden keys (-inf) get 0
          const float z = sum(p.data(), n);
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t s = first; s < first + n; s++) {
            if (p[s - first] == 0.0f) continue;
            const float* vr = pv + ((b * d.S + s) * d.Hkv + kh) * d.D;
            for (int64_t i = 0; i < d.D; i++) acc[i] += p[s - first] * vr[i];
          }
          float* orow = po + ((b * d.T + t) * d.H + h) * d.D;
          for (int64_t i = 0; i < d.D; i++) orow[i] = acc[i] / z;
          if (pl) pl[(b * d.H + h) * d.T + t] = mx + std::log(z);
        }
  }
}

// With P = exp(scale * q.k - lse) and Dt = dout[t] . out[t]:
//   dS = P * (dout . v - Dt);  dq = scale * dS @ k;  dk = scale * dS^T @ q;  dv = P^T @ dout.
// One task per (batch row, kv head) owns dk, dv of that kv head, so no two threads write one row.
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionArgs& args, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Dims d(q, k, args);
  const float* pdo = dout.data<float>();
  const float* pq = q.data<float>();
  const float* pk = k.data<float>();
  const float* pv = v.data<float>();
  const float* po = out.data<float>();
  const float* pl = lse.data<float>();
  const int32_t* seg = args.segments ? args.segments->data<int32_t>() : nullptr;
  float* pdq = dq.data<float>();
  float* pdk = dk.data<float>();
  float* pdv = dv.data<float>();
  auto row = [&](int64_t b, int64_t t, int64_t heads, int64_t h) { return ((b * d.T + t) * heads + h) * d.D; };
#pragma omp parallel for collapse(2) if (d.B * d.H * d.T * d.T * d.D > kParallelMin)
    for (int64_t b = 0; b < d.B; b++)
      for (int64_t kh = 0; kh < d.Hkv; kh++) {
        for (int64_t s = 0; s < d.T; s++) {
          std::fill_n(pdk + row(b, s, d.Hkv, kh), d.D, 0.0f);
          std::fill_n(pdv + row(b, s, d.Hkv, kh), d.D, 0.0f);
        }
        for (int64_t h = kh * d.group; h < (kh + 1) * d.group; h++)
          for (int64_t t = 0; t < d.T; t++) {
            const float* qr = pq + row(b, t, d.H, h);
            const float* gr = pdo + row(b, t, d.H, h);
            const float Dt = dot(gr, po + row(b, t, d.H, h), d.D);
            const float l = pl[(b * d.H + h) * d.T + t];
            float* dqr = pdq + row(b, t, d.H, h);
            std::fill_n(dqr, d.D, 0.0f);
            for (int64_t s = d.first(b, t); s <= t; s++) {  // kv_len == T: query t is at position t
              if (!visible(d, seg, b, t, s)) continue;
              const float* kr = pk + row(b, s, d.Hkv, kh);
              const float* vr = pv + row(b, s, d.Hkv, kh);
              const float p = exp_f32(args.scale * dot(qr, kr, d.D) - l);
              const float dsc = p * (dot(gr, vr, d.D) - Dt) * args.scale;
              float* dkr = pdk + row(b, s, d.Hkv, kh);
              float* dvr = pdv + row(b, s, d.Hkv, kh);
              for (int64_t i = 0; i < d.D; i++) {
                dqr[i] += dsc * kr[i];
                dkr[i] += dsc * qr[i];
                dvr[i] += p * gr[i];
              }
            }
          }
      }
}

// k_rows, v_rows [B, T, X] -> k_cache, v_cache [B, S, X] at the given positions (validated by the op)
void kv_cache_write(const Tensor& k_rows, const Tensor& v_rows, const Tensor& positions, Tensor& k_cache,
                    Tensor& v_cache) {
  const int64_t B = k_rows.dim(0), T = k_rows.dim(1), X = k_rows.dim(2), S = k_cache.dim(1);
  const size_t bytes = static_cast<size_t>(X) * dtype_size(k_rows.dtype());
  const int32_t* pos = positions.data<int32_t>();
  for (const auto& [rows, cache] : {std::pair<const Tensor*, Tensor*>{&k_rows, &k_cache}, {&v_rows, &v_cache}}) {
    const auto* src = static_cast<const unsigned char*>(rows->raw());
    auto* dst = static_cast<unsigned char*>(cache->raw());
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < T; t++) std::memcpy(dst + (b * S + pos[b * T + t]) * bytes, src + (b * T + t) * bytes, bytes);
  }
}

}  // namespace wick::cpu
