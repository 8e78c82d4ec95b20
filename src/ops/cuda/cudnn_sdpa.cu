// cuDNN fused attention: the forward and backward operation graphs (the pattern cuDNN's flash-attention
// engines match, as its C++ frontend builds it for causal, no dropout, no bias), a plan cache per shape, and
// execution on wick's stream. See cudnn_sdpa.h for when it runs.
//
// Layouts: wick's q, out [B, T, H, D] and k, v [B, S, Hkv, D] are cuDNN's (b, h, s, d) tensors with strides;
// no copies. lse [B, H, T] f32 is cuDNN's Stats (log-sum-exp of the scaled scores, natural log): the same
// quantity wick's kernels save, so either backward can follow either forward.
#include "ops/cuda/cudnn_sdpa.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "core/env.h"
#include "core/warn.h"

#if WICK_HAVE_CUDNN
#include "ops/cuda/cudnn_graph.h"

namespace wick::cuda_ops {

namespace {

using I64 = std::vector<int64_t>;

// The graph's fixed tensors for one shape (uids into the variant pack) and the plan.
struct Plan {
  cudnn::GraphBuilder builder;  // owns every descriptor the plan references
  cudnn::DescPtr plan;
  int64_t workspace = 0;
  std::string engine;
  std::string error;  // non-empty: cuDNN refused this shape
  int64_t q = 0, k = 0, v = 0, o = 0, stats = 0, dout = 0, dq = 0, dk = 0, dv = 0, softmax_sum = 0;
  int64_t scale_uid = 0, neg_inf_uid = 0, one_uid = 0;
  float scale = 1.0f, neg_inf = -INFINITY, one = 1.0f;
  int64_t dq_accum = 0;  // backward, non-deterministic form: the f32 dQ accumulator (zeroed before each run)
};

struct Shapes {
  int64_t B, H, Hkv, T, D;
  I64 q_dims, q_strides, kt_dims, kt_strides, k_dims, k_strides, v_dims, v_strides, vt_dims, vt_strides,
      stats_dims, stats_strides, dkv_dims, dkv_strides;
};

Shapes shapes(const attn::Dims& a, int64_t dkv_rows) {
  Shapes s;
  s.B = a.B, s.H = a.H, s.Hkv = a.Hkv, s.T = a.T, s.D = a.D;
  const int64_t B = a.B, H = a.H, G = a.Hkv, T = a.T, D = a.D, S = a.S;
  s.q_dims = {B, H, T, D}, s.q_strides = {T * H * D, D, H * D, 1};
  s.k_dims = {B, G, T, D}, s.k_strides = {S * G * D, D, G * D, 1};
  s.kt_dims = {B, G, D, T}, s.kt_strides = {S * G * D, D, 1, G * D};
  s.v_dims = s.k_dims, s.v_strides = s.k_strides;
  s.vt_dims = s.kt_dims, s.vt_strides = s.kt_strides;
  s.stats_dims = {B, H, T, 1}, s.stats_strides = {H * T, T, 1, 1};
  s.dkv_dims = {B, G, T, D}, s.dkv_strides = {dkv_rows * G * D, D, G * D, 1};
  return s;
}

// scores [B, H, T, T] -> causal mask (key column > query row -> -inf), the top-left-aligned diagonal band.
cudnn::TensorRef causal_mask(cudnn::GraphBuilder& g, const cudnn::TensorRef& s, const I64& sdims, Plan& p) {
  auto row = g.virt(sdims, CUDNN_DATA_INT32);
  auto col = g.virt(sdims, CUDNN_DATA_INT32);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, row, CUDNN_DATA_INT32, 2);
  g.pointwise(CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, CUDNN_DATA_INT32, 3);
  auto keep = g.virt(sdims, CUDNN_DATA_BOOLEAN);
  g.pointwise(CUDNN_POINTWISE_CMP_GE, row, &col, nullptr, keep, CUDNN_DATA_BOOLEAN);
  auto neg_inf = g.scalar();
  p.neg_inf_uid = neg_inf.uid;
  auto masked = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, s, &neg_inf, &keep, masked);
  return masked;
}

