// wick merge's output layout: above --max-shard-size the weights are sharded as transformers'
// save_pretrained shards them (model-0000i-of-0000N.safetensors + model.safetensors.index.json), and wick's
// sharded loader reads them back to the same tensors and the same logits as the single-file merge; the
// chat template and every tokenizer file present are copied.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "common/model_checks.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "lora/lora.h"
#include "lora/merge_folder.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(MergeShards, PlanIsHuggingFaceHubs) {
  using P = std::vector<std::vector<size_t>>;
  EXPECT_EQ(plan_shards({4, 4, 4, 4}, 10), (P{{0, 1}, {2, 3}}));
  EXPECT_EQ(plan_shards({4, 6, 1}, 10), (P{{0, 1}, {2}}));  // exactly at the limit stays
  // A tensor over the limit gets its own shard, before the shard being filled.
  EXPECT_EQ(plan_shards({1, 20, 1}, 10), (P{{1}, {0, 2}}));
  EXPECT_EQ(plan_shards({}, 10), P{});
}

TEST(MergeShards, SizesParseAsTransformers) {
  EXPECT_EQ(parse_shard_size("5GB"), 5'000'000'000);
  EXPECT_EQ(parse_shard_size("500MB"), 500'000'000);
  EXPECT_EQ(parse_shard_size("2GiB"), 2LL << 30);
  EXPECT_EQ(parse_shard_size("64kib"), 65536);
  EXPECT_EQ(parse_shard_size("1000"), 1000);
  EXPECT_THROW(parse_shard_size("5 parsecs"), Error);
  EXPECT_THROW(parse_shard_size("GB"), Error);
  EXPECT_THROW(parse_shard_size("0"), Error);
  EXPECT_THROW(parse_shard_size("1.2.3GB"), Error);  // not 1.2GB
  EXPECT_THROW(parse_shard_size("0.1"), Error);      // less than a byte
  EXPECT_THROW(parse_shard_size("1e9"), Error);
  EXPECT_THROW(parse_shard_size("99999999TB"), Error);  // beyond int64
}

TEST(MergeShards, ShardedMergeReloadsToTheSameModel) {
  const std::vector<std::string> fixtures = fixture_dirs("qwen2-tiny-a", "reference.json");
  if (fixtures.empty()) GTEST_SKIP() << "no qwen2-tiny-a fixture";
  const std::string fixture = fixtures[0];
  TempDir tmp;
  const std::string model = tmp.file("model");
  fs::create_directories(model);
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
    fs::copy_file(fs::path(fixture) / f, fs::path(model) / f);
  // Stand-ins for the files a real model folder has besides the weights.
  const std::vector<std::string> extra = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                          "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja"};
  for (const std::string& f : extra) write_bytes(model + "/" + f, "{\"stand-in for\": \"" + f + "\"}\n");
  const std::string adapter = (fs::path(fixture) / "adapter_trained").string();

  const std::string single = tmp.file("single"), sharded = tmp.file("sharded");
  merge_adapter_folder(model, adapter, single);
  EXPECT_TRUE(fs::exists(single + "/model.safetensors"));
  EXPECT_FALSE(fs::exists(single + "/model.safetensors.index.json"));
  const int64_t limit = 40'000;  // bytes: forces several shards of the f32 fixture
  merge_adapter_folder(model, adapter, sharded, limit);
  EXPECT_FALSE(fs::exists(sharded + "/model.safetensors"));

  // The index: total_size, and every tensor mapped to one of the N files named as transformers names them.
  const nlohmann::json index = io::read_json_file(sharded + "/model.safetensors.index.json");
  const io::Checkpoint ref = io::Checkpoint::open(single);
  const auto& map = index.at("weight_map");
  EXPECT_EQ(map.size(), ref.names().size());
  std::map<std::string, int64_t> per_file;
  int64_t total = 0;
  for (const std::string& n : ref.names()) {
    const int64_t bytes = static_cast<int64_t>(ref.get(n).nbytes());
    total += bytes;
    per_file[map.at(n).get<std::string>()] += bytes;
  }
  EXPECT_EQ(index.at("metadata").at("total_size").get<int64_t>(), total);
  const size_t n = per_file.size();
  ASSERT_GE(n, 3u);
  char want[64];
  size_t i = 0;
  for (const auto& [file, bytes] : per_file) {
    std::snprintf(want, sizeof want, "model-%05zu-of-%05zu.safetensors", ++i, n);
    EXPECT_EQ(file, want);
    EXPECT_TRUE(fs::exists(sharded + "/" + file));
    // Each shard within the limit unless it holds a single tensor larger than it.
    const auto st = io::SafeTensorsFile::open(sharded + "/" + file);
    EXPECT_TRUE(bytes <= limit || st->tensors().size() == 1) << file << " " << bytes;
    for (const io::TensorInfo& t : st->tensors()) EXPECT_EQ(map.at(t.name), file) << t.name;
  }

  // wick's sharded loader: the same tensors, bit for bit, and the same logits.
  const io::Checkpoint got = io::Checkpoint::open(sharded);
  for (const std::string& name : ref.names()) {
    const Tensor a = ref.get(name), b = got.get(name);
    EXPECT_EQ(a.dtype(), b.dtype()) << name;
    EXPECT_EQ(a.shape(), b.shape()) << name;
    EXPECT_TRUE(same_bytes(a, b)) << name;
  }
  const Fixture f = load_fixture(fixture);
  auto m1 = CausalLM::load(single, Device::cpu(), DType::F32);
  auto m2 = CausalLM::load(sharded, Device::cpu(), DType::F32);
  const Tensor ids = f.get("input_ids").to(DType::I32);
  EXPECT_EQ(max_abs_diff(m1->forward(ids, nullptr), m2->forward(ids, nullptr)), 0.0);

  for (const std::string& file : extra) EXPECT_EQ(file_bytes(sharded + "/" + file), file_bytes(model + "/" + file)) << file;
  EXPECT_EQ(file_bytes(sharded + "/config.json"), file_bytes(model + "/config.json"));
}

}  // namespace
}  // namespace wick::test
