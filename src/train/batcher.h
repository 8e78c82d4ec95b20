// Turns a Dataset into micro-batches: a fresh permutation per epoch (from seed and epoch, so the position
// (epoch, index) is the whole state), padding to the longest example of the batch, labels shifted so that
// targets[b, t] = labels[b, t + 1] (what logits[b, t] predict), -100 on padding and the last position.
#pragma once
#include <cstdint>
#include <vector>

#include "model/qwen2_grad.h"
#include "train/dataset.h"

namespace wick {

struct BatcherState {
  int64_t epoch = 0;
  int64_t index = 0;  // next example within the epoch's order
};

class Batcher {
 public:
  Batcher(const Dataset& d, int64_t batch_size, bool shuffle, uint64_t seed, int32_t pad_id);
  TrainBatch next();  // advances across epochs
  int64_t batches_per_epoch() const;
  const BatcherState& state() const { return st_; }
  void restore(const BatcherState& s);
  double epoch_progress() const;  // epoch + fraction done

  // Builds one padded, shifted batch from examples (exposed for eval and tests).
  static TrainBatch make_batch(const std::vector<const Example*>& ex, int32_t pad_id);

 private:
  void make_order();
  const Dataset& d_;
  int64_t bs_;
  bool shuffle_;
  uint64_t seed_;
  int32_t pad_;
  BatcherState st_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

}  // namespace wick
