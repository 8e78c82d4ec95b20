// Internal to the dataset loader: one parsed JSON line -> an Example, per format. Each throws
// std::runtime_error with what is wrong in the line; the loader adds file:line.
#pragma once
#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "train/dataset.h"

namespace wick::dataset_detail {

// The format a line's keys name; runtime_error when they name none or several.
DatasetFormat detect_format(const nlohmann::json& j);

Example text_example(const nlohmann::json& j, const Tokenizer& tok, int32_t eos_id);
Example prompt_completion_example(const nlohmann::json& j, const Tokenizer& tok, int32_t eos_id, bool train_on_inputs);
Example tokens_example(const nlohmann::json& j, int64_t vocab_size);
// dataset_chat.cpp: rendering, incremental masking and its verification.
Example messages_example(const nlohmann::json& j, const Tokenizer& tok, const ChatTemplate& tmpl, bool train_on_inputs);
// {"prompt": [messages], "completion": [messages]} (TRL's conversational prompt-completion).
bool is_conversational_prompt(const nlohmann::json& j);
Example conversational_prompt_completion_example(const nlohmann::json& j, const Tokenizer& tok,
                                                 const ChatTemplate& tmpl, bool train_on_inputs);
// dataset_chat_formats.cpp: ShareGPT and Alpaca lines as chat messages.
Example sharegpt_example(const nlohmann::json& j, const Tokenizer& tok, const ChatTemplate& tmpl, bool train_on_inputs);
Example alpaca_example(const nlohmann::json& j, const Tokenizer& tok, const ChatTemplate& tmpl, bool train_on_inputs);

// The chat core shared by every chat-shaped format: msgs rendered with tmpl; the assistant messages at
// index >= first_counted are counted (all tokens when train_on_inputs). field names the list in errors.
Example chat_example(const std::vector<ChatMessage>& msgs, size_t first_counted, const Tokenizer& tok,
                     const ChatTemplate& tmpl, bool train_on_inputs, const std::string& field);
// A list of {"role", "content"} objects at j[field] (field for messages), checked as messages_example does.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& list, const std::string& field);

// Every id in [0, vocab_size) when vocab_size > 0 (what = where the ids came from, for the message).
void check_vocab(const Example& e, int64_t vocab_size, const char* what);

}  // namespace wick::dataset_detail
