// adapter_config.json's target_modules / layers_to_transform are honoured as PEFT honours them (issue 10
// #7): only selected modules are applied (the rest warned about), a selection that matches no module of
// the model is refused, and a config written by wick always selects exactly the tensors written with it.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/warn.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// An adapter folder with LoRA tensors on q_proj and v_proj of both layers, and the given config fields.
std::string make_adapter(const TempDir& tmp, const std::string& name, const json& fields) {
  const std::string dir = tmp.file(name);
  auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 1);
  io::LoraConfig lc;
  lc.r = 2;
  lc.target_modules = {"q_proj", "v_proj"};
  attach_new_adapters(*m, lc, 5);
  io::save_peft_adapter(dir, lc, export_adapters(*m));
  json j = json::parse(file_bytes(dir + "/adapter_config.json"));
  for (const auto& [k, v] : fields.items()) j[k] = v;
  write_bytes(dir + "/adapter_config.json", j.dump(2));
  return dir;
}

std::set<std::string> keys(const std::map<std::string, io::LoraPair>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

struct Warnings {
  std::vector<std::string> got;
  std::function<void(const std::string&)> old;
  Warnings() { old = set_warning_sink([this](const std::string& w) { got.push_back(w); }); }
  ~Warnings() { set_warning_sink(old); }
};

TEST(PeftTargets, OnlySelectedModulesAreApplied) {
  TempDir tmp;
  const std::string q = "model.layers.0.self_attn.q_proj", q1 = "model.layers.1.self_attn.q_proj";
  const std::string v = "model.layers.0.self_attn.v_proj", v1 = "model.layers.1.self_attn.v_proj";
  struct Case {
    const char* name;
    json fields;
    std::set<std::string> applied;
  };
  const std::vector<Case> cases = {
      {"list", {{"target_modules", {"q_proj", "v_proj"}}}, {q, q1, v, v1}},
      {"list subset", {{"target_modules", {"q_proj"}}}, {q, q1}},
      {"regex", {{"target_modules", R"(.*\.1\.self_attn\.(q|v)_proj)"}}, {q1, v1}},
      {"layers_to_transform", {{"target_modules", {"q_proj", "v_proj"}}, {"layers_to_transform", {1}}}, {q1, v1}},
      {"layers_pattern", {{"target_modules", {"v_proj"}}, {"layers_to_transform", 0}, {"layers_pattern", "layers"}}, {v}},
      {"exclude", {{"target_modules", {"q_proj", "v_proj"}}, {"exclude_modules", {"v_proj"}}}, {q, q1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Warnings w;
    const io::AdapterFiles a = io::load_peft_adapter(make_adapter(tmp, c.name, c.fields));
    EXPECT_EQ(keys(a.modules), c.applied);
    EXPECT_EQ(a.ignored.size(), 4 - c.applied.size());
    EXPECT_EQ(w.got.size(), c.applied.size() == 4 ? 0u : 1u) << "ignored tensors are said aloud";
    // Applied to a model: exactly these linears carry a LoRA.
    auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 1);
    attach_adapters(*m, a, c.name);
    std::set<std::string> active;
    for (Linear* l : m->all_linears())
      if (l->lora.active()) active.insert(l->name);
    EXPECT_EQ(active, c.applied);
  }
}

TEST(PeftTargets, ASelectionThatMatchesNoModuleIsRefused) {
  TempDir tmp;
  const ModelConfig mc = tiny_config();
  // PEFT: "Target modules {'foo_proj'} not found in the base model".
  EXPECT_WICK_ERROR(io::load_peft_adapter(make_adapter(tmp, "foo", {{"target_modules", {"foo_proj"}}})), "target_modules");
  io::LoraConfig lc;
  lc.target_modules = {"foo_proj"};
  EXPECT_WICK_ERROR(check_targets(lc, mc, "x"), "foo_proj", "selects no module");
  lc.target_modules = {"q_proj"};
  lc.layers_to_transform = {7};  // the model has 2 layers
  EXPECT_WICK_ERROR(check_targets(lc, mc, "x"), "selects no module");
  lc.layers_to_transform.clear();
  lc.target_modules = {"lm_head"};
  EXPECT_WICK_ERROR(check_targets(lc, mc, "x"), "lm_head", "not supported");
  // Training with such targets fails before any step.
  Rng rng(1);
  const Dataset data = write_and_load(random_examples(rng, 4, 3, 8, mc.vocab_size), tmp.file("d.jsonl"), mc.vocab_size);
  TrainOptions o;
  o.out_dir = tmp.file("out");
  o.lora.target_modules = {"foo_proj"};
  o.max_steps = 1;
  auto m = CausalLM::random(mc, Device::cpu(), DType::F32, 1);
  EXPECT_WICK_ERROR(Trainer(*m, data, o), "foo_proj");
}

// A listed name that matches nothing beside one that does: PEFT trains the others silently; wick train does too,
// and says which name it ignored (a typo such as "q_prj").
TEST(PeftTargets, AListedNameThatMatchesNothingIsWarnedOf) {
  TempDir tmp;
  const ModelConfig mc = tiny_config();
  io::LoraConfig lc;
  lc.target_modules = {"q_prj", "v_proj", "model.layers.0.mlp.up_proj", "layers.9.mlp.up_proj"};
  EXPECT_EQ(unmatched_targets(lc, mc), (std::vector<std::string>{"q_prj", "layers.9.mlp.up_proj"}));
  lc.target_modules = {"q_proj", "k_proj"};
  EXPECT_TRUE(unmatched_targets(lc, mc).empty());
  lc.target_regex = ".*nothing.*";
  EXPECT_TRUE(unmatched_targets(lc, mc).empty()) << "a regex is one selection: check_targets refuses it when empty";
  Rng rng(2);
  const Dataset data = write_and_load(random_examples(rng, 4, 3, 8, mc.vocab_size), tmp.file("d.jsonl"), mc.vocab_size);
  TrainOptions o;
  o.out_dir = tmp.file("out");
  o.lora.target_modules = {"q_prj", "v_proj"};
  o.max_steps = 1;
  auto m = CausalLM::random(mc, Device::cpu(), DType::F32, 1);
  Warnings w;
  Trainer t(*m, data, o);
  ASSERT_EQ(w.got.size(), 1u);
  EXPECT_NE(w.got[0].find("'q_prj' matches no module"), std::string::npos) << w.got[0];
  int adapted = 0;
  for (Linear* l : m->all_linears()) adapted += l->lora.active() ? 1 : 0;
  EXPECT_EQ(adapted, mc.num_layers) << "v_proj of every layer, and nothing else";
}

TEST(PeftTargets, AdapterInitWritesAConfigThatMatchesItsTensors) {
  // The init adapter's file holds only layer 1's q_proj. A config that selects q_proj and v_proj of every layer
  // is refused (three selected modules have no tensors: Crafted.ASelectedModuleWithoutTensorsIsRefused); one
  // that selects that module alone trains it, and the trained adapter's config names exactly the trained modules.
  TempDir tmp;
  const std::string init = make_adapter(tmp, "init", {});
  {
    const auto f = io::SafeTensorsFile::open(init + "/adapter_model.safetensors");
    std::vector<std::pair<std::string, Tensor>> keep;
    for (const auto& ti : f->tensors())
      if (ti.name.find("layers.1.self_attn.q_proj") != std::string::npos) keep.emplace_back(ti.name, f->get(ti.name).clone());
    io::save_safetensors(init + "/adapter_model.safetensors", keep);
  }
  Rng rng(1);
  const ModelConfig mc = tiny_config();
  const Dataset data = write_and_load(random_examples(rng, 4, 3, 8, mc.vocab_size), tmp.file("d.jsonl"), mc.vocab_size);
  TrainOptions o;
  o.out_dir = tmp.file("out");
  o.adapter_init = init;
  o.max_steps = 1;
  o.batch_size = 2;
  auto m = CausalLM::random(mc, Device::cpu(), DType::F32, 1);
  EXPECT_WICK_ERROR(Trainer(*m, data, o), init + "/adapter_model.safetensors", "3 of the 4 modules");
  json cfg = json::parse(file_bytes(init + "/adapter_config.json"));
  cfg["target_modules"] = {"q_proj"};
  cfg["layers_to_transform"] = {1};
  write_bytes(init + "/adapter_config.json", cfg.dump(2));
  Trainer t(*m, data, o);
  ASSERT_TRUE(run_trainer(t));
  const io::AdapterFiles back = io::load_peft_adapter(o.out_dir);
  EXPECT_EQ(keys(back.modules), std::set<std::string>{"model.layers.1.self_attn.q_proj"});
  EXPECT_TRUE(back.ignored.empty());
  for (const std::string& p : lora_module_paths(mc)) EXPECT_EQ(back.cfg.targets(p), back.modules.count(p) == 1) << p;
}

}  // namespace
}  // namespace wick::test
