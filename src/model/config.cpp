// config.json -> ModelConfig (formats.md §2.1). Accepts the Hub style and the transformers-5 style;
// refuses, naming the file and the field, whatever wick would otherwise compute wrongly.
#include "model/config.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "io/safetensors.h"

namespace wick {

using nlohmann::json;
using io::get_bool;
using io::get_int;
using io::get_number;
using io::get_string;
using io::json_brief;

static const char* kSupported = "supported model families: qwen2 (Qwen2, Qwen2.5, Qwen2.5-Coder)";

// eos/bos: an int, a list of ints, or null. Ids outside [0, vocab) are dropped (a tiny test model's
// config may carry the full tokenizer's ids).
static std::vector<int64_t> token_ids(const json& j, const std::string& key, int64_t vocab, const std::string& where) {
  std::vector<int64_t> raw;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return raw;
  auto one = [&](const json& v) {
    if (!v.is_number_integer()) throw Error("field '" + key + "' must be a token id or a list of ids, got " + json_brief(*it), where);
    raw.push_back(v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) ? -1 : v.get<int64_t>());
  };
  if (it->is_array()) {
    for (const json& v : *it) one(v);
  } else {
    one(*it);
  }
  std::vector<int64_t> out;
  for (int64_t id : raw)
    if (id >= 0 && id < vocab && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  return out;
}

// The rope_type of a rope_scaling / rope_parameters object ("type" is the legacy spelling).
static std::string rope_type_of(const json& obj, const std::string& field, const std::string& where) {
  if (!obj.is_object()) throw Error("field '" + field + "' must be an object or null, got " + json_brief(obj), where);
  auto t = get_string(obj, "rope_type", where + " (" + field + ")");
  if (!t) t = get_string(obj, "type", where + " (" + field + ")");
  return t.value_or("default");
}

static int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Error("model size overflows 64 bits");
  return r;
}
static int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw Error("model size overflows 64 bits");
  return r;
}

ModelConfig ModelConfig::from_json_file(const std::string& path) { return from_json_string(io::read_file(path), path); }

