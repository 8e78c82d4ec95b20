// BatchForward (serve/batch_forward.h) on the CPU: a step that mixes cached sequences (one decoding, one
// continuing its prompt in a second chunk) with prompts that start in it (attended with the dense kernel,
// packed with one segment id each) gives every sequence the logits it gets alone (up to f32 rounding), and so
// does the step with the fresh prompts first (every chunk then takes the paged kernel). Random tiny Qwen2.5 and Gemma 3
// layouts (Gemma 3's sliding-window layers keep the paged kernel for every chunk).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/testutil.h"
#include "core/rng.h"
#include "model/presets.h"
#include "serve/batch_forward.h"
#include "serve/kv_pool.h"

using namespace wick;
using namespace wick::serve;

namespace {

std::vector<int32_t> random_ids(Rng& rng, int64_t n, int64_t V) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; i++) ids.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(V))));
  return ids;
}

// One sequence's history: the chunks fed before the step under test, then the step's own chunk.
struct Story {
  std::vector<std::vector<int32_t>> before;
  std::vector<int32_t> step;
  int64_t tokens() const {
    int64_t n = static_cast<int64_t>(step.size());
    for (const auto& c : before) n += static_cast<int64_t>(c.size());
    return n;
  }
};

// The step's logits row of each story, all stories in one batch in the given order (histories first fed one
// sequence a forward).
std::vector<std::vector<float>> batched(CausalLM& m, const std::vector<Story>& stories, const std::vector<size_t>& order) {
  int64_t total = 0;
  for (const Story& s : stories) total += s.tokens() + kKvBlockTokens;
  KvPool pool(m, total);
  BatchForward bf(m, pool);
  std::vector<SeqBlocks> kv(stories.size());
  std::vector<float> logits;
  for (size_t i = 0; i < stories.size(); i++) {
    EXPECT_TRUE(pool.grow(kv[i], stories[i].tokens()));
    for (const auto& c : stories[i].before) {
      std::vector<SeqChunk> one{{&kv[i], c, nullptr}};
      bf.run(one, logits);
    }
  }
  std::vector<SeqChunk> step;
  for (size_t i : order) step.push_back({&kv[i], stories[i].step, nullptr});
  bf.run(step, logits);
  const int64_t V = m.config().vocab_size;
  std::vector<std::vector<float>> rows(stories.size());
  for (size_t k = 0; k < order.size(); k++)
    rows[order[k]].assign(logits.begin() + static_cast<int64_t>(k) * V, logits.begin() + static_cast<int64_t>(k + 1) * V);
  return rows;
}

// sgemm's blocking depends on the number of rows, so a batch's logits equal a sequence's alone only up to
// the f32 rounding of its sums (~1e-7 here); wrong masks or positions would be off by the logits' size (~0.1).
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); i++) d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

void check(const char* preset) {
  SCOPED_TRACE(preset);
  // Gemma 3 at test size, with a window the longer stories outgrow; Qwen2.5's tiny preset as it is.
  ModelConfig c = std::string(preset) == "tiny" ? preset_config(preset) : test::small_family_config(preset, 500);
  c.vocab_size = 500;
  std::unique_ptr<CausalLM> m = CausalLM::random(c, Device::cpu(), DType::F32, 9);
  Rng rng(17);
  const int64_t V = c.vocab_size;
  std::vector<Story> stories{
      {{random_ids(rng, 21, V)}, random_ids(rng, 1, V)},   // decoding
      {{random_ids(rng, 9, V)}, random_ids(rng, 6, V)},    // its prompt's second chunk
      {{}, random_ids(rng, 7, V)},                         // prompts starting in this step
      {{}, random_ids(rng, 19, V)},
      {{}, random_ids(rng, 1, V)},
  };
  const std::vector<std::vector<float>> mixed = batched(*m, stories, {0, 1, 2, 3, 4});      // fresh last: dense
  const std::vector<std::vector<float>> fresh_first = batched(*m, stories, {2, 3, 4, 0, 1});  // all paged
  for (size_t i = 0; i < stories.size(); i++) {
    const std::vector<float> alone = batched(*m, {stories[i]}, {0})[0];
    EXPECT_LT(max_diff(mixed[i], alone), 1e-5) << "sequence " << i << " in the mixed step";
    EXPECT_LT(max_diff(fresh_first[i], alone), 1e-5) << "sequence " << i << " with the fresh prompts first";
  }
}

}  // namespace

TEST(BatchForward, FreshPromptsPackedBesideCachedSequencesGiveTheLogitsOfEachAlone) {
  check("tiny");
  check("gemma3-1b");
}
