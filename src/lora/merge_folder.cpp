// wick merge: a PEFT adapter folded into a Hugging Face model folder, tensor by tensor on the host.
#include <filesystem>
#include <set>

#include "core/error.h"
#include "io/output_folder.h"
#include "io/peft_adapter.h"
#include "io/safetensors.h"
#include "lora/lora.h"
#include "model/config.h"
#include "ops/matmul.h"

namespace fs = std::filesystem;

namespace wick {

void merge_adapter_folder(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir,
                          bool overwrite) {
  const ModelConfig cfg = ModelConfig::from_json_file((fs::path(model_dir) / "config.json").string());
  const io::AdapterFiles ad = io::load_peft_adapter(adapter_dir);
  io::validate_against(ad, cfg, adapter_dir);
  if (fs::exists(out_dir) && fs::equivalent(out_dir, model_dir))
    throw Error("the output folder is the model folder", out_dir, "merge into a new folder");
  io::check_output_folder(out_dir, overwrite, "pass --overwrite to replace the model in it, or choose another --out");
  const io::Checkpoint ck = io::Checkpoint::open(model_dir);
  const float scale = static_cast<float>(ad.cfg.scale());
  std::vector<std::pair<std::string, Tensor>> out;
  std::set<std::string> merged;
  for (const std::string& name : ck.names()) {
    Tensor t = ck.get(name);
    const std::string suffix = ".weight";
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string module = name.substr(0, name.size() - suffix.size());
      auto it = ad.modules.find(module);
      if (it != ad.modules.end()) {
        Tensor w32 = t.to(DType::F32).clone();
        matmul(it->second.B.to(DType::F32), it->second.A.to(DType::F32), w32, false, false, scale, 1.0f);
        t = w32.to(t.dtype());
        merged.insert(module);
      }
    }
    out.emplace_back(name, t);
  }
  for (const auto& [module, pair] : ad.modules)
    if (!merged.count(module))
      throw Error("adapter module '" + module + "' has no weight in the model checkpoint", adapter_dir);
  fs::create_directories(out_dir);
  if (overwrite) io::remove_model_files(out_dir);  // nothing of the old model beside the new weights
  io::save_safetensors((fs::path(out_dir) / "model.safetensors").string(), out);
  for (const char* f : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                        "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json"}) {
    const fs::path src = fs::path(model_dir) / f;
    if (fs::exists(src)) io::write_file_atomic((fs::path(out_dir) / f).string(), io::read_file(src.string()));
  }
}

}  // namespace wick
