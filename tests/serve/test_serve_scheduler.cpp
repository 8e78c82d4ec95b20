// The continuous-batching scheduler on the CPU: a request in a mixed-adapter batch (joining and leaving
// while others run) gives exactly the greedy tokens it gives alone, and those of infer/generator.h with the
// adapter attached to the model; a client that leaves frees its slot before the next step; the limits.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>

#include "common/serve_checks.h"
#include "common/testutil.h"
#include "core/error.h"
#include "infer/generator.h"
#include "io/peft_adapter.h"
#include "model/presets.h"
#include "serve/adapter_store.h"
#include "serve/openai_api.h"
#include "serve/scheduler.h"

namespace fs = std::filesystem;
using namespace wick;
using namespace wick::serve;
using wick::test::take_ids;

namespace {

ModelConfig small_config() {
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 300;  // small logits keep the test fast
  return c;
}

// Random PEFT modules on q, v, o and down of every layer (B non-zero, so the adapter changes the tokens).
std::map<std::string, io::LoraPair> random_modules(const CausalLM& m, int64_t r, uint64_t seed) {
  Rng rng(seed);
  std::map<std::string, io::LoraPair> mods;
  for (int64_t l = 0; l < m.config().num_layers; l++)
    for (const char* p : {"self_attn.q_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.down_proj"}) {
      const std::string path = "model.layers." + std::to_string(l) + "." + p;
      Linear* lin = const_cast<CausalLM&>(m).find_linear(path);
      mods[path] = {test::randn({r, lin->in()}, rng, 0.3f), test::randn({lin->out(), r}, rng, 0.3f)};
    }
  return mods;
}

io::LoraConfig lora_config(int64_t r) {
  io::LoraConfig c;
  c.r = r;
  c.alpha = 2.0 * static_cast<double>(r);
  c.target_modules = {"q_proj", "v_proj", "o_proj", "down_proj"};
  return c;
}

std::string temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("wick_serve_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::shared_ptr<Request> greedy_request(const std::vector<int32_t>& prompt, int64_t n,
                                        std::shared_ptr<const ServeAdapter> adapter) {
  auto r = std::make_shared<Request>();
  r->prompt = prompt;
  r->opt.gen.max_new_tokens = n;
  r->opt.gen.sampling.temperature = 0.0f;
  r->adapter = std::move(adapter);
  return r;
}

std::vector<int32_t> random_prompt(Rng& rng, int64_t n, int64_t V) {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < n; i++) p.push_back(static_cast<int32_t>(rng.next_u32() % static_cast<uint32_t>(V)));
  return p;
}

// The reference a served request is held to: infer/generator.h's greedy tokens (EOS ignored) with the adapter's
// PEFT files (none when null) set on the model's Linears by hand, PEFT's unmerged path and not the serve code's
// adapter store, detached again after.
std::vector<int32_t> generator_greedy_ids(CausalLM& m, const ServeAdapter* adapter, const std::vector<int32_t>& prompt,
                                          int64_t n_new) {
  if (adapter) {
    const io::AdapterFiles files = io::load_peft_adapter(adapter->path);
    for (const auto& [path, pair] : files.modules) {
      Linear* l = m.find_linear(path);
      l->lora.A = pair.A;
      l->lora.B = pair.B;
      l->lora.scale = static_cast<float>(files.cfg.scale());
    }
  }
  GenerateOptions o;
  o.max_new_tokens = n_new;
  o.sampling.temperature = 0.0f;
  o.ignore_eos = true;
  const GenerateResult g = Generator(m, nullptr).generate(prompt, o);
  for (Linear* l : m.all_linears()) l->lora = LoraSlot{};
  return g.ids;
}

struct Fixture {
  std::unique_ptr<CausalLM> m = CausalLM::random(small_config(), Device::cpu(), DType::F32, 11);
  std::string dir = temp_dir("sched");
  Metrics metrics;
  std::shared_ptr<const ServeAdapter> adapter(const std::string& name, uint64_t seed) {
    const std::string d = dir + "/" + name;
    io::save_peft_adapter(d, lora_config(4), random_modules(*m, 4, seed));
    return load_serve_adapter(*m, name, d);
  }
  ~Fixture() { fs::remove_all(dir); }
};

}  // namespace

