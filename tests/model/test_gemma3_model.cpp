// Gemma 3 on the CPU, without a reference: the sliding window is applied (a window shorter than the sequence
// changes the logits of the positions past it, and only those), and decoding with the KV cache, token by token
// or in chunks, gives the logits of one full forward. (The fixture tests compare it with transformers.)
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "model/causal_lm.h"
#include "model/config.h"

namespace wick {
namespace {

// Three layers (sliding, sliding, full) with a window of 3, GQA 4/2, query_pre_attn_scalar unlike head_dim.
ModelConfig small_gemma(int64_t window) {
  const nlohmann::json j = {
      {"model_type", "gemma3_text"}, {"hidden_size", 48}, {"intermediate_size", 80}, {"num_hidden_layers", 3},
      {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 16}, {"query_pre_attn_scalar", 12},
      {"sliding_window", window}, {"layer_types", {"sliding_attention", "sliding_attention", "full_attention"}},
      {"vocab_size", 97}, {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-6}};
  return ModelConfig::from_json_string(j.dump(), "small gemma");
}

Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(B * T));
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(V));
  return Tensor::from_i32(ids, {B, T});
}

// Rows [t0, t1) of logits [B, T, V] as one host tensor per batch row, concatenated.
Tensor positions_of(const Tensor& logits, int64_t t0, int64_t t1) {
  const int64_t B = logits.dim(0), T = logits.dim(1), V = logits.dim(2);
  Tensor out = Tensor::empty({B, t1 - t0, V}, DType::F32);
  for (int64_t b = 0; b < B; b++)
    out.view({B * (t1 - t0), V}).narrow0(b * (t1 - t0), t1 - t0).copy_from(logits.view({B * T, V}).narrow0(b * T + t0, t1 - t0));
  return out;
}

TEST(Gemma3Model, SlidingWindowChangesOnlyThePositionsPastIt) {
  const int64_t T = 10;
  auto narrow = CausalLM::random(small_gemma(3), Device::cpu(), DType::F32, 5);
  auto wide = CausalLM::random(small_gemma(T), Device::cpu(), DType::F32, 5);  // the same weights, window >= T
  const Tensor ids = random_ids(2, T, 97, 9);
  const Tensor a = narrow->forward(ids, nullptr).clone(), b = wide->forward(ids, nullptr).clone();
  // Positions 0..2 see at most 3 keys either way: identical. Later ones lose keys in the sliding layers.
  EXPECT_EQ(test::max_abs_diff(positions_of(a, 0, 3), positions_of(b, 0, 3)), 0.0);
  for (int64_t t = 3; t < T; t++) EXPECT_GT(test::max_abs_diff(positions_of(a, t, t + 1), positions_of(b, t, t + 1)), 1e-4) << t;
}

TEST(Gemma3Model, KvCacheDecodeMatchesTheFullForward) {
  const int64_t B = 2, T = 11, V = 97;
  auto m = CausalLM::random(small_gemma(3), Device::cpu(), DType::F32, 7);
  const Tensor ids = random_ids(B, T, V, 13);
  const Tensor full = m->forward(ids, nullptr).clone();
  // Token by token, and a prefill of 4 then chunks of 3, 1, 3 (windows straddle the chunk edges).
  for (const std::vector<int64_t>& chunks : {std::vector<int64_t>(T, 1), std::vector<int64_t>{4, 3, 1, 3}}) {
    KVCache cache(*m, B, T);
    int64_t t0 = 0;
    for (int64_t n : chunks) {
      Tensor part = Tensor::empty({B, n}, DType::I32);
      for (int64_t b = 0; b < B; b++)
        part.view({B * n}).narrow0(b * n, n).copy_from(ids.view({B * T}).narrow0(b * T + t0, n));
      const Tensor got = m->forward(part, &cache).clone();
      const double e = test::max_abs_rel(got, positions_of(full, t0, t0 + n));
      EXPECT_LT(e, 1e-5) << "chunk at " << t0 << " of " << n;
      t0 += n;
    }
    EXPECT_EQ(cache.length(), T);
  }
}

}  // namespace
}  // namespace wick
