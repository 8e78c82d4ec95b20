#include "tokenizer/decoder.h"

#include "core/error.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/utf8.h"

namespace wick::tok {

namespace {

[[noreturn]] void unsupported(const std::string& where, const std::string& field, const std::string& got) {
  throw Error("unsupported " + got + "; wick supports ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequence",
              where + ": " + field, "wick reads the tokenizers of Qwen, Llama, Mistral and Gemma models");
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, pos)) {
    out.append(s, pos, at - pos).append(to);
    pos = at + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// "<0xNN>" -> NN, else -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; k++) {
    const char c = t[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

}  // namespace

Decoder::Decoder(const nlohmann::json& d, const std::string& where) {
  if (d.is_null()) unsupported(where, "decoder", "null decoder");
  read(d, where, "decoder");
  for (const Step& s : steps_) {
    if (s.kind == Step::Strip && s.a == " " && s.start > 0) strips_leading_space_ = true;
  }
}

void Decoder::read(const nlohmann::json& d, const std::string& where, const std::string& field) {
  if (!d.is_object() || !d.contains("type") || !d.at("type").is_string())
    throw Error("expected an object with a \"type\"", where + ": " + field);
  const std::string type = d.at("type").get<std::string>();
  auto str = [&](const char* k, const std::string& def) {
    return d.contains(k) && d.at(k).is_string() ? d.at(k).get<std::string>() : def;
  };
  if (type == "ByteLevel") {
    steps_.push_back({Step::ByteLevel, "", ""});
  } else if (type == "Replace") {
    const auto& p = d.contains("pattern") ? d.at("pattern") : nlohmann::json();
    if (!p.is_object() || !p.contains("String") || !p.at("String").is_string())
      unsupported(where, field + ".pattern", "Replace pattern (only {\"String\": ...})");
    steps_.push_back({Step::Replace, p.at("String").get<std::string>(), str("content", "")});
  } else if (type == "ByteFallback") {
    steps_.push_back({Step::ByteFallback, "", ""});
  } else if (type == "Fuse") {
    steps_.push_back({Step::Fuse, "", ""});
  } else if (type == "Strip") {
    Step s{Step::Strip, str("content", " "), ""};
    if (utf8_chars(s.a).size() != 1) unsupported(where, field + ".content", "Strip content (not one character)");
    s.start = d.value("start", size_t(0));
    s.stop = d.value("stop", size_t(0));
    steps_.push_back(s);
  } else if (type == "Metaspace") {
    Step s{Step::Metaspace, str("replacement", "\xE2\x96\x81"), ""};
    std::string scheme = str("prepend_scheme", "");
    if (scheme.empty()) scheme = d.value("add_prefix_space", true) ? "always" : "never";
    s.prepend = scheme != "never";
    steps_.push_back(s);
  } else if (type == "Sequence") {
    if (!d.contains("decoders") || !d.at("decoders").is_array()) throw Error("expected an array \"decoders\"", where + ": " + field);
    const auto& list = d.at("decoders");
    for (size_t i = 0; i < list.size(); i++) read(list[i], where, field + ".decoders[" + std::to_string(i) + "]");
  } else {
    unsupported(where, field + ".type", "decoder \"" + type + "\"");
  }
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Step::ByteLevel: {
        std::string bytes;
        for (const std::string& t : tokens)
          if (!ByteLevel::get().decode(t, bytes)) bytes += t;
        std::string out;
        utf8_decode_lossy(bytes, out, /*final=*/true);
        tokens.assign(1, out);
        break;
      }
      case Step::Replace:
        for (std::string& t : tokens) t = replace_all(t, st.a, st.b);
        break;
      case Step::ByteFallback: {
        std::vector<std::string> out;
        std::string run;  // pending <0xNN> bytes
        auto flush = [&] {
          if (run.empty()) return;
          if (utf8_invalid_at(run) == std::string::npos) out.push_back(run);
          else
            for (size_t k = 0; k < run.size(); k++) out.push_back("\xEF\xBF\xBD");
          run.clear();
        };
        for (std::string& t : tokens) {
          const int b = byte_token(t);
          if (b >= 0) {
            run.push_back(static_cast<char>(b));
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
      case Step::Fuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, all);
        break;
      }
      case Step::Strip:
        for (std::string& t : tokens) {
          const std::vector<std::string> c = utf8_chars(t);
          size_t a = 0, b = c.size();
          while (a < st.start && a < b && c[a] == st.a) a++;
          size_t cut = 0;
          while (cut < st.stop && b > a && c[b - 1] == st.a) b--, cut++;
          std::string s;
          for (size_t k = a; k < b; k++) s += c[k];
          t = std::move(s);
        }
        break;
      case Step::Metaspace:  // as HF: in the first token every replacement is dropped, elsewhere it is a space
        for (size_t i = 0; i < tokens.size(); i++) tokens[i] = replace_all(tokens[i], st.a, i == 0 && st.prepend ? "" : " ");
        break;
    }
  }
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

std::string Decoder::piece(const std::string& token, bool first) const {
  std::string t = token;
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Step::ByteLevel: {
        std::string bytes;
        if (!ByteLevel::get().decode(t, bytes)) bytes = t;
        t = std::move(bytes);
        break;
      }
      case Step::Replace: t = replace_all(t, st.a, st.b); break;
      case Step::ByteFallback: {
        const int b = byte_token(t);
        if (b >= 0) t = std::string(1, static_cast<char>(b));
        break;
      }
      case Step::Metaspace: t = replace_all(t, st.a, first && st.prepend ? "" : " "); break;
      default: break;  // Fuse, Strip: whole-text steps (strips_leading_space covers Strip)
    }
  }
  return t;
}

}  // namespace wick::tok
