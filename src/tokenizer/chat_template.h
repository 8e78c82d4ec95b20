// Chat templates: the model's own Jinja template (tokenizer_config.json's chat_template, or the
// chat_template.jinja file next to it), rendered by wick's Jinja engine (tokenizer/jinja.h) byte for byte as
// transformers' apply_chat_template(tokenize=False) renders it. The template sees messages, tools (none unless
// given), documents (none), add_generation_prompt, the extra variables (enable_thinking, ...) and the special
// tokens of tokenizer_config.json (bos_token, eos_token, pad_token, unk_token, additional_special_tokens).
//
// kind() names the family for display and for --chat-template: Qwen2.5 and Qwen3 templates are recognised
// (and wick carries copies of both, used when the family is forced); any other template is Jinja.
#pragma once
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace wick {

namespace jinja {
class Template;
}

enum class ChatTemplateKind { Qwen25, Qwen3, Jinja };

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", or any role the template knows ("tool", ...)
  std::string content;
};

// "qwen2.5" / "qwen3" (the values of the CLI flag --chat-template); wick::Error for anything else.
ChatTemplateKind parse_chat_template_kind(std::string_view name);
const char* chat_template_kind_name(ChatTemplateKind kind);  // "qwen2.5", "qwen3", "jinja"

// What a rendering may add beyond messages and add_generation_prompt.
struct ChatRenderOptions {
  nlohmann::ordered_json tools;                                   // a list of tool schemas; null = none
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();  // e.g. {"enable_thinking": false}
  std::optional<std::tm> now;                                     // strftime_now's time (nullopt = the clock)
  // Filled with the [begin, end) byte ranges the template marks with {% generation %} (assistant text).
  std::vector<std::pair<size_t, size_t>>* generation = nullptr;
};

class ChatTemplate {
 public:
  // path_or_dir: a tokenizer_config.json, or a model folder holding one (the folder's chat_template.jinja,
  // when present, is the template, as transformers reads it). force picks a built-in family template whatever
  // the file says. A missing or unparsable template is not an error here, only when the template is used
  // (render, kind, default_system): a model without one can still generate from raw prompts.
  static ChatTemplate from_tokenizer_config(const std::string& path_or_dir,
                                            std::optional<ChatTemplateKind> force = std::nullopt);
  // A built-in template of a known family (default_system "" = the family's default) without reading a file.
  static ChatTemplate of_kind(ChatTemplateKind kind, std::string default_system = "");
  // Any Jinja template text, with special tokens as tokenizer_config.json gives them ({"bos_token": "<s>"}).
  // wick::Error when the text is outside wick's Jinja subset. name is used in error messages.
  static ChatTemplate from_source(const std::string& source, const std::string& name,
                                  const nlohmann::ordered_json& special_tokens = nlohmann::ordered_json::object());

  // Messages -> the prompt text (tokenize it with Tokenizer::encode: the special tokens in it are matched).
  // enable_thinking is passed to the template when set (Qwen3 reads it).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     std::optional<bool> enable_thinking = std::nullopt) const;
  // Messages as JSON objects (tool_calls, content parts, ... passed through to the template).
  std::string render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const ChatRenderOptions& opt = {}) const;

  bool available() const { return error_.empty(); }
  ChatTemplateKind kind() const;
  std::string default_system() const;  // the system prompt used when none is given; "" when there is none
  bool has_generation_blocks() const;   // the template marks assistant text with {% generation %}
  const std::string& source() const;    // the Jinja text

 private:
  ChatTemplate() = default;
  void require() const;

  ChatTemplateKind kind_ = ChatTemplateKind::Jinja;
  std::string default_system_;
  std::shared_ptr<const jinja::Template> tmpl_;
  nlohmann::ordered_json special_ = nlohmann::ordered_json::object();
  std::string error_, error_where_;  // why it cannot be used (empty when it can)
};

}  // namespace wick
