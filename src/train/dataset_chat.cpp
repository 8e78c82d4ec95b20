// The messages format (and the chat core of every chat-shaped format: conversational prompt-completion,
// ShareGPT, Alpaca): a conversation rendered with the model's chat template; the loss counts the
// assistant turns only (every token with train_on_inputs). For assistant message i, the text before it is the template's rendering of
// messages [0, i) with the generation prompt ("...<|im_start|>assistant\n"); the turn runs from there through
// its closing <|im_end|> (so a Qwen3 <think> block the template writes into the turn is counted: the model
// generates it after the header). The "\n" after <|im_end|> and everything else is masked.
// The text is tokenized span by span; the spans' tokens must equal the tokens of the whole rendering,
// else a token straddles a boundary and the line is refused rather than mis-masked.
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/dataset_formats.h"

namespace wick::dataset_detail {

using nlohmann::json;

namespace {

constexpr std::string_view kHeader = "<|im_start|>assistant\n";
constexpr std::string_view kEnd = "<|im_end|>";

std::string item(const std::string& field, size_t i) { return "\"" + field + "\"[" + std::to_string(i) + "]"; }

std::string render(const ChatTemplate& tmpl, const std::vector<ChatMessage>& m, bool gen) {
  try {
    return tmpl.render(m, gen);
  } catch (const Error& e) {
    throw std::runtime_error("the chat template cannot render it: " + e.what_msg());
  }
}

// A literal control token inside an assistant turn becomes the special token and would end the turn early.
void check_assistant_text(const std::string& content, const std::string& where) {
  for (std::string_view tok : {std::string_view("<|im_start|>"), kEnd})
    if (content.find(tok) != std::string::npos)
      throw std::runtime_error(where + " contains the text " + std::string(tok) +
                               ", which the tokenizer reads as the chat control token");
}

}  // namespace

std::vector<ChatMessage> parse_chat_messages(const json& m, const std::string& field) {
  auto at = [&](size_t i) { return item(field, i); };
  if (!m.is_array()) throw std::runtime_error("\"" + field + "\" must be an array of {\"role\", \"content\"} objects");
  if (m.empty()) throw std::runtime_error("\"" + field + "\" is empty");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m.size(); i++) {
    const json& e = m[i];
    if (!e.is_object()) throw std::runtime_error(at(i) + " must be an object with \"role\" and \"content\"");
    if (!e.contains("role") || !e.at("role").is_string()) throw std::runtime_error(at(i) + ".role must be a string");
    if (!e.contains("content") || !e.at("content").is_string())
      throw std::runtime_error(at(i) + ".content must be a string");
    ChatMessage msg{e.at("role").get<std::string>(), e.at("content").get<std::string>()};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      throw std::runtime_error(at(i) + ".role is \"" + msg.role +
                               "\"; the roles are system, user and assistant (tool calls are not supported)");
    if (msg.role == "assistant") check_assistant_text(msg.content, at(i) + ".content");
    out.push_back(std::move(msg));
  }
  return out;
}

Example messages_example(const json& j, const Tokenizer& tok, const ChatTemplate& tmpl, bool train_on_inputs) {
  if (!j.contains("messages")) throw std::runtime_error("missing \"messages\"");
  return chat_example(parse_chat_messages(j.at("messages"), "messages"), 0, tok, tmpl, train_on_inputs, "messages");
}

bool is_conversational_prompt(const json& j) {
  return (j.contains("prompt") && j.at("prompt").is_array()) || (j.contains("completion") && j.at("completion").is_array());
}

