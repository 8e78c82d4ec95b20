#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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

void SplitRegex::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  thread_local MatchData tl_md;
  pcre2_match_data* md = tl_md.md;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, prev = 0;
  while (pos < text.size()) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr)
                              : pcre2_match(impl_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("pre-tokenizer regex match failed: " + pcre2_message(rc), "tokenizer");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t s = ov[0], e = ov[1];
    if (e == s) {  // an empty match yields no piece; step over one code point
      pos = s + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) pos++;
      continue;
    }
    if (s > prev) out.push_back(text.substr(prev, s - prev));  // the gap is a piece of its own
    out.push_back(text.substr(s, e - s));
    prev = pos = e;
  }
  if (prev < text.size()) out.push_back(text.substr(prev));
}

}  // namespace wick::tok
