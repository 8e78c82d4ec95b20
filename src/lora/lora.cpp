#include "lora/lora.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "model/family.h"
#include "ops/matmul.h"

namespace wick {

const std::vector<std::string>& all_lora_targets() {
  static const std::vector<std::string> t = lora_target_names_all_families();
  return t;
}

std::vector<std::string> lora_module_paths(const ModelConfig& cfg) {
  std::vector<std::string> out;
  for (const WeightSpec& w : cfg.family().weights(cfg))
    if (w.lora && w.role == WeightRole::Weight) out.push_back(w.module());
  return out;
}

void check_targets(const io::LoraConfig& lc, const ModelConfig& cfg, const std::string& where) {
  if (lc.all_linear) return;  // every Linear but lm_head: never empty, never lm_head
  // As PEFT: a selection that matches no module of the model is an error ("Target modules ... not found in
  // the base model"); one that matches modules wick cannot adapt is refused rather than dropped.
  for (const char* unsupported : {"lm_head", "model.embed_tokens"})
    if (lc.targets(unsupported))
      throw Error(std::string("target_modules selects '") + unsupported + "'; LoRA on it is not supported yet", where);
  for (const std::string& p : lora_module_paths(cfg))
    if (lc.targets(p)) return;
  std::string t = lc.target_regex ? "'" + *lc.target_regex + "'" : std::string();
  if (!lc.target_regex)
    for (const auto& m : lc.target_modules) t += (t.empty() ? "" : ", ") + m;
  std::string names;
  for (const std::string& n : lora_target_names(cfg)) names += (names.empty() ? "" : ", ") + n;
  throw Error("target_modules " + t + " selects no module of this model (" + std::to_string(cfg.num_layers) +
                  " layers of " + names + ")",
              where, "PEFT refuses such an adapter too: name some of " + names);
}

std::vector<std::string> unmatched_targets(const io::LoraConfig& lc, const ModelConfig& cfg) {
  std::vector<std::string> out;
  if (lc.all_linear || lc.target_regex) return out;
  const std::vector<std::string> paths = lora_module_paths(cfg);
  for (const std::string& name : lc.target_modules) {
    io::LoraConfig one;  // the entry alone, without exclusions or a layer list
    one.target_modules = {name};
    if (std::none_of(paths.begin(), paths.end(), [&](const std::string& p) { return one.targets(p); })) out.push_back(name);
  }
  return out;
}

// PEFT writes lora_A and lora_B for every module its config selects, so a selected module of the model without
// them is a damaged or hand-cut file, or an adapter of a model with fewer layers. Loading it anyway left that
// module unadapted without a word (PEFT itself only warns of the missing keys); wick refuses it, naming the
// first missing tensors and how many modules lack theirs.
static void check_selected_present(const io::AdapterFiles& adapter, const ModelConfig& cfg, const std::string& where) {
  std::vector<std::string> missing;
  for (const std::string& m : lora_module_paths(cfg))
    if (adapter.cfg.targets(m) && !adapter.modules.count(m)) missing.push_back(m);
  if (missing.empty()) return;
  const size_t shown = std::min<size_t>(missing.size(), 3);
  std::string names;
  for (size_t i = 0; i < shown; i++)
    names.append(i ? ", '" : "'").append("base_model.model.").append(missing[i]).append(".lora_A.weight' / .lora_B.weight");
  if (missing.size() > shown) names += " and " + std::to_string(missing.size() - shown) + " more";
  throw Error("no LoRA tensors for " + std::to_string(missing.size()) + " of the " +
                  std::to_string(adapter.modules.size() + missing.size()) +
                  " modules its adapter_config.json selects (target_modules / layers_to_transform): " + names,
              adapter.weights_path.empty() ? where : adapter.weights_path,
              "the file is incomplete, or was made for a model with fewer layers (this one has " +
                  std::to_string(cfg.num_layers) + "): use this model's adapter, or select only the modules it holds "
                  "(target_modules, layers_to_transform, exclude_modules)");
}

void validate_against(const io::AdapterFiles& adapter, const ModelConfig& cfg, const std::string& where) {
  check_targets(adapter.cfg, cfg, where);
  const std::string prefix = "base_model.model.";
  const int64_t r = adapter.cfg.r;
  for (const auto& [module, pair] : adapter.modules) {
    const auto shape = lora_linear_shape(cfg, module);
    if (!shape) {
      if (module == "lm_head" || module == "model.embed_tokens")
        throw Error("LoRA on '" + module + "' is not supported yet", where);
      std::string names;  // "q/k/v/o/gate/up/down"
      for (const std::string& n : lora_target_names(cfg)) names.append(names.empty() ? "" : "/").append(n, 0, n.rfind("_proj"));
      throw Error("module '" + module + "' is not a " + names + " projection of this model (" +
                      std::to_string(cfg.num_layers) + " layers)",
                  where, "the adapter was made for another model");
    }
    const auto [out, in] = *shape;
    const Shape want_a = {r, in}, want_b = {out, r};
    if (pair.A.shape() != want_a)
      throw Error("tensor '" + prefix + module + ".lora_A.weight' has shape " + shape_str(pair.A.shape()) + ", expected " +
                      shape_str(want_a) + " [r, in] for this model",
                  where, "the adapter was made for another model");
    if (pair.B.shape() != want_b)
      throw Error("tensor '" + prefix + module + ".lora_B.weight' has shape " + shape_str(pair.B.shape()) + ", expected " +
                      shape_str(want_b) + " [out, r] for this model",
                  where, "the adapter was made for another model");
  }
  check_selected_present(adapter, cfg, where);
}

std::vector<std::vector<Linear*>> lora_groups(CausalLM& m) {
  std::vector<std::vector<Linear*>> g;
  for (LayerWeights& layer : m.layers())
    for (std::vector<Linear*>& group : layer.lora_groups()) g.push_back(std::move(group));
  return g;
}

static void pack_all(CausalLM& m) {
  for (const auto& g : lora_groups(m)) pack_lora_group(g);
}

void attach_new_adapters(CausalLM& m, const io::LoraConfig& cfg, uint64_t seed) {
  if (cfg.r <= 0) throw Error("LoRA rank must be positive, got " + std::to_string(cfg.r), "--rank");
  Rng rng(seed, 0x10a);
  int attached = 0;
  for (Linear* l : m.all_linears()) {
    if (!cfg.targets(l->name)) continue;
    const int64_t in = l->in(), out = l->out(), r = cfg.r;
    Tensor A = Tensor::empty({r, in}, DType::F32);
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    float* pa = A.data<float>();
    for (int64_t i = 0; i < A.numel(); i++) pa[i] = rng.uniform(-bound, bound);
    l->lora.A = A.to(m.device());
    l->lora.B = Tensor::zeros({out, r}, DType::F32, m.device());
    l->lora.scale = static_cast<float>(cfg.scale());
    l->lora.dropout = static_cast<float>(cfg.dropout);
    attached++;
  }
  if (attached == 0) throw Error("no module of the model matches the LoRA target modules", "--targets",
                                 "use names like q_proj, v_proj or 'all'");
  pack_all(m);
}

void attach_adapters(CausalLM& m, const io::AdapterFiles& files, const std::string& where) {
  validate_against(files, m.config(), where);
  detach_adapters(m);
  for (const auto& [path, pair] : files.modules) {
    Linear* l = m.find_linear(path);
    if (!l) throw Error("adapter module '" + path + "' does not exist in the model", where);
    if (pair.A.shape() != Shape{files.cfg.r, l->in()} || pair.B.shape() != Shape{l->out(), files.cfg.r})
      throw Error("adapter tensors for '" + path + "' have shapes " + shape_str(pair.A.shape()) + " and " +
                      shape_str(pair.B.shape()) + ", expected " + shape_str({files.cfg.r, l->in()}) + " and " +
                      shape_str({l->out(), files.cfg.r}), where);
    l->lora.A = pair.A.to(DType::F32).to(m.device());
    l->lora.B = pair.B.to(DType::F32).to(m.device());
    l->lora.scale = static_cast<float>(files.cfg.scale());
    l->lora.dropout = static_cast<float>(files.cfg.dropout);
  }
  pack_all(m);
}

void detach_adapters(CausalLM& m) {
  for (Linear* l : m.all_linears()) l->lora = LoraSlot{};
}

std::map<std::string, io::LoraPair> export_adapters(CausalLM& m) {
  std::map<std::string, io::LoraPair> out;
  for (Linear* l : m.all_linears())
    if (l->lora.active()) out[l->name] = io::LoraPair{l->lora.A.to(Device::cpu()), l->lora.B.to(Device::cpu())};
  return out;
}

std::vector<LoraParam> lora_params(CausalLM& m) {
  std::vector<LoraParam> p;
  for (Linear* l : m.all_linears()) {
    if (!l->lora.active()) continue;
    p.push_back({"base_model.model." + l->name + ".lora_A.weight", &l->lora.A, &l->lora.dA});
    p.push_back({"base_model.model." + l->name + ".lora_B.weight", &l->lora.B, &l->lora.dB});
  }
  return p;
}

void alloc_lora_grads(CausalLM& m) {
  // One zeroed block per group (the layout of its values), unless every member has its gradients already.
  for (const auto& g : lora_groups(m)) {
    bool missing = false;
    for (Linear* l : g) missing = missing || (l->lora.active() && (!l->lora.dA.defined() || !l->lora.dB.defined()));
    if (missing) pack_lora_grads(g);
  }
  for (Linear* l : m.all_linears()) {  // linears outside the decoder layers, if any
    if (!l->lora.active()) continue;
    if (!l->lora.dA.defined()) l->lora.dA = Tensor::zeros(l->lora.A.shape(), DType::F32, m.device());
    if (!l->lora.dB.defined()) l->lora.dB = Tensor::zeros(l->lora.B.shape(), DType::F32, m.device());
  }
}

void zero_lora_grads(CausalLM& m) {
  for (Linear* l : m.all_linears()) {
    if (l->lora.dA.defined()) l->lora.dA.zero_();
    if (l->lora.dB.defined()) l->lora.dB.zero_();
  }
}

// W (any float dtype, any device) += scale * B A, in f32 on the host, one rounding back.
static Tensor merged_weight(const Tensor& w, const Tensor& A, const Tensor& B, float scale) {
  Tensor w32 = w.to(Device::cpu()).to(DType::F32).clone();
  Tensor a = A.to(Device::cpu()).to(DType::F32), b = B.to(Device::cpu()).to(DType::F32);
  matmul(b, a, w32, false, false, scale, 1.0f);
  return w32.to(w.dtype());
}

void merge_adapters(CausalLM& m) {
  for (Linear* l : m.all_linears()) {
    if (!l->lora.active()) continue;
    l->w = merged_weight(l->w, l->lora.A, l->lora.B, l->lora.scale).to(m.device());
    l->lora = LoraSlot{};
  }
}

}  // namespace wick
