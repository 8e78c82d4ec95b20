#include "common/checkpointing_checks.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/model_checks.h"
#include "core/rng.h"
#include "lora/lora.h"
#include "model/loss_and_grads.h"
#include "ops/cross_entropy.h"
#include "train/test_trainer_util.h"

namespace wick::test {

namespace {

// Two rows of T tokens, each packing examples of random lengths: positions restart at every example,
// segments number them, some targets are ignored.
TrainBatch packed_batch(Rng& rng, int64_t T, int64_t V) {
  const int64_t B = 2;
  std::vector<int32_t> ids(B * T), targets(B * T), positions(B * T), segments(B * T);
  for (int64_t b = 0; b < B; b++) {
    int64_t seg = 0, pos = 0, left = 1 + static_cast<int64_t>(rng.below(T));
    for (int64_t t = 0; t < T; t++) {
      if (left == 0) {
        seg++;
        pos = 0;
        left = 1 + static_cast<int64_t>(rng.below(T));
      }
      const int64_t i = b * T + t;
      ids[i] = static_cast<int32_t>(rng.below(V));
      targets[i] = rng.below(4) == 0 ? kIgnoreIndex : static_cast<int32_t>(rng.below(V));
      positions[i] = static_cast<int32_t>(pos++);
      segments[i] = static_cast<int32_t>(seg);
      left--;
    }
  }
  TrainBatch tb;
  tb.ids = Tensor::from_i32(ids, {B, T});
  tb.targets = Tensor::from_i32(targets, {B, T});
  tb.positions = Tensor::from_i32(positions, {B, T});
  tb.segments = Tensor::from_i32(segments, {B, T});
  return tb;
}

struct StepResult {
  double loss_sum = 0;
  int64_t count = 0;
  std::map<std::string, std::vector<float>> grads;
};

StepResult one_step(CausalLM& m, LossAndGrads& lg, const TrainBatch& batch, uint64_t dropout_seed) {
  zero_lora_grads(m);
  const float scale = 1.0f / static_cast<float>(std::max<int64_t>(batch.counted(), 1));
  const LossSum s = lg.step(batch, scale, dropout_seed);
  StepResult r;
  r.loss_sum = s.sum;
  r.count = s.count;
  for (const LoraParam& p : lora_params(m)) r.grads[p.name] = p.grad->to_f32_vector();
  return r;
}

}  // namespace

void check_checkpointing_is_exact(const char* model_type, Device dev, DType dt) {
  SCOPED_TRACE(std::string(model_type) + " on " + dev.str() + " " + dtype_name(dt));
  ModelConfig c = tiny_config();
  c.model_type = model_type;
  if (c.model_type == "qwen3") {
    c.qk_norm = true;
    c.attention_bias = false;
  }
  if (c.model_type == "gemma3_text")  // its family sets the rest: sandwich norms, GeGLU, a sliding layer
    c = ModelConfig::from_json_string(
        R"({"model_type": "gemma3_text", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "query_pre_attn_scalar": 12,
            "sliding_window": 5, "layer_types": ["sliding_attention", "full_attention"], "vocab_size": 97,
            "max_position_embeddings": 64, "tie_word_embeddings": false})",
        "gemma3 test config");
  // T >= 16 so CUDA bf16 runs the tensor-core attention.
  const int64_t T = 24;
  auto m = CausalLM::random(c, dev, dt, 31);
  io::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dropout = 0.1;
  lc.target_modules = all_lora_targets();
  attach_new_adapters(*m, lc, 32);
  // B != 0, so the adapters contribute to every gradient.
  Rng rng(33);
  randomize_lora(*m, rng, 0.2f);
  alloc_lora_grads(*m);
  const TrainBatch batch = packed_batch(rng, T, c.vocab_size);

  LossAndGrads lg(*m);
  // Checkpointing never folds the adapters (its per-layer set keeps no norm output), so the plain run it must
  // equal bit for bit is the unfolded one (the fold, on by default for small models on CUDA, rounds otherwise).
  lg.set_adapter_fold(false);
  const StepResult plain = one_step(*m, lg, batch, 77);
  lg.set_checkpointing(true);
  const StepResult ckpt = one_step(*m, lg, batch, 77);
  const StepResult ckpt2 = one_step(*m, lg, batch, 77);
  lg.set_checkpointing(false);
  const StepResult plain2 = one_step(*m, lg, batch, 77);

  ASSERT_GT(plain.count, 0);
  EXPECT_EQ(ckpt.count, plain.count);
  EXPECT_EQ(ckpt.loss_sum, plain.loss_sum);
  ASSERT_EQ(ckpt.grads.size(), plain.grads.size());
  ASSERT_EQ(plain.grads.size(), 2u * 7u * static_cast<size_t>(c.num_layers));
  for (const auto& [name, g] : plain.grads) {
    double norm = 0;
    for (float x : g) norm += static_cast<double>(x) * x;
    EXPECT_GT(norm, 0.0) << name << ": a zero gradient checks nothing";
    EXPECT_EQ(ckpt.grads.at(name), g) << name;
    EXPECT_EQ(ckpt2.grads.at(name), g) << name << " (second checkpointed step)";
    EXPECT_EQ(plain2.grads.at(name), g) << name << " (plain again)";
  }
}

}  // namespace wick::test
