// config.json -> ModelConfig (formats.md §2.1). Accepts the Hub style and the transformers-5 style;
// refuses, naming the file and the field, whatever wick would otherwise compute wrongly.
#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/fs_util.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "model/family.h"

namespace wick {

using nlohmann::json;
using io::get_bool;
using io::get_int;
using io::get_number;
using io::get_string;
using io::json_brief;

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

// RoPE: top-level rope_theta (+ rope_scaling), or transformers-5 rope_parameters, into c.
static void read_rope(const json& j, const Family* fam, ModelConfig& c, const std::string& where) {
  std::optional<double> theta = get_number(j, "rope_theta", where);
  // A RoPE type the family computes: "default", or "llama3" for the families that use it.
  auto rope_type = [&](const json& obj, const std::string& field) {
    const std::string t = rope_type_of(obj, field, where);
    if (t == "llama3" && fam->llama3_rope) {
      const std::string w = where + " (" + field + ")";
      auto need = [&](const char* key) {
        const auto v = get_number(obj, key, w);
        if (!v || !(*v > 0)) throw Error(std::string("llama3 RoPE needs a positive '") + key + "'", w);
        return *v;
      };
      c.rope_scaling.factor = need("factor");
      c.rope_scaling.low_freq_factor = need("low_freq_factor");
      c.rope_scaling.high_freq_factor = need("high_freq_factor");
      c.rope_scaling.original_max_position_embeddings = static_cast<int64_t>(need("original_max_position_embeddings"));
      if (c.rope_scaling.low_freq_factor == c.rope_scaling.high_freq_factor)
        throw Error("llama3 RoPE needs low_freq_factor != high_freq_factor", w);
      return;
    }
    if (t != "default")
      throw Error("field '" + field + "' has rope_type '" + t + "', which is not supported yet", where,
                  std::string("wick implements ") + (fam->llama3_rope ? "the default and llama3 RoPE" : "the default RoPE") +
                      " for " + fam->model_type);
  };
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) rope_type(*rs, "rope_scaling");
  if (auto rp = j.find("rope_parameters"); rp != j.end() && !rp->is_null()) {
    rope_type(*rp, "rope_parameters");
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
}

ModelConfig ModelConfig::from_json_file(const std::string& path) { return from_json_string(io::read_file(path), path); }

ModelConfig ModelConfig::from_model_dir(const std::string& dir) {
  const std::filesystem::path cfg = std::filesystem::path(dir) / "config.json";
  if (!io::path_exists(cfg)) {
    if (io::path_exists(std::filesystem::path(dir) / "adapter_config.json"))
      throw Error("no config.json in the model folder: it holds a PEFT adapter (adapter_config.json)", dir,
                  "point --model at the base model's folder and pass this one as --adapter");
    throw Error("no config.json in the model folder", dir, "point --model at a Hugging Face model folder");
  }
  return from_json_file(cfg.string());
}

// The most layers a config.json may declare: well above any published model (Llama 3.1 405B has 126), low
// enough that listing every layer's weights stays instant.
constexpr int64_t kMaxModelLayers = 1024;

ModelConfig ModelConfig::from_json_string(const std::string& text, const std::string& where) {
  const json j = io::parse_json_strict(text, where);
  if (!j.is_object()) throw Error("config must be a JSON object, got " + json_brief(j), where);
  ModelConfig c;

  const std::string supported = "supported model families: " + supported_families();
  const auto mt = get_string(j, "model_type", where);
  if (!mt) throw Error("missing field 'model_type'", where, supported);
  const Family* fam = find_family(*mt);
  if (*mt == "gemma3")
    throw Error("model_type 'gemma3' is the multimodal Gemma 3 (vision tower + text model under text_config); only "
                    "the text model is supported",
                where, "use a text-only Gemma 3 checkpoint (model_type gemma3_text, e.g. gemma-3-1b-pt / -it)");
  if (!fam) throw Error("model_type '" + *mt + "' is not supported", where, supported);
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
  // Every layer's weights are listed (names, shapes) by the family: a count beyond any model made a config
  // of a few bytes take minutes and gigabytes before anything was refused (found by fuzz/fuzz_config).
  if (c.num_layers > kMaxModelLayers)
    throw Error("field 'num_hidden_layers' is " + std::to_string(c.num_layers) + "; wick supports at most " +
                    std::to_string(kMaxModelLayers) + " layers",
                where);
  c.num_heads = required("num_attention_heads");
  c.vocab_size = required("vocab_size");
  c.num_kv_heads = get_int(j, "num_key_value_heads", where).value_or(c.num_heads);
  if (c.num_kv_heads <= 0)
    throw Error("field 'num_key_value_heads' must be positive, got " + std::to_string(c.num_kv_heads), where);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where).value_or(false);  // a family may default it
  fam->read_config(j, c, where);  // head_dim, biases, q/k norms, what the family refuses
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error("num_attention_heads " + std::to_string(c.num_heads) + " is not divisible by num_key_value_heads " +
                    std::to_string(c.num_kv_heads),
                where);
  if (c.head_dim <= 0 || c.head_dim % 2 != 0)
    throw Error("head_dim " + std::to_string(c.head_dim) + " must be positive and even for RoPE", where);

