// The paged KV cache of `wick serve` (serve/kv_pool.h) and the scheduler's use of it, on the CPU: blocks are
// taken as sequences grow and all come back when they finish or their client leaves; a request that cannot fit
// the cache is refused clearly, one that must wait queues; when the pool runs dry mid-decode the newest
// sequence is preempted and resumed later, and every request still gives exactly its greedy tokens alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/serve_checks.h"
#include "common/testutil.h"
#include "core/error.h"
#include "model/presets.h"
#include "serve/kv_pool.h"
#include "serve/scheduler.h"

using namespace wick;
using namespace wick::serve;
using wick::test::take_ids;

namespace {

std::unique_ptr<CausalLM> small_model() {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 300;
  return CausalLM::random(c, Device::cpu(), DType::F32, 41);
}

std::shared_ptr<Request> greedy_request(const std::vector<int32_t>& prompt, int64_t n) {
  auto r = std::make_shared<Request>();
  r->prompt = prompt;
  r->opt.gen.max_new_tokens = n;
  r->opt.gen.sampling.temperature = 0.0f;
  return r;
}

std::vector<int32_t> random_prompt(Rng& rng, int64_t n) {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < n; i++) p.push_back(static_cast<int32_t>(rng.below(300)));
  return p;
}

std::vector<int32_t> alone(CausalLM& m, const std::vector<int32_t>& prompt, int64_t n) {
  Metrics metrics;
  Scheduler s(m, nullptr, {}, metrics);
  auto r = greedy_request(prompt, n);
  s.submit(r);
  while (s.step()) {
  }
  return take_ids(*r);
}

}  // namespace

TEST(KvPool, BlocksAreTakenAsSequencesGrowAndAllComeBack) {
  auto m = small_model();
  const ModelConfig& c = m->config();
  KvPool pool(*m, 100);  // 7 blocks of 16
  EXPECT_EQ(pool.blocks(), 7);
  EXPECT_EQ(pool.capacity_tokens(), 112);
  EXPECT_EQ(pool.bytes(), 2 * c.num_layers * 112 * c.kv_dim() * 4);
  EXPECT_EQ(pool.k(0).shape(), (Shape{7, 16, c.num_kv_heads, c.head_dim}));
  SeqBlocks a, b;
  EXPECT_TRUE(pool.grow(a, 20));
  EXPECT_EQ(a.table.size(), 2u);
  EXPECT_TRUE(pool.grow(a, 32));  // still two blocks
  EXPECT_EQ(a.table.size(), 2u);
  EXPECT_TRUE(pool.grow(a, 33));
  EXPECT_EQ(a.table.size(), 3u);
  EXPECT_FALSE(pool.grow(b, 80));  // 5 blocks, 4 free: all or nothing
  EXPECT_TRUE(b.table.empty());
  EXPECT_EQ(pool.free_blocks(), 4);
  EXPECT_TRUE(pool.grow(b, 64));
  std::set<int32_t> held(a.table.begin(), a.table.end());
  held.insert(b.table.begin(), b.table.end());
  EXPECT_EQ(held.size(), 7u);  // every block held once
  EXPECT_EQ(pool.free_blocks(), 0);
  pool.release(a);
  EXPECT_TRUE(a.table.empty());
  EXPECT_EQ(pool.free_blocks(), 3);
  pool.release(b);
  EXPECT_EQ(pool.free_blocks(), 7);
  EXPECT_NE(test::error_of([&] { KvPool bad(*m, 0); }).find("--kv-cache-tokens"), std::string::npos);
  EXPECT_EQ(default_kv_cache_tokens(c, 8), 8 * std::min<int64_t>(c.max_position_embeddings, 4096));
}

TEST(KvPool, FinishedAndCancelledRequestsGiveTheirBlocksBack) {
  auto m = small_model();
  Metrics metrics;
  SchedulerLimits lim;
  lim.kv_cache_tokens = 512;
  Scheduler s(*m, nullptr, lim, metrics);
  Rng rng(3);
  auto r1 = greedy_request(random_prompt(rng, 20), 40), r2 = greedy_request(random_prompt(rng, 5), 3);
  s.submit(r1);
  s.submit(r2);
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.kv_pool().used_blocks(), 3 + 1);  // 20 + 16 (one block of decode room) and 5 + 3 tokens
  EXPECT_EQ(metrics.kv_blocks_used.load(), 4);
  for (int i = 0; i < 5; i++) ASSERT_TRUE(s.step());  // r2 finished (3 tokens): its block is back
  EXPECT_EQ(s.running(), 1);
  EXPECT_EQ(s.kv_pool().used_blocks(), 3);
  r1->cancel();  // the client went away (a disconnect cancels the request the same way)
  s.step();
  EXPECT_EQ(s.running(), 0);
  EXPECT_EQ(s.kv_pool().used_blocks(), 0);
  EXPECT_EQ(r1->finish_reason, "cancelled");
  EXPECT_EQ(metrics.kv_blocks_total.load(), 32);
}