TEST(ServeScheduler, MixedAdapterBatchGivesTheTokensOfEachRequestAlone) {
  Fixture f;
  CausalLM& m = *f.m;
  auto a1 = f.adapter("a1", 101), a2 = f.adapter("a2", 202);
  const std::vector<std::shared_ptr<const ServeAdapter>> which = {nullptr, a1, a2, a1, nullptr, a2};
  Rng rng(7);
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < which.size(); i++) prompts.push_back(random_prompt(rng, 3 + 2 * static_cast<int64_t>(i), 300));
  const int64_t n_new = 12;

  // Alone: one request in the scheduler at a time.
  std::vector<std::vector<int32_t>> alone;
  for (size_t i = 0; i < which.size(); i++) {
    Scheduler s(m, nullptr, {}, f.metrics);
    auto r = greedy_request(prompts[i], n_new, which[i]);
    s.submit(r);
    while (s.step()) {
    }
    alone.push_back(take_ids(*r));
    ASSERT_EQ(alone.back().size(), static_cast<size_t>(n_new));
  }
  // The reference: generator_greedy_ids, the generator with the adapter attached to the Linears.
  for (size_t i = 0; i < which.size(); i++)
    EXPECT_EQ(generator_greedy_ids(m, which[i].get(), prompts[i], n_new), alone[i])
        << "request " << i << " differs from the generator with its adapter attached";
  // The adapters matter: the same prompt gives other tokens under each (else this test could not fail).
  {
    Scheduler s(m, nullptr, {}, f.metrics);
    auto base0 = greedy_request(prompts[1], n_new, nullptr), base2 = greedy_request(prompts[2], n_new, nullptr);
    s.submit(base0);
    s.submit(base2);
    while (s.step()) {
    }
    EXPECT_NE(take_ids(*base0), alone[1]);
    EXPECT_NE(take_ids(*base2), alone[2]);
  }
  // Mixed: three start together, three join two steps later (their prefill shares a step with the others'
  // decode), all leave at different steps (different max tokens would also do; here the joins stagger them).
  SchedulerLimits lim;
  lim.max_batch = 8;
  Scheduler s(m, nullptr, lim, f.metrics);
  std::vector<std::shared_ptr<Request>> reqs;
  for (size_t i = 0; i < which.size(); i++) reqs.push_back(greedy_request(prompts[i], n_new, which[i]));
  for (size_t i = 0; i < 3; i++) s.submit(reqs[i]);
  ASSERT_TRUE(s.step());
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.running(), 3);
  for (size_t i = 3; i < reqs.size(); i++) s.submit(reqs[i]);
  int steps = 0;
  while (s.step()) steps++;
  EXPECT_EQ(steps, n_new);  // the late three needed n_new steps; the first three left 2 steps earlier
  for (size_t i = 0; i < reqs.size(); i++) EXPECT_EQ(take_ids(*reqs[i]), alone[i]) << "request " << i;
  EXPECT_GT(f.metrics.step_batch.quantile(1.0), 4.0);  // some step really held all six

  // Chunked prefill (at most 5 tokens per step): prompts go in over several steps, beside the others' decode.
  lim.max_step_tokens = 5;
  Scheduler chunked(m, nullptr, lim, f.metrics);
  std::vector<std::shared_ptr<Request>> again;
  for (size_t i = 0; i < which.size(); i++) again.push_back(greedy_request(prompts[i], n_new, which[i]));
  for (auto& r : again) chunked.submit(r);
  int chunked_steps = 0;
  while (chunked.step()) chunked_steps++;
  EXPECT_GT(chunked_steps, n_new + 5);  // 63 prompt tokens at <= 5 per step (less the decodes) take longer
  for (size_t i = 0; i < again.size(); i++) EXPECT_EQ(take_ids(*again[i]), alone[i]) << "chunked request " << i;
}

