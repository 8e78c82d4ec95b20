// Gemma 3 text (Gemma 3 1B, and text-only exports of the larger ones): transformers' modeling_gemma3.py,
// Gemma3ForCausalLM. What differs from the Llama-style model:
//  - token embeddings times sqrt(hidden_size); every RMSNorm scales by (1 + w) in f32 (the checkpoint stores
//    offsets from 1; they are loaded, merged and written unchanged);
//  - sandwich norms: input_layernorm -> attention -> post_attention_layernorm -> + residual, then
//    pre_feedforward_layernorm -> MLP -> post_feedforward_layernorm -> + residual (the layer code below);
//  - q_norm / k_norm on every head before RoPE; attention scale query_pre_attn_scalar^-0.5, not head_dim^-0.5;
//  - GeGLU MLP: down(gelu_pytorch_tanh(gate(x)) * up(x));
//  - layer_types: a sliding_attention layer sees its last sliding_window positions and rotates with the local
//    RoPE base (10000), a full_attention layer is causal with rope_theta (1e6), optionally linearly rescaled;
//  - a tied lm_head unless tie_word_embeddings says otherwise (the config class's default is tied, so
//    transformers leaves the field out of config.json).
// Logit soft-capping (null in every Gemma 3) and bidirectional attention (EmbeddingGemma) are refused.
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "model/family.h"
#include "model/layer.h"
#include "ops/elementwise.h"