// TRL's conversational prompt-completion: the template over prompt + completion; the completion's
// assistant messages are counted (an assistant message inside the prompt is context, not a target).
Example conversational_prompt_completion_example(const json& j, const Tokenizer& tok, const ChatTemplate& tmpl,
                                                 bool train_on_inputs) {
  for (const char* k : {"prompt", "completion"}) {
    if (!j.contains(k)) throw std::runtime_error(std::string("missing \"") + k + "\"");
    if (!j.at(k).is_array())
      throw std::runtime_error(std::string("\"") + k + "\" must be a list of messages like the other of the pair "
                               "(conversational prompt-completion), not a " + (j.at(k).is_string() ? "string" : "non-list"));
  }
  std::vector<ChatMessage> msgs = parse_chat_messages(j.at("prompt"), "prompt");
  const size_t first = msgs.size();
  const std::vector<ChatMessage> comp = parse_chat_messages(j.at("completion"), "completion");
  msgs.insert(msgs.end(), comp.begin(), comp.end());
  return chat_example(msgs, first, tok, tmpl, train_on_inputs, "completion");
}

Example chat_example(const std::vector<ChatMessage>& msgs, size_t first_counted, const Tokenizer& tok,
                     const ChatTemplate& tmpl, bool train_on_inputs, const std::string& field) {
  auto at = [&](size_t i) {
    return item(field, field == "completion" ? i - first_counted : i);
  };
  bool any_assistant = false;
  for (size_t i = first_counted; i < msgs.size(); i++) any_assistant |= msgs[i].role == "assistant";
  if (!any_assistant)
    throw std::runtime_error("no assistant message" + std::string(field == "completion" ? " in \"completion\"" : "") +
                             ": nothing to learn from this conversation");
  const std::string full = render(tmpl, msgs, false);
  if (train_on_inputs) {  // every token counts: no spans, no boundary check needed
    Example e;
    e.ids = tok.encode(full);
    e.labels = e.ids;
    return e;
  }

  // Counted character spans [first, second) of `full`, one per assistant message, in order.
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t i = first_counted; i < msgs.size(); i++) {
    if (msgs[i].role != "assistant") continue;
    size_t start;
    if (i == 0) {  // nothing to render before it: the template's own header (after any default system turn)
      const size_t h = full.find(kHeader);
      if (h == std::string::npos) throw std::runtime_error("the chat template wrote no assistant header for " + at(0));
      start = h + kHeader.size();
    } else {
      const std::string prefix = render(tmpl, std::vector<ChatMessage>(msgs.begin(), msgs.begin() + i), true);
      if (prefix.size() > full.size() || full.compare(0, prefix.size(), prefix) != 0)
        throw std::runtime_error("the chat template renders the messages before " + at(i) +
                                 " (with the generation prompt) differently from the whole conversation, so the "
                                 "assistant turn cannot be masked exactly (Qwen3 does this to consecutive assistant "
                                 "messages after the last user message; merge them into one)");
      start = prefix.size();
    }
    const size_t close = full.find(kEnd, start);
    if ((!spans.empty() && start < spans.back().second) || close == std::string::npos)
      throw std::runtime_error("the chat template's rendering of " + at(i) + " has no closing " + std::string(kEnd));
    spans.emplace_back(start, close + kEnd.size());
  }

  Example e;
  auto add = [&](size_t a, size_t b, bool counted) {
    const std::vector<int32_t> ids = tok.encode(std::string_view(full).substr(a, b - a));
    e.ids.insert(e.ids.end(), ids.begin(), ids.end());
    if (counted) e.labels.insert(e.labels.end(), ids.begin(), ids.end());
    else e.labels.insert(e.labels.end(), ids.size(), -100);
  };
  size_t pos = 0;
  for (const auto& [a, b] : spans) {
    add(pos, a, false);
    add(a, b, true);
    pos = b;
  }
  add(pos, full.size(), false);
  if (tok.encode(full) != e.ids)
    throw std::runtime_error("tokenizing the assistant turns apart from the rest of the conversation gives other "
                             "tokens than tokenizing it whole (a token straddles a turn boundary, e.g. an assistant "
                             "message that starts with a newline), so the loss cannot be masked exactly");
  return e;
}

}  // namespace wick::dataset_detail