TEST(ServeScheduler, ClientThatLeavesFreesItsSlotBeforeTheNextStep) {
  Fixture f;
  SchedulerLimits lim;
  lim.max_batch = 1;
  Scheduler s(*f.m, nullptr, lim, f.metrics);
  Rng rng(3);
  auto r1 = greedy_request(random_prompt(rng, 5, 300), 50, nullptr);
  auto r2 = greedy_request(random_prompt(rng, 5, 300), 3, nullptr);
  s.submit(r1);
  s.submit(r2);
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.running(), 1);
  EXPECT_EQ(s.queued(), 1);
  r1->cancel();
  ASSERT_TRUE(s.step());  // r1 leaves, r2 is admitted and prefilled in this same step
  std::string text;
  std::vector<int32_t> ids;
  EXPECT_TRUE(r1->wait_take(text, &ids, std::chrono::milliseconds(0)));
  EXPECT_EQ(r1->finish_reason, "cancelled");
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(s.queued(), 0);
  while (s.step()) {
  }
  EXPECT_EQ(take_ids(*r2).size(), 3u);
  EXPECT_EQ(r2->finish_reason, "length");
  EXPECT_EQ(f.metrics.requests_cancelled.load(), 1u);
}

TEST(ServeScheduler, QueueAndKvLimitsRefuseClearly) {
  Fixture f;
  SchedulerLimits lim;
  lim.max_batch = 1;
  lim.max_queue = 1;
  lim.max_kv_tokens = 40;
  Scheduler s(*f.m, nullptr, lim, f.metrics);
  Rng rng(5);
  s.submit(greedy_request(random_prompt(rng, 4, 300), 8, nullptr));
  EXPECT_THROW(s.submit(greedy_request(random_prompt(rng, 4, 300), 8, nullptr)), QueueFull);
  try {
    s.submit(greedy_request(random_prompt(rng, 30, 300), 20, nullptr));
    ADD_FAILURE() << "a request over the KV budget was queued";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KV cache"), std::string::npos) << e.what();
  }
}

TEST(ServeScheduler, AdapterUnloadedInFlightKeepsServingItsRequest) {
  Fixture f;
  const std::string root = f.dir + "/root";
  io::save_peft_adapter(root + "/sql", lora_config(4), random_modules(*f.m, 4, 77));
  AdapterStore store(*f.m, "base", root);
  auto a = store.add("sql", "sql", true);  // relative to the root
  Rng rng(9);
  const std::vector<int32_t> prompt = random_prompt(rng, 6, 300);
  std::vector<int32_t> expect;
  {
    Scheduler s(*f.m, nullptr, {}, f.metrics);
    auto r = greedy_request(prompt, 10, a);
    s.submit(r);
    while (s.step()) {
    }
    expect = take_ids(*r);
  }
  Scheduler s(*f.m, nullptr, {}, f.metrics);
  auto r = greedy_request(prompt, 10, store.find("sql"));
  a.reset();
  s.submit(r);
  ASSERT_TRUE(s.step());
  EXPECT_TRUE(store.remove("sql"));
  EXPECT_EQ(store.find("sql"), nullptr);
  while (s.step()) {
  }
  EXPECT_EQ(take_ids(*r), expect);

  // The root is enforced; names are unique and checked.
  io::save_peft_adapter(f.dir + "/outside", lora_config(4), random_modules(*f.m, 4, 78));
  try {
    store.add("x", f.dir + "/outside", true);
    ADD_FAILURE() << "an adapter outside the root was loaded";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 403);
  }
  try {
    store.add("y", "../outside", true);
    ADD_FAILURE() << "a path escaping the root with .. was loaded";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 403);
  }
  store.add("sql", "sql", true);
  try {
    store.add("sql", "sql", true);
    ADD_FAILURE() << "a second adapter named sql was loaded";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 409);
  }
  EXPECT_THROW(store.add("bad name", "sql", true), Error);
  EXPECT_THROW(store.add("base", "sql", true), Error);
}

