// Evaluation: the eval loss is the mean over every counted token of the set (checked against per-example
// losses computed directly), recorded in metrics.jsonl, tracked as the best across a resume; the eval split
// is deterministic and disjoint.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <set>

#include "common/testutil.h"
#include "train/test_trainer_util.h"
#include "core/error.h"
#include "lora/lora.h"
#include "model/loss_and_grads.h"
#include "train/batcher.h"
#include "train/trainer.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::unique_ptr<CausalLM> tiny_model(uint64_t seed) {
  return CausalLM::random(test::tiny_config(61), Device::cpu(), DType::F32, seed);
}


// Mean loss over the counted tokens, each example run alone.
LossSum direct_loss(CausalLM& m, const Dataset& d) {
  LossAndGrads g(m);
  LossSum s;
  for (const Example& e : d.examples) {
    const LossSum l = g.eval(Batcher::make_batch({&e}, 0));
    s.sum += l.sum;
    s.count += l.count;
  }
  return s;
}

TrainOptions options(const std::string& name, bool packing) {
  TrainOptions o;
  o.out_dir = (fs::path(WICK_BINARY_DIR) / "test_scratch" / "eval" / name).string();
  fs::remove_all(o.out_dir);
  o.lora.r = 4;
  o.lora.alpha = 8;
  o.lora.target_modules = all_lora_targets();
  o.lr = 2e-2;
  o.scheduler = "constant";
  o.warmup_steps = 0;
  o.batch_size = 3;
  o.max_steps = 4;
  o.eval_every = 2;
  o.packing = packing;
  o.max_seq_len = 16;
  return o;
}

std::vector<json> eval_records(const std::string& out_dir) {
  std::vector<json> out;
  std::ifstream f(fs::path(out_dir) / "metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    const json j = json::parse(line);
    if (j.contains("eval_loss")) out.push_back(j);
  }
  return out;
}

TEST(Eval, LossIsTheMeanOverCountedTokensOfTheSet) {
  for (bool packing : {false, true}) {
    SCOPED_TRACE(packing ? "packing" : "padding");
    auto m = tiny_model(3);
    const Dataset train = random_dataset({6, 9, 4, 7, 5, 8, 3, 6}, 61, 1, 0.3f);
    const Dataset eval = random_dataset({5, 11, 3, 8, 7}, 61, 2, 0.3f);
    const TrainOptions o = options(packing ? "packing" : "padding", packing);
    Trainer tr(*m, train, o, &eval);
    // Fresh adapters (B = 0) on random base weights.
    const EvalReport r0 = tr.evaluate();
    const LossSum d0 = direct_loss(*m, eval);
    EXPECT_EQ(r0.tokens, eval.counted_tokens());
    EXPECT_EQ(r0.tokens, d0.count);
    EXPECT_NEAR(r0.loss, d0.mean(), 1e-5 * d0.mean());
    EXPECT_DOUBLE_EQ(r0.ppl, std::exp(r0.loss));

    std::vector<EvalReport> seen;
    tr.set_eval_callback([&](const EvalReport& r) { seen.push_back(r); });
    ASSERT_TRUE(tr.run(nullptr));
    ASSERT_EQ(seen.size(), 2u);  // steps 2 and 4 (the end: not twice)
    EXPECT_EQ(seen[0].step, 2);
    EXPECT_EQ(seen[1].step, 4);
    // After training, against the trained adapters.
    const LossSum d1 = direct_loss(*m, eval);
    EXPECT_NEAR(seen[1].loss, d1.mean(), 1e-5 * d1.mean());
    EXPECT_GT(std::fabs(d1.mean() - d0.mean()), 1e-4);  // the adapters did change the loss
    const auto recs = eval_records(o.out_dir);
    ASSERT_EQ(recs.size(), 2u);
    double best = r0.loss;
    for (size_t i = 0; i < 2; i++) {
      EXPECT_EQ(recs[i].at("step").get<int64_t>(), seen[i].step);
      EXPECT_DOUBLE_EQ(recs[i].at("eval_loss").get<double>(), seen[i].loss);
      EXPECT_DOUBLE_EQ(recs[i].at("eval_ppl").get<double>(), std::exp(seen[i].loss));
      EXPECT_EQ(recs[i].at("eval_tokens").get<int64_t>(), eval.counted_tokens());
      best = std::min(best, seen[i].loss);
      EXPECT_DOUBLE_EQ(seen[i].best_loss, best);
    }
    ASSERT_TRUE(tr.best_eval_loss().has_value());
    EXPECT_DOUBLE_EQ(*tr.best_eval_loss(), best);
  }
}

