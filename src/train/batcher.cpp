#include "train/batcher.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "ops/cross_entropy.h"

namespace wick {

std::vector<std::vector<int64_t>> pack_examples(const Dataset& d, int64_t pack_len) {
  WICK_CHECK(pack_len > 0);
  const int64_t n = static_cast<int64_t>(d.examples.size());
  auto len = [&](int64_t i) { return static_cast<int64_t>(d.examples[i].ids.size()); };
  std::vector<int64_t> by_len(n);
  std::iota(by_len.begin(), by_len.end(), 0);
  std::stable_sort(by_len.begin(), by_len.end(), [&](int64_t a, int64_t b) { return len(a) > len(b); });
  std::vector<std::vector<int64_t>> rows;
  std::multimap<int64_t, int64_t> room;  // free tokens -> row; equal keys stay in insertion order
  for (int64_t i : by_len) {
    const int64_t L = len(i);
    if (L > pack_len)
      throw Error("an example of " + std::to_string(L) + " tokens is longer than the packing length " +
                  std::to_string(pack_len), d.path, "raise --max-seq-len or truncate the examples to it");
    auto it = room.lower_bound(L);
    int64_t r;
    int64_t left;
    if (it == room.end()) {
      r = static_cast<int64_t>(rows.size());
      rows.emplace_back();
      left = pack_len;
    } else {
      r = it->second;
      left = it->first;
      room.erase(it);
    }
    rows[r].push_back(i);
    if (left - L > 0) room.emplace(left - L, r);
  }
  return rows;
}

Batcher::Batcher(const Dataset& d, int64_t batch_size, bool shuffle, uint64_t seed, int32_t pad_id, int64_t pack_len)
    : d_(d), bs_(batch_size), shuffle_(shuffle), seed_(seed), pad_(pad_id), pack_len_(pack_len) {
  if (bs_ <= 0) throw Error("batch size must be positive", "--batch-size");
  if (pack_len_ < 0) throw Error("the packing length must be positive", "--max-seq-len");
  check_dataset(d_);
  if (pack_len_ > 0) rows_ = pack_examples(d_, pack_len_);
}

int64_t Batcher::units_per_epoch() const {
  return pack_len_ > 0 ? static_cast<int64_t>(rows_.size()) : static_cast<int64_t>(d_.examples.size());
}

int64_t Batcher::batches_per_epoch() const { return (units_per_epoch() + bs_ - 1) / bs_; }

double Batcher::epoch_progress() const {
  return st_.epoch + static_cast<double>(st_.index) / static_cast<double>(units_per_epoch());
}

void Batcher::restore(const BatcherState& s) {
  if (s.epoch < 0 || s.index < 0 || s.index > units_per_epoch())
    throw Error("batcher state (epoch " + std::to_string(s.epoch) + ", index " + std::to_string(s.index) +
                ") does not fit this dataset of " + std::to_string(units_per_epoch()) + " units per epoch",
                d_.path, "resume with the same data and the same --packing / --max-seq-len");
  st_ = s;
  order_epoch_ = -1;
}

void Batcher::make_order() {
  const int64_t n = units_per_epoch();
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_) {
    Rng rng(seed_, 0x5eed0000ULL + static_cast<uint64_t>(st_.epoch));
    for (int64_t i = n - 1; i > 0; i--) std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i + 1))]);
  }
  order_epoch_ = st_.epoch;
}

TrainBatch Batcher::next() {
  const int64_t n = units_per_epoch();
  if (st_.index >= n) {
    st_.epoch++;
    st_.index = 0;
  }
  if (order_epoch_ != st_.epoch) make_order();
  const int64_t end = std::min(n, st_.index + bs_);
  const int64_t begin = st_.index;
  st_.index = end;
  if (pack_len_ > 0) {
    std::vector<std::vector<const Example*>> rows;
    for (int64_t i = begin; i < end; i++) {
      rows.emplace_back();
      for (int64_t e : rows_[order_[i]]) rows.back().push_back(&d_.examples[e]);
    }
    return make_packed_batch(rows, pad_);
  }
  std::vector<const Example*> ex;
  for (int64_t i = begin; i < end; i++) ex.push_back(&d_.examples[order_[i]]);
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

TrainBatch Batcher::make_packed_batch(const std::vector<std::vector<const Example*>>& rows, int32_t pad_id) {
  WICK_CHECK(!rows.empty());
  int64_t T = 0;
  for (const auto& r : rows) {
    int64_t L = 0;
    for (const Example* e : r) L += static_cast<int64_t>(e->ids.size());
    T = std::max(T, L);
  }
  WICK_CHECK(T > 0);
  const int64_t B = static_cast<int64_t>(rows.size());
  // [B, T] each; padding: pad id, ignored target, position 0.., segment 0.
  std::vector<int32_t> ids(B * T, pad_id), tg(B * T, kIgnoreIndex), pos(B * T, 0), seg(B * T, 0);
  for (int64_t b = 0; b < B; b++) {
    int64_t t0 = 0;
    for (size_t k = 0; k < rows[b].size(); k++) {
      const Example& e = *rows[b][k];
      const int64_t L = static_cast<int64_t>(e.ids.size());
      for (int64_t t = 0; t < L; t++) {
        ids[b * T + t0 + t] = e.ids[t];
        pos[b * T + t0 + t] = static_cast<int32_t>(t);
        seg[b * T + t0 + t] = static_cast<int32_t>(k + 1);
      }
      for (int64_t t = 0; t + 1 < L; t++) tg[b * T + t0 + t] = e.labels[t + 1];
      t0 += L;
    }
    for (int64_t t = t0; t < T; t++) pos[b * T + t] = static_cast<int32_t>(t - t0);
  }
  TrainBatch batch;
  batch.ids = Tensor::from_i32(ids, {B, T});
  batch.targets = Tensor::from_i32(tg, {B, T});
  batch.positions = Tensor::from_i32(pos, {B, T});
  batch.segments = Tensor::from_i32(seg, {B, T});
  return batch;
}

}  // namespace wick
