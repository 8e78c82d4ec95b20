// tokenizer.json "decoder": token strings -> text, as HF tokenizers' decode_chain does it. Supported: ByteLevel
// (GPT-2 byte alphabet back to bytes, invalid UTF-8 as U+FFFD), and the SentencePiece-style steps Replace
// (literal), ByteFallback (runs of <0xNN> tokens become their bytes when valid UTF-8, else one U+FFFD per
// byte), Fuse, Strip and Metaspace, alone or in a Sequence.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick::tok {

class Decoder {
 public:
  Decoder(const nlohmann::json& d, const std::string& where);

  // Only a ByteLevel decoder: the text is the tokens' bytes, decoded lossily (the fast path).
  bool byte_level_only() const { return steps_.size() == 1 && steps_[0].kind == Step::ByteLevel; }
  std::string decode(std::vector<std::string> tokens) const;

  // The bytes one token stands for, decoded alone: what a streaming decoder concatenates. first: the token
  // is the first one decoded (a Metaspace decoder drops its replacements there).
  std::string piece(const std::string& token, bool first = false) const;
  // Decoding drops one space at the very start of the text (a Strip of leading spaces).
  bool strips_leading_space() const { return strips_leading_space_; }

 private:
  struct Step {
    enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind;
    std::string a, b;      // Replace: a -> b; Strip: a is the character; Metaspace: a is the replacement
    size_t start = 0, stop = 0;
    bool prepend = true;   // Metaspace: prepend_scheme is not "never"
  };
  void read(const nlohmann::json& d, const std::string& where, const std::string& field);
  std::vector<Step> steps_;
  bool strips_leading_space_ = false;
};

}  // namespace wick::tok