// A resumed run keeps the eval records of the steps it had done and tracks the best across both parts.
TEST(Eval, BestEvalLossSurvivesResume) {
  const Dataset train = random_dataset({6, 9, 4, 7, 5}, 61, 4, 0.3f);
  const Dataset eval = random_dataset({5, 8, 7}, 61, 5, 0.3f);
  TrainOptions o = options("resume", false);
  o.eval_every = 1;
  o.max_steps = 3;
  o.lr = 0.3;  // large enough that the eval loss moves (and may rise)
  {
    auto m = tiny_model(7);
    Trainer tr(*m, train, o, &eval);
    ASSERT_TRUE(tr.run(nullptr));
  }
  const auto first = eval_records(o.out_dir);
  ASSERT_EQ(first.size(), 3u);
  TrainOptions o2 = o;
  o2.resume = o.out_dir;
  o2.max_steps = 5;
  auto m = tiny_model(7);
  Trainer tr(*m, train, o2, &eval);
  EXPECT_FALSE(tr.best_eval_loss().has_value());  // known once run() reads the kept records
  ASSERT_TRUE(tr.run(nullptr));
  const auto all = eval_records(o.out_dir);
  ASSERT_EQ(all.size(), 5u);
  double best = INFINITY;
  for (size_t i = 0; i < all.size(); i++) {
    EXPECT_EQ(all[i].at("step").get<int64_t>(), static_cast<int64_t>(i + 1));
    best = std::min(best, all[i].at("eval_loss").get<double>());
  }
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(all[i], first[i]);
  ASSERT_TRUE(tr.best_eval_loss().has_value());
  EXPECT_DOUBLE_EQ(*tr.best_eval_loss(), best);
}

TEST(Eval, NeedsAnEvalSet) {
  auto m = tiny_model(3);
  const Dataset train = random_dataset({6, 9}, 61, 1, 0.3f);
  TrainOptions o = options("no_set", false);
  EXPECT_THROW({ Trainer t(*m, train, o); }, Error);  // eval_every without a set
  o.eval_every = 0;
  Trainer tr(*m, train, o);
  EXPECT_THROW(tr.evaluate(), Error);
  EXPECT_FALSE(tr.best_eval_loss().has_value());
}

// Example i starts with token i, so the sets can be told apart.
Dataset numbered(int n) {
  Dataset d = random_dataset(std::vector<int>(n, 4), 50, 9, 0.3f);
  for (int i = 0; i < n; i++) {
    d.examples[i].ids[0] = i;
    d.examples[i].labels = d.examples[i].ids;  // every set of them counts something
  }
  d.path = "numbered";
  return d;
}

std::vector<int> firsts(const Dataset& d) {
  std::vector<int> v;
  for (const Example& e : d.examples) v.push_back(e.ids[0]);
  return v;
}

TEST(EvalSplit, DeterministicDisjointAndInFileOrder) {
  Dataset a = numbered(20), b = numbered(20), c = numbered(20);
  const Dataset ea = split_eval(a, 0.25, 7), eb = split_eval(b, 0.25, 7), ec = split_eval(c, 0.25, 8);
  EXPECT_EQ(firsts(ea), firsts(eb));
  EXPECT_EQ(firsts(a), firsts(b));
  EXPECT_NE(firsts(ea), firsts(ec));  // another seed, another split
  EXPECT_EQ(ea.examples.size(), 5u);
  EXPECT_EQ(a.examples.size(), 15u);
  std::set<int> all;
  for (int i : firsts(ea)) all.insert(i);
  for (int i : firsts(a)) EXPECT_TRUE(all.insert(i).second) << i << " is in both sets";
  EXPECT_EQ(all.size(), 20u);
  const std::vector<int> fe = firsts(ea), fa = firsts(a);
  EXPECT_TRUE(std::is_sorted(fe.begin(), fe.end()));
  EXPECT_TRUE(std::is_sorted(fa.begin(), fa.end()));
  // The examples moved intact.
  const Dataset whole = numbered(20);
  for (const Example& e : ea.examples) EXPECT_EQ(e.labels, whole.examples[e.ids[0]].labels);

  Dataset small = numbered(3);
  EXPECT_EQ(split_eval(small, 0.01, 1).examples.size(), 1u);  // at least one
  Dataset two = numbered(2);
  EXPECT_EQ(split_eval(two, 0.99, 1).examples.size(), 1u);  // leaving at least one
  for (double bad : {0.0, 1.0, 1.5, -0.1}) {
    Dataset d = numbered(10);
    EXPECT_THROW(split_eval(d, bad, 1), Error) << bad;
  }
  Dataset one = numbered(1);
  EXPECT_THROW(split_eval(one, 0.5, 1), Error);
}

}  // namespace
}  // namespace wick::test