TEST(ServeScheduler, PromptsAdvanceEvenWhenDecodesFillTheStepBudget) {
  Fixture f;
  Rng rng(13);
  const std::vector<int32_t> p1 = random_prompt(rng, 3, 300), p2 = random_prompt(rng, 6, 300);
  std::vector<int32_t> alone2;
  {
    Scheduler s(*f.m, nullptr, {}, f.metrics);
    auto r = greedy_request(p2, 4, nullptr);
    s.submit(r);
    while (s.step()) {
    }
    alone2 = take_ids(*r);
  }
  SchedulerLimits lim;
  lim.max_step_tokens = 1;  // the decode of r1 alone fills every step's budget
  Scheduler s(*f.m, nullptr, lim, f.metrics);
  auto r1 = greedy_request(p1, 30, nullptr), r2 = greedy_request(p2, 4, nullptr);
  s.submit(r1);
  int steps = 0;
  while (steps < 4 && s.step()) steps++;  // r1 prefilled (3 steps) and decoding
  s.submit(r2);
  while (s.step()) steps++;
  EXPECT_EQ(take_ids(*r2), alone2);
  EXPECT_EQ(take_ids(*r1).size(), 30u);
}

// Every family's layer through the RowBatch hook: Qwen3 (per-head q/k norms, no biases), Llama (Llama 3
// RoPE rescaling) and Gemma 3 (sandwich norms, GeGLU, a sliding-window layer whose window the prompts
// outgrow), small configs; a mixed batch against infer/generator.h with each adapter attached.
TEST(ServeScheduler, MixedBatchMatchesTheGeneratorForQwen3AndLlama) {
  for (const char* preset : {"qwen3-0.6b", "llama3.2-1b", "gemma3-1b"}) {
    SCOPED_TRACE(preset);
    const ModelConfig c = test::small_family_config(preset, 257);
    Fixture f;
    f.m = CausalLM::random(c, Device::cpu(), DType::F32, 21);
    CausalLM& m = *f.m;
    const std::vector<std::shared_ptr<const ServeAdapter>> which = {f.adapter("x", 5), nullptr, f.adapter("y", 6)};
    Rng rng(17);
    std::vector<std::shared_ptr<Request>> reqs;
    Scheduler s(m, nullptr, {}, f.metrics);
    for (size_t i = 0; i < which.size(); i++) {
      reqs.push_back(greedy_request(random_prompt(rng, 4 + 3 * static_cast<int64_t>(i), 257), 8, which[i]));
      s.submit(reqs.back());
    }
    while (s.step()) {
    }
    for (size_t i = 0; i < which.size(); i++)
      EXPECT_EQ(take_ids(*reqs[i]), generator_greedy_ids(m, which[i].get(), reqs[i]->prompt, 8)) << "request " << i;
  }
}

// A sequence's blocks of the paged KV cache are taken as it grows (its prompt + one block at admission, then one
// block per 16 tokens, from a pool the short ones also take from and give back to): a long generation beside
// short ones keeps exactly the generator's tokens across every new block.
TEST(ServeScheduler, GrowingKvCacheKeepsTheGeneratorsTokens) {
  Fixture f;
  Rng rng(23);
  auto a = f.adapter("g", 9);
  const std::vector<int32_t> prompt = random_prompt(rng, 5, 300);
  Scheduler s(*f.m, nullptr, {}, f.metrics);
  auto longer = greedy_request(prompt, 100, a);
  auto short1 = greedy_request(random_prompt(rng, 7, 300), 5, nullptr);
  s.submit(longer);
  s.submit(short1);
  while (s.step()) {
  }
  EXPECT_EQ(take_ids(*longer), generator_greedy_ids(*f.m, a.get(), prompt, 100));
  EXPECT_EQ(longer->finish_reason, "length");
}

