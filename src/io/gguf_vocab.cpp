// Tokenizer metadata for GGUF, following llama.cpp's convert_hf_to_gguf.py (get_vocab_base, SpecialVocab).
#include "io/gguf_vocab.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "io/json_util.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace wick::io {

using nlohmann::json;

namespace {

const char* const kSpecialKinds[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};

// The converter's heuristic for added tokens not flagged special: "<|...|>" reads as a control token.
bool looks_special(const std::string& t) {
  auto ends = [&](const std::string& s) { return t.size() >= s.size() && t.compare(t.size() - s.size(), s.size(), s) == 0; };
  auto starts = [&](const std::string& s) { return t.compare(0, s.size(), s) == 0; };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || (starts("<|") && ends("|>")) ||
         (starts("<\xef\xbd\x9c") && ends("\xef\xbd\x9c>")) || (starts("<unused") && ends(">"));
}

// A space inside a merge part is written as U+0120 (as gguf-py does for the pair form of merges).
std::string merge_part(const std::string& s) {
  std::string out;
  for (char c : s) out += c == ' ' ? std::string("\xc4\xa0") : std::string(1, c);
  return out;
}

}  // namespace

GgufVocab read_gguf_vocab(const std::string& model_dir, int64_t vocab_size) {
  const fs::path dir(model_dir);
  const std::string tj_path = (dir / "tokenizer.json").string();
  if (!fs::exists(tj_path))
    throw Error("no tokenizer.json in the model folder: a GGUF model needs its tokenizer", model_dir);
  const json tj = read_json_file(tj_path);
  if (!tj.contains("model") || !tj["model"].is_object() || tj["model"].value("type", "") != "BPE" ||
      !tj["model"].contains("vocab") || !tj["model"]["vocab"].is_object())
    throw Error("not a byte-level BPE tokenizer (model.type must be \"BPE\" with a vocab)", tj_path + ": model");

  GgufVocab v;
  std::vector<std::string> by_id(static_cast<size_t>(vocab_size));
  std::vector<char> have(static_cast<size_t>(vocab_size), 0);
  auto place = [&](const std::string& tok, int64_t id, const std::string& field) {
    if (id < 0 || id >= vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the model's " + std::to_string(vocab_size) +
                      " embedding rows", tj_path + ": " + field, "the tokenizer does not match config.json's vocab_size");
    by_id[id] = tok;
    have[id] = 1;
  };
  for (const auto& [tok, id] : tj["model"]["vocab"].items()) place(tok, id.get<int64_t>(), "model.vocab");
  // Added tokens: control when flagged special (or looking special), else user-defined.
  std::map<int64_t, GgufTokenType> added;
  std::vector<std::pair<std::string, int64_t>> added_list;
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
    for (const json& a : tj["added_tokens"]) {
      const std::string content = a.value("content", "");
      const int64_t id = a.value("id", int64_t{-1});
      place(content, id, "added_tokens");
      added[id] = (a.value("special", false) || looks_special(content)) ? GgufTokenType::Control : GgufTokenType::UserDefined;
      added_list.emplace_back(content, id);
    }
  }
  v.tokens.resize(vocab_size);
  v.token_types.resize(vocab_size);
  for (int64_t i = 0; i < vocab_size; i++) {
    if (!have[i]) {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.token_types[i] = static_cast<int32_t>(GgufTokenType::Unused);
    } else {
      v.tokens[i] = by_id[i];
      auto it = added.find(i);
      v.token_types[i] = static_cast<int32_t>(it == added.end() ? GgufTokenType::Normal : it->second);
    }
  }
  if (tj["model"].contains("merges") && tj["model"]["merges"].is_array()) {
    for (const json& m : tj["model"]["merges"]) {
      if (m.is_string()) v.merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
        v.merges.push_back(merge_part(m[0].get<std::string>()) + " " + merge_part(m[1].get<std::string>()));
      else throw Error("a merge must be a string or a pair of strings", tj_path + ": model.merges");
    }
  }

  // Special tokens: tokenizer_config.json's <kind>_token looked up among the added tokens, then config.json.
  auto set_special = [&](const std::string& kind, int64_t id) {
    for (const auto& [k, x] : v.special_ids)
      if (k == kind) return;
    v.special_ids.emplace_back(kind, id);
  };
  const fs::path tc_path = dir / "tokenizer_config.json";
  if (fs::exists(tc_path)) {
    const json tc = read_json_file(tc_path.string());
    if (tc.contains("chat_template") && tc["chat_template"].is_string()) v.chat_template = tc["chat_template"];
    for (const char* kind : kSpecialKinds) {
      const std::string add_key = std::string("add_") + kind + "_token";
      if (tc.contains(add_key) && tc[add_key].is_boolean()) v.add_special.emplace_back(kind, tc[add_key].get<bool>());
      const std::string tok_key = std::string(kind) + "_token";
      if (!tc.contains(tok_key)) continue;
      const json& e = tc[tok_key];
      std::string content;
      if (e.is_string()) content = e.get<std::string>();
      else if (e.is_object() && e.contains("content") && e["content"].is_string()) content = e["content"];
      else continue;
      for (const auto& [c, id] : added_list)
        if (c == content) {
          set_special(kind, id);
          break;
        }
    }
  }
  if (v.chat_template.empty() && fs::exists(dir / "chat_template.jinja"))
    v.chat_template = read_file((dir / "chat_template.jinja").string());
  const fs::path cfg_path = dir / "config.json";
  if (fs::exists(cfg_path)) {
    const json cfg = read_json_file(cfg_path.string());
    for (const char* kind : kSpecialKinds) {
      const std::string key = std::string(kind) + "_token_id";
      if (cfg.contains(key) && cfg[key].is_number_integer()) {
        const int64_t id = cfg[key].get<int64_t>();
        if (id >= 0 && id < vocab_size) set_special(kind, id);
      }
    }
  }
  return v;
}

void add_gguf_vocab(GgufWriter& w, const GgufVocab& v) {
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "qwen2");
  w.add_string_array("tokenizer.ggml.tokens", v.tokens);
  w.add_i32_array("tokenizer.ggml.token_type", v.token_types);
  if (!v.merges.empty()) w.add_string_array("tokenizer.ggml.merges", v.merges);
  for (const auto& [kind, id] : v.special_ids) {
    // gguf-py's key names (llama.cpp spells "seperator").
    const std::string key = kind == "pad" ? "padding" : kind == "unk" ? "unknown" : kind == "sep" ? "seperator" : kind;
    w.add_u32("tokenizer.ggml." + key + "_token_id", static_cast<uint32_t>(id));
  }
  // gguf-py has add_bos_token, add_eos_token and add_sep_token keys; the converter drops the others.
  for (const auto& [kind, on] : v.add_special)
    if (kind == "bos" || kind == "eos" || kind == "sep") w.add_bool("tokenizer.ggml.add_" + kind + "_token", on);
  if (!v.chat_template.empty()) w.add_string("tokenizer.chat_template", v.chat_template);
}

}  // namespace wick::io
