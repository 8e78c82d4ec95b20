// Internal to the dataset loader: one parsed JSON line -> an Example, per format. Each throws
// std::runtime_error with what is wrong in the line; the loader adds file:line.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"
#include "train/dataset.h"

namespace wick::dataset_detail {

// The format a line's keys name; runtime_error when they name none or several.
DatasetFormat detect_format(const nlohmann::json& j);

Example text_example(const nlohmann::json& j, const Tokenizer& tok, int32_t eos_id);
Example prompt_completion_example(const nlohmann::json& j, const Tokenizer& tok, int32_t eos_id, bool train_on_inputs);
Example tokens_example(const nlohmann::json& j, int64_t vocab_size);

// Where the template's assistant turns begin and end, learnt from probe renderings.
struct TurnMarks {
  std::string header;  // what the generation prompt adds after a user turn ("<|im_start|>assistant\n")
  std::string end;     // the end-of-turn marker after an assistant message ("<|im_end|>")
};

// What the chat core reads of the template and the tokenizer that is the same for every line: worked out on
// first use and kept, so a dataset (load_dataset makes one for the whole file) probes the template once, not
// once per example. A failure is not kept: the next line asks again and gets the same error.
class ChatRules {
 public:
  ChatRules(const Tokenizer& tok, const ChatTemplate& tmpl) : tok(tok), tmpl(tmpl) {}
  const Tokenizer& tok;
  const ChatTemplate& tmpl;
  const std::vector<std::string>& special_tokens();  // the text of every special added token, in order
  bool generation_blocks();  // the template marks assistant text with {% generation %}; runtime_error if it cannot say
  const TurnMarks& marks();  // from three probe renderings; runtime_error when they show no turn end
  int64_t probes() const { return probes_; }  // how many times marks() probed the template

 private:
  std::optional<std::vector<std::string>> special_;
  std::optional<bool> generation_;
  std::optional<TurnMarks> marks_;
  int64_t probes_ = 0;
};

// dataset_chat.cpp: rendering, incremental masking and its verification.
Example messages_example(const nlohmann::json& j, ChatRules& chat, bool train_on_inputs);
// {"prompt": [messages], "completion": [messages]} (TRL's conversational prompt-completion).
bool is_conversational_prompt(const nlohmann::json& j);
Example conversational_prompt_completion_example(const nlohmann::json& j, ChatRules& chat, bool train_on_inputs);
// dataset_chat_formats.cpp: ShareGPT and Alpaca lines as chat messages.
Example sharegpt_example(const nlohmann::json& j, ChatRules& chat, bool train_on_inputs);
Example alpaca_example(const nlohmann::json& j, ChatRules& chat, bool train_on_inputs);

// The chat core shared by every chat-shaped format: msgs rendered with chat.tmpl; the assistant messages at
// index >= first_counted are counted (all tokens when train_on_inputs). field names the list in errors.
Example chat_example(const std::vector<ChatMessage>& msgs, size_t first_counted, ChatRules& chat,
                     bool train_on_inputs, const std::string& field);
// A list of {"role", "content"} objects at j[field] (field for messages), checked as messages_example does.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& list, const std::string& field);

// Every id in [0, vocab_size) when vocab_size > 0 (what = where the ids came from, for the message).
void check_vocab(const Example& e, int64_t vocab_size, const char* what);

}  // namespace wick::dataset_detail
