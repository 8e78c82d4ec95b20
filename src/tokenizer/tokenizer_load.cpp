// Reads tokenizer.json and checks that every field that changes the result is one wick implements.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/input_file.h"
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
         "wick reads the BPE tokenizers of Qwen, Llama, Mistral and Gemma models");
  }
};

// Token ids index dense per-id tables (max id + 1 entries each): an id far beyond the number of tokens made a
// few-kB tokenizer.json allocate tens of GB (fuzz_tokenizer_json: id 1,222,222,250 among 388 tokens). Holes are
// allowed, up to the token count again or 65,536, whichever is more; real tokenizers have none.
int64_t id_limit(const json& j) {
  int64_t n = 0;
  if (j.contains("model") && j.at("model").is_object() && j.at("model").contains("vocab"))
    n += static_cast<int64_t>(j.at("model").at("vocab").size());
  if (j.contains("added_tokens") && j.at("added_tokens").is_array()) n += static_cast<int64_t>(j.at("added_tokens").size());
  return n + std::max<int64_t>(n, 65536);
}

void check_id(const Reader& r, int64_t id, int64_t limit, const std::string& token, const std::string& field) {
  if (id >= limit)
    r.fail(field, "id " + std::to_string(id) + " of \"" + token + "\" is far beyond the number of tokens (ids must be below " +
                      std::to_string(limit) + " here)",
           "token ids are 0 to vocabulary size - 1, with few gaps");
}

std::unique_ptr<tok::Bpe> read_model(const Reader& r, const json& m, bool byte_level, int64_t limit) {
  const std::string field = "model";
  if (m.contains("type") && r.str(m, "type", field) != "BPE")
    r.unsupported("model.type", "model \"" + r.str(m, "type", field) + "\"", "BPE");
  tok::BpeOptions opt;
  opt.byte_level = byte_level;
  if (m.contains("byte_fallback") && m.at("byte_fallback").is_boolean()) opt.byte_fallback = m.at("byte_fallback").get<bool>();
  if (m.contains("fuse_unk") && m.at("fuse_unk").is_boolean()) opt.fuse_unk = m.at("fuse_unk").get<bool>();
  if (m.contains("unk_token") && m.at("unk_token").is_string()) opt.unk_token = m.at("unk_token").get<std::string>();
  if (m.contains("dropout") && !m.at("dropout").is_null() && !(m.at("dropout").is_number() && m.at("dropout").get<double>() == 0.0))
    r.unsupported("model.dropout", "BPE dropout", "null (deterministic encoding)");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && !m.at(k).is_null() && !(m.at(k).is_string() && m.at(k).get<std::string>().empty()))
      r.unsupported(std::string("model.") + k, "non-empty affix", "\"\" or null");
  if (m.contains("ignore_merges") && m.at("ignore_merges").is_boolean()) opt.ignore_merges = m.at("ignore_merges").get<bool>();

  const json& vj = r.member(m, "vocab", field);
  if (!vj.is_object()) r.fail("model.vocab", "expected an object {token: id}");
  tok::TokenMap vocab;
  vocab.reserve(vj.size());
  for (auto it = vj.begin(); it != vj.end(); ++it) {
    if (!it.value().is_number_integer()) r.fail("model.vocab", "id of \"" + it.key() + "\" is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > INT32_MAX) r.fail("model.vocab", "id " + std::to_string(id) + " of \"" + it.key() + "\" is out of range");
    check_id(r, id, limit, it.key(), "model.vocab");
    vocab.emplace(it.key(), static_cast<int32_t>(id));
  }

  const json& mj = r.member(m, "merges", field);
  if (!mj.is_array()) r.fail("model.merges", "expected an array");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(mj.size());
  for (size_t i = 0; i < mj.size(); i++) {
    const json& e = mj[i];
    // The field name is built only for an error (a tokenizer has up to ~500k merges).
    auto ef = [i] { return "model.merges[" + std::to_string(i) + "]"; };
    if (e.is_string()) {  // "a b" (older serializer)
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        r.fail(ef(), "merge \"" + s + "\" is not two tokens separated by one space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      r.fail(ef(), "expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  return std::make_unique<tok::Bpe>(std::move(vocab), merges, opt, r.path);
}

std::vector<tok::AddedToken> read_added(const Reader& r, const json& a, int64_t limit) {
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
    check_id(r, idj.get<int64_t>(), limit, content, f + ".id");
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
  const std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), path);
  }
  const Reader r{path};
  if (!j.is_object()) r.fail("(top level)", "expected a JSON object");

  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->path = path;
  impl->normalizer = tok::Normalizer(j.contains("normalizer") ? j.at("normalizer") : json(), path);
  impl->pre = std::make_unique<tok::PreTokenizer>(r.member(j, "pre_tokenizer", "(top level)"), path);
  const int64_t limit = id_limit(j);
  impl->bpe = read_model(r, r.member(j, "model", "(top level)"), impl->pre->byte_level(), limit);
  impl->decoder = std::make_unique<tok::Decoder>(r.member(j, "decoder", "(top level)"), path);
  // The post_processor only adds BOS/EOS or offsets when add_special_tokens=true, which wick never asks for.
  impl->added = tok::AddedTokens(read_added(r, j.contains("added_tokens") ? j.at("added_tokens") : json(), limit));

  // Dense per-id tables.
  int64_t size = static_cast<int64_t>(impl->bpe->max_id()) + 1;
  for (const auto& t : impl->added.tokens()) size = std::max<int64_t>(size, static_cast<int64_t>(t.id) + 1);
  impl->bytes.assign(static_cast<size_t>(size), std::string());
  impl->flags.assign(static_cast<size_t>(size), 0);
  impl->text.assign(static_cast<size_t>(size), std::string());
  // What each token decodes to alone (HF's decoders map a token's text; added tokens go through them too).
  auto set = [&](int32_t id, const std::string& text, uint8_t flags) {
    impl->bytes[id] = impl->decoder->piece(text);
    impl->text[id] = text;
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
