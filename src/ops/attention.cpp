// Causal GQA attention (optionally with a sliding window): validation and dispatch.
// Dtypes: q, k, v, out (dout, dq, dk, dv) share the activation dtype; lse is f32; segments i32.
#include "ops/attention.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/env.h"
#include "ops/rope.h"
#include "ops/validate.h"

namespace wick {

using ops_detail::Arg;
using ops_detail::fail;

namespace {
CudaAttention from_env() {
  const char* e = std::getenv("WICK_ATTENTION");
  if (!e || !*e || std::strcmp(e, "auto") == 0) return CudaAttention::kAuto;
  if (std::strcmp(e, "flash") == 0) return CudaAttention::kFlash;
  if (std::strcmp(e, "cudnn") == 0) return CudaAttention::kCudnn;
  throw Error(std::string("WICK_ATTENTION=") + e + ": expected auto, flash or cudnn");
}
std::atomic<int> g_cuda_attention{-1};  // -1: not read from the environment yet
}  // namespace

CudaAttention cuda_attention() {
  int v = g_cuda_attention.load();
  if (v < 0) {
    v = static_cast<int>(from_env());
    g_cuda_attention.store(v);
  }
  return static_cast<CudaAttention>(v);
}
void set_cuda_attention(CudaAttention which) { g_cuda_attention.store(static_cast<int>(which)); }

namespace {
int64_t cap_from_env() {
  // MB up to 2^40 (the shift stays in range), or -1: deterministic at every size.
  const auto mb = env_int("WICK_ATTENTION_DETERMINISTIC_MAX_MB", -1, int64_t(1) << 40,
                          "a number of MB (-1: deterministic at every size)");
  if (!mb) return int64_t(1) << 30;
  return *mb < 0 ? -1 : *mb << 20;
}
std::atomic<int64_t> g_det_cap{INT64_MIN};  // INT64_MIN: not read from the environment yet
}  // namespace

int64_t cuda_attention_deterministic_cap() {
  int64_t v = g_det_cap.load();
  if (v == INT64_MIN) {
    v = cap_from_env();
    g_det_cap.store(v);
  }
  return v;
}
void set_cuda_attention_deterministic_cap(int64_t bytes) { g_det_cap.store(bytes < 0 ? -1 : bytes); }

// Shapes and args common to forward and backward; returns the device.
static Device check_attention(const char* op, Arg q, Arg k, Arg v, const AttentionArgs& args, const Arg* extra,
                              size_t n_extra) {
  ops_detail::Args all{q, k, v};
  for (size_t i = 0; i < n_extra; i++) all.push_back(extra[i]);
  if (args.segments) all.push_back({"args.segments", args.segments});
  if (args.positions) all.push_back({"args.positions", args.positions});
  const Device dev = ops_detail::one_device(op, all);
  ops_detail::need_rank(op, q, 4, "[B, T, H, D]");
  ops_detail::need_rank(op, k, 4, "[B, S, Hkv, D]");
  ops_detail::need_act(op, q);
  ops_detail::need_same_dtype(op, k, q);
  ops_detail::need_same_dtype(op, v, q);
  const int64_t B = q.t->dim(0), T = q.t->dim(1), H = q.t->dim(2), D = q.t->dim(3);
  const int64_t S = k.t->dim(1), Hkv = k.t->dim(2);
  if (k.t->dim(0) != B || k.t->dim(3) != D)
    fail(op, {q, k}, "k must be [B, S, Hkv, D] with B = " + std::to_string(B) + " and D = " + std::to_string(D));
  ops_detail::need_shape(op, {k, v}, v, k.t->shape(), "k's shape [B, S, Hkv, D]");
  if (Hkv <= 0 || H % Hkv != 0)
    fail(op, {q, k}, "the query heads H must be a multiple of the kv heads Hkv (grouped-query attention)");
  if (!(args.scale > 0.0f) || !std::isfinite(args.scale))
    fail(op, {q}, "args.scale must be a positive finite number (usually 1/sqrt(D)), got " + std::to_string(args.scale));
  if (args.kv_len < T || args.kv_len > S)
    fail(op, {q, k},
         "args.kv_len = " + std::to_string(args.kv_len) + " must be in [T, S] = [" + std::to_string(T) + ", " +
             std::to_string(S) + "] (the T queries are the last T of kv_len positions)");
  if (args.window < 0) fail(op, {q}, "args.window must be >= 0 (0: no sliding window), got " + std::to_string(args.window));
  if (args.segments) {
    const Arg sg{"args.segments", args.segments};
    ops_detail::need_index(op, sg, false);
    ops_detail::need_shape(op, {q, sg}, sg, {B, T}, "[B, T]");
    if (args.kv_len != T) fail(op, {q, k, sg}, "segment ids (packing) need kv_len == T (no KV cache)");
  }
  if (args.positions) {
    const Arg ps{"args.positions", args.positions};
    ops_detail::need_index(op, ps, false);
    ops_detail::need_shape(op, {q, ps}, ps, {B, T}, "[B, T]");
    if (args.segments) fail(op, {q, ps}, "query positions and segment ids (packing) do not go together");
    if (args.positions->device().is_cpu()) {  // on a GPU the kernels clamp; the host cannot look without a sync
      const int32_t* p = args.positions->data<int32_t>();
      for (int64_t i = 0; i < B * T; i++)
        if (p[i] < 0 || p[i] >= args.kv_len || (i % T > 0 && p[i] < p[i - 1]))
          fail(op, {q, ps}, "args.positions must be non-decreasing along T and in [0, kv_len = " +
                                std::to_string(args.kv_len) + "), got " + std::to_string(p[i]) + " at " + std::to_string(i));
    }
  }
  return dev;
}

// The args the backends get: a window that hides nothing (>= kv_len) is no window, so that plain causal
// calls keep every fast path.
static AttentionArgs normalised(const AttentionArgs& args) {
  AttentionArgs a = args;
  if (a.window >= a.kv_len) a.window = 0;
  return a;
}

Device ops_detail::check_attention_forward(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                           const AttentionArgs& args, const Tensor& out, const Tensor* lse) {
  const Arg Q{"q", &q}, K{"k", &k}, V{"v", &v}, O{"out", &out};
  Arg extra[2] = {O, {"lse", lse}};
  const Device dev = check_attention(op, Q, K, V, args, extra, lse ? 2 : 1);
  ops_detail::need_same_dtype(op, O, Q);
  ops_detail::need_shape(op, {Q, O}, O, q.shape(), "q's shape [B, T, H, D]");
  if (lse) {
    ops_detail::need_dtype(op, extra[1], DType::F32);
    ops_detail::need_shape(op, {Q, extra[1]}, extra[1], {q.dim(0), q.dim(2), q.dim(1)}, "[B, H, T]");
  }
  return dev;
}

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args, Tensor& out,
                       Tensor* lse) {
  static const char* op = "attention_forward";
  const Device dev = ops_detail::check_attention_forward(op, q, k, v, args, out, lse);
  WICK_OP_DISPATCH(op, dev, attention_forward, q, k, v, normalised(args), out, lse);
}

