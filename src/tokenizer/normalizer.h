// tokenizer.json "normalizer": applied to each stretch of text between added tokens, before pre-tokenizing.
// wick implements the ones real LLM tokenizers use: NFC (Qwen), Prepend (SentencePiece-style Llama 2 /
// Mistral: "▁" before every stretch), Replace with a literal pattern (" " -> "▁"), and Sequences of them.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick::tok {

class Normalizer {
 public:
  Normalizer() = default;
  // n: the "normalizer" value (null = none). where names the file for errors.
  Normalizer(const nlohmann::json& n, const std::string& where);

  bool empty() const { return steps_.empty(); }
  bool nfc_only() const { return steps_.size() == 1 && steps_[0].kind == Step::Nfc; }
  std::string apply(std::string_view text) const;

 private:
  struct Step {
    enum Kind { Nfc, Prepend, Replace } kind;
    std::string a, b;  // Prepend: a; Replace: a -> b
  };
  void read(const nlohmann::json& n, const std::string& where, const std::string& field);
  std::vector<Step> steps_;
};

}  // namespace wick::tok
