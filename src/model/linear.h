// A frozen linear layer of the model, optionally wrapped by a LoRA adapter (unmerged, as PEFT runs it):
//   y = x W^T + b + scale * (dropout(x) A^T) B^T
// W [out, in] and b [out] are frozen, in the compute dtype (bf16 on CUDA, f32 on CPU). A [r, in], B [out, r]
// and their gradients are f32 (PEFT upcasts adapters to f32). In bf16 the adapter path runs in f32 on an
// f32 copy of x and is added to the bf16 base output with one rounding, as PEFT does (result.to(bf16)).
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace wick {

struct LoraSlot {
  Tensor A, B;         // [r, in], [out, r] f32, on the model's device
  Tensor dA, dB;       // gradients (+=), allocated when training
  float scale = 0.0f;  // alpha / r (or alpha / sqrt(r) with rsLoRA)
  float dropout = 0.0f;
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

// f32 scratch for the adapter path, big enough for [N, max(in, out)] of every linear (undefined when the
// model computes in f32: then x and y are used directly).
struct LinearScratch {
  Tensor a32;  // [cap] f32
  Tensor b32;  // [cap] f32
  Tensor r32;  // [cap_r] f32 for [N, r] products
  Tensor d32;  // [cap] f32: the adapter input after dropout (training with dropout only)
};

// x [N, in] (compute dtype), x32: x in f32 [N, in] (x itself in f32 mode) -> y [N, out] (=).
// u [N, r] f32 receives dropout(x32) A^T (kept for backward). dropout_seed != 0 applies the adapter's
// dropout (training) with a mask that is a pure function of the seed (ops/dropout.h).
void linear_forward(const Linear& l, const Tensor& x, const Tensor& x32, Tensor& y, Tensor* u, LinearScratch& s,
                    uint64_t dropout_seed = 0);

// dy [N, out] -> dx [N, in] (= when accumulate is false, += otherwise); dA, dB (+=) from x32 and u of the
// forward (same dropout_seed). W and b are frozen and get no gradient.
void linear_backward(Linear& l, const Tensor& dy, const Tensor& x32, const Tensor& u, Tensor& dx, bool accumulate,
                     LinearScratch& s, uint64_t dropout_seed = 0);

}  // namespace wick
