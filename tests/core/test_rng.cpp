// Rng::advance (the PCG jump-ahead) and what relies on it: write_random_model fills large tensors in parallel
// chunks, and must write exactly the values of one sequential pass.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "core/rng.h"
#include "io/safetensors.h"
#include "model/family.h"
#include "model/presets.h"

namespace wick {
namespace {

TEST(Rng, AdvanceSkipsExactlyThatManyDraws) {
  Rng pick(99);
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{1000}, pick.below(300000), pick.below(300000)}) {
    Rng a(7, 11), b(7, 11);
    for (uint64_t i = 0; i < n; i++) a.next_u32();
    b.advance(n);
    EXPECT_EQ(a.state(), b.state()) << n;
    EXPECT_EQ(a.next_u32(), b.next_u32()) << n;
  }
}

TEST(Rng, RandomModelWeightsAreThoseOfOneSequentialPass) {
  // An embedding of 8192 x 300 = 2.4M elements: three parallel chunks of 2^20.
  ModelConfig c = preset_config("tiny");
  c.vocab_size = 8192;
  c.hidden_size = 300;
  c.num_heads = 5;
  c.num_kv_heads = 5;
  c.head_dim = 60;
  const std::string dir = (std::filesystem::temp_directory_path() / ("wick_rng_" + std::to_string(::getpid()))).string();
  const uint64_t seed = 1234;
  write_random_model(c, dir, seed, DType::F32, "", 0.5f);
  const auto file = io::SafeTensorsFile::open(dir + "/model.safetensors");
  const WeightSpec first = c.family().weights(c).front();
  ASSERT_EQ(first.role, WeightRole::Embedding) << first.name;
  const std::vector<float> got = file->get(first.name).to_f32_vector();
  ASSERT_EQ(static_cast<int64_t>(got.size()), c.vocab_size * c.hidden_size);
  Rng rng(seed);
  for (size_t i = 0; i < got.size(); i++) {
    const float want = 0.0f + 0.5f * rng.normal();
    if (got[i] != want) {
      ADD_FAILURE() << "element " << i << ": " << got[i] << " != " << want;
      break;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace wick