  if (const auto v = get_int(j, "max_position_embeddings", where)) {
    if (*v <= 0) throw Error("field 'max_position_embeddings' must be positive, got " + std::to_string(*v), where);
    c.max_position_embeddings = *v;
  }
  if (const auto v = get_number(j, "rms_norm_eps", where)) {
    if (!(*v > 0)) throw Error("field 'rms_norm_eps' must be positive, got " + json_brief(j["rms_norm_eps"]), where);
    c.rms_norm_eps = *v;
  }
  if (const auto act = get_string(j, "hidden_act", where); act && *act != fam->hidden_act)
    throw Error("field 'hidden_act' is '" + *act + "'; only \"" + fam->hidden_act + "\" is supported for " + fam->model_type,
                where);
  if (get_bool(j, "use_sliding_window", where).value_or(false))
    throw Error("field 'use_sliding_window' is true; sliding-window attention is not supported yet", where,
                "Qwen2.5 and Qwen3 checkpoints set it to false");
  if (auto lt = j.find("layer_types"); lt != j.end() && !lt->is_null() && !fam->layer_typed) {
    if (!lt->is_array()) throw Error("field 'layer_types' must be a list, got " + json_brief(*lt), where);
    for (const json& t : *lt)
      if (t != "full_attention")
        throw Error("field 'layer_types' contains " + json_brief(t) + "; only \"full_attention\" is supported", where);
  }
  if (get_bool(j, "use_mrope", where).value_or(false))
    throw Error("field 'use_mrope' is true; multimodal RoPE is not supported", where);
  if (auto d = get_string(j, "dtype", where)) c.torch_dtype = *d;
  else if (auto td = get_string(j, "torch_dtype", where)) c.torch_dtype = *td;

  if (!fam->layer_typed) read_rope(j, fam, c, where);  // else the family read its RoPE per layer type

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
  const Family& fam = family();
  json j = json::object();  // std::map-backed: keys come out sorted, as transformers writes them
  j["architectures"] = {fam.architecture};
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = ids_json(bos_token_ids);
  j["eos_token_id"] = ids_json(eos_token_ids);
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = intermediate_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["model_type"] = model_type;
  j["num_attention_heads"] = num_heads;
  j["num_hidden_layers"] = num_layers;
  j["num_key_value_heads"] = num_kv_heads;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_scaling"] = nullptr;
  if (rope_scaling.factor != 0 && rope_scaling.linear)
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rope_scaling.factor}};
  else if (rope_scaling.factor != 0)
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  j["vocab_size"] = vocab_size;
  fam.write_config(j, *this);
  return j.dump(2) + "\n";
}

const Family& ModelConfig::family() const {
  const Family* f = find_family(model_type);
  if (!f) throw Error("model_type '" + model_type + "' is not supported", "", "supported model families: " + supported_families());
  return *f;
}

int64_t ModelConfig::num_parameters() const { return count_parameters(*this); }

float ModelConfig::attention_scale() const {
  // transformers multiplies the f32 scores by the Python float scalar ** -0.5, i.e. by that value in f32.
  if (query_pre_attn_scalar > 0) return static_cast<float>(std::pow(query_pre_attn_scalar, -0.5));
  return 1.0f / std::sqrt(static_cast<float>(head_dim));
}

}  // namespace wick
