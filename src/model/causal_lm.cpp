// CausalLM: the parameters from the family's weight table (loaded or random), the Linears, the KV cache.
#include "model/causal_lm.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/warn.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/forward_workspace.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/norm.h"

namespace fs = std::filesystem;

namespace wick {

namespace {

// Loads one tensor, checks its shape, converts to the compute dtype and moves it to the device.
Tensor load_param(const io::Checkpoint& ck, const std::string& name, const Shape& want, Device dev, DType dt,
                  const std::string& model_type) {
  if (!ck.has(name))
    throw Error("tensor '" + name + "' is missing", ck.files().empty() ? "" : ck.files()[0]->path(),
                "the checkpoint does not look like a " + model_type + " model of this config.json");
  const io::TensorInfo& info = ck.info(name);
  if (info.shape != want)
    throw Error("tensor '" + name + "' has shape " + shape_str(info.shape) + ", expected " + shape_str(want),
                ck.where(name), "config.json and the weights disagree");
  Tensor host = ck.get(name);
  if (!dtype_is_float(host.dtype()))
    throw Error("tensor '" + name + "' has dtype " + info.dtype_str + ", expected a float type", ck.where(name));
  Tensor t = host.to(dt).to(dev);
  // Never keep a view of the mmapped file: a file truncated or rewritten in place while wick runs would
  // turn the next read of it into SIGBUS. Conversions and device copies already own their memory.
  if (t.device() == host.device() && t.raw() == host.raw()) t = t.clone();
  return t;
}

// After loading: tensors of layers the config does not have mean config.json and the weights disagree
// (refused); other tensors the family's table does not use are reported, not silently dropped.
void check_unused(const io::Checkpoint& ck, const std::set<std::string>& used, const ModelConfig& c, const std::string& dir) {
  std::vector<std::string> unused;
  for (const std::string& n : ck.names())
    if (!used.count(n)) unused.push_back(n);
  for (const std::string& n : unused) {
    const std::string pre = "model.layers.";
    if (n.rfind(pre, 0) != 0) continue;
    const size_t dot = n.find('.', pre.size());
    const std::string num = n.substr(pre.size(), dot == std::string::npos ? std::string::npos : dot - pre.size());
    if (!num.empty() && num.size() < 10 && num.find_first_not_of("0123456789") == std::string::npos &&
        std::stoll(num) >= c.num_layers)
      throw Error("the checkpoint holds layer " + num + " ('" + n + "') but config.json says num_hidden_layers = " +
                      std::to_string(c.num_layers),
                  ck.where(n), "config.json and the weights disagree: fix num_hidden_layers");
  }
  if (unused.empty()) return;
  std::string list;
  for (size_t i = 0; i < unused.size() && i < 3; i++) list += (i ? ", " : "") + unused[i];
  if (unused.size() > 3) list += ", ...";
  warn(std::to_string(unused.size()) + " tensor(s) in " + dir + " are not used by the " + c.model_type +
       " architecture of its config.json and are ignored: " + list);
}

// Fills w from `get`, model-level tensors first, then the layers in table order (the order random models
// draw their values in). Linears get their HF module path as name; a tied lm_head is the embedding.
void assemble(const ModelConfig& c, ModelWeights& w, const std::function<Tensor(const WeightSpec&)>& get) {
  const std::vector<WeightSpec> table = c.family().weights(c);
  w.layers.assign(static_cast<size_t>(c.num_layers), LayerWeights{});
  for (int pass = 0; pass < 2; pass++)
    for (const WeightSpec& s : table) {
      if ((s.layer < 0) != (pass == 0)) continue;
      slot_of(w, s) = get(s);
      if (s.linear_slot) (w.layers[s.layer].*s.linear_slot).name = s.module();
    }
  if (c.tie_word_embeddings) w.lm_head = w.embed;
  WICK_CHECK(w.embed.defined() && w.final_norm.defined() && w.lm_head.defined(), "incomplete weight table of " << c.model_type);
}

}  // namespace

CausalLM::CausalLM() = default;
CausalLM::~CausalLM() = default;

std::unique_ptr<CausalLM> CausalLM::load(const std::string& dir, Device device, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    throw Error(std::string("compute dtype ") + dtype_name(dtype) + " is not supported", dir, "use f32 or bf16");
  if (device.is_cpu() && dtype != DType::F32)
    throw Error("the CPU computes in f32", dir, "use --dtype f32 on the CPU (bf16 is for CUDA)");
  auto m = std::make_unique<CausalLM>();
  m->cfg_ = ModelConfig::from_model_dir(dir);
  m->family_ = &m->cfg_.family();
  m->device_ = device;
  m->dtype_ = dtype;
  m->dir_ = dir;
  const io::Checkpoint ck = io::Checkpoint::open(dir);
  std::set<std::string> used;
  assemble(m->cfg_, m->w_, [&](const WeightSpec& s) {
    used.insert(s.name);
    return load_param(ck, s.name, s.shape, device, dtype, m->cfg_.model_type);
  });
  check_unused(ck, used, m->cfg_, dir);
  return m;
}

std::unique_ptr<CausalLM> CausalLM::random(const ModelConfig& c, Device device, DType dtype, uint64_t seed) {
  auto m = std::make_unique<CausalLM>();
  m->cfg_ = c;
  m->family_ = &c.family();
  m->device_ = device;
  m->dtype_ = dtype;
  Rng rng(seed);
  auto randn = [&](const Shape& s, float scale, float mean) {
    Tensor h = Tensor::empty(s, DType::F32);
    float* p = h.data<float>();
    for (int64_t i = 0; i < h.numel(); i++) p[i] = mean + scale * rng.normal();
    return h.to(dtype).to(device);
  };
  // Norm weights near 1 (near 0 where they are offsets from 1, Gemma), not exactly, so nothing passes by
  // accident; the rest N(0, 0.02).
  const float norm_mean = c.norm_plus_one ? 0.0f : 1.0f;
  assemble(m->cfg_, m->w_, [&](const WeightSpec& s) {
    return s.role == WeightRole::Norm ? randn(s.shape, 0.1f, norm_mean) : randn(s.shape, 0.02f, 0.0f);
  });
  return m;
}

std::vector<Linear*> CausalLM::all_linears() {
  std::vector<Linear*> out;
  for (auto& L : w_.layers)
    for (Linear* l : L.linears())
      if (l->w.defined()) out.push_back(l);
  return out;
}

Linear* CausalLM::find_linear(const std::string& module_path) {
  for (Linear* l : all_linears())
    if (l->name == module_path) return l;
  return nullptr;
}

void CausalLM::embed_tokens(const Tensor& ids, Tensor& x) const {
  embedding_forward(ids, w_.embed, x);
  if (!cfg_.embed_scaled) return;
  // transformers: embed_scale = hidden_size ** 0.5 (a Python float, stored as an f32 buffer), cast to the
  // weights' dtype, then multiplied in that dtype.
  float s = static_cast<float>(std::sqrt(static_cast<double>(cfg_.hidden_size)));
  if (dtype_ == DType::BF16) s = round_bf16(s);
  scale(x, s, x);
}

void CausalLM::final_norm_forward(const Tensor& x, Tensor& y, Tensor& rstd) const {
  rms_norm_forward(x, w_.final_norm, static_cast<float>(cfg_.rms_norm_eps), y, rstd, rms_weight(cfg_));
}

void CausalLM::final_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dx) const {
  rms_norm_backward(dy, x, w_.final_norm, rstd, dx, nullptr, rms_weight(cfg_));
}

KVCache::KVCache(const CausalLM& m, int64_t batch, int64_t capacity) : batch_(batch), cap_(capacity) {
  const ModelConfig& c = m.config();
  for (int64_t i = 0; i < c.num_layers; i++) {
    k_.push_back(Tensor::empty({batch, capacity, c.num_kv_heads, c.head_dim}, m.dtype(), m.device()));
    v_.push_back(Tensor::empty({batch, capacity, c.num_kv_heads, c.head_dim}, m.dtype(), m.device()));
  }
}

}  // namespace wick
