// The chat-template renderer through its public interface: a tokenizer_config.json (its chat_template text
// picks the family, or whatever engine renders it) and arbitrary messages, rendered by it and by both
// built-in families. Input: one byte of flags (bit 0: add_generation_prompt; the byte / 2 mod 3: thinking
// unset, off or on), the tokenizer_config.json text, then NUL-separated role, content, role, content, ...
// The flags come from the input (not every combination per input) so that each execution renders three
// times instead of twelve; the fuzzer reaches every combination through the byte.
#include "fuzz/fuzz_util.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool gen = data[0] & 1;
  const int think_sel = (data[0] >> 1) % 3;
  const std::optional<bool> think = think_sel == 0 ? std::optional<bool>() : std::optional<bool>(think_sel == 2);
  data++;
  size--;
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; i++) {
    if (data[i] == 0) parts.emplace_back();
    else parts.back().push_back(static_cast<char>(data[i]));
  }
  std::vector<wick::ChatMessage> msgs;
  for (size_t i = 1; i + 1 < parts.size(); i += 2) msgs.push_back({parts[i], parts[i + 1]});
  auto render = [&](const wick::ChatTemplate& t) {
    wick::fuzz::expect_clean([&] { (void)t.render(msgs, gen, think); });
  };
  const std::string cfg = wick::fuzz::write_input("tokenizer_config.json", data, parts[0].size());
  wick::fuzz::expect_clean([&] { render(wick::ChatTemplate::from_tokenizer_config(cfg)); });
  // The built-in templates are constants: parsed once, not once per input.
  static const wick::ChatTemplate qwen25 = wick::ChatTemplate::of_kind(wick::ChatTemplateKind::Qwen25);
  static const wick::ChatTemplate qwen3 = wick::ChatTemplate::of_kind(wick::ChatTemplateKind::Qwen3);
  render(qwen25);
  render(qwen3);
  return 0;
}
