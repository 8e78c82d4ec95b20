#include "tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace wick {

namespace fs = std::filesystem;

namespace {

constexpr char kQwenDefault[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
constexpr char kPlainDefault[] = "You are a helpful assistant.";
constexpr char kForceHint[] = "pass --chat-template qwen2.5 or --chat-template qwen3 to choose the template";

bool has(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw Error("cannot open file", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The chat_template string of a tokenizer_config.json ("" when absent). Older configs hold a list of
// {"name", "template"}; the one named "default" is the chat template.
std::string template_of_config(const fs::path& file) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("not valid JSON: ") + e.what(), file.string());
  }
  if (!j.is_object() || !j.contains("chat_template") || j.at("chat_template").is_null()) return "";
  const auto& t = j.at("chat_template");
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array())
    for (const auto& e : t)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e.at("template").is_string())
        return e.at("template").get<std::string>();
  throw Error("chat_template is neither a string nor a list holding a \"default\" template", file.string() + ": chat_template");
}

// Python's str.strip / lstrip / rstrip with the argument '\n'.
std::string_view lstrip_nl(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return s;
}
std::string_view rstrip_nl(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}
std::string_view strip_nl(std::string_view s) { return lstrip_nl(rstrip_nl(s)); }

void turn(std::string& out, std::string_view role, std::string_view content) {
  out.append("<|im_start|>").append(role).append("\n").append(content).append("<|im_end|>\n");
}

void check_roles(const std::vector<ChatMessage>& messages) {
  if (messages.empty()) throw Error("no messages to render", "chat template");
  for (size_t i = 0; i < messages.size(); i++) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant")
      throw Error("message " + std::to_string(i) + " has role \"" + r + "\"", "chat template",
                  "wick's chat templates take the roles system, user and assistant (tool calls are not supported)");
  }
}

std::string render_qwen25(const std::vector<ChatMessage>& m, bool gen, const std::string& default_system) {
  std::string out;
  if (m[0].role != "system") turn(out, "system", default_system);
  for (const ChatMessage& msg : m) turn(out, msg.role, msg.content);  // the first system message included
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

std::string render_qwen3(const std::vector<ChatMessage>& m, bool gen, std::optional<bool> enable_thinking) {
  const size_t n = m.size();
  // The last user message that is not a wrapped tool response ("the last query"); n - 1 when none.
  size_t last_query = n - 1;
  for (size_t k = n; k-- > 0;) {
    const std::string& c = m[k].content;
    const bool tool_response = c.rfind("<tool_response>", 0) == 0 && c.size() >= 16 &&
                               c.compare(c.size() - 16, 16, "</tool_response>") == 0;
    if (m[k].role == "user" && !tool_response) {
      last_query = k;
      break;
    }
  }
  std::string out;
  for (size_t i = 0; i < n; i++) {
    const ChatMessage& msg = m[i];
    if (msg.role != "assistant") {
      turn(out, msg.role, msg.content);
      continue;
    }
    std::string_view content = msg.content, reasoning;
    if (const size_t close = content.find("</think>"); close != std::string_view::npos) {
      // content: after the last </think>; reasoning: before the first </think>, after its last <think>.
      std::string_view before = rstrip_nl(content.substr(0, close));
      if (const size_t open = before.rfind("<think>"); open != std::string_view::npos) before = before.substr(open + 7);
      reasoning = lstrip_nl(before);
      content = lstrip_nl(content.substr(content.rfind("</think>") + 8));
    }
    out += "<|im_start|>assistant\n";
    if (i > last_query && (i == n - 1 || !reasoning.empty())) {
      out.append("<think>\n").append(strip_nl(reasoning)).append("\n</think>\n\n").append(lstrip_nl(content));
    } else {
      out.append(content);
    }
    out += "<|im_end|>\n";
  }
  if (gen) {
    out += "<|im_start|>assistant\n";
    if (enable_thinking.has_value() && !*enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

}  // namespace

ChatTemplateKind parse_chat_template_kind(std::string_view name) {
  if (name == "qwen2.5" || name == "qwen25" || name == "qwen2") return ChatTemplateKind::Qwen25;
  if (name == "qwen3") return ChatTemplateKind::Qwen3;
  throw Error("unknown chat template \"" + std::string(name) + "\"", "--chat-template", "use qwen2.5 or qwen3");
}

const char* chat_template_kind_name(ChatTemplateKind kind) { return kind == ChatTemplateKind::Qwen3 ? "qwen3" : "qwen2.5"; }

ChatTemplate ChatTemplate::of_kind(ChatTemplateKind kind, std::string default_system) {
  ChatTemplate t;
  t.kind_ = kind;
  if (kind == ChatTemplateKind::Qwen25) t.default_system_ = default_system.empty() ? kQwenDefault : std::move(default_system);
  return t;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::string& path_or_dir, std::optional<ChatTemplateKind> force) {
  fs::path config = path_or_dir, jinja;
  if (fs::is_directory(config)) {
    jinja = config / "chat_template.jinja";
    config /= "tokenizer_config.json";
  }
  std::string text, source = config.string();
  if (fs::exists(config)) text = template_of_config(config);
  if (text.empty() && !jinja.empty() && fs::exists(jinja)) {
    text = read_file(jinja);
    source = jinja.string();
  }

  // The default system prompt a ChatML template carries, if any.
  const std::string known_default = has(text, kQwenDefault) ? kQwenDefault : has(text, kPlainDefault) ? kPlainDefault : "";
  if (force) return of_kind(*force, known_default);

  ChatTemplate t;
  t.error_where_ = source;
  if (!fs::exists(config) && (jinja.empty() || !fs::exists(jinja))) {
    t.error_ = "no tokenizer_config.json, so no chat template";
    return t;
  }
  if (text.empty()) {
    t.error_ = "no chat_template in this model's tokenizer files";
    return t;
  }
  const bool chatml = has(text, "<|im_start|>");
  const bool thinking = has(text, "<think>") || has(text, "enable_thinking") || has(text, "reasoning_content");
  if (chatml && thinking && has(text, "enable_thinking") && has(text, "last_query_index") &&
      has(text, "<think>\\n\\n</think>\\n\\n"))
    return of_kind(ChatTemplateKind::Qwen3);
  if (chatml && !thinking && !known_default.empty()) return of_kind(ChatTemplateKind::Qwen25, known_default);
  t.error_ = "the chat template is not one wick recognises (it knows the Qwen2.5 ChatML and Qwen3 templates)";
  return t;
}

void ChatTemplate::require() const {
  if (!error_.empty()) throw Error(error_, error_where_, kForceHint);
}

ChatTemplateKind ChatTemplate::kind() const {
  require();
  return kind_;
}

std::string ChatTemplate::default_system() const {
  require();
  return default_system_;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 std::optional<bool> enable_thinking) const {
  require();
  check_roles(messages);
  return kind_ == ChatTemplateKind::Qwen3 ? render_qwen3(messages, add_generation_prompt, enable_thinking)
                                          : render_qwen25(messages, add_generation_prompt, default_system_);
}

}  // namespace wick