// scale * q.k^T [B, H, T, T]; the scale is a by-value scalar (its uid kept in p, the tensor in *scale for
// the backward's second use).
cudnn::TensorRef scaled_scores(cudnn::GraphBuilder& g, const cudnn::TensorRef& q, const cudnn::TensorRef& kt,
                               const I64& sdims, Plan& p, cudnn::TensorRef* scale_out = nullptr) {
  auto s0 = g.virt(sdims);
  g.matmul(q, kt, s0);
  auto scale = g.scalar();
  p.scale_uid = scale.uid;
  if (scale_out) *scale_out = scale;
  auto s1 = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_MUL, s0, &scale, nullptr, s1);
  return s1;
}

void build_forward(Plan& p, const Shapes& s, cudnnHandle_t h) {
  cudnn::GraphBuilder& g = p.builder;
  const cudnnDataType_t bf = CUDNN_DATA_BFLOAT16;
  auto q = g.tensor(s.q_dims, s.q_strides, bf, false);
  auto kt = g.tensor(s.kt_dims, s.kt_strides, bf, false);
  auto v = g.tensor(s.v_dims, s.v_strides, bf, false);
  auto o = g.tensor(s.q_dims, s.q_strides, bf, false);
  auto stats = g.tensor(s.stats_dims, s.stats_strides, CUDNN_DATA_FLOAT, false);
  p.q = q.uid, p.k = kt.uid, p.v = v.uid, p.o = o.uid, p.stats = stats.uid;
  const I64 sdims = {s.B, s.H, s.T, s.T}, rdims = {s.B, s.H, s.T, 1};

  auto s2 = causal_mask(g, scaled_scores(g, q, kt, sdims, p), sdims, p);
  // softmax with its statistics: m = max, e = exp(s - m), z = sum e, stats = m + log z, P = e / z
  auto m = g.virt(rdims);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, s2, m);
  auto sub = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_SUB, s2, &m, nullptr, sub);
  auto e = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_EXP, sub, nullptr, nullptr, e);
  auto z = g.virt(rdims);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, z);
  auto logz = g.virt(rdims);
  g.pointwise(CUDNN_POINTWISE_LOG, z, nullptr, nullptr, logz);
  g.pointwise(CUDNN_POINTWISE_ADD, m, &logz, nullptr, stats);
  auto pr = g.virt(sdims, bf);
  g.pointwise(CUDNN_POINTWISE_DIV, e, &z, nullptr, pr);
  g.matmul(pr, v, o);
  p.plan = g.build_plan(h, &p.workspace, &p.engine);
}

// c = a b into a kv-head gradient: with grouped heads (H > Hkv) the product is per query head and the group's
// heads are summed by a reduction into c.
void group_grad(cudnn::GraphBuilder& g, const Shapes& s, const cudnn::TensorRef& a, const cudnn::TensorRef& b,
                const cudnn::TensorRef& c) {
  if (s.H == s.Hkv) {
    g.matmul(a, b, c);
    return;
  }
  auto full = g.virt({s.B, s.H, s.T, s.D}, CUDNN_DATA_BFLOAT16);
  g.matmul(a, b, full);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, full, c);
}

