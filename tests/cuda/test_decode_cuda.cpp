// Decode steps on CUDA replayed from one captured graph (infer/decode_loop.h): the device-side ops against the
// CPU, the loop against the plain cached forward, and the replay against the same kernels launched one by one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "common/decode_checks.h"
#include "common/model_checks.h"
#include "common/testutil.h"
#include "core/device.h"
#include "core/env.h"
#include "core/rng.h"
#include "infer/decode_loop.h"
#include "infer/generator.h"
#include "lora/lora.h"
#include "model/causal_lm.h"
#include "ops/attention.h"
#include "ops/opcheck.h"
#include "ops/small_m_linear.h"

namespace wick::test {
namespace {

TEST(KvCacheWriteCuda, RowsLandAtTheirPositionsAndNothingElseMoves) {
  WICK_REQUIRE_CUDA();
  check_kv_cache_write(Device::cuda(), DType::F32);
  check_kv_cache_write(Device::cuda(), DType::BF16);
}

TEST(RopeQkCacheWriteCuda, EqualsRopeThenTheCacheWriteBitForBit) {
  WICK_REQUIRE_CUDA();
  check_rope_qk_cache_write(Device::cuda(), DType::F32);
  check_rope_qk_cache_write(Device::cuda(), DType::BF16);
}

// The one-launch form (decode steps with head dim 64 or 128) and its fallbacks, bit for bit against the two ops.
TEST(RopeCacheAttentionCuda, EqualsRopeCacheWriteThenAttentionBitForBit) {
  WICK_REQUIRE_CUDA();
  check_rope_cache_attention(Device::cuda(), DType::F32);
  check_rope_cache_attention(Device::cuda(), DType::BF16);
}

// The early cache loads (WICK_DECODE_EARLY_LOADS) move reads, not arithmetic: the same bits as the two ops.
TEST(RopeCacheAttentionCuda, EarlyLoadsEqualTheTwoOpsBitForBit) {
  WICK_REQUIRE_CUDA();
  const bool was = decode_early_loads();
  set_decode_early_loads(true);
  check_rope_cache_attention(Device::cuda(), DType::F32);
  check_rope_cache_attention(Device::cuda(), DType::BF16);
  set_decode_early_loads(was);
}

// n token ids below vocab from rng.
std::vector<int32_t> random_ids(Rng& rng, int64_t n, int64_t vocab) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; i++) ids.push_back(static_cast<int32_t>(rng.below(vocab)));
  return ids;
}

// The logits of every step of a greedy decode loop (replaying one captured graph, or kernel by kernel) fed `feed`
// after `prompt`, prefilled into a fresh cache with room for both.
std::vector<std::vector<float>> decode_loop_logits(CausalLM& m, const std::vector<int32_t>& prompt,
                                                   const std::vector<int32_t>& feed, bool graphs) {
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  KVCache cache(m, 1, n_prompt + static_cast<int64_t>(feed.size()) + 1);
  m.forward(Tensor::from_i32(prompt, {1, n_prompt}), &cache, true);
  SamplingParams sp;  // greedy
  DecodeLoopOptions lo;
  lo.graphs = graphs;
  lo.keep_logits = true;
  DecodeLoop loop(m, cache, sp, prompt, lo);
  std::vector<std::vector<float>> logits;
  for (int32_t id : feed) {
    loop.step(id);
    logits.emplace_back(loop.logits(), loop.logits() + m.config().vocab_size);
  }
  EXPECT_EQ(loop.replaying(), graphs);
  return logits;
}

// A switch that moves reads, not arithmetic, leaves the logits alone: on model c (random bf16 weights, seed 41),
// a greedy decode loop replaying its graph (whose launches overlap under PDL) fed `steps` random ids after a
// 20-token prompt, with set(false) and then set(true), gives the same logits at every step, bit for bit. `what`
// names the switch and the model in the failure message.
void expect_switch_keeps_logits(const ModelConfig& c, int64_t steps, void (*set)(bool), const std::string& what) {
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 41);
  Rng rng(42);
  const std::vector<int32_t> prompt = random_ids(rng, 20, c.vocab_size), feed = random_ids(rng, steps, c.vocab_size);
  std::vector<std::vector<float>> logits[2];
  for (int on = 0; on < 2; on++) {
    set(on == 1);
    logits[on] = decode_loop_logits(*m, prompt, feed, /*graphs=*/true);
  }
  for (size_t i = 0; i < feed.size(); i++) ASSERT_EQ(logits[0][i], logits[1][i]) << what << ", step " << i;
}

