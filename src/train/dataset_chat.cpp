// The messages format (and the chat core of every chat-shaped format: conversational prompt-completion,
// ShareGPT, Alpaca): a conversation rendered with the model's chat template; the loss counts the assistant
// turns only (every token with train_on_inputs). When the template marks assistant text with
// {% generation %} blocks (as TRL's assistant_only_loss reads them), those ranges are counted. Otherwise, for
// assistant message i, the text before it is the template's rendering of messages [0, i) with the generation
// prompt; the turn runs from there through the template's end-of-turn marker (so a Qwen3 <think> block the
// template writes into the turn is counted: the model generates it after the header). The marker is found by
// probing the template: what it writes after an assistant message, up to and including the first special
// token (<|im_end|> for ChatML, <|eot_id|> for Llama 3, <end_of_turn> for Gemma, </s> for Mistral). What
// follows it (a "\n") and everything else is masked. The rendering is tokenized whole; each span's first and
// last tokens are where the tokens of the text before its ends stop, which must be a prefix of the whole's
// tokens, else a token straddles a boundary and the line is refused rather than mis-masked.
#include <algorithm>
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

constexpr char kProbe[] = "WICK_PROBE_7f3a";

std::string item(const std::string& field, size_t i) { return "\"" + field + "\"[" + std::to_string(i) + "]"; }

std::string render(const ChatTemplate& tmpl, const std::vector<ChatMessage>& m, bool gen) {
  try {
    return tmpl.render(m, gen);
  } catch (const Error& e) {
    throw std::runtime_error("the chat template cannot render it: " + e.what_msg());
  }
}

std::string trim_spaces(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\n\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\n\r") - a + 1);
}

}  // namespace

const std::vector<std::string>& ChatRules::special_tokens() {
  if (!special_) {
    special_.emplace();
    for (const auto& t : tok.added_tokens())
      if (t.special) special_->push_back(t.content);
  }
  return *special_;
}

bool ChatRules::generation_blocks() {
  if (!generation_) {
    try {
      generation_ = tmpl.has_generation_blocks();
    } catch (const Error& e) {
      throw std::runtime_error("the chat template cannot render it: " + e.what_msg());
    }
  }
  return *generation_;
}

const TurnMarks& ChatRules::marks() {
  if (marks_) return *marks_;
  probes_++;
  const std::vector<ChatMessage> u = {{"user", "Hi"}};
  const std::string without = render(tmpl, u, false), with = render(tmpl, u, true);
  const std::string full = render(tmpl, {{"user", "Hi"}, {"assistant", kProbe}}, false);
  TurnMarks m;
  if (with.compare(0, without.size(), without) == 0) m.header = with.substr(without.size());
  const size_t at = full.find(kProbe);
  if (at == std::string::npos) throw std::runtime_error("the chat template does not write the assistant's message");
  const std::string tail = full.substr(at + sizeof(kProbe) - 1);
  size_t first = std::string::npos, len = 0;
  for (const std::string& t : special_tokens()) {
    const size_t p = tail.find(t);
    if (p != std::string::npos && (p < first || (p == first && t.size() > len))) {
      first = p;
      len = t.size();
    }
  }
  if (first == std::string::npos)
    throw std::runtime_error("the chat template writes no special token after an assistant message, so the end of "
                             "an assistant turn cannot be found for the loss mask");
  m.end = tail.substr(0, first + len);
  marks_ = m;
  return *marks_;
}

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
    out.push_back(std::move(msg));
  }
  return out;
}

Example messages_example(const json& j, ChatRules& chat, bool train_on_inputs) {
  if (!j.contains("messages")) throw std::runtime_error("missing \"messages\"");
  return chat_example(parse_chat_messages(j.at("messages"), "messages"), 0, chat, train_on_inputs, "messages");
}

bool is_conversational_prompt(const json& j) {
  return (j.contains("prompt") && j.at("prompt").is_array()) || (j.contains("completion") && j.at("completion").is_array());
}

// TRL's conversational prompt-completion: the template over prompt + completion; the completion's
// assistant messages are counted (an assistant message inside the prompt is context, not a target).
Example conversational_prompt_completion_example(const json& j, ChatRules& chat, bool train_on_inputs) {
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
  return chat_example(msgs, first, chat, train_on_inputs, "completion");
}

