// adapter_config.json <-> LoraConfig (formats.md §4.2), and PEFT's module matching rules.
#include <cmath>
#include <memory>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "io/peft_adapter.h"

namespace wick::io {

using nlohmann::json;

// Python's re.match (anchored at the start) or re.fullmatch via PCRE2; group1 receives capture 1.
static bool regex_match(const std::string& pattern, const std::string& subject, bool full, const std::string& where,
                        std::string* group1 = nullptr) {
  int err = 0;
  PCRE2_SIZE off = 0;
  const std::string pat = full ? "(?:" + pattern + ")\\z" : pattern;
  std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> re(
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.c_str()), pat.size(), PCRE2_ANCHORED | PCRE2_UTF, &err, &off,
                    nullptr),
      &pcre2_code_free);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    throw Error("regex '" + pattern + "' does not compile: " + reinterpret_cast<const char*>(msg), where);
  }
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(re.get(), nullptr), &pcre2_match_data_free);
  const int rc = pcre2_match(re.get(), reinterpret_cast<PCRE2_SPTR>(subject.c_str()), subject.size(), 0, 0, md.get(), nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw Error("regex '" + pattern + "' failed on '" + subject + "'", where);
  if (group1 && rc >= 2) {
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    *group1 = subject.substr(ov[2], ov[3] - ov[2]);
  }
  return true;
}
static bool regex_fullmatch(const std::string& pattern, const std::string& subject, const std::string& where) {
  return regex_match(pattern, subject, true, where);
}

static bool list_match(const std::vector<std::string>& entries, const std::string& path) {
  for (const std::string& e : entries) {
    if (path == e) return true;
    if (path.size() > e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0 &&
        path[path.size() - e.size() - 1] == '.')
      return true;
  }
  return false;
}

// The layer index PEFT finds for layers_to_transform: re.match(r".*\.[^.]*\.(\d+)\.", path).
static std::optional<int64_t> layer_index(const std::string& path) {
  std::string num;
  if (!regex_match(R"(.*\.[^.]*\.(\d+)\.)", path, false, "layers_to_transform", &num)) return std::nullopt;
  if (num.size() > 15) return std::nullopt;
  return std::stoll(num);
}

double LoraConfig::scale() const { return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / r; }

void LoraConfig::check(const std::string& where) const {
  // Each field named as adapter_config.json and `wick train` spell it.
  if (r < 1) throw Error("LoRA rank r (--rank) must be >= 1, got " + std::to_string(r), where);
  if (!std::isfinite(alpha)) throw Error("lora_alpha (--alpha) must be a finite number, got " + std::to_string(alpha), where);
  if (!(dropout >= 0 && dropout < 1))
    throw Error("lora_dropout (--dropout) must be in [0, 1), got " + std::to_string(dropout), where);
  if (target_modules.empty() && !target_regex) throw Error("no target_modules (--targets)", where, "e.g. q_proj,v_proj or all");
}

bool LoraConfig::targets(const std::string& module_path) const {
  // "all-linear": PEFT expands it per model to every Linear but the output layer; wick asks only about a
  // model's Linears (model/family.h's LoRA-targetable ones), so everything but lm_head matches.
  const bool hit = all_linear      ? !list_match({"lm_head"}, module_path)
                   : target_regex ? regex_fullmatch(*target_regex, module_path, "target_modules")
                                  : list_match(target_modules, module_path);
  if (!hit) return false;
  if (exclude_regex ? regex_fullmatch(*exclude_regex, module_path, "exclude_modules")
                    : list_match(exclude_modules, module_path))
    return false;
  if (!layers_to_transform.empty()) {
    const auto li = layer_index(module_path);
    if (!li) return false;
    return std::find(layers_to_transform.begin(), layers_to_transform.end(), *li) != layers_to_transform.end();
  }
  return true;
}

// A PEFT "list or regex string" field.
static void modules_field(const json& j, const char* key, std::vector<std::string>& list,
                          std::optional<std::string>& regex, bool* all_linear, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  list.clear();
  if (it->is_string()) {
    const std::string s = it->get<std::string>();
    if (s == "all-linear" && all_linear) {
      *all_linear = true;
    } else {
      try {
        regex_fullmatch(s, "", where);  // compile now, so a bad regex is reported at load
      } catch (const Error& e) {
        throw Error(std::string("field '") + key + "': " + e.what_msg(), where);
      }
      regex = s;
    }
    return;
  }
  if (!it->is_array()) throw Error(std::string("field '") + key + "' must be a list of module names or a regex string", where);
  for (const json& v : *it) {
    if (!v.is_string()) throw Error(std::string("field '") + key + "' holds a non-string " + json_brief(v), where);
    list.push_back(v.get<std::string>());
  }
}

static bool empty_or_null(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() || ((it->is_object() || it->is_array()) && it->empty());
}