// The early loads read the caches before the kernel before them has finished: over 600 steps crossing the
// kernel's 512-key step, on a model whose heads take the one-launch kernel at head dims 64 and 128.
TEST(DecodeLoopCuda, EarlyLoadsGiveTheSameLogitsBitForBit) {
  WICK_REQUIRE_CUDA();
  const bool was = decode_early_loads();
  for (int64_t head_dim : {64, 128}) {
    ModelConfig c = decode_test_config(3, 3000);
    c.head_dim = head_dim;
    c.num_heads = 6;
    c.num_kv_heads = 2;
    expect_switch_keeps_logits(c, 600, set_decode_early_loads, "early loads, head dim " + std::to_string(head_dim));
  }
  set_decode_early_loads(was);
}

// The small-row kernels' early epilogue (SmallMOptions::residual_settled: the bias and the residual read before the
// kernel before them has finished): q|k|v with biases and the o and down projections with the layer's residual,
// at four and at two warps a row (hidden 128 and 2048).
TEST(DecodeLoopCuda, EarlyEpilogueGivesTheSameLogitsBitForBit) {
  WICK_REQUIRE_CUDA();
  const bool was = small_m_early_epilogue();
  for (int64_t hidden : {128, 2048}) {
    ModelConfig c = decode_test_config(3, 3000);
    c.hidden_size = hidden;
    expect_switch_keeps_logits(c, 64, set_small_m_early_epilogue, "early epilogue, hidden " + std::to_string(hidden));
  }
  set_small_m_early_epilogue(was);
}

// Fixes decode attention's key split for the guard's lifetime; the previous setting (normally the rule) comes back.
struct ForceDecodeSplits {
  explicit ForceDecodeSplits(int n) : was(decode_splits_forced()) { set_decode_splits(n); }
  ~ForceDecodeSplits() { set_decode_splits(was); }
  int was;
};

// Decode attention's key split (set_decode_splits: a query head's keys over 1, 2, 4 or 8 blocks, the last to
// finish merging): each part count against the CPU on the one-launch kernel's shapes - parts left without keys
// (9 keys over 8 parts), a window, B > 1, one to seven query heads a kv head, the longest span (1,024), f32 and
// bf16 -, and the one-launch RoPE + append + attention bit for bit against the two ops (the rotated query is
// written by the part that merges, the cache rows by the first part).
TEST(DecodeSplitsCuda, EveryPartCountMatchesTheCpuAndTheTwoOps) {
  WICK_REQUIRE_CUDA();
  const opcheck::AttentionShape shapes[] = {
      {.B = 1, .T = 1, .H = 14, .Hkv = 2, .D = 64, .kv_len = 9, .S = 16, .positions = true},
      {.B = 1, .T = 1, .H = 12, .Hkv = 2, .D = 128, .kv_len = 385, .S = 512, .positions = true},
      {.B = 2, .T = 1, .H = 12, .Hkv = 2, .D = 128, .kv_len = 300, .S = 320},
      {.B = 3, .T = 1, .H = 8, .Hkv = 2, .D = 64, .kv_len = 70, .S = 80, .window = 40},
      {.B = 1, .T = 1, .H = 4, .Hkv = 4, .D = 128, .kv_len = 1000, .S = 1024, .positions = true},
      {.B = 1, .T = 1, .H = 28, .Hkv = 4, .D = 128, .kv_len = 1024, .S = 1024, .lse = false, .positions = true},
  };
  for (int n : {1, 2, 4, 8}) {
    ForceDecodeSplits force(n);
    for (size_t i = 0; i < std::size(shapes); i++) {
      const opcheck::CasePtr c = opcheck::make_attention(shapes[i]);
      for (DType dt : {DType::F32, DType::BF16}) {
        const opcheck::Report r = opcheck::check_device(*c, Device::cuda(0), dt, 9100 + i);
        EXPECT_TRUE(r.pass()) << n << " parts: " << c->name(dt == DType::F32 ? "cuda_f32" : "cuda_bf16") << "\n"
                              << r.str();
      }
    }
    check_rope_cache_attention(Device::cuda(), DType::F32);
    check_rope_cache_attention(Device::cuda(), DType::BF16);
  }
}

