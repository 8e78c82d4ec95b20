// Merging adapters into base weights. merge_adapter_folder (`wick merge`): the fixture's adapter_trained
// merged into its model folder gives the logits transformers + PEFT got after merge_and_unload, copies the
// config/tokenizer files byte for byte, keeps every tensor's dtype (f32 and bf16 bases) and leaves the
// unadapted tensors untouched. In memory, merge_adapters gives the same logits as the unmerged adapter.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "common/model_checks.h"
#include "io/peft_adapter.h"
#include "lora/lora.h"
#include "train/test_trainer_util.h"

namespace wick::test {
namespace {

namespace fs = std::filesystem;

// Files merge_adapter_folder copies when present; arbitrary distinct bytes stand in for real ones.
const char* kCopied[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                         "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json"};

// A model folder: the fixture's checkpoint (tensors converted to `dtype`) plus stand-in tokenizer files.
std::string make_model_dir(const std::string& fixture, const std::string& dir, DType dtype) {
  fs::create_directories(dir);
  for (const char* f : {"config.json", "generation_config.json"}) fs::copy_file(fs::path(fixture) / f, fs::path(dir) / f);
  for (const char* f : kCopied)
    if (!fs::exists(fs::path(dir) / f)) write_bytes((fs::path(dir) / f).string(), std::string("{\"stand-in\": \"") + f + "\"}\n");
  const io::Checkpoint ck = io::Checkpoint::open(fixture);
  std::vector<std::pair<std::string, Tensor>> t;
  for (const std::string& n : ck.names()) t.emplace_back(n, ck.get(n).to(dtype));
  io::save_safetensors((fs::path(dir) / "model.safetensors").string(), t);
  return dir;
}

class MergeFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(MergeFixture, FolderMergeMatchesPeftMergeAndUnload) {
  const Fixture f = load_fixture(GetParam());
  TempDir tmp;
  const std::string model = make_model_dir(f.dir, tmp.file("model"), DType::F32);
  const std::string adapter = (fs::path(f.dir) / "adapter_trained").string();
  const std::string out = tmp.file("merged");
  merge_adapter_folder(model, adapter, out);

  // Logits of the merged folder, loaded as a plain model, against PEFT's merge_and_unload.
  auto m = CausalLM::load(out, Device::cpu(), DType::F32);
  for (Linear* l : m->all_linears()) EXPECT_FALSE(l->lora.active());
  const Tensor logits = m->forward(f.get("input_ids").to(DType::I32), nullptr);
  const double e = max_abs_rel(logits, f.get("merged_logits"));
  std::printf("[measured] %s merged folder logits: max|diff|/max|ref| %.3g (tol 1e-4)\n", f.dir.c_str(), e);
  EXPECT_LE(e, 1e-4);
  // ... which differ from the base model's (the adapter was merged at all).
  EXPECT_GT(max_abs_rel(logits, f.get("logits")), 1e-2);

  for (const char* name : kCopied)
    EXPECT_TRUE(file_bytes(model + "/" + name) == file_bytes(out + "/" + name)) << name << " copied byte for byte";

