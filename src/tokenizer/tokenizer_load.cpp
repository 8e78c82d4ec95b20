// Reads tokenizer.json and checks that every field that changes the result is one wick implements.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/tokenizer_impl.h"

namespace wick {

namespace {

using nlohmann::json;

struct Reader {
  std::string path;

  [[noreturn]] void fail(const std::string& field, const std::string& what, const std::string& hint = "") const {
    throw Error(what, path + ": " + field, hint);
  }
  const json& member(const json& j, const char* key, const std::string& field) const {
    if (!j.is_object() || !j.contains(key)) fail(field, std::string("missing field \"") + key + "\"");
    return j.at(key);
  }
  std::string str(const json& j, const char* key, const std::string& field) const {
    const json& v = member(j, key, field);
    if (!v.is_string()) fail(field + "." + key, "expected a string, got " + std::string(v.type_name()));
    return v.get<std::string>();
  }
  // An optional boolean that must equal want for wick to reproduce HF (absent counts as absent_value).
  void flag_is(const json& j, const char* key, bool want, bool absent_value, const std::string& field) const {
    bool v = absent_value;
    if (j.contains(key) && !j.at(key).is_null()) {
      if (!j.at(key).is_boolean()) fail(field + "." + key, "expected true or false");
      v = j.at(key).get<bool>();
    }
    if (v != want)
      fail(field + "." + key, std::string("is ") + (v ? "true" : "false") + "; wick supports only " + (want ? "true" : "false"));
  }
  [[noreturn]] void unsupported(const std::string& field, const std::string& got, const std::string& supported) const {
    fail(field, "unsupported " + got + "; wick supports " + supported,
         "wick reads byte-level BPE tokenizers of the Qwen2/Qwen2.5/Qwen3 kind");
  }
};

// normalizer: null, NFC, or a Sequence of NFCs.
bool read_normalizer(const Reader& r, const json& n, const std::string& field) {
  if (n.is_null()) return false;
  const std::string type = r.str(n, "type", field);
  if (type == "NFC") return true;
  if (type == "Sequence") {
    const json& list = r.member(n, "normalizers", field);
    if (!list.is_array()) r.fail(field + ".normalizers", "expected an array");
    bool any = false;
    for (size_t i = 0; i < list.size(); i++) any |= read_normalizer(r, list[i], field + ".normalizers[" + std::to_string(i) + "]");
    return any;
  }
  r.unsupported(field + ".type", "normalizer \"" + type + "\"", "NFC or none");
}

void check_byte_level(const Reader& r, const json& j, const std::string& field) {
  r.flag_is(j, "add_prefix_space", false, false, field);
  r.flag_is(j, "use_regex", false, true, field);
}

// pre_tokenizer: Sequence [Split(Regex, Isolated), ByteLevel(no prefix space, no regex)]. Returns the regex.
std::string read_pre_tokenizer(const Reader& r, const json& p) {
  const std::string field = "pre_tokenizer";
  const std::string supported = "a Sequence of Split (Regex, \"Isolated\") then ByteLevel (use_regex false)";
  if (p.is_null()) r.unsupported(field, "null pre_tokenizer", supported);
  if (r.str(p, "type", field) != "Sequence") r.unsupported(field + ".type", "\"" + r.str(p, "type", field) + "\"", supported);
  const json& list = r.member(p, "pretokenizers", field);
  if (!list.is_array() || list.size() != 2) r.unsupported(field + ".pretokenizers", "list (not 2 entries)", supported);
  const json& split = list[0];
  const std::string sf = field + ".pretokenizers[0]";
  if (r.str(split, "type", sf) != "Split") r.unsupported(sf + ".type", "\"" + r.str(split, "type", sf) + "\"", supported);
  const json& pat = r.member(split, "pattern", sf);
  if (!pat.is_object() || !pat.contains("Regex") || !pat.at("Regex").is_string())
    r.unsupported(sf + ".pattern", "pattern (not {\"Regex\": ...})", supported);
  if (r.str(split, "behavior", sf) != "Isolated")
    r.unsupported(sf + ".behavior", "behavior \"" + r.str(split, "behavior", sf) + "\"", "\"Isolated\"");
  r.flag_is(split, "invert", false, false, sf);
  const json& bl = list[1];
  const std::string bf = field + ".pretokenizers[1]";
  if (r.str(bl, "type", bf) != "ByteLevel") r.unsupported(bf + ".type", "\"" + r.str(bl, "type", bf) + "\"", supported);
  check_byte_level(r, bl, bf);
  return pat.at("Regex").get<std::string>();
}

std::unique_ptr<tok::Bpe> read_model(const Reader& r, const json& m) {
  const std::string field = "model";
  if (m.contains("type") && r.str(m, "type", field) != "BPE")
    r.unsupported("model.type", "model \"" + r.str(m, "type", field) + "\"", "BPE");
  r.flag_is(m, "byte_fallback", false, false, field);
  if (m.contains("dropout") && !m.at("dropout").is_null() && !(m.at("dropout").is_number() && m.at("dropout").get<double>() == 0.0))
    r.unsupported("model.dropout", "BPE dropout", "null (deterministic encoding)");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && !m.at(k).is_null() && !(m.at(k).is_string() && m.at(k).get<std::string>().empty()))
      r.unsupported(std::string("model.") + k, "non-empty affix", "\"\" or null");
  bool ignore_merges = false;
  if (m.contains("ignore_merges") && m.at("ignore_merges").is_boolean()) ignore_merges = m.at("ignore_merges").get<bool>();

