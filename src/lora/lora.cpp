#include "lora/lora.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "ops/matmul.h"

namespace wick {

const std::vector<std::string>& all_lora_targets() {
  static const std::vector<std::string> t = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return t;
}

std::vector<std::vector<Linear*>> lora_groups(Qwen2Model& m) {
  std::vector<std::vector<Linear*>> g;
  for (DecoderLayer& layer : m.layers()) {
    const std::vector<Linear*> l = layer.linears();  // q k v o gate up down
    g.push_back({l[0], l[1], l[2]});
    g.push_back({l[3]});
    g.push_back({l[4], l[5]});
    g.push_back({l[6]});
  }
  return g;
}

static void pack_all(Qwen2Model& m) {
  for (const auto& g : lora_groups(m)) pack_lora_group(g);
}

void attach_new_adapters(Qwen2Model& m, const io::LoraConfig& cfg, uint64_t seed) {
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

void attach_adapters(Qwen2Model& m, const io::AdapterFiles& files, const std::string& where) {
  io::validate_against(files, m.config(), where);
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

void detach_adapters(Qwen2Model& m) {
  for (Linear* l : m.all_linears()) l->lora = LoraSlot{};
}

std::map<std::string, io::LoraPair> export_adapters(Qwen2Model& m) {
  std::map<std::string, io::LoraPair> out;
  for (Linear* l : m.all_linears())
    if (l->lora.active()) out[l->name] = io::LoraPair{l->lora.A.to(Device::cpu()), l->lora.B.to(Device::cpu())};
  return out;
}

std::vector<LoraParam> lora_params(Qwen2Model& m) {
  std::vector<LoraParam> p;
  for (Linear* l : m.all_linears()) {
    if (!l->lora.active()) continue;
    p.push_back({"base_model.model." + l->name + ".lora_A.weight", &l->lora.A, &l->lora.dA});
    p.push_back({"base_model.model." + l->name + ".lora_B.weight", &l->lora.B, &l->lora.dB});
  }
  return p;
}

void alloc_lora_grads(Qwen2Model& m) {
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

void zero_lora_grads(Qwen2Model& m) {
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

void merge_adapters(Qwen2Model& m) {
  for (Linear* l : m.all_linears()) {
    if (!l->lora.active()) continue;
    l->w = merged_weight(l->w, l->lora.A, l->lora.B, l->lora.scale).to(m.device());
    l->lora = LoraSlot{};
  }
}

}  // namespace wick
