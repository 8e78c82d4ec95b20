// The Split pre-tokenizer (behavior "Isolated"): a regex taken from tokenizer.json cuts normalized text into
// pre-tokens; every match is one piece and so is every stretch of text between matches. HF compiles it with
// Oniguruma; wick with PCRE2 in UTF + UCP mode (Unicode-aware \p{..}, \d) with JIT. The engines differ on \s:
// Oniguruma's is the Unicode White_Space property, PCRE2's also takes U+180E, so \s and \S are rewritten to
// \p{White_Space} / \P{White_Space}. Escapes whose meanings differ more (\w, \b, \h, ...) are refused.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wick::tok {

// The pattern PCRE2 compiles for an Oniguruma pattern (see above); where names the field for errors.
std::string oniguruma_to_pcre2(const std::string& pattern, const std::string& where);

class SplitRegex {
 public:
  // where names the file and field for error messages.
  SplitRegex(const std::string& pattern, const std::string& where);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // Appends the pieces of text (valid UTF-8) to out, in order; their concatenation is text. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wick::tok
