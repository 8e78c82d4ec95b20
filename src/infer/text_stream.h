// The text side of generation, one sampled token at a time - shared by Generator (infer/generator.h) and
// wick serve's per-sequence decoder (serve/sequence.h), so both stop and stream by the same rules:
// - an eos id (unless ignore_eos) ends the text;
// - the first stop string ends it, cut before the stop string (which is never shown);
// - streamed pieces never split a UTF-8 character (tokenizer/StreamDecoder) nor show text that may still
//   become the start of a stop string: such a tail is held back until it is known not to be one.
// Without a tokenizer there is no text: only eos ids stop, and every piece is "".
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "infer/generator.h"
#include "tokenizer/tokenizer.h"

namespace wick {

class TextStream {
 public:
  // opt's eos_ids, ignore_eos and stop_strings apply; tok may be null (ids only).
  TextStream(const Tokenizer* tok, const GenerateOptions& opt);

  struct Step {
    std::string piece;         // text this token releases (maybe "")
    bool eos = false;          // the token is an eos id
    bool stop_string = false;  // the text now contains a stop string (cut before it)
  };
  Step push(int32_t id);
  // At the end (any reason but a stop string): the text held back, now released. "" after a stop string.
  std::string flush();
  // Everything decoded so far (cut before a stop string; special tokens skipped).
  const std::string& text() const { return text_; }

 private:
  std::vector<int64_t> eos_ids_;
  std::vector<std::string> stop_strings_;
  bool ignore_eos_;
  std::unique_ptr<StreamDecoder> dec_;
  std::string text_;
  size_t emitted_ = 0;  // bytes of text_ already released
  bool stop_hit_ = false;
};

}  // namespace wick
