// A frozen linear layer of the model, optionally wrapped by a LoRA adapter (unmerged, as PEFT runs it):
//   y = x W^T + b + scale * (dropout(x) A^T) B^T
// W [out, in] and b [out] are frozen, in the compute dtype (bf16 on CUDA, f32 on CPU). A [r, in], B [out, r]
// and their gradients are f32 masters (PEFT upcasts adapters to f32; the optimizer updates them).
// The adapter's product u = dropout(x) A^T [N, r] is what backward keeps (dB = scale dy^T u).
//
// f32 compute: the adapter runs in f32 on x itself: y = x W^T + b, then y += scale u B^T.
// bf16 compute: the adapter GEMMs take bf16 inputs with f32 accumulation, as PyTorch autocast runs PEFT's
// adapters: x as it is (no f32 copy), bf16 copies A16, B16 of the masters (cast at every forward, one cast per
// group), u saved in bf16. The adapter term goes first into y (bf16), then the base GEMM adds
// x W^T + b to it with beta = 1 in its f32 epilogue: y = round(x W^T + b + round(scale u B^T)). cuBLASLt takes
// C and D of one dtype for bf16 inputs, so this is the one order that needs no f32 [N, out] buffer; the inner
// rounding is of the (small) adapter term, where PEFT without autocast rounds the (large) base term instead:
// round(round(x W^T + b) + lora). Backward likewise: dB += scale dy^T u and dA += du^T x (f32 grads),
// du = scale dy B (bf16), dx gets du A first, then the base dy W with beta = 1. A linear's (or a group's) dB and
// dA go to one weight_grad_products (ops/weight_grads.h: one launch on CUDA) once du and x are there.
//
// Groups: linears reading one input (q, k, v; gate, up) run x A^T as one GEMM over their stacked A's, and
// dA += du^T x and dx += du A likewise, when attach laid their adapters out contiguously (pack_lora_group).
// A group's products are kept side by side: u [N, R] (R the sum of the members' ranks), member j's the
// columns [off_j, off_j + r_j).
//
// Folded groups (training, either dtype; folded_group_forward): the group's input x and its products u sit
// side by side in one [N, in + R] buffer xu, so that each member is ONE GEMM over the K-concatenation:
// y = [x | u] [W | 0 .. scale B .. 0]^T + b, one rounding, against a folded copy of the member's weights
// (LoraSlot::folded). It saves the unfolded path's second pass over y ([N, out] written by the adapter term
// and read back by the base GEMM), at the cost of that copy (one more copy of the group's weights).
//
// Inference without adapters on CUDA over N <= kSmallMMaxRows rows: one small_m_linear for the whole group
// (ops/small_m_linear.h), see linear_group_forward.
// Inference (linear_group_forward with saved undefined, no dropout) on CUDA over N <= kLowRankFusedMaxRows
// rows: each adapter's scale (x A^T) B^T is one fused low_rank_product (ops/low_rank.h), u kept in f32 (f32:
// added to the base output; bf16: written into y first, then the base GEMM with beta = 1, as above). Training
// and the CPU keep the GEMMs above.
#pragma once
#include <functional>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/small_m_linear.h"

