// The Split pre-tokenizer (behavior "Isolated"): a regex taken from tokenizer.json cuts normalized text into
// pre-tokens; every match is one piece and so is every stretch of text between matches. Compiled with PCRE2 in
// UTF + UCP mode (\s, \d, \w and POSIX classes are Unicode-aware, as in the Oniguruma engine HF uses) and JIT.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wick::tok {

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
