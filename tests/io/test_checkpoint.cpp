// Checkpoints: single files, shard pairs with an index (and every way an index can disagree with its
// shards), and the fixture checkpoints read as real third-party files.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "io/io_testutil.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace wick::io {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

struct Sharded : ::testing::Test {
  TempDir tmp;
  Rng rng{21};
  Tensor a = test::randn({4, 3}, rng), b = test::randn({5}, rng).to(DType::BF16), c = Tensor::from_i64({9, -9}, {2});
  void SetUp() override {
    save_safetensors(tmp.file("model-00001-of-00002.safetensors"), {{"a", a}, {"b", b}});
    save_safetensors(tmp.file("model-00002-of-00002.safetensors"), {{"c", c}});
  }
  void index(const nlohmann::json& weight_map) {
    nlohmann::json j = {{"metadata", {{"total_size", 62}}}, {"weight_map", weight_map}};
    write_file_atomic(tmp.file("model.safetensors.index.json"), j.dump(2));
  }
  nlohmann::json good_map() const {
    return {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00001-of-00002.safetensors"},
            {"c", "model-00002-of-00002.safetensors"}};
  }
};

TEST_F(Sharded, OpensShardPair) {
  index(good_map());
  for (const std::string& target : {tmp.path(), tmp.file("model.safetensors.index.json")}) {
    Checkpoint ck = Checkpoint::open(target);
    EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(ck.files().size(), 2u);
    EXPECT_EQ(ck.get("a").to_f32_vector(), a.to_f32_vector());
    EXPECT_EQ(ck.get("b").dtype(), DType::BF16);
    EXPECT_EQ(ck.get("b").to_f32_vector(), b.to_f32_vector());
    EXPECT_EQ(ck.get("c").to_i64_vector(), c.to_i64_vector());
    EXPECT_EQ(ck.info("a").shape, (Shape{4, 3}));
    EXPECT_NE(ck.where("c").find("model-00002-of-00002.safetensors"), std::string::npos);
    EXPECT_TRUE(ck.has("a"));
    EXPECT_FALSE(ck.has("d"));
    EXPECT_WICK_ERROR(ck.get("d"), "'d'", "not found", "model-0000");
  }
}

TEST_F(Sharded, MissingShard) {
  auto m = good_map();
  m["c"] = "model-00003-of-00002.safetensors";
  index(m);
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "model.safetensors.index.json", "model-00003-of-00002.safetensors",
                    "does not exist");
}

TEST_F(Sharded, NameNotInItsShard) {
  auto m = good_map();
  m["c"] = "model-00001-of-00002.safetensors";
  index(m);
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "model.safetensors.index.json", "'c'", "does not hold it");
  auto m2 = good_map();
  m2["ghost"] = "model-00002-of-00002.safetensors";
  index(m2);
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "'ghost'", "does not hold it");
}

TEST_F(Sharded, NameInTwoShards) {
  save_safetensors(tmp.file("model-00002-of-00002.safetensors"), {{"c", c}, {"a", a}});
  index(good_map());
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "model.safetensors.index.json", "'a'", "two shards");
}

TEST_F(Sharded, BadIndex) {
  for (const std::string bad : {"../x.safetensors", "/etc/passwd", ""}) {
    auto m = good_map();
    m["c"] = bad;
    index(m);
    EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "model.safetensors.index.json", "inside the checkpoint folder");
  }
  auto m = good_map();
  m["c"] = 3;
  index(m);
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "'c'", "shard file name");
  index(nlohmann::json::array());
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "weight_map");
  write_file_atomic(tmp.file("model.safetensors.index.json"), R"({"weight_map":{"a":"x","a":"y"}})");
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "model.safetensors.index.json", "duplicate", "weight_map.a");
  write_file_atomic(tmp.file("model.safetensors.index.json"), "{not json");
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "model.safetensors.index.json", "invalid JSON");
}

TEST_F(Sharded, BrokenShardIsNamed) {
  index(good_map());
  write_file_atomic(tmp.file("model-00002-of-00002.safetensors"), "short");
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "model-00002-of-00002.safetensors", "too small");
}

TEST(CheckpointOpen, FolderWithoutWeights) {
  TempDir tmp;
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), tmp.path(), "no model.safetensors");
  write_file_atomic(tmp.file("pytorch_model.bin"), "x");
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.path()), "pickle");
  EXPECT_WICK_ERROR(Checkpoint::open(tmp.file("nothing")), "nothing", "no such file");
  const std::string too_long = tmp.file(std::string(5000, 'x'));  // ENAMETOOLONG: still a wick::Error
  EXPECT_WICK_ERROR(Checkpoint::open(too_long), "no such file");
  EXPECT_WICK_ERROR(SafeTensorsFile::open(too_long), "cannot open");
}

