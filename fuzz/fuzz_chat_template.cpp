// The chat-template renderer through its public interface: a tokenizer_config.json (its chat_template text
// picks the family, or whatever engine renders it) and arbitrary messages, rendered by it and by both
// built-in families. Input: one byte of flags (bit 0: add_generation_prompt; the byte / 2 mod 3: thinking
// unset, off or on), the tokenizer_config.json text, then NUL-separated role, content, role, content, ...
// The flags come from the input (not every combination per input) so that each execution renders three
// times instead of twelve; the fuzzer reaches every combination through the byte.
#include <cstring>

#include "fuzz/fuzz_util.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool gen = data[0] & 1;
  const int think_sel = (data[0] >> 1) % 3;
  const std::optional<bool> think = think_sel == 0 ? std::optional<bool>() : std::optional<bool>(think_sel == 2);
  data++;
  size--;
  // The parts are cut at each NUL with memchr and copied once each: the byte-by-byte push_back this replaces
  // (instrumented like everything here: coverage compares and ASan checks on every byte) cost ~180 us of CPU
  // per seed input, ~8% of an execution, and reached nothing in the library.
  const char* const begin = reinterpret_cast<const char*>(data);
  const char* const end = begin + size;
  const char* nul = size ? static_cast<const char*>(std::memchr(begin, 0, size)) : nullptr;
  const size_t cfg_size = static_cast<size_t>((nul ? nul : end) - begin);
  std::vector<wick::ChatMessage> msgs;
  while (nul) {  // role NUL content [NUL role NUL content ...]; a role without its content is dropped
    const char* const role = nul + 1;
    const char* const role_end = static_cast<const char*>(std::memchr(role, 0, static_cast<size_t>(end - role)));
    if (!role_end) break;
    const char* const content = role_end + 1;
    nul = static_cast<const char*>(std::memchr(content, 0, static_cast<size_t>(end - content)));
    msgs.push_back({std::string(role, role_end), std::string(content, nul ? nul : end)});
  }
  auto render = [&](const wick::ChatTemplate& t) {
    wick::fuzz::expect_clean([&] { (void)t.render(msgs, gen, think); });
  };
  const std::string cfg = wick::fuzz::write_input("tokenizer_config.json", data, cfg_size);
  wick::fuzz::expect_clean([&] { render(wick::ChatTemplate::from_tokenizer_config(cfg)); });
  // The built-in templates are constants: parsed once, not once per input.
  static const wick::ChatTemplate qwen25 = wick::ChatTemplate::of_kind(wick::ChatTemplateKind::Qwen25);
  static const wick::ChatTemplate qwen3 = wick::ChatTemplate::of_kind(wick::ChatTemplateKind::Qwen3);
  render(qwen25);
  render(qwen3);
  return 0;
}
