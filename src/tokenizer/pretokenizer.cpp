#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "core/error.h"

namespace wick::tok {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// One per thread, shared by every pattern: only the whole match (pair 0) is read, so one ovector pair is
// enough (a pattern with groups then returns rc 0, "ovector too small", which still sets pair 0).
struct MatchData {
  MatchData() : md(pcre2_match_data_create(1, nullptr)) { WICK_CHECK(md != nullptr, "out of memory for PCRE2 match data"); }
  ~MatchData() { pcre2_match_data_free(md); }
  pcre2_match_data* md;
};

}  // namespace

std::string oniguruma_to_pcre2(const std::string& pattern, const std::string& where) {
  std::string out;
  out.reserve(pattern.size() + 32);
  for (size_t i = 0; i < pattern.size(); i++) {
    const char c = pattern[i];
    if (c != '\\' || i + 1 == pattern.size()) {
      out.push_back(c);
      continue;
    }
    const char e = pattern[++i];
    switch (e) {
      case 's': out += "\\p{White_Space}"; break;
      case 'S': out += "\\P{White_Space}"; break;
      case 'w': case 'W': case 'b': case 'B': case 'h': case 'H': case 'Q':
        throw Error(std::string("the pre-tokenizer regex uses \\") + e +
                        ", whose meaning differs between Oniguruma (Hugging Face) and PCRE2 (wick)",
                    where, "wick supports Split regexes built from \\s, \\d, \\p{..}, classes and groups");
      default: out.push_back('\\'); out.push_back(e);
    }
  }
  return out;
}

struct SplitRegex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() { pcre2_code_free(code); }
};

SplitRegex::SplitRegex(const std::string& pattern, const std::string& where)
    : pattern_(pattern), impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE err_at = 0;
  const std::string pcre = oniguruma_to_pcre2(pattern, where);
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre.data()), pcre.size(), PCRE2_UTF | PCRE2_UCP,
                              &err, &err_at, nullptr);
  if (!impl_->code)
    throw Error("cannot compile the pre-tokenizer regex with PCRE2 at pattern offset " + std::to_string(err_at) +
                    ": " + pcre2_message(err),
                where, "wick supports Split regexes that PCRE2 (UTF + UCP) accepts");
  // JIT is an optimisation: when the platform lacks it, the interpreter gives the same matches.
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

SplitRegex::~SplitRegex() = default;

// Calls f(begin, end) for each non-empty match, in order (an empty match steps over one code point).
template <typename F>
void SplitRegex::each_match(std::string_view text, F&& f) const {
  if (text.empty()) return;
  thread_local MatchData tl_md;
  pcre2_match_data* md = tl_md.md;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr)
                              : pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("pre-tokenizer regex match failed: " + pcre2_message(rc), "tokenizer");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t s = ov[0], e = ov[1];
    if (e == s) {
      pos = s + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) pos++;
      continue;
    }
    f(s, e);
    pos = e;
  }
}

void SplitRegex::matches(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  each_match(text, [&](size_t s, size_t e) { out.emplace_back(s, e); });
}

void SplitRegex::split(std::string_view text, std::vector<std::string_view>& out) const {
  size_t prev = 0;
  each_match(text, [&](size_t s, size_t e) {
    if (s > prev) out.push_back(text.substr(prev, s - prev));  // the gap is a piece of its own
    out.push_back(text.substr(s, e - s));
    prev = e;
  });
  if (prev < text.size()) out.push_back(text.substr(prev));
}