namespace {
KernelSwitch g_early_loads("WICK_DECODE_EARLY_LOADS", /*default_on*/ true);
}  // namespace
bool decode_early_loads() { return g_early_loads.on(); }
void set_decode_early_loads(bool on) { g_early_loads.set(on); }

namespace {
int decode_splits_from_env() {
  const char* e = std::getenv("WICK_DECODE_SPLITS");
  if (!e || !*e) return 0;
  const std::string v(e);
  if (v == "1" || v == "2" || v == "4" || v == "8") return std::stoi(v);
  throw Error("WICK_DECODE_SPLITS=" + v + ": expected 1, 2, 4 or 8 (or unset: wick's rule)");
}
std::atomic<int> g_decode_splits{-1};  // -1: not read from the environment yet
}  // namespace
int decode_splits_forced() {
  int v = g_decode_splits.load();
  if (v < 0) {
    v = decode_splits_from_env();
    g_decode_splits.store(v);
  }
  return v;
}
void set_decode_splits(int n) {
  if (n != 0 && n != 1 && n != 2 && n != 4 && n != 8)
    throw Error("set_decode_splits(" + std::to_string(n) + "): expected 0 (wick's rule), 1, 2, 4 or 8");
  g_decode_splits.store(n);
}

#ifndef WICK_CUDA
// A build without CUDA (-DWICK_CUDA=OFF, or no nvcc): the CUDA tests still build, and skip.
std::string cuda_attention_unavailable() { return "this wick was built without CUDA"; }
std::string cuda_attention_summary() { return "none (this wick was built without CUDA)"; }
#endif

