// Turns a Dataset into micro-batches. Targets are shifted: targets[b, t] = labels[b, t + 1] (what logits[b, t]
// predict), -100 on padding and on the last token of each example.
//  - padding (default): batch_size examples a row each, padded to the longest of the batch.
//  - packing (pack_len > 0): the examples are grouped once, deterministically (best-fit decreasing by length),
//    into rows of at most pack_len tokens; a row holds several examples with distinct segment ids (attention
//    stays inside one), positions restarting at 0 for each, and no target crossing from one to the next.
//    batch_size rows make a batch, padded to the longest row.
// The units of an epoch (examples, or packed rows) come in a fresh permutation per epoch drawn from
// (seed, epoch), so (epoch, index) is the whole state and a restored batcher continues exactly.
#pragma once
#include <cstdint>
#include <vector>

#include "model/loss_and_grads.h"
#include "train/dataset.h"

namespace wick {

struct BatcherState {
  int64_t epoch = 0;
  int64_t index = 0;  // next unit (example, or packed row) within the epoch's order
};

class Batcher {
 public:
  Batcher(const Dataset& d, int64_t batch_size, bool shuffle, uint64_t seed, int32_t pad_id, int64_t pack_len = 0);
  TrainBatch next();  // advances across epochs; the last batch of an epoch may be smaller
  int64_t batches_per_epoch() const;
  int64_t units_per_epoch() const;  // examples, or packed rows
  bool packing() const { return pack_len_ > 0; }
  const BatcherState& state() const { return st_; }
  void restore(const BatcherState& s);
  double epoch_progress() const;  // epoch + fraction done

  // One padded, shifted batch, an example a row (exposed for eval and tests).
  static TrainBatch make_batch(const std::vector<const Example*>& ex, int32_t pad_id);
  // One packed batch: rows[b] are the examples of row b, laid end to end (segment ids 1, 2, ... per
  // example, 0 on padding; positions from 0 per example).
  static TrainBatch make_packed_batch(const std::vector<std::vector<const Example*>>& rows, int32_t pad_id);

 private:
  void make_order();
  const Dataset& d_;
  int64_t bs_;
  bool shuffle_;
  uint64_t seed_;
  int32_t pad_;
  int64_t pack_len_;
  std::vector<std::vector<int64_t>> rows_;  // packing: example indices of each row
  BatcherState st_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

// Best-fit decreasing: examples by length (longest first, ties in file order), each into the row with the
// least room that fits it, else a new row. Rows hold example indices; every row's total is <= pack_len.
// wick::Error when an example is longer than pack_len.
std::vector<std::vector<int64_t>> pack_examples(const Dataset& d, int64_t pack_len);

}  // namespace wick
