// Chat templates without a Jinja engine: wick recognises the template family from tokenizer_config.json's
// chat_template text and renders it in C++ (docs formats.md §3.3), byte-for-byte as transformers'
// apply_chat_template(tokenize=False) does for system/user/assistant messages (no tools).
//  - Qwen25: ChatML; a default system turn when messages[0] is not a system message ("You are Qwen, created
//    by Alibaba Cloud. You are a helpful assistant." for Instruct models, "You are a helpful assistant." for
//    templates that carry that text instead, e.g. base and Qwen2 models).
//  - Qwen3: ChatML, no default system; assistant turns after the last user query get a <think> block (empty
//    when the message has none); earlier ones are stripped of <think>…</think>; enable_thinking=false appends
//    "<think>\n\n</think>\n\n" after the generation prompt.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wick {

enum class ChatTemplateKind { Qwen25, Qwen3 };

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// "qwen2.5" / "qwen3" (the values of the CLI flag --chat-template); wick::Error for anything else.
ChatTemplateKind parse_chat_template_kind(std::string_view name);
const char* chat_template_kind_name(ChatTemplateKind kind);

class ChatTemplate {
 public:
  // path_or_dir: a tokenizer_config.json, or a model folder holding one (a folder's chat_template.jinja is
  // used when the config has no chat_template). force picks the family whatever the file says. A missing or
  // unrecognised template is not an error here, only when the template is used (render, kind,
  // default_system): a model without one can still generate from raw prompts.
  static ChatTemplate from_tokenizer_config(const std::string& path_or_dir,
                                            std::optional<ChatTemplateKind> force = std::nullopt);
  // A template of a known family without reading any file (default_system "" = the family's default).
  static ChatTemplate of_kind(ChatTemplateKind kind, std::string default_system = "");

  // Messages -> the prompt text (tokenize it with Tokenizer::encode: the special tokens in it are matched).
  // enable_thinking matters only for Qwen3 (nullopt = not passed, which renders like true).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     std::optional<bool> enable_thinking = std::nullopt) const;

  bool available() const { return error_.empty(); }
  ChatTemplateKind kind() const;
  std::string default_system() const;  // "" for Qwen3

 private:
  ChatTemplate() = default;
  void require() const;

  ChatTemplateKind kind_ = ChatTemplateKind::Qwen25;
  std::string default_system_;
  std::string error_, error_where_;  // why it cannot be used (empty when it can)
};

}  // namespace wick
