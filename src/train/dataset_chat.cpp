// The messages format: a conversation rendered with the model's chat template; the loss counts the
// assistant turns only. For assistant message i, the text before it is the template's rendering of
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

std::string at(size_t i) { return "\"messages\"[" + std::to_string(i) + "]"; }

std::vector<ChatMessage> parse_messages(const json& j) {
  if (!j.contains("messages")) throw std::runtime_error("missing \"messages\"");
  const json& m = j.at("messages");
  if (!m.is_array()) throw std::runtime_error("\"messages\" must be an array of {\"role\", \"content\"} objects");
  if (m.empty()) throw std::runtime_error("\"messages\" is empty");
  std::vector<ChatMessage> out;
  bool any_assistant = false;
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
    if (msg.role == "assistant") {
      any_assistant = true;
      // A literal control token inside an assistant turn becomes the special token and would end the turn early.
      for (std::string_view tok : {std::string_view("<|im_start|>"), kEnd})
        if (msg.content.find(tok) != std::string::npos)
          throw std::runtime_error(at(i) + ".content contains the text " + std::string(tok) +
                                   ", which the tokenizer reads as the chat control token");
    }
    out.push_back(std::move(msg));
  }
  if (!any_assistant) throw std::runtime_error("no assistant message: nothing to learn from this conversation");
  return out;
}

std::string render(const ChatTemplate& tmpl, const std::vector<ChatMessage>& m, bool gen) {
  try {
    return tmpl.render(m, gen);
  } catch (const Error& e) {
    throw std::runtime_error("the chat template cannot render it: " + e.what_msg());
  }
}

}  // namespace

Example messages_example(const json& j, const Tokenizer& tok, const ChatTemplate& tmpl) {
  const std::vector<ChatMessage> msgs = parse_messages(j);
  const std::string full = render(tmpl, msgs, false);

  // Counted character spans [first, second) of `full`, one per assistant message, in order.
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t i = 0; i < msgs.size(); i++) {
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