// Every launch leaves the parts' merge counts at 0, and the rule's choice at each step (one block a head up to 512
// keys, then parts) is the device's: a replayed graph of 600 steps (20 to 620 keys) with wick's rule, 2 parts and
// 8 parts gives the logits of the same loop launched kernel by kernel, bit for bit.
TEST(DecodeSplitsCuda, ReplayedGraphEqualsKernelByKernelBitForBit) {
  WICK_REQUIRE_CUDA();
  ModelConfig c = decode_test_config(3, 3000);
  c.head_dim = 128;
  c.num_heads = 6;
  c.num_kv_heads = 2;
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 51);
  Rng rng(52);
  const std::vector<int32_t> prompt = random_ids(rng, 20, c.vocab_size), feed = random_ids(rng, 600, c.vocab_size);
  for (int parts : {0, 2, 8}) {  // 0: wick's rule
    ForceDecodeSplits force(parts);
    const auto by_kernel = decode_loop_logits(*m, prompt, feed, /*graphs=*/false);
    const auto replayed = decode_loop_logits(*m, prompt, feed, /*graphs=*/true);
    for (size_t i = 0; i < feed.size(); i++) ASSERT_EQ(by_kernel[i], replayed[i]) << parts << " parts, step " << i;
  }
}

TEST(GreedyTokensCuda, ChooseAsTheHostSamplersGreedyRule) {
  WICK_REQUIRE_CUDA();
  check_greedy_tokens(Device::cuda(), 1000);
  check_greedy_tokens(Device::cuda(), 151936);
}

// f32: the split-key decode kernel planned over the capacity sums in another order than over the length.
TEST(DecodeLoopCuda, GraphReplayGivesThePlainCachedForwardsLogits) {
  WICK_REQUIRE_CUDA();
  check_decode_loop_matches_forward(Device::cuda(), DType::F32, true, 1e-5);
  check_decode_loop_matches_forward(Device::cuda(), DType::BF16, true, 3e-2);
  check_decode_loop_matches_forward(Device::cuda(), DType::BF16, false, 3e-2);
}

// The generate settings the decode-loop comparisons below walk through on model m, max_new tokens each (eos
// ignored): 0 greedy, 1 greedy with a repetition penalty, 2 sampled (temperature, top-k; the draw counter on the
// device), 3 greedy with r 16 LoRA adapters on every projection (the fused small-row adapter path), attached to m
// with seed adapter_seed and values from rng when mode 3 begins. check(mode, options) runs each.
void for_each_decode_mode(CausalLM& m, Rng& rng, int64_t max_new, uint64_t adapter_seed,
                          const std::function<void(int, GenerateOptions&)>& check) {
  for (int mode = 0; mode < 4; mode++) {
    if (mode == 3) {
      io::LoraConfig lc;
      lc.r = 16;
      lc.alpha = 32;
      lc.target_modules = all_lora_targets();
      attach_new_adapters(m, lc, adapter_seed);
      randomize_lora(m, rng, 0.05f);
    }
    GenerateOptions o;
    o.max_new_tokens = max_new;
    o.ignore_eos = true;
    o.sampling.temperature = mode == 2 ? 0.9f : 0.0f;
    o.sampling.top_k = mode == 2 ? 40 : 0;
    o.sampling.repetition_penalty = mode == 1 ? 1.4f : 1.0f;
    o.sampling.seed = 7;
    check(mode, o);
  }
}

// The captured graph runs exactly the kernels of a step launched one by one: the same tokens in every mode of
// for_each_decode_mode.
TEST(DecodeLoopCuda, GraphReplayEqualsKernelByKernel) {
  WICK_REQUIRE_CUDA();
  const ModelConfig c = decode_test_config(3, 4000);
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 31);
  Rng rng(32);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 400; i++) prompt.push_back(static_cast<int32_t>(rng.below(c.vocab_size)));
  Generator gen(*m, nullptr);
  for_each_decode_mode(*m, rng, 80, 33, [&](int mode, GenerateOptions& o) {
    o.cuda_graphs = true;
    const GenerateResult with = gen.generate(prompt, o);
    o.cuda_graphs = false;
    const GenerateResult without = gen.generate(prompt, o);
    ASSERT_EQ(with.ids.size(), 80u);
    EXPECT_EQ(with.ids, without.ids) << "mode " << mode;
  });
}

