#include "tokenizer/normalizer.h"

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace wick::tok {

namespace {

[[noreturn]] void unsupported(const std::string& where, const std::string& field, const std::string& got) {
  throw Error("unsupported " + got + "; wick supports NFC, Prepend, Replace (literal String pattern) and Sequence",
              where + ": " + field, "wick reads the tokenizers of Qwen, Llama, Mistral and Gemma models");
}

std::string str_field(const nlohmann::json& j, const char* key, const std::string& where, const std::string& field) {
  if (!j.contains(key) || !j.at(key).is_string())
    throw Error(std::string("missing or non-string field \"") + key + "\"", where + ": " + field);
  return j.at(key).get<std::string>();
}

}  // namespace

Normalizer::Normalizer(const nlohmann::json& n, const std::string& where) { read(n, where, "normalizer"); }

void Normalizer::read(const nlohmann::json& n, const std::string& where, const std::string& field) {
  if (n.is_null()) return;
  if (!n.is_object()) throw Error("expected an object or null", where + ": " + field);
  const std::string type = str_field(n, "type", where, field);
  if (type == "NFC") {
    steps_.push_back({Step::Nfc, "", ""});
  } else if (type == "Prepend") {
    steps_.push_back({Step::Prepend, str_field(n, "prepend", where, field), ""});
  } else if (type == "Replace") {
    const auto& p = n.contains("pattern") ? n.at("pattern") : nlohmann::json();
    if (!p.is_object() || !p.contains("String") || !p.at("String").is_string())
      unsupported(where, field + ".pattern", "Replace pattern (only {\"String\": ...} is supported, not Regex)");
    const std::string from = p.at("String").get<std::string>();
    if (from.empty()) throw Error("Replace pattern is empty", where + ": " + field + ".pattern");
    steps_.push_back({Step::Replace, from, str_field(n, "content", where, field)});
  } else if (type == "Sequence") {
    if (!n.contains("normalizers") || !n.at("normalizers").is_array())
      throw Error("expected an array \"normalizers\"", where + ": " + field);
    const auto& list = n.at("normalizers");
    for (size_t i = 0; i < list.size(); i++) read(list[i], where, field + ".normalizers[" + std::to_string(i) + "]");
  } else {
    unsupported(where, field + ".type", "normalizer \"" + type + "\"");
  }
}

std::string Normalizer::apply(std::string_view text) const {
  std::string s(text);
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Step::Nfc:
        if (!is_ascii(s)) s = nfc(s);
        break;
      case Step::Prepend:
        if (!s.empty()) s = st.a + s;  // HF prepends to non-empty text only
        break;
      case Step::Replace: {
        std::string out;
        size_t pos = 0;
        for (size_t at = s.find(st.a); at != std::string::npos; at = s.find(st.a, pos)) {
          out.append(s, pos, at - pos).append(st.b);
          pos = at + st.a.size();
        }
        out.append(s, pos, std::string::npos);
        s = std::move(out);
        break;
      }
    }
  }
  return s;
}

}  // namespace wick::tok