  // Same tensors, same dtypes; the ones no adapter touches are bit-identical.
  const io::AdapterFiles ad = io::load_peft_adapter(adapter);
  const io::Checkpoint base = io::Checkpoint::open(model), merged = io::Checkpoint::open(out);
  EXPECT_EQ(base.names(), merged.names());
  int touched = 0;
  for (const std::string& n : base.names()) {
    EXPECT_EQ(base.info(n).dtype_str, merged.info(n).dtype_str) << n;
    const bool adapted = ad.modules.count(n.substr(0, n.rfind('.'))) && n.ends_with(".weight");
    touched += adapted;
    const auto a = base.get(n).to_f32_vector(), b = merged.get(n).to_f32_vector();
    if (adapted) EXPECT_NE(a, b) << n;
    else EXPECT_EQ(a, b) << n;
  }
  EXPECT_EQ(touched, static_cast<int>(ad.modules.size()));
}

TEST_P(MergeFixture, Bf16BaseStaysBf16AndRoundsOnce) {
  // Every merged weight is round_to_bf16(W + scale * B A), rounded once: against the exact sum (f64, element
  // by element here) within half a bf16 step (2^-8 relative: 8 significant bits) plus the f32 sum's own rounding (2^-22 of the
  // magnitudes summed, generously).
  const Fixture f = load_fixture(GetParam());
  TempDir tmp;
  const std::string model = make_model_dir(f.dir, tmp.file("model"), DType::BF16);
  const std::string adapter = (fs::path(f.dir) / "adapter_trained").string();
  merge_adapter_folder(model, adapter, tmp.file("merged"));
  const io::AdapterFiles ad = io::load_peft_adapter(adapter);
  const double scale = ad.cfg.scale();
  const io::Checkpoint base = io::Checkpoint::open(model), merged = io::Checkpoint::open(tmp.file("merged"));
  double worst = 0;
  for (const std::string& n : base.names()) {
    ASSERT_EQ(merged.info(n).dtype_str, "BF16") << n;
    auto it = ad.modules.find(n.substr(0, n.rfind('.')));
    const auto w = base.get(n).to_f32_vector(), got = merged.get(n).to_f32_vector();
    if (it == ad.modules.end() || !n.ends_with(".weight")) {
      EXPECT_EQ(w, got) << n;
      continue;
    }
    const auto A = it->second.A.to_f32_vector(), B = it->second.B.to_f32_vector();
    const int64_t r = it->second.A.dim(0), in = it->second.A.dim(1), out = it->second.B.dim(0);
    for (int64_t o = 0; o < out; o++)
      for (int64_t i = 0; i < in; i++) {
        double want = w[o * in + i], mag = std::fabs(want);
        for (int64_t k = 0; k < r; k++) {
          const double term = scale * static_cast<double>(B[o * r + k]) * A[k * in + i];
          want += term;
          mag += std::fabs(term);
        }
        const double bound = std::ldexp(std::fabs(want), -8) + std::ldexp(mag, -22);
        worst = std::max(worst, std::fabs(got[o * in + i] - want) / bound);
      }
  }
  std::printf("[measured] %s bf16 merge: worst element error %.3g of the bound (<= 1)\n", f.dir.c_str(), worst);
  EXPECT_LE(worst, 1.0);
}

TEST_P(MergeFixture, RefusesBadFolders) {
  const Fixture f = load_fixture(GetParam());
  TempDir tmp;
  const std::string model = make_model_dir(f.dir, tmp.file("model"), DType::F32);
  const std::string adapter = (fs::path(f.dir) / "adapter_trained").string();
  EXPECT_WICK_ERROR(merge_adapter_folder(model, adapter, model), "--out", "is the --model folder");
  // An adapter of another model: refused by tensor, not merged into garbage. (Fixtures of other families
  // with the same geometry take each other's adapters, as PEFT does: those are not "another model" here;
  // nor is one of fewer layers of the same shapes, whose modules all exist in this model.)
  const ModelConfig mine = ModelConfig::from_json_file((fs::path(f.dir) / "config.json").string());
  for (const std::string& other : model_fixture_dirs()) {
    if (other == f.dir) continue;
    const ModelConfig theirs = ModelConfig::from_json_file((fs::path(other) / "config.json").string());
    if (theirs.hidden_size == mine.hidden_size && theirs.intermediate_size == mine.intermediate_size &&
        theirs.num_layers <= mine.num_layers && theirs.q_dim() == mine.q_dim() && theirs.kv_dim() == mine.kv_dim())
      continue;
    const std::string out = tmp.file("x-" + fs::path(other).filename().string());
    const std::string msg = error_message([&] {
      merge_adapter_folder(model, (fs::path(other) / "adapter_trained").string(), out);
    });
    EXPECT_NE(msg.rfind("<", 0), 0u) << msg;  // a wick::Error: not "<no error>" nor "<not a wick::Error...>"
    EXPECT_NE(msg.find("adapter"), std::string::npos) << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MergeFixture, ::testing::ValuesIn(model_fixture_dirs()), param_name);

TEST(MergeInMemory, EqualsTheUnmergedAdapterForward) {
  Rng rng(8);
  for (bool rslora : {false, true}) {
    SCOPED_TRACE(rslora ? "rslora" : "plain");
    auto m = CausalLM::random(tiny_config(), Device::cpu(), DType::F32, 31);
    const Tensor ids = Tensor::from_i32([&] {
      std::vector<int32_t> v;
      for (int i = 0; i < 2 * 9; i++) v.push_back(static_cast<int32_t>(rng.below(tiny_config().vocab_size)));
      return v;
    }(), {2, 9});
    const Tensor plain = m->forward(ids, nullptr).clone();
    io::LoraConfig cfg;
    cfg.r = 6;
    cfg.alpha = 12;
    cfg.use_rslora = rslora;
    cfg.target_modules = {"q_proj", "k_proj", "o_proj", "up_proj", "down_proj"};
    attach_new_adapters(*m, cfg, 4);
    int active = 0;
    for (Linear* l : m->all_linears())
      if (l->lora.active()) {
        l->lora.B = randn(l->lora.B.shape(), rng, 0.2f);  // PEFT's init has B = 0: make the adapter count
        active++;
      }
    EXPECT_EQ(active, 5 * tiny_config().num_layers);
    const Tensor unmerged = m->forward(ids, nullptr).clone();
    EXPECT_GT(max_abs_rel(unmerged, plain), 1e-2) << "the adapter changes the logits";
    merge_adapters(*m);
    for (Linear* l : m->all_linears()) EXPECT_FALSE(l->lora.active());
    const Tensor merged = m->forward(ids, nullptr);
    const double e = max_abs_rel(merged, unmerged);
    std::printf("[measured] in-memory merge (%s): max|diff|/max|ref| %.3g (tol 1e-5)\n", rslora ? "rslora" : "plain", e);
    EXPECT_LE(e, 1e-5);
  }
}

}  // namespace
}  // namespace wick::test
