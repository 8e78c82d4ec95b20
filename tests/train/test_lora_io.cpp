// Adapters the Trainer writes are PEFT adapters: the same tensor names, shapes and dtype as the adapter files
// PEFT wrote for the fixtures, and an adapter_config.json whose fields carry PEFT's values. (Loading the
// fixture adapters and saving them back byte-identically is tests/io/test_peft_adapter.cpp.)
//
// PeftExport writes, for scripts/peft_check.py, cases that only transformers + PEFT can judge: a model
// folder, an adapter trained and written by wick, input ids and the logits wick computes for them with
// the adapter applied. Into $WICK_PEFT_EXPORT_DIR when set (on a machine with torch/transformers/peft:
//   WICK_PEFT_EXPORT_DIR=/tmp/peft-export ./build/tests/wick_tests --gtest_filter='PeftExport.*'
//   python3 scripts/peft_check.py /tmp/peft-export
// ), else into a temp folder. Either way the test checks what wick alone can: the adapter changes the
// logits, and merging the written adapter into the written model folder gives the same logits.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/model_checks.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Header facts of a safetensors file: name -> (dtype, shape).
std::map<std::string, std::pair<std::string, Shape>> header(const std::string& path) {
  std::map<std::string, std::pair<std::string, Shape>> out;
  const auto file = io::SafeTensorsFile::open(path);
  for (const io::TensorInfo& ti : file->tensors()) out[ti.name] = {ti.dtype_str, ti.shape};
  return out;
}

Dataset random_data(const std::string& path, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  return write_and_load(random_examples(rng, 4, 4, 12, vocab), path, vocab);
}

class LoraIoFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraIoFixture, TrainerWritesPeftNamesShapesAndConfig) {
  // A fresh adapter with the fixture's LoRA settings, trained two steps: PEFT's file for the same settings
  // (adapter_init) has exactly these tensors.
  const std::string dir = GetParam(), peft = (fs::path(dir) / "adapter_init").string();
  const io::AdapterFiles peft_ad = io::load_peft_adapter(peft);
  auto m = CausalLM::load(dir, Device::cpu(), DType::F32);
  TempDir tmp;
  const Dataset data = random_data(tmp.file("d.jsonl"), m->config().vocab_size, 1);
  TrainOptions o;
  o.out_dir = tmp.file("out");
  o.lora = peft_ad.cfg;
  o.max_steps = 2;
  o.lr = 1e-3;
  Trainer t(*m, data, o);
  ASSERT_TRUE(run_trainer(t));

  const auto ours = header(o.out_dir + "/adapter_model.safetensors");
  const auto theirs = header(peft + "/adapter_model.safetensors");
  EXPECT_EQ(ours, theirs) << "names, dtypes and shapes of PEFT's adapter_model.safetensors";
  EXPECT_EQ(io::SafeTensorsFile::open(o.out_dir + "/adapter_model.safetensors")->metadata().at("format"), "pt");

  const json jo = json::parse(file_bytes(o.out_dir + "/adapter_config.json"));
  const json jp = json::parse(file_bytes(peft + "/adapter_config.json"));
  for (const auto& [k, v] : jo.items()) {
    ASSERT_TRUE(jp.contains(k)) << k << " is not a PEFT field";
    if (k == "target_modules")
      EXPECT_EQ(v.get<std::set<std::string>>(), jp[k].get<std::set<std::string>>());
    else
      EXPECT_EQ(v, jp[k]) << k;
  }
  // What PEFT reads to rebuild the model is all there.
  for (const char* k : {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora",
                        "bias", "fan_in_fan_out", "use_dora", "modules_to_save", "layers_to_transform"})
    EXPECT_TRUE(jo.contains(k)) << k;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraIoFixture, ::testing::ValuesIn(model_fixture_dirs()), param_name);

// One export case: settings of the adapter wick trains on a fixture's model.
struct ExportCase {
  std::string name;
  io::LoraConfig lora;
};

