// Argument checks shared by the public ops (ops/<family>.cpp), and the device dispatch macro.
// Internal to ops/: every failure is a wick::Error worded as
//   "rms_norm_forward: x f32[4, 7] cpu and w f32[8] cpu: w must be [C] = [7]"
// i.e. the op, the tensors involved, and what was expected.
#pragma once
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/matrix_view.h"
#include "ops/cpu/cpu_ops.h"
#ifdef WICK_CUDA
#include "ops/cuda/cuda_ops.h"
#endif

namespace wick::ops_detail {

// A tensor argument and the name the header gives it.
struct Arg {
  const char* name;
  const Tensor* t;
};
using Args = std::vector<Arg>;

std::string describe(const Arg& a);  // "x f32[4, 7] cpu"
[[noreturn]] void fail(const char* op, const Args& involved, const std::string& must, const std::string& hint = "");
[[noreturn]] void no_cuda(const char* op);

// Every tensor defined and on one device; returns that device.
Device one_device(const char* op, const Args& all);
void need_rank(const char* op, Arg a, int rank, const char* dims);        // "x must be rank 2 [N, C]"
// "w must be [C] = [7]"; involved lists the tensors the expected shape was derived from (and a).
void need_shape(const char* op, const Args& involved, Arg a, const Shape& want, const char* symbolic);
void need_dtype(const char* op, Arg a, DType want);                       // "rstd must be f32"
void need_same_dtype(const char* op, Arg a, Arg ref);                     // "y must have x's dtype (f32)"
// Activations: f32 on the CPU (which computes in f32), f32 or bf16 on CUDA.
void need_act(const char* op, Arg a);
// f32 or bf16 on any device (ops whose CPU twin widens bf16: matmul, cross entropy, elementwise).
void need_float(const char* op, Arg a);
void need_index(const char* op, Arg a, bool allow_i64);                   // i32 (or i64) ids

// The sampling ops (ops/sampling.h, ops/sampling_pool.h): logits [R, V] f32 with V in [1, 2^31 - 1], params
// [R, kSampleRowWords] i32 (one SampleRow a row), ids [R] i32. Defined in ops/sampling.cpp.
void check_sampling_args(const char* op, Arg logits, Arg params, Arg ids);

// kv_cache_write's arguments (ops/attention.h; also rope_qk_cache_write's): k_rows, v_rows [B, T, X], positions
// [B, T] i32 (in [0, S) when on the CPU), k_cache, v_cache [B, S, X], one dtype. Defined in ops/attention.cpp.
Device check_kv_cache_write(const char* op, const Tensor& k_rows, const Tensor& v_rows, const Tensor& positions,
                            const Tensor& k_cache, const Tensor& v_cache);

// rope_qk_cache_write's arguments (ops/rope.h; also rope_cache_attention's): q [B, T, H, D], k, v [B, T, Hkv, D],
// positions [B, T] i32, f, and kv_cache_write's for k, v as [B, T, Hkv * D]. Defined in ops/rope.cpp.
Device check_rope_qk_cache_write(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& positions, const RopeFreqs& f, const Tensor& k_cache,
                                 const Tensor& v_cache);
// attention_forward's arguments (ops/attention.h; also rope_cache_attention's). Defined in ops/attention.cpp.
Device check_attention_forward(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionArgs& args, const Tensor& out, const Tensor* lse);

// Matrix views (ops/matrix_view.h). Defined in ops/matrix_view.cpp.
std::string view_str(const char* name, const MatrixView& v);  // "a's view [3 x 5, ld 20] at offset 4"
// The view is over a defined tensor, its geometry is sane (ld >= cols) and it lies inside the tensor's elements.
void need_view_inside(const char* op, const char* name, const MatrixView& v);
// Whether two views may share an element (byte addresses, so any dtypes and storages). Disjoint byte ranges
// never do; views of one row stride whose column ranges are disjoint modulo the stride never do (column
// blocks of one buffer); anything else counts as overlapping.
bool may_overlap(const MatrixView& x, const MatrixView& y);

// Row-wise ops: x [N, C] an activation; each of `same` [N, C] and each of `vec` [C] of x's dtype; each
// of `stats` [N] f32. All on one device, which is returned.
Device check_rows(const char* op, Arg x, const Args& same, const Args& vec, const Args& stats);

}  // namespace wick::ops_detail

// Calls wick::cpu::fn(...) or wick::cuda_ops::fn(...) by device; a CUDA device in a build without CUDA
// is a wick::Error (no tensor can live there, but say so clearly anyway).
#ifdef WICK_CUDA
#define WICK_OP_DISPATCH(op, dev, fn, ...)          \
  do {                                              \
    if ((dev).is_cpu()) ::wick::cpu::fn(__VA_ARGS__); \
    else ::wick::cuda_ops::fn(__VA_ARGS__);           \
  } while (0)
#else
#define WICK_OP_DISPATCH(op, dev, fn, ...)          \
  do {                                              \
    if ((dev).is_cpu()) ::wick::cpu::fn(__VA_ARGS__); \
    else ::wick::ops_detail::no_cuda(op);             \
  } while (0)
#endif