// Steps queued ahead of the host's read (the default) give the tokens of steps the host waited for, in every mode
// of for_each_decode_mode; also when an eos stop leaves a queued step unread, and a generate after that one
// decodes as before.
TEST(DecodeLoopCuda, StepsQueuedAheadGiveTheTokensOfStepsWaitedFor) {
  WICK_REQUIRE_CUDA();
  const ModelConfig c = decode_test_config(3, 4000);
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 61);
  Rng rng(62);
  const std::vector<int32_t> prompt = random_ids(rng, 150, c.vocab_size);
  Generator gen(*m, nullptr);
  for_each_decode_mode(*m, rng, 60, 63, [&](int mode, GenerateOptions& o) {
    o.decode_ahead = false;
    const GenerateResult waited = gen.generate(prompt, o);
    o.decode_ahead = true;
    const GenerateResult ahead = gen.generate(prompt, o);
    ASSERT_EQ(waited.ids.size(), 60u);
    EXPECT_EQ(ahead.ids, waited.ids) << "mode " << mode;
    // An eos id the loop meets at token 30: both stop there; the ahead loop had queued token 31's step.
    GenerateOptions stop = o;
    stop.ignore_eos = false;
    stop.eos_ids = {waited.ids[30]};
    const auto first = std::find(waited.ids.begin(), waited.ids.end(), waited.ids[30]);
    for (bool a : {false, true}) {
      stop.decode_ahead = a;
      const GenerateResult r = gen.generate(prompt, stop);
      EXPECT_EQ(r.stop_reason, "eos") << "mode " << mode << " ahead " << a;
      EXPECT_EQ(r.ids, std::vector<int32_t>(waited.ids.begin(), first + 1)) << "mode " << mode;
    }
    EXPECT_EQ(gen.generate(prompt, o).ids, waited.ids) << "mode " << mode << ", after a stop left a step queued";
  });
}

// A loop that queues ahead feeds each step the token the one before returned: another token is refused, and the
// loop still ends cleanly.
TEST(DecodeLoopCuda, AStepQueuedAheadTakesOnlyTheReturnedToken) {
  WICK_REQUIRE_CUDA();
  const ModelConfig c = decode_test_config(2, 3000);
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 65);
  Rng rng(66);
  const std::vector<int32_t> prompt = random_ids(rng, 40, c.vocab_size);
  KVCache cache(*m, 1, 60);
  m->forward(Tensor::from_i32(prompt, {1, 40}), &cache, true);
  SamplingParams sp;  // greedy
  DecodeLoop loop(*m, cache, sp, prompt);
  if (!env_default_on("WICK_DECODE_AHEAD")) GTEST_SKIP() << "WICK_DECODE_AHEAD=0: no step is queued ahead";
  ASSERT_TRUE(loop.ahead());
  const int32_t t = loop.step(prompt.back());
  const int32_t other = (t + 1) % static_cast<int32_t>(c.vocab_size);
  const std::string msg = error_of([&] { loop.step(other); });
  EXPECT_NE(msg.find("queued ahead feeds " + std::to_string(t)), std::string::npos) << msg;
  EXPECT_EQ(cache.length(), 41) << "the refused step changed nothing";
  EXPECT_GE(loop.step(t), 0);
}

// A NaN logit found by a step whose next step is already queued: the host path's error (the token, "NaN"), the
// queued step fed token 0 rather than the code (no out-of-table read: the device stays usable).
TEST(DecodeLoopCuda, ANaNLogitAheadIsReportedAndTheDeviceStaysUsable) {
  WICK_REQUIRE_CUDA();
  const ModelConfig c = decode_test_config(2, 3000);
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 67);
  Rng rng(68);
  std::vector<int32_t> prompt = random_ids(rng, 40, c.vocab_size);
  for (int32_t& id : prompt)
    if (id == 123) id = 124;  // a tied head's embedding row 123 is NaN too: keep it out of the input
  const int64_t C = c.hidden_size;
  ASSERT_EQ(m->lm_head().dtype(), DType::BF16);
  const std::vector<uint16_t> nan_row(static_cast<size_t>(C), 0x7fc0);  // bf16 quiet NaN
  device_copy(static_cast<uint16_t*>(const_cast<Tensor&>(m->lm_head()).raw()) + 123 * C, Device::cuda(), nan_row.data(),
              Device::cpu(), sizeof(uint16_t) * nan_row.size());
  {
    KVCache cache(*m, 1, 60);
    m->forward(Tensor::from_i32(prompt, {1, 40}), &cache, true);
    SamplingParams sp;  // greedy
    DecodeLoop loop(*m, cache, sp, prompt);
    if (!env_default_on("WICK_DECODE_AHEAD")) GTEST_SKIP() << "WICK_DECODE_AHEAD=0: no step is queued ahead";
    ASSERT_TRUE(loop.ahead());
    const std::string msg = error_of([&] { loop.step(prompt.back()); });
    EXPECT_NE(msg.find("NaN at token 123"), std::string::npos) << msg;
  }
  device_synchronize(Device::cuda());  // a trapped kernel would have left the context unusable
  Tensor x = Tensor::from_f32({1.0f, 2.0f, 3.0f}, {3}).to(Device::cuda());
  EXPECT_EQ(x.to(Device::cpu()).data<float>()[2], 3.0f);
}

