// config.json and generation_config.json: both fixture styles, every refusal, and round trips.
#include <filesystem>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "io/io_testutil.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/family.h"
#include "model/generation_config.h"
#include "model/presets.h"

namespace wick {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

std::string fixture(const std::string& name) { return test::source_dir() + "/tests/fixtures/" + name; }

// Data-driven: our parse agrees with the raw JSON on every fixture config (either style).
TEST(ModelConfig, AgreesWithRawJsonOnEveryFixture) {
  const auto dirs = test::fixture_dirs("qwen2-tiny", "config.json");
  ASSERT_FALSE(dirs.empty());
  for (const std::string& dir : dirs) {
    const std::string path = (fs::path(dir) / "config.json").string();
    SCOPED_TRACE(path);
    const json j = json::parse(io::read_file(path));
    const ModelConfig c = ModelConfig::from_json_file(path);
    EXPECT_EQ(c.hidden_size, j["hidden_size"].get<int64_t>());
    EXPECT_EQ(c.intermediate_size, j["intermediate_size"].get<int64_t>());
    EXPECT_EQ(c.num_layers, j["num_hidden_layers"].get<int64_t>());
    EXPECT_EQ(c.num_heads, j["num_attention_heads"].get<int64_t>());
    EXPECT_EQ(c.num_kv_heads, j.value("num_key_value_heads", j["num_attention_heads"]).get<int64_t>());
    EXPECT_EQ(c.head_dim * c.num_heads, c.hidden_size);
    EXPECT_EQ(c.vocab_size, j["vocab_size"].get<int64_t>());
    EXPECT_EQ(c.tie_word_embeddings, j.value("tie_word_embeddings", false));
    EXPECT_EQ(c.rms_norm_eps, j["rms_norm_eps"].get<double>());
    const double theta = j.contains("rope_parameters") ? j["rope_parameters"]["rope_theta"].get<double>()
                                                       : j["rope_theta"].get<double>();
    EXPECT_EQ(c.rope_theta, theta);
    EXPECT_EQ(c.max_position_embeddings, j["max_position_embeddings"].get<int64_t>());
    EXPECT_EQ(c.torch_dtype, (j.contains("dtype") ? j["dtype"] : j["torch_dtype"]).get<std::string>());
    for (int64_t id : c.eos_token_ids) EXPECT_LT(id, c.vocab_size);
    // to_json round trip
    const ModelConfig r = ModelConfig::from_json_string(c.to_json(), "roundtrip");
    EXPECT_EQ(r.to_json(), c.to_json());
    EXPECT_EQ(r.num_parameters(), c.num_parameters());
  }
}

TEST(ModelConfig, FixtureA_HubStyle) {
  const ModelConfig c = ModelConfig::from_json_file(fixture("qwen2-tiny-a/config.json"));
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.q_dim(), 64);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_EQ(c.intermediate_size, 160);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.rope_theta, 1e4);
  EXPECT_EQ(c.torch_dtype, "float32");
  EXPECT_TRUE(c.bos_token_ids.empty());  // 151643 is outside the 512-token vocabulary: absent
  EXPECT_TRUE(c.eos_token_ids.empty());
}

TEST(ModelConfig, FixtureC_Transformers5Style) {
  const ModelConfig c = ModelConfig::from_json_file(fixture("qwen2-tiny-c/config.json"));
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.num_layers, 4);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.rope_theta, 1e4);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
}

// A Qwen2.5-0.5B-like config (formats.md §2.2), edited per case.
json base_config() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
    "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})");
}

ModelConfig parse(const json& j) { return ModelConfig::from_json_string(j.dump(), "cfg.json"); }

TEST(ModelConfig, Qwen25HalfBillion) {
  const ModelConfig c = parse(base_config());
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.kv_dim(), 128);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{151643});
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  // Qwen2.5-0.5B has 494,032,768 parameters (embedding tied).
  EXPECT_EQ(c.num_parameters(), 494032768);
}