void rope_cache_attention(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                          Tensor& k_cache, Tensor& v_cache, const AttentionArgs& args, Tensor& out, Tensor* lse) {
  static const char* op = "rope_cache_attention";
  const Device dev = ops_detail::check_rope_qk_cache_write(op, q, k, v, positions, f, k_cache, v_cache);
  const int64_t B = k.dim(0), S = k_cache.dim(1), Hkv = k.dim(2), D = k.dim(3);
  const Tensor kc4 = k_cache.view({B, S, Hkv, D}), vc4 = v_cache.view({B, S, Hkv, D});
  ops_detail::check_attention_forward(op, q, kc4, vc4, args, out, lse);
#ifdef WICK_CUDA
  if (dev.is_cuda() &&
      cuda_ops::rope_cache_attention(q, k, v, positions, f, k_cache, v_cache, normalised(args), out, lse))
    return;
#endif
  // The two ops' backends directly: their arguments were checked above.
  WICK_OP_DISPATCH(op, dev, rope_qk_cache_write, q, k, v, positions, f, k_cache, v_cache);
  WICK_OP_DISPATCH(op, dev, attention_forward, q, kc4, vc4, normalised(args), out, lse);
}

void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionArgs& args, Tensor& dq, Tensor& dk, Tensor& dv) {
  static const char* op = "attention_backward";
  const Arg Q{"q", &q}, K{"k", &k}, V{"v", &v};
  const Arg extra[6] = {{"dout", &dout}, {"out", &out}, {"lse", &lse}, {"dq", &dq}, {"dk", &dk}, {"dv", &dv}};
  const Device dev = check_attention(op, Q, K, V, args, extra, 6);
  const int64_t T = q.dim(1);
  if (args.kv_len != T || k.dim(1) != T || args.positions)
    fail(op, {Q, K}, "backward needs kv_len == T and k, v of T positions (training, no KV cache, no query positions)");
  for (int i : {0, 1, 3}) {
    ops_detail::need_same_dtype(op, extra[i], Q);
    ops_detail::need_shape(op, {Q, extra[i]}, extra[i], q.shape(), "q's shape [B, T, H, D]");
  }
  for (int i : {4, 5}) {
    ops_detail::need_same_dtype(op, extra[i], Q);
    ops_detail::need_shape(op, {K, extra[i]}, extra[i], k.shape(), "k's shape [B, T, Hkv, D]");
  }
  ops_detail::need_dtype(op, extra[2], DType::F32);
  ops_detail::need_shape(op, {Q, extra[2]}, extra[2], {q.dim(0), q.dim(2), T}, "[B, H, T]");
  WICK_OP_DISPATCH(op, dev, attention_backward, dout, q, k, v, out, lse, normalised(args), dq, dk, dv);
}

Device ops_detail::check_kv_cache_write(const char* op, const Tensor& k_rows, const Tensor& v_rows,
                                        const Tensor& positions, const Tensor& k_cache, const Tensor& v_cache) {
  const Arg R{"k_rows", &k_rows}, RV{"v_rows", &v_rows}, P{"positions", &positions}, C{"k_cache", &k_cache},
      CV{"v_cache", &v_cache};
  const Device dev = ops_detail::one_device(op, {R, RV, P, C, CV});
  ops_detail::need_rank(op, R, 3, "[B, T, X]");
  ops_detail::need_rank(op, C, 3, "[B, S, X]");
  ops_detail::need_same_dtype(op, C, R);
  ops_detail::need_same_dtype(op, RV, R);
  ops_detail::need_same_dtype(op, CV, R);
  ops_detail::need_shape(op, {R, RV}, RV, k_rows.shape(), "k_rows' shape [B, T, X]");
  ops_detail::need_shape(op, {C, CV}, CV, k_cache.shape(), "k_cache's shape [B, S, X]");
  ops_detail::need_index(op, P, false);
  const int64_t B = k_rows.dim(0), T = k_rows.dim(1), X = k_rows.dim(2), S = k_cache.dim(1);
  if (k_cache.dim(0) != B || k_cache.dim(2) != X)
    fail(op, {R, C}, "k_cache must be [B, S, X] with B = " + std::to_string(B) + " and X = " + std::to_string(X));
  ops_detail::need_shape(op, {R, P}, P, {B, T}, "[B, T]");
  if (positions.device().is_cpu()) {
    const int32_t* p = positions.data<int32_t>();
    for (int64_t i = 0; i < B * T; i++)
      if (p[i] < 0 || p[i] >= S)
        fail(op, {P, C}, "positions[" + std::to_string(i) + "] = " + std::to_string(p[i]) + " is outside the cache's [0, " +
                             std::to_string(S) + ")");
  }
  return dev;
}

void kv_cache_write(const Tensor& k_rows, const Tensor& v_rows, const Tensor& positions, Tensor& k_cache,
                    Tensor& v_cache) {
  static const char* op = "kv_cache_write";
  const Device dev = ops_detail::check_kv_cache_write(op, k_rows, v_rows, positions, k_cache, v_cache);
  WICK_OP_DISPATCH(op, dev, kv_cache_write, k_rows, v_rows, positions, k_cache, v_cache);
}

}  // namespace wick
