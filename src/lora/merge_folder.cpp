// wick merge: a PEFT adapter folded into a Hugging Face model folder, tensor by tensor on the host, written
// as safetensors (sharded above a size limit, as transformers' save_pretrained).
#include "lora/merge_folder.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
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

std::vector<io::LazyTensor> merged_model_tensors(const std::string& model_dir, const std::string& adapter_dir) {
  auto ck = std::make_shared<io::Checkpoint>(io::Checkpoint::open(model_dir));
  std::shared_ptr<io::AdapterFiles> ad;
  float scale = 0;
  if (!adapter_dir.empty()) {
    const ModelConfig cfg = ModelConfig::from_model_dir(model_dir);
    ad = std::make_shared<io::AdapterFiles>(io::load_peft_adapter(adapter_dir));
    validate_against(*ad, cfg, adapter_dir);
    scale = static_cast<float>(ad->cfg.scale());
  }
  std::vector<io::LazyTensor> out;
  std::set<std::string> merged;
  const std::string suffix = ".weight";
  for (const std::string& name : ck->names()) {
    const io::TensorInfo& info = ck->info(name);
    const io::LoraPair* pair = nullptr;
    if (ad && name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      auto it = ad->modules.find(name.substr(0, name.size() - suffix.size()));
      if (it != ad->modules.end()) {
        pair = &it->second;
        merged.insert(it->first);
      }
    }
    out.push_back({name, info.shape, info.dtype, [ck, ad, name, pair, scale]() -> Tensor {
                     Tensor t = ck->get(name);
                     if (!pair) return t;
                     Tensor w32 = t.to(DType::F32).clone();
                     matmul(pair->B.to(DType::F32), pair->A.to(DType::F32), w32, false, false, scale, 1.0f);
                     return w32.to(t.dtype());
                   }});
  }
  if (ad)
    for (const auto& [module, pair] : ad->modules)
      if (!merged.count(module))
        throw Error("adapter module '" + module + "' has no weight in the model checkpoint", adapter_dir);
  return out;
}

int64_t parse_shard_size(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) i++;
  std::string unit = s.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double n = -1;
  try {
    size_t used = 0;
    if (i > 0) n = std::stod(s.substr(0, i), &used);
    if (used != i) n = -1;  // "1.2.3GB": stod would read 1.2 and drop the rest
  } catch (const std::exception&) {
    n = -1;
  }
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
      {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
  for (const auto& [u, mult] : kUnits)
    // At least one byte, and within int64 (a larger double would not convert).
    if (unit == u && n * mult >= 1 && n * mult < 9e18) return static_cast<int64_t>(n * mult);
  throw Error("cannot read the size \"" + s + "\"", "--max-shard-size", "e.g. 5GB, 500MB, 2GiB or a byte count");
}

std::vector<std::vector<size_t>> plan_shards(const std::vector<int64_t>& nbytes, int64_t max_bytes) {
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> current;
  int64_t cur = 0;
  for (size_t i = 0; i < nbytes.size(); i++) {
    if (nbytes[i] > max_bytes) {  // too big for any shard: one of its own, placed before the open one
      shards.push_back({i});
      continue;
    }
    if (cur + nbytes[i] > max_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      cur = 0;
    }
    current.push_back(i);
    cur += nbytes[i];
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

void save_sharded_safetensors(const std::string& out_dir, const std::vector<io::LazyTensor>& tensors,
                              int64_t max_shard_bytes) {
  if (max_shard_bytes <= 0) throw Error("the shard size must be positive", "--max-shard-size");
  std::vector<int64_t> nbytes;
  int64_t total = 0;
  for (const io::LazyTensor& t : tensors) {
    nbytes.push_back(shape_numel(t.shape) * static_cast<int64_t>(dtype_size(t.dtype)));
    total += nbytes.back();
  }
  fs::create_directories(out_dir);
  const auto shards = plan_shards(nbytes, max_shard_bytes);
  const size_t n = shards.size();
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::vector<std::pair<std::string, std::string>> where;
  for (size_t s = 0; s < n; s++) {
    char fname[64];
    if (n == 1) std::snprintf(fname, sizeof fname, "model.safetensors");
    else std::snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", s + 1, n);
    std::vector<std::pair<std::string, Tensor>> part;
    for (size_t i : shards[s]) {
      part.emplace_back(tensors[i].name, tensors[i].get());
      where.emplace_back(tensors[i].name, fname);
    }
    io::save_safetensors((fs::path(out_dir) / fname).string(), part);
  }
  if (n == 1) return;
  std::sort(where.begin(), where.end());  // transformers writes the weight map with sorted keys
  for (const auto& [name, file] : where) weight_map[name] = file;
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  io::write_file_atomic((fs::path(out_dir) / "model.safetensors.index.json").string(), index.dump(2) + "\n");
}

const std::vector<std::string>& merge_copied_files() {
  static const std::vector<std::string> files = {
      "config.json",           "generation_config.json",  "tokenizer.json", "tokenizer_config.json",
      "special_tokens_map.json", "vocab.json",           "merges.txt",     "added_tokens.json",
      "chat_template.jinja",   "chat_template.json"};
  return files;
}

void merge_adapter_folder(const std::string& model_dir, const std::string& adapter_dir, const std::string& out_dir,
                          int64_t max_shard_bytes, bool overwrite) {
  // --overwrite empties --out of model files (*.safetensors, config, tokenizer) before writing: an --out that
  // is, lies inside or holds an input folder would delete the weights being merged (the adapter's too).
  io::check_output_folder_not_input(out_dir, "--out", {{"--model", model_dir}, {"--adapter", adapter_dir}});
  io::check_output_folder(out_dir, overwrite, "pass --overwrite to replace the model in it, or choose another --out");
  const std::vector<io::LazyTensor> tensors = merged_model_tensors(model_dir, adapter_dir);  // checks the adapter
  if (overwrite && fs::is_directory(out_dir)) io::remove_model_files(out_dir);  // nothing of the old model beside the new weights
  save_sharded_safetensors(out_dir, tensors, max_shard_bytes);
  for (const std::string& f : merge_copied_files()) {
    const fs::path src = fs::path(model_dir) / f;
    if (fs::exists(src)) io::write_file_atomic((fs::path(out_dir) / f).string(), io::read_file(src.string()));
  }
}

}  // namespace wick