TEST(ModelConfig, AcceptedVariants) {
  json j = base_config();
  j.erase("num_key_value_heads");
  EXPECT_EQ(parse(j).num_kv_heads, 14);
  j["num_key_value_heads"] = nullptr;
  EXPECT_EQ(parse(j).num_kv_heads, 14);

  j = base_config();
  j["eos_token_id"] = {151645, 151643, 151645, 999999999, -1};
  EXPECT_EQ(parse(j).eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  j["eos_token_id"] = nullptr;
  j["bos_token_id"] = json::array();
  EXPECT_TRUE(parse(j).eos_token_ids.empty());
  EXPECT_TRUE(parse(j).bos_token_ids.empty());

  j = base_config();
  j.erase("rope_theta");
  j.erase("torch_dtype");
  j["dtype"] = "float16";
  j["rope_parameters"] = {{"rope_theta", 5e5}, {"rope_type", "default"}};
  j["layer_types"] = json::array({"full_attention", "full_attention"});
  EXPECT_EQ(parse(j).rope_theta, 5e5);
  EXPECT_EQ(parse(j).torch_dtype, "float16");

  j = base_config();
  j["rope_scaling"] = nullptr;
  j["head_dim"] = 64;
  j["use_mrope"] = false;
  EXPECT_EQ(parse(j).head_dim, 64);
  j["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(parse(j).rope_theta, 1e6);
  j.erase("rope_theta");
  EXPECT_EQ(parse(j).rope_theta, 10000.0);  // Qwen2Config default
}

TEST(ModelConfig, Refusals) {
  struct Case {
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["model_type"] = "gpt2"; }, {"model_type 'gpt2'", "supported model families: qwen2"}},
      {[](json& j) { j.erase("model_type"); }, {"model_type", "qwen2"}},
      {[](json& j) { j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}}; }, {"rope_scaling", "yarn"}},
      {[](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}}; }, {"rope_scaling", "linear"}},
      {[](json& j) { j["rope_scaling"] = "yarn"; }, {"rope_scaling", "object"}},
      {[](json& j) { j["rope_parameters"] = {{"rope_theta", 1e6}, {"rope_type", "yarn"}}; }, {"rope_parameters", "yarn"}},
      {[](json& j) { j["rope_parameters"] = {{"rope_theta", 2e6}}; }, {"rope_theta", "disagrees"}},
      {[](json& j) { j["rope_theta"] = -1.0; }, {"rope_theta", "positive"}},
      {[](json& j) { j["use_sliding_window"] = true; }, {"use_sliding_window", "not supported"}},
      {[](json& j) { j["layer_types"] = {"full_attention", "sliding_attention"}; }, {"layer_types", "sliding_attention"}},
      {[](json& j) { j["hidden_act"] = "gelu"; }, {"hidden_act", "gelu", "silu"}},
      {[](json& j) { j["use_mrope"] = true; }, {"use_mrope"}},
      {[](json& j) { j.erase("hidden_size"); }, {"missing required field 'hidden_size'"}},
      {[](json& j) { j.erase("vocab_size"); }, {"missing required field 'vocab_size'"}},
      {[](json& j) { j.erase("num_hidden_layers"); }, {"'num_hidden_layers'"}},
      {[](json& j) { j["intermediate_size"] = 0; }, {"'intermediate_size'", "positive"}},
      {[](json& j) { j["num_hidden_layers"] = -2; }, {"'num_hidden_layers'", "positive"}},
      // fuzz/fuzz_config: 277777 layers took a minute listing weights before this limit; 2^62 would not end.
      {[](json& j) { j["num_hidden_layers"] = 277777; }, {"'num_hidden_layers'", "277777", "at most 1024"}},
      {[](json& j) { j["num_hidden_layers"] = 1LL << 62; }, {"'num_hidden_layers'", "at most 1024"}},
      {[](json& j) { j["num_key_value_heads"] = 0; }, {"'num_key_value_heads'", "positive"}},
      {[](json& j) { j["hidden_size"] = 64.5; }, {"'hidden_size'", "integer"}},
      {[](json& j) { j["hidden_size"] = "896"; }, {"'hidden_size'", "integer"}},
      {[](json& j) { j["num_attention_heads"] = 15; }, {"hidden_size 896", "not divisible", "num_attention_heads 15"}},
      {[](json& j) { j["num_key_value_heads"] = 4; }, {"num_attention_heads 14", "not divisible", "num_key_value_heads 4"}},
      {[](json& j) { j["head_dim"] = 128; }, {"'head_dim'", "128", "64"}},
      {[](json& j) { j["eos_token_id"] = "2"; }, {"'eos_token_id'"}},
      {[](json& j) { j["eos_token_id"] = {1, 2.5}; }, {"'eos_token_id'"}},
      {[](json& j) { j["tie_word_embeddings"] = 1; }, {"'tie_word_embeddings'", "true or false"}},
      {[](json& j) { j["rms_norm_eps"] = 0; }, {"'rms_norm_eps'", "positive"}},
      {[](json& j) { j["max_position_embeddings"] = 0; }, {"'max_position_embeddings'"}},
      {[](json& j) { j["hidden_size"] = 1LL << 40; j["vocab_size"] = 1LL << 40; j["num_attention_heads"] = 1; j["num_key_value_heads"] = 1; }, {"too large"}},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    SCOPED_TRACE("case " + std::to_string(i));
    json j = base_config();
    cases[i].edit(j);
    std::vector<std::string> needles = cases[i].needles;
    needles.push_back("cfg.json");
    const std::string msg = test::error_message([&] { parse(j); });
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nshould mention: " << n;
  }
}