// The scheduler samples on the model's device (here the CPU twins of ops/sampling_pool.h): for random settings
// (greedy, temperature, top-k, top-p, min-p, the repetition penalty above and below 1, OpenAI's frequency and
// presence penalties, seeds) mixed in one batch, every request gives exactly the tokens of the host path
// alone (SequenceDecoder::sample on copied logits): with everyone submitted at once, joining one by one, in
// chunked prefills, and with a KV cache so small that sequences are preempted and resumed (their draw counters
// and histories carry over).
TEST(ServeScheduler, DeviceSamplingGivesTheHostPathsTokens) {
  auto m = CausalLM::random(small_config(), Device::cpu(), DType::F32, 12);
  for (uint64_t seed : {71, 72}) {
    Rng rng(seed);
    SchedulerLimits lim;
    lim.max_batch = 6;
    test::expect_scheduler_matches_host(*m, test::random_sampling_requests(rng, 16, 300, 24, 24), lim, false);
    lim.max_step_tokens = 9;
    test::expect_scheduler_matches_host(*m, test::random_sampling_requests(rng, 12, 300, 30, 20), lim, true);
  }
  Rng rng(73);
  SchedulerLimits tight;
  tight.max_batch = 8;
  tight.kv_cache_tokens = 12 * kKvBlockTokens;  // room for about three of them at full length
  const uint64_t preempted =
      test::expect_scheduler_matches_host(*m, test::random_sampling_requests(rng, 16, 300, 20, 40), tight, false);
  EXPECT_GT(preempted, 0u) << "the cache must be small enough to preempt";
}

// A NaN logit ends the request with the host path's error (the token it is at, "NaN"), not the server.
TEST(ServeScheduler, NonFiniteLogitsFailTheRequestWithTheHostPathsError) {
  auto m = CausalLM::random(small_config(), Device::cpu(), DType::F32, 13);
  const int64_t C = m->config().hidden_size;
  float* head = const_cast<Tensor&>(m->lm_head()).data<float>();
  for (int64_t i = 0; i < C; i++) head[123 * C + i] = std::numeric_limits<float>::quiet_NaN();  // logit 123: NaN
  Rng rng(74);
  auto reqs = test::random_sampling_requests(rng, 8, 300, 10, 6);
  for (auto& r : reqs) std::replace(r->prompt.begin(), r->prompt.end(), 123, 124);  // (a tied head: keep 123 out)
  Metrics metrics;
  Scheduler s(*m, nullptr, {}, metrics);
  for (auto& r : reqs) s.submit(r);
  while (s.step()) {
  }
  for (auto& r : reqs) {
    const test::HostRun want = test::host_reference(*m, *r);
    ASSERT_NE(want.error.find("NaN at token 123"), std::string::npos) << want.error;
    std::string text;
    EXPECT_TRUE(r->wait_take(text, nullptr, std::chrono::milliseconds(0)));
    EXPECT_EQ(r->finish_reason, "error");
    EXPECT_EQ(r->error, want.error);
    EXPECT_EQ(r->error_status, 500);
  }
  EXPECT_EQ(s.kv_pool().used_blocks(), 0);
  EXPECT_TRUE(s.idle());
}

// A history row comes back clean: a penalised request whose client leaves mid-decode gives its row to the next
// penalised request, which still gives exactly the host path's tokens (a strong penalty, so a stale mark shows).
TEST(ServeScheduler, HistoryRowOfALeaverComesBackClean) {
  auto m = CausalLM::random(small_config(), Device::cpu(), DType::F32, 14);
  Rng rng(75);
  auto reqs = test::random_sampling_requests(rng, 3, 300, 30, 24);
  for (auto& r : reqs) {
    r->opt.gen.sampling.temperature = 0.0f;  // greedy: the penalty alone decides between tokens
    r->opt.gen.sampling.repetition_penalty = 50.0f;
    r->opt.gen.max_new_tokens = 24;
  }
  SchedulerLimits lim;
  lim.max_batch = 2;
  Metrics metrics;
  Scheduler s(*m, nullptr, lim, metrics);
  s.submit(reqs[0]);
  s.submit(reqs[1]);
  for (int i = 0; i < 6; i++) s.step();
  reqs[0]->cancel();
  s.submit(reqs[2]);  // takes the leaver's row
  while (s.step()) {
  }
  EXPECT_EQ(reqs[0]->finish_reason, "cancelled");
  EXPECT_EQ(take_ids(*reqs[1]), test::host_reference(*m, *reqs[1]).ids);
  EXPECT_EQ(take_ids(*reqs[2]), test::host_reference(*m, *reqs[2]).ids);
}

