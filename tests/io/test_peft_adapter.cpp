// PEFT adapter folders: the fixture adapters (made by PEFT) load, save back byte-identically, and agree
// with PEFT's module targeting; malformed adapters are refused by name.
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "common/testutil.h"
#include "io/io_testutil.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace wick::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

const char* kLinear[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                         "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

std::vector<std::pair<std::string, std::string>> fixture_adapters() {  // (model dir, adapter dir)
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& dir : test::fixture_dirs("qwen2-tiny", "config.json"))
    for (const char* sub : {"adapter_init", "adapter_trained"})
      if (fs::exists(fs::path(dir) / sub / "adapter_config.json")) out.emplace_back(dir, (fs::path(dir) / sub).string());
  return out;
}

TEST(PeftAdapter, FixtureAdaptersLoadAndMatchPeft) {
  const auto adapters = fixture_adapters();
  ASSERT_GE(adapters.size(), 4u);
  for (const auto& [model_dir, dir] : adapters) {
    SCOPED_TRACE(dir);
    const ModelConfig mc = ModelConfig::from_json_file((fs::path(model_dir) / "config.json").string());
    const json raw = json::parse(read_file((fs::path(dir) / "adapter_config.json").string()));
    const AdapterFiles ad = load_peft_adapter(dir);
    EXPECT_EQ(ad.cfg.r, raw["r"].get<int64_t>());
    EXPECT_EQ(ad.cfg.alpha, raw["lora_alpha"].get<double>());
    EXPECT_EQ(ad.cfg.use_rslora, raw["use_rslora"].get<bool>());
    // PEFT's scaling: alpha / r, or alpha / sqrt(r) with rsLoRA (a fixture of either kind holds).
    const double alpha = raw["lora_alpha"].get<double>(), r = raw["r"].get<double>();
    EXPECT_EQ(ad.cfg.scale(), raw.value("use_rslora", false) ? alpha / std::sqrt(r) : alpha / r);
    if (raw["target_modules"].is_array())
      EXPECT_EQ(std::set<std::string>(ad.cfg.target_modules.begin(), ad.cfg.target_modules.end()),
                raw["target_modules"].get<std::set<std::string>>());
    else
      EXPECT_EQ(ad.cfg.target_regex.value_or(""), raw["target_modules"].get<std::string>());
    validate_against(ad, mc, dir);

    // PEFT put a LoRA on exactly the modules its config targets: targets() must agree on every linear.
    for (int64_t l = 0; l < mc.num_layers; l++)
      for (const char* lin : kLinear) {
        const std::string path = "model.layers." + std::to_string(l) + "." + lin;
        EXPECT_EQ(ad.cfg.targets(path), ad.modules.count(path) == 1) << path;
      }
    // Values are the file's, as owned f32 tensors.
    auto f = SafeTensorsFile::open((fs::path(dir) / "adapter_model.safetensors").string());
    EXPECT_EQ(f->tensors().size(), 2 * ad.modules.size());
    for (const auto& [module, pair] : ad.modules) {
      EXPECT_EQ(pair.A.dtype(), DType::F32);
      EXPECT_EQ(pair.A.to_f32_vector(), f->get("base_model.model." + module + ".lora_A.weight").to_f32_vector());
      EXPECT_EQ(pair.B.to_f32_vector(), f->get("base_model.model." + module + ".lora_B.weight").to_f32_vector());
      const auto b = pair.B.to_f32_vector();
      EXPECT_TRUE(std::any_of(b.begin(), b.end(), [](float x) { return x != 0; })) << module;  // README: B non-zero
    }
  }
}

TEST(PeftAdapter, FixtureFacts) {
  const AdapterFiles a = load_peft_adapter(test::source_dir() + "/tests/fixtures/qwen2-tiny-a/adapter_init");
  EXPECT_EQ(a.cfg.r, 4);
  EXPECT_EQ(a.cfg.alpha, 8);
  EXPECT_EQ(a.cfg.scale(), 2.0);
  EXPECT_EQ(a.modules.size(), 14u);  // 7 projections x 2 layers
  EXPECT_EQ(a.modules.at("model.layers.1.self_attn.k_proj").B.shape(), (Shape{32, 4}));
  EXPECT_EQ(a.modules.at("model.layers.0.mlp.down_proj").A.shape(), (Shape{4, 160}));
  const AdapterFiles c = load_peft_adapter(test::source_dir() + "/tests/fixtures/qwen2-tiny-c/adapter_trained");
  EXPECT_EQ(c.cfg.r, 16);
  EXPECT_EQ(c.cfg.scale(), 0.5);
  EXPECT_EQ(c.modules.size(), 16u);  // gate/up/down/o x 4 layers
  EXPECT_EQ(c.modules.count("model.layers.0.self_attn.q_proj"), 0u);
}

