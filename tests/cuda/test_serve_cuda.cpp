// The serve scheduler's invariant on CUDA (issue 12): a request in a mixed-adapter batch gives exactly the
// greedy tokens it gives alone, in f32 and bf16, over the paged KV cache (one paged-attention launch a layer),
// also when the cache is so small that sequences are preempted and resumed. The CPU twins are
// tests/serve/test_serve_scheduler.cpp and tests/serve/test_kv_pool.cpp.
#include <gtest/gtest.h>

#include <map>

#include "common/testutil.h"
#include "model/presets.h"
#include "serve/adapter_store.h"
#include "serve/scheduler.h"

using namespace wick;
using namespace wick::serve;

namespace {

std::shared_ptr<const ServeAdapter> random_adapter(const CausalLM& m, uint64_t seed) {
  Rng rng(seed);
  auto a = std::make_shared<ServeAdapter>();
  a->name = "a" + std::to_string(seed);
  a->rank = 8;
  a->pairs.resize(static_cast<size_t>(m.config().num_layers));
  auto& layers = const_cast<CausalLM&>(m).layers();
  for (size_t l = 0; l < layers.size(); l++) {
    const auto lin = layers[l].linears();
    for (int j : {0, 2, 3, 6}) {  // q, v, o, down
      AdapterPair& p = a->pairs[l][static_cast<size_t>(j)];
      p.A = test::randn({8, lin[static_cast<size_t>(j)]->in()}, rng, 0.3f).to(m.device());
      p.B = test::randn({lin[static_cast<size_t>(j)]->out(), 8}, rng, 0.3f).to(m.device());
      p.scale = 2.0f;
    }
  }
  return a;
}

// Runs request `only` alone (or all of them, joining a running batch, when only < 0); appends their tokens.
void run_alone_or_mixed(CausalLM& m, const std::vector<std::vector<int32_t>>& prompts,
                        const std::vector<std::shared_ptr<const ServeAdapter>>& which, int64_t n, int only,
                        std::vector<std::vector<int32_t>>& out, SchedulerLimits lim = {}, uint64_t* preemptions = nullptr) {
  Metrics metrics;
  Scheduler s(m, nullptr, lim, metrics);
  std::vector<std::shared_ptr<Request>> reqs;
  for (size_t i = 0; i < prompts.size(); i++) {
    if (only >= 0 && static_cast<int>(i) != only) continue;
    auto r = std::make_shared<Request>();
    r->prompt = prompts[i];
    r->opt.gen.max_new_tokens = n;
    r->opt.gen.sampling.temperature = 0.0f;
    r->adapter = which[i];
    reqs.push_back(r);
    s.submit(r);
    if (only < 0 && i == 1) s.step();  // the rest join a running batch
  }
  while (s.step()) {
  }
  for (auto& r : reqs) {
    std::string text;
    std::vector<int32_t> ids;
    r->wait_take(text, &ids, std::chrono::milliseconds(0));
    EXPECT_TRUE(r->error.empty()) << r->error;
    out.push_back(ids);
  }
  if (preemptions) *preemptions = metrics.preemptions.load();
}

void check_invariant(DType dt, bool small_cache = false) {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 1000;
  auto m = CausalLM::random(c, Device::cuda(), dt, 5);
  auto a1 = random_adapter(*m, 1), a2 = random_adapter(*m, 2);
  const std::vector<std::shared_ptr<const ServeAdapter>> which = {a1, nullptr, a2, a1, a2, nullptr, a1, a2};
  Rng rng(3);
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < which.size(); i++) {
    std::vector<int32_t> p;
    for (size_t t = 0; t < 4 + 3 * i; t++) p.push_back(static_cast<int32_t>(rng.next_u32() % 1000));
    prompts.push_back(p);
  }
  std::vector<std::vector<int32_t>> alone, mixed;
  const int64_t n = small_cache ? 40 : 16;  // 40: sequences outgrow their blocks of admission (prompt + 16)
  for (size_t i = 0; i < which.size(); i++) run_alone_or_mixed(*m, prompts, which, n, static_cast<int>(i), alone);
  SchedulerLimits lim;
  uint64_t preemptions = 0;
  if (small_cache) lim.kv_cache_tokens = 160;  // 10 blocks: 2-3 a request at admission, 3-5 at the end
  run_alone_or_mixed(*m, prompts, which, n, -1, mixed, lim, &preemptions);
  if (small_cache) EXPECT_GT(preemptions, 0u);
  ASSERT_EQ(alone.size(), mixed.size());
  for (size_t i = 0; i < alone.size(); i++) EXPECT_EQ(mixed[i], alone[i]) << "request " << i << " " << dtype_name(dt);
}

}  // namespace

TEST(ServeCuda, MixedAdapterBatchGivesTheTokensOfEachRequestAloneF32) {
  WICK_REQUIRE_CUDA();
  check_invariant(DType::F32);
}

TEST(ServeCuda, MixedAdapterBatchGivesTheTokensOfEachRequestAloneBf16) {
  WICK_REQUIRE_CUDA();
  check_invariant(DType::BF16);
}

TEST(ServeCuda, PreemptedRequestsResumeWithTheirTokensAloneF32) {
  WICK_REQUIRE_CUDA();
  check_invariant(DType::F32, true);
}

TEST(ServeCuda, PreemptedRequestsResumeWithTheirTokensAloneBf16) {
  WICK_REQUIRE_CUDA();
  check_invariant(DType::BF16, true);
}
