#include "model/qwen2.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/warn.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/forward_workspace.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

namespace fs = std::filesystem;

namespace wick {

namespace {

std::string layer_prefix(size_t i) { return "model.layers." + std::to_string(i) + "."; }

// Loads one tensor, checks its shape, converts to the compute dtype and moves it to the device.
Tensor load_param(const io::Checkpoint& ck, const std::string& name, const Shape& want, Device dev, DType dt) {
  if (!ck.has(name))
    throw Error("tensor '" + name + "' is missing", ck.files().empty() ? "" : ck.files()[0]->path(),
                "the checkpoint does not look like a Qwen2 model of this config.json");
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
// (refused); other tensors the architecture does not use are reported, not silently dropped.
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
  warn(std::to_string(unused.size()) + " tensor(s) in " + dir + " are not used by the Qwen2 architecture of its config.json and are ignored: " + list);
}

Linear make_linear(const std::string& name, Tensor w, Tensor b) {
  Linear l;
  l.name = name;
  l.w = std::move(w);
  l.b = std::move(b);
  return l;
}

// What a parameter is, for sources that make up values (norm weights near 1, the rest small).
enum class ParamKind { Embedding, Norm, Weight, Bias };
using ParamSource = std::function<Tensor(const std::string& name, const Shape& shape, ParamKind kind)>;

// Fills m's parameters from `get`, in checkpoint order: embeddings, final norm, lm_head (untied), then per
// layer the norms and q, k, v (weight, bias), o, gate, up, down.
void assemble(Qwen2Model& m, std::vector<DecoderLayer>& layers, Tensor& embed, Tensor& final_norm, Tensor& lm_head,
              const ParamSource& get) {
  const ModelConfig& c = m.config();
  const int64_t C = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, Q = c.q_dim(), KV = c.kv_dim();
  embed = get("model.embed_tokens.weight", {V, C}, ParamKind::Embedding);
  final_norm = get("model.norm.weight", {C}, ParamKind::Norm);
  lm_head = c.tie_word_embeddings ? embed : get("lm_head.weight", {V, C}, ParamKind::Embedding);
  for (int64_t i = 0; i < c.num_layers; i++) {
    const std::string p = layer_prefix(i);
    DecoderLayer L;
    auto lin = [&](const std::string& mod, int64_t out, int64_t in, bool bias) {
      Tensor w = get(p + mod + ".weight", {out, in}, ParamKind::Weight);
      Tensor b = bias ? get(p + mod + ".bias", {out}, ParamKind::Bias) : Tensor();
      return make_linear(p + mod, w, b);
    };
    L.input_norm = get(p + "input_layernorm.weight", {C}, ParamKind::Norm);
    L.post_norm = get(p + "post_attention_layernorm.weight", {C}, ParamKind::Norm);
    L.q = lin("self_attn.q_proj", Q, C, c.attention_bias);
    L.k = lin("self_attn.k_proj", KV, C, c.attention_bias);
    L.v = lin("self_attn.v_proj", KV, C, c.attention_bias);
    L.o = lin("self_attn.o_proj", C, Q, false);
    L.gate = lin("mlp.gate_proj", I, C, false);
    L.up = lin("mlp.up_proj", I, C, false);
    L.down = lin("mlp.down_proj", C, I, false);
    layers.push_back(std::move(L));
  }
}

}  // namespace

Qwen2Model::Qwen2Model() = default;
Qwen2Model::~Qwen2Model() = default;

std::unique_ptr<Qwen2Model> Qwen2Model::load(const std::string& dir, Device device, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16)
    throw Error(std::string("compute dtype ") + dtype_name(dtype) + " is not supported", dir, "use f32 or bf16");
  if (device.is_cpu() && dtype != DType::F32)
    throw Error("the CPU computes in f32", dir, "use --dtype f32 on the CPU (bf16 is for CUDA)");
  const fs::path cfg_path = fs::path(dir) / "config.json";
  if (!fs::exists(cfg_path)) throw Error("no config.json in the model folder", dir, "point --model at a Hugging Face model folder");
  auto m = std::make_unique<Qwen2Model>();
  m->cfg_ = ModelConfig::from_json_file(cfg_path.string());
  m->device_ = device;
  m->dtype_ = dtype;
  m->dir_ = dir;
  const io::Checkpoint ck = io::Checkpoint::open(dir);
  std::set<std::string> used;
  assemble(*m, m->layers_, m->embed_, m->final_norm_, m->lm_head_, [&](const std::string& name, const Shape& shape, ParamKind) {
    used.insert(name);
    return load_param(ck, name, shape, device, dtype);
  });
  check_unused(ck, used, m->cfg_, dir);
  return m;
}

std::unique_ptr<Qwen2Model> Qwen2Model::random(const ModelConfig& c, Device device, DType dtype, uint64_t seed) {
  auto m = std::make_unique<Qwen2Model>();
  m->cfg_ = c;
  m->device_ = device;
  m->dtype_ = dtype;
  Rng rng(seed);
  auto randn = [&](const Shape& s, float scale, float mean) {
    Tensor h = Tensor::empty(s, DType::F32);
    float* p = h.data<float>();
    for (int64_t i = 0; i < h.numel(); i++) p[i] = mean + scale * rng.normal();
    return h.to(dtype).to(device);
  };
  // Norm weights near 1, not exactly 1, so nothing passes by accident; the rest N(0, 0.02).
  assemble(*m, m->layers_, m->embed_, m->final_norm_, m->lm_head_,
           [&](const std::string&, const Shape& shape, ParamKind kind) {
             return kind == ParamKind::Norm ? randn(shape, 0.1f, 1.0f) : randn(shape, 0.02f, 0.0f);
           });
  return m;
}

std::vector<Linear*> Qwen2Model::all_linears() {
  std::vector<Linear*> out;
  for (auto& L : layers_)
    for (Linear* l : L.linears()) out.push_back(l);
  return out;
}

Linear* Qwen2Model::find_linear(const std::string& module_path) {
  for (Linear* l : all_linears())
    if (l->name == module_path) return l;
  return nullptr;
}

KVCache::KVCache(const Qwen2Model& m, int64_t batch, int64_t capacity) : batch_(batch), cap_(capacity) {
  const ModelConfig& c = m.config();
  for (int64_t i = 0; i < c.num_layers; i++) {
    k_.push_back(Tensor::empty({batch, capacity, c.num_kv_heads, c.head_dim}, m.dtype(), m.device()));
    v_.push_back(Tensor::empty({batch, capacity, c.num_kv_heads, c.head_dim}, m.dtype(), m.device()));
  }
}

}  // namespace wick
