#include "model/generation_config.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/fs_util.h"
#include "io/json_util.h"
#include "io/safetensors.h"

namespace wick {

using nlohmann::json;

// An int, a list of ints, or null -> the ids inside [0, vocab), deduplicated; nullopt when absent/null.
static std::optional<std::vector<int64_t>> ids_field(const json& j, const std::string& key, int64_t vocab,
                                                      const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  std::vector<int64_t> out;
  auto one = [&](const json& v) {
    if (!v.is_number_integer())
      throw Error("field '" + key + "' must be a token id or a list of ids, got " + io::json_brief(*it), where);
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return;
    const int64_t id = v.get<int64_t>();
    if (id >= 0 && id < vocab && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  if (it->is_array()) {
    for (const json& v : *it) one(v);
  } else {
    one(*it);
  }
  return out;
}

static std::optional<int64_t> single_id(const json& j, const std::string& key, int64_t vocab, const std::string& where) {
  const auto ids = ids_field(j, key, vocab, where);
  if (!ids || ids->empty()) return std::nullopt;
  return ids->front();
}

GenerationConfig GenerationConfig::from_json_string(const std::string& text, const std::string& where,
                                                    const ModelConfig& cfg) {
  const json j = io::parse_json_strict(text, where);
  if (!j.is_object()) throw Error("generation config must be a JSON object, got " + io::json_brief(j), where);
  GenerationConfig g;
  g.eos_token_ids = ids_field(j, "eos_token_id", cfg.vocab_size, where).value_or(cfg.eos_token_ids);
  g.bos_token_id = single_id(j, "bos_token_id", cfg.vocab_size, where);
  if (!g.bos_token_id && !cfg.bos_token_ids.empty()) g.bos_token_id = cfg.bos_token_ids.front();
  g.pad_token_id = single_id(j, "pad_token_id", cfg.vocab_size, where);
  g.do_sample = io::get_bool(j, "do_sample", where);

  auto ranged = [&](const char* key, double lo, double hi, bool lo_open, const char* expect) {
    const auto v = io::get_number(j, key, where);
    if (v && !((lo_open ? *v > lo : *v >= lo) && *v <= hi))
      throw Error(std::string("field '") + key + "' must be " + expect + ", got " + io::json_brief(j[key]), where);
    return v;
  };
  g.temperature = ranged("temperature", 0.0, 1e30, false, "a number >= 0");
  g.top_p = ranged("top_p", 0.0, 1.0, true, "in (0, 1]");
  g.min_p = ranged("min_p", 0.0, 1.0, false, "in [0, 1]");
  g.repetition_penalty = ranged("repetition_penalty", 0.0, 1e30, true, "a number > 0");
  g.top_k = io::get_int(j, "top_k", where);
  if (g.top_k && *g.top_k < 0) throw Error("field 'top_k' must be >= 0, got " + std::to_string(*g.top_k), where);
  g.max_new_tokens = io::get_int(j, "max_new_tokens", where);
  if (g.max_new_tokens && *g.max_new_tokens < 0)
    throw Error("field 'max_new_tokens' must be >= 0, got " + std::to_string(*g.max_new_tokens), where);
  return g;
}

GenerationConfig load_generation_config(const std::string& model_dir, const ModelConfig& cfg) {
  const std::filesystem::path p = std::filesystem::path(model_dir) / "generation_config.json";
  if (io::path_exists(p)) return GenerationConfig::from_json_string(io::read_file(p.string()), p.string(), cfg);
  GenerationConfig g;
  g.eos_token_ids = cfg.eos_token_ids;
  if (!cfg.bos_token_ids.empty()) g.bos_token_id = cfg.bos_token_ids.front();
  return g;
}

std::vector<int64_t> load_generation_eos(const std::string& model_dir, const ModelConfig& cfg) {
  return load_generation_config(model_dir, cfg).eos_token_ids;
}

}  // namespace wick
