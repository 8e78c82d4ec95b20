// Decode steps with the cache length on the device (what a CUDA graph replays), on the CPU: the ops they use and
// the loop itself against the plain cached forward, bit for bit (the same loops run). tests/cuda has the GPU side.
#include <gtest/gtest.h>

#include "common/decode_checks.h"
#include "common/testutil.h"
#include "core/rng.h"
#include "ops/attention.h"
#include "ops/sampling.h"

namespace wick::test {
namespace {

TEST(KvCacheWrite, RowsLandAtTheirPositionsAndNothingElseMoves) { check_kv_cache_write(Device::cpu(), DType::F32); }
TEST(RopeQkCacheWrite, EqualsRopeThenTheCacheWrite) { check_rope_qk_cache_write(Device::cpu(), DType::F32); }
TEST(RopeCacheAttention, EqualsRopeCacheWriteThenAttention) { check_rope_cache_attention(Device::cpu(), DType::F32); }

TEST(GreedyTokens, ChooseAsTheHostSamplersGreedyRule) {
  check_greedy_tokens(Device::cpu(), 1000);
  check_greedy_tokens(Device::cpu(), 151936);
}

TEST(DecodeLoop, GivesThePlainCachedForwardsLogitsExactly) {
  check_decode_loop_matches_forward(Device::cpu(), DType::F32, true, 0.0);
}

TEST(DecodeOps, BadArgumentsAreNamed) {
  Rng rng(3);
  Tensor logits = randn({2, 9}, rng), ids = Tensor::empty({2}, DType::I32, Device::cpu());
  std::string msg = error_of([&] { greedy_tokens(logits, nullptr, 1.2f, ids); });
  EXPECT_NE(msg.find("a repetition penalty needs the history"), std::string::npos) << msg;
  msg = error_of([&] { greedy_tokens(logits, nullptr, 0.0f, ids); });
  EXPECT_NE(msg.find("positive finite"), std::string::npos) << msg;
  Tensor small = Tensor::empty({3}, DType::I32, Device::cpu());
  msg = error_of([&] { greedy_tokens(logits, nullptr, 1.0f, small); });
  EXPECT_NE(msg.find("ids must be"), std::string::npos) << msg;

  Tensor q = randn({1, 1, 2, 8}, rng), k = randn({1, 6, 1, 8}, rng), v = randn({1, 6, 1, 8}, rng), out = randn({1, 1, 2, 8}, rng);
  AttentionArgs a;
  a.scale = 0.35f;
  a.kv_len = 6;
  Tensor pos = Tensor::from_i32({6}, {1, 1});
  a.positions = &pos;
  msg = error_of([&] { attention_forward(q, k, v, a, out, nullptr); });
  EXPECT_NE(msg.find("args.positions must be non-decreasing along T and in [0, kv_len = 6)"), std::string::npos) << msg;
  Tensor pos2 = Tensor::from_i32({1, 2}, {1, 2});
  a.positions = &pos2;
  msg = error_of([&] { attention_forward(q, k, v, a, out, nullptr); });
  EXPECT_NE(msg.find("args.positions"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[B, T]"), std::string::npos) << msg;
}

}  // namespace
}  // namespace wick::test
