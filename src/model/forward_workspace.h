// Buffers of the inference forward, allocated for the largest B*T seen and reused: decoding token by token
// allocates nothing after the first step. The layer activations are one shared LayerActs (model/layer.h),
// viewed for the current rows.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "model/layer.h"
#include "model/linear.h"

namespace wick {

struct ForwardWorkspace {
  int64_t cap_n = 0;     // rows (B*T) the buffers hold
  int64_t cap_rows = 0;  // rows of logits
  std::vector<ActSlot> slots;
  std::vector<Tensor> flat;  // one flat buffer per slot of layer_act_slots (inference ones)
  Tensor logits, last;   // flat buffers, viewed per call
  Tensor positions;      // [cap_n] i32 on the device
  Tensor ids;            // [cap_n] i32 on the device
  std::vector<int32_t> host_positions;
  LinearScratch lin;     // the adapter path's scratch (grows on demand)

  // Makes sure the buffers hold n rows (and logits for `rows` rows).
  void reserve(const ModelConfig& c, Device dev, DType dt, int64_t n, int64_t rows);
  // The layer activations for N rows (views of the flat buffers).
  LayerActs acts(int64_t N) const;
};

// A [rows, cols] view at the front of a flat buffer.
Tensor rows_view(const Tensor& buf, int64_t rows, int64_t cols);

}  // namespace wick