TEST(KvPool, ARequestThatCannotFitIsRefusedAndOneThatMustWaitQueues) {
  auto m = small_model();
  Rng rng(5);
  const std::vector<int32_t> p1 = random_prompt(rng, 20), p2 = random_prompt(rng, 20);
  const std::vector<int32_t> want1 = alone(*m, p1, 30), want2 = alone(*m, p2, 30);
  Metrics metrics;
  SchedulerLimits lim;
  lim.kv_cache_tokens = 64;  // 4 blocks: one request of 20 + 30 at a time
  lim.max_queue = 2;
  Scheduler s(*m, nullptr, lim, metrics);
  const std::string e = test::error_of([&] { s.submit(greedy_request(random_prompt(rng, 50), 30)); });
  EXPECT_NE(e.find("KV cache holds 64 (--kv-cache-tokens)"), std::string::npos) << e;
  auto r1 = greedy_request(p1, 30), r2 = greedy_request(p2, 30);
  s.submit(r1);
  s.submit(r2);
  EXPECT_THROW(s.submit(greedy_request(p2, 30)), QueueFull);  // the queue holds two
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.running(), 1);  // r1 holds 3 blocks (36 tokens): r2's 36 do not fit beside it
  EXPECT_EQ(s.queued(), 1);
  while (s.step()) {
  }
  EXPECT_EQ(take_ids(*r1), want1);
  EXPECT_EQ(take_ids(*r2), want2);
  EXPECT_EQ(metrics.preemptions.load(), 0u);
  EXPECT_EQ(s.kv_pool().used_blocks(), 0);
}

// Three sequences that fit at admission (2 blocks each) but not at full length (4 each, 6 in the pool): the
// newest is preempted when the oldest needs a block, resumes once there is room with its prompt and tokens so
// far as its prefill, and every request ends with the greedy tokens it gives alone.
TEST(KvPool, TheNewestSequenceIsPreemptedAndResumesWithTheSameTokens) {
  auto m = small_model();
  Rng rng(7);
  std::vector<std::vector<int32_t>> prompts, want;
  for (int i = 0; i < 3; i++) {
    prompts.push_back(random_prompt(rng, 10 + i));
    want.push_back(alone(*m, prompts.back(), 40));
  }
  for (int64_t step_tokens : {0, 7}) {  // whole prefills, and resumed prefills in chunks
    SCOPED_TRACE("max_step_tokens " + std::to_string(step_tokens));
    Metrics metrics;
    SchedulerLimits lim;
    lim.kv_cache_tokens = 96;
    lim.max_step_tokens = step_tokens;
    Scheduler s(*m, nullptr, lim, metrics);
    std::vector<std::shared_ptr<Request>> reqs;
    for (const auto& p : prompts) {
      reqs.push_back(greedy_request(p, 40));
      s.submit(reqs.back());
    }
    bool saw_preempted = false;
    int steps = 0;
    while (s.step()) {
      saw_preempted = saw_preempted || s.preempted() > 0;
      EXPECT_LE(s.kv_pool().used_blocks(), 6);
      ASSERT_LT(++steps, 1000) << "no progress";
    }
    EXPECT_TRUE(saw_preempted);
    EXPECT_GT(metrics.preemptions.load(), 0u);
    for (size_t i = 0; i < reqs.size(); i++) {
      EXPECT_EQ(take_ids(*reqs[i]), want[i]) << "request " << i;
      EXPECT_EQ(reqs[i]->finish_reason, "length");
      EXPECT_EQ(reqs[i]->completion_tokens, 40);
    }
    EXPECT_EQ(s.kv_pool().used_blocks(), 0);
    EXPECT_EQ(metrics.ttft.count(), 3u);  // a resumed request's first token counted once
  }
}

// A client that leaves while its request waits preempted ends it there.
TEST(KvPool, APreemptedRequestWhoseClientLeavesEnds) {
  auto m = small_model();
  Rng rng(9);
  Metrics metrics;
  SchedulerLimits lim;
  lim.kv_cache_tokens = 96;
  Scheduler s(*m, nullptr, lim, metrics);
  std::vector<std::shared_ptr<Request>> reqs;
  for (int i = 0; i < 3; i++) {
    reqs.push_back(greedy_request(random_prompt(rng, 10), 40));
    s.submit(reqs.back());
  }
  int steps = 0;
  while (s.preempted() == 0) ASSERT_TRUE(s.step() && ++steps < 100);
  reqs[2]->cancel();  // the newest is the one preempted
  while (s.step()) {
  }
  EXPECT_EQ(reqs[2]->finish_reason, "cancelled");
  EXPECT_EQ(take_ids(*reqs[0]).size(), 40u);
  EXPECT_EQ(take_ids(*reqs[1]).size(), 40u);
  EXPECT_EQ(s.kv_pool().used_blocks(), 0);
}