ModelConfig ModelConfig::from_json_string(const std::string& text, const std::string& where) {
  const json j = io::parse_json_strict(text, where);
  if (!j.is_object()) throw Error("config must be a JSON object, got " + json_brief(j), where);
  ModelConfig c;

  const auto mt = get_string(j, "model_type", where);
  if (!mt) throw Error("missing field 'model_type'", where, kSupported);
  if (*mt != "qwen2") throw Error("model_type '" + *mt + "' is not supported", where, kSupported);
  c.model_type = *mt;

  auto required = [&](const char* key) {
    const auto v = get_int(j, key, where);
    if (!v) throw Error(std::string("missing required field '") + key + "'", where);
    if (*v <= 0) throw Error(std::string("field '") + key + "' must be positive, got " + std::to_string(*v), where);
    return *v;
  };
  c.hidden_size = required("hidden_size");
  c.intermediate_size = required("intermediate_size");
  c.num_layers = required("num_hidden_layers");
  c.num_heads = required("num_attention_heads");
  c.vocab_size = required("vocab_size");
  c.num_kv_heads = get_int(j, "num_key_value_heads", where).value_or(c.num_heads);
  if (c.num_kv_heads <= 0)
    throw Error("field 'num_key_value_heads' must be positive, got " + std::to_string(c.num_kv_heads), where);
  if (c.hidden_size % c.num_heads != 0)
    throw Error("hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
                    std::to_string(c.num_heads),
                where);
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error("num_attention_heads " + std::to_string(c.num_heads) + " is not divisible by num_key_value_heads " +
                    std::to_string(c.num_kv_heads),
                where);
  c.head_dim = c.hidden_size / c.num_heads;
  if (const auto hd = get_int(j, "head_dim", where); hd && *hd != c.head_dim)
    throw Error("field 'head_dim' is " + std::to_string(*hd) + " but hidden_size / num_attention_heads is " +
                    std::to_string(c.head_dim),
                where, "Qwen2 derives head_dim from hidden_size; a separate head_dim is not supported");
  if (c.head_dim % 2 != 0)
    throw Error("head_dim " + std::to_string(c.head_dim) + " (hidden_size / num_attention_heads) must be even for RoPE", where);

  if (const auto v = get_int(j, "max_position_embeddings", where)) {
    if (*v <= 0) throw Error("field 'max_position_embeddings' must be positive, got " + std::to_string(*v), where);
    c.max_position_embeddings = *v;
  }
  if (const auto v = get_number(j, "rms_norm_eps", where)) {
    if (!(*v > 0)) throw Error("field 'rms_norm_eps' must be positive, got " + json_brief(j["rms_norm_eps"]), where);
    c.rms_norm_eps = *v;
  }
  if (const auto act = get_string(j, "hidden_act", where); act && *act != "silu")
    throw Error("field 'hidden_act' is '" + *act + "'; only \"silu\" is supported", where);
  if (get_bool(j, "use_sliding_window", where).value_or(false))
    throw Error("field 'use_sliding_window' is true; sliding-window attention is not supported yet", where,
                "Qwen2.5 checkpoints set it to false");
  if (auto lt = j.find("layer_types"); lt != j.end() && !lt->is_null()) {
    if (!lt->is_array()) throw Error("field 'layer_types' must be a list, got " + json_brief(*lt), where);
    for (const json& t : *lt)
      if (t != "full_attention")
        throw Error("field 'layer_types' contains " + json_brief(t) + "; only \"full_attention\" is supported", where);
  }
  if (get_bool(j, "use_mrope", where).value_or(false))
    throw Error("field 'use_mrope' is true; multimodal RoPE is not supported", where);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where).value_or(false);
  if (auto d = get_string(j, "dtype", where)) c.torch_dtype = *d;
  else if (auto td = get_string(j, "torch_dtype", where)) c.torch_dtype = *td;

  // RoPE: top-level rope_theta (+ rope_scaling), or transformers-5 rope_parameters.
  std::optional<double> theta = get_number(j, "rope_theta", where);
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    const std::string t = rope_type_of(*rs, "rope_scaling", where);
    if (t != "default")
      throw Error("field 'rope_scaling' has rope_type '" + t + "', which is not supported yet", where,
                  "wick implements the default RoPE only");
  }
  if (auto rp = j.find("rope_parameters"); rp != j.end() && !rp->is_null()) {
    const std::string t = rope_type_of(*rp, "rope_parameters", where);
    if (t != "default")
      throw Error("field 'rope_parameters' has rope_type '" + t + "', which is not supported yet", where,
                  "wick implements the default RoPE only");
    const auto pt = get_number(*rp, "rope_theta", where + " (rope_parameters)");
    if (!pt && !theta) throw Error("field 'rope_parameters' has no 'rope_theta'", where);
    if (pt && theta && *pt != *theta)
      throw Error("rope_theta " + json_brief(j["rope_theta"]) + " disagrees with rope_parameters.rope_theta " +
                      json_brief((*rp)["rope_theta"]),
                  where);
    if (pt) theta = pt;
  }
  if (theta) {
    if (!(*theta > 0)) throw Error("field 'rope_theta' must be positive, got " + std::to_string(*theta), where);
    c.rope_theta = *theta;
  }

  c.bos_token_ids = token_ids(j, "bos_token_id", c.vocab_size, where);
  c.eos_token_ids = token_ids(j, "eos_token_id", c.vocab_size, where);
  try {
    (void)c.num_parameters();
  } catch (const Error& e) {
    throw Error("sizes are too large: " + e.what_msg(), where);
  }
  return c;
}

static json ids_json(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

std::string ModelConfig::to_json() const {
  json j = json::object();  // std::map-backed: keys come out sorted, as transformers writes them
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = ids_json(bos_token_ids);
  j["eos_token_id"] = ids_json(eos_token_ids);
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["max_window_layers"] = num_layers;
  j["model_type"] = model_type;
  j["num_attention_heads"] = num_heads;
  j["num_hidden_layers"] = num_layers;
  j["num_key_value_heads"] = num_kv_heads;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_scaling"] = nullptr;
  j["rope_theta"] = rope_theta;
  j["sliding_window"] = nullptr;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  j["use_sliding_window"] = false;
  j["vocab_size"] = vocab_size;
  return j.dump(2) + "\n";
}

// Embedding + per layer (q/k/v weights and biases, o, two norms, gate/up/down) + final norm (+ lm_head).
int64_t ModelConfig::num_parameters() const {
  const int64_t C = hidden_size, I = intermediate_size, q = q_dim(), kv = kv_dim();
  int64_t layer = checked_add(checked_mul(C, q), q);                          // q_proj
  layer = checked_add(layer, checked_mul(2, checked_add(checked_mul(C, kv), kv)));  // k_proj, v_proj
  layer = checked_add(layer, checked_mul(q, C));                              // o_proj
  layer = checked_add(layer, checked_mul(2, C));                              // norms
  layer = checked_add(layer, checked_mul(3, checked_mul(C, I)));              // gate, up, down
  const int64_t embed = checked_mul(vocab_size, C);
  int64_t n = checked_add(embed, checked_mul(num_layers, layer));
  n = checked_add(n, C);
  if (!tie_word_embeddings) n = checked_add(n, embed);
  return n;
}

}  // namespace wick