namespace wick {

struct LoraSlot {
  Tensor A, B;         // [r, in], [out, r] f32, on the model's device
  Tensor dA, dB;       // gradients (+=), allocated when training
  float scale = 0.0f;  // alpha / r (or alpha / sqrt(r) with rsLoRA)
  float dropout = 0.0f;
  // bf16 compute only: A16 [r, in], B16 [out, r] bf16 copies of A, B, refreshed at every forward (a cache,
  // hence mutable). pack32 / pack16: the f32 block holding A and B of this linear's group and its bf16 twin
  // (undefined when A, B stand alone; see pack_lora_group).
  mutable Tensor A16, B16;
  Tensor pack32, pack16;
  // Folded groups only: [W | 0 .. scale B .. 0], [out, in + R] in the compute dtype, for a group of rank R with
  // this adapter's columns at in + folded_at (W copied when made; scale B rewritten at every forward). A cache of
  // the frozen W and the masters (hence mutable); undefined until a folded forward needs it.
  mutable Tensor folded;
  mutable int64_t folded_at = -1;
  bool active() const { return A.defined(); }
  int64_t rank() const { return A.defined() ? A.dim(0) : 0; }
};

struct Linear {
  std::string name;  // Hugging Face module path, e.g. "model.layers.0.self_attn.q_proj"
  Tensor w;          // [out, in]
  Tensor b;          // [out] or undefined
  LoraSlot lora;
  int64_t in() const { return w.dim(1); }
  int64_t out() const { return w.dim(0); }
};

// Scratch of the adapter path, grown on demand (stream-ordered allocations; kept at the largest size).
struct LinearScratch {
  Tensor a32;  // f32: the adapter's dx term before dropout (f32 compute with dropout)
  Tensor r32;  // [N, r] f32 products (f32 compute)
  Tensor xc;   // a view's elements made contiguous for the dropout (folded groups)
  Tensor dxu;  // folded groups' backward: [N, in + R], the base dx beside every member's du
  Tensor d32;  // the adapter input after dropout (f32 compute with dropout)
  Tensor u16;  // bf16: [N, sum r] u when the caller keeps none, and du in backward
  Tensor d16;  // bf16: [N, in] dropout(x), and the adapter's dx term with dropout
  // i64 [1] on the device: the micro-batch's dropout seed, read by the dropout kernels when they run (a training
  // step replayed as a CUDA graph draws the masks of the seed uploaded before it). Set by whoever runs with
  // dropout (LossAndGrads); ops/dropout.h mixes it with each adapter's dropout mix.
  Tensor dropout_seed;
  // The adapters' bf16 copies (LoraSlot::A16, B16) and folded weights are current: nothing wrote the f32 masters
  // since they were refreshed. The forward then skips the casts (refresh16) and the folded weights' copies, and
  // reads the copies as settled weights. Set only for the duration of one decode step of a decode loop after its
  // first (CausalLM::decode_step) and of one training step after refresh_adapters (LossAndGrads).
  bool adapters_current = false;
};

// ---- one linear (the form the decoder layer has always called) ----
// x [N, in] (compute dtype) -> y [N, out] (=). x32: x in f32 (x itself in f32 mode); ignored in bf16, where the
// adapter reads x. u receives what backward needs: f32 mode, [N, r] f32 = dropout(x32) A^T; bf16 mode, the same
// memory holds u [N, r] in bf16 (u may be that bf16 [N, r] tensor, or any tensor of at least 2 N r bytes).
// u null: kept in scratch. dropout_mix != 0 applies the adapter's dropout (training) with the mask of
// (s.dropout_seed, dropout_mix) (ops/dropout.h): the micro-batch's seed mixed with the adapter's place.
void linear_forward(const Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, Tensor* u, LinearScratch& s,
                    uint64_t dropout_mix = 0);

// dy [N, out] -> dx [N, in] (= when accumulate is false, += otherwise); dA, dB (+=) from x32 and u of the
// forward (same dropout_mix). bf16 mode: pass x itself as x32 (an f32 copy of x still works: it is rounded
// back, exactly, at the cost of a cast). W and b are frozen and get no gradient.
void linear_backward(Linear& l, const Tensor& dy, const Tensor& x32, const Tensor& u, Tensor& dx, bool accumulate,
                     LinearScratch& s, uint64_t dropout_mix = 0);

// ---- a group of linears reading one input x (q, k, v; gate, up; or one alone) ----
// saved: [N, lora_group_rank(ls)] in the compute dtype (undefined: scratch, for inference): u of every
// adapter side by side (u_j [N, r_j] the columns from sum r_<j).
// mixes: one dropout mix per linear (null: no dropout; see linear_forward). Same numbers as one linear_forward
// per member, but one x A^T GEMM (and one dA, one dx GEMM in backward) for the group when its adapters are packed.
int64_t lora_group_rank(const std::vector<Linear*>& ls);
// inference: the caller keeps nothing for a backward (the model's forward, serve; never training nor its
// evaluation). With saved undefined, on CUDA, over N <= kSmallMMaxRows rows and no member with an adapter, the
// group then runs as ONE small_m_linear (ops/small_m_linear.h: bandwidth-bound decode projections) instead of
// one GEMM per member. Same rounding as the GEMMs (f32 sums, bias added in f32, one rounding), another order.
// input_norm (decode): x is the input of that RMSNorm, which the small_m launch does (ops/small_m_linear.h
// SmallMNorm); only where small_m_takes says the group takes that path (an error otherwise).
void linear_group_forward(const std::vector<Linear*>& ls, const Tensor& x, const std::vector<Tensor*>& ys,
                          Tensor& saved, LinearScratch& s, const uint64_t* mixes = nullptr, bool inference = false,
                          const SmallMNorm* input_norm = nullptr);
// Whether linear_group_forward takes the small_m_linear path for these arguments (the MLP asks it of its
// gate/up group before fusing the GLU, and a decoder layer of its groups before it moves its norms into their
// launches: model/layer.cpp): inference over a few rows on CUDA, nothing saved, the members' weights in x's
// dtype, and either no member with an adapter, or adapters the kernel adds (bf16, no dropout, the group packed).
bool small_m_takes(const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved, const uint64_t* mixes,
                   bool inference);
// Where small_m_takes: each member's projection and its adapter term run in the one small_m launch
// (SmallMLowRank), after one launch computing u = x A^T for every adapter of the group (into the scratch s.r32,
// with input_norm as the projections take it), which is queued here, and `lr` holds the terms for small_m_linear /
// small_m_glu. On false nothing was queued.
struct SmallMAdapters {
  SmallMLowRank terms;  // terms.u points at u_store (terms.u null: no adapter terms)
  Tensor u_store;       // [N, R] f32
};
bool small_m_group(const std::vector<Linear*>& ls, const Tensor& x, const Tensor& saved, const uint64_t* mixes,
                   bool inference, LinearScratch& s, SmallMAdapters& lr, const SmallMNorm* input_norm = nullptr);
// dys [N, out_j] -> dx [N, in] (= or +=), dA, dB (+=).
void linear_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys, const Tensor& x,
                           const Tensor& saved, Tensor& dx, bool accumulate, LinearScratch& s,
                           const uint64_t* mixes = nullptr);
