// Causal self-attention with grouped kv heads: query head h reads kv head h / (H / Hkv).
// scores = q.k * scale (+ causal mask, optional sliding window), softmax in f32, out = P.v.
#pragma once
#include <string>

#include "core/tensor.h"

namespace wick {

struct AttentionArgs {
  float scale = 0.0f;  // usually 1/sqrt(D)
  // Number of valid key positions in k/v (<= k.dim(1), the cache capacity). Query t of T sits at absolute
  // position kv_len - T + t and attends to key positions [0, kv_len - T + t]. kv_len = T for training.
  int64_t kv_len = 0;
  // Optional segment ids [B, T] i32 (packing): query t attends only to keys with the same segment id.
  // Only valid when kv_len == T (no cache). Null = one segment per row.
  const Tensor* segments = nullptr;
  // Sliding window (Gemma 3's sliding layers, transformers' sliding_window_overlay): > 0 = the query at
  // absolute position p sees only keys at positions in (p - window, p], i.e. its last `window` positions
  // itself included. 0 = none; a window >= kv_len hides nothing and is treated as none.
  int64_t window = 0;
  // Optional query positions [B, T] i32 on the tensors' device (a decode step replayed as a CUDA graph): query
  // t of row b sits at positions[b, t] (< kv_len, non-decreasing in t) and sees the keys up to it; kv_len then
  // only bounds the keys (the cache length planned for). The kernels read the positions on the device, so a
  // graph captured once runs at every cache length. Null: kv_len - T + t. Not with segments, not in backward;
  // on CUDA it takes the CUDA-core kernels.
  const Tensor* positions = nullptr;
};

// Which CUDA kernels run: bf16 with head dim 64 or 128 and at least kFlashMinT queries takes the tensor-core
// FlashAttention-2 kernels (ops/cuda/flash_attention_*.cuh); everything else (f32, the exactness path;
// other head dims; decode with a few queries, where the split-key kernel fills the GPU; a sliding window,
// which only they implement) the CUDA-core kernels (ops/cuda/attention.cu, attention_backward.cu). The op
// tests name their cases by it. window: AttentionArgs::window after the op's normalisation (0: none).
constexpr int64_t kFlashMinT = 16;
inline bool attention_cuda_flash(DType dt, int64_t T, int64_t D, int64_t window = 0) {
  return window == 0 && dt == DType::BF16 && (D == 64 || D == 128) && T >= kFlashMinT;
}

// Which implementation runs the bf16 calls that take the tensor-core path on CUDA: cuDNN's fused attention
// where it applies (plain causal: no packed segments, no KV-cache offset) and can be loaded, else wick's
// FlashAttention-2 kernels (kAuto); wick's kernels always (kFlash); cuDNN, failing loudly where it cannot
// run (kCudnn). The default comes from WICK_ATTENTION=auto|flash|cudnn; tests switch it to check both.
enum class CudaAttention { kAuto, kFlash, kCudnn };
CudaAttention cuda_attention();
void set_cuda_attention(CudaAttention which);
// cuDNN's deterministic backward keeps dP (about B H T^2 bf16) in its workspace: 7.5 GB for one 16k-token row
// of a 0.5B model. Above this many bytes the non-deterministic form is built instead (an f32 dQ that the engine
// accumulates atomically: a few MB, but results vary in the last bits from run to run), with a warning. Default
// 1 GiB, or WICK_ATTENTION_DETERMINISTIC_MAX_MB (-1: deterministic at every size; so is any negative cap set here).
int64_t cuda_attention_deterministic_cap();
void set_cuda_attention_deterministic_cap(int64_t bytes);

// Why cuDNN's attention cannot run in this process ("" when it can: built with its headers, library loaded;
// a build without CUDA says so).
std::string cuda_attention_unavailable();
// One line for `wick info`: which implementation bf16 attention uses here, and why.
std::string cuda_attention_summary();

// q [B, T, H, D], k [B, S, Hkv, D], v [B, S, Hkv, D] (S >= kv_len) -> out [B, T, H, D] (=),
// lse [B, H, T] f32 (=, log-sum-exp of the scaled scores per query; kept for backward; may be null)
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& args, Tensor& out,
                       Tensor* lse);
// dout [B, T, H, D], out, lse (from forward, kv_len == T) -> dq [B, T, H, D] (=), dk, dv [B, T, Hkv, D] (=)
void attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                        const Tensor& lse, const AttentionArgs& args, Tensor& dq, Tensor& dk, Tensor& dv);

// A cached forward's RoPE, KV-cache append and attention: exactly rope_qk_cache_write(q, k, v, positions, f,
// k_cache, v_cache) (ops/rope.h: q rotated in place, the rotated keys and the values at rows positions[b, t] of the
// caches), then attention_forward(q, k_cache, v_cache viewed [B, S, Hkv, D], args, out, lse). k is scratch: it may
// be left rotated or as it was (the rotated keys are in k_cache). On CUDA a decode step (T = 1, args.positions the
// same tensor as positions, the one-launch decode kernel's shapes) runs it all in ONE launch: each block rotates
// its queries and its kv head's key as it loads them, stores the key and value rows, and attends (bit for bit the
// two ops' q, caches, out and lse); anything else runs the two ops. WICK_ROPE_ATTENTION=0 turns the one-launch form
// off.
struct RopeFreqs;
// The one-launch form's early cache loads: whether its blocks read the position and their first keys and values
// from the caches before waiting for the kernel before them (programmatic dependent launch), so that those reads
// overlap that kernel's tail. Same arithmetic, same bits. It needs positions and the cache rows below them written
// at least two launches before (as a decode step has them: positions copied in before its first kernel, the rows
// appended by earlier steps). On by default (H200: 1.5B decode +1.3%, 0.5B +1.3-3%, docs/benchmarks.md 8m);
// WICK_DECODE_EARLY_LOADS=0 (read once) turns it off; set_decode_early_loads is the tests' switch (it applies to
// launches and captures after it).
bool decode_early_loads();
void set_decode_early_loads(bool on);
// The one-launch decode kernel's key split: a query head's keys walked by `n` blocks, each a contiguous part, the
// last to finish merging the parts in a fixed order (the same bits every run; other bits than one block a head).
// 0: wick's rule (one block a head up to 512 keys; beyond, as many parts, up to 8, as keep the batch's heads within
// one block an SM); WICK_DECODE_SPLITS=N (1, 2, 4 or 8) fixes it at every length, read once; set_decode_splits is
// the tests' switch (launches and captures after it).
int decode_splits_forced();
void set_decode_splits(int n);
void rope_cache_attention(Tensor& q, Tensor& k, const Tensor& v, const Tensor& positions, const RopeFreqs& f,
                          Tensor& k_cache, Tensor& v_cache, const AttentionArgs& args, Tensor& out, Tensor* lse);

// The KV-cache append of a decode or prefill step: k_rows, v_rows [B, T, X] (this step's keys and values,
// X = Hkv * D) -> k_cache, v_cache [B, S, X] at row positions[b, t] of batch item b (=); other rows untouched.
// positions [B, T] i32 in [0, S), on the tensors' device, where the copy reads them: a replayed decode graph
// writes where the positions say. One dtype for all four. A position outside [0, S) is a wick::Error on the CPU,
// a device assert on CUDA. One launch on CUDA.
void kv_cache_write(const Tensor& k_rows, const Tensor& v_rows, const Tensor& positions, Tensor& k_cache,
                    Tensor& v_cache);

}  // namespace wick