// deterministic: dQ = dS k written directly (cuDNN then keeps dP in a workspace of ~B H T^2 bf16 and needs no
// atomics); else into a zeroed f32 accumulator that the engine adds to atomically (less memory, not
// bit-reproducible), copied to dq by an identity op: the two forms cuDNN's frontend builds.
void build_backward(Plan& p, const Shapes& s, cudnnHandle_t h, bool deterministic) {
  cudnn::GraphBuilder& g = p.builder;
  const cudnnDataType_t bf = CUDNN_DATA_BFLOAT16;
  const int64_t B = s.B, H = s.H, T = s.T, D = s.D;
  auto q = g.tensor(s.q_dims, s.q_strides, bf, false);
  auto kt = g.tensor(s.kt_dims, s.kt_strides, bf, false);
  auto vt = g.tensor(s.vt_dims, s.vt_strides, bf, false);
  auto o = g.tensor(s.q_dims, s.q_strides, bf, false);
  auto dout = g.tensor(s.q_dims, s.q_strides, bf, false);
  auto stats = g.tensor(s.stats_dims, s.stats_strides, CUDNN_DATA_FLOAT, false);
  auto dq = g.tensor(s.q_dims, s.q_strides, bf, false);
  auto dk = g.tensor(s.dkv_dims, s.dkv_strides, bf, false);
  auto dv = g.tensor(s.dkv_dims, s.dkv_strides, bf, false);
  auto softmax_sum = g.tensor(s.stats_dims, s.stats_strides, CUDNN_DATA_FLOAT, false);
  p.q = q.uid, p.k = kt.uid, p.v = vt.uid, p.o = o.uid, p.dout = dout.uid, p.stats = stats.uid;
  p.dq = dq.uid, p.dk = dk.uid, p.dv = dv.uid, p.softmax_sum = softmax_sum.uid;
  const I64 sdims = {B, H, T, T}, rdims = {B, H, T, 1};
  const I64 st_dims = {B, H, T, T}, st_strides = {H * T * T, T * T, 1, T};  // a [.., key, query] view

  // delta = rowsum(dO * O) (times 1: the dropout-scale slot of the pattern)
  auto dox = g.virt({B, H, T, D}, {H * T * D, T * D, H * D, 1});
  g.pointwise(CUDNN_POINTWISE_MUL, dout, &o, nullptr, dox);
  auto rs = g.virt(rdims);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, dox, rs);
  auto one = g.scalar();
  p.one_uid = one.uid;
  g.pointwise(CUDNN_POINTWISE_MUL, rs, &one, nullptr, softmax_sum);

  // P = exp(scale q.k - lse) under the causal mask
  cudnn::TensorRef scale;
  auto s1 = scaled_scores(g, q, kt, sdims, p, &scale);
  auto s2 = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_SUB, s1, &stats, nullptr, s2);
  auto s3 = causal_mask(g, s2, sdims, p);
  auto e = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_EXP, s3, nullptr, nullptr, e);

  // dV = P^T dO (summed over the query heads of each kv head)
  auto pt = g.virt(st_dims, st_strides, bf);
  g.reshape(e, pt);
  group_grad(g, s, pt, dout, dv);
  // dS = P * (dO v^T - delta) * scale
  auto dp = g.virt(sdims);
  g.matmul(dout, vt, dp);
  auto d1 = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_SUB, dp, &softmax_sum, nullptr, d1);
  auto d2 = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_MUL, d1, &e, nullptr, d2);
  auto ds = g.virt(sdims);
  g.pointwise(CUDNN_POINTWISE_MUL, d2, &scale, nullptr, ds);
  // dK = dS^T q (summed over the group)
  auto dst = g.virt(st_dims, st_strides, bf);
  g.reshape(ds, dst);
  group_grad(g, s, dst, q, dk);
  // dQ = dS k: k back from its transposed view
  auto k_rows = g.virt(s.k_dims, s.k_strides, bf);
  g.reshape(kt, k_rows);
  if (!deterministic) {
    auto acc = g.tensor({B, H, T, D}, {H * T * D, T * D, D, 1}, CUDNN_DATA_FLOAT, false);
    p.dq_accum = acc.uid;
    g.matmul(ds, k_rows, acc);
    g.pointwise(CUDNN_POINTWISE_IDENTITY, acc, nullptr, nullptr, dq);
  } else {
    g.matmul(ds, k_rows, dq);
  }
  p.plan = g.build_plan(h, &p.workspace, &p.engine);
}

using Key = std::tuple<int, bool, int, int, int, int, int, long long, long long, uint32_t, int64_t>;

std::mutex g_mu;
std::map<Key, std::shared_ptr<Plan>> g_plans;
// Plans are kept per shape; padded batches of varying length make new shapes, so the cache is bounded (a
// plan costs a few descriptors and its build time; the oldest-built are dropped first).
constexpr size_t kMaxPlans = 256;
std::vector<Key> g_order;