TEST(ModelConfig, BadFiles) {
  TempDir tmp;
  EXPECT_WICK_ERROR(ModelConfig::from_json_file(tmp.file("config.json")), "config.json", "cannot open");
  io::write_file_atomic(tmp.file("config.json"), "{\"model_type\": \"qwen2\",");
  EXPECT_WICK_ERROR(ModelConfig::from_json_file(tmp.file("config.json")), tmp.file("config.json"), "invalid JSON");
  io::write_file_atomic(tmp.file("config.json"), R"({"model_type": "qwen2", "model_type": "llama"})");
  EXPECT_WICK_ERROR(ModelConfig::from_json_file(tmp.file("config.json")), tmp.file("config.json"), "duplicate key 'model_type'");
  io::write_file_atomic(tmp.file("config.json"), "[1]");
  EXPECT_WICK_ERROR(ModelConfig::from_json_file(tmp.file("config.json")), "must be a JSON object");
}

// The other families: their published configs (model/presets.cpp, as on the Hub) and what each refuses.
TEST(ModelConfig, FamiliesFromPublishedConfigs) {
  const ModelConfig q3 = preset_config("qwen3-0.6b");
  EXPECT_EQ(q3.model_type, "qwen3");
  EXPECT_EQ(q3.head_dim, 128);  // its own field: q_dim 2048 != hidden 1024
  EXPECT_EQ(q3.q_dim(), 2048);
  EXPECT_TRUE(q3.qk_norm);
  EXPECT_FALSE(q3.attention_bias);
  EXPECT_EQ(q3.num_parameters(), 596049920);  // Qwen3-0.6B, tied
  const ModelConfig l = preset_config("llama3.2-1b");
  EXPECT_EQ(l.model_type, "llama");
  EXPECT_EQ(l.head_dim, 64);
  EXPECT_EQ(l.rope_scaling.factor, 32.0);
  EXPECT_EQ(l.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(l.num_parameters(), 1235814400);  // Llama-3.2-1B, tied
  EXPECT_EQ(preset_config("mistral-7b").num_parameters(), 7248023552);  // Mistral-7B-v0.3
  for (const std::string& name : preset_names()) {
    const ModelConfig c = preset_config(name);
    const ModelConfig r = ModelConfig::from_json_string(c.to_json(), "roundtrip " + name);
    EXPECT_EQ(r.to_json(), c.to_json()) << name;
    EXPECT_EQ(r.num_parameters(), c.num_parameters()) << name;
    EXPECT_EQ(json::parse(c.to_json())["architectures"][0], c.family().architecture) << name;
  }
}

TEST(ModelConfig, FamilyRefusals) {
  const json llama = json::parse(preset_config("llama3.2-1b").to_json());
  const json qwen3 = json::parse(preset_config("qwen3-0.6b").to_json());
  const json mistral = json::parse(preset_config("mistral-7b").to_json());
  struct Case {
    json j;
    std::function<void(json&)> edit;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases = {
      {llama, [](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }, {"rope_scaling", "yarn", "llama3"}},
      {llama, [](json& j) { j["rope_scaling"].erase("low_freq_factor"); }, {"low_freq_factor"}},
      {llama, [](json& j) { j["rope_scaling"]["high_freq_factor"] = 1.0; }, {"low_freq_factor != high_freq_factor"}},
      {llama, [](json& j) { j["hidden_act"] = "gelu"; }, {"hidden_act"}},
      {qwen3, [](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}}; }, {"rope_scaling", "llama3", "default RoPE"}},
      {qwen3, [](json& j) { j["use_sliding_window"] = true; }, {"use_sliding_window"}},
      {qwen3, [](json& j) { j["head_dim"] = 0; }, {"head_dim", "positive"}},
      {mistral, [](json& j) { j["sliding_window"] = 4096; }, {"sliding_window", "4096", "not supported"}},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    SCOPED_TRACE("case " + std::to_string(i));
    json j = cases[i].j;
    cases[i].edit(j);
    const std::string msg = test::error_message([&] { parse(j); });
    for (const std::string& n : cases[i].needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nshould mention: " << n;
  }
}

// Every fixture folder's config.json (any family) parses, and its tables name exactly the checkpoint's tensors.
TEST(ModelConfig, EveryFamilyFixtureMatchesItsWeightTable) {
  const auto dirs = test::fixture_dirs("", "config.json");
  int seen = 0;
  for (const std::string& dir : dirs) {
    if (!fs::exists(fs::path(dir) / "model.safetensors")) continue;
    SCOPED_TRACE(dir);
    const ModelConfig c = ModelConfig::from_json_file((fs::path(dir) / "config.json").string());
    const json raw = json::parse(io::read_file((fs::path(dir) / "config.json").string()));
    EXPECT_EQ(c.model_type, raw["model_type"].get<std::string>());
    const io::Checkpoint ck = io::Checkpoint::open(dir);
    const std::vector<std::string> all = ck.names();
    std::set<std::string> names(all.begin(), all.end()), table;
    int64_t n = 0;
    for (const WeightSpec& w : c.family().weights(c)) {
      table.insert(w.name);
      EXPECT_EQ(shape_str(ck.info(w.name).shape), shape_str(w.shape)) << w.name;
      n += shape_numel(w.shape);
    }
    EXPECT_EQ(names, table);
    EXPECT_EQ(n, c.num_parameters());
    seen++;
  }
  EXPECT_GE(seen, 8);
}


TEST(GenerationConfig, FixturesFallBackToConfig) {
  for (const std::string& dir : test::fixture_dirs("qwen2-tiny", "config.json")) {
    const ModelConfig c = ModelConfig::from_json_file((fs::path(dir) / "config.json").string());
    const GenerationConfig g = load_generation_config(dir, c);
    EXPECT_EQ(g.eos_token_ids, c.eos_token_ids) << dir;  // the fixtures' generation configs name no eos
    EXPECT_FALSE(g.temperature.has_value());
    EXPECT_FALSE(g.top_k.has_value());
  }
}

TEST(GenerationConfig, Qwen25InstructStyle) {
  TempDir tmp;
  const ModelConfig c = parse(base_config());
  io::write_file_atomic(tmp.file("generation_config.json"), R"({
    "bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
    "repetition_penalty": 1.1, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "transformers_version": "4.37.0"})");
  const GenerationConfig g = load_generation_config(tmp.path(), c);
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  EXPECT_EQ(load_generation_eos(tmp.path(), c), g.eos_token_ids);
  EXPECT_EQ(g.pad_token_id, 151643);
  EXPECT_EQ(g.bos_token_id, 151643);
  EXPECT_EQ(g.do_sample, true);
  EXPECT_EQ(g.temperature, 0.7);
  EXPECT_EQ(g.top_p, 0.8);
  EXPECT_EQ(g.top_k, 20);
  EXPECT_EQ(g.repetition_penalty, 1.1);
  EXPECT_FALSE(g.min_p.has_value());

  // No eos in generation_config.json -> config.json's; no file at all -> the same.
  io::write_file_atomic(tmp.file("generation_config.json"), R"({"eos_token_id": null, "temperature": 0.5})");
  EXPECT_EQ(load_generation_eos(tmp.path(), c), std::vector<int64_t>{151645});
  fs::remove(tmp.file("generation_config.json"));
  EXPECT_EQ(load_generation_eos(tmp.path(), c), std::vector<int64_t>{151645});
  // Ids outside the vocabulary are dropped.
  io::write_file_atomic(tmp.file("generation_config.json"), R"({"eos_token_id": [5, 200000]})");
  EXPECT_EQ(load_generation_eos(tmp.path(), c), std::vector<int64_t>{5});
}

TEST(GenerationConfig, Refusals) {
  TempDir tmp;
  const ModelConfig c = parse(base_config());
  const std::string p = tmp.file("generation_config.json");
  for (const auto& [text, needle] : std::vector<std::pair<std::string, std::string>>{
           {R"({"temperature": -1})", "'temperature'"},
           {R"({"temperature": "hot"})", "'temperature'"},
           {R"({"top_p": 0})", "'top_p'"},
           {R"({"top_p": 1.5})", "'top_p'"},
           {R"({"top_k": -3})", "'top_k'"},
           {R"({"top_k": 2.5})", "'top_k'"},
           {R"({"repetition_penalty": 0})", "'repetition_penalty'"},
           {R"({"min_p": 2})", "'min_p'"},
           {R"({"do_sample": "yes"})", "'do_sample'"},
           {R"({"eos_token_id": "x"})", "'eos_token_id'"},
           {R"({"top_k": 1, "top_k": 2})", "duplicate"},
           {R"([])", "JSON object"},
       }) {
    io::write_file_atomic(p, text);
    EXPECT_WICK_ERROR(load_generation_config(tmp.path(), c), p, needle);
  }
}

}  // namespace
}  // namespace wick