TEST(PeftAdapter, SaveReproducesPeftFilesAndRoundTrips) {
  for (const auto& [model_dir, dir] : fixture_adapters()) {
    SCOPED_TRACE(dir);
    TempDir tmp;
    const std::string out = tmp.file("nested/adapter");  // created on demand
    const AdapterFiles ad = load_peft_adapter(dir);
    save_peft_adapter(out, ad.cfg, ad.modules);
    // PEFT's own names, layout and bytes.
    EXPECT_TRUE(read_file(out + "/adapter_model.safetensors") == read_file(dir + "/adapter_model.safetensors"));
    const AdapterFiles back = load_peft_adapter(out);
    ASSERT_EQ(back.modules.size(), ad.modules.size());
    for (const auto& [module, pair] : ad.modules) {
      EXPECT_EQ(back.modules.at(module).A.to_f32_vector(), pair.A.to_f32_vector());
      EXPECT_EQ(back.modules.at(module).B.to_f32_vector(), pair.B.to_f32_vector());
    }
    EXPECT_EQ(back.cfg.r, ad.cfg.r);
    EXPECT_EQ(back.cfg.alpha, ad.cfg.alpha);
    EXPECT_EQ(back.cfg.target_modules, ad.cfg.target_modules);
    // The config carries PEFT's fields with PEFT's values wherever the fixture has them.
    const json ours = json::parse(read_file(out + "/adapter_config.json"));
    const json peft = json::parse(read_file(dir + "/adapter_config.json"));
    for (const auto& [k, v] : ours.items()) {
      if (k == "target_modules") continue;  // a set: order differs
      ASSERT_TRUE(peft.contains(k)) << k;
      EXPECT_EQ(v, peft[k]) << k;
    }
    for (const char* k : {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora",
                          "bias", "base_model_name_or_path", "fan_in_fan_out", "init_lora_weights", "inference_mode",
                          "use_dora", "modules_to_save"})
      EXPECT_TRUE(ours.contains(k)) << k;
  }
}

TEST(PeftAdapter, SaveRandomAdapter) {
  TempDir tmp;
  Rng rng(5);
  LoraConfig cfg;
  cfg.r = 3;
  cfg.alpha = 6.5;
  cfg.use_rslora = true;
  cfg.target_modules = {"q_proj", "down_proj"};
  cfg.base_model_name_or_path = "Qwen/Qwen2.5-0.5B";
  std::map<std::string, LoraPair> mods;
  mods["model.layers.0.self_attn.q_proj"] = {test::randn({3, 8}, rng), test::randn({8, 3}, rng).to(DType::BF16)};
  mods["model.layers.1.mlp.down_proj"] = {test::randn({3, 20}, rng), test::randn({8, 3}, rng)};
  save_peft_adapter(tmp.path(), cfg, mods);
  auto f = SafeTensorsFile::open(tmp.file("adapter_model.safetensors"));
  std::set<std::string> names;
  for (const TensorInfo& ti : f->tensors()) {
    names.insert(ti.name);
    EXPECT_EQ(ti.dtype_str, "F32");
  }
  EXPECT_EQ(names, (std::set<std::string>{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                                          "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                                          "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
                                          "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"}));
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const std::string text = read_file(tmp.file("adapter_config.json"));
  EXPECT_EQ(text.rfind("{\n  \"alpha_pattern\": {},\n  \"base_model_name_or_path\": \"Qwen/Qwen2.5-0.5B\",", 0), 0u) << text;
  const json j = json::parse(text);
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["lora_alpha"], 6.5);
  EXPECT_EQ(j["use_rslora"], true);
  EXPECT_EQ(j["bias"], "none");
  EXPECT_TRUE(j["modules_to_save"].is_null());
  const AdapterFiles back = load_peft_adapter(tmp.path());
  EXPECT_DOUBLE_EQ(back.cfg.scale(), 6.5 / std::sqrt(3.0));
  EXPECT_EQ(back.cfg.base_model_name_or_path, "Qwen/Qwen2.5-0.5B");
  EXPECT_EQ(back.modules.at("model.layers.0.self_attn.q_proj").B.to_f32_vector(),
            mods["model.layers.0.self_attn.q_proj"].B.to_f32_vector());
  EXPECT_EQ(back.modules.at("model.layers.1.mlp.down_proj").A.to_f32_vector(),
            mods["model.layers.1.mlp.down_proj"].A.to_f32_vector());
  // Bad input to save.
  std::map<std::string, LoraPair> bad = {{"m", {test::randn({2, 8}, rng), test::randn({8, 3}, rng)}}};
  EXPECT_WICK_ERROR(save_peft_adapter(tmp.file("b"), cfg, bad), "lora_A of 'm'", "[2, 8]", "[3, in]");
}