TEST(CheckpointOpen, SingleFileWinsOverIndex) {
  TempDir tmp;
  save_safetensors(tmp.file("model.safetensors"), {{"x", Tensor::from_f32({1, 2}, {2})}});
  write_file_atomic(tmp.file("model.safetensors.index.json"), "{}");  // would be an error if read
  Checkpoint ck = Checkpoint::open(tmp.path());
  EXPECT_EQ(ck.names(), std::vector<std::string>{"x"});
  Checkpoint direct = Checkpoint::open(tmp.file("model.safetensors"));
  EXPECT_EQ(direct.get("x").to_f32_vector(), (std::vector<float>{1, 2}));
}

// The fixture checkpoints (written by transformers): every Qwen2 tensor of formats.md §2.3 with the
// shape the config implies, tied embeddings (no lm_head), and the total matching num_parameters().
TEST(FixtureFiles, CheckpointMatchesConfig) {
  const auto dirs = test::fixture_dirs("qwen2-tiny", "config.json");
  ASSERT_FALSE(dirs.empty());
  for (const std::string& dir : dirs) {
    SCOPED_TRACE(dir);
    const ModelConfig cfg = ModelConfig::from_json_file((fs::path(dir) / "config.json").string());
    Checkpoint ck = Checkpoint::open(dir);
    const int64_t C = cfg.hidden_size, I = cfg.intermediate_size, q = cfg.q_dim(), kv = cfg.kv_dim();
    std::map<std::string, Shape> want = {{"model.embed_tokens.weight", {cfg.vocab_size, C}}, {"model.norm.weight", {C}}};
    if (!cfg.tie_word_embeddings) want["lm_head.weight"] = {cfg.vocab_size, C};
    for (int64_t l = 0; l < cfg.num_layers; l++) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      want[p + "input_layernorm.weight"] = {C};
      want[p + "post_attention_layernorm.weight"] = {C};
      want[p + "self_attn.q_proj.weight"] = {q, C};
      want[p + "self_attn.q_proj.bias"] = {q};
      want[p + "self_attn.k_proj.weight"] = {kv, C};
      want[p + "self_attn.k_proj.bias"] = {kv};
      want[p + "self_attn.v_proj.weight"] = {kv, C};
      want[p + "self_attn.v_proj.bias"] = {kv};
      want[p + "self_attn.o_proj.weight"] = {C, q};
      want[p + "mlp.gate_proj.weight"] = {I, C};
      want[p + "mlp.up_proj.weight"] = {I, C};
      want[p + "mlp.down_proj.weight"] = {C, I};
    }
    EXPECT_EQ(ck.names().size(), want.size());
    int64_t total = 0;
    for (const auto& [name, shape] : want) {
      ASSERT_TRUE(ck.has(name)) << name;
      EXPECT_EQ(ck.info(name).shape, shape) << name;
      Tensor t = ck.get(name);
      EXPECT_TRUE(dtype_is_float(t.dtype())) << name;
      total += t.numel();
      // Random parameters: not all zero, all finite.
      const auto v = t.to_f32_vector();
      EXPECT_TRUE(std::any_of(v.begin(), v.end(), [](float x) { return x != 0; })) << name;
      EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); })) << name;
    }
    EXPECT_EQ(total, cfg.num_parameters());
    EXPECT_EQ(ck.files()[0]->metadata().at("format"), "pt");
  }
}

TEST(FixtureFiles, ReferenceTensors) {
  for (const std::string& dir : test::fixture_dirs("qwen2-tiny", "reference.safetensors")) {
    SCOPED_TRACE(dir);
    const ModelConfig cfg = ModelConfig::from_json_file((fs::path(dir) / "config.json").string());
    auto f = SafeTensorsFile::open((fs::path(dir) / "reference.safetensors").string());
    const int64_t V = cfg.vocab_size, C = cfg.hidden_size;
    const std::map<std::string, std::pair<DType, Shape>> want = {
        {"input_ids", {DType::I64, {2, 12}}},         {"logits", {DType::F32, {2, 12, V}}},
        {"final_hidden", {DType::F32, {2, 12, C}}},   {"gen_prompt", {DType::I64, {1, 5}}},
        {"gen_ids", {DType::I64, {1, 15}}},           {"gen_logits", {DType::F32, {1, 10, V}}},
        {"lora_logits", {DType::F32, {2, 12, V}}},    {"merged_logits", {DType::F32, {2, 12, V}}},
        {"train_input_ids", {DType::I64, {2, 12}}},   {"train_labels", {DType::I64, {2, 12}}}};
    for (const auto& [name, dt_shape] : want) {
      ASSERT_TRUE(f->has(name)) << name;
      Tensor t = f->get(name);
      EXPECT_EQ(t.dtype(), dt_shape.first) << name;
      EXPECT_EQ(t.shape(), dt_shape.second) << name;
    }
    for (int64_t id : f->get("input_ids").to_i64_vector()) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, V);
    }
    // grad.<PEFT name> for every lora_A / lora_B, named with the adapter name "default".
    int grads = 0;
    for (const TensorInfo& ti : f->tensors())
      if (ti.name.rfind("grad.base_model.model.", 0) == 0) {
        grads++;
        EXPECT_NE(ti.name.find(".default.weight"), std::string::npos) << ti.name;
      }
    EXPECT_GT(grads, 0);
  }
}

}  // namespace
}  // namespace wick::io
