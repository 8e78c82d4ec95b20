#include "tokenizer/chat_template.h"

#include <filesystem>

#include "core/error.h"
#include "core/input_file.h"
#include "tokenizer/chat_template_builtin.h"
#include "tokenizer/jinja.h"

namespace wick {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

constexpr char kQwenDefault[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
constexpr char kPlainDefault[] = "You are a helpful assistant.";
constexpr char kForceHint[] = "pass --chat-template qwen2.5 or --chat-template qwen3 to choose the template";

bool has(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// The special tokens transformers passes to templates (its special_tokens_map): those set, as strings.
ojson special_tokens_of(const ojson& cfg) {
  ojson out = ojson::object();
  if (!cfg.is_object()) return out;
  for (const char* k : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!cfg.contains(k)) continue;
    const ojson& v = cfg.at(k);
    if (v.is_string()) out[k] = v;
    else if (v.is_object() && v.contains("content") && v.at("content").is_string()) out[k] = v.at("content");
  }
  if (cfg.contains("additional_special_tokens") && cfg.at("additional_special_tokens").is_array() &&
      !cfg.at("additional_special_tokens").empty()) {
    ojson list = ojson::array();
    for (const ojson& t : cfg.at("additional_special_tokens")) {
      if (t.is_string()) list.push_back(t);
      else if (t.is_object() && t.contains("content")) list.push_back(t.at("content"));
    }
    out["additional_special_tokens"] = list;
  }
  return out;
}

// The chat_template string of a parsed tokenizer_config.json ("" when absent). Older configs hold a list of
// {"name", "template"}; the one named "default" is the chat template.
std::string template_of_config(const ojson& j, const std::string& file) {
  if (!j.is_object() || !j.contains("chat_template") || j.at("chat_template").is_null()) return "";
  const auto& t = j.at("chat_template");
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array())
    for (const auto& e : t)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e.at("template").is_string())
        return e.at("template").get<std::string>();
  throw Error("chat_template is neither a string nor a list holding a \"default\" template", file + ": chat_template");
}

// The family a template text belongs to, by the marks of the Qwen templates.
ChatTemplateKind family_of(const std::string& text) {
  const bool chatml = has(text, "<|im_start|>");
  const bool thinking = has(text, "<think>") || has(text, "enable_thinking") || has(text, "reasoning_content");
  if (chatml && thinking && has(text, "enable_thinking") && has(text, "last_query_index") &&
      has(text, "<think>\\n\\n</think>\\n\\n"))
    return ChatTemplateKind::Qwen3;
  if (chatml && !thinking && (has(text, kQwenDefault) || has(text, kPlainDefault))) return ChatTemplateKind::Qwen25;
  return ChatTemplateKind::Jinja;
}

// A Jinja single-quoted string literal's body for s.
std::string jinja_quote_body(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    if (c == '\n') { out += "\\n"; continue; }
    out.push_back(c);
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

ChatTemplateKind parse_chat_template_kind(std::string_view name) {
  if (name == "qwen2.5" || name == "qwen25" || name == "qwen2") return ChatTemplateKind::Qwen25;
  if (name == "qwen3") return ChatTemplateKind::Qwen3;
  throw Error("unknown chat template \"" + std::string(name) + "\"", "--chat-template",
              "use qwen2.5 or qwen3 (without the flag, the model's own template is used)");
}

const char* chat_template_kind_name(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::Qwen25: return "qwen2.5";
    case ChatTemplateKind::Qwen3: return "qwen3";
    default: return "jinja";
  }
}

ChatTemplate ChatTemplate::from_source(const std::string& source, const std::string& name, const ojson& special_tokens) {
  ChatTemplate t;
  t.tmpl_ = std::make_shared<const jinja::Template>(source, name);
  t.special_ = special_tokens.is_object() ? special_tokens : ojson::object();
  t.kind_ = family_of(source);
  if (t.kind_ == ChatTemplateKind::Qwen25) t.default_system_ = has(source, kQwenDefault) ? kQwenDefault : kPlainDefault;
  return t;
}