namespace {

// GPT-2's pre-tokenizer regex: what ByteLevel with use_regex true splits with.
constexpr char kGpt2Regex[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

[[noreturn]] void pre_unsupported(const std::string& where, const std::string& field, const std::string& got) {
  throw Error("unsupported " + got + "; wick supports Split (Regex or String), ByteLevel, Metaspace and Sequence",
              where + ": " + field, "wick reads the tokenizers of Qwen, Llama, Mistral and Gemma models");
}

bool flag(const nlohmann::json& j, const char* key, bool absent) {
  return j.contains(key) && j.at(key).is_boolean() ? j.at(key).get<bool>() : absent;
}

}  // namespace

PreTokenizer::PreTokenizer(const nlohmann::json& p, const std::string& where) { read(p, where, "pre_tokenizer", true); }
PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::read(const nlohmann::json& p, const std::string& where, const std::string& field, bool first) {
  if (p.is_null()) return;
  if (!p.is_object() || !p.contains("type") || !p.at("type").is_string())
    throw Error("expected an object with a \"type\"", where + ": " + field);
  const std::string type = p.at("type").get<std::string>();
  if (type == "Sequence") {
    if (!p.contains("pretokenizers") || !p.at("pretokenizers").is_array())
      throw Error("expected an array \"pretokenizers\"", where + ": " + field);
    const auto& list = p.at("pretokenizers");
    for (size_t i = 0; i < list.size(); i++)
      read(list[i], where, field + ".pretokenizers[" + std::to_string(i) + "]", first && i == 0);
  } else if (type == "Split") {
    Step st;
    const auto& pat = p.contains("pattern") ? p.at("pattern") : nlohmann::json();
    if (pat.is_object() && pat.contains("Regex") && pat.at("Regex").is_string()) {
      st.regex = std::make_unique<SplitRegex>(pat.at("Regex").get<std::string>(), where + ": " + field + ".pattern.Regex");
    } else if (pat.is_object() && pat.contains("String") && pat.at("String").is_string() && !pat.at("String").get<std::string>().empty()) {
      st.literal = pat.at("String").get<std::string>();
    } else {
      pre_unsupported(where, field + ".pattern", "pattern (not {\"Regex\": ...} or {\"String\": ...})");
    }
    const std::string b = p.contains("behavior") && p.at("behavior").is_string() ? p.at("behavior").get<std::string>() : "";
    if (b == "Isolated") st.behavior = Behavior::Isolated;
    else if (b == "Removed") st.behavior = Behavior::Removed;
    else if (b == "MergedWithPrevious") st.behavior = Behavior::MergedWithPrevious;
    else if (b == "MergedWithNext") st.behavior = Behavior::MergedWithNext;
    else if (b == "Contiguous") st.behavior = Behavior::Contiguous;
    else pre_unsupported(where, field + ".behavior", "behavior \"" + b + "\"");
    if (flag(p, "invert", false)) pre_unsupported(where, field + ".invert", "invert true");
    steps_.push_back(std::move(st));
  } else if (type == "ByteLevel") {
    if (flag(p, "add_prefix_space", false))
      throw Error("is true; wick supports only false", where + ": " + field + ".add_prefix_space");
    byte_level_ = true;
    if (flag(p, "use_regex", true)) {
      Step st;
      st.regex = std::make_unique<SplitRegex>(kGpt2Regex, where + ": " + field);
      steps_.push_back(std::move(st));
    }
  } else if (type == "Metaspace") {
    if (!first) pre_unsupported(where, field, "Metaspace after another pre-tokenizer");
    metaspace_ = true;
    replacement_ = p.contains("replacement") && p.at("replacement").is_string() ? p.at("replacement").get<std::string>() : "\xE2\x96\x81";
    if (replacement_.empty()) throw Error("empty replacement", where + ": " + field + ".replacement");
    std::string scheme = p.contains("prepend_scheme") && p.at("prepend_scheme").is_string() ? p.at("prepend_scheme").get<std::string>() : "";
    if (scheme.empty()) scheme = flag(p, "add_prefix_space", true) ? "always" : "never";  // older files
    if (scheme == "always") prepend_ = 0;
    else if (scheme == "first") prepend_ = 1;
    else if (scheme == "never") prepend_ = 2;
    else pre_unsupported(where, field + ".prepend_scheme", "prepend_scheme \"" + scheme + "\"");
    metaspace_split_ = flag(p, "split", true);
  } else {
    pre_unsupported(where, field + ".type", "pre-tokenizer \"" + type + "\"");
  }
}

// One Split step on one piece, with HF's rules for merging matches into their neighbours.
void PreTokenizer::split_step(const Step& st, std::string_view piece, std::vector<std::string_view>& out) const {
  std::vector<std::pair<size_t, size_t>> m;
  if (st.regex) {
    st.regex->matches(piece, m);
  } else {
    for (size_t at = piece.find(st.literal); at != std::string_view::npos; at = piece.find(st.literal, at + st.literal.size()))
      m.emplace_back(at, at + st.literal.size());
  }
  if (m.empty()) {
    out.push_back(piece);
    return;
  }
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;
  size_t prev = 0;
  for (const auto& [b, e] : m) {
    if (b > prev) segs.push_back({prev, b, false});
    segs.push_back({b, e, true});
    prev = e;
  }
  if (prev < piece.size()) segs.push_back({prev, piece.size(), false});
  std::vector<Seg> res;
  switch (st.behavior) {
    case Behavior::Isolated:
      for (const Seg& g : segs) res.push_back(g);
      break;
    case Behavior::Removed:
      for (const Seg& g : segs)
        if (!g.match) res.push_back(g);
      break;
    case Behavior::Contiguous:
      for (const Seg& g : segs) {
        if (!res.empty() && res.back().match == g.match && g.match) res.back().e = g.e;
        else res.push_back(g);
      }
      break;
    case Behavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const Seg& g : segs) {
        if (g.match && !previous_match && !res.empty()) res.back().e = g.e;
        else res.push_back({g.b, g.e, false});
        previous_match = g.match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool previous_match = false;
      for (size_t k = segs.size(); k-- > 0;) {
        const Seg& g = segs[k];
        if (g.match && !previous_match && !res.empty()) res.back().b = g.b;
        else res.push_back({g.b, g.e, false});
        previous_match = g.match;
      }
      std::reverse(res.begin(), res.end());
      break;
    }
  }
  for (const Seg& g : res)
    if (g.e > g.b) out.push_back(piece.substr(g.b, g.e - g.b));
}

void PreTokenizer::run(std::string_view text, bool at_start, std::string& buf, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  if (!metaspace_ && steps_.size() == 1 && steps_[0].regex && steps_[0].behavior == Behavior::Isolated) {
    steps_[0].regex->split(text, out);  // the common case (Qwen, Llama 3): no copies
    return;
  }
  std::vector<std::string_view> cur;
  if (metaspace_) {
    buf.clear();
    const bool starts = text.substr(0, replacement_.size()) == replacement_ ||
                        (!text.empty() && text[0] == ' ');  // a leading space becomes the replacement
    if (!starts && (prepend_ == 0 || (prepend_ == 1 && at_start))) buf += replacement_;
    for (char c : text) {
      if (c == ' ') buf += replacement_;
      else buf.push_back(c);
    }
    if (metaspace_split_) {
      Step st;
      st.literal = replacement_;
      st.behavior = Behavior::MergedWithNext;
      split_step(st, buf, cur);
    } else {
      cur.push_back(buf);
    }
  } else {
    cur.push_back(text);
  }
  std::vector<std::string_view> next;
  for (const Step& st : steps_) {
    next.clear();
    for (std::string_view p : cur) split_step(st, p, next);
    cur.swap(next);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace wick::tok