// A crafted adapter folder: the fixture a config with edits, and the given tensors.
struct Crafted : ::testing::Test {
  TempDir tmp;
  Rng rng{9};
  json cfg = json::parse(read_file(test::source_dir() + "/tests/fixtures/qwen2-tiny-a/adapter_init/adapter_config.json"));
  std::vector<std::pair<std::string, Tensor>> tensors;
  void SetUp() override {
    add("model.layers.0.self_attn.q_proj", 64, 64);
  }
  void add(const std::string& module, int64_t out, int64_t in, const std::string& mid = "") {
    tensors.emplace_back("base_model.model." + module + ".lora_A" + mid + ".weight", test::randn({4, in}, rng));
    tensors.emplace_back("base_model.model." + module + ".lora_B" + mid + ".weight", test::randn({out, 4}, rng));
  }
  std::string write() {
    write_file_atomic(tmp.file("adapter_config.json"), cfg.dump(2));
    save_safetensors(tmp.file("adapter_model.safetensors"), tensors);
    return tmp.path();
  }
  std::string st() const { return tmp.file("adapter_model.safetensors"); }
  std::string cj() const { return tmp.file("adapter_config.json"); }
};

TEST_F(Crafted, AdapterNameInKeysAndHalfPrecision) {
  cfg["target_modules"] = {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.up_proj"};  // the two it holds
  tensors.clear();
  add("model.layers.0.self_attn.q_proj", 64, 64, ".default");
  tensors.emplace_back("base_model.model.model.layers.1.mlp.up_proj.lora_A.default.weight", test::randn({4, 64}, rng).to(DType::BF16));
  tensors.emplace_back("base_model.model.model.layers.1.mlp.up_proj.lora_B.default.weight", test::randn({160, 4}, rng).to(DType::F16));
  const AdapterFiles ad = load_peft_adapter(write());
  ASSERT_EQ(ad.modules.size(), 2u);
  const LoraPair& up = ad.modules.at("model.layers.1.mlp.up_proj");
  EXPECT_EQ(up.A.dtype(), DType::F32);
  EXPECT_EQ(up.A.to_f32_vector(), tensors[2].second.to_f32_vector());
  EXPECT_EQ(up.B.to_f32_vector(), tensors[3].second.to_f32_vector());
  validate_against(ad, ModelConfig::from_json_file(test::source_dir() + "/tests/fixtures/qwen2-tiny-a/config.json"), "x");
}

TEST_F(Crafted, ConfigRefusals) {
  const std::vector<std::pair<std::function<void(json&)>, std::vector<std::string>>> cases = {
      {[](json& j) { j["use_dora"] = true; }, {"use_dora", "DoRA"}},
      {[](json& j) { j["bias"] = "all"; }, {"bias", "\"all\""}},
      {[](json& j) { j["bias"] = "lora_only"; }, {"bias", "lora_only"}},
      {[](json& j) { j["modules_to_save"] = {"lm_head"}; }, {"modules_to_save", "not supported"}},
      {[](json& j) { j["peft_type"] = "IA3"; }, {"peft_type 'IA3'", "LORA"}},
      {[](json& j) { j.erase("peft_type"); }, {"peft_type"}},
      {[](json& j) { j["rank_pattern"] = {{"q_proj", 8}}; }, {"rank_pattern", "not supported yet"}},
      {[](json& j) { j["alpha_pattern"] = {{"q_proj", 16}}; }, {"alpha_pattern", "not supported yet"}},
      {[](json& j) { j["fan_in_fan_out"] = true; }, {"fan_in_fan_out"}},
      {[](json& j) { j["lora_bias"] = true; }, {"lora_bias"}},
      {[](json& j) { j["r"] = 0; }, {"'r'", "positive"}},
      {[](json& j) { j["r"] = "4"; }, {"'r'", "integer"}},
      {[](json& j) { j["lora_dropout"] = 1.5; }, {"lora_dropout"}},
      {[](json& j) { j["target_modules"] = {"q_proj", 3}; }, {"target_modules"}},
      {[](json& j) { j["target_modules"] = "(unclosed"; }, {"target_modules", "does not compile"}},
      {[](json& j) { j["layers_pattern"] = "h"; }, {"layers_pattern"}},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    SCOPED_TRACE("case " + std::to_string(i));
    cfg = json::parse(read_file(test::source_dir() + "/tests/fixtures/qwen2-tiny-a/adapter_init/adapter_config.json"));
    cases[i].first(cfg);
    const std::string dir = write();
    std::vector<std::string> needles = cases[i].second;
    needles.push_back(cj());
    const std::string msg = test::error_message([&] { load_peft_adapter(dir); });
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nshould mention: " << n;
  }
}

TEST_F(Crafted, TensorRefusals) {
  const std::string m = "base_model.model.model.layers.0.self_attn.q_proj";
  const std::vector<std::pair<std::function<void()>, std::vector<std::string>>> cases = {
      {[&] { tensors.emplace_back(m + ".lora_B.bias", test::randn({64}, rng)); }, {".lora_B.bias", "bias"}},
      {[&] { tensors.emplace_back(m + ".lora_magnitude_vector", test::randn({64}, rng)); }, {"lora_magnitude_vector", "DoRA"}},
      {[&] { tensors.emplace_back("base_model.model.model.embed_tokens.lora_embedding_A", test::randn({4, 512}, rng)); },
       {"lora_embedding_A", "embedding"}},
      {[&] { tensors.emplace_back("base_model.model.model.layers.1.mlp.up_proj.lora_A.weight", test::randn({4, 64}, rng)); },
       {"up_proj.lora_A.weight", "no matching lora_B"}},
      {[&] { tensors.emplace_back("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight", test::randn({160, 4}, rng)); },
       {"up_proj.lora_B.weight", "no matching lora_A"}},
      {[&] { tensors[0].second = test::randn({5, 64}, rng); }, {"q_proj.lora_A.weight", "rank 5", "r = 4"}},
      {[&] { tensors[1].second = test::randn({64, 3}, rng); }, {"q_proj.lora_B.weight", "rank 3", "r = 4"}},
      {[&] { tensors.emplace_back("base_model.model.lm_head.weight", test::randn({512, 64}, rng)); },
       {"unknown tensor 'base_model.model.lm_head.weight'"}},
      {[&] { tensors.emplace_back("model.layers.1.mlp.up_proj.lora_A.weight", test::randn({4, 64}, rng)); },
       {"unknown tensor 'model.layers.1.mlp.up_proj.lora_A.weight'", "prefix"}},
      {[&] { tensors.emplace_back(m + ".base_layer.bias", test::randn({64}, rng)); }, {"unknown tensor", "base_layer.bias"}},
      {[&] { tensors[0].second = Tensor::from_i64({1, 2, 3, 4}, {4, 1}); }, {"q_proj.lora_A.weight", "I64"}},
      {[&] { tensors[0].second = test::randn({4, 8, 8}, rng); }, {"q_proj.lora_A.weight", "2-D"}},
      {[&] { tensors.emplace_back(m + ".lora_A.other.weight", test::randn({4, 64}, rng)); }, {"different adapter names", "'other'"}},
      {[&] { tensors.clear(); }, {"no LoRA tensors"}},
  };
  for (size_t i = 0; i < cases.size(); i++) {
    SCOPED_TRACE("case " + std::to_string(i));
    tensors.clear();
    add("model.layers.0.self_attn.q_proj", 64, 64);
    cases[i].first();
    const std::string dir = write();
    std::vector<std::string> needles = cases[i].second;
    needles.push_back(st());
    const std::string msg = test::error_message([&] { load_peft_adapter(dir); });
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nshould mention: " << n;
  }
}

TEST_F(Crafted, MissingFiles) {
  EXPECT_WICK_ERROR(load_peft_adapter(tmp.file("nope")), "nope", "not a folder");
  EXPECT_WICK_ERROR(load_peft_adapter(tmp.path()), tmp.path(), "no adapter_config.json");
  write_file_atomic(tmp.file("adapter_config.json"), cfg.dump());
  write_file_atomic(tmp.file("adapter_model.bin"), "pickle");
  EXPECT_WICK_ERROR(load_peft_adapter(tmp.path()), tmp.path(), "no adapter_model.safetensors", "pickle");
}

TEST_F(Crafted, ValidateAgainstModel) {
  const ModelConfig mc = ModelConfig::from_json_file(test::source_dir() + "/tests/fixtures/qwen2-tiny-a/config.json");
  cfg["target_modules"] = {"model.layers.1.self_attn.k_proj", "model.layers.0.self_attn.o_proj", "model.layers.1.mlp.down_proj"};
  tensors.clear();
  add("model.layers.1.self_attn.k_proj", 32, 64);
  add("model.layers.0.self_attn.o_proj", 64, 64);
  add("model.layers.1.mlp.down_proj", 64, 160);
  validate_against(load_peft_adapter(write()), mc, "adapter");

  auto bad = [&](const std::string& module, int64_t out, int64_t in, std::vector<std::string> needles) {
    tensors.clear();
    add(module, out, in);
    const AdapterFiles ad = load_peft_adapter(write());
    needles.push_back("my-adapter");
    const std::string msg = test::error_message([&] { validate_against(ad, mc, "my-adapter"); });
    for (const std::string& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << msg << "\nshould mention: " << n;
  };
  // Only modules the config selects are applied (PEFT's rule, test_peft_targets.cpp): a regex that selects
  // every *_proj module lets the checks below see the odd ones.
  cfg["target_modules"] = ".*_proj";
  bad("model.layers.0.self_attn.k_proj", 64, 64, {"k_proj.lora_B.weight", "[64, 4]", "expected [32, 4]"});
  bad("model.layers.0.mlp.down_proj", 64, 64, {"down_proj.lora_A.weight", "[4, 64]", "expected [4, 160]"});
  bad("model.layers.0.mlp.gate_proj", 64, 64, {"gate_proj.lora_B.weight", "expected [160, 4]"});
  bad("model.layers.2.self_attn.q_proj", 64, 64, {"model.layers.2.self_attn.q_proj", "2 layers"});
  bad("model.layers.0.self_attn.qkv_proj", 64, 64, {"qkv_proj", "not a q/k/v/o/gate/up/down projection"});
  cfg["target_modules"] = ".*";
  bad("lm_head", 512, 64, {"lm_head", "not supported yet"});
}

// A module the config selects but the file has no lora_A / lora_B for: it loaded, and that module silently had
// no adapter. Now an error naming the adapter file, the first missing tensors and the count. What the config
// leaves out (layers_to_transform, exclude_modules) is not missing.
TEST_F(Crafted, ASelectedModuleWithoutTensorsIsRefused) {
  const ModelConfig mc = ModelConfig::from_json_file(test::source_dir() + "/tests/fixtures/qwen2-tiny-a/config.json");
  ASSERT_EQ(mc.num_layers, 2);
  cfg["target_modules"] = {"q_proj", "v_proj"};
  tensors.clear();
  add("model.layers.0.self_attn.q_proj", 64, 64);
  add("model.layers.0.self_attn.v_proj", 32, 64);
  add("model.layers.1.self_attn.q_proj", 64, 64);
  EXPECT_WICK_ERROR(validate_against(load_peft_adapter(write()), mc, "my-adapter"), st(), "1 of the 4 modules",
                    "'base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight' / .lora_B.weight", "this one has 2");
  // The same file, with the module excluded or the layer left out, is complete.
  cfg["exclude_modules"] = {"model.layers.1.self_attn.v_proj"};
  EXPECT_NO_THROW(validate_against(load_peft_adapter(write()), mc, "my-adapter"));
  cfg.erase("exclude_modules");
  cfg["layers_to_transform"] = {0};
  EXPECT_NO_THROW(validate_against(load_peft_adapter(write()), mc, "my-adapter"));  // layer 1's q_proj: ignored, warned
  cfg.erase("layers_to_transform");
  // Many missing: the first three by name, then how many more.
  cfg["target_modules"] = "all-linear";
  tensors.clear();
  add("model.layers.0.self_attn.q_proj", 64, 64);
  EXPECT_WICK_ERROR(validate_against(load_peft_adapter(write()), mc, "my-adapter"), st(), "13 of the 14 modules",
                    "layers.0.self_attn.k_proj.lora_A.weight", "and 10 more");
  // Every path that loads an adapter checks it: attach (generate, chat, train), the server's store, merge.
  TempDir out;
  EXPECT_WICK_ERROR(merge_adapter_folder(test::source_dir() + "/tests/fixtures/qwen2-tiny-a", write(), out.file("merged")),
                    st(), "13 of the 14 modules");
}

TEST(LoraConfig, Targets) {
  LoraConfig c;  // PEFT's default for qwen2: q_proj, v_proj
  EXPECT_TRUE(c.targets("model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(c.targets("model.layers.3.self_attn.v_proj"));
  EXPECT_FALSE(c.targets("model.layers.0.self_attn.k_proj"));
  c.target_modules = {"q_proj", "mlp.down_proj", "lm_head"};
  EXPECT_TRUE(c.targets("q_proj"));
  EXPECT_TRUE(c.targets("lm_head"));
  EXPECT_TRUE(c.targets("model.layers.1.mlp.down_proj"));
  EXPECT_FALSE(c.targets("model.layers.0.self_attn.xq_proj"));  // suffix must follow a dot
  EXPECT_FALSE(c.targets("model.layers.0.self_attn.q_proj.extra"));
  EXPECT_FALSE(c.targets("model.layers.1.other_down_proj"));

  const std::string base = R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, )";
  LoraConfig rx = LoraConfig::from_json_string(base + R"("target_modules": ".*\\.(q|v)_proj"})", "cfg");
  EXPECT_TRUE(rx.target_modules.empty());
  ASSERT_TRUE(rx.target_regex.has_value());
  EXPECT_TRUE(rx.targets("model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(rx.targets("model.layers.0.self_attn.k_proj"));
  EXPECT_FALSE(rx.targets("model.layers.0.self_attn.q_proj.x"));  // full match, not search
  LoraConfig alt = LoraConfig::from_json_string(base + R"("target_modules": "q|model\\.layers\\.0\\.mlp\\.up_proj"})", "cfg");
  EXPECT_TRUE(alt.targets("model.layers.0.mlp.up_proj"));  // fullmatch tries every alternative
  EXPECT_FALSE(alt.targets("model.layers.1.mlp.up_proj"));

  LoraConfig all = LoraConfig::from_json_string(base + R"("target_modules": "all-linear"})", "cfg");
  for (const char* lin : kLinear) EXPECT_TRUE(all.targets(std::string("model.layers.5.") + lin)) << lin;
  EXPECT_FALSE(all.targets("lm_head"));

  LoraConfig ex = LoraConfig::from_json_string(
      base + R"("target_modules": ["q_proj", "v_proj"], "exclude_modules": ["model.layers.1.self_attn.q_proj"]})", "cfg");
  EXPECT_TRUE(ex.targets("model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(ex.targets("model.layers.1.self_attn.q_proj"));
  EXPECT_TRUE(ex.targets("model.layers.1.self_attn.v_proj"));

  LoraConfig lt = LoraConfig::from_json_string(base + R"("target_modules": ["q_proj"], "layers_to_transform": [0, 2]})", "cfg");
  EXPECT_TRUE(lt.targets("model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(lt.targets("model.layers.1.self_attn.q_proj"));
  EXPECT_TRUE(lt.targets("model.layers.2.self_attn.q_proj"));
  EXPECT_FALSE(lt.targets("model.layers.12.self_attn.q_proj"));
  LoraConfig one = LoraConfig::from_json_string(base + R"("target_modules": ["q_proj"], "layers_to_transform": 1})", "cfg");
  EXPECT_TRUE(one.targets("model.layers.1.self_attn.q_proj"));
  EXPECT_FALSE(one.targets("model.layers.0.self_attn.q_proj"));

  LoraConfig d = LoraConfig::from_json_string(R"({"peft_type": "LORA"})", "cfg");
  EXPECT_EQ(d.r, 8);
  EXPECT_EQ(d.alpha, 8);
  EXPECT_EQ(d.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
}

}  // namespace
}  // namespace wick::io
