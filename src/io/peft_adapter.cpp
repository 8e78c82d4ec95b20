// PEFT adapter folders: load (names with or without the adapter name, F32/BF16/F16 -> f32) and save with
// PEFT's own names. The check against a model's layers is lora/lora.h's validate_against.
#include "io/peft_adapter.h"

#include <filesystem>

#include "core/error.h"
#include "core/warn.h"
#include "io/fs_util.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace wick::io {

static const std::string kPrefix = "base_model.model.";

static bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

namespace {
struct Parsed {
  std::string module;   // HF module path
  bool is_a = false;    // lora_A (else lora_B)
  std::string adapter;  // "" when saved without the adapter name
};
struct Half {
  Tensor A, B;
  std::string a_name, b_name;
};
}  // namespace

// "base_model.model.<module>.lora_A[.<adapter>].weight" -> Parsed; anything else is refused by name.
static Parsed parse_name(const std::string& name, const std::string& path) {
  const std::string hint =
      "a LoRA adapter holds only base_model.model.<module>.lora_A.weight and .lora_B.weight tensors";
  if (name.find("lora_magnitude_vector") != std::string::npos)
    throw Error("tensor '" + name + "' is a DoRA magnitude vector; DoRA adapters are not supported yet", path);
  if (name.find("lora_embedding_A") != std::string::npos || name.find("lora_embedding_B") != std::string::npos)
    throw Error("tensor '" + name + "' is an embedding LoRA; LoRA on embeddings is not supported yet", path);
  if (name.find(".lora_B") != std::string::npos && ends_with(name, ".bias"))
    throw Error("tensor '" + name + "' is a LoRA bias (lora_bias); not supported yet", path);
  if (!starts_with(name, kPrefix)) throw Error("unknown tensor '" + name + "' (no 'base_model.model.' prefix)", path, hint);
  std::vector<std::string> parts;
  size_t start = kPrefix.size();
  for (;;) {
    const size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  const size_t n = parts.size();
  Parsed p;
  size_t lora_at = 0;
  if (n >= 3 && parts[n - 1] == "weight" && (parts[n - 2] == "lora_A" || parts[n - 2] == "lora_B")) {
    lora_at = n - 2;
  } else if (n >= 4 && parts[n - 1] == "weight" && (parts[n - 3] == "lora_A" || parts[n - 3] == "lora_B")) {
    lora_at = n - 3;
    p.adapter = parts[n - 2];
  } else {
    throw Error("unknown tensor '" + name + "'", path, hint + " (modules_to_save copies and base-layer biases are not supported)");
  }
  p.is_a = parts[lora_at] == "lora_A";
  for (size_t i = 0; i < lora_at; i++) p.module += (i ? "." : "") + parts[i];
  if (p.module.empty()) throw Error("unknown tensor '" + name + "'", path, hint);
  return p;
}

AdapterFiles load_peft_adapter(const std::string& dir) {
  if (!is_dir(dir)) throw Error("not a folder", dir, "give the adapter folder (adapter_config.json + adapter_model.safetensors)");
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  const std::string st_path = (fs::path(dir) / "adapter_model.safetensors").string();
  if (!path_exists(cfg_path))
    throw Error("no adapter_config.json in this folder", dir, "a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors");
  if (!path_exists(st_path))
    throw Error("no adapter_model.safetensors in this folder", dir,
                path_exists(fs::path(dir) / "adapter_model.bin") ? "pickle adapter_model.bin is not supported: save with safetensors"
                                                               : "");
  AdapterFiles out;
  out.weights_path = st_path;
  out.cfg = LoraConfig::from_json_string(read_file(cfg_path), cfg_path);
  const auto file = SafeTensorsFile::open(st_path);

  std::map<std::string, Half> halves;
  std::string adapter_name, first_name;
  for (const TensorInfo& ti : file->tensors()) {
    const Parsed p = parse_name(ti.name, st_path);
    if (first_name.empty()) {
      adapter_name = p.adapter;
      first_name = ti.name;
    } else if (p.adapter != adapter_name) {
      auto shown = [](const std::string& a) { return a.empty() ? std::string("none") : "'" + a + "'"; };
      throw Error("tensors '" + first_name + "' and '" + ti.name + "' carry different adapter names (" +
                      shown(adapter_name) + " and " + shown(p.adapter) + ")",
                  st_path, "a file holds one adapter");
    }
    if (!ti.supported || !dtype_is_float(ti.dtype))
      throw Error("tensor '" + ti.name + "' has dtype " + ti.dtype_str + "; LoRA weights must be F32, BF16 or F16", st_path);
    if (ti.shape.size() != 2)
      throw Error("tensor '" + ti.name + "' has shape " + shape_str(ti.shape) + "; LoRA weights are 2-D (" +
                      (p.is_a ? "[r, in]" : "[out, r]") + ")",
                  st_path);
    // An owned f32 copy: training updates A and B in place, and the mapping can then be released.
    Tensor t = file->get(ti.name);
    t = t.dtype() == DType::F32 ? t.clone() : t.to(DType::F32);
    Half& h = halves[p.module];
    Tensor& slot = p.is_a ? h.A : h.B;
    std::string& slot_name = p.is_a ? h.a_name : h.b_name;
    if (slot.defined()) throw Error("tensors '" + slot_name + "' and '" + ti.name + "' are both the same LoRA matrix", st_path);
    slot = t;
    slot_name = ti.name;
  }
  if (halves.empty()) throw Error("holds no LoRA tensors", st_path);
  const int64_t r = out.cfg.r;
  for (auto& [module, h] : halves) {
    if (!h.B.defined()) throw Error("tensor '" + h.a_name + "' has no matching lora_B", st_path);
    if (!h.A.defined()) throw Error("tensor '" + h.b_name + "' has no matching lora_A", st_path);
    if (h.A.dim(0) != r)
      throw Error("tensor '" + h.a_name + "' has shape " + shape_str(h.A.shape()) + ", i.e. rank " + std::to_string(h.A.dim(0)) +
                      ", but adapter_config.json says r = " + std::to_string(r),
                  st_path);
    if (h.B.dim(1) != r)
      throw Error("tensor '" + h.b_name + "' has shape " + shape_str(h.B.shape()) + ", i.e. rank " + std::to_string(h.B.dim(1)) +
                      ", but adapter_config.json says r = " + std::to_string(r),
                  st_path);
    // PEFT puts a LoRA only on the modules target_modules / exclude_modules / layers_to_transform select;
    // weights for any other module are unexpected keys that it does not apply. wick does the same, aloud.
    if (!out.cfg.targets(module)) {
      out.ignored.push_back(module);
      continue;
    }
    out.modules[module] = LoraPair{h.A, h.B};
  }
  if (!out.ignored.empty())
    warn(std::to_string(out.ignored.size()) + " LoRA module(s) in " + st_path +
         " are not selected by adapter_config.json (target_modules / layers_to_transform) and are not applied, as in PEFT; first: " +
         out.ignored.front());
  if (out.modules.empty())
    throw Error("no LoRA tensor of this adapter is selected by its target_modules / layers_to_transform", cfg_path,
                "the config and the weights disagree: fix target_modules");
  return out;
}

void save_peft_adapter(const std::string& dir, const LoraConfig& cfg, const std::map<std::string, LoraPair>& modules) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [module, pair] : modules) {
    const std::string a = kPrefix + module + ".lora_A.weight", b = kPrefix + module + ".lora_B.weight";
    if (module.empty()) throw Error("empty module path", dir);
    if (!pair.A.defined() || !pair.B.defined()) throw Error("module '" + module + "' lacks lora_A or lora_B", dir);
    if (pair.A.ndim() != 2 || pair.A.dim(0) != cfg.r)
      throw Error("lora_A of '" + module + "' has shape " + shape_str(pair.A.shape()) + ", expected [" + std::to_string(cfg.r) + ", in]", dir);
    if (pair.B.ndim() != 2 || pair.B.dim(1) != cfg.r)
      throw Error("lora_B of '" + module + "' has shape " + shape_str(pair.B.shape()) + ", expected [out, " + std::to_string(cfg.r) + "]", dir);
    if (!dtype_is_float(pair.A.dtype()) || !dtype_is_float(pair.B.dtype()))
      throw Error("LoRA weights of '" + module + "' must be floating point", dir);
    tensors.emplace_back(a, pair.A.to(Device::cpu()).to(DType::F32));
    tensors.emplace_back(b, pair.B.to(Device::cpu()).to(DType::F32));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !is_dir(dir)) throw Error("cannot create the adapter folder: " + ec.message(), dir);
  save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "adapter_config.json").string(), cfg.to_json());
}

}  // namespace wick::io