  const json& vj = r.member(m, "vocab", field);
  if (!vj.is_object()) r.fail("model.vocab", "expected an object {token: id}");
  tok::TokenMap vocab;
  vocab.reserve(vj.size());
  for (auto it = vj.begin(); it != vj.end(); ++it) {
    if (!it.value().is_number_integer()) r.fail("model.vocab", "id of \"" + it.key() + "\" is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > INT32_MAX) r.fail("model.vocab", "id " + std::to_string(id) + " of \"" + it.key() + "\" is out of range");
    vocab.emplace(it.key(), static_cast<int32_t>(id));
  }

  const json& mj = r.member(m, "merges", field);
  if (!mj.is_array()) r.fail("model.merges", "expected an array");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(mj.size());
  for (size_t i = 0; i < mj.size(); i++) {
    const json& e = mj[i];
    const std::string ef = "model.merges[" + std::to_string(i) + "]";
    if (e.is_string()) {  // "a b" (older serializer)
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        r.fail(ef, "merge \"" + s + "\" is not two tokens separated by one space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      r.fail(ef, "expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  return std::make_unique<tok::Bpe>(std::move(vocab), merges, ignore_merges, r.path);
}

std::vector<tok::AddedToken> read_added(const Reader& r, const json& a) {
  std::vector<tok::AddedToken> out;
  if (a.is_null()) return out;
  if (!a.is_array()) r.fail("added_tokens", "expected an array");
  for (size_t i = 0; i < a.size(); i++) {
    const std::string f = "added_tokens[" + std::to_string(i) + "]";
    const json& t = a[i];
    const json& idj = r.member(t, "id", f);
    if (!idj.is_number_integer() || idj.get<int64_t>() < 0 || idj.get<int64_t>() > INT32_MAX)
      r.fail(f + ".id", "expected a non-negative integer");
    const std::string content = r.str(t, "content", f);
    if (content.empty()) r.fail(f + ".content", "is empty");
    // These options change where a token matches; Qwen's tokens have them all false.
    for (const char* k : {"single_word", "lstrip", "rstrip", "normalized"}) r.flag_is(t, k, false, false, f);
    bool special = false;
    if (t.contains("special") && t.at("special").is_boolean()) special = t.at("special").get<bool>();
    out.push_back({static_cast<int32_t>(idj.get<int64_t>()), content, special});
  }
  return out;
}

}  // namespace

std::shared_ptr<const Tokenizer::Impl> load_tokenizer_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    throw Error("cannot open tokenizer file", path,
                std::filesystem::exists(path) ? "check its permissions" : "the file does not exist");
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), path);
  }
  const Reader r{path};
  if (!j.is_object()) r.fail("(top level)", "expected a JSON object");

  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->path = path;
  impl->nfc = read_normalizer(r, j.contains("normalizer") ? j.at("normalizer") : json(), "normalizer");
  impl->split = std::make_unique<tok::SplitRegex>(read_pre_tokenizer(r, r.member(j, "pre_tokenizer", "(top level)")),
                                                  path + ": pre_tokenizer.pretokenizers[0].pattern.Regex");
  impl->bpe = read_model(r, r.member(j, "model", "(top level)"));
  const json& dec = r.member(j, "decoder", "(top level)");
  if (dec.is_null() || r.str(dec, "type", "decoder") != "ByteLevel")
    r.unsupported("decoder", dec.is_null() ? "null decoder" : "decoder \"" + r.str(dec, "type", "decoder") + "\"", "ByteLevel");
  // The post_processor only adds BOS/EOS or offsets when add_special_tokens=true, which wick never asks for.
  impl->added = tok::AddedTokens(read_added(r, j.contains("added_tokens") ? j.at("added_tokens") : json()));

  // Dense per-id tables.
  int64_t size = static_cast<int64_t>(impl->bpe->max_id()) + 1;
  for (const auto& t : impl->added.tokens()) size = std::max<int64_t>(size, static_cast<int64_t>(t.id) + 1);
  impl->bytes.assign(static_cast<size_t>(size), std::string());
  impl->flags.assign(static_cast<size_t>(size), 0);
  const tok::ByteLevel& bl = tok::ByteLevel::get();
  // HF's ByteLevel decoder maps a token's characters back to bytes, or keeps the token's own UTF-8 when
  // some character is outside the byte alphabet; added tokens go through the same decoder.
  auto set = [&](int32_t id, const std::string& text, uint8_t flags) {
    std::string b;
    if (!bl.decode(text, b)) b = text;
    impl->bytes[id] = std::move(b);
    impl->flags[id] = flags;
  };
  for (const auto& [text, id] : impl->bpe->vocab()) set(id, text, Tokenizer::Impl::kExists);
  for (const auto& t : impl->added.tokens()) {
    const uint8_t fl = Tokenizer::Impl::kExists | Tokenizer::Impl::kAdded | (t.special ? Tokenizer::Impl::kSpecial : 0);
    set(t.id, t.content, fl);
  }
  return impl;
}

}  // namespace wick
