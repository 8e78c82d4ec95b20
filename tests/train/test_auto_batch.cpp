// The batch size chosen when none is given: the CPU rule, and on CUDA the largest power of two whose
// activations fit the free memory (checked as properties of the arithmetic, for every published geometry).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/error.h"
#include "model/loss_and_grads.h"
#include "model/presets.h"
#include "train/auto_batch.h"

namespace fs = std::filesystem;

namespace wick {
namespace {

TEST(AutoBatch, CpuRuleBySequenceLength) {
  const ModelConfig c = preset_config("tiny");
  EXPECT_EQ(choose_batch_size(c, Device::cpu(), DType::F32, 100, 16, 7, -1, 1000).batch_size, 4);
  EXPECT_EQ(choose_batch_size(c, Device::cpu(), DType::F32, 256, 16, 7, -1, 1000).batch_size, 4);
  EXPECT_EQ(choose_batch_size(c, Device::cpu(), DType::F32, 257, 16, 7, -1, 1000).batch_size, 2);
  EXPECT_EQ(choose_batch_size(c, Device::cpu(), DType::F32, 1024, 16, 7, -1, 1000).batch_size, 2);
  EXPECT_EQ(choose_batch_size(c, Device::cpu(), DType::F32, 2048, 16, 7, -1, 1000).batch_size, 1);
  const BatchChoice few = choose_batch_size(c, Device::cpu(), DType::F32, 100, 16, 7, -1, 3);
  EXPECT_EQ(few.batch_size, 3);  // never more than the dataset holds
  EXPECT_NE(few.reason.find("CPU"), std::string::npos) << few.reason;
}

TEST(AutoBatch, CudaChoiceFitsAndIsTheLargestPowerOfTwoThatDoes) {
  const int64_t GiB = int64_t{1} << 30;
  for (const std::string& name : preset_names()) {
    const ModelConfig c = preset_config(name);
    for (int64_t seq : {128, 512, 2048, 8192}) {
      int64_t prev = 0;
      for (int64_t free_gib : {2, 8, 24, 60, 130}) {
        const int64_t free_b = free_gib * GiB;
        const BatchChoice ch = choose_batch_size(c, Device::cuda(0), DType::BF16, seq, 16, 7, free_b, 1 << 20);
        const int64_t b = ch.batch_size;
        ASSERT_GE(b, 1);
        EXPECT_LE(b, 64);
        EXPECT_EQ(b & (b - 1), 0) << name << " seq " << seq << ": " << b << " is not a power of two";
        EXPECT_GE(b, prev) << "more free memory never gives a smaller batch";
        prev = b;
        const int64_t act = activation_bytes_per_token(c, DType::BF16, 16, 7) * seq;
        const int64_t budget = free_b - free_b / 10 - GiB - fixed_training_bytes(c, DType::BF16, loss_chunk_rows());
        if (budget >= act) {
          EXPECT_LE(b * act, budget) << name << " seq " << seq << " free " << free_gib;
          if (b < 64) EXPECT_GT(2 * b * act, budget) << name << " seq " << seq << " free " << free_gib;
          EXPECT_EQ(ch.reason.find("may not fit"), std::string::npos) << ch.reason;
        } else {
          EXPECT_EQ(b, 1);
          EXPECT_NE(ch.reason.find("may not fit"), std::string::npos) << ch.reason;
        }
      }
    }
  }
}

TEST(AutoBatch, ActivationBytesGrowWithWhatIsStored) {
  const ModelConfig c = preset_config("qwen2.5-0.5b");
  const int64_t f32 = activation_bytes_per_token(c, DType::F32, 16, 7);
  const int64_t bf16 = activation_bytes_per_token(c, DType::BF16, 16, 7);
  EXPECT_GT(f32, bf16);
  EXPECT_GT(activation_bytes_per_token(c, DType::BF16, 64, 7), bf16);
  EXPECT_GT(activation_bytes_per_token(c, DType::BF16, 16, 7), activation_bytes_per_token(c, DType::BF16, 16, 2));
  // Checkpointing keeps under half of it: per layer the input and the attention results (q, k, v, the
  // attention output, the residual h; model/layer.h ActSlot::checkpoint_kept), not the MLP's [I] activations.
  const int64_t ckpt = activation_bytes_per_token(c, DType::BF16, 16, 7, true);
  EXPECT_LT(ckpt * 2, bf16);
  EXPECT_GE(ckpt, c.num_layers * (3 * c.hidden_size + 2 * c.q_dim() + 2 * c.kv_dim()) * 2);
  EXPECT_LT(ckpt, c.num_layers * (3 * c.hidden_size + 2 * c.q_dim() + 2 * c.kv_dim() + c.intermediate_size) * 2);
  // At least the MLP's three [I] activations and the residual stream of every layer are kept.
  EXPECT_GE(bf16, c.num_layers * (3 * c.intermediate_size + c.hidden_size) * 2);
  ModelConfig deeper = c;
  deeper.num_layers *= 2;
  EXPECT_GT(activation_bytes_per_token(deeper, DType::BF16, 16, 7), bf16);
}

// The folded weights (model/linear.h) are counted from the adapters a run attaches: per layer each adapted
// q / k / v and gate / up projection as [out, C + its group's ranks]; none without fold or for the other
// projections. And they come off the memory a batch may use.
TEST(AutoBatch, FoldedWeightsAreCountedAndLeaveLessForTheBatch) {
  const ModelConfig c = preset_config("tiny");
  auto m = CausalLM::random(c, Device::cpu(), DType::F32, 3);
  io::LoraConfig all;
  all.r = 8;
  all.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  const int64_t C = c.hidden_size, e = 4;
  const int64_t qkv = (c.q_dim() + 2 * c.kv_dim()) * (C + 3 * 8), gu = 2 * c.intermediate_size * (C + 2 * 8);
  EXPECT_EQ(folded_weight_bytes(*m, all, true), c.num_layers * (qkv + gu) * e);
  EXPECT_EQ(folded_weight_bytes(*m, all, false), 0);
  io::LoraConfig qv = all;
  qv.target_modules = {"q_proj", "v_proj", "o_proj"};
  EXPECT_EQ(folded_weight_bytes(*m, qv, true), c.num_layers * (c.q_dim() + c.kv_dim()) * (C + 2 * 8) * e);
  const int64_t GiB = int64_t{1} << 30;
  const ModelConfig big = preset_config("qwen2.5-1.5b");
  const int64_t plain = choose_batch_size(big, Device::cuda(0), DType::BF16, 1024, 16, 7, 24 * GiB, 1 << 20).batch_size;
  const int64_t folded =
      choose_batch_size(big, Device::cuda(0), DType::BF16, 1024, 16, 7, 24 * GiB, 1 << 20, false, 8 * GiB).batch_size;
  EXPECT_LT(folded, plain);
}

// Where the fold is on by default: on CUDA for hidden sizes up to kAdapterFoldMaxHidden (its saving shrinks as
// 1 / C, its weight copy grows as C^2), unless WICK_ADAPTER_FOLD says otherwise ("0" off, "1" on, empty: the
// rule); never on the CPU.
TEST(AutoBatch, TheFoldIsOnByDefaultForSmallHiddenSizesOnCudaUnlessTold) {
  const char* before = std::getenv("WICK_ADAPTER_FOLD");
  const std::string saved = before ? before : "";
  int folded_presets = 0, unfolded_presets = 0;
  for (const char* value : {"unset", "", "0", "1", "yes"}) {
    if (std::string(value) == "unset") unsetenv("WICK_ADAPTER_FOLD");
    else setenv("WICK_ADAPTER_FOLD", value, 1);
    for (const std::string& name : preset_names()) {
      const ModelConfig c = preset_config(name);
      EXPECT_FALSE(adapter_fold_default(Device::cpu(), c)) << name << " WICK_ADAPTER_FOLD=" << value;
      const std::string v = value;
      const bool rule = c.hidden_size <= kAdapterFoldMaxHidden;
      const bool expected = v == "0" ? false : (v == "unset" || v.empty()) ? rule : true;
      EXPECT_EQ(adapter_fold_default(Device::cuda(0), c), expected) << name << " WICK_ADAPTER_FOLD=" << value;
      if (v == "unset") (rule ? folded_presets : unfolded_presets)++;
    }
  }
  if (before) setenv("WICK_ADAPTER_FOLD", saved.c_str(), 1);
  else unsetenv("WICK_ADAPTER_FOLD");
  // The bound separates the presets: the smallest fold, the larger do not.
  EXPECT_GT(folded_presets, 0);
  EXPECT_GT(unfolded_presets, 0);
  EXPECT_LE(preset_config("qwen2.5-1.5b").hidden_size, kAdapterFoldMaxHidden);
  EXPECT_GT(preset_config("qwen2.5-7b").hidden_size, kAdapterFoldMaxHidden);
}

TEST(AutoBatch, ResolveKeepsAGivenSizeAndReadsTheResumedRun) {
  auto m = CausalLM::random(preset_config("tiny"), Device::cpu(), DType::F32, 3);
  Dataset d;
  for (int i = 0; i < 10; i++) d.examples.push_back({std::vector<int32_t>(20 + i, 5), std::vector<int32_t>(20 + i, 5)});
  TrainOptions t;
  t.batch_size = 3;
  EXPECT_EQ(resolve_batch_size(t, *m, d).batch_size, 3);
  t.batch_size = -2;
  EXPECT_THROW(resolve_batch_size(t, *m, d), Error);
  t.batch_size = 0;
  EXPECT_EQ(resolve_batch_size(t, *m, d).batch_size, 4);  // CPU, 29 tokens at most
  const fs::path dir = fs::temp_directory_path() / ("wick_auto_batch_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  t.resume = dir.string();
  EXPECT_THROW(resolve_batch_size(t, *m, d), Error);  // no trainer_state.json
  std::ofstream(dir / "trainer_state.json") << R"({"step": 2, "options": {"batch_size": 3}})";
  const BatchChoice ch = resolve_batch_size(t, *m, d);
  EXPECT_EQ(ch.batch_size, 3);
  EXPECT_NE(ch.reason.find("resumed"), std::string::npos) << ch.reason;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace wick