ChatTemplate ChatTemplate::of_kind(ChatTemplateKind kind, std::string default_system) {
  const ojson qwen_tokens = {{"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"}};
  if (kind == ChatTemplateKind::Qwen3) return from_source(kQwen3Template, "built-in qwen3 chat template", qwen_tokens);
  if (kind != ChatTemplateKind::Qwen25) throw Error("no built-in chat template of this kind", "chat template", kForceHint);
  std::string text = kQwen25Template;
  if (!default_system.empty() && default_system != kQwenDefault)
    text = replace_all(text, kQwenDefault, jinja_quote_body(default_system));
  ChatTemplate t = from_source(text, "built-in qwen2.5 chat template", qwen_tokens);
  t.kind_ = ChatTemplateKind::Qwen25;
  t.default_system_ = default_system.empty() ? kQwenDefault : default_system;
  return t;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::string& path_or_dir, std::optional<ChatTemplateKind> force) {
  fs::path config = path_or_dir, jinja_file;
  if (fs::is_directory(config)) {
    jinja_file = config / "chat_template.jinja";
    config /= "tokenizer_config.json";
  }
  ojson cfg = ojson::object();
  std::string text, source = config.string();
  if (fs::exists(config)) {
    try {
      cfg = ojson::parse(read_file(config));
    } catch (const ojson::exception& e) {
      throw Error(std::string("not valid JSON: ") + e.what(), config.string());
    }
    text = template_of_config(cfg, config.string());
  }
  if (!jinja_file.empty() && fs::exists(jinja_file)) {  // transformers prefers the .jinja file
    text = read_file(jinja_file);
    source = jinja_file.string();
  }

  if (force) {
    // The default system prompt a ChatML template carries, if any.
    const std::string known_default = has(text, kQwenDefault) ? kQwenDefault : has(text, kPlainDefault) ? kPlainDefault : "";
    return of_kind(*force, known_default);
  }

  ChatTemplate t;
  t.error_where_ = source;
  if (!fs::exists(config) && (jinja_file.empty() || !fs::exists(jinja_file))) {
    t.error_ = "no tokenizer_config.json, so no chat template";
    return t;
  }
  if (text.empty()) {
    t.error_ = "no chat_template in this model's tokenizer files";
    return t;
  }
  try {
    return from_source(text, source, special_tokens_of(cfg));
  } catch (const Error& e) {
    t.error_ = "the chat template cannot be used: " + e.what_msg() + (e.where().empty() ? "" : " (" + e.where() + ")");
    return t;
  }
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

bool ChatTemplate::has_generation_blocks() const {
  require();
  return has(tmpl_->source(), "generation") && has(tmpl_->source(), "endgeneration");
}

const std::string& ChatTemplate::source() const {
  require();
  return tmpl_->source();
}

namespace {

// The template's variables (special tokens, messages, tools, documents, add_generation_prompt, the extra
// variables) and the render.
std::string render_messages(const jinja::Template& tmpl, const ojson& special, jinja::Value messages,
                            bool add_generation_prompt, const ChatRenderOptions& opt) {
  jinja::Dict vars;
  for (auto it = special.begin(); it != special.end(); ++it) vars.set(it.key(), jinja::Value::from_json(it.value()));
  vars.set("messages", std::move(messages));
  vars.set("tools", opt.tools.is_null() ? jinja::Value::none() : jinja::Value::from_json(opt.tools));
  vars.set("documents", jinja::Value::none());
  vars.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  if (opt.variables.is_object())
    for (auto it = opt.variables.begin(); it != opt.variables.end(); ++it) vars.set(it.key(), jinja::Value::from_json(it.value()));
  jinja::RenderOptions ro;
  ro.now = opt.now;
  ro.generation = opt.generation;
  return tmpl.render(vars, ro);
}

}  // namespace

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 std::optional<bool> enable_thinking) const {
  require();
  if (messages.empty()) throw Error("no messages to render", "chat template");
  // The messages as template values directly (what Value::from_json of {"role", "content"} objects gives).
  jinja::List list;
  list.reserve(messages.size());
  for (const ChatMessage& msg : messages) {
    auto d = std::make_shared<jinja::Dict>();
    d->items.reserve(2);
    d->items.emplace_back("role", jinja::Value::string(msg.role));
    d->items.emplace_back("content", jinja::Value::string(msg.content));
    list.push_back(jinja::Value::of_dict(std::move(d)));
  }
  ChatRenderOptions opt;
  if (enable_thinking) opt.variables["enable_thinking"] = *enable_thinking;
  return render_messages(*tmpl_, special_, jinja::Value::of_list(std::move(list)), add_generation_prompt, opt);
}

std::string ChatTemplate::render_json(const ojson& messages, bool add_generation_prompt, const ChatRenderOptions& opt) const {
  require();
  if (!messages.is_array()) throw Error("messages must be a list", "chat template");
  if (messages.empty()) throw Error("no messages to render", "chat template");
  return render_messages(*tmpl_, special_, jinja::Value::from_json(messages), add_generation_prompt, opt);
}

}  // namespace wick