// Work between two steps that grows the CUDA scratch block frees the block the captured graph points into: the loop
// captures again and decodes on, the same tokens as kernel by kernel, still replaying.
TEST(DecodeLoopCuda, ScratchGrownBetweenStepsIsCapturedAgain) {
  WICK_REQUIRE_CUDA();
  const ModelConfig c = decode_test_config(3, 4000);
  auto m = CausalLM::random(c, Device::cuda(), DType::BF16, 51);
  Rng rng(52);
  const std::vector<int32_t> prompt = random_ids(rng, 100, c.vocab_size), feed = random_ids(rng, 40, c.vocab_size);
  std::vector<int32_t> chosen[2];
  device_scratch_reserve(Device::cuda(), 1 << 20);  // a block to replace, whether or not a decode step uses one
  for (int graphs = 0; graphs < 2; graphs++) {
    KVCache cache(*m, 1, 200);
    m->forward(Tensor::from_i32(prompt, {1, 100}), &cache, true);
    SamplingParams sp;  // greedy, on the device
    DecodeLoopOptions lo;
    lo.graphs = graphs == 1;
    lo.ahead = false;  // fed ids of its own, not the tokens it returns
    DecodeLoop loop(*m, cache, sp, prompt, lo);
    for (size_t i = 0; i < feed.size(); i++) {
      if (i == 20) {  // twice the block's size: the block the graph was captured with is freed
        const uint64_t before = device_scratch_generation(Device::cuda());
        device_scratch_reserve(Device::cuda(), 2 * device_scratch_bytes(Device::cuda()));
        EXPECT_EQ(device_scratch_generation(Device::cuda()), before + 1);
      }
      chosen[graphs].push_back(loop.step(feed[i]));
    }
    EXPECT_EQ(loop.replaying(), graphs == 1);
  }
  EXPECT_EQ(chosen[1], chosen[0]);
}

// A decode loop casts the adapters to bf16 at its first step only (CausalLM::decode_step's adapters_unchanged):
// a loop after the adapters changed uses the new ones, exactly as a model that only ever had them does.
TEST(DecodeLoopCuda, AdaptersChangedBetweenLoopsAreTheOnesUsed) {
  WICK_REQUIRE_CUDA();
  const ModelConfig c = decode_test_config(3, 4000);
  io::LoraConfig lc;
  lc.r = 16;
  lc.alpha = 32;
  lc.target_modules = all_lora_targets();
  auto changed = CausalLM::random(c, Device::cuda(), DType::BF16, 41);
  auto fresh = CausalLM::random(c, Device::cuda(), DType::BF16, 41);
  attach_new_adapters(*changed, lc, 42);
  attach_new_adapters(*fresh, lc, 42);
  Rng old_values(43), new_values(44), new_values_again(44), tokens(45);
  randomize_lora(*changed, old_values, 0.2f);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 300; i++) prompt.push_back(static_cast<int32_t>(tokens.below(c.vocab_size)));
  GenerateOptions o;
  o.max_new_tokens = 48;
  o.ignore_eos = true;
  o.sampling.temperature = 0.0f;
  o.cuda_graphs = true;
  Generator on_changed(*changed, nullptr), on_fresh(*fresh, nullptr);
  const GenerateResult before = on_changed.generate(prompt, o);
  randomize_lora(*changed, new_values, 0.2f);
  randomize_lora(*fresh, new_values_again, 0.2f);
  const GenerateResult after = on_changed.generate(prompt, o);
  const GenerateResult want = on_fresh.generate(prompt, o);
  ASSERT_EQ(after.ids.size(), 48u);
  EXPECT_EQ(after.ids, want.ids) << "the loop after the change decoded with the new adapters";
  EXPECT_NE(before.ids, after.ids) << "the two adapters lead to different tokens (else the check above proves nothing)";
}

}  // namespace
}  // namespace wick::test