LoraConfig LoraConfig::from_json_string(const std::string& text, const std::string& where) {
  const json j = parse_json_strict(text, where);
  if (!j.is_object()) throw Error("adapter config must be a JSON object", where);
  LoraConfig c;
  const auto pt = get_string(j, "peft_type", where);
  if (!pt) throw Error("missing field 'peft_type'", where, "PEFT adapter configs always name their peft_type");
  if (*pt != "LORA") throw Error("peft_type '" + *pt + "' is not supported", where, "wick reads LoRA adapters (peft_type \"LORA\")");

  auto refuse = [&](const std::string& field, const std::string& why) {
    throw Error("field '" + field + "': " + why, where, "this adapter uses a PEFT feature wick does not support");
  };
  if (get_bool(j, "use_dora", where).value_or(false)) refuse("use_dora", "DoRA adapters are not supported yet");
  if (const auto b = get_string(j, "bias", where); b && *b != "none")
    refuse("bias", "bias \"" + *b + "\" is not supported; only \"none\"");
  if (!empty_or_null(j, "modules_to_save")) refuse("modules_to_save", "full copies of modules are not supported yet");
  if (!empty_or_null(j, "rank_pattern")) refuse("rank_pattern", "per-module ranks are not supported yet");
  if (!empty_or_null(j, "alpha_pattern")) refuse("alpha_pattern", "per-module alphas are not supported yet");
  if (get_bool(j, "fan_in_fan_out", where).value_or(false)) refuse("fan_in_fan_out", "true is for Conv1D (GPT-2) weights, which wick's families do not have");
  if (get_bool(j, "lora_bias", where).value_or(false)) refuse("lora_bias", "LoRA biases are not supported yet");
  if (!empty_or_null(j, "target_parameters")) refuse("target_parameters", "LoRA on parameters is not supported");
  if (!empty_or_null(j, "trainable_token_indices")) refuse("trainable_token_indices", "trainable tokens are not supported");
  if (!empty_or_null(j, "layer_replication")) refuse("layer_replication", "layer replication is not supported");
  if (!empty_or_null(j, "alora_invocation_tokens")) refuse("alora_invocation_tokens", "aLoRA is not supported");
  if (auto lp = j.find("layers_pattern"); lp != j.end() && !lp->is_null() && *lp != "layers" && *lp != json::array({"layers"}))
    refuse("layers_pattern", "only \"layers\" (the decoder's layer list) is supported");

  if (const auto r = get_int(j, "r", where)) {
    if (*r <= 0) throw Error("field 'r' must be positive, got " + std::to_string(*r), where);
    c.r = *r;
  }
  if (const auto a = get_number(j, "lora_alpha", where)) {
    if (!std::isfinite(*a)) throw Error("field 'lora_alpha' must be finite", where);
    c.alpha = *a;
  }
  if (const auto d = get_number(j, "lora_dropout", where)) {
    if (!(*d >= 0 && *d < 1)) throw Error("field 'lora_dropout' must be in [0, 1), got " + json_brief(j["lora_dropout"]), where);
    c.dropout = *d;
  }
  c.use_rslora = get_bool(j, "use_rslora", where).value_or(false);
  modules_field(j, "target_modules", c.target_modules, c.target_regex, &c.all_linear, where);
  if (c.target_regex) c.target_modules.clear();
  modules_field(j, "exclude_modules", c.exclude_modules, c.exclude_regex, nullptr, where);
  if (auto lt = j.find("layers_to_transform"); lt != j.end() && !lt->is_null()) {
    const json arr = lt->is_array() ? *lt : json::array({*lt});
    for (const json& v : arr) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0)
        throw Error("field 'layers_to_transform' must hold layer indices, got " + json_brief(*lt), where);
      c.layers_to_transform.push_back(v.get<int64_t>());
    }
  }
  c.base_model_name_or_path = get_string(j, "base_model_name_or_path", where).value_or("");
  c.task_type = get_string(j, "task_type", where).value_or("");
  if (auto il = j.find("init_lora_weights"); il != j.end() && !il->is_null()) {
    if (il->is_boolean()) c.init_lora_weights = il->get<bool>() ? "true" : "false";
    else if (il->is_string()) c.init_lora_weights = il->get<std::string>();
    else throw Error("field 'init_lora_weights' must be true, false or a method name, got " + json_brief(*il), where);
  }
  return c;
}

static json number_json(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 9e15) return static_cast<int64_t>(v);
  return v;
}

std::string LoraConfig::to_json() const {
  json j = json::object();  // sorted keys, as PEFT's json.dumps(sort_keys=True)
  j["alpha_pattern"] = json::object();
  j["base_model_name_or_path"] = base_model_name_or_path.empty() ? json(nullptr) : json(base_model_name_or_path);
  j["bias"] = "none";
  if (exclude_regex) j["exclude_modules"] = *exclude_regex;
  else j["exclude_modules"] = exclude_modules.empty() ? json(nullptr) : json(exclude_modules);
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  if (init_lora_weights == "true" || init_lora_weights == "false") j["init_lora_weights"] = init_lora_weights == "true";
  else j["init_lora_weights"] = init_lora_weights;
  j["layers_pattern"] = nullptr;
  j["layers_to_transform"] = layers_to_transform.empty() ? json(nullptr) : json(layers_to_transform);
  j["loftq_config"] = json::object();
  j["lora_alpha"] = number_json(alpha);
  j["lora_bias"] = false;
  j["lora_dropout"] = dropout;
  j["megatron_config"] = nullptr;
  j["megatron_core"] = "megatron.core";
  j["modules_to_save"] = nullptr;
  j["peft_type"] = "LORA";
  j["r"] = r;
  j["rank_pattern"] = json::object();
  j["revision"] = nullptr;
  if (all_linear) j["target_modules"] = "all-linear";
  else if (target_regex) j["target_modules"] = *target_regex;
  else j["target_modules"] = target_modules;
  j["task_type"] = task_type.empty() ? json(nullptr) : json(task_type);
  j["use_dora"] = false;
  j["use_rslora"] = use_rslora;
  return j.dump(2, ' ', /*ensure_ascii=*/true);
}

}  // namespace wick::io