// The plan for this shape, building it on first use; null when cuDNN does not apply or refused it.
std::shared_ptr<Plan> plan_for(bool forward, const attn::Dims& a, int device, long long dkv_rows) {
  if (cuda_attention() == CudaAttention::kFlash || a.seg || a.kv_start != 0 || a.window || (a.D != 64 && a.D != 128)) return nullptr;
  if (!cudnn::api()) {
    if (cuda_attention() == CudaAttention::kCudnn) throw Error("CUDA attention is set to cuDNN (WICK_ATTENTION=cudnn) but it cannot be loaded: " + cudnn::load_error());
    return nullptr;
  }
  uint32_t scale_bits;
  std::memcpy(&scale_bits, &a.scale, 4);
  const int64_t cap = forward ? 0 : cuda_attention_deterministic_cap();
  const Key key{device, forward, a.B, a.T, a.H, a.Hkv, a.D, a.S, dkv_rows, scale_bits, cap};
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_plans.find(key);
  if (it == g_plans.end()) {
    if (g_plans.size() >= kMaxPlans) {
      g_plans.erase(g_order.front());
      g_order.erase(g_order.begin());
    }
    auto p = std::make_shared<Plan>();
    p->scale = a.scale;
    try {
      const auto t0 = std::chrono::steady_clock::now();
      const Shapes s = shapes(a, dkv_rows);
      if (forward) {
        build_forward(*p, s, cudnn::handle(device));
      } else {
        build_backward(*p, s, cudnn::handle(device), true);
        if (cap >= 0 && p->workspace > cap) {
          const int64_t det_ws = p->workspace;
          p = std::make_shared<Plan>();
          p->scale = a.scale;
          build_backward(*p, s, cudnn::handle(device), false);
          static std::once_flag once;
          std::call_once(once, [&] {
            warn("attention backward (B " + std::to_string(a.B) + ", T " + std::to_string(a.T) +
                 "): cuDNN's deterministic form needs " + std::to_string(det_ws >> 20) + " MB of workspace, over " +
                 std::to_string(cap >> 20) + " MB, so its non-deterministic form runs (results vary in the last " +
                 "bits between runs; bit-exact resume does not hold). WICK_ATTENTION_DETERMINISTIC_MAX_MB=-1 keeps " +
                 "it deterministic; WICK_ATTENTION=flash runs wick's own deterministic kernels.");
          });
        }
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (env_flag("WICK_ATTENTION_LOG"))
        std::fprintf(stderr, "wick: cuDNN attention %s plan B %d T %d H %d/%d D %d%s: %s, workspace %lld bytes, %.1f ms\n",
                     forward ? "forward" : "backward", a.B, a.T, a.H, a.Hkv, a.D,
                     p->dq_accum ? " (non-deterministic form)" : "", p->engine.c_str(),
                     static_cast<long long>(p->workspace), ms);
    } catch (const Error& e) {
      if (cuda_attention() == CudaAttention::kCudnn) throw;
      p->error = e.what();
      warn(std::string("attention ") + (forward ? "forward" : "backward") + " B " + std::to_string(a.B) + " T " +
           std::to_string(a.T) + " H " + std::to_string(a.H) + "/" + std::to_string(a.Hkv) + " D " +
           std::to_string(a.D) + ": cuDNN refused the graph, wick's flash kernels run it instead: " + p->error);
    }
    it = g_plans.emplace(key, std::move(p)).first;
    g_order.push_back(key);
  }
  return it->second->error.empty() ? it->second : nullptr;
}

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

bool cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const attn::Dims& a, Tensor& out,
                             Tensor* lse) {
  const int dev = out.device().index;
  const std::shared_ptr<Plan> p = plan_for(true, a, dev, a.T);
  if (!p) return false;
  const size_t ws = align256(size_t(p->workspace));
  const size_t stats_bytes = lse ? 0 : size_t(a.B) * a.H * a.T * sizeof(float);
  char* scratch = static_cast<char*>(cuda::scratch(dev, ws + stats_bytes));
  void* stats = lse ? static_cast<void*>(cuda::ptr<float>(*lse)) : static_cast<void*>(scratch + ws);
  const std::vector<int64_t> uids = {p->q, p->k, p->v, p->o, p->stats, p->scale_uid, p->neg_inf_uid};
  const std::vector<void*> ptrs = {const_cast<void*>(static_cast<const void*>(cuda::cptr<cuda::bf16>(q))),
                                   const_cast<void*>(static_cast<const void*>(cuda::cptr<cuda::bf16>(k))),
                                   const_cast<void*>(static_cast<const void*>(cuda::cptr<cuda::bf16>(v))),
                                   cuda::ptr<cuda::bf16>(out), stats, &p->scale, &p->neg_inf};
  cudnn::execute(cudnn::handle(dev), *p->plan, uids, ptrs, p->workspace ? scratch : nullptr, cuda::stream_of(out));
  return true;
}