Example chat_example(const std::vector<ChatMessage>& msgs, size_t first_counted, ChatRules& chat,
                     bool train_on_inputs, const std::string& field) {
  const Tokenizer& tok = chat.tok;
  const ChatTemplate& tmpl = chat.tmpl;
  auto at = [&](size_t i) {
    if (field != "completion") return item(field, i);
    return i < first_counted ? item("prompt", i) : item(field, i - first_counted);
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

  // A special token's text inside an assistant message is read by the tokenizer as that control token: it
  // would end the turn early (the end-of-turn marker) or teach the model to emit a control token.
  for (size_t i = first_counted; i < msgs.size(); i++) {
    if (msgs[i].role != "assistant") continue;
    for (const std::string& t : chat.special_tokens())
      if (!t.empty() && msgs[i].content.find(t) != std::string::npos)
        throw std::runtime_error(at(i) + ".content contains the text " + t + ", which the tokenizer reads as a control token");
  }

  std::vector<std::pair<size_t, size_t>> spans;  // counted character spans [first, second) of full, in order
  if (chat.generation_blocks()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::array();
    for (const ChatMessage& x : msgs) m.push_back({{"role", x.role}, {"content", x.content}});
    ChatRenderOptions opt;
    opt.generation = &spans;
    try {
      const std::string marked_full = tmpl.render_json(m, false, opt);
      if (marked_full != full) throw std::runtime_error("the chat template renders differently with {% generation %} tracking");
    } catch (const Error& e) {
      throw std::runtime_error("the chat template cannot render it: " + e.what_msg());
    }
    if (spans.empty()) throw std::runtime_error("the chat template marked no assistant text with {% generation %}");
    // Only the counted messages' turns (conversational prompt-completion: the completion's): the template
    // marks every assistant message once, in order, so the prompt's assistant messages are the first spans.
    size_t context_turns = 0;
    for (size_t i = 0; i < first_counted; i++) context_turns += msgs[i].role == "assistant";
    if (context_turns > spans.size()) throw std::runtime_error("the chat template marked fewer assistant turns than there are");
    spans.erase(spans.begin(), spans.begin() + static_cast<std::ptrdiff_t>(context_turns));
  } else {
    const TurnMarks& marks = chat.marks();
    size_t context_end = 0;  // where the last uncounted (context) assistant turn ends
    for (size_t i = 0; i < msgs.size(); i++) {
      if (msgs[i].role != "assistant") continue;
      const bool counted = i >= first_counted;
      const size_t prev_end = spans.empty() ? context_end : spans.back().second;
      size_t start = std::string::npos;
      if (i > 0) {
        const std::string prefix = render(tmpl, std::vector<ChatMessage>(msgs.begin(), msgs.begin() + i), true);
        if (prefix.size() <= full.size() && full.compare(0, prefix.size(), prefix) == 0) start = prefix.size();
      }
      if (start == std::string::npos && !marks.header.empty()) {
        if (i > 0)
          throw std::runtime_error("the chat template renders the messages before " + at(i) +
                                   " (with the generation prompt) differently from the whole conversation, so the "
                                   "assistant turn cannot be masked exactly (Qwen3 does this to consecutive assistant "
                                   "messages after the last user message; merge them into one)");
        // Nothing to render before it: the template's own header (after any default system turn).
        const size_t h = full.find(marks.header, prev_end);
        if (h == std::string::npos) throw std::runtime_error("the chat template wrote no assistant header for " + at(0));
        start = h + marks.header.size();
      }
      if (start == std::string::npos) {
        // No generation prompt to go by (Mistral-style templates write the assistant's text right after the
        // user turn, and may move the system message): the turn starts where the message's text does, with
        // the spaces before it.
        const std::string text = trim_spaces(msgs[i].content);
        const size_t found = text.empty() ? std::string::npos : full.find(text, prev_end);
        if (found == std::string::npos)
          throw std::runtime_error("the chat template's rendering does not show " + at(i) +
                                   ".content where it can be found, so the assistant turn cannot be masked");
        start = found;
        while (start > prev_end && (full[start - 1] == ' ' || full[start - 1] == '\t')) start--;
      }
      const size_t close = full.find(marks.end, start);
      if ((!spans.empty() && start < spans.back().second) || close == std::string::npos)
        throw std::runtime_error("the chat template's rendering of " + at(i) + " has no closing " + marks.end);
      if (counted) spans.emplace_back(start, close + marks.end.size());
      else context_end = close + marks.end.size();
    }
  }

  // The whole text is tokenized once; a span's first and last tokens are found by tokenizing the text before
  // its ends, which must give a prefix of the whole (else a token straddles the boundary). Tokenizing spans
  // apart would not do: SentencePiece-style tokenizers prepend "▁" to every piece of input.
  Example e;
  e.ids = tok.encode(full);
  e.labels.assign(e.ids.size(), -100);
  auto boundary = [&](size_t pos) {
    const std::vector<int32_t> p = tok.encode(std::string_view(full).substr(0, pos));
    if (p.size() > e.ids.size() || !std::equal(p.begin(), p.end(), e.ids.begin()))
      throw std::runtime_error("tokenizing the conversation up to an assistant turn's start or end gives other tokens "
                               "than tokenizing it whole (a token straddles a turn boundary, e.g. an assistant "
                               "message that starts with a newline), so the loss cannot be masked exactly");
    return p.size();
  };
  size_t pos = 0;
  for (const auto& [a, b] : spans) {
    if (a < pos || b < a || b > full.size()) throw std::runtime_error("the chat template's assistant spans overlap");
    const size_t ta = boundary(a), tb = b == full.size() ? e.ids.size() : boundary(b);
    for (size_t k = ta; k < tb; k++) e.labels[k] = e.ids[k];
    pos = b;
  }
  return e;
}

}  // namespace wick::dataset_detail
