#include "train/batcher.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "ops/cross_entropy.h"

namespace wick {

Batcher::Batcher(const Dataset& d, int64_t batch_size, bool shuffle, uint64_t seed, int32_t pad_id)
    : d_(d), bs_(batch_size), shuffle_(shuffle), seed_(seed), pad_(pad_id) {
  if (bs_ <= 0) throw Error("batch size must be positive", "--batch-size");
  check_dataset(d_);
}

int64_t Batcher::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(d_.examples.size());
  return (n + bs_ - 1) / bs_;
}

double Batcher::epoch_progress() const {
  return st_.epoch + static_cast<double>(st_.index) / static_cast<double>(d_.examples.size());
}

void Batcher::restore(const BatcherState& s) {
  st_ = s;
  order_epoch_ = -1;
}

void Batcher::make_order() {
  const int64_t n = static_cast<int64_t>(d_.examples.size());
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_) {
    Rng rng(seed_, 0x5eed0000ULL + static_cast<uint64_t>(st_.epoch));
    for (int64_t i = n - 1; i > 0; i--) std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i + 1))]);
  }
  order_epoch_ = st_.epoch;
}

TrainBatch Batcher::next() {
  const int64_t n = static_cast<int64_t>(d_.examples.size());
  if (st_.index >= n) {
    st_.epoch++;
    st_.index = 0;
  }
  if (order_epoch_ != st_.epoch) make_order();
  std::vector<const Example*> ex;
  const int64_t end = std::min(n, st_.index + bs_);  // the last batch of an epoch may be smaller
  for (int64_t i = st_.index; i < end; i++) ex.push_back(&d_.examples[order_[i]]);
  st_.index = end;
  return make_batch(ex, pad_);
}

TrainBatch Batcher::make_batch(const std::vector<const Example*>& ex, int32_t pad_id) {
  WICK_CHECK(!ex.empty());
  int64_t T = 0;
  for (const Example* e : ex) T = std::max<int64_t>(T, e->ids.size());
  const int64_t B = static_cast<int64_t>(ex.size());
  std::vector<int32_t> ids(B * T, pad_id), tg(B * T, kIgnoreIndex);
  for (int64_t b = 0; b < B; b++) {
    const Example& e = *ex[b];
    const int64_t L = static_cast<int64_t>(e.ids.size());
    for (int64_t t = 0; t < L; t++) ids[b * T + t] = e.ids[t];
    for (int64_t t = 0; t + 1 < L; t++) tg[b * T + t] = e.labels[t + 1];
  }
  TrainBatch batch;
  batch.ids = Tensor::from_i32(ids, {B, T});
  batch.targets = Tensor::from_i32(tg, {B, T});
  return batch;
}

}  // namespace wick
