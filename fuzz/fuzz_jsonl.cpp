// The JSONL dataset reader in every format (auto-detected and forced): text, prompt/completion, chat
// messages (through the chat template) and pre-tokenized ids/labels, with truncation and eos.
#include "fuzz/fuzz_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_files.h"
#include "train/dataset.h"

static const wick::Tokenizer& tok() {
  static const wick::Tokenizer t = [] {
    const char* p = std::getenv("WICK_FUZZ_TOKENIZER");
    return wick::Tokenizer::from_file(p ? p : wick::default_tokenizer_dir() + "/tokenizer.json");
  }();
  return t;
}

// Loaded before the first input: the 7 MB tokenizer.json takes seconds under the sanitizers, which
// libFuzzer would count against the first input's timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tok();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path = wick::fuzz::write_input("data.jsonl", data + 1, size - 1);
  static const wick::ChatTemplate tmpl = wick::ChatTemplate::of_kind(wick::ChatTemplateKind::Qwen25);
  wick::DatasetOptions o;
  // The first byte picks the format and options.
  const uint8_t sel = data[0];
  const wick::DatasetFormat formats[] = {wick::DatasetFormat::Auto, wick::DatasetFormat::Text,
                                         wick::DatasetFormat::PromptCompletion, wick::DatasetFormat::Messages,
                                         wick::DatasetFormat::Tokens};
  o.format = formats[sel % 5];
  o.skip_bad_lines = (sel >> 3) & 1;
  o.max_seq_len = (sel >> 4) & 1 ? 16 : 0;
  o.vocab_size = (sel >> 5) & 1 ? 1000 : tok().vocab_size();
  o.eos_id = (sel >> 6) & 1 ? 151645 % o.vocab_size : -1;
  wick::fuzz::expect_clean([&] {
    const wick::Dataset d = wick::load_dataset(path, o, &tok(), &tmpl);
    wick::check_dataset(d);
  });
  return 0;
}