// The same with x given late. For one linear, or a group whose adapters are stacked (one dA GEMM), every
// product that does not read x (du, dx) is computed first, then late_x() is called - once, and only if some
// member has an adapter - and the weight gradients (dB, dA) follow: a caller that did not keep x can rebuild it
// there from the finished dx (the MLP's GLU output, over its own gradient: model/layer.cpp). Other groups of
// several linears take x before the first member's backward.
using LateInput = std::function<const Tensor&()>;
void linear_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys,
                           const LateInput& late_x, const Tensor& saved, Tensor& dx, bool accumulate, LinearScratch& s,
                           const uint64_t* mixes = nullptr);

// ---- a folded group (see the top): training, any member may lack an adapter ----
// xu [N, in + R] (R = lora_group_rank(ls) > 0) in the compute dtype: its first `in` columns hold the group's
// input x (written there by its producer: the RMSNorm's view form, ops/norm.h); forward writes u into the last
// R columns (as saved above) and ys (=); backward reads x and u there, as linear_group_backward reads x and saved.
// Values: those of linear_group_forward / backward up to the rounding order (one rounding of the whole sum).
// Backward (without dropout, accumulate false, stacked adapters: what training runs) takes each member's du
// from its folded weight in the base dx GEMMs ([dy W | scale dy B] in one [N, in + R] product), so dy is read
// once less per member.
void folded_group_forward(const std::vector<Linear*>& ls, const Tensor& xu, const std::vector<Tensor*>& ys,
                          LinearScratch& s, const uint64_t* mixes = nullptr);
void folded_group_backward(const std::vector<Linear*>& ls, const std::vector<const Tensor*>& dys, const Tensor& xu,
                           Tensor& dx, bool accumulate, LinearScratch& s, const uint64_t* mixes = nullptr);
// Training, before a step's forward: every adapter's bf16 copies (refresh16's casts: one a packed block, two a
// stand-alone adapter) and every existing folded weight's scale B columns from the f32 masters, all in one
// copy_matrices (ops/elementwise.h: a few launches, where the forward's own refreshes are ~200 launches of a few
// microseconds on a 24-layer model). The caller may then set LinearScratch::adapters_current for that step's
// forward (a folded weight made or re-laid out there is still filled by the forward).
void refresh_adapters(const std::vector<Linear*>& linears);
// Bytes of the folded weights a group of these linears makes ([out_j, in + R] each, in the compute dtype dt).
int64_t folded_group_bytes(const std::vector<Linear*>& ls, DType dt);

// Lays the active adapters of a group out in one f32 block [A_1; ..; A_n | B_1 | .. | B_n] on their device
// (values copied; A, B become views), plus its bf16 twin when the layer computes in bf16. Called by attach.
void pack_lora_group(const std::vector<Linear*>& ls);
// The gradients likewise: one zeroed f32 block, dA_j, dB_j views of it in the same layout.
void pack_lora_grads(const std::vector<Linear*>& ls);

}  // namespace wick