std::vector<ExportCase> export_cases() {
  std::vector<ExportCase> out;
  ExportCase all;
  all.name = "all-r8";
  all.lora.r = 8;
  all.lora.alpha = 16;
  all.lora.dropout = 0.1;
  all.lora.target_modules = all_lora_targets();
  out.push_back(all);
  ExportCase some;
  some.name = "rslora-layers";
  some.lora.r = 4;
  some.lora.alpha = 6;
  some.lora.use_rslora = true;
  some.lora.target_modules = {"q_proj", "v_proj", "down_proj"};
  some.lora.layers_to_transform = {1};
  out.push_back(some);
  return out;
}

TEST(PeftExport, WritesModelAdapterIdsAndWickLogits) {
  const char* env = std::getenv("WICK_PEFT_EXPORT_DIR");
  TempDir tmp;
  const std::string root = env && *env ? std::string(env) : tmp.path();
  json manifest = {{"tolerance", 1e-4}, {"cases", json::array()}};
  for (const std::string& fixture : model_fixture_dirs()) {
    for (const ExportCase& c : export_cases()) {
      const std::string name = fs::path(fixture).filename().string() + "-" + c.name;
      SCOPED_TRACE(name);
      const fs::path dir = fs::path(root) / name;
      fs::remove_all(dir);
      const std::string model = (dir / "model").string(), adapter = (dir / "adapter").string();
      fs::create_directories(model);
      for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
        fs::copy_file(fs::path(fixture) / f, fs::path(model) / f);

      // Train a fresh adapter for a few steps so that B is far from 0, written by the Trainer.
      auto m = CausalLM::load(model, Device::cpu(), DType::F32);
      const int64_t V = m->config().vocab_size;
      const Dataset data = random_data((dir / "train.jsonl").string(), V, 2);
      TrainOptions o;
      o.out_dir = adapter;
      o.lora = c.lora;
      o.lr = 2e-2;
      o.max_steps = 4;
      o.warmup_steps = 0;
      o.batch_size = 2;
      {
        Trainer t(*m, data, o);
        ASSERT_TRUE(run_trainer(t));
      }

      // Ids, and wick's logits with the written adapter loaded from disk (not the trainer's live copy).
      Rng rng(17);
      std::vector<int32_t> ids;
      for (int i = 0; i < 2 * 11; i++) ids.push_back(static_cast<int32_t>(rng.below(V)));
      const Tensor tids = Tensor::from_i32(ids, {2, 11});
      auto fresh = CausalLM::load(model, Device::cpu(), DType::F32);
      const Tensor base_logits = fresh->forward(tids, nullptr).clone();
      attach_adapters(*fresh, io::load_peft_adapter(adapter), adapter);
      const Tensor logits = fresh->forward(tids, nullptr).clone();
      std::vector<std::vector<int32_t>> rows = {{ids.begin(), ids.begin() + 11}, {ids.begin() + 11, ids.end()}};
      io::write_file_atomic((dir / "ids.json").string(), json{{"input_ids", rows}}.dump());
      io::save_safetensors((dir / "wick_logits.safetensors").string(), {{"logits", logits}, {"base_logits", base_logits}});
      manifest["cases"].push_back(name);

      // Checks wick can make alone.
      EXPECT_GT(max_abs_rel(logits, base_logits), 1e-3) << "the trained adapter changes the logits";
      merge_adapter_folder(model, adapter, (dir / "merged").string());
      auto merged = CausalLM::load((dir / "merged").string(), Device::cpu(), DType::F32);
      const double e = max_abs_rel(merged->forward(tids, nullptr), logits);
      std::printf("[measured] %s: merged folder vs adapter logits %.3g (tol 1e-5)\n", name.c_str(), e);
      EXPECT_LE(e, 1e-5);
      fs::remove_all(dir / "merged");
      const io::AdapterFiles ad = io::load_peft_adapter(adapter);
      for (const auto& [mod, pair] : ad.modules) EXPECT_TRUE(c.lora.targets(mod)) << mod;
      EXPECT_FALSE(ad.modules.empty());
    }
  }
  io::write_file_atomic((fs::path(root) / "cases.json").string(), manifest.dump(2));
  if (env && *env) std::printf("PEFT check cases written to %s: run  python3 scripts/peft_check.py %s\n", root.c_str(), root.c_str());
}

}  // namespace
}  // namespace wick::test
