// The Split pre-tokenizer (behavior "Isolated"): a regex taken from tokenizer.json cuts normalized text into
// pre-tokens; every match is one piece and so is every stretch of text between matches. HF compiles it with
// Oniguruma; wick with PCRE2 in UTF + UCP mode (Unicode-aware \p{..}, \d) with JIT. The engines differ on \s:
// Oniguruma's is the Unicode White_Space property, PCRE2's also takes U+180E, so \s and \S are rewritten to
// \p{White_Space} / \P{White_Space}. Escapes whose meanings differ more (\w, \b, \h, ...) are refused.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

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
  // Appends the [begin, end) byte ranges of the non-empty matches, in order.
  void matches(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  template <typename F>
  void each_match(std::string_view text, F&& f) const;
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

// tokenizer.json "pre_tokenizer": the steps that cut normalized text into the words BPE sees. Supported:
//  - Split with a Regex or a literal String and any behavior (Isolated, Removed, MergedWithPrevious,
//    MergedWithNext, Contiguous), as HF applies it to every piece in turn;
//  - ByteLevel (add_prefix_space false): marks the model as byte-level; use_regex true adds GPT-2's split;
//  - Metaspace (first step only): " " -> the replacement ("▁"), prepended per prepend_scheme (always; first =
//    only to text at the start of the input), then split before each replacement when split is true;
//  - null (the whole stretch is one word, as SentencePiece-style Llama 2 / Gemma files say), and Sequences.
class PreTokenizer {
 public:
  PreTokenizer(const nlohmann::json& p, const std::string& where);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  bool byte_level() const { return byte_level_; }
  // The words of text (normalized, valid UTF-8). at_start: text begins the whole input. The words point into
  // text or into buf (which holds rewritten text). Thread-safe.
  void run(std::string_view text, bool at_start, std::string& buf, std::vector<std::string_view>& out) const;

 private:
  enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous };
  struct Step {
    std::unique_ptr<SplitRegex> regex;  // or
    std::string literal;
    Behavior behavior = Behavior::Isolated;
  };
  void read(const nlohmann::json& p, const std::string& where, const std::string& field, bool first);
  void split_step(const Step& st, std::string_view piece, std::vector<std::string_view>& out) const;

  std::vector<Step> steps_;
  bool byte_level_ = false;
  bool metaspace_ = false, metaspace_split_ = false;
  std::string replacement_;
  int prepend_ = 0;  // 0 always, 1 first, 2 never
};

}  // namespace wick::tok
