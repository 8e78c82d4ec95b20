// The chat-template renderer through its public interface: a tokenizer_config.json (its chat_template text
// picks the family, or whatever engine renders it) and arbitrary messages, rendered with and without the
// generation prompt and thinking switch. Input: tokenizer_config.json text, then NUL-separated role,
// content, role, content, ...; the same messages also through both built-in families.
#include "fuzz/fuzz_util.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; i++) {
    if (data[i] == 0) parts.emplace_back();
    else parts.back().push_back(static_cast<char>(data[i]));
  }
  std::vector<wick::ChatMessage> msgs;
  for (size_t i = 1; i + 1 < parts.size(); i += 2) msgs.push_back({parts[i], parts[i + 1]});
  auto render_all = [&](const wick::ChatTemplate& t) {
    for (bool gen : {false, true})
      for (std::optional<bool> think : {std::optional<bool>(), std::optional<bool>(false)})
        wick::fuzz::expect_clean([&] { (void)t.render(msgs, gen, think); });
  };
  const std::string cfg = wick::fuzz::write_input("tokenizer_config.json", data, parts[0].size());
  wick::fuzz::expect_clean([&] { render_all(wick::ChatTemplate::from_tokenizer_config(cfg)); });
  render_all(wick::ChatTemplate::of_kind(wick::ChatTemplateKind::Qwen25));
  render_all(wick::ChatTemplate::of_kind(wick::ChatTemplateKind::Qwen3));
  return 0;
}