bool cudnn_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, const attn::Dims& a, Tensor& dq, Tensor& dk,
                              Tensor& dv) {
  const int dev = dq.device().index;
  const std::shared_ptr<Plan> p = plan_for(false, a, dev, dk.dim(1));
  if (!p) return false;
  const size_t ws = align256(size_t(p->workspace));
  const size_t sum_bytes = align256(size_t(a.B) * a.H * a.T * sizeof(float));
  const size_t acc_bytes = p->dq_accum ? size_t(a.B) * a.H * a.T * a.D * sizeof(float) : 0;
  char* scratch = static_cast<char*>(cuda::scratch(dev, ws + sum_bytes + acc_bytes));
  if (acc_bytes) WICK_CUDA_CHECK(cudaMemsetAsync(scratch + ws + sum_bytes, 0, acc_bytes, cuda::stream_of(dq)));
  auto in = [](const Tensor& t) { return const_cast<void*>(static_cast<const void*>(cuda::cptr<cuda::bf16>(t))); };
  const std::vector<int64_t> uids = {p->q,  p->k,  p->v,  p->o,           p->dout,      p->stats,
                                     p->dq, p->dk, p->dv, p->softmax_sum, p->scale_uid, p->neg_inf_uid,
                                     p->one_uid};
  const std::vector<void*> ptrs = {in(q),
                                   in(k),
                                   in(v),
                                   in(out),
                                   in(dout),
                                   const_cast<float*>(cuda::cptr<float>(lse)),
                                   cuda::ptr<cuda::bf16>(dq),
                                   cuda::ptr<cuda::bf16>(dk),
                                   cuda::ptr<cuda::bf16>(dv),
                                   scratch + ws,
                                   &p->scale,
                                   &p->neg_inf,
                                   &p->one};
  std::vector<int64_t> uids_all = uids;
  std::vector<void*> ptrs_all = ptrs;
  if (acc_bytes) uids_all.push_back(p->dq_accum), ptrs_all.push_back(scratch + ws + sum_bytes);
  cudnn::execute(cudnn::handle(dev), *p->plan, uids_all, ptrs_all, p->workspace ? scratch : nullptr,
                 cuda::stream_of(dq));
  return true;
}

}  // namespace wick::cuda_ops

std::string wick::cuda_attention_unavailable() {
  return wick::cuda_ops::cudnn::api() ? std::string() : wick::cuda_ops::cudnn::load_error();
}

std::string wick::cuda_attention_summary() {
  const std::string flash = "wick's FlashAttention-2 kernels";
  if (cuda_attention() == CudaAttention::kFlash) return flash + " (WICK_ATTENTION=flash)";
  const std::string why = cuda_attention_unavailable();
  if (!why.empty()) return flash + " (cuDNN not loaded: " + why + ")";
  const int v = wick::cuda_ops::cudnn::version();
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) +
         " fused attention where it applies (plain causal), " + flash + " for the rest";
}

#else  // built without cuDNN's headers: wick's kernels run every call

namespace wick::cuda_ops {
bool cudnn_attention_forward(const Tensor&, const Tensor&, const Tensor&, const attn::Dims&, Tensor&, Tensor*) {
  if (cuda_attention() == CudaAttention::kCudnn)
    throw Error("CUDA attention is set to cuDNN (WICK_ATTENTION=cudnn) but this wick was built without cuDNN");
  return false;
}
bool cudnn_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const attn::Dims&, Tensor&, Tensor&, Tensor&) {
  return false;
}

}  // namespace wick::cuda_ops

std::string wick::cuda_attention_unavailable() { return "this wick was built without cuDNN's headers"; }
std::string wick::cuda_attention_summary() {
  return "wick's FlashAttention-2 kernels (built without cuDNN's headers)";
}

#endif  // WICK_HAVE_CUDNN