// The history pool starts at kSeenPoolFirstRows rows and doubles when a newcomer with a repetition penalty finds
// none free, up to max_batch (here 8 -> 16 -> 20); rows marked before a growth keep their marks (the tokens of
// every request are still the host path's), and requests without the penalty take no row.
TEST(ServeScheduler, HistoryPoolGrowsOnDemandUpToMaxBatch) {
  auto m = CausalLM::random(small_config(), Device::cpu(), DType::F32, 15);
  Rng rng(76);
  auto reqs = test::random_sampling_requests(rng, 24, 300, 12, 6);
  for (size_t i = 0; i < reqs.size(); i++) {
    reqs[i]->opt.gen.sampling.temperature = 0.0f;
    reqs[i]->opt.gen.sampling.repetition_penalty = i % 6 == 5 ? 1.0f : 20.0f;  // 20 of 24 use a history row
  }
  SchedulerLimits lim;
  lim.max_batch = 20;
  lim.max_queue = 24;
  Metrics metrics;
  Scheduler s(*m, nullptr, lim, metrics);
  EXPECT_EQ(s.history_rows(), kSeenPoolFirstRows);
  for (auto& r : reqs) s.submit(r);
  int64_t most = s.history_rows();
  while (s.step()) most = std::max(most, s.history_rows());
  EXPECT_EQ(most, 20) << "20 penalised requests ran at once: the pool grows 8 -> 16 -> 20";
  for (auto& r : reqs) EXPECT_EQ(take_ids(*r), test::host_reference(*m, *r).ids);
}

// warm_up runs its throwaway requests to the end and leaves the scheduler as it found it: nothing queued or
// running, every KV block free, the metrics at zero, and a request afterwards gives the tokens it gives on a
// scheduler that never warmed up.
TEST(ServeScheduler, WarmUpLeavesNothingBehind) {
  Fixture f;
  SchedulerLimits lim;
  lim.max_batch = 3;
  lim.max_step_tokens = 40;
  Rng rng(5);
  const std::vector<int32_t> prompt = random_prompt(rng, 9, 300);
  Scheduler cold(*f.m, nullptr, lim, f.metrics);
  auto r1 = greedy_request(prompt, 6, nullptr);
  cold.submit(r1);
  while (cold.step()) {
  }
  const std::vector<int32_t> expected = take_ids(*r1);
  ASSERT_EQ(expected.size(), 6u);

  Metrics metrics;
  Scheduler s(*f.m, nullptr, lim, metrics);
  EXPECT_EQ(s.warm_up(), 3 * (40 / 3));  // max_batch sequences filling the step budget
  EXPECT_GT(s.kv_pool().blocks(), 0);
  EXPECT_EQ(s.kv_pool().used_blocks(), 0);
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(metrics.requests_total.load(), 0u);
  EXPECT_EQ(metrics.prompt_tokens.load(), 0u);
  EXPECT_EQ(metrics.decode_steps.load(), 0u);
  EXPECT_EQ(metrics.ttft.count(), 0u);
  EXPECT_EQ(metrics.kv_blocks_total.load(), s.kv_pool().blocks());
  auto r2 = greedy_request(prompt, 6, nullptr);
  s.submit(r2);
  while (s.step()) {
  }
  EXPECT_EQ(take_ids(*r2), expected);
  EXPECT_EQ(metrics.requests_total.load(), 1u);
}
