// Shared checks of `wick serve`'s scheduler (tests/serve on the CPU, tests/cuda on the GPU). Header-only: the
// serve layer is its own library, which the test executables link and wick_test_common does not.
//
// The scheduler samples on the model's device (serve/scheduler.h). Its reference here is the host path of the
// same rule, run by hand: one sequence alone, BatchForward::run (logits copied to the host) and
// SequenceDecoder::sample, step by step, as the scheduler did before sampling moved to the device.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/rng.h"
#include "serve/batch_forward.h"
#include "serve/scheduler.h"

namespace wick::test {

// The tokens a finished request streamed (it must be over, without an error).
inline std::vector<int32_t> take_ids(serve::Request& r) {
  std::string text;
  std::vector<int32_t> ids;
  EXPECT_TRUE(r.wait_take(text, &ids, std::chrono::milliseconds(0)));
  EXPECT_TRUE(r.error.empty()) << r.error;
  return ids;
}

// What the host path gives request r alone: its tokens, or the error text it fails with ("" when none).
struct HostRun {
  std::vector<int32_t> ids;
  std::string error;
};
inline HostRun host_reference(CausalLM& m, const serve::Request& r) {
  using namespace serve;
  const int64_t kv_max = kv_tokens_needed(r, m.config()), V = m.config().vocab_size;
  KvPool pool(m, kv_max);
  BatchForward bf(m, pool);
  SeqBlocks kv;
  EXPECT_TRUE(pool.grow(kv, kv_max));
  SequenceDecoder seq(r.prompt, r.opt, nullptr);
  HostRun out;
  std::vector<int32_t> feed = r.prompt;
  std::vector<float> logits;
  while (!seq.finished()) {
    std::vector<SeqChunk> chunks{{&kv, feed, r.adapter.get()}};
    bf.run(chunks, logits);
    try {
      const int32_t t = seq.sample(logits.data(), V);
      seq.push(t);
      out.ids.push_back(t);
      feed = {t};
    } catch (const std::exception& e) {
      out.error = std::string("generation failed: ") + e.what();
      break;
    }
    if (kv.length >= kv_max) break;  // the scheduler ends the request here ("length")
  }
  return out;
}

// n requests with random prompts and random settings: greedy or sampled, top-k, top-p, min-p, the repetition
// penalty, OpenAI's frequency and presence penalties, seeds. Each kind appears at least once for n >= 8.
inline std::vector<std::shared_ptr<serve::Request>> random_sampling_requests(Rng& rng, int n, int64_t V,
                                                                             int64_t max_prompt, int64_t max_new) {
  std::vector<std::shared_ptr<serve::Request>> reqs;
  for (int i = 0; i < n; i++) {
    auto r = std::make_shared<serve::Request>();
    const int64_t len = 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(max_prompt)));
    for (int64_t t = 0; t < len; t++) r->prompt.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(V))));
    r->opt.gen.max_new_tokens = max_new / 2 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(max_new / 2 + 1)));
    SamplingParams& p = r->opt.gen.sampling;
    const int kind = i % 8;
    p.temperature = kind == 0 ? 0.0f : 0.5f + rng.uniform() * 1.0f;
    p.seed = rng.next_u64();
    if (kind == 1 || kind == 5) p.top_k = 1 + static_cast<int>(rng.below(40));
    if (kind == 2 || kind == 5) p.top_p = 0.5f + 0.45f * rng.uniform();
    if (kind == 3) p.min_p = 0.02f + 0.2f * rng.uniform();
    if (kind == 4 || kind == 0 || kind == 5) p.repetition_penalty = 1.05f + 0.5f * rng.uniform();
    if (kind == 6) p.repetition_penalty = 0.8f;  // < 1: favours the history
    if (kind == 7) {
      r->opt.frequency_penalty = 0.2f + rng.uniform();
      r->opt.presence_penalty = -0.5f + rng.uniform();
    }
    reqs.push_back(r);
  }
  return reqs;
}

// Serves reqs in one scheduler (all submitted at once, or joining a running batch one by one), then checks each
// gave exactly the host path's tokens alone. Returns the scheduler's preemption count.
inline uint64_t expect_scheduler_matches_host(CausalLM& m, const std::vector<std::shared_ptr<serve::Request>>& reqs,
                                              serve::SchedulerLimits lim, bool join_one_by_one) {
  using namespace serve;
  std::vector<HostRun> want;
  for (const auto& r : reqs) want.push_back(host_reference(m, *r));
  Metrics metrics;
  Scheduler s(m, nullptr, lim, metrics);
  for (const auto& r : reqs) {
    s.submit(r);
    if (join_one_by_one) s.step();
  }
  int steps = 0;
  while (s.step()) EXPECT_LT(++steps, 100000) << "the scheduler never finishes";
  for (size_t i = 0; i < reqs.size(); i++) {
    const SamplingParams& p = reqs[i]->opt.gen.sampling;
    const std::string what = "request " + std::to_string(i) + " (T " + std::to_string(p.temperature) + ", top_k " +
                             std::to_string(p.top_k) + ", top_p " + std::to_string(p.top_p) + ", min_p " +
                             std::to_string(p.min_p) + ", penalty " + std::to_string(p.repetition_penalty) +
                             ", frequency " + std::to_string(reqs[i]->opt.frequency_penalty) + ")";
    std::string text;
    std::vector<int32_t> ids;
    EXPECT_TRUE(reqs[i]->wait_take(text, &ids, std::chrono::milliseconds(0))) << what;
    EXPECT_EQ(reqs[i]->error, want[i].error) << what;
    EXPECT_EQ(ids, want[i].ids) << what;
  }
  EXPECT_EQ(s.kv_pool().used_blocks(), 0);
  return metrics.preemptions.load();
}

}  // namespace wick::test