namespace wick {

namespace {

using nlohmann::json;

constexpr const char* kSliding = "sliding_attention";
constexpr const char* kFull = "full_attention";

// layer_types (transformers 5 and recent Hub files), else sliding_window_pattern (older Hub files: every
// pattern-th layer is full, the others sliding; default 6, as Gemma3TextConfig derives it).
void read_layer_types(const json& j, ModelConfig& c, const std::string& where) {
  c.sliding_layers.assign(static_cast<size_t>(c.num_layers), false);
  auto lt = j.find("layer_types");
  if (lt != j.end() && !lt->is_null()) {
    if (!lt->is_array() || static_cast<int64_t>(lt->size()) != c.num_layers)
      throw Error("field 'layer_types' must be a list of num_hidden_layers = " + std::to_string(c.num_layers) +
                      " entries, got " + io::json_brief(*lt),
                  where);
    for (size_t i = 0; i < lt->size(); i++) {
      const json& t = (*lt)[i];
      if (t != kSliding && t != kFull)
        throw Error("field 'layer_types' entry " + std::to_string(i) + " is " + io::json_brief(t) +
                        "; Gemma 3 layers are \"sliding_attention\" or \"full_attention\"",
                    where);
      c.sliding_layers[i] = t == kSliding;
    }
    return;
  }
  const int64_t pattern = io::get_int(j, "sliding_window_pattern", where).value_or(6);
  if (pattern <= 0) throw Error("field 'sliding_window_pattern' must be positive, got " + std::to_string(pattern), where);
  for (int64_t i = 0; i < c.num_layers; i++) c.sliding_layers[static_cast<size_t>(i)] = (i + 1) % pattern != 0;
}

// One RoPE parameter object (rope_scaling, or an entry of rope_parameters): its theta into *theta when given,
// and its type: "default", or "linear" (with a positive factor) where linear_ok (full-attention layers).
void read_rope_object(const json& obj, const std::string& field, bool linear_ok, ModelConfig& c, double* theta,
                      const std::string& where) {
  const std::string w = where + " (" + field + ")";
  if (!obj.is_object()) throw Error("field '" + field + "' must be an object or null, got " + io::json_brief(obj), where);
  auto type = io::get_string(obj, "rope_type", w);
  if (!type) type = io::get_string(obj, "type", w);
  const std::string t = type.value_or("default");
  if (t == "linear" && linear_ok) {
    const auto f = io::get_number(obj, "factor", w);
    if (!f || !(*f > 0)) throw Error("linear RoPE needs a positive 'factor'", w);
    c.rope_scaling = RopeScaling{};
    c.rope_scaling.factor = *f;
    c.rope_scaling.linear = true;
  } else if (t != "default") {
    throw Error("field '" + field + "' has rope_type '" + t + "', which is not supported", where,
                std::string("wick implements the default RoPE") + (linear_ok ? " and linear scaling" : "") +
                    " for Gemma 3's " + (linear_ok ? "full-attention" : "sliding-window") + " layers");
  }
  if (const auto th = io::get_number(obj, "rope_theta", w)) *theta = *th;
}

// Full-attention RoPE (rope_theta, optional linear rescaling) and sliding-window RoPE (the local base):
// transformers 5's rope_parameters keyed by layer type, or the Hub's rope_theta + rope_local_base_freq +
// rope_scaling (which, as transformers applies it, rescales the full-attention layers only).
void read_rope(const json& j, ModelConfig& c, const std::string& where) {
  const auto top_theta = io::get_number(j, "rope_theta", where);
  const auto top_local = io::get_number(j, "rope_local_base_freq", where);
  double full = top_theta.value_or(1e6), local = top_local.value_or(1e4);
  if (auto rp = j.find("rope_parameters"); rp != j.end() && !rp->is_null()) {
    if (!rp->is_object() || (!rp->contains(kFull) && !rp->contains(kSliding)))
      throw Error("field 'rope_parameters' must be keyed by layer type (\"full_attention\", \"sliding_attention\"), got " +
                      io::json_brief(*rp),
                  where, "transformers 5 writes Gemma 3's RoPE that way");
    for (const auto& [key, obj] : rp->items()) {
      if (key != kFull && key != kSliding)
        throw Error("field 'rope_parameters' has an entry for '" + key + "'; Gemma 3 layers are \"sliding_attention\" or "
                    "\"full_attention\"", where);
      const bool is_full = key == kFull;
      double theta = is_full ? full : local;
      read_rope_object(obj, "rope_parameters." + key, is_full, c, &theta, where);
      const std::optional<double>& legacy = is_full ? top_theta : top_local;
      if (legacy && *legacy != theta)
        throw Error(std::string(is_full ? "rope_theta " : "rope_local_base_freq ") + io::json_brief(json(*legacy)) +
                        " disagrees with rope_parameters." + key + ".rope_theta " + io::json_brief(json(theta)),
                    where);
      (is_full ? full : local) = theta;
    }
  }
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    double unused = full;
    read_rope_object(*rs, "rope_scaling", /*linear_ok=*/true, c, &unused, where);
  }
  if (!(full > 0) || !std::isfinite(full)) throw Error("the full-attention rope_theta must be positive, got " + std::to_string(full), where);
  if (!(local > 0) || !std::isfinite(local))
    throw Error("the sliding-window RoPE base (rope_local_base_freq) must be positive, got " + std::to_string(local), where);
  c.rope_theta = full;
  c.rope_local_theta = local;
}

void read_config(const json& j, ModelConfig& c, const std::string& where) {
  const auto hd = io::get_int(j, "head_dim", where);
  c.head_dim = hd.value_or(256);  // Gemma3TextConfig's default
  c.attention_bias = c.o_bias = io::get_bool(j, "attention_bias", where).value_or(false);
  c.mlp_bias = false;
  c.qk_norm = c.norm_plus_one = c.sandwich_norms = c.embed_scaled = c.gelu_mlp = true;
  c.tie_word_embeddings = io::get_bool(j, "tie_word_embeddings", where).value_or(true);
  c.max_position_embeddings = 131072;  // the class default; the common reader takes the field when present
  if (const auto act = io::get_string(j, "hidden_activation", where); act && *act != "gelu_pytorch_tanh")
    throw Error("field 'hidden_activation' is '" + *act + "'; Gemma 3 uses \"gelu_pytorch_tanh\", the only one supported",
                where);
  c.query_pre_attn_scalar = io::get_number(j, "query_pre_attn_scalar", where).value_or(256);
  if (!(c.query_pre_attn_scalar > 0))
    throw Error("field 'query_pre_attn_scalar' must be positive, got " + std::to_string(c.query_pre_attn_scalar), where);
  for (const char* cap : {"attn_logit_softcapping", "final_logit_softcapping"})
    if (auto it = j.find(cap); it != j.end() && !it->is_null())
      throw Error(std::string("field '") + cap + "' is " + io::json_brief(*it) + "; logit soft-capping is not supported",
                  where, "Gemma 3 sets it to null (Gemma 2 uses it)");
  if (io::get_bool(j, "use_bidirectional_attention", where).value_or(false))
    throw Error("field 'use_bidirectional_attention' is true; only causal Gemma 3 is supported", where);
  read_layer_types(j, c, where);
  c.sliding_window = io::get_int(j, "sliding_window", where).value_or(4096);
  if (c.sliding_window <= 0)
    throw Error("field 'sliding_window' must be positive, got " + std::to_string(c.sliding_window), where);
  read_rope(j, c, where);
}

// Hub style (google/gemma-3-1b-it's config.json), with layer_types spelled out.
void write_config(json& j, const ModelConfig& c) {
  j.erase("hidden_act");
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["attention_bias"] = c.attention_bias;
  j["attn_logit_softcapping"] = nullptr;
  j["final_logit_softcapping"] = nullptr;
  j["head_dim"] = c.head_dim;
  const double q = c.query_pre_attn_scalar;
  if (q == std::floor(q) && q < 9e15) j["query_pre_attn_scalar"] = static_cast<int64_t>(q);
  else j["query_pre_attn_scalar"] = q;
  j["sliding_window"] = c.sliding_window;
  json types = json::array();
  for (int64_t l = 0; l < c.num_layers; l++) types.push_back(c.is_sliding(l) ? kSliding : kFull);
  j["layer_types"] = types;
  j["rope_local_base_freq"] = c.rope_local_theta;
}

// The Llama-style table with Gemma's four norms per layer: its post_attention_layernorm normalises the
// attention output, pre_feedforward_layernorm is the norm before the MLP (the Llama table's post_norm slot),
// post_feedforward_layernorm normalises the MLP output.
std::vector<WeightSpec> weights(const ModelConfig& c) {
  std::vector<WeightSpec> t;
  for (WeightSpec& s : llama_style_weights(c)) {
    if (s.tensor_slot != &LayerWeights::post_norm) {
      t.push_back(std::move(s));
      continue;
    }
    const std::string prefix = s.name.substr(0, s.name.size() - std::string("post_attention_layernorm.weight").size());
    WeightSpec pre = s, post = s;
    s.tensor_slot = &LayerWeights::attn_out_norm;
    t.push_back(std::move(s));
    pre.name = prefix + "pre_feedforward_layernorm.weight";
    t.push_back(std::move(pre));
    post.name = prefix + "post_feedforward_layernorm.weight";
    post.tensor_slot = &LayerWeights::mlp_out_norm;
    t.push_back(std::move(post));
  }
  return t;
}

// h = x + rms(attn(rms(x))); out = h + rms(mlp(rms(h))), every rms with (1 + w).
void forward(LayerWeights& W, LayerActs& A, const Tensor& x, Tensor& out, LayerRun& run) {
  const float eps = static_cast<float>(run.cfg->rms_norm_eps);
  const RmsWeight kind = rms_weight(*run.cfg);
  const std::string p = run.hook ? run.prefix() : std::string();
  rms_norm_forward(x, W.input_norm, eps, A.a, A.rstd1, kind);
  run.emit(p + "input_layernorm", A.a);
  attention_block_forward(W, A, A.a, A.attn_out, run);
  rms_norm_forward(A.attn_out, W.attn_out_norm, eps, A.h, A.rstd3, kind);
  run.emit(p + "post_attention_layernorm", A.h);
  add(A.h, x, A.h);
  rms_norm_forward(A.h, W.post_norm, eps, A.b, A.rstd2, kind);
  run.emit(p + "pre_feedforward_layernorm", A.b);
  mlp_block_forward(W, A, A.b, A.mlp_out, run);
  rms_norm_forward(A.mlp_out, W.mlp_out_norm, eps, out, A.rstd4, kind);  // out may be x: x is not read again
  run.emit(p + "post_feedforward_layernorm", out);
  add(out, A.h, out);
  if (run.hook) run.emit(p.substr(0, p.size() - 1), out);
}

void backward(LayerWeights& W, LayerActs& A, LayerGrads& G, LayerRun& run) {
  const RmsWeight kind = rms_weight(*run.cfg);
  rms_norm_backward(G.dx, A.mlp_out, W.mlp_out_norm, A.rstd4, G.da, nullptr, kind);  // d mlp_out
  mlp_block_backward(W, A, A.b, G.da, G.dx2, G, run);                                  // d b
  rms_norm_backward(G.dx2, A.h, W.post_norm, A.rstd2, G.dx, nullptr, kind, /*accumulate*/ true);  // d loss / d h
  rms_norm_backward(G.dx, A.attn_out, W.attn_out_norm, A.rstd3, G.da, nullptr, kind);  // d attn_out
  attention_block_backward(W, A, A.a, G.da, G.dx2, G, run);                             // d a
  rms_norm_backward(G.dx2, A.x, W.input_norm, A.rstd1, G.dx, nullptr, kind, /*accumulate*/ true);  // d loss / d x
}

const LayerCode kGemma3Layer = {forward, backward};

}  // namespace

extern const Family kGemma3Family = {"gemma3_text",      "Gemma3ForCausalLM", "Gemma 3 text (1B; text-only 4B-27B)",
                                     read_config,        write_config,        weights,
                                     &kGemma3Layer,      /*llama3_rope=*/false, /*hidden_act=*/"gelu_pytorch_tanh",
                                     /*layer_typed=*/true};

}  // namespace wick
